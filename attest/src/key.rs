//! The attestation key: secp256k1, so that an L1 contract checks a signature with `ecrecover`.
//! Signatures are 65 bytes `r ‖ s ‖ v` (v = 27 or 28) over a 32-byte digest, signed
//! deterministically (RFC 6979: the same digest always gives the same signature) with low s.

use alloy_primitives::{keccak256, B256};
use rand::{CryptoRng, RngCore};
use secp256k1::ecdsa::{RecoverableSignature, RecoveryId};
use secp256k1::{All, Message, PublicKey, Secp256k1, SecretKey};
use std::sync::LazyLock;
use weft_types::EthAddress;

static SECP: LazyLock<Secp256k1<All>> = LazyLock::new(Secp256k1::new);

/// secp256k1's group order n, halved: a signature with a larger s has a twin (n - s) that is
/// just as valid, so only the low one is accepted (EIP-2; the inbox checks the same).
const HALF_ORDER: [u8; 32] = [
    0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0x5d, 0x57, 0x6e, 0x73, 0x57, 0xa4, 0x50, 0x1d, 0xdf, 0xe9, 0x2f, 0x46, 0x68, 0x1b, 0x20, 0xa0,
];

pub const SIGNATURE_LEN: usize = 65;

/// `r ‖ s ‖ v`, as `ecrecover` takes it.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct EcdsaSignature(pub [u8; SIGNATURE_LEN]);

impl std::fmt::Debug for EcdsaSignature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "0x{}", hex::encode(self.0))
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("not a secp256k1 secret key (zero or not below the group order)")]
pub struct InvalidKey;

/// An authority's attestation key.
pub struct AttestationKey(SecretKey);

impl std::fmt::Debug for AttestationKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AttestationKey({})", self.address())
    }
}

impl AttestationKey {
    pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        loop {
            let mut bytes = [0u8; 32];
            rng.fill_bytes(&mut bytes);
            if let Ok(key) = Self::from_bytes(&bytes) {
                return key;
            }
        }
    }

    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, InvalidKey> {
        SecretKey::from_byte_array(bytes)
            .map(Self)
            .map_err(|_| InvalidKey)
    }

    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.secret_bytes()
    }

    pub fn copy(&self) -> Self {
        Self(self.0)
    }

    /// The Ethereum address of the key: what the committee file lists and `ecrecover` returns.
    pub fn address(&self) -> EthAddress {
        address_of(&self.0.public_key(&SECP))
    }

    pub fn sign(&self, digest: &B256) -> EcdsaSignature {
        let message = Message::from_digest(digest.0);
        let (id, rs) = SECP
            .sign_ecdsa_recoverable(&message, &self.0)
            .serialize_compact();
        let mut out = [0u8; SIGNATURE_LEN];
        out[..64].copy_from_slice(&rs);
        out[64] = 27 + i32::from(id) as u8;
        EcdsaSignature(out)
    }
}

fn address_of(key: &PublicKey) -> EthAddress {
    let hash = keccak256(&key.serialize_uncompressed()[1..]);
    let mut out = [0u8; 20];
    out.copy_from_slice(&hash[12..]);
    EthAddress(out)
}

/// The signer of `digest`, as `ecrecover` would find it; `None` for a signature `ecrecover`
/// would refuse or one with a high s.
pub fn recover(digest: &B256, signature: &EcdsaSignature) -> Option<EthAddress> {
    let bytes = &signature.0;
    if bytes[32..64] > HALF_ORDER[..] {
        return None;
    }
    let id = match bytes[64] {
        27 => RecoveryId::Zero,
        28 => RecoveryId::One,
        _ => return None,
    };
    let signature = RecoverableSignature::from_compact(&bytes[..64], id).ok()?;
    let key = SECP
        .recover_ecdsa(&Message::from_digest(digest.0), &signature)
        .ok()?;
    Some(address_of(&key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, SeedableRng};

    #[test]
    fn a_signature_recovers_to_its_key_and_to_nothing_else() {
        let key = AttestationKey::generate(&mut StdRng::seed_from_u64(1));
        let digest = keccak256(b"sub-DAG 7");
        let signature = key.sign(&digest);
        assert_eq!(key.sign(&digest), signature, "signing is deterministic");
        assert_eq!(recover(&digest, &signature), Some(key.address()));
        assert_ne!(
            recover(&keccak256(b"sub-DAG 8"), &signature),
            Some(key.address())
        );
        let mut bad_v = signature;
        bad_v.0[64] = 29;
        assert_eq!(recover(&digest, &bad_v), None);
    }

    #[test]
    fn the_high_s_twin_of_a_signature_is_refused() {
        let key = AttestationKey::generate(&mut StdRng::seed_from_u64(2));
        let digest = keccak256(b"x");
        let signature = key.sign(&digest);
        // n - s, with v flipped: the same signer to a lax ecrecover.
        let n = alloy_primitives::U256::from_str_radix(
            "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141",
            16,
        )
        .unwrap();
        let s = alloy_primitives::U256::from_be_slice(&signature.0[32..64]);
        let mut twin = signature;
        twin.0[32..64].copy_from_slice(&(n - s).to_be_bytes::<32>());
        twin.0[64] = if signature.0[64] == 27 { 28 } else { 27 };
        assert_eq!(recover(&digest, &twin), None);
    }

    #[test]
    fn the_address_matches_ethereum_s_derivation() {
        // The well-known key 0x…01 has address 0x7e5f4552091a69125d5dfcb7b8c2659029395bdf.
        let mut one = [0u8; 32];
        one[31] = 1;
        let key = AttestationKey::from_bytes(&one).unwrap();
        assert_eq!(
            key.address().to_string(),
            "0x7e5f4552091a69125d5dfcb7b8c2659029395bdf"
        );
        assert_eq!(
            AttestationKey::from_bytes(&[0; 32]).unwrap_err(),
            InvalidKey
        );
    }
}
