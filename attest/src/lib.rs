//! The committee's signed output: each authority attests every sub-DAG it committed, a
//! quorum of stake makes the sub-DAG's finality certificate, and a transaction's
//! pre-confirmation is its Merkle proof to a certified root. Everything a client checks here
//! needs only the committee file.
//!
//! # Layout
//! | module | role |
//! |---|---|
//! | [`keccak4`] | keccak256 of many messages, four at a time (AVX2) |
//! | [`key`] | the secp256k1 attestation key, signing and `ecrecover`-compatible recovery |
//! | [`leaf`] | a committed transaction's hash and chain id |
//! | [`merkle`] | the tree over a sub-DAG's transaction hashes, its proofs and their check |
//! | [`attestation`] | what is signed, certificates, pre-confirmations and their offline checks |
//! | [`core`] | the attester: the pure state machine the node's actor drives |

pub mod attestation;
pub mod core;
pub mod keccak4;
pub mod key;
pub mod leaf;
pub mod merkle;

pub use attestation::{
    committee_id, Attestation, AttestationAnswer, AttestedHeader, BatchRefs, CertificateError,
    CertificateSignature, ChainRoot, FinalityCertificate, Leaf, PreconfError, Preconfirmation,
    Roots, SignedAttestation,
};
pub use core::{Accepted, AttestError, Attester, Output};
pub use key::{recover, AttestationKey, EcdsaSignature};
pub use leaf::leaf_of;
pub use merkle::{leaf_hash, ProofError, Tree};
