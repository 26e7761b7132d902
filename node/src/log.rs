//! The committed log: sub-DAG index → the batches it ordered, in order. Written by the
//! executor in the same atomic write as the consensus state that produced it, so after any
//! crash the log and consensus agree: nothing is output twice and nothing is skipped.
//!
//! A record holds the batches' digests, not copies: the batches stay where the workers stored
//! them (copying every batch again cost more than the rest of the worker path), pinned in
//! [`weft_worker::columns::COMMITTED_BATCHES`] so that garbage collection leaves them to the log's retention.
//! Readers get [`CommittedEntry`]s with the batches resolved.
//!
//! Transaction `(sub_dag_index, tx_index)` is the `tx_index`-th transaction of the entry,
//! counting through its batches in order.

use bytes::{Bytes, BytesMut};
use std::sync::Arc;
use tokio::sync::watch;
use weft_storage::{Map, Store, StoreError, StoreResult};
use weft_types::codec::{decode_message, put_vec, vec_len, Decode, DecodeError, Encode, Reader};
use weft_types::{Batch, BatchDigest, Round, Transaction};

/// One committed sub-DAG as the log stores it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommittedRecord {
    pub index: u64,
    pub leader_round: Round,
    /// The sub-DAG's consensus timestamp (ms since the UNIX epoch, never decreasing).
    pub timestamp: u64,
    /// The batches' digests, in output order.
    pub batches: Vec<BatchDigest>,
}

impl Encode for CommittedRecord {
    fn encode(&self, out: &mut BytesMut) {
        self.index.encode(out);
        self.leader_round.encode(out);
        self.timestamp.encode(out);
        put_vec(out, &self.batches);
    }
    fn encoded_len(&self) -> usize {
        24 + vec_len(&self.batches)
    }
}

impl Decode for CommittedRecord {
    const MIN_ENCODED_LEN: usize = 28;
    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(Self {
            index: r.u64("record.index")?,
            leader_round: r.u64("record.leader_round")?,
            timestamp: r.u64("record.timestamp")?,
            batches: r.vec("record.batches")?,
        })
    }
}

weft_storage::stored_as_message!(CommittedRecord);

/// One committed sub-DAG as readers get it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommittedEntry {
    pub index: u64,
    pub leader_round: Round,
    pub timestamp: u64,
    /// The batches' digests, in output order.
    pub digests: Vec<BatchDigest>,
    /// Each batch as its wire encoding (`Batch::seal()` bytes), in output order.
    pub batches: Vec<Bytes>,
}

impl CommittedEntry {
    /// The ordered transactions, sliced out of the batches without copying.
    pub fn transactions(&self) -> Result<Vec<Transaction>, DecodeError> {
        let mut out = Vec::new();
        for b in &self.batches {
            let batch: Batch = decode_message(b.clone(), usize::MAX)?;
            out.extend(batch.transactions);
        }
        Ok(out)
    }
}

/// Reads the committed log; cheap to clone.
#[derive(Clone)]
pub struct CommittedLog {
    records: Map<u64, CommittedRecord>,
    batches: Map<BatchDigest, Bytes>,
    /// Index the next entry will get (= number of sub-DAGs committed so far).
    next: Arc<watch::Sender<u64>>,
}

impl CommittedLog {
    pub fn open(store: &Store) -> StoreResult<Self> {
        let records: Map<u64, CommittedRecord> = store.map(crate::columns::COMMITTED_LOG);
        let next = records
            .last()?
            .map_or(0, |(index, _): (u64, CommittedRecord)| index + 1);
        Ok(Self {
            records,
            batches: store.map(weft_worker::columns::BATCHES),
            next: Arc::new(watch::channel(next).0),
        })
    }

    pub(crate) fn map(&self) -> &Map<u64, CommittedRecord> {
        &self.records
    }

    /// Called after entry `index` is durable.
    pub(crate) fn advance(&self, index: u64) {
        self.next.send_if_modified(|n| {
            let moved = index + 1 > *n;
            *n = (*n).max(index + 1);
            moved
        });
    }

    /// Index of the oldest retained entry, if any.
    pub fn first_index(&self) -> StoreResult<Option<u64>> {
        Ok(self
            .records
            .range(&0, &u64::MAX, 1)?
            .into_iter()
            .next()
            .map(|(index, _)| index))
    }

    /// Index the next committed sub-DAG will get.
    pub fn next_index(&self) -> u64 {
        *self.next.borrow()
    }

    /// Up to `max` retained entries from `from` on, in order. Entries older than the
    /// retention are gone: the first returned may then be later than `from`.
    ///
    /// A batch missing from the store (its bytes torn by a power loss) is an error naming it.
    pub fn read(&self, from: u64, max: usize) -> StoreResult<Vec<CommittedEntry>> {
        self.records
            .range(&from, &u64::MAX, max)?
            .into_iter()
            .map(|(_, record)| {
                Ok(CommittedEntry {
                    batches: self.batches(record.index, &record.batches)?,
                    index: record.index,
                    leader_round: record.leader_round,
                    timestamp: record.timestamp,
                    digests: record.batches,
                })
            })
            .collect()
    }

    /// The stored bytes of `digests`, batches of entry `index`, in order; a missing one is an
    /// error, as in [`Self::read`].
    pub fn batches(&self, index: u64, digests: &[BatchDigest]) -> StoreResult<Vec<Bytes>> {
        let batches = self.batches.multi_get(digests)?;
        digests
            .iter()
            .zip(batches)
            .map(|(digest, batch)| {
                batch.ok_or_else(|| StoreError::Corrupt {
                    column: "batches",
                    reason: format!("batch {digest} of committed sub-DAG {index} is missing"),
                })
            })
            .collect()
    }

    /// The stored records from `from` on, at most `max`, without their batches.
    pub fn records(&self, from: u64, max: usize) -> StoreResult<Vec<CommittedRecord>> {
        Ok(self
            .records
            .range(&from, &u64::MAX, max)?
            .into_iter()
            .map(|(_, r)| r)
            .collect())
    }

    /// Waits until entry `index` is committed.
    pub async fn wait_for(&self, index: u64) {
        let mut rx = self.next.subscribe();
        let _ = rx.wait_for(|next| *next > index).await;
    }
}
