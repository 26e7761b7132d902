//! The messages between the primary's actors, so that each actor imports them from here and
//! not from another actor.

use weft_types::{
    AuthorityIndex, BatchDigest, Certificate, CertificateDigest, Header, HeaderDigest, Round, Vote,
    WorkerId,
};

/// Verified input for the core, from the network handler, the synchronizers and the workers.
#[derive(Debug)]
pub enum CoreInput {
    Header(Header),
    Vote(Vote),
    Certificate(Certificate),
    OurBatch(BatchDigest, WorkerId),
    PayloadAvailable {
        author: AuthorityIndex,
        round: Round,
        digest: HeaderDigest,
    },
}

impl CoreInput {
    pub(crate) fn label(&self) -> &'static str {
        match self {
            Self::Header(_) => "header",
            Self::Vote(_) => "vote",
            Self::Certificate(_) => "certificate",
            Self::OurBatch(..) => "our_batch",
            Self::PayloadAvailable { .. } => "payload",
        }
    }
}

/// A header whose batches must be stored locally.
#[derive(Debug)]
pub struct PayloadRequest {
    pub header: HeaderDigest,
    pub author: AuthorityIndex,
    pub round: Round,
    pub payload: Vec<(BatchDigest, WorkerId)>,
    /// Tell the core when they are all stored (it waits to vote).
    pub notify: bool,
}

/// What the core asks for.
#[derive(Debug)]
pub enum SyncRequest {
    /// Certificates of round `round` (parents of something waiting), first from `from`.
    Certificates {
        from: AuthorityIndex,
        round: Round,
        digests: Vec<CertificateDigest>,
    },
    /// Everything from `from_round` up, first from `from`.
    Range {
        from: AuthorityIndex,
        from_round: Round,
    },
}
