//! `Store::du`: how much space each part of the store takes, and how much of the blobs and
//! node records `gc` would keep (reachable) or free (unreachable).

use std::fs;
use std::io::ErrorKind;
use std::path::Path;

use serde::Serialize;

use crate::error::StoreError;
use crate::gc::tree_size;
use crate::layout;
use crate::store::{Store, list_dir};

/// A number of entries and their total size.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DuCount {
    /// Number of entries.
    pub count: u64,
    /// Their total size in bytes (directories: the files under them).
    pub bytes: u64,
}

impl DuCount {
    fn add(&mut self, bytes: u64) {
        self.count += 1;
        self.bytes += bytes;
    }
}

/// Space used by the store.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DuReport {
    /// Blobs (`blobs/sha256/`).
    pub blobs: DuCount,
    /// Node records (`nodes/`).
    pub nodes: DuCount,
    /// Root records (`roots/`).
    pub roots: DuCount,
    /// Leftover temp files (`tmp/`), removed by `gc`.
    pub tmp: DuCount,
    /// Entries moved aside by `verify`/`get_node` (`quarantine/`); never removed automatically.
    pub quarantine: DuCount,
    /// Blobs and node records reachable from the roots (what `gc` keeps).
    pub reachable: DuCount,
    /// Blobs and node records not reachable from any root (what `gc` frees).
    pub unreachable: DuCount,
    /// Everything above, in bytes.
    pub total_bytes: u64,
}

impl Store {
    /// Measures the store. Takes no lock: it only reads, and with builds running the numbers
    /// are a snapshot that may be slightly off. Fails if a root record is corrupt (reachability
    /// cannot be known then).
    pub fn du(&self) -> Result<DuReport, StoreError> {
        let layout = self.layout();
        let reach = self.reachable()?;
        let mut r = DuReport::default();

        for (name, path) in list_dir(&layout.blobs_dir())? {
            let Some(bytes) = file_size(&path)? else {
                continue;
            };
            r.blobs.add(bytes);
            match layout::parse_blob_name(&name) {
                Some(d) if reach.blobs.contains(&d) => r.reachable.add(bytes),
                _ => r.unreachable.add(bytes),
            }
        }
        for (name, path) in list_dir(&layout.nodes_dir())? {
            let Some(bytes) = file_size(&path)? else {
                continue;
            };
            r.nodes.add(bytes);
            match layout::parse_node_name(&name) {
                Some(id) if reach.nodes.contains(&id) => r.reachable.add(bytes),
                _ => r.unreachable.add(bytes),
            }
        }
        for (dir, count) in [
            (layout.roots_dir(), &mut r.roots),
            (layout.tmp_dir(), &mut r.tmp),
            (layout.quarantine_dir(), &mut r.quarantine),
        ] {
            for (_, path) in list_dir(&dir)? {
                if let Some((_, bytes)) = tree_size(&path)? {
                    count.add(bytes);
                }
            }
        }
        r.total_bytes = [r.blobs, r.nodes, r.roots, r.tmp, r.quarantine]
            .iter()
            .map(|c| c.bytes)
            .sum();
        Ok(r)
    }
}

/// Size of a file, `None` if it vanished since it was listed.
fn file_size(path: &Path) -> Result<Option<u64>, StoreError> {
    match fs::symlink_metadata(path) {
        Ok(m) => Ok(Some(m.len())),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StoreError::io(path, e)),
    }
}
