//! Posts the ordered stream to an Ethereum L1 inbox contract and reads it back (issue #6).
//!
//! - [`source`]: committed sub-DAGs in order ([`OrderedSource`]); [`attested`]: the poster's
//!   input, the committee's certified batches ([`AttestedSource`]).
//! - [`batch`]: frames with positions, zstd, cut to a target size; [`cutter`]: where each
//!   batch begins and ends, a function of the log that every authority signs alike.
//! - [`inbox`]: the contract's bindings; [`l1`]: RPC, signing, fees; [`reader`]: batches back.
//! - [`poster`]: the posting actor; [`cursor`]: its persisted cursor; [`rotation`]: who posts.
//! - [`verify`]: the verifier behind `weft l1 verify`.
//! - [`anvil`]: a local L1 for tests and the `measure` example.

pub mod anvil;
pub mod attested;
pub mod batch;
pub mod cursor;
pub mod cutter;
pub mod forced;
pub mod inbox;
pub mod l1;
pub mod metrics;
pub mod poster;
pub mod reader;
pub mod rotation;
pub mod source;
pub mod verify;

pub use attested::{AttestedBatch, AttestedSource, MemoryCommittee};
pub use batch::{Frame, Position};
pub use cutter::{ClosedBatch, Cutter, CutterParams, CutterState, PostMode};
pub use l1::deploy_inbox;
pub use poster::{Poster, PosterConfig, PosterHandle, PosterStatus};
pub use source::{MemorySource, OrderedSource, OrderedSubDag, SourceError};
pub use verify::{read_inbox, verify, InboxWalker, Inconsistency, VerifyReport};
