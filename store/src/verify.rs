//! `Store::verify`: re-hash every blob, check every node record and gc root, and optionally
//! move what is corrupt to `v1/quarantine/`.
//!
//! What counts as a problem:
//! - a blob whose content does not hash to its name (quarantined);
//! - an entry in `blobs/sha256/` or `nodes/` whose name is not a digest / `<node-id>.json`, or
//!   that is not a regular file (quarantined);
//! - a node record that does not parse, or references a blob that is missing or corrupt, or a
//!   child node that is missing or itself bad (quarantined; this propagates to parents, so
//!   every record left behind points only at good things);
//! - a gc root that does not parse, or references a missing blob or node (reported only: roots
//!   are the user's, and a build recreates what they point to).
//!
//! Verification holds the exclusive lock: no build runs meanwhile.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::digest::{Digest, Sha256Writer};
use crate::error::{StoreError, io_at};
use crate::layout;
use crate::nodeid::NodeId;
use crate::records::{self, NodeRecord, RootRecord};
use crate::store::{Store, list_dir, read_if_exists};

/// What `verify` found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VerifyReport {
    /// Blobs re-hashed.
    pub blobs_checked: u64,
    /// Bytes re-hashed.
    pub bytes_checked: u64,
    /// Node records checked.
    pub nodes_checked: u64,
    /// Everything wrong, in the order found.
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    /// Whether no problem was found.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// One thing `verify` found wrong.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    /// The file (where it was found, before any quarantine).
    pub path: PathBuf,
    /// What is wrong, one sentence.
    pub what: String,
    /// Whether it was moved to `v1/quarantine/`.
    pub quarantined: bool,
}

impl Store {
    /// Checks the whole store; see the `verify` module docs. With `quarantine`, corrupt blobs
    /// and records are moved to `v1/quarantine/` (so `has_blob`/`get_node` stop seeing them);
    /// without, they are only reported.
    ///
    /// Takes the exclusive lock itself (blocking): do not call it while holding a lock.
    /// Blobs are hashed as streams, so memory use does not depend on blob size.
    pub fn verify(&self, quarantine: bool) -> Result<VerifyReport, StoreError> {
        let _lock = self.lock_exclusive()?;
        let mut v = Verifier {
            store: self,
            quarantine,
            report: VerifyReport::default(),
        };
        let good_blobs = v.blobs()?;
        let good_nodes = v.nodes(&good_blobs)?;
        v.roots(&good_blobs, &good_nodes)?;
        Ok(v.report)
    }
}

struct Verifier<'a> {
    store: &'a Store,
    quarantine: bool,
    report: VerifyReport,
}

