//! Persistent storage on RocksDB: typed maps over column families, atomic write batches, and
//! `notify_read`, which waits until a key is written.
//!
//! # Durability (fsync) policy
//! Every write goes through RocksDB's write-ahead log before it returns, so it survives the
//! process being killed (`kill -9`) at any point. Whether it also survives a power loss depends on
//! [`Durability`]:
//! - [`Durability::Sync`]: the WAL is fsynced before the write returns. Used for what must never
//!   be forgotten once acted on: the vote record (an authority must not vote twice for one
//!   header round, invariant 1) and consensus state committed together with its output.
//! - [`Durability::Buffered`]: the WAL write stays in the OS page cache. Used for batches,
//!   headers and certificates, which peers hold too and can be re-fetched after a power loss.
//!
//! [`Store::sync`] fsyncs the WAL and is called on graceful shutdown.

mod keys;

pub use keys::Key;

use bytes::Bytes;
use parking_lot::Mutex;
use rocksdb::{ColumnFamilyDescriptor, Direction, IteratorMode, Options, WriteOptions, DB};
use std::collections::HashMap;
use std::marker::PhantomData;
use std::path::Path;
use std::sync::Arc;
use thiserror::Error;
use tokio::sync::oneshot;
use weft_types::codec::{decode_message, encode_message, Decode, Encode};

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("rocksdb: {0}")]
    Rocks(#[from] rocksdb::Error),
    #[error("corrupt entry in column {column}: {reason}")]
    Corrupt {
        column: &'static str,
        reason: String,
    },
    #[error("the store was closed")]
    Closed,
}

pub type StoreResult<T> = Result<T, StoreError>;

/// The column families. Adding one is backwards compatible: missing families are created.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Column {
    /// Batch digest → encoded batch, as received.
    Batches,
    /// Header digest → header.
    Headers,
    /// Certificate digest → certificate.
    Certificates,
    /// (round, author) → certificate digest: the DAG by round, for range fetches and GC.
    CertificatesByRound,
    /// Header author → the last (round, header digest) this authority voted for.
    Votes,
    /// Named consensus state records.
    Consensus,
    /// (batch digest, worker id) → round it was reported in: batches a primary knows are
    /// stored by its own workers, so headers carrying them can be voted for.
    Payload,
    /// Sub-DAG index → its ordered batches: the node's committed log, kept for a configured
    /// number of sub-DAGs regardless of the DAG's garbage collection.
    CommittedLog,
}

impl Column {
    pub const ALL: [Column; 8] = [
        Column::Batches,
        Column::Headers,
        Column::Certificates,
        Column::CertificatesByRound,
        Column::Votes,
        Column::Consensus,
        Column::Payload,
        Column::CommittedLog,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Column::Batches => "batches",
            Column::Headers => "headers",
            Column::Certificates => "certificates",
            Column::CertificatesByRound => "certificates_by_round",
            Column::Votes => "votes",
            Column::Consensus => "consensus",
            Column::Payload => "payload",
            Column::CommittedLog => "committed_log",
        }
    }
}

/// How a write is made durable; see the crate documentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    Buffered,
    Sync,
}

/// A value that can be stored.
pub trait Value: Sized {
    fn to_value(&self) -> Bytes;
    fn from_value(b: Bytes) -> Result<Self, String>;
}

/// Batches are stored as the bytes that were received and hashed, without re-encoding.
impl Value for Bytes {
    fn to_value(&self) -> Bytes {
        self.clone()
    }
    fn from_value(b: Bytes) -> Result<Self, String> {
        Ok(b)
    }
}

/// Implements [`Value`] through the versioned wire encoding.
#[macro_export]
macro_rules! stored_as_message {
    ($($t:ty),* $(,)?) => {$(
        impl $crate::Value for $t {
            fn to_value(&self) -> bytes::Bytes {
                weft_types::codec::encode_message(self)
            }
            fn from_value(b: bytes::Bytes) -> Result<Self, String> {
                weft_types::codec::decode_message(b, usize::MAX).map_err(|e| e.to_string())
            }
        }
    )*};
}
stored_as_message!(
    weft_types::Header,
    weft_types::Certificate,
    weft_types::Vote,
    weft_types::CertificateDigest,
    weft_types::HeaderDigest,
    u64
);

impl<A: Encode + Decode, B: Encode + Decode> Value for (A, B) {
    fn to_value(&self) -> Bytes {
        encode_message(self)
    }
    fn from_value(b: Bytes) -> Result<Self, String> {
        decode_message(b, usize::MAX).map_err(|e| e.to_string())
    }
}

