//! The poster's persisted cursor: the last batch known confirmed on L1 and where it ended.
//! Written atomically (temporary file, fsync, rename, fsync of the directory), so a crash
//! leaves either the old or the new cursor. L1 stays the authority: on start the poster reads
//! the inbox and only uses the cursor to skip re-reading confirmed history.

use crate::batch::Position;
use alloy::primitives::B256;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// Batches `0..next_sequence` are confirmed.
    pub next_sequence: u64,
    /// The commitment of batch `next_sequence - 1` (zero when none).
    pub commitment: B256,
    /// Where batch `next_sequence` starts.
    pub next_position: Position,
    /// The L1 block holding batch `next_sequence - 1` (0 when none).
    pub l1_block: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum CursorError {
    #[error("cursor file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cursor file {path} is corrupt: {source}")]
    Corrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
}

/// Loads the cursor; a missing file is the start of the inbox.
pub fn load(path: &Path) -> Result<Cursor, CursorError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| CursorError::Corrupt {
            path: path.into(),
            source,
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Cursor::default()),
        Err(source) => Err(CursorError::Io {
            path: path.into(),
            source,
        }),
    }
}

pub fn store(path: &Path, cursor: &Cursor) -> Result<(), CursorError> {
    let io = |source| CursorError::Io {
        path: path.into(),
        source,
    };
    let tmp = path.with_extension("tmp");
    let bytes = serde_json::to_vec(cursor).unwrap_or_default();
    let mut file = std::fs::File::create(&tmp).map_err(io)?;
    file.write_all(&bytes).map_err(io)?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_missing_and_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cursor.json");
        assert_eq!(load(&path).unwrap(), Cursor::default());
        let c = Cursor {
            next_sequence: 3,
            commitment: B256::repeat_byte(7),
            next_position: Position { sub_dag: 9, tx: 2 },
            l1_block: 12,
        };
        store(&path, &c).unwrap();
        assert_eq!(load(&path).unwrap(), c);
        std::fs::write(&path, b"{").unwrap();
        assert!(matches!(load(&path), Err(CursorError::Corrupt { .. })));
    }
}
