//! Transaction leaves computed ahead of the commit. A sub-DAG's attestation needs the
//! keccak256 hash of each of its transactions and the Merkle leaf node over it: three
//! keccak permutations and more for a 512-byte transaction, about two thirds of the
//! attester's work, and all of it on the way from commit to pre-confirmation. A batch's
//! transactions are known long before then: its certificate reaches consensus at least a
//! round before the leader that orders it is committed. So the consensus actor hands each
//! certificate's batch digests to the [`LeafPrecomputer`], which hashes the stored batch into
//! the [`LeafCache`]; the attester takes them from there and hashes only what is missing
//! (a batch fetched late, or one evicted). The cache changes when the work is done, never
//! its result: every leaf is a function of the batch bytes.

use bytes::Bytes;
use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use weft_attest::keccak4::keccak256_many;
use weft_attest::leaf::chain_id_of;
use weft_attest::merkle::leaf_hashes;
use weft_attest::{Leaf, Tree};
use weft_storage::Map;
use weft_types::codec::decode_message;
use weft_types::{Batch, BatchDigest, Transaction};

/// Leaves the cache holds at most (about 80 bytes each): over two seconds of 200k tx/s.
pub const MAX_CACHED_LEAVES: usize = 1 << 19;

/// Certificates' payloads waiting for the precomputer; more are dropped (the attester hashes
/// those itself).
pub const PRECOMPUTE_CHANNEL_CAPACITY: usize = 1_024;

/// One batch's transactions as the attester's tree takes them.
#[derive(Debug, PartialEq, Eq)]
pub struct BatchLeaves {
    pub leaves: Vec<Leaf>,
    /// [`leaf_hash`] of each leaf's hash: the tree's first level.
    pub nodes: Vec<alloy::primitives::B256>,
}

impl BatchLeaves {
    pub fn of(transactions: &[Transaction]) -> Self {
        let mut hashes = vec![alloy::primitives::B256::ZERO; transactions.len()];
        keccak256_many(transactions, &mut hashes);
        let nodes = leaf_hashes(&hashes);
        let leaves = transactions
            .iter()
            .zip(hashes)
            .map(|(t, hash)| Leaf {
                hash,
                chain_id: chain_id_of(t),
            })
            .collect();
        Self { leaves, nodes }
    }
}

enum Entry {
    Ready(Arc<BatchLeaves>),
    /// The attester has read this batch: hashing it now would be wasted (and, on a loaded
    /// machine, would make the precomputer fall further behind).
    Taken,
}

impl Entry {
    /// What it counts against the bound.
    fn weight(&self) -> usize {
        match self {
            Entry::Ready(leaves) => leaves.leaves.len().max(1),
            Entry::Taken => 1,
        }
    }
}

#[derive(Default)]
struct Inner {
    map: HashMap<BatchDigest, Entry>,
    /// Insertion order, for eviction.
    order: VecDeque<BatchDigest>,
    /// The weight of the entries in `map`.
    leaves: usize,
}

impl Inner {
    /// Adds `entry` at `digest`, which is not there, as the newest; evicts the oldest entries
    /// past `max`.
    fn put(&mut self, digest: BatchDigest, entry: Entry, max: usize) {
        while self.leaves + entry.weight() > max {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            if let Some(evicted) = self.map.remove(&oldest) {
                self.leaves -= evicted.weight();
            }
        }
        self.leaves += entry.weight();
        self.order.push_back(digest);
        self.map.insert(digest, entry);
    }
}

/// Batches' leaves by digest, bounded by [`MAX_CACHED_LEAVES`] (oldest evicted first); cheap
/// to clone.
#[derive(Clone)]
pub struct LeafCache {
    inner: Arc<Mutex<Inner>>,
    max_leaves: usize,
}

impl LeafCache {
    pub fn new(max_leaves: usize) -> Self {
        Self {
            inner: Arc::default(),
            max_leaves,
        }
    }

    /// The leaves of `digest` if they are computed, marking the batch read either way so
    /// that the precomputer skips it from now on.
    pub fn take(&self, digest: &BatchDigest) -> Option<Arc<BatchLeaves>> {
        let mut inner = self.inner.lock();
        match inner.map.get_mut(digest) {
            // Marked in place: it keeps its age.
            Some(entry) => {
                let weight = entry.weight();
                let Entry::Ready(leaves) = std::mem::replace(entry, Entry::Taken) else {
                    return None;
                };
                inner.leaves -= weight - 1;
                Some(leaves)
            }
            None => {
                inner.put(*digest, Entry::Taken, self.max_leaves);
                None
            }
        }
    }

    /// Whether the precomputer has nothing to do for `digest`.
    fn known(&self, digest: &BatchDigest) -> bool {
        self.inner.lock().map.contains_key(digest)
    }

    fn insert(&self, digest: BatchDigest, leaves: BatchLeaves) {
        let mut inner = self.inner.lock();
        if leaves.leaves.len() > self.max_leaves || inner.map.contains_key(&digest) {
            return;
        }
        inner.put(digest, Entry::Ready(Arc::new(leaves)), self.max_leaves);
    }

