//! Value separation for the columns whose values are large: batches.
//!
//! Kept inside RocksDB, every batch byte would be written four times or more: to the WAL, to a
//! memtable, to an SST at flush and again at every compaction. Here the value is appended once
//! to a segment file, and RocksDB keeps only a [`Pointer`] to it (through its WAL, so the pointer
//! survives `kill -9` like everything else). A segment is deleted as soon as no pointer refers
//! to it, which for batches is a few seconds after garbage collection: the page cache usually
//! drops the bytes before they are ever written back to disk.
//!
//! Crash safety: the value is written before its pointer, so a pointer never refers to bytes a
//! process crash could lose. After a power loss a buffered value may be torn while its pointer
//! survived; each pointer carries the value's CRC32, and a torn value reads as absent (batches
//! are then fetched again from peers). Synced writes fsync the value's segment before the
//! pointer is written.

use crate::{StoreError, StoreResult};
use bytes::Bytes;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A new segment is started once the current one holds this many bytes.
pub const SEGMENT_SIZE: u64 = 64 << 20;

/// Writeback of appended bytes is started every this many bytes (as RocksDB's
/// `bytes_per_sync`): left to the kernel, gigabytes of dirty batches were written back in bursts
/// that held every fsync (vote records, the committed log) for up to 650 ms.
pub const WRITEBACK_EVERY: u64 = 8 << 20;

const SUFFIX: &str = ".vlog";

/// Where a value lives: what RocksDB stores instead of the value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Pointer {
    pub segment: u64,
    offset: u64,
    len: u32,
    crc: u32,
}

impl Pointer {
    pub const LEN: usize = 24;

    pub fn encode(&self) -> [u8; Self::LEN] {
        let mut out = [0u8; Self::LEN];
        out[..8].copy_from_slice(&self.segment.to_be_bytes());
        out[8..16].copy_from_slice(&self.offset.to_be_bytes());
        out[16..20].copy_from_slice(&self.len.to_be_bytes());
        out[20..].copy_from_slice(&self.crc.to_be_bytes());
        out
    }

    pub fn decode(column: &'static str, b: &[u8]) -> StoreResult<Self> {
        let b: &[u8; Self::LEN] = b.try_into().map_err(|_| StoreError::Corrupt {
            column,
            reason: format!(
                "a value pointer has {} bytes, not {} (a store written before values were \
                 separated?)",
                b.len(),
                Self::LEN
            ),
        })?;
        let u64_at = |i: usize| u64::from_be_bytes(b[i..i + 8].try_into().unwrap_or_default());
        let u32_at = |i: usize| u32::from_be_bytes(b[i..i + 4].try_into().unwrap_or_default());
        Ok(Self {
            segment: u64_at(0),
            offset: u64_at(8),
            len: u32_at(16),
            crc: u32_at(20),
        })
    }
}

struct Segment {
    file: Arc<File>,
    /// Whether the directory entry is known durable. Made so only when a synced write needs
    /// it: a directory fsync per new segment stalled behind writeback for hundreds of ms.
    named: bool,
    /// Pointers in the database that refer to this segment.
    live: u64,
    /// Values appended whose pointers are not written (or abandoned) yet.
    pending: u64,
}

impl Segment {
    fn new(file: Arc<File>, named: bool, live: u64) -> Self {
        Self {
            file,
            named,
            live,
            pending: 0,
        }
    }
}

struct State {
    segments: HashMap<u64, Segment>,
    active: u64,
    active_len: u64,
    /// Where in the active segment writeback was last started.
    written_back: u64,
}

/// The segment files of one column.
pub(crate) struct ValueLog {
    column: &'static str,
    dir: PathBuf,
    state: Mutex<State>,
    /// Held while pointers of this column are read and replaced, so the live counts stay exact.
    pub commit: Mutex<()>,
}

/// Starts writing a range back to disk without waiting for it (`SYNC_FILE_RANGE_WRITE`).
fn start_writeback(file: &File, from: u64, len: u64) {
    use std::os::fd::AsRawFd;
    // SAFETY: plain syscall on a file descriptor this `File` keeps open; no memory is passed.
    let rc = unsafe {
        libc::sync_file_range(
            file.as_raw_fd(),
            from as libc::off64_t,
            len as libc::off64_t,
            libc::SYNC_FILE_RANGE_WRITE,
        )
    };
    if rc != 0 {
        tracing::debug!("sync_file_range: {}", std::io::Error::last_os_error());
    }
}

