//! Messages, keys and the wire encoding shared by every weft crate.

pub mod codec;
pub mod committee;
pub mod crypto;
pub mod error;
pub mod messages;

pub use committee::{Authority, AuthorityIndex, Committee, CommitteeFile, Epoch, Stake, WorkerId};
pub use crypto::{Digest, EthAddress, KeyPair, PublicKey, Signature};
pub use error::MessageError;
pub use messages::{
    Batch, BatchDigest, Certificate, CertificateDigest, Header, HeaderDigest, Round, Transaction,
    Vote,
};
pub use messages::{BatchResponse, PrimaryToWorker, WorkerMessage, WorkerToPrimary};
pub use messages::{CertificatesResponse, PrimaryMessage};
