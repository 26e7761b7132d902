//! The JSON-RPC ingress's load: Ethereum transactions signed before a run starts.
//!
//! Each is an EIP-1559 transfer from one of many accounts (nonces in order per account), its
//! calldata padded with zeros so that the raw envelope is exactly the benchmark's transaction
//! size, so that the parser's bytes-per-transaction arithmetic holds for both ingresses.
//! Signing uses libsecp256k1 (`secp256k1`), the library the ingress recovers senders with;
//! threads sign disjoint slices, and the result is the same whatever their number.

use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{keccak256, Address, Bytes, Signature, TxKind, B256, U256};
use secp256k1::{Message, Secp256k1, SecretKey, SignOnly};

/// Recipient of every transfer.
const RECIPIENT: Address = Address::repeat_byte(0x42);
/// Gas of a plain transfer, plus 4 per zero calldata byte (what an EVM would charge).
const TRANSFER_GAS: u64 = 21_000;
const ZERO_BYTE_GAS: u64 = 4;
/// Re-signings before giving up on an exact size. The envelope's length moves with the RLP
/// headers' lengths and with the signature's leading zero bytes; signatures are
/// deterministic (RFC 6979), so each attempt also changes the transferred value (one byte
/// whatever the attempt), or one padding could give a short signature for ever.
const SIZE_ATTEMPTS: u64 = 16;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LoadError {
    #[error("an Ethereum transfer takes at least {minimum} B; --size {size} is too small")]
    TooSmall { size: usize, minimum: usize },
    #[error("no padding gives a {size} B envelope")]
    NoExactSize { size: usize },
    #[error("at least one account is needed")]
    NoAccounts,
}

/// What the load is made of.
#[derive(Clone, Copy, Debug)]
pub struct LoadSpec {
    /// Prefixes every account key, so that clients sign from disjoint accounts.
    pub client_id: u64,
    pub accounts: u64,
    pub chain_id: u64,
    /// Raw envelope size in bytes.
    pub size: usize,
}

/// One signed transaction and its Ethereum hash (keccak of the raw envelope).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedTx {
    pub raw: Vec<u8>,
    pub hash: B256,
}

/// The private key of account `account` of client `client` (never zero, far below the
/// curve order).
pub fn account_key(client: u64, account: u64) -> SecretKey {
    let mut key = [0u8; 32];
    key[8..16].copy_from_slice(&(client + 1).to_be_bytes());
    key[16..24].copy_from_slice(&(account + 1).to_be_bytes());
    key[31] = 1;
    SecretKey::from_byte_array(&key).expect("a non-zero key below the curve order")
}

/// The `k`-th transaction of the load: from account `k % accounts`, nonce `k / accounts`.
pub fn sign_one(
    spec: &LoadSpec,
    secp: &Secp256k1<SignOnly>,
    k: u64,
) -> Result<SignedTx, LoadError> {
    if spec.accounts == 0 {
        return Err(LoadError::NoAccounts);
    }
    let key = account_key(spec.client_id, k % spec.accounts);
    let nonce = k / spec.accounts;
    let minimum = envelope(spec, secp, &key, nonce, 0, 1).len();
    if spec.size < minimum {
        return Err(LoadError::TooSmall {
            size: spec.size,
            minimum,
        });
    }
    let mut padding = spec.size - minimum;
    for attempt in 0..SIZE_ATTEMPTS {
        let raw = envelope(spec, secp, &key, nonce, padding, 1 + attempt);
        if raw.len() == spec.size {
            let hash = keccak256(&raw);
            return Ok(SignedTx { raw, hash });
        }
        let delta = spec.size as i64 - raw.len() as i64;
        padding = usize::try_from(padding as i64 + delta).unwrap_or(0);
    }
    Err(LoadError::NoExactSize { size: spec.size })
}

