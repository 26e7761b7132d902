//! Why consensus refused an input.

use thiserror::Error;
use weft_types::{AuthorityIndex, CertificateDigest, Epoch, Round};

/// A certificate or a stored state that consensus cannot take. Certificates reach consensus
/// already verified and in causal order, so each variant below is a bug or a corrupted store
/// upstream, never a reason to panic.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ConsensusError {
    #[error("certificate author {0} is not in the committee")]
    UnknownAuthority(AuthorityIndex),
    #[error("certificate is for epoch {got}, the committee is at epoch {expected}")]
    WrongEpoch { expected: Epoch, got: Epoch },
    #[error(
        "causal order violated: certificate {author}@{round} arrived before its parent {parent}"
    )]
    MissingParent {
        author: AuthorityIndex,
        round: Round,
        parent: CertificateDigest,
    },
    #[error("{author}@{round} already has certificate {held}, refusing {got}")]
    Equivocation {
        author: AuthorityIndex,
        round: Round,
        held: CertificateDigest,
        got: CertificateDigest,
    },
    #[error("stored consensus state does not fit the committee: {0}")]
    InvalidState(&'static str),
    #[error("invalid consensus parameter: {0}")]
    InvalidParameter(&'static str),
}

impl ConsensusError {
    /// Short stable label for the rejection metric the caller keeps.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::UnknownAuthority(_) => "unknown_authority",
            Self::WrongEpoch { .. } => "wrong_epoch",
            Self::MissingParent { .. } => "missing_parent",
            Self::Equivocation { .. } => "equivocation",
            Self::InvalidState(_) => "invalid_state",
            Self::InvalidParameter(_) => "invalid_parameter",
        }
    }
}