impl Verifier<'_> {
    /// Records a problem with an object, moving it aside if asked to.
    fn bad(&mut self, path: &Path, category: &str, what: String) -> Result<(), StoreError> {
        let quarantined = self.quarantine && self.store.quarantine(path, category)?.is_some();
        self.report.problems.push(Problem {
            path: path.to_path_buf(),
            what,
            quarantined,
        });
        Ok(())
    }

    /// Records a problem that is reported but never moved (roots).
    fn report_only(&mut self, path: &Path, what: String) {
        self.report.problems.push(Problem {
            path: path.to_path_buf(),
            what,
            quarantined: false,
        });
    }

    /// Re-hashes every blob; returns the good ones.
    fn blobs(&mut self) -> Result<BTreeSet<Digest>, StoreError> {
        let mut good = BTreeSet::new();
        for (name, path) in list_dir(&self.store.layout().blobs_dir())? {
            let Some(digest) = layout::parse_blob_name(&name) else {
                let what =
                    "unexpected entry in the blob directory: its name is not a sha256 hex digest";
                self.bad(&path, "stray", what.to_owned())?;
                continue;
            };
            if !fs::symlink_metadata(&path).map_err(io_at(&path))?.is_file() {
                self.bad(&path, "blob", "blob is not a regular file".to_owned())?;
                continue;
            }
            let (actual, len) = hash_file(&path)?;
            self.report.blobs_checked += 1;
            self.report.bytes_checked += len;
            if actual == digest {
                good.insert(digest);
            } else {
                let what =
                    format!("blob content hashes to {actual}, not to the digest it is named after");
                self.bad(&path, "blob", what)?;
            }
        }
        Ok(good)
    }

    /// Checks every node record; returns the ids of the good ones.
    fn nodes(&mut self, good_blobs: &BTreeSet<Digest>) -> Result<BTreeSet<NodeId>, StoreError> {
        let mut parsed: BTreeMap<NodeId, (PathBuf, NodeRecord)> = BTreeMap::new();
        for (name, path) in list_dir(&self.store.layout().nodes_dir())? {
            let Some(id) = layout::parse_node_name(&name) else {
                let what = "unexpected entry in the node directory: its name is not <node-id>.json";
                self.bad(&path, "stray", what.to_owned())?;
                continue;
            };
            self.report.nodes_checked += 1;
            let Some(bytes) = read_if_exists(&path)? else {
                continue;
            };
            match records::decode::<NodeRecord>(&bytes, &path) {
                Ok(rec) => {
                    parsed.insert(id, (path, rec));
                }
                Err(e) => {
                    let what = format!("node record does not parse: {}", source_text(&e));
                    self.bad(&path, "node", what)?;
                }
            }
        }

        // A node is good if all its blobs are good and all its children are good nodes.
        // Iterate to a fixed point so that badness propagates up any depth of children.
        let mut good: BTreeSet<NodeId> = parsed.keys().copied().collect();
        let mut why_bad: BTreeMap<NodeId, String> = BTreeMap::new();
        loop {
            let mut changed = false;
            for (id, (_, rec)) in &parsed {
                if !good.contains(id) {
                    continue;
                }
                let reason = if let Some(d) = rec.blobs.iter().find(|d| !good_blobs.contains(d)) {
                    Some(format!(
                        "node record references blob {d}, which is missing or corrupt"
                    ))
                } else {
                    rec.children.iter().find(|c| !good.contains(c)).map(|c| {
                        format!("node record references child node {c}, which is missing or bad")
                    })
                };
                if let Some(reason) = reason {
                    good.remove(id);
                    why_bad.insert(*id, reason);
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        for (id, what) in why_bad {
            if let Some((path, _)) = parsed.get(&id) {
                self.bad(path, "node", what)?;
            }
        }
        Ok(good)
    }

    /// Checks that every root parses and points only at good things.
    fn roots(
        &mut self,
        good_blobs: &BTreeSet<Digest>,
        good_nodes: &BTreeSet<NodeId>,
    ) -> Result<(), StoreError> {
        for (file_name, path) in list_dir(&self.store.layout().roots_dir())? {
            let Some(name) = layout::parse_root_name(&file_name) else {
                let what =
                    "unexpected entry in the roots directory: its name is not <root name>.json";
                self.report_only(&path, what.to_owned());
                continue;
            };
            let Some(bytes) = read_if_exists(&path)? else {
                continue;
            };
            let rec: RootRecord = match records::decode(&bytes, &path) {
                Ok(rec) => rec,
                Err(e) => {
                    let what = format!("root {name:?} does not parse: {}", source_text(&e));
                    self.report_only(&path, what);
                    continue;
                }
            };
            for id in rec.nodes.iter().filter(|id| !good_nodes.contains(id)) {
                let what = format!("root {name:?} references node {id}, which is missing or bad");
                self.report_only(&path, what);
            }
            for d in rec.blobs.iter().filter(|d| !good_blobs.contains(d)) {
                let what =
                    format!("root {name:?} references blob {d}, which is missing or corrupt");
                self.report_only(&path, what);
            }
        }
        Ok(())
    }
}

/// sha256 and length of a file, read as a stream.
fn hash_file(path: &Path) -> Result<(Digest, u64), StoreError> {
    let mut file = File::open(path).map_err(io_at(path))?;
    let mut sink = Sha256Writer::new(io::sink());
    io::copy(&mut file, &mut sink).map_err(io_at(path))?;
    let (_, digest, len) = sink.finish();
    Ok((digest, len))
}

/// The cause of an error, for a one-line problem description.
fn source_text(e: &StoreError) -> String {
    match std::error::Error::source(e) {
        Some(s) => s.to_string(),
        None => e.to_string(),
    }
}
