//! `Store::gc`: mark everything reachable from the gc roots, sweep the rest, empty `tmp/`.
//!
//! Mark: every root's `nodes` and `blobs`; for each marked node, its record's `blobs` and
//! `children`, recursively. A node is marked by id even if its record is missing or does not
//! parse (gc never deletes something a root names; `verify` deals with corruption).
//!
//! Sweep order is chosen so that a crash mid-gc leaves a consistent store: unreachable node
//! records go first, then unreachable blobs (a reachable record never points at an
//! unreachable blob, and after the first phase no unreachable record is left to point at one).
//! `quarantine/` is left alone for a person to inspect.
//!
//! gc holds the exclusive lock, so no build is running: nothing in `tmp/` is in use, and no
//! freshly written but not yet rooted blob can be lost.

use std::collections::BTreeSet;
use std::fs;
use std::io::ErrorKind;
use std::path::Path;

use serde::Serialize;

use crate::atomic::fsync_dir;
use crate::digest::Digest;
use crate::error::{StoreError, io_at};
use crate::layout;
use crate::nodeid::NodeId;
use crate::records::{self, NodeRecord};
use crate::store::{Store, list_dir, read_if_exists};

/// What `gc` removed (or, in a dry run, would remove).
#[derive(Debug, Clone, Default, Serialize)]
pub struct GcReport {
    /// Unreachable blobs.
    pub blobs_removed: u64,
    /// Unreachable node records.
    pub nodes_removed: u64,
    /// Bytes of everything removed (blobs, records, tmp).
    pub bytes_freed: u64,
    /// Entries removed from `tmp/`.
    pub tmp_removed: u64,
}

/// Everything reachable from the gc roots.
#[derive(Debug, Default)]
pub(crate) struct Reachable {
    pub(crate) nodes: BTreeSet<NodeId>,
    pub(crate) blobs: BTreeSet<Digest>,
}

impl Store {
    /// Collects garbage; see the `gc` module docs. With `dry_run`, removes nothing and reports
    /// what would be removed.
    ///
    /// Takes the exclusive lock itself (blocking): do not call it while holding a lock. Fails
    /// without removing anything if a root record is corrupt.
    pub fn gc(&self, dry_run: bool) -> Result<GcReport, StoreError> {
        let _lock = self.lock_exclusive()?;
        let reach = self.reachable()?;
        let layout = self.layout();
        let mut report = GcReport::default();

        let nodes_dir = layout.nodes_dir();
        for (name, path) in list_dir(&nodes_dir)? {
            let Some(id) = layout::parse_node_name(&name) else {
                continue; // not ours to judge; `verify` reports it
            };
            if !reach.nodes.contains(&id)
                && let Some(bytes) = remove(&path, dry_run)?
            {
                report.nodes_removed += 1;
                report.bytes_freed += bytes;
            }
        }
        if !dry_run && report.nodes_removed > 0 {
            fsync_dir(&nodes_dir)?;
        }

        let blobs_dir = layout.blobs_dir();
        for (name, path) in list_dir(&blobs_dir)? {
            let Some(d) = layout::parse_blob_name(&name) else {
                continue;
            };
            if !reach.blobs.contains(&d)
                && let Some(bytes) = remove(&path, dry_run)?
            {
                report.blobs_removed += 1;
                report.bytes_freed += bytes;
            }
        }
        if !dry_run && report.blobs_removed > 0 {
            fsync_dir(&blobs_dir)?;
        }

        for (_, path) in list_dir(&layout.tmp_dir())? {
            if let Some(bytes) = remove(&path, dry_run)? {
                report.tmp_removed += 1;
                report.bytes_freed += bytes;
            }
        }
        Ok(report)
    }

    /// The mark phase: everything reachable from the roots. Reads only.
    pub(crate) fn reachable(&self) -> Result<Reachable, StoreError> {
        let mut reach = Reachable::default();
        let mut stack: Vec<NodeId> = Vec::new();
        for (_, root) in self.roots()? {
            stack.extend(root.nodes);
            reach.blobs.extend(root.blobs);
        }
        while let Some(id) = stack.pop() {
            if !reach.nodes.insert(id) {
                continue;
            }
            let path = self.layout().node(&id);
            let Some(bytes) = read_if_exists(&path)? else {
                continue;
            };
            if let Ok(rec) = records::decode::<NodeRecord>(&bytes, &path) {
                reach.blobs.extend(rec.blobs);
                stack.extend(
                    rec.children
                        .into_iter()
                        .filter(|c| !reach.nodes.contains(c)),
                );
            }
        }
        Ok(reach)
    }
}

/// Removes a file or directory tree (unless `dry_run`); returns its size in bytes, or `None`
/// if it was already gone.
fn remove(path: &Path, dry_run: bool) -> Result<Option<u64>, StoreError> {
    let Some((_, bytes)) = tree_size(path)? else {
        return Ok(None);
    };
    if dry_run {
        return Ok(Some(bytes));
    }
    let is_dir = fs::symlink_metadata(path).is_ok_and(|m| m.is_dir());
    let result = if is_dir {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    };
    match result {
        Ok(()) => Ok(Some(bytes)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StoreError::io(path, e)),
    }
}

/// Number of files and total bytes under `path` (a file counts as one); `None` if it does not
/// exist. Symlinks are not followed.
pub(crate) fn tree_size(path: &Path) -> Result<Option<(u64, u64)>, StoreError> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StoreError::io(path, e)),
    };
    if !meta.is_dir() {
        return Ok(Some((1, meta.len())));
    }
    let (mut files, mut bytes) = (0, 0);
    for entry in fs::read_dir(path).map_err(io_at(path))? {
        let entry = entry.map_err(io_at(path))?;
        if let Some((f, b)) = tree_size(&entry.path())? {
            files += f;
            bytes += b;
        }
    }
    Ok(Some((files, bytes)))
}
