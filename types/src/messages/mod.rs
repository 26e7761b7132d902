//! The messages of the Narwhal mempool and the certified DAG.

mod batch;
mod certificate;
mod header;
mod primary;
mod vote;
mod worker;

pub use batch::{Batch, BatchDigest, Transaction};
pub use certificate::{Certificate, CertificateDigest};
pub use header::{Header, HeaderDigest};
pub use primary::{CertificatesResponse, PrimaryMessage, MAX_CERTIFICATES_REQUEST};
pub use vote::Vote;
pub use worker::{
    is_primary_to_worker, BatchResponse, PrimaryToWorker, WorkerMessage, WorkerToPrimary,
    MAX_BATCH_REQUEST, MAX_DIGESTS_PER_MESSAGE,
};

/// A DAG round. Round 0 holds only the genesis certificates.
pub type Round = u64;

/// Declares a digest newtype so batch, header and certificate digests cannot be mixed up.
macro_rules! typed_digest {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        pub struct $name(pub $crate::crypto::Digest);

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{:?}", self.0)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}", self.0)
            }
        }

        impl $crate::codec::Encode for $name {
            fn encode(&self, out: &mut bytes::BytesMut) {
                self.0.encode(out)
            }
            fn encoded_len(&self) -> usize {
                $crate::crypto::DIGEST_LEN
            }
        }

        impl $crate::codec::Decode for $name {
            const MIN_ENCODED_LEN: usize = $crate::crypto::DIGEST_LEN;
            fn decode(r: &mut $crate::codec::Reader) -> Result<Self, $crate::codec::DecodeError> {
                Ok(Self($crate::crypto::Digest::decode(r)?))
            }
        }
    };
}
pub(crate) use typed_digest;
