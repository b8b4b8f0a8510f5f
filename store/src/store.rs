//! [`Store`]: opening a store and reading and writing its objects (blobs, node records, gc
//! roots). Maintenance lives in `verify`, `gc` and `du`.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use crate::atomic::{create_temp, fsync_dir, unique_name, write_atomic};
use crate::blob::BlobWriter;
use crate::digest::Digest;
use crate::error::{StoreError, io_at};
use crate::layout::{self, Layout};
use crate::lock::{self, StoreLock};
use crate::nodeid::NodeId;
use crate::records::{self, NodeRecord, RootRecord};

/// Mode of node records (immutable once written).
const NODE_MODE: u32 = 0o444;
/// Mode of root records (replaced by rename when updated).
const ROOT_MODE: u32 = 0o644;

const CACHEDIR_TAG_TEXT: &str = "Signature: 8a477f597d28d172789f06886806bc55\n\
# This file is a cache directory tag created by composer.\n\
# For information about cache directory tags see https://bford.info/cachedir/\n";

/// A content-addressed store rooted at a directory; see the crate docs for the layout.
///
/// `Store` is a cheap handle (just the paths) and can be cloned and shared between threads.
#[derive(Clone, Debug)]
pub struct Store {
    layout: Layout,
}

impl Store {
    /// The default location: `$COMPOSE_STORE`, else `$XDG_CACHE_HOME/compose`, else
    /// `$HOME/.cache/compose`; see [`layout::default_root_from`].
    pub fn default_root() -> Result<PathBuf, StoreError> {
        let var = std::env::var_os;
        layout::default_root_from(
            var("COMPOSE_STORE").as_deref(),
            var("XDG_CACHE_HOME").as_deref(),
            var("HOME").as_deref(),
        )
    }

