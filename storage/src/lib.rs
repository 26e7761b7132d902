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
//!
//! # Large values
//! The values of [`Column::separated`] columns (batches) are not kept in
//! RocksDB but appended once to segment files, with a pointer in RocksDB; see [`vlog`]. The
//! same durability policy applies to them.

mod keys;
pub mod vlog;

pub use keys::Key;

use bytes::Bytes;
use parking_lot::Mutex;
use rocksdb::{
    ColumnFamilyDescriptor, Direction, IteratorMode, Options, ReadOptions, WriteOptions, DB,
};
use std::collections::HashMap;
use std::marker::PhantomData;
use std::path::Path;
use std::sync::Arc;
use thiserror::Error;
use tokio::sync::oneshot;
use vlog::{Pointer, ValueLog};
use weft_types::codec::{decode_message, encode_message, Decode, Encode};

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("rocksdb: {0}")]
    Rocks(#[from] rocksdb::Error),
    #[error("value log: {0}")]
    Io(#[from] std::io::Error),
    #[error("corrupt entry in column {column}: {reason}")]
    Corrupt {
        column: &'static str,
        reason: String,
    },
    #[error("the store was closed")]
    Closed,
    /// A map over a column the store was not opened with: a wiring bug in the caller.
    #[error("column {0} was not declared when the store was opened")]
    Undeclared(&'static str),
    /// What [`FAIL_AFTER_WRITES_ENV`] makes every write return once its count is used up.
    #[error("injected write failure ({FAIL_AFTER_WRITES_ENV})")]
    Injected,
}

/// Fault injection for tests of the whole process (a node must go down as a whole when its
/// store fails): with this variable set to N, every write after the first N fails with
/// [`StoreError::Injected`]. Read once when the store is opened; unset, nothing changes.
pub const FAIL_AFTER_WRITES_ENV: &str = "WEFT_STORE_FAIL_AFTER_WRITES";

pub type StoreResult<T> = Result<T, StoreError>;

/// A column family. Each crate declares the columns it owns as constants (the primary its
/// DAG, the worker its batches, the node its committed log) and the process opens the union;
/// the store itself knows only [`RECORDS`]. Adding a column is backwards compatible: missing
/// families are created, and families on disk that nobody declares are left as they are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Column {
    name: &'static str,
    separated: bool,
}

/// Named records of single values (a GC round, the consensus state, an L1 cursor), shared by
/// every role that has one; each key names its owner. Called "consensus" on disk, its first
/// owner's name.
pub const RECORDS: Column = Column::new("consensus");

impl Column {
    /// A column whose values live in RocksDB.
    pub const fn new(name: &'static str) -> Self {
        Self {
            name,
            separated: false,
        }
    }

    /// A column of large, write-once values, appended to a value log with a pointer in
    /// RocksDB (see [`vlog`]).
    pub const fn separated(name: &'static str) -> Self {
        Self {
            name,
            separated: true,
        }
    }

    pub fn name(self) -> &'static str {
        self.name
    }

    /// Whether values live in a value log instead of RocksDB.
    pub fn is_separated(self) -> bool {
        self.separated
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
    /// The columns declared at opening.
    columns: Vec<Column>,
    /// The value logs of the separated columns, by name.
    values: HashMap<&'static str, ValueLog>,
    /// Writes left before injected failures, when [`FAIL_AFTER_WRITES_ENV`] is set.
    writes_left: Option<std::sync::atomic::AtomicU64>,
}

/// A handle to the database; cheap to clone and share between actors.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl Store {
    /// Opens (or creates) the store at `path` with `columns`, and whatever other column
    /// families it already has (RocksDB opens all or nothing).
    pub fn open(path: &Path, columns: &[Column]) -> StoreResult<Self> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.increase_parallelism(2);
        opts.set_max_background_jobs(2);
        // Transactions are mostly incompressible; compression would only cost CPU.
        opts.set_compression_type(rocksdb::DBCompressionType::None);
        let mut columns = columns.to_vec();
        columns.sort();
        columns.dedup();
        let mut names: Vec<String> = columns.iter().map(|c| c.name().to_string()).collect();
        if path.join("CURRENT").exists() {
            names.extend(DB::list_cf(&opts, path)?);
        }
        names.sort();
        names.dedup();
        let cfs = names
            .iter()
            .map(|name| ColumnFamilyDescriptor::new(name, opts.clone()));
        let db = DB::open_cf_descriptors(&opts, path, cfs)?;
        let mut values = HashMap::new();
        for column in columns.iter().filter(|c| c.is_separated()) {
            let cf = db
                .cf_handle(column.name())
                .ok_or(StoreError::Undeclared(column.name()))?;
            let mut live: HashMap<u64, u64> = HashMap::new();
            for item in db.iterator_cf(cf, IteratorMode::Start) {
                let (_, raw) = item?;
                *live
                    .entry(Pointer::decode(column.name(), &raw)?.segment)
                    .or_default() += 1;
            }
            let dir = path.join("values").join(column.name());
            values.insert(column.name(), ValueLog::open(column.name(), &dir, live)?);
        }
        Ok(Self {
            inner: Arc::new(Inner {
                db,
                waiters: Mutex::new(HashMap::new()),
                columns,
                values,
                writes_left: std::env::var(FAIL_AFTER_WRITES_ENV)
                    .ok()
                    .and_then(|n| n.parse().ok())
                    .map(std::sync::atomic::AtomicU64::new),
            }),
        })
    }

    fn value_log(&self, column: Column) -> Option<&ValueLog> {
        self.inner.values.get(column.name())
    }

    /// The value behind what RocksDB holds for a key: itself, or what its pointer refers to
    /// (`None` if that is torn).
    fn load(&self, column: Column, key: &[u8], raw: &[u8]) -> StoreResult<Option<Bytes>> {
        let Some(log) = self.value_log(column) else {
            return Ok(Some(Bytes::copy_from_slice(raw)));
        };
        let value = log.read(&Pointer::decode(column.name(), raw)?)?;
        if value.is_none() {
            self.forget_torn(column, log, key, raw)?;
        }
        Ok(value)
    }

    /// Deletes the pointer to a torn value, unless it was replaced meanwhile: the key is then
    /// missing everywhere (`contains` too), so the value is fetched again.
    fn forget_torn(
        &self,
        column: Column,
        log: &ValueLog,
        key: &[u8],
        raw: &[u8],
    ) -> StoreResult<()> {
        let _lock = log.commit.lock();
        let cf = self.cf(column)?;
        if self.inner.db.get_pinned_cf(cf, key)?.as_deref() != Some(raw) {
            return Ok(());
        }
        self.inner.db.delete_cf(cf, key)?;
        log.settle(&[], &[Pointer::decode(column.name(), raw)?], &[]);
        Ok(())
    }

    /// Value segment files of a separated column (0 for others).
    pub fn value_segments(&self, column: Column) -> usize {
        self.value_log(column).map_or(0, ValueLog::segment_count)
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
            appended: Vec::new(),
            removed: Vec::new(),
            failed: None,
        }
    }

    /// Flushes memtables and fsyncs the WAL: everything written so far survives power loss.
    pub fn sync(&self) -> StoreResult<()> {
        for log in self.inner.values.values() {
            log.sync_all()?;
        }
        self.inner.db.flush_wal(true)?;
        for c in &self.inner.columns {
            self.inner.db.flush_cf(self.cf(*c)?)?;
        }
        Ok(())
    }

    fn cf(&self, column: Column) -> StoreResult<&rocksdb::ColumnFamily> {
        if !self.inner.columns.contains(&column) {
            return Err(StoreError::Undeclared(column.name()));
        }
        self.inner
            .db
            .cf_handle(column.name())
            .ok_or(StoreError::Undeclared(column.name()))
    }

    fn write(&self, batch: rocksdb::WriteBatch, durability: Durability) -> StoreResult<()> {
        if let Some(left) = &self.inner.writes_left {
            use std::sync::atomic::Ordering;
            let took = left.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
            if took.is_err() {
                return Err(StoreError::Injected);
            }
        }
        let mut opts = WriteOptions::default();
        opts.set_sync(durability == Durability::Sync);
        self.inner.db.write_opt(batch, &opts)?;
        Ok(())
    }

    fn wake(&self, written: Vec<(Column, Vec<u8>, Bytes)>) {
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
    }

    /// Pointers currently stored for `keys` of a separated column.
    fn pointers(&self, column: Column, keys: &[Vec<u8>]) -> StoreResult<Vec<Pointer>> {
        let mut out = Vec::new();
        for raw in self
            .inner
            .db
            .batched_multi_get_cf(self.cf(column)?, keys, false)
        {
            if let Some(raw) = raw? {
                out.push(Pointer::decode(column.name(), &raw)?);
            }
        }
        Ok(out)
    }

    /// Keys and pointers with `from <= key < to` in a separated column.
    fn pointers_in(
        &self,
        column: Column,
        from: &[u8],
        to: &[u8],
    ) -> StoreResult<Vec<(Vec<u8>, Pointer)>> {
        let mut opts = ReadOptions::default();
        opts.set_iterate_upper_bound(to.to_vec());
        let mut out = Vec::new();
        let iter = self.inner.db.iterator_cf_opt(
            self.cf(column)?,
            opts,
            IteratorMode::From(from, Direction::Forward),
        );
        for item in iter {
            let (k, raw) = item?;
            out.push((k.into_vec(), Pointer::decode(column.name(), &raw)?));
        }
        Ok(out)
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

    /// The value behind what RocksDB holds; `None` if it is a torn separated value.
    fn load(&self, key: &[u8], raw: &[u8]) -> StoreResult<Option<V>> {
        self.store
            .load(self.column, key, raw)?
            .map(|b| self.decode(b))
            .transpose()
    }

    fn load_entry(&self, key: &[u8], raw: &[u8]) -> StoreResult<Option<(K, V)>> {
        match self.load(key, raw)? {
            Some(v) => Ok(Some((self.decode_key(key)?, v))),
            None => Ok(None),
        }
    }

    pub fn get(&self, key: &K) -> StoreResult<Option<V>> {
        let cf = self.store.cf(self.column)?;
        let key = key.to_key();
        match self.store.inner.db.get_pinned_cf(cf, &key)? {
            Some(v) => self.load(&key, &v),
            None => Ok(None),
        }
    }

    /// The first `len` bytes of the key's stored value, without reading the rest (for a
    /// separated column, nor checking it: a torn value shows only when read whole).
    pub fn value_prefix(&self, key: &K, len: usize) -> StoreResult<Option<Bytes>> {
        let cf = self.store.cf(self.column)?;
        let Some(raw) = self.store.inner.db.get_pinned_cf(cf, key.to_key())? else {
            return Ok(None);
        };
        match self.store.value_log(self.column) {
            Some(log) => log.read_prefix(&Pointer::decode(self.column.name(), &raw)?, len),
            None => Ok(Some(Bytes::copy_from_slice(&raw[..len.min(raw.len())]))),
        }
    }

    /// Whether the key has a value. For a separated column, a value torn by a power loss still
    /// counts until it is read.
    pub fn contains(&self, key: &K) -> StoreResult<bool> {
        let cf = self.store.cf(self.column)?;
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
        let cf = self.store.cf(self.column)?;
        let keys: Vec<Vec<u8>> = keys.into_iter().map(Key::to_key).collect();
        self.store
            .inner
            .db
            .batched_multi_get_cf(cf, &keys, false)
            .into_iter()
            .zip(&keys)
            .map(|(r, key)| match r? {
                Some(v) => self.load(key, &v),
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

    /// Visits the raw entries with `from <= key < to` in key order until `visit` has kept
    /// `limit` (it says whether it kept one).
    fn scan(
        &self,
        from: &K,
        to: &K,
        limit: usize,
        mut visit: impl FnMut(&[u8], &[u8]) -> StoreResult<bool>,
    ) -> StoreResult<()> {
        let cf = self.store.cf(self.column)?;
        let (from, to) = (from.to_key(), to.to_key());
        let iter = self
            .store
            .inner
            .db
            .iterator_cf(cf, IteratorMode::From(&from, Direction::Forward));
        let mut kept = 0;
        for item in iter {
            let (k, v) = item?;
            if *k >= *to || kept >= limit {
                break;
            }
            kept += usize::from(visit(&k, &v)?);
        }
        Ok(())
    }

    /// Entries with `from <= key < to`, in key order, at most `limit` of them (torn separated
    /// values are skipped).
    pub fn range(&self, from: &K, to: &K, limit: usize) -> StoreResult<Vec<(K, V)>> {
        let mut out = Vec::new();
        self.scan(from, to, limit, |k, v| {
            let entry = self.load_entry(k, v)?;
            let kept = entry.is_some();
            out.extend(entry);
            Ok(kept)
        })?;
        Ok(out)
    }

    /// The keys with `from <= key < to`, in key order, at most `limit` of them; no value is read.
    pub fn keys(&self, from: &K, to: &K, limit: usize) -> StoreResult<Vec<K>> {
        let mut out = Vec::new();
        self.scan(from, to, limit, |k, _| {
            out.push(self.decode_key(k)?);
            Ok(true)
        })?;
        Ok(out)
    }

    /// The entry with the largest key, if any.
    pub fn last(&self) -> StoreResult<Option<(K, V)>> {
        let cf = self.store.cf(self.column)?;
        let iter = self.store.inner.db.iterator_cf(cf, IteratorMode::End);
        for item in iter {
            let (k, v) = item?;
            if let Some(entry) = self.load_entry(&k, &v)? {
                return Ok(Some(entry));
            }
        }
        Ok(None)
    }

    /// Every entry, in key order.
    pub fn iter(&self) -> StoreResult<Vec<(K, V)>> {
        let cf = self.store.cf(self.column)?;
        let mut out = Vec::new();
        for item in self.store.inner.db.iterator_cf(cf, IteratorMode::Start) {
            let (k, v) = item?;
            out.extend(self.load_entry(&k, &v)?);
        }
        Ok(out)
    }

    /// Waits until `key` has a value and returns it (at once if it already has one).
    pub async fn notify_read(&self, key: K) -> StoreResult<V> {
        let raw = key.to_key();
        let rx = {
            // The read happens under the waiters lock, and writers take that lock after their
            // write lands: a write either is seen by this read or finds this waiter.
            let mut waiters = self.store.inner.waiters.lock();
            let stored = self
                .store
                .inner
                .db
                .get_pinned_cf(self.store.cf(self.column)?, &raw)?;
            if let Some(v) = stored.map(|v| self.load(&raw, &v)).transpose()?.flatten() {
                return Ok(v);
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
///
/// A value for a separated column is appended to its value log at once; its pointer lands with
/// the rest at [`WriteBatch::commit`], and a batch dropped uncommitted abandons the append.
pub struct WriteBatch {
    store: Store,
    batch: rocksdb::WriteBatch,
    written: Vec<(Column, Vec<u8>, Bytes)>,
    /// Appended values of separated columns, by key.
    appended: Vec<(Column, Vec<u8>, Pointer)>,
    /// Removals in separated columns: one key, or a key range.
    removed: Vec<(Column, Vec<u8>, Option<Vec<u8>>)>,
    /// A value-log append that failed: the commit fails with it.
    failed: Option<StoreError>,
}

/// The family of `column` for a write batch; an undeclared one makes the commit fail.
fn family<'s>(
    store: &'s Store,
    failed: &mut Option<StoreError>,
    column: Column,
) -> Option<&'s rocksdb::ColumnFamily> {
    store.cf(column).map_err(|e| failed.get_or_insert(e)).ok()
}

impl WriteBatch {
    pub fn insert<K: Key, V: Value>(&mut self, map: &Map<K, V>, key: &K, value: &V) -> &mut Self {
        let (k, v) = (key.to_key(), value.to_value());
        let store = self.store.clone();
        let Some(cf) = family(&store, &mut self.failed, map.column) else {
            return self;
        };
        match store.value_log(map.column) {
            Some(log) => match log.append(&v) {
                Ok(pointer) => {
                    self.batch.put_cf(cf, &k, pointer.encode());
                    self.appended.push((map.column, k.clone(), pointer));
                }
                Err(e) => {
                    self.failed.get_or_insert(e);
                    return self;
                }
            },
            None => self.batch.put_cf(cf, &k, &v),
        }
        self.written.push((map.column, k, v));
        self
    }

    pub fn remove<K: Key, V: Value>(&mut self, map: &Map<K, V>, key: &K) -> &mut Self {
        let k = key.to_key();
        let store = self.store.clone();
        let Some(cf) = family(&store, &mut self.failed, map.column) else {
            return self;
        };
        self.batch.delete_cf(cf, &k);
        if map.column.is_separated() {
            self.removed.push((map.column, k, None));
        }
        self
    }

    /// Removes every key with `from <= key < to`.
    pub fn remove_range<K: Key, V: Value>(
        &mut self,
        map: &Map<K, V>,
        from: &K,
        to: &K,
    ) -> &mut Self {
        let (from, to) = (from.to_key(), to.to_key());
        let store = self.store.clone();
        let Some(cf) = family(&store, &mut self.failed, map.column) else {
            return self;
        };
        self.batch.delete_range_cf(cf, &from, &to);
        if map.column.is_separated() {
            self.removed.push((map.column, from, Some(to)));
        }
        self
    }

    /// [`WriteBatch::commit`] on a blocking thread: for async callers whose write may fsync,
    /// which can take hundreds of milliseconds while the disk is busy and must not hold one
    /// of the runtime's few threads meanwhile.
    pub async fn commit_blocking(self, durability: Durability) -> StoreResult<()> {
        tokio::task::spawn_blocking(move || self.commit(durability))
            .await
            .map_err(|_| StoreError::Closed)?
    }

    pub fn commit(mut self, durability: Durability) -> StoreResult<()> {
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        let store = self.store.clone();
        let mut columns: Vec<Column> = (self.appended.iter().map(|(c, ..)| *c))
            .chain(self.removed.iter().map(|(c, ..)| *c))
            .collect();
        columns.sort();
        columns.dedup();
        let logs: Vec<(Column, &ValueLog)> = columns
            .iter()
            .filter_map(|c| Some((*c, store.value_log(*c)?)))
            .collect();
        // Locked in one order (that of `Column`'s `Ord`), so two writers cannot deadlock.
        let locks: Vec<_> = logs.iter().map(|(_, log)| log.commit.lock()).collect();
        // Per value log: the pointers this write adds, and those it replaces or removes.
        let mut settlements = Vec::new();
        for &(column, log) in &logs {
            let mine = || self.appended.iter().filter(move |(c, ..)| *c == column);
            let written: Vec<Pointer> = mine().map(|(_, _, p)| *p).collect();
            let mut keys: Vec<Vec<u8>> = mine().map(|(_, k, _)| k.clone()).collect();
            let mut replaced = Vec::new();
            for (_, from, to) in self.removed.iter().filter(|(c, ..)| *c == column) {
                match to {
                    None => keys.push(from.clone()),
                    Some(to) => replaced.extend(
                        store
                            .pointers_in(column, from, to)?
                            .into_iter()
                            .map(|e| e.1),
                    ),
                }
            }
            replaced.extend(store.pointers(column, &keys)?);
            if durability == Durability::Sync {
                log.sync(written.iter().map(|p| p.segment))?;
            }
            settlements.push((log, written, replaced));
        }
        self.appended.clear();
        let batch = std::mem::take(&mut self.batch);
        let written = std::mem::take(&mut self.written);
        let result = store.write(batch, durability);
        for (log, pointers, replaced) in settlements {
            match &result {
                Ok(()) => log.settle(&pointers, &replaced, &[]),
                Err(_) => log.settle(&[], &[], &pointers),
            }
        }
        // After the commit locks are released: a reader that finds a torn value takes one
        // while holding the waiters lock.
        drop(locks);
        if result.is_ok() {
            store.wake(written);
        }
        result
    }
}

impl Drop for WriteBatch {
    fn drop(&mut self) {
        for (column, _, pointer) in self.appended.drain(..) {
            if let Some(log) = self.store.value_log(column) {
                log.settle(&[], &[], &[pointer]);
            }
        }
    }
}
