//! The ingress's errors and their JSON-RPC codes, which follow reth's
//! (`crates/rpc/rpc-eth-types/src/error/mod.rs`): bad input is -32602 (invalid params), a
//! limit is -32005 (limit exceeded), a refused transaction is -32003 (transaction rejected).

use jsonrpsee::types::error::{ErrorObjectOwned, INTERNAL_ERROR_CODE, INVALID_PARAMS_CODE};
use weft_worker::SubmitError;

/// reth's `EthRpcErrorCode::TransactionRejected`.
pub const TRANSACTION_REJECTED_CODE: i32 = -32003;
/// reth's (and EIP-1474's) "limit exceeded".
pub const LIMIT_EXCEEDED_CODE: i32 = -32005;

/// Why a raw transaction was refused before it reached a worker. Every variant is the
/// client's fault and maps to -32602.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum TxError {
    #[error("invalid hex: {0}")]
    InvalidHex(String),
    #[error("empty transaction")]
    Empty,
    #[error("oversized data: transaction of {size} bytes exceeds the limit of {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("failed to decode signed transaction: {0}")]
    Decode(String),
    #[error("failed to decode signed transaction: {0} trailing bytes")]
    TrailingBytes(usize),
    /// Decodes, but is not the one canonical encoding of what it decodes to (so its hash would
    /// not be the hash of what gets ordered).
    #[error("failed to decode signed transaction: non-canonical encoding")]
    NonCanonical,
    #[error("blob transactions (EIP-4844) are not sequenced: their sidecars are not carried")]
    BlobTransaction,
    #[error("transaction has no chain id (pre-EIP-155 legacy transactions are not accepted)")]
    MissingChainId,
    #[error("chain id {0} is not sequenced by this committee")]
    UnknownChainId(u64),
    #[error("chain id {chain_id} does not match the endpoint's chain id {endpoint}")]
    ChainIdMismatch { chain_id: u64, endpoint: u64 },
    #[error("invalid transaction signature")]
    InvalidSignature,
}

impl TxError {
    /// The reason label of the rejection metric.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::InvalidHex(_) => "invalid_hex",
            Self::Empty => "empty",
            Self::TooLarge { .. } => "too_large",
            Self::Decode(_) | Self::TrailingBytes(_) | Self::NonCanonical => "undecodable",
            Self::BlobTransaction => "blob",
            Self::MissingChainId => "no_chain_id",
            Self::UnknownChainId(_) | Self::ChainIdMismatch { .. } => "wrong_chain",
            Self::InvalidSignature => "bad_signature",
        }
    }
}

impl From<TxError> for ErrorObjectOwned {
    fn from(e: TxError) -> Self {
        ErrorObjectOwned::owned(INVALID_PARAMS_CODE, e.to_string(), None::<()>)
    }
}

/// Why a call failed after its input was accepted, or was not served at all.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum RpcError {
    #[error(transparent)]
    Transaction(#[from] TxError),
    #[error("invalid params: {0}")]
    InvalidParams(String),
    /// Every worker's channel is full: the client should retry later.
    #[error("transaction rejected: sequencer busy")]
    Busy,
    /// No worker is running (the node is stopping).
    #[error("transaction rejected: sequencer stopped")]
    Stopped,
    /// The worker took the transaction but could not make it durable; it may still be
    /// ordered (if it is stuck in a batch that gets proposed), so the client may resubmit and
    /// should expect at most one of the copies to be valid (same nonce).
    #[error("transaction not acknowledged: {0}; it may or may not be ordered, resubmit it")]
    NotAcknowledged(SubmitError),
    #[error("rate limit exceeded: more than {0} requests per second on this connection")]
    RateLimited(u32),
    #[error("batch of {len} requests exceeds the limit of {limit}")]
    BatchTooLong { len: usize, limit: usize },
    /// The node does not serve this method (its attester is not running).
    #[error("{0} is not served by this node")]
    NotServed(&'static str),
    /// A store read failed.
    #[error("internal error: {0}")]
    Internal(String),
}

impl RpcError {
    /// The reason label of the rejection metric.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Transaction(e) => e.kind(),
            Self::InvalidParams(_) => "invalid_params",
            Self::Busy => "busy",
            Self::Stopped => "stopped",
            Self::NotAcknowledged(_) => "not_acknowledged",
            Self::RateLimited(_) => "rate_limited",
            Self::BatchTooLong { .. } => "batch_too_long",
            Self::NotServed(_) => "not_served",
            Self::Internal(_) => "internal",
        }
    }

    pub fn code(&self) -> i32 {
        match self {
            Self::Transaction(_) | Self::InvalidParams(_) => INVALID_PARAMS_CODE,
            Self::Busy | Self::Stopped => TRANSACTION_REJECTED_CODE,
            Self::NotAcknowledged(_) | Self::Internal(_) => INTERNAL_ERROR_CODE,
            // EIP-1474's "method not supported".
            Self::NotServed(_) => -32004,
            Self::RateLimited(_) | Self::BatchTooLong { .. } => LIMIT_EXCEEDED_CODE,
        }
    }
}

impl From<RpcError> for ErrorObjectOwned {
    fn from(e: RpcError) -> Self {
        ErrorObjectOwned::owned(e.code(), e.to_string(), None::<()>)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_follow_reth() {
        let object = ErrorObjectOwned::from(RpcError::Busy);
        assert_eq!(object.code(), -32003);
        assert_eq!(object.message(), "transaction rejected: sequencer busy");
        assert_eq!(RpcError::RateLimited(5).code(), -32005);
        assert_eq!(RpcError::BatchTooLong { len: 2, limit: 1 }.code(), -32005);
        assert_eq!(RpcError::from(TxError::InvalidSignature).code(), -32602);
        assert_eq!(ErrorObjectOwned::from(TxError::Empty).code(), -32602);
    }
}
