//! The reference rollup node (`weft rollup run`): executes one chain's share of weft's
//! ordered output on an EVM execution client, one block per committed sub-DAG, in weft's
//! order, at the sub-DAG's consensus time; either following the authorities' ordered stream
//! (failing over between them) or deriving from the L1 inbox alone, forced inclusion
//! included. Two nodes of one chain, fed either way, build the same blocks.
//!
//! # Layout
//! | module | role |
//! |---|---|
//! | [`plan`] | pure: which transactions go into a block (chain, sender, nonce order), the block time |
//! | [`derive`] | pure: the L1 derivation rule (sub-DAGs from batches, forced transactions after W blocks) |
//! | [`engine`] | the execution client behind [`engine::Engine`]; [`engine::AnvilEngine`] |
//! | [`stream`] | the ordered-stream follower with failover |
//! | [`l1`] | the L1 follower: batches and forced transactions, in L1 order, into [`derive`] |
//! | [`node`] | the loop: source → plan → engine |

pub mod derive;
pub mod engine;
pub mod l1;
pub mod node;
pub mod plan;
pub mod stream;

pub use engine::{AnvilEngine, Engine, Head};
pub use node::{BlockReport, RollupError, RollupNode, Source};
pub use plan::L2Input;
