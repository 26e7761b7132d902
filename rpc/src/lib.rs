//! The Ethereum JSON-RPC ingress: wallets, web3.py, ethers and `cast` submit signed
//! transactions to an authority, which checks them, hands each to one of its workers and
//! answers with the Ethereum hash once the worker acknowledged it durable.
//!
//! # Layout
//! | module | role |
//! |---|---|
//! | [`decode`] | pure checks of a raw signed transaction (hex, EIP-2718 decoding, canonical form, size, chain id, sender recovery) |
//! | [`error`] | the errors and their JSON-RPC codes (reth's) |
//! | [`index`] | [`TransactionIndex`], what `weft_getTransactionPosition` reads, and an in-memory one fed from the committed log |
//! | [`metrics`] | transactions received and refused by reason, stream subscriptions |
//! | [`limits`] | per-connection rate limit, batch length, the `/<chain_id>` namespace |
//! | [`preconf`] | pre-confirmations and finality certificates, by call and by subscription |
//! | [`server`] | the jsonrpsee server (HTTP and WebSocket on one port) and its methods |
//!
//! # Methods
//! - `eth_sendRawTransaction(hex)` → `0x` + `keccak256(raw envelope)`, returned only once
//!   the worker's [`weft_worker::Acknowledgement`] resolved: the batch holding the exact bytes
//!   sent is stored by a quorum of stake and recorded by the own primary.
//! - `eth_chainId` / `net_version`: the endpoint's chain (`/<chain_id>`), or
//!   `rpc.default_chain_id` on `/`. `web3_clientVersion`.
//! - `weft_status` → `{authority, round, nextSubDagIndex, chainIds}`, `weft_subDagIndex` →
//!   the next sub-DAG index, `weft_getTransactionPosition(hash)` →
//!   `{subDagIndex, txIndex, chainId}` or `null` (under `/<chain_id>`, only that chain's).
//! - `weft_getPreconfirmation(hash)`, `weft_getFinalityCertificate(index)` and the
//!   `weft_subscribePreconfirmations([hash, ...])` subscription: see [`preconf`].
//!
//! # Errors
//! Bad input (hex, RLP, non-canonical encoding, signature, missing or unknown chain id, a
//! transaction over the size limit, a blob transaction): -32602 with the reason. A batch
//! longer than `rpc.max_batch_len`, or a call beyond `rpc.rate_limit_per_connection`: -32005.
//! Every worker full: -32003 "transaction rejected: sequencer busy". A body over
//! `rpc.max_request_body_size`: HTTP 413 with jsonrpsee's -32007. The server keeps serving.

pub mod checker;
pub mod decode;
pub mod error;
pub mod index;
pub mod limits;
pub mod metrics;
pub mod preconf;
pub mod server;
pub mod stream;

pub use decode::{check_transaction, hash_and_chain_id, CheckedTransaction, TxPolicy};
pub use error::{RpcError, TxError, LIMIT_EXCEEDED_CODE, TRANSACTION_REJECTED_CODE};
pub use index::{MemoryIndex, Position, TransactionIndex};
pub use preconf::PreconfSource;
pub use server::{
    RoundSource, RpcServer, RpcServerArgs, RpcServerError, RpcServerHandle, CLIENT_VERSION,
};
pub use stream::{StreamEntry, SubDagPart, SubDagSource};