/// Transactions `0..count` of the load, signed on `threads` threads.
pub fn sign_all(spec: &LoadSpec, count: u64, threads: usize) -> Result<Vec<SignedTx>, LoadError> {
    let threads = threads.max(1) as u64;
    let per_thread = count.div_ceil(threads).max(1);
    let parts: Vec<Result<Vec<SignedTx>, LoadError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let range = (t * per_thread).min(count)..((t + 1) * per_thread).min(count);
                scope.spawn(move || {
                    let secp = Secp256k1::signing_only();
                    range.map(|k| sign_one(spec, &secp, k)).collect()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a signing thread does not panic"))
            .collect()
    });
    let mut out = Vec::with_capacity(count as usize);
    for part in parts {
        out.extend(part?);
    }
    Ok(out)
}

fn envelope(
    spec: &LoadSpec,
    secp: &Secp256k1<SignOnly>,
    key: &SecretKey,
    nonce: u64,
    padding: usize,
    value: u64,
) -> Vec<u8> {
    let tx = TxEip1559 {
        chain_id: spec.chain_id,
        nonce,
        gas_limit: TRANSFER_GAS + ZERO_BYTE_GAS * padding as u64,
        max_fee_per_gas: 2_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        to: TxKind::Call(RECIPIENT),
        value: U256::from(value),
        input: Bytes::from(vec![0u8; padding]),
        ..Default::default()
    };
    let digest = Message::from_digest(tx.signature_hash().0);
    let (id, compact) = secp
        .sign_ecdsa_recoverable(&digest, key)
        .serialize_compact();
    let signature = Signature::new(
        U256::from_be_slice(&compact[..32]),
        U256::from_be_slice(&compact[32..]),
        i32::from(id) != 0,
    );
    TxEnvelope::from(tx.into_signed(signature)).encoded_2718()
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_rpc::decode::{check_transaction, TxPolicy};

    fn spec(size: usize) -> LoadSpec {
        LoadSpec {
            client_id: 3,
            accounts: 5,
            chain_id: 1337,
            size,
        }
    }

    /// Every transaction has the exact size asked for and passes the ingress's own checks,
    /// sender recovery included, with the hash the ingress computes; accounts rotate and each
    /// account's nonces count up.
    #[test]
    fn transactions_are_exactly_sized_and_accepted_by_the_ingress() {
        let policy = TxPolicy {
            max_transaction_size: 4096,
            chain_ids: vec![1337],
            recover_senders: true,
        };
        for size in [200, 512, 1024] {
            let txs = sign_all(&spec(size), 12, 3).expect("signing");
            assert_eq!(txs.len(), 12);
            let mut senders = Vec::new();
            for tx in &txs {
                assert_eq!(tx.raw.len(), size);
                let checked = check_transaction(&tx.raw, &policy).expect("accepted");
                assert_eq!(checked.hash, tx.hash);
                senders.push(checked.sender.expect("recovered"));
            }
            assert_eq!(
                senders[0], senders[5],
                "account 0 signs transactions 0 and 5"
            );
            assert_ne!(senders[0], senders[1]);
            let distinct: std::collections::HashSet<_> = txs.iter().map(|t| t.hash).collect();
            assert_eq!(distinct.len(), 12, "no two transactions are equal");
        }
    }

    /// The load is a function of its spec: the thread count changes nothing, and two clients
    /// sign from different accounts.
    #[test]
    fn the_load_does_not_depend_on_threads_and_clients_differ() {
        let one = sign_all(&spec(512), 7, 1).unwrap();
        assert_eq!(one, sign_all(&spec(512), 7, 4).unwrap());
        let other = LoadSpec {
            client_id: 4,
            ..spec(512)
        };
        assert_ne!(one[0].hash, sign_all(&other, 1, 1).unwrap()[0].hash);
    }

    #[test]
    fn a_size_below_a_plain_transfer_is_refused() {
        let secp = Secp256k1::signing_only();
        assert!(matches!(
            sign_one(&spec(50), &secp, 0),
            Err(LoadError::TooSmall { size: 50, .. })
        ));
        let none = LoadSpec {
            accounts: 0,
            ..spec(512)
        };
        assert_eq!(sign_one(&none, &secp, 0), Err(LoadError::NoAccounts));
    }
}
