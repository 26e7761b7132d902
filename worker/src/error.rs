use thiserror::Error;
use weft_network::NetworkError;
use weft_storage::StoreError;
use weft_types::codec::DecodeError;
use weft_types::{AuthorityIndex, WorkerId};

/// Why a worker could not start or had to stop.
#[derive(Debug, Error)]
pub enum WorkerError {
    #[error("authority {0} is not in the committee")]
    UnknownAuthority(AuthorityIndex),
    #[error("worker {0} is not in the committee")]
    UnknownWorker(WorkerId),
    #[error("invalid parameters: {0}")]
    Parameters(#[from] weft_config::ParameterError),
    #[error("network: {0}")]
    Network(#[from] NetworkError),
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    #[error("cannot bind the transaction listener: {0}")]
    Io(#[from] std::io::Error),
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

/// Why a request from a peer (or from the own primary) was refused. Each variant is a
/// distinct [`RequestError::kind`], the label of the rejection metric.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum RequestError {
    #[error("undecodable request: {0}")]
    Decode(DecodeError),
    #[error("malformed batch: {0}")]
    MalformedBatch(DecodeError),
    #[error("transaction of {size} bytes in a batch exceeds the limit of {limit}")]
    TransactionTooLarge { size: usize, limit: usize },
    #[error("authority {0} sent a message only the own primary may send")]
    NotOwnPrimary(AuthorityIndex),
    #[error("batch response is undecodable: {0}")]
    MalformedResponse(DecodeError),
    #[error("received a batch that was not asked for")]
    UnrequestedBatch,
    #[error("batch of {size} bytes exceeds the largest a worker seals ({limit})")]
    BatchTooLarge { size: usize, limit: usize },
    #[error("authority {peer} already has {held} bytes of batches stored here that no header named (limit {limit})")]
    PeerQuota {
        peer: AuthorityIndex,
        held: usize,
        limit: usize,
    },
    #[error("digest {0} is named twice in one request")]
    DuplicateDigest(weft_types::BatchDigest),
    /// Local failure; not the peer's fault, but the request cannot be served.
    #[error("storage failure")]
    Store,
    #[error("the worker is shutting down")]
    ShuttingDown,
}

impl RequestError {
    /// Short stable label for the rejection metric.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Decode(_) => "undecodable",
            Self::MalformedBatch(_) => "malformed_batch",
            Self::TransactionTooLarge { .. } => "transaction_too_large",
            Self::NotOwnPrimary(_) => "not_own_primary",
            Self::MalformedResponse(_) => "malformed_response",
            Self::UnrequestedBatch => "unrequested_batch",
            Self::BatchTooLarge { .. } => "batch_too_large",
            Self::DuplicateDigest(_) => "duplicate_digest",
            Self::PeerQuota { .. } => "peer_quota",
            Self::Store => "store",
            Self::ShuttingDown => "shutting_down",
        }
    }
}
