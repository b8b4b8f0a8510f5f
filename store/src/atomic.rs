//! Crash-safe file creation: unique temp names, temp files that delete themselves unless
//! kept, and the write-fsync-rename-fsync protocol that makes a final name appear only once
//! its content is complete and durable.

use std::collections::hash_map::RandomState;
use std::fs::{self, File, OpenOptions, Permissions};
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{StoreError, io_at};

/// Attempts at finding a free temp name before giving up (a clash needs the same pid, counter
/// and random value, so more than one retry essentially never happens).
const MAX_ATTEMPTS: u32 = 16;

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A file name no other process or thread is using: `<prefix><pid>-<counter>-<random>`.
///
/// The pid separates processes, the counter separates calls within one process, and the random
/// part (from std's per-process random hash keys, no clock involved) separates a process from
/// a dead one that had the same pid.
pub(crate) fn unique_name(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(n);
    format!("{prefix}{}-{n}-{:016x}", std::process::id(), h.finish())
}

/// A path that is removed when this guard is dropped, unless [`TempPath::keep`] was called.
#[derive(Debug)]
pub(crate) struct TempPath {
    path: PathBuf,
    armed: bool,
}

impl TempPath {
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The file now lives elsewhere (it was renamed) or must stay: do not remove it.
    pub(crate) fn keep(mut self) {
        self.armed = false;
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        if self.armed {
            // Best effort: a leftover temp file is harmless and `gc` removes it.
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Creates a new, empty file with a unique name in `dir`.
pub(crate) fn create_temp(dir: &Path, prefix: &str) -> Result<(File, TempPath), StoreError> {
    let mut attempt = 0;
    loop {
        let path = dir.join(unique_name(prefix));
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(file) => return Ok((file, TempPath { path, armed: true })),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < MAX_ATTEMPTS => {
                attempt += 1;
            }
            Err(e) => return Err(StoreError::io(&path, e)),
        }
    }
}

/// fsyncs a directory, so that a rename into it or a removal from it is durable.
pub(crate) fn fsync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_at(dir))
}

/// Gives `file` exactly `mode`, independent of the umask, and makes its content durable.
pub(crate) fn seal(file: &File, path: &Path, mode: u32) -> Result<(), StoreError> {
    file.set_permissions(Permissions::from_mode(mode))
        .map_err(io_at(path))?;
    file.sync_all().map_err(io_at(path))
}

/// Renames the sealed temp file to `dest` and makes the rename durable.
pub(crate) fn publish(temp: TempPath, dest: &Path) -> Result<(), StoreError> {
    fs::rename(temp.path(), dest).map_err(io_at(dest))?;
    temp.keep();
    match dest.parent() {
        Some(dir) => fsync_dir(dir),
        None => Ok(()),
    }
}

/// Writes `bytes` to `dest` atomically: a temp file in `tmp_dir` (same filesystem) is written,
/// given `mode`, fsynced and renamed over `dest`; then `dest`'s directory is fsynced. Readers
/// see either the old file or the complete new one, never a partial one.
pub(crate) fn write_atomic(
    tmp_dir: &Path,
    dest: &Path,
    bytes: &[u8],
    mode: u32,
) -> Result<(), StoreError> {
    let (mut file, temp) = create_temp(tmp_dir, "rec-")?;
    file.write_all(bytes).map_err(io_at(temp.path()))?;
    seal(&file, temp.path(), mode)?;
    drop(file);
    publish(temp, dest)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn unique_names_differ() {
        let a = unique_name("x-");
        let b = unique_name("x-");
        assert_ne!(a, b);
        assert!(a.starts_with(&format!("x-{}-", std::process::id())));
    }

    #[test]
    fn write_atomic_sets_mode_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let tmp = dir.path().join("tmp");
        fs::create_dir(&tmp).unwrap();
        let dest = dir.path().join("out");
        write_atomic(&tmp, &dest, b"one", 0o640).unwrap();
        write_atomic(&tmp, &dest, b"two", 0o640).unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"two");
        let mode = fs::metadata(&dest).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o640);
        assert_eq!(fs::read_dir(&tmp).unwrap().count(), 0);
    }

    #[test]
    fn dropped_temp_is_removed_and_kept_temp_stays() {
        let dir = tempfile::tempdir().unwrap();
        let (_, t) = create_temp(dir.path(), "t-").unwrap();
        let p = t.path().to_path_buf();
        assert!(p.exists());
        drop(t);
        assert!(!p.exists());
        let (_, t) = create_temp(dir.path(), "t-").unwrap();
        let p = t.path().to_path_buf();
        t.keep();
        assert!(p.exists());
    }
}