type Waiters = HashMap<(Column, Vec<u8>), Vec<oneshot::Sender<Bytes>>>;

struct Inner {
    db: DB,
    /// Readers waiting for a key to be written, woken after the write is in the database.
    waiters: Mutex<Waiters>,
}

/// A handle to the database; cheap to clone and share between actors.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl Store {
    /// Opens (or creates) the store at `path`, with every column family of [`Column::ALL`].
    pub fn open(path: &Path) -> StoreResult<Self> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.increase_parallelism(2);
        opts.set_max_background_jobs(2);
        // Transactions are mostly incompressible; compression would only cost CPU.
        opts.set_compression_type(rocksdb::DBCompressionType::None);
        let cfs = Column::ALL
            .iter()
            .map(|c| ColumnFamilyDescriptor::new(c.name(), opts.clone()));
        let db = DB::open_cf_descriptors(&opts, path, cfs)?;
        Ok(Self {
            inner: Arc::new(Inner {
                db,
                waiters: Mutex::new(HashMap::new()),
            }),
        })
    }

    pub fn map<K: Key, V: Value>(&self, column: Column) -> Map<K, V> {
        Map {
            store: self.clone(),
            column,
            _types: PhantomData,
        }
    }

    /// Starts an atomic multi-key write.
    pub fn batch(&self) -> WriteBatch {
        WriteBatch {
            store: self.clone(),
            batch: rocksdb::WriteBatch::default(),
            written: Vec::new(),
        }
    }

    /// Flushes memtables and fsyncs the WAL: everything written so far survives power loss.
    pub fn sync(&self) -> StoreResult<()> {
        self.inner.db.flush_wal(true)?;
        for c in Column::ALL {
            self.inner.db.flush_cf(self.cf(c))?;
        }
        Ok(())
    }

    fn cf(&self, column: Column) -> &rocksdb::ColumnFamily {
        self.inner
            .db
            .cf_handle(column.name())
            .expect("every column family is created when the store is opened")
    }

    fn write(
        &self,
        batch: rocksdb::WriteBatch,
        durability: Durability,
        written: Vec<(Column, Vec<u8>, Bytes)>,
    ) -> StoreResult<()> {
        let mut opts = WriteOptions::default();
        opts.set_sync(durability == Durability::Sync);
        self.inner.db.write_opt(batch, &opts)?;
        if !written.is_empty() {
            let mut waiters = self.inner.waiters.lock();
            for (column, key, value) in written {
                if let Some(list) = waiters.remove(&(column, key)) {
                    for tx in list {
                        let _ = tx.send(value.clone());
                    }
                }
            }
        }
        Ok(())
    }
}

/// A typed view of one column family.
pub struct Map<K, V> {
    store: Store,
    column: Column,
    _types: PhantomData<fn(K, V)>,
}

impl<K, V> Clone for Map<K, V> {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
            column: self.column,
            _types: PhantomData,
        }
    }
}

impl<K: Key, V: Value> Map<K, V> {
    fn decode(&self, bytes: Bytes) -> StoreResult<V> {
        V::from_value(bytes).map_err(|reason| StoreError::Corrupt {
            column: self.column.name(),
            reason,
        })
    }

    fn decode_key(&self, bytes: &[u8]) -> StoreResult<K> {
        K::from_key(bytes).ok_or_else(|| StoreError::Corrupt {
            column: self.column.name(),
            reason: format!("bad key of {} bytes", bytes.len()),
        })
    }

    pub fn get(&self, key: &K) -> StoreResult<Option<V>> {
        let cf = self.store.cf(self.column);
        match self.store.inner.db.get_pinned_cf(cf, key.to_key())? {
            Some(v) => Ok(Some(self.decode(Bytes::copy_from_slice(&v))?)),
            None => Ok(None),
        }
    }

    pub fn contains(&self, key: &K) -> StoreResult<bool> {
        let cf = self.store.cf(self.column);
        Ok(self
            .store
            .inner
            .db
            .get_pinned_cf(cf, key.to_key())?
            .is_some())
    }

