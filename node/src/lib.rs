//! The `weft` node as a library: one authority (primary, workers, consensus, executor) in
//! one process, and its committed log. The `weft` binary and the multi-node tests use it.

pub mod l1;
pub mod log;
pub mod node;
pub mod ordering;

pub use log::{CommittedEntry, CommittedLog};
pub use node::{Node, NodeArgs, NodeHandle};