/// `len` bytes at `offset`, or `None` if the file ends before. Read into fresh, uninitialised
/// memory: `vec![0; len]` is calloc, which jemalloc serves from a recycled extent by purging it
/// (madvise) so that it reads as zero, and every read of a batch then faulted its pages in
/// afresh (150k page faults a second at 130k tx/s with attestations); zeroing it by hand
/// instead cost a memset as large as the read.
fn read_exact_at_uninit(file: &File, len: usize, offset: u64) -> std::io::Result<Option<Vec<u8>>> {
    use std::os::fd::AsRawFd;
    let mut buf: Vec<u8> = Vec::with_capacity(len);
    let mut filled = 0;
    while filled < len {
        let at = libc::off_t::try_from(offset + filled as u64)
            .map_err(|_| std::io::Error::from(ErrorKind::InvalidInput))?;
        // SAFETY: `pread` writes at most `len - filled` bytes from `filled` on, which is inside
        // the allocation of capacity `len`; the descriptor is kept open by `file`.
        let n = unsafe {
            libc::pread(
                file.as_raw_fd(),
                buf.as_mut_ptr().add(filled).cast(),
                len - filled,
                at,
            )
        };
        match n {
            0 => return Ok(None),
            n if n > 0 => filled += n as usize,
            _ => {
                let e = std::io::Error::last_os_error();
                if e.kind() != ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
    // SAFETY: the first `len` bytes were written by `pread` above.
    unsafe { buf.set_len(len) };
    Ok(Some(buf))
}

fn segment_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:020}{SUFFIX}"))
}

fn create_segment(dir: &Path, id: u64) -> StoreResult<Arc<File>> {
    // Not O_APPEND: Linux's pwrite ignores the offset on such files, and concurrent appends
    // write at the offsets they reserved, in whatever order they finish.
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(segment_path(dir, id))?;
    Ok(Arc::new(file))
}

impl ValueLog {
    /// Opens the segments under `dir`; `live` counts the pointers per segment that the
    /// database holds. Segments nothing refers to are left over from before a crash and are
    /// deleted; appends go to a new segment.
    pub fn open(column: &'static str, dir: &Path, live: HashMap<u64, u64>) -> StoreResult<Self> {
        fs::create_dir_all(dir)?;
        let mut segments = HashMap::new();
        let mut newest = live.keys().copied().max().unwrap_or(0);
        for entry in fs::read_dir(dir)? {
            let path = entry?.path();
            let Some(id) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(SUFFIX))
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            newest = newest.max(id);
            match live.get(&id) {
                Some(&count) => {
                    let file = Arc::new(OpenOptions::new().read(true).open(&path)?);
                    segments.insert(id, Segment::new(file, true, count));
                }
                None => fs::remove_file(&path)?,
            }
        }
        let missing = live.keys().filter(|id| !segments.contains_key(id)).count();
        if missing > 0 {
            tracing::warn!(
                column,
                missing,
                "value segments referred to by the store are missing; their values read as absent"
            );
        }
        let active = newest + 1;
        let file = create_segment(dir, active)?;
        segments.insert(active, Segment::new(file, false, 0));
        Ok(Self {
            column,
            dir: dir.to_path_buf(),
            state: Mutex::new(State {
                segments,
                active,
                active_len: 0,
                written_back: 0,
            }),
            commit: Mutex::new(()),
        })
    }

    /// Appends `value`; the pointer must then be either settled as written or abandoned.
    pub fn append(&self, value: &[u8]) -> StoreResult<Pointer> {
        let len = u32::try_from(value.len()).map_err(|_| StoreError::Corrupt {
            column: self.column,
            reason: format!("a value of {} bytes is too large", value.len()),
        })?;
        let crc = crc32fast::hash(value);
        let (segment, offset, file, writeback) = {
            let mut state = self.state.lock();
            if state.active_len > 0 && state.active_len + u64::from(len) > SEGMENT_SIZE {
                let next = state.active + 1;
                let file = create_segment(&self.dir, next)?;
                let previous = state.active;
                state.segments.insert(next, Segment::new(file, false, 0));
                state.active = next;
                state.active_len = 0;
                state.written_back = 0;
                self.delete_if_unused(&mut state, previous);
            }
            let segment = state.active;
            let offset = state.active_len;
            state.active_len += u64::from(len);
            // Bytes reserved before this value are written (or being written) by now or soon;
            // a range still being written is simply written back when it is done.
            let writeback = (offset - state.written_back >= WRITEBACK_EVERY).then(|| {
                let range = (state.written_back, offset - state.written_back);
                state.written_back = offset;
                range
            });
            let entry = state
                .segments
                .get_mut(&segment)
                .expect("the active segment is always in the map");
            entry.pending += 1;
            (segment, offset, entry.file.clone(), writeback)
        };
        if let Some((from, len)) = writeback {
            start_writeback(&file, from, len);
        }
        let pointer = Pointer {
            segment,
            offset,
            len,
            crc,
        };
        if let Err(e) = file.write_all_at(value, offset) {
            self.settle(&[], &[], &[pointer]);
            return Err(e.into());
        }
        Ok(pointer)
    }

    /// Reads a value; `None` if it is torn or its segment is gone.
    pub fn read(&self, pointer: &Pointer) -> StoreResult<Option<Bytes>> {
        match self.read_at(pointer, pointer.len as usize)? {
            Some(buf) if crc32fast::hash(&buf) == pointer.crc => Ok(Some(Bytes::from(buf))),
            Some(_) => {
                self.warn_torn(pointer);
                Ok(None)
            }
            None => Ok(None),
        }
    }

    /// The first `len` bytes of a value (all of it if shorter), unchecked: the CRC covers the
    /// whole value. `None` if its segment is gone or too short.
    pub fn read_prefix(&self, pointer: &Pointer, len: usize) -> StoreResult<Option<Bytes>> {
        Ok(self
            .read_at(pointer, len.min(pointer.len as usize))?
            .map(Bytes::from))
    }

    /// `len` bytes at the pointer's offset; `None` if its segment is gone or ends before.
    fn read_at(&self, pointer: &Pointer, len: usize) -> StoreResult<Option<Vec<u8>>> {
        let file = match self.state.lock().segments.get(&pointer.segment) {
            Some(s) => s.file.clone(),
            None => return Ok(None),
        };
        let read = read_exact_at_uninit(&file, len, pointer.offset)?;
        if read.is_none() {
            self.warn_torn(pointer);
        }
        Ok(read)
    }

    fn warn_torn(&self, pointer: &Pointer) {
        tracing::warn!(
            column = self.column,
            ?pointer,
            "a stored value is torn; reading it as absent"
        );
    }

    /// Makes the given segments' bytes durable.
    pub fn sync(&self, segments: impl IntoIterator<Item = u64>) -> StoreResult<()> {
        let ids: Vec<u64> = segments.into_iter().collect();
        let (files, unnamed): (Vec<Arc<File>>, bool) = {
            let state = self.state.lock();
            let present: Vec<&Segment> =
                ids.iter().filter_map(|id| state.segments.get(id)).collect();
            (
                present.iter().map(|s| s.file.clone()).collect(),
                present.iter().any(|s| !s.named),
            )
        };
        for file in files {
            file.sync_data()?;
        }
        if unnamed {
            File::open(&self.dir)?.sync_all()?;
            let mut state = self.state.lock();
            for id in &ids {
                if let Some(s) = state.segments.get_mut(id) {
                    s.named = true;
                }
            }
        }
        Ok(())
    }

    pub fn sync_all(&self) -> StoreResult<()> {
        let ids: Vec<u64> = self.state.lock().segments.keys().copied().collect();
        self.sync(ids)
    }

    /// Accounts for a write: `written` pointers are now in the database, `replaced` ones are no
    /// longer, and `abandoned` appends will never be. Segments left unused are deleted.
    pub fn settle(&self, written: &[Pointer], replaced: &[Pointer], abandoned: &[Pointer]) {
        let mut state = self.state.lock();
        let mut touched = Vec::new();
        for p in written.iter().chain(abandoned) {
            if let Some(s) = state.segments.get_mut(&p.segment) {
                s.pending = s.pending.saturating_sub(1);
            }
            touched.push(p.segment);
        }
        for p in written {
            if let Some(s) = state.segments.get_mut(&p.segment) {
                s.live += 1;
            }
        }
        for p in replaced {
            if let Some(s) = state.segments.get_mut(&p.segment) {
                s.live = s.live.saturating_sub(1);
            }
            touched.push(p.segment);
        }
        touched.sort_unstable();
        touched.dedup();
        for id in touched {
            self.delete_if_unused(&mut state, id);
        }
    }

    fn delete_if_unused(&self, state: &mut State, id: u64) {
        if id == state.active {
            return;
        }
        let unused = state
            .segments
            .get(&id)
            .is_some_and(|s| s.live == 0 && s.pending == 0);
        if unused {
            state.segments.remove(&id);
            // Readers holding the file keep reading it: an unlinked file lives until closed.
            if let Err(e) = fs::remove_file(segment_path(&self.dir, id)) {
                tracing::warn!(
                    column = self.column,
                    id,
                    "deleting a value segment failed: {e}"
                );
            }
        }
    }

    /// Segment files on disk (for tests and metrics).
    pub fn segment_count(&self) -> usize {
        self.state.lock().segments.len()
    }
}
