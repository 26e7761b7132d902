//! Writing config files atomically, and reading secrets only from files no one else can read.

use crate::ConfigError;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Mode of files that hold private keys.
pub const SECRET_MODE: u32 = 0o600;
/// Mode of public config files (committee, parameters).
pub const PUBLIC_MODE: u32 = 0o644;

/// Writes `contents` to `path` through a new temporary file beside it, created exclusively
/// with `mode` (so it is never an existing file or a planted link, and a secret is never
/// readable by others, not even for an instant), synced, then renamed over `path` (which
/// replaces a link at `path` rather than writing through it). A crash leaves the old file or
/// the new one, never half of one.
pub fn write_file(path: &Path, contents: &[u8], mode: u32) -> Result<(), ConfigError> {
    let werr = |source| ConfigError::Write {
        path: path.to_owned(),
        source,
    };
    let (mut file, tmp) = create_temporary(path, mode).map_err(werr)?;
    let written = file
        .write_all(contents)
        .and_then(|()| file.sync_all())
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(werr(e));
    }
    // The rename is durable once the directory is synced.
    if let Ok(dir) = std::fs::File::open(parent(path)) {
        let _ = dir.sync_all();
    }
    Ok(())
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// A fresh file next to `path`. The name is not secret: exclusivity is what protects it, and
/// a name someone else took is skipped.
fn create_temporary(path: &Path, mode: u32) -> std::io::Result<(std::fs::File, PathBuf)> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let mut last = None;
    for attempt in 0..64u32 {
        let tmp = parent(path).join(format!(
            ".{name}.{}.{nanos:x}.{attempt}.tmp",
            std::process::id()
        ));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
        {
            // The umask may narrow `mode`, never widen it.
            Ok(file) => return Ok((file, tmp)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no temporary name")))
}

/// Reads a file that holds a private key, refusing it when others could read or replace it.
/// The rule is PostgreSQL's for its server key: a file owned by this user must have no group
/// or other permissions (0600 or 0400); one owned by root may also be group-readable (0640,
/// 0440: how Kubernetes mounts a secret for a pod's `fsGroup`); any other owner is refused.
/// The checks are made on the opened file, so the file checked is the file read.
pub fn read_secret(path: &Path) -> Result<String, ConfigError> {
    let rerr = |source| ConfigError::Read {
        path: path.to_owned(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(rerr)?;
    let meta = file.metadata().map_err(rerr)?;
    exposure(meta.uid(), meta.mode(), current_uid()).map_or(Ok(()), |reason| {
        Err(ConfigError::Exposed {
            path: path.to_owned(),
            reason,
        })
    })?;
    let mut text = String::new();
    std::io::Read::read_to_string(&mut file, &mut text).map_err(rerr)?;
    Ok(text)
}

fn current_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Why a secret file with this owner and mode is not private to this user, if it is not.
pub fn exposure(owner: u32, mode: u32, me: u32) -> Option<String> {
    let perms = mode & 0o777;
    let fix = "chmod 600 it (or regenerate it with weft)";
    if mode & libc::S_IFMT != libc::S_IFREG {
        return Some("not a regular file".into());
    }
    if owner == me {
        (perms & 0o077 != 0)
            .then(|| format!("mode {perms:04o} lets group or others at this private key: {fix}"))
    } else if owner == 0 {
        (perms & 0o037 != 0).then(|| {
            format!("owned by root with mode {perms:04o}: others may read or group may change this private key; at most 0640")
        })
    } else {
        Some(format!(
            "owned by uid {owner}, not by this user ({me}) or root: its owner can change this private key"
        ))
    }
}