    pub fn multi_get<'a>(
        &self,
        keys: impl IntoIterator<Item = &'a K>,
    ) -> StoreResult<Vec<Option<V>>>
    where
        K: 'a,
    {
        let cf = self.store.cf(self.column);
        let keys: Vec<Vec<u8>> = keys.into_iter().map(Key::to_key).collect();
        self.store
            .inner
            .db
            .batched_multi_get_cf(cf, &keys, false)
            .into_iter()
            .map(|r| match r? {
                Some(v) => Ok(Some(self.decode(Bytes::copy_from_slice(&v))?)),
                None => Ok(None),
            })
            .collect()
    }

    /// Writes one key on its own; see [`WriteBatch`] for atomic multi-key writes.
    pub fn insert(&self, key: &K, value: &V, durability: Durability) -> StoreResult<()> {
        let mut batch = self.store.batch();
        batch.insert(self, key, value);
        batch.commit(durability)
    }

    pub fn remove(&self, key: &K) -> StoreResult<()> {
        let mut batch = self.store.batch();
        batch.remove(self, key);
        batch.commit(Durability::Buffered)
    }

    /// Entries with `from <= key < to`, in key order, at most `limit` of them.
    pub fn range(&self, from: &K, to: &K, limit: usize) -> StoreResult<Vec<(K, V)>> {
        let cf = self.store.cf(self.column);
        let (from, to) = (from.to_key(), to.to_key());
        let mut out = Vec::new();
        let iter = self
            .store
            .inner
            .db
            .iterator_cf(cf, IteratorMode::From(&from, Direction::Forward));
        for item in iter {
            let (k, v) = item?;
            if *k >= *to || out.len() >= limit {
                break;
            }
            out.push((
                self.decode_key(&k)?,
                self.decode(Bytes::from(v.into_vec()))?,
            ));
        }
        Ok(out)
    }

    /// The entry with the largest key, if any.
    pub fn last(&self) -> StoreResult<Option<(K, V)>> {
        let cf = self.store.cf(self.column);
        match self
            .store
            .inner
            .db
            .iterator_cf(cf, IteratorMode::End)
            .next()
        {
            Some(item) => {
                let (k, v) = item?;
                Ok(Some((
                    self.decode_key(&k)?,
                    self.decode(Bytes::from(v.into_vec()))?,
                )))
            }
            None => Ok(None),
        }
    }

    /// Every entry, in key order.
    pub fn iter(&self) -> StoreResult<Vec<(K, V)>> {
        let cf = self.store.cf(self.column);
        self.store
            .inner
            .db
            .iterator_cf(cf, IteratorMode::Start)
            .map(|item| {
                let (k, v) = item?;
                Ok((
                    self.decode_key(&k)?,
                    self.decode(Bytes::from(v.into_vec()))?,
                ))
            })
            .collect()
    }

    /// Waits until `key` has a value and returns it (at once if it already has one).
    pub async fn notify_read(&self, key: K) -> StoreResult<V> {
        let raw = key.to_key();
        let rx = {
            // The read happens under the waiters lock, and writers take that lock after their
            // write lands: a write either is seen by this read or finds this waiter.
            let mut waiters = self.store.inner.waiters.lock();
            if let Some(v) = self
                .store
                .inner
                .db
                .get_pinned_cf(self.store.cf(self.column), &raw)?
            {
                return self.decode(Bytes::copy_from_slice(&v));
            }
            let (tx, rx) = oneshot::channel();
            let list = waiters.entry((self.column, raw)).or_default();
            list.retain(|w| !w.is_closed());
            list.push(tx);
            rx
        };
        let bytes = rx.await.map_err(|_| StoreError::Closed)?;
        self.decode(bytes)
    }
}

/// Writes to several maps that land together or not at all.
pub struct WriteBatch {
    store: Store,
    batch: rocksdb::WriteBatch,
    written: Vec<(Column, Vec<u8>, Bytes)>,
}

impl WriteBatch {
    pub fn insert<K: Key, V: Value>(&mut self, map: &Map<K, V>, key: &K, value: &V) -> &mut Self {
        let (k, v) = (key.to_key(), value.to_value());
        self.batch.put_cf(self.store.cf(map.column), &k, &v);
        self.written.push((map.column, k, v));
        self
    }

    pub fn remove<K: Key, V: Value>(&mut self, map: &Map<K, V>, key: &K) -> &mut Self {
        self.batch
            .delete_cf(self.store.cf(map.column), key.to_key());
        self
    }

    /// Removes every key with `from <= key < to`.
    pub fn remove_range<K: Key, V: Value>(
        &mut self,
        map: &Map<K, V>,
        from: &K,
        to: &K,
    ) -> &mut Self {
        self.batch
            .delete_range_cf(self.store.cf(map.column), from.to_key(), to.to_key());
        self
    }

    pub fn commit(self, durability: Durability) -> StoreResult<()> {
        self.store.write(self.batch, durability, self.written)
    }
}
