//! What goes into one layer, before any byte is written: fragments, their entries in the
//! order they will be written, and the node ids that name them in the store.
//!
//! Pure: the effectful part (walking local trees and hashing their files) is
//! [`super::files`]; this module only merges the per-item entry lists into a layer plan with
//! the DESIGN's rules: entries sorted by path inside a fragment, one leading fragment holding
//! the parent directories nobody declared, no duplicate paths in a layer (identical
//! duplicates are kept once, differing ones are an error naming both items).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use composer_store::{NodeId, NodeKey};

use super::compress::Compression;
use super::tar::{EntryKind, Header};

/// Bumped whenever the bytes of a fragment or layer change for the same inputs (tar writer,
/// normalization rules, fragment framing). Part of every fragment and layer node id.
pub const FORMAT_VERSION: u32 = 1;

/// Where a file's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// Not a regular file.
    None,
    /// Bytes held in memory (inline recipe content, synthesized files).
    Inline(Arc<[u8]>),
    /// A local file, re-checked against this snapshot when it is read.
    Local {
        /// Absolute path on the build host.
        path: PathBuf,
        /// Size seen when planning.
        size: u64,
        /// Modification time (ns) seen when planning; a change while building is an error.
        mtime_ns: i128,
    },
    /// A file inside an archive in the store (a `.deb`), read after the archive is
    /// extracted by a [`super::build::Materializer`] (only when the fragment is not stored yet).
    Extracted {
        /// The archive blob.
        archive: composer_store::Digest,
        /// Path of the file below the extraction directory (the image path, relative).
        path: String,
    },
}

/// One planned archive entry: its header, where its bytes come from, and the blake3 of
/// those bytes (all zeros for non-files).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedEntry {
    /// Tar header (path relative to the image root).
    pub header: Header,
    /// Content source.
    pub content: Content,
    /// blake3 of the content, for the node id and duplicate detection.
    pub content_hash: [u8; 32],
}

impl PlannedEntry {
    /// A regular file with in-memory content, owned by root.
    #[must_use]
    pub fn inline_file(path: impl Into<String>, mode: u32, body: Arc<[u8]>) -> Self {
        Self {
            header: Header {
                path: path.into(),
                mode,
                uid: 0,
                gid: 0,
                kind: EntryKind::File {
                    size: body.len() as u64,
                },
            },
            content_hash: *blake3::hash(&body).as_bytes(),
            content: Content::Inline(body),
        }
    }

    /// A directory owned by root.
    #[must_use]
    pub fn dir(path: impl Into<String>, mode: u32) -> Self {
        Self {
            header: Header {
                path: path.into(),
                mode,
                uid: 0,
                gid: 0,
                kind: EntryKind::Dir,
            },
            content: Content::None,
            content_hash: [0; 32],
        }
    }

    /// A symbolic link (mode 0777) owned by root.
    #[must_use]
    pub fn symlink(path: impl Into<String>, target: impl Into<String>) -> Self {
        Self {
            header: Header {
                path: path.into(),
                mode: 0o777,
                uid: 0,
                gid: 0,
                kind: EntryKind::Symlink {
                    target: target.into(),
                },
            },
            content: Content::None,
            content_hash: [0; 32],
        }
    }
}

/// The entries one recipe item (or one package) contributes, before merging.
#[derive(Debug, Clone)]
pub struct ItemEntries {
    /// Human label naming the item in errors and `compose graph` (`copy hello → /opt/hello`).
    pub label: String,
    /// Entries in any order.
    pub entries: Vec<PlannedEntry>,
}

/// One fragment: a sorted run of entries written as one compressed frame.
#[derive(Debug, Clone)]
pub struct FragmentPlan {
    /// What produced it.
    pub label: String,
    /// Entries in write order.
    pub entries: Vec<PlannedEntry>,
    /// Uncompressed length (tar headers + padded content).
    pub tar_len: u64,
}