    /// Leaves held now (an entry without leaves counts as one).
    pub fn len(&self) -> usize {
        self.inner.lock().leaves
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Sub-DAG trees kept for pre-confirmations: the attester builds each one it signs, and
/// clients ask about recent transactions, many of them in the same sub-DAG.
#[derive(Clone, Default)]
pub struct RecentTrees(Arc<Mutex<VecDeque<IndexedTree>>>);

/// A sub-DAG's index and its tree.
type IndexedTree = (u64, Arc<Tree>);

impl RecentTrees {
    pub const KEPT: usize = 32;

    pub fn get(&self, index: u64) -> Option<Arc<Tree>> {
        let trees = self.0.lock();
        trees
            .iter()
            .find(|(i, _)| *i == index)
            .map(|(_, t)| t.clone())
    }

    pub fn insert(&self, index: u64, tree: Arc<Tree>) {
        let mut trees = self.0.lock();
        if trees.iter().any(|(i, _)| *i == index) {
            return;
        }
        if trees.len() >= Self::KEPT {
            trees.pop_front();
        }
        trees.push_back((index, tree));
    }
}

/// Hashes the batches of certificates as consensus receives them.
pub struct LeafPrecomputer {
    batches: Map<BatchDigest, Bytes>,
    cache: LeafCache,
    rx: mpsc::Receiver<Vec<BatchDigest>>,
}

impl LeafPrecomputer {
    pub fn spawn(
        batches: Map<BatchDigest, Bytes>,
        cache: LeafCache,
        rx: mpsc::Receiver<Vec<BatchDigest>>,
    ) -> JoinHandle<()> {
        tokio::spawn(Self { batches, cache, rx }.run())
    }

    async fn run(mut self) {
        while let Some(mut digests) = self.rx.recv().await {
            while let Ok(more) = self.rx.try_recv() {
                digests.extend(more);
            }
            let (batches, cache) = (self.batches.clone(), self.cache.clone());
            // Hashing is CPU: one blocking task at a time, so that it never takes more than
            // a core from ordering.
            if tokio::task::spawn_blocking(move || precompute(&batches, &cache, digests))
                .await
                .is_err()
            {
                return;
            }
        }
    }
}

/// Hashes the stored batches among `digests` into `cache`. A batch not stored yet, or that
/// does not decode, is left to the attester, which reads it from the log (and reports it).
fn precompute(batches: &Map<BatchDigest, Bytes>, cache: &LeafCache, digests: Vec<BatchDigest>) {
    for digest in digests {
        if cache.known(&digest) {
            continue;
        }
        let Ok(Some(bytes)) = batches.get(&digest) else {
            continue;
        };
        if let Ok(batch) = decode_message::<Batch>(bytes, usize::MAX) {
            cache.insert(digest, BatchLeaves::of(&batch.transactions));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(seed: u8, n: usize) -> BatchLeaves {
        let txs: Vec<Transaction> = (0..n)
            .map(|i| Bytes::from(vec![seed, i as u8, 0x55]))
            .collect();
        BatchLeaves::of(&txs)
    }

    #[test]
    fn cache_is_bounded_and_evicts_the_oldest_first() {
        let cache = LeafCache::new(10);
        let d = |i: u8| BatchDigest::of_encoded(&[i]);
        cache.insert(d(1), batch(1, 4));
        cache.insert(d(2), batch(2, 4));
        assert_eq!(cache.len(), 8);
        // Two more leaves than room: the oldest batch goes.
        cache.insert(d(3), batch(3, 4));
        assert_eq!(cache.len(), 8);
        assert!(cache.take(&d(1)).is_none(), "the oldest was evicted");
        assert_eq!(cache.take(&d(2)).as_deref(), Some(&batch(2, 4)));
        assert!(cache.take(&d(2)).is_none(), "taken once");
        // Two read marks and batch 3.
        assert_eq!(cache.len(), 6);
        // A batch larger than the whole cache is not kept, and evicts nothing.
        cache.insert(d(4), batch(4, 11));
        assert!(!cache.known(&d(4)));
        assert_eq!(cache.take(&d(3)).as_deref(), Some(&batch(3, 4)));
        assert_eq!(cache.len(), 3);
    }

    #[test]
    fn a_batch_the_attester_read_is_never_hashed_again() {
        let cache = LeafCache::new(100);
        let d = BatchDigest::of_encoded(b"read");
        assert!(cache.take(&d).is_none(), "not computed yet");
        assert!(cache.known(&d), "the precomputer skips it");
        cache.insert(d, batch(1, 4));
        assert!(cache.take(&d).is_none(), "a late insert is dropped");
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn read_marks_stay_within_the_bound() {
        let cache = LeafCache::new(1_000);
        for i in 0..10_000u32 {
            let digest = BatchDigest::of_encoded(&i.to_le_bytes());
            cache.insert(digest, batch(i as u8, 1));
            assert!(cache.take(&digest).is_some());
        }
        let inner = cache.inner.lock();
        assert_eq!(inner.map.len(), 1_000);
        assert_eq!(inner.order.len(), 1_000);
    }
}
