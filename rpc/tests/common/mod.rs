//! Signed transactions of every accepted type, from fixed keys, for the tests and the bench.
#![allow(dead_code)]

use alloy_consensus::{
    SignableTransaction, Signed, TxEip1559, TxEip2930, TxEip7702, TxEnvelope, TxLegacy,
};
use alloy_eips::eip2718::Encodable2718;
use alloy_eips::eip7702::{Authorization, SignedAuthorization};
use alloy_primitives::{Address, Signature, TxKind, U256};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;

/// The `i`-th test account (private key `i + 1`).
pub fn signer(i: u64) -> PrivateKeySigner {
    let mut key = [0u8; 32];
    key[24..].copy_from_slice(&(i + 1).to_be_bytes());
    PrivateKeySigner::from_slice(&key).expect("a valid secp256k1 key")
}

pub fn recipient() -> Address {
    Address::repeat_byte(0x42)
}

pub fn eip1559(chain_id: u64, nonce: u64) -> TxEip1559 {
    TxEip1559 {
        chain_id,
        nonce,
        gas_limit: 21_000,
        max_fee_per_gas: 2_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        to: TxKind::Call(recipient()),
        value: U256::from(1_000u64),
        ..Default::default()
    }
}

/// Signs `tx` with account `account` and returns its envelope.
pub fn sign<T>(tx: T, account: u64) -> TxEnvelope
where
    T: SignableTransaction<Signature>,
    TxEnvelope: From<Signed<T>>,
{
    let signature = signer(account)
        .sign_hash_sync(&tx.signature_hash())
        .expect("signing with a local key");
    tx.into_signed(signature).into()
}

/// A signed EIP-1559 transfer, as raw envelope bytes.
pub fn transfer(chain_id: u64, account: u64, nonce: u64) -> Vec<u8> {
    sign(eip1559(chain_id, nonce), account).encoded_2718()
}

/// A legacy transfer; `chain_id: None` is a pre-EIP-155 one.
pub fn legacy(chain_id: Option<u64>, nonce: u64) -> Vec<u8> {
    let tx = TxLegacy {
        chain_id,
        nonce,
        gas_price: 1_000_000_000,
        gas_limit: 21_000,
        to: TxKind::Call(recipient()),
        value: U256::from(5u64),
        ..Default::default()
    };
    sign(tx, 0).encoded_2718()
}

pub fn eip2930(chain_id: u64, nonce: u64) -> Vec<u8> {
    let tx = TxEip2930 {
        chain_id,
        nonce,
        gas_price: 1_000_000_000,
        gas_limit: 30_000,
        to: TxKind::Call(recipient()),
        value: U256::from(7u64),
        ..Default::default()
    };
    sign(tx, 1).encoded_2718()
}

pub fn eip7702(chain_id: u64, nonce: u64) -> Vec<u8> {
    let authorization = Authorization {
        chain_id: U256::from(chain_id),
        address: recipient(),
        nonce: 0,
    };
    let signature = signer(3)
        .sign_hash_sync(&authorization.signature_hash())
        .expect("signing with a local key");
    let signed = SignedAuthorization::new_unchecked(
        authorization,
        signature.v() as u8,
        signature.r(),
        signature.s(),
    );
    let tx = TxEip7702 {
        chain_id,
        nonce,
        gas_limit: 60_000,
        max_fee_per_gas: 2_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        to: recipient(),
        authorization_list: vec![signed],
        ..Default::default()
    };
    sign(tx, 2).encoded_2718()
}

/// An EIP-1559 transfer whose signature is replaced by `signature` (the hash is recomputed, so
/// the envelope is well formed).
pub fn with_signature(chain_id: u64, nonce: u64, signature: Signature) -> Vec<u8> {
    let envelope: TxEnvelope = eip1559(chain_id, nonce).into_signed(signature).into();
    envelope.encoded_2718()
}

/// An in-memory committed log for the stream: entries pushed in order, pruned from the front.
#[derive(Default)]
pub struct MemoryLog {
    /// (oldest retained index, entries from it on).
    entries: std::sync::Mutex<(u64, Vec<weft_rpc::StreamEntry>)>,
    next: tokio::sync::watch::Sender<u64>,
}

impl MemoryLog {
    /// Appends a sub-DAG of `transactions` (its leader round and timestamp follow its index).
    pub fn push(&self, transactions: Vec<bytes::Bytes>) {
        let mut guard = self.entries.lock().unwrap();
        let index = guard.0 + guard.1.len() as u64;
        guard.1.push(weft_rpc::StreamEntry {
            index,
            leader_round: 2 * index + 2,
            timestamp: 1_000 * index,
            transactions,
        });
        self.next.send_replace(index + 1);
    }

    /// Forgets every entry below `index`.
    pub fn prune(&self, index: u64) {
        let mut guard = self.entries.lock().unwrap();
        let drop = index.saturating_sub(guard.0).min(guard.1.len() as u64);
        guard.1.drain(..drop as usize);
        guard.0 += drop;
    }
}

impl weft_rpc::SubDagSource for MemoryLog {
    fn bounds(&self) -> Result<(u64, u64), String> {
        let guard = self.entries.lock().unwrap();
        Ok((guard.0, guard.0 + guard.1.len() as u64))
    }

    fn read(&self, from: u64, max: usize) -> Result<Vec<weft_rpc::StreamEntry>, String> {
        let guard = self.entries.lock().unwrap();
        let skip = from.saturating_sub(guard.0) as usize;
        Ok(guard.1.iter().skip(skip).take(max).cloned().collect())
    }

    fn committed(&self, index: u64) -> futures::future::BoxFuture<'static, ()> {
        let mut rx = self.next.subscribe();
        Box::pin(async move {
            let _ = rx.wait_for(|next| *next > index).await;
        })
    }
}

/// What a stream consumer keeps of a complete sub-DAG: index, leader round, timestamp, and
/// each transaction's (index in the sub-DAG, chain id, raw bytes).
pub type Seen = (u64, u64, u64, Vec<(u64, Option<u64>, Vec<u8>)>);

/// Reads `weft_subDag` parts until sub-DAG `until` is complete or `budget` parts are read
/// (each within `guard`); returns the complete sub-DAGs in order, dropping a partial one.
pub async fn read_sub_dags(
    sub: &mut jsonrpsee::core::client::Subscription<weft_rpc::SubDagPart>,
    until: u64,
    budget: usize,
    guard: std::time::Duration,
) -> Vec<Seen> {
    let mut done = Vec::new();
    let mut current: Option<Seen> = None;
    for _ in 0..budget {
        let p = tokio::time::timeout(guard, sub.next())
            .await
            .expect("a part within the guard")
            .expect("the subscription is open")
            .expect("a well-formed part");
        let seen = current.get_or_insert_with(|| (p.index, p.leader_round, p.timestamp, vec![]));
        assert_eq!(seen.0, p.index, "a sub-DAG's parts come together");
        seen.3.extend(
            p.transactions
                .iter()
                .map(|t| (t.tx_index, t.chain_id, t.raw.to_vec())),
        );
        if p.last {
            done.extend(current.take());
            if p.index >= until {
                break;
            }
        }
    }
    done
}
