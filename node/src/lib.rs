//! The `weft` node as a library: one authority (primary, workers, consensus, executor) in
//! one process, its committed log, and its Ethereum JSON-RPC ingress (`rpc`). The `weft`
//! binary and the multi-node tests use it.

pub mod attest;
pub mod columns;
pub mod executor;
pub mod l1;
pub mod leaves;
pub mod log;
pub mod metrics;
pub mod node;
pub mod ops;
pub mod rpc;

pub use log::{CommittedEntry, CommittedLog};
pub use node::{Node, NodeArgs, NodeHandle};