/// A whole layer, ready to build.
#[derive(Debug, Clone)]
pub struct LayerPlan {
    /// Layer name from the recipe.
    pub name: String,
    /// Fragments in order: synthesized parent directories first (if any), then items.
    pub fragments: Vec<FragmentPlan>,
}

/// A merge conflict: the same path from two items with different content or metadata.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// Same path, different entries.
    #[error("/{path} is placed by both `{first}` and `{second}` with different {what}")]
    Conflict {
        /// Layer name.
        layer: String,
        /// Conflicting path.
        path: String,
        /// Earlier item.
        first: String,
        /// Later item.
        second: String,
        /// What differs.
        what: &'static str,
    },
    /// An entry below a path that another item placed as a non-directory.
    #[error(
        "`{item}` places /{path}, but /{parent} is not a directory (placed by `{parent_item}`)"
    )]
    ParentNotDir {
        /// Layer name.
        layer: String,
        /// Item placing the child.
        item: String,
        /// Child path.
        path: String,
        /// The non-directory ancestor.
        parent: String,
        /// Item that placed the ancestor.
        parent_item: String,
    },
}

/// Merges item entry lists into a layer plan.
///
/// # Errors
/// [`PlanError`] on conflicting duplicates or a path below a non-directory.
pub fn plan_layer(name: &str, items: Vec<ItemEntries>) -> Result<LayerPlan, PlanError> {
    // path -> (item index, entry) of the first occurrence
    let mut seen: BTreeMap<String, (usize, PlannedEntry)> = BTreeMap::new();
    let mut fragments = Vec::with_capacity(items.len() + 1);
    let labels: Vec<String> = items.iter().map(|i| i.label.clone()).collect();
    for (idx, item) in items.into_iter().enumerate() {
        let mut kept = Vec::with_capacity(item.entries.len());
        let mut entries = item.entries;
        entries.sort_by(|a, b| a.header.path.as_bytes().cmp(b.header.path.as_bytes()));
        for e in entries {
            if let Some((first, prev)) = seen.get(&e.header.path) {
                if let Some(what) = difference(prev, &e) {
                    return Err(PlanError::Conflict {
                        layer: name.into(),
                        path: e.header.path.clone(),
                        first: labels[*first].clone(),
                        second: item.label.clone(),
                        what,
                    });
                }
                continue; // identical: keep the first copy only
            }
            seen.insert(e.header.path.clone(), (idx, e.clone()));
            kept.push(e);
        }
        fragments.push(FragmentPlan {
            label: item.label,
            tar_len: tar_len(&kept),
            entries: kept,
        });
    }

    // Parent directories nobody declared, and parents that are not directories.
    let mut parents: BTreeSet<String> = BTreeSet::new();
    for (path, (idx, _)) in &seen {
        let mut p = path.as_str();
        while let Some(i) = p.rfind('/') {
            p = &p[..i];
            match seen.get(p) {
                Some((_, e)) if e.header.kind == EntryKind::Dir => {}
                Some((pidx, _)) => {
                    return Err(PlanError::ParentNotDir {
                        layer: name.into(),
                        item: labels[*idx].clone(),
                        path: path.clone(),
                        parent: p.to_string(),
                        parent_item: labels[*pidx].clone(),
                    });
                }
                None => {
                    parents.insert(p.to_string());
                }
            }
        }
    }
    if !parents.is_empty() {
        let entries: Vec<PlannedEntry> = parents
            .into_iter()
            .map(|path| PlannedEntry::dir(path, 0o755))
            .collect();
        fragments.insert(
            0,
            FragmentPlan {
                label: "parent directories".into(),
                tar_len: tar_len(&entries),
                entries,
            },
        );
    }
    fragments.retain(|f| !f.entries.is_empty());
    Ok(LayerPlan {
        name: name.into(),
        fragments,
    })
}

