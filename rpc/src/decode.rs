//! Checking a raw signed transaction (`eth_sendRawTransaction`'s parameter) before it is
//! sequenced. Pure functions: the bench in `benches/decode.rs` measures them.

use crate::error::TxError;
use alloy_consensus::transaction::SignerRecoverable;
use alloy_consensus::{Transaction, TxEnvelope};
use alloy_eips::eip2718::{Decodable2718, Encodable2718};
use alloy_primitives::{keccak256, Address, B256};

/// EIP-2718 type byte of blob transactions.
const EIP4844_TYPE: u8 = 3;

/// What a transaction must satisfy to be sequenced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxPolicy {
    /// Largest raw envelope, in bytes.
    pub max_transaction_size: usize,
    /// The chain ids the committee sequences.
    pub chain_ids: Vec<u64>,
    /// Refuse transactions whose signature recovers no sender (EIP-2 low-s included).
    pub recover_senders: bool,
}

/// A transaction that passed every check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckedTransaction {
    /// `keccak256` of the raw envelope: the Ethereum transaction hash.
    pub hash: B256,
    pub chain_id: u64,
    /// `None` when the policy does not recover senders.
    pub sender: Option<Address>,
}

/// Decodes `0x`-prefixed (or bare) hex, refusing it before allocating if it would decode to
/// more than `max_len` bytes.
pub fn decode_hex(text: &str, max_len: usize) -> Result<Vec<u8>, TxError> {
    let digits = text.strip_prefix("0x").unwrap_or(text);
    if digits.len() / 2 > max_len {
        return Err(TxError::TooLarge {
            size: digits.len() / 2,
            limit: max_len,
        });
    }
    hex::decode(digits).map_err(|e| TxError::InvalidHex(e.to_string()))
}

/// Checks a raw EIP-2718 envelope (legacy, EIP-2930, EIP-1559 or EIP-7702): within the size
/// limit, decodes with nothing left over, is the canonical encoding of what it decodes to
/// (so its hash names exactly these bytes), carries a chain id the committee sequences and,
/// if the policy says so, a signature that recovers a sender. Blob transactions are refused.
pub fn check_transaction(raw: &[u8], policy: &TxPolicy) -> Result<CheckedTransaction, TxError> {
    if raw.is_empty() {
        return Err(TxError::Empty);
    }
    if raw.len() > policy.max_transaction_size {
        return Err(TxError::TooLarge {
            size: raw.len(),
            limit: policy.max_transaction_size,
        });
    }
    // Before decoding, so that even a malformed blob transaction gets the clear message.
    if raw[0] == EIP4844_TYPE {
        return Err(TxError::BlobTransaction);
    }
    let envelope = decode_exact(raw)?;
    if envelope.is_eip4844() {
        return Err(TxError::BlobTransaction);
    }
    let chain_id = envelope.chain_id().ok_or(TxError::MissingChainId)?;
    if !policy.chain_ids.contains(&chain_id) {
        return Err(TxError::UnknownChainId(chain_id));
    }
    let sender = if policy.recover_senders {
        Some(
            envelope
                .recover_signer()
                .map_err(|_| TxError::InvalidSignature)?,
        )
    } else {
        None
    };
    Ok(CheckedTransaction {
        hash: keccak256(raw),
        chain_id,
        sender,
    })
}

/// The hash and chain id of a committed transaction, for indexing; `None` for bytes that
/// are not a canonical Ethereum transaction with a chain id (e.g. the raw TCP ingress's).
pub fn hash_and_chain_id(raw: &[u8]) -> Option<(B256, u64)> {
    let envelope = decode_exact(raw).ok()?;
    Some((keccak256(raw), envelope.chain_id()?))
}

/// [`hash_and_chain_id`] of each of `raws`, in order; the hashes four at a time where the CPU
/// allows (`weft_attest::keccak4`). Only what decodes is hashed: bytes that are no
/// transaction (the raw TCP ingress's, a rollup's own format) are not indexed, and hashing
/// them was a third of a node's Keccak work under such load.
pub fn hashes_and_chain_ids<T: AsRef<[u8]>>(raws: &[T]) -> Vec<Option<(B256, u64)>> {
    let chain_ids: Vec<Option<u64>> = raws
        .iter()
        .map(|raw| decode_exact(raw.as_ref()).ok()?.chain_id())
        .collect();
    let decoded: Vec<&[u8]> = raws
        .iter()
        .zip(&chain_ids)
        .filter(|(_, chain_id)| chain_id.is_some())
        .map(|(raw, _)| raw.as_ref())
        .collect();
    let mut hashes = vec![B256::ZERO; decoded.len()];
    weft_attest::keccak4::keccak256_many(&decoded, &mut hashes);
    let mut hashes = hashes.into_iter();
    chain_ids
        .into_iter()
        .map(|chain_id| {
            let chain_id = chain_id?;
            Some((hashes.next()?, chain_id))
        })
        .collect()
}

fn decode_exact(raw: &[u8]) -> Result<TxEnvelope, TxError> {
    let mut rest = raw;
    let envelope =
        TxEnvelope::decode_2718(&mut rest).map_err(|e| TxError::Decode(e.to_string()))?;
    if !rest.is_empty() {
        return Err(TxError::TrailingBytes(rest.len()));
    }
    if envelope.encode_2718_len() != raw.len() || envelope.encoded_2718() != raw {
        return Err(TxError::NonCanonical);
    }
    Ok(envelope)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_bounded_before_it_is_decoded() {
        assert_eq!(decode_hex("0x0102", 2), Ok(vec![1, 2]));
        assert_eq!(decode_hex("0102", 2), Ok(vec![1, 2]));
        assert_eq!(
            decode_hex("0x010203", 2),
            Err(TxError::TooLarge { size: 3, limit: 2 })
        );
        assert!(matches!(decode_hex("0x0g", 2), Err(TxError::InvalidHex(_))));
        assert!(matches!(
            decode_hex("0x012", 2),
            Err(TxError::InvalidHex(_))
        ));
    }

    #[test]
    fn garbage_is_refused() {
        let policy = TxPolicy {
            max_transaction_size: 1000,
            chain_ids: vec![1],
            recover_senders: true,
        };
        assert_eq!(check_transaction(&[], &policy), Err(TxError::Empty));
        assert_eq!(
            check_transaction(&[3, 0xc0], &policy),
            Err(TxError::BlobTransaction)
        );
        assert!(matches!(
            check_transaction(&[2, 0xc0], &policy),
            Err(TxError::Decode(_))
        ));
        assert!(matches!(
            check_transaction(&[0xff; 10], &policy),
            Err(TxError::Decode(_))
        ));
        assert_eq!(hash_and_chain_id(&[1, 0, 0, 0, 7]), None);
    }
}
