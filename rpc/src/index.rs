//! Where committed transactions are, by hash: what `weft_getTransactionPosition` reads.

use crate::decode::hashes_and_chain_ids;
use alloy_primitives::B256;
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::sync::RwLock;

/// A committed transaction's place in the ordered stream: the `tx_index`-th transaction of
/// sub-DAG `sub_dag_index`, counting through its batches in order (as the committed log does).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Position {
    pub sub_dag_index: u64,
    pub tx_index: u64,
    pub chain_id: u64,
}

/// The committed sequence as the ingress sees it; the node implements it from its committed
/// log.
pub trait TransactionIndex: Send + Sync + 'static {
    /// Where the transaction with this hash was first committed, if it was and the index
    /// still holds it.
    fn position(&self, hash: &B256) -> Option<Position>;
    /// The index the next committed sub-DAG will get.
    fn next_sub_dag_index(&self) -> u64;
}

/// An in-memory [`TransactionIndex`] of the Ethereum transactions of the last `retention`
/// sub-DAGs, fed in order by whoever follows the committed log. It holds hashes and positions
/// only (about 80 bytes a transaction); bytes that are not an Ethereum transaction still count
/// in `tx_index` but are not indexed.
pub struct MemoryIndex {
    retention: u64,
    inner: RwLock<Inner>,
}

#[derive(Default)]
struct Inner {
    positions: HashMap<B256, Position>,
    /// The hashes each retained sub-DAG added, oldest first, for eviction.
    sub_dags: VecDeque<(u64, Vec<B256>)>,
    next: u64,
}

impl MemoryIndex {
    /// Keeps the transactions of the last `retention` sub-DAGs (at least one).
    pub fn new(retention: u64) -> Self {
        Self {
            retention: retention.max(1),
            inner: RwLock::default(),
        }
    }

    /// The sub-DAG the index expects next (`0` when empty); the follower resumes from it.
    pub fn next_expected(&self) -> u64 {
        self.read().next
    }

    /// Indexes committed sub-DAG `sub_dag_index` with its transactions in order. Sub-DAGs
    /// come in increasing order (gaps allowed: the log's retention); one already indexed is
    /// ignored. A hash committed twice keeps its first position.
    pub fn record<T: AsRef<[u8]>>(&self, sub_dag_index: u64, transactions: &[T]) {
        if sub_dag_index < self.next_expected() {
            return;
        }
        // Decoding is the cost; do it outside the lock.
        let decoded: Vec<(u64, B256, u64)> = hashes_and_chain_ids(transactions)
            .into_iter()
            .enumerate()
            .filter_map(|(i, d)| d.map(|(hash, chain)| (i as u64, hash, chain)))
            .collect();
        let mut inner = self.write();
        let mut added = Vec::with_capacity(decoded.len());
        for (tx_index, hash, chain_id) in decoded {
            inner.positions.entry(hash).or_insert_with(|| {
                added.push(hash);
                Position {
                    sub_dag_index,
                    tx_index,
                    chain_id,
                }
            });
        }
        inner.sub_dags.push_back((sub_dag_index, added));
        inner.next = sub_dag_index + 1;
        let oldest_kept = inner.next.saturating_sub(self.retention);
        while inner
            .sub_dags
            .front()
            .is_some_and(|(index, _)| *index < oldest_kept)
        {
            if let Some((_, hashes)) = inner.sub_dags.pop_front() {
                for hash in hashes {
                    inner.positions.remove(&hash);
                }
            }
        }
    }

    /// Transactions indexed.
    pub fn len(&self) -> usize {
        self.read().positions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    // A panic while holding the lock leaves consistent data (each update is one insert or
    // remove), so a poisoned lock is still usable.
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }
}

impl TransactionIndex for MemoryIndex {
    fn position(&self, hash: &B256) -> Option<Position> {
        self.read().positions.get(hash).copied()
    }

    fn next_sub_dag_index(&self) -> u64 {
        self.next_expected()
    }
}