fn difference(a: &PlannedEntry, b: &PlannedEntry) -> Option<&'static str> {
    if std::mem::discriminant(&a.header.kind) != std::mem::discriminant(&b.header.kind) {
        return Some("types");
    }
    if a.header.kind != b.header.kind || a.content_hash != b.content_hash {
        return Some("content");
    }
    if a.header.mode != b.header.mode {
        return Some("modes");
    }
    if (a.header.uid, a.header.gid) != (b.header.uid, b.header.gid) {
        return Some("owners");
    }
    None
}

fn tar_len(entries: &[PlannedEntry]) -> u64 {
    entries
        .iter()
        .map(|e| super::tar::entry_len(&e.header))
        .sum()
}

impl FragmentPlan {
    /// The fragment's node id: everything that determines its compressed bytes.
    #[must_use]
    pub fn node_id(&self, compression: Compression, mtime: u64) -> NodeId {
        let mut k = NodeKey::new("fragment", FORMAT_VERSION);
        k.str("compression", &compression.key()).u64("mtime", mtime);
        k.u64("entries", self.entries.len() as u64);
        for e in &self.entries {
            let h = &e.header;
            k.str("path", &h.path).u64("mode", u64::from(h.mode));
            k.u64("uid", u64::from(h.uid)).u64("gid", u64::from(h.gid));
            match &h.kind {
                EntryKind::Dir => k.str("kind", "dir"),
                EntryKind::File { size } => k
                    .str("kind", "file")
                    .u64("size", *size)
                    .bytes("blake3", &e.content_hash),
                EntryKind::Symlink { target } => k.str("kind", "symlink").str("target", target),
                EntryKind::HardLink { target } => k.str("kind", "hardlink").str("target", target),
            };
        }
        k.finish()
    }
}

/// Rewrites `path` through directory symlinks of a lower layer (`bin` → `usr/bin`, given as
/// `(link path, relative target)`): `bin/x` becomes `usr/bin/x`; `bin` itself is left alone.
#[must_use]
pub fn through_links(path: &str, links: &[(String, String)]) -> String {
    for (link, target) in links {
        if let Some(rest) = path
            .strip_prefix(link.as_str())
            .and_then(|r| r.strip_prefix('/'))
        {
            let parent = link.rsplit_once('/').map_or("", |(p, _)| p);
            let base = if parent.is_empty() {
                target.clone()
            } else {
                format!("{parent}/{target}")
            };
            return format!("{base}/{rest}");
        }
    }
    path.to_string()
}

/// The node id of the constant end-of-archive fragment.
#[must_use]
pub fn end_marker_id(compression: Compression) -> NodeId {
    let mut k = NodeKey::new("end-marker", FORMAT_VERSION);
    k.str("compression", &compression.key());
    k.finish()
}

