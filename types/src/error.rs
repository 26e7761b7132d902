//! Why a message from the network was rejected.

use crate::committee::{AuthorityIndex, Epoch, Stake, WorkerId};
use crate::crypto::CryptoError;
use crate::messages::Round;
use thiserror::Error;

/// A message failed validation. Each variant is a distinct reason, so tests can compare them
/// and metrics can count them by [`MessageError::kind`].
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum MessageError {
    #[error("message is for epoch {got}, the committee is at epoch {expected}")]
    WrongEpoch { expected: Epoch, got: Epoch },
    #[error("authority {0} is not in the committee")]
    UnknownAuthority(AuthorityIndex),
    #[error("round {0} is not valid here")]
    InvalidRound(Round),
    #[error("bad signature: {0}")]
    Signature(#[from] CryptoError),
    #[error("a header of round > 0 needs parents")]
    NoParents,
    #[error("{count} parents is more than the committee size {limit}")]
    TooManyParents { count: usize, limit: usize },
    #[error("parents must be sorted and distinct")]
    ParentsNotCanonical,
    #[error("payload names worker {0}, which does not exist")]
    UnknownWorker(WorkerId),
    #[error("payload lists a batch twice")]
    DuplicateBatch,
    #[error("signer bitmap does not match the committee")]
    BadSignerBitmap,
    #[error("signers carry {stake} stake, {needed} is needed")]
    NoQuorum { stake: Stake, needed: Stake },
    #[error("{signers} signers but {signatures} signatures")]
    SignatureCountMismatch { signers: usize, signatures: usize },
    #[error("a round-0 certificate must be the genesis certificate")]
    InvalidGenesis,
}

impl MessageError {
    /// Short stable label for the rejection metric.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::WrongEpoch { .. } => "wrong_epoch",
            Self::UnknownAuthority(_) => "unknown_authority",
            Self::InvalidRound(_) => "invalid_round",
            Self::Signature(_) => "bad_signature",
            Self::NoParents => "no_parents",
            Self::TooManyParents { .. } => "too_many_parents",
            Self::ParentsNotCanonical => "parents_not_canonical",
            Self::UnknownWorker(_) => "unknown_worker",
            Self::DuplicateBatch => "duplicate_batch",
            Self::BadSignerBitmap => "bad_signer_bitmap",
            Self::NoQuorum { .. } => "no_quorum",
            Self::SignatureCountMismatch { .. } => "signature_count_mismatch",
            Self::InvalidGenesis => "invalid_genesis",
        }
    }
}
