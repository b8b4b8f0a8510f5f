//! The store lock: an advisory `flock` on `v1/lock`, shared by builders and exclusive for
//! `gc` and `verify`.
//!
//! Why builders lock at all: a blob a build has written but not yet recorded in a node or a
//! root is unreachable, and `gc` would delete it. Builders hold the shared lock for the whole
//! build; `gc`/`verify` take the exclusive lock and so run only when no build does.
//!
//! The lock belongs to an open file description, so two [`StoreLock`]s in one process conflict
//! exactly as they would in two processes. In particular, a thread that holds a shared lock
//! and calls `gc`/`verify` (which lock exclusively) deadlocks: drop the shared lock first.
//! The OS releases the lock when the process dies, so a crash never leaves the store locked.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use crate::error::{StoreError, io_at};

/// A held store lock; released when dropped.
#[derive(Debug)]
pub struct StoreLock {
    file: File,
    path: PathBuf,
    exclusive: bool,
}

impl StoreLock {
    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether this is the exclusive (gc/verify) lock.
    pub fn is_exclusive(&self) -> bool {
        self.exclusive
    }
}

impl Drop for StoreLock {
    fn drop(&mut self) {
        // Closing the file releases the lock anyway; unlocking first just makes it prompt.
        let _ = self.file.unlock();
    }
}

fn open_lock_file(path: &Path) -> Result<File, StoreError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(io_at(path))
}

/// Blocks until the lock at `path` is held, shared or exclusive.
pub(crate) fn acquire(path: &Path, exclusive: bool) -> Result<StoreLock, StoreError> {
    let file = open_lock_file(path)?;
    if exclusive {
        file.lock().map_err(io_at(path))?;
    } else {
        file.lock_shared().map_err(io_at(path))?;
    }
    Ok(StoreLock {
        file,
        path: path.to_path_buf(),
        exclusive,
    })
}

/// Takes the exclusive lock at `path` if nobody holds any lock on it; `None` otherwise.
pub(crate) fn try_acquire_exclusive(path: &Path) -> Result<Option<StoreLock>, StoreError> {
    let file = open_lock_file(path)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(StoreLock {
            file,
            path: path.to_path_buf(),
            exclusive: true,
        })),
        Err(TryLockError::WouldBlock) => Ok(None),
        Err(TryLockError::Error(e)) => Err(StoreError::io(path, e)),
    }
}