    /// Opens the store at `root`, creating it (directories, `CACHEDIR.TAG`, `.gitignore`, lock
    /// file) if needed.
    ///
    /// Fails with [`StoreError::NotWritable`], naming the path, if any of that cannot be
    /// created or if a probe file cannot be written in `v1/tmp/` (e.g. a read-only
    /// filesystem, or a path under a regular file).
    pub fn open(root: impl Into<PathBuf>) -> Result<Store, StoreError> {
        let layout = Layout::new(root);
        let not_writable = |path: &Path| {
            let path = path.to_path_buf();
            move |source| StoreError::NotWritable { path, source }
        };
        for dir in layout.dirs() {
            fs::create_dir_all(&dir).map_err(not_writable(&dir))?;
        }
        let tmp = layout.tmp_dir();
        for (path, text) in [
            (layout.cachedir_tag(), CACHEDIR_TAG_TEXT),
            (layout.gitignore(), "*\n"),
        ] {
            match fs::symlink_metadata(&path) {
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    write_atomic(&tmp, &path, text.as_bytes(), 0o644).map_err(into_not_writable)?;
                }
                Err(e) => return Err(not_writable(&path)(e)),
            }
        }
        // Opening the lock file for writing, and creating a file in tmp/, prove the store is
        // writable even when everything above already existed (e.g. a read-only remount).
        let lock_path = layout.lock_file();
        fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(not_writable(&lock_path))?;
        let (mut probe, probe_path) = create_temp(&tmp, "probe-").map_err(into_not_writable)?;
        probe
            .write_all(b"probe")
            .map_err(not_writable(probe_path.path()))?;
        drop(probe_path);
        Ok(Store { layout })
    }

    /// The store root.
    pub fn root(&self) -> &Path {
        self.layout.root()
    }

    /// The paths of this store.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Takes the shared lock, blocking while `gc`/`verify` run. Builders hold it for the whole
    /// build so that `gc` cannot delete blobs they have written but not yet rooted.
    pub fn lock_shared(&self) -> Result<StoreLock, StoreError> {
        lock::acquire(&self.layout.lock_file(), false)
    }

    /// Takes the exclusive lock, blocking while anyone holds any lock.
    pub fn lock_exclusive(&self) -> Result<StoreLock, StoreError> {
        lock::acquire(&self.layout.lock_file(), true)
    }

    /// Takes the exclusive lock if nobody holds any lock; `None` otherwise.
    pub fn try_lock_exclusive(&self) -> Result<Option<StoreLock>, StoreError> {
        lock::try_acquire_exclusive(&self.layout.lock_file())
    }

    /// Whether the blob is present (as a regular file; its content is trusted, see `verify`).
    pub fn has_blob(&self, d: &Digest) -> bool {
        fs::symlink_metadata(self.blob_path(d)).is_ok_and(|m| m.is_file())
    }

    /// Where the blob is (or would be): `root/v1/blobs/sha256/<hex>`.
    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.layout.blob(d)
    }

    /// The blob's size, or `None` if it is not in the store.
    pub fn blob_size(&self, d: &Digest) -> Result<Option<u64>, StoreError> {
        let path = self.blob_path(d);
        match fs::symlink_metadata(&path) {
            Ok(m) if m.is_file() => Ok(Some(m.len())),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::io(&path, e)),
        }
    }

    /// Opens the blob for reading; [`StoreError::MissingBlob`] if it is not in the store.
    pub fn open_blob(&self, d: &Digest) -> Result<File, StoreError> {
        let path = self.blob_path(d);
        File::open(&path).map_err(|e| match e.kind() {
            ErrorKind::NotFound => StoreError::MissingBlob { digest: d.clone() },
            _ => StoreError::io(&path, e),
        })
    }

    /// Reads a whole blob into memory (for small JSON documents: parsing a slice is several
    /// times faster than parsing through a reader); [`StoreError::MissingBlob`] if absent.
    pub fn read_blob(&self, d: &Digest) -> Result<Vec<u8>, StoreError> {
        let path = self.blob_path(d);
        std::fs::read(&path).map_err(|e| match e.kind() {
            ErrorKind::NotFound => StoreError::MissingBlob { digest: d.clone() },
            _ => StoreError::io(&path, e),
        })
    }

    /// Starts writing a blob (a temp file in `v1/tmp/`); see [`BlobWriter`].
    pub fn blob_writer(&self) -> Result<BlobWriter, StoreError> {
        let (file, temp) = create_temp(&self.layout.tmp_dir(), "blob-")?;
        Ok(BlobWriter::new(file, temp, self.layout.clone()))
    }

    /// Stores `bytes` as a blob; returns its digest and size. Writes nothing if the blob is
    /// already present.
    pub fn put_blob_bytes(&self, bytes: &[u8]) -> Result<(Digest, u64), StoreError> {
        let digest = Digest::of_bytes(bytes);
        let len = bytes.len() as u64;
        if self.blob_size(&digest)? == Some(len) {
            return Ok((digest, len));
        }
        let mut w = self.blob_writer()?;
        w.write_all(bytes)
            .map_err(|e| crate::error::from_write_error(e, &self.layout.tmp_dir()))?;
        w.commit(Some(&digest))
    }

    /// Reads a node record; `None` if there is none.
    ///
    /// A record that does not parse is moved to `v1/quarantine/` and reported as absent: a
    /// crash never leaves a half-written record (records appear by rename), so such a record
    /// is corrupt and must not be trusted. The caller then rebuilds the node.
    pub fn get_node(&self, id: &NodeId) -> Result<Option<NodeRecord>, StoreError> {
        let path = self.layout.node(id);
        let Some(bytes) = read_if_exists(&path)? else {
            return Ok(None);
        };
        match records::decode(&bytes, &path) {
            Ok(rec) => Ok(Some(rec)),
            Err(_) => {
                self.quarantine(&path, "node")?;
                Ok(None)
            }
        }
    }

    /// Whether a record for the node exists (without parsing it).
    pub fn has_node(&self, id: &NodeId) -> bool {
        fs::symlink_metadata(self.layout.node(id)).is_ok_and(|m| m.is_file())
    }

    /// Writes a node record atomically (temp, fsync, rename, fsync dir).
    ///
    /// Everything the record references must already be in the store: every blob in
    /// `rec.blobs` and a record for every node in `rec.children`; otherwise
    /// [`StoreError::IncompleteNode`] and nothing is written. This keeps the invariant that
    /// `verify` checks: a record is trusted only if all it points to is there.
    pub fn put_node(&self, id: &NodeId, rec: &NodeRecord) -> Result<(), StoreError> {
        if let Some(d) = rec.blobs.iter().find(|d| !self.has_blob(d)) {
            return Err(StoreError::IncompleteNode {
                node: *id,
                what: format!("blob {d}"),
            });
        }
        if let Some(c) = rec.children.iter().find(|c| !self.has_node(c)) {
            return Err(StoreError::IncompleteNode {
                node: *id,
                what: format!("child node {c}"),
            });
        }
        let path = self.layout.node(id);
        let bytes = records::encode(rec, &path)?;
        write_atomic(&self.layout.tmp_dir(), &path, &bytes, NODE_MODE)
    }

    /// Creates or replaces the gc root `name` atomically.
    ///
    /// `name` must be one safe path segment (see [`layout::check_root_name`]): names with
    /// `/`, `\`, NUL or control characters, names starting with `.`, and empty or over-long
    /// names are rejected with [`StoreError::BadName`].
    pub fn set_root(&self, name: &str, rec: &RootRecord) -> Result<(), StoreError> {
        let path = self.layout.root_record(name)?;
        let bytes = records::encode(rec, &path)?;
        write_atomic(&self.layout.tmp_dir(), &path, &bytes, ROOT_MODE)
    }

    /// Removes the gc root `name`; `false` if there was none.
    pub fn remove_root(&self, name: &str) -> Result<bool, StoreError> {
        let path = self.layout.root_record(name)?;
        match fs::remove_file(&path) {
            Ok(()) => {
                fsync_dir(&self.layout.roots_dir())?;
                Ok(true)
            }
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(StoreError::io(&path, e)),
        }
    }

    /// All gc roots, sorted by name.
    ///
    /// A root record that does not parse is an error ([`StoreError::CorruptRecord`]), not
    /// skipped: skipping it would let `gc` delete what it protects. Files in `roots/` whose
    /// names are not `<valid name>.json` are ignored.
    pub fn roots(&self) -> Result<Vec<(String, RootRecord)>, StoreError> {
        let mut out = Vec::new();
        for (file_name, path) in list_dir(&self.layout.roots_dir())? {
            let Some(name) = layout::parse_root_name(&file_name) else {
                continue;
            };
            let Some(bytes) = read_if_exists(&path)? else {
                continue; // removed since listed
            };
            out.push((name, records::decode(&bytes, &path)?));
        }
        Ok(out)
    }

    /// Moves `path` to `v1/quarantine/<category>.<file name>.<unique>`; returns the new path,
    /// or `None` if `path` vanished meanwhile (someone else moved it).
    pub(crate) fn quarantine(
        &self,
        path: &Path,
        category: &str,
    ) -> Result<Option<PathBuf>, StoreError> {
        let qdir = self.layout.quarantine_dir();
        fs::create_dir_all(&qdir).map_err(io_at(&qdir))?;
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let dest = qdir.join(unique_name(&format!("{category}.{file_name}.")));
        match fs::rename(path, &dest) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StoreError::io(path, e)),
        }
        fsync_dir(&qdir)?;
        if let Some(parent) = path.parent() {
            fsync_dir(parent)?;
        }
        Ok(Some(dest))
    }
}

/// Turns a failure while creating the store into [`StoreError::NotWritable`].
fn into_not_writable(e: StoreError) -> StoreError {
    match e {
        StoreError::Io { path, source } => StoreError::NotWritable { path, source },
        other => other,
    }
}

/// Reads a whole file; `None` if it does not exist.
pub(crate) fn read_if_exists(path: &Path) -> Result<Option<Vec<u8>>, StoreError> {
    match fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StoreError::io(path, e)),
    }
}

/// The entries of `dir` as (file name, path), sorted by name so reports are deterministic.
/// A missing directory has no entries.
pub(crate) fn list_dir(dir: &Path) -> Result<Vec<(OsString, PathBuf)>, StoreError> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(StoreError::io(dir, e)),
    };
    let mut out = Vec::new();
    for entry in rd {
        let entry = entry.map_err(io_at(dir))?;
        out.push((entry.file_name(), entry.path()));
    }
    out.sort();
    Ok(out)
}