/// A layer's node id: its fragments, in order, plus the end marker.
#[must_use]
pub fn layer_id(fragment_ids: &[NodeId], compression: Compression) -> NodeId {
    let mut k = NodeKey::new("layer", FORMAT_VERSION);
    k.str("compression", &compression.key());
    for f in fragment_ids {
        k.node("fragment", f);
    }
    k.node("end", &end_marker_id(compression));
    k.finish()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn file(path: &str, body: &[u8], mode: u32) -> PlannedEntry {
        PlannedEntry {
            header: Header {
                path: path.into(),
                mode,
                uid: 0,
                gid: 0,
                kind: EntryKind::File {
                    size: body.len() as u64,
                },
            },
            content: Content::Inline(body.into()),
            content_hash: *blake3::hash(body).as_bytes(),
        }
    }
    fn dir(path: &str) -> PlannedEntry {
        PlannedEntry {
            header: Header {
                path: path.into(),
                mode: 0o755,
                uid: 0,
                gid: 0,
                kind: EntryKind::Dir,
            },
            content: Content::None,
            content_hash: [0; 32],
        }
    }
    fn item(label: &str, entries: Vec<PlannedEntry>) -> ItemEntries {
        ItemEntries {
            label: label.into(),
            entries,
        }
    }

    #[test]
    fn sorts_entries_and_synthesizes_parents_first() {
        let plan = plan_layer(
            "l",
            vec![item(
                "a",
                vec![
                    file("opt/app/z", b"z", 0o644),
                    file("opt/app/a", b"a", 0o644),
                ],
            )],
        )
        .unwrap();
        assert_eq!(plan.fragments.len(), 2);
        let parents: Vec<_> = plan.fragments[0]
            .entries
            .iter()
            .map(|e| e.header.path.as_str())
            .collect();
        assert_eq!(parents, ["opt", "opt/app"]);
        let files: Vec<_> = plan.fragments[1]
            .entries
            .iter()
            .map(|e| e.header.path.as_str())
            .collect();
        assert_eq!(files, ["opt/app/a", "opt/app/z"]);
    }

    #[test]
    fn identical_duplicates_are_kept_once() {
        let plan = plan_layer(
            "l",
            vec![
                item("a", vec![dir("d"), file("d/x", b"1", 0o644)]),
                item("b", vec![dir("d"), file("d/x", b"1", 0o644)]),
            ],
        )
        .unwrap();
        assert_eq!(plan.fragments.len(), 1, "the second item adds nothing");
    }

    #[test]
    fn differing_duplicates_name_both_items() {
        let err = plan_layer(
            "l",
            vec![
                item("copy a", vec![file("x", b"1", 0o644)]),
                item("copy b", vec![file("x", b"2", 0o644)]),
            ],
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "/x is placed by both `copy a` and `copy b` with different content"
        );
        let err = plan_layer(
            "l",
            vec![
                item("a", vec![file("x", b"1", 0o644)]),
                item("b", vec![file("x", b"1", 0o755)]),
            ],
        )
        .unwrap_err();
        assert!(err.to_string().ends_with("different modes"));
    }

    #[test]
    fn child_of_a_file_is_an_error() {
        let err = plan_layer(
            "l",
            vec![
                item("a", vec![file("x", b"1", 0o644)]),
                item("b", vec![file("x/y", b"2", 0o644)]),
            ],
        )
        .unwrap_err();
        assert!(matches!(err, PlanError::ParentNotDir { .. }), "{err}");
    }

    #[test]
    fn paths_below_lower_layer_links_are_rewritten() {
        let links = vec![
            ("bin".to_string(), "usr/bin".to_string()),
            ("lib64".to_string(), "usr/lib64".to_string()),
        ];
        assert_eq!(through_links("bin/tool", &links), "usr/bin/tool");
        assert_eq!(through_links("bin", &links), "bin");
        assert_eq!(through_links("binary/x", &links), "binary/x");
        assert_eq!(through_links("lib64/ld.so", &links), "usr/lib64/ld.so");
        assert_eq!(through_links("opt/bin/x", &links), "opt/bin/x");
    }

    #[test]
    fn node_ids_follow_content_and_params() {
        let p = plan_layer("l", vec![item("a", vec![file("x", b"1", 0o644)])]).unwrap();
        let q = plan_layer(
            "other-name",
            vec![item("other-label", vec![file("x", b"1", 0o644)])],
        )
        .unwrap();
        let r = plan_layer("l", vec![item("a", vec![file("x", b"2", 0o644)])]).unwrap();
        let z = Compression::default();
        let f = |p: &LayerPlan| p.fragments[0].node_id(z, 0);
        assert_eq!(f(&p), f(&q), "labels and layer names do not change bytes");
        assert_ne!(f(&p), f(&r));
        assert_ne!(p.fragments[0].node_id(z, 0), p.fragments[0].node_id(z, 1));
        assert_ne!(
            p.fragments[0].node_id(z, 0),
            p.fragments[0].node_id(Compression::gzip(), 0)
        );
    }
}
