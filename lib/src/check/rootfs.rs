//! An in-memory index of an image's merged file tree, built from its layers.
//!
//! [`Rootfs::read`] streams every layer with [`crate::oci::walk::walk_layers`] and keeps,
//! per path, only what the checks need: the kind, mode and link target, the parsed
//! [`ElfFacts`] of ELF files (never their bytes), and the text of the few small metadata
//! files the checks read (`ld.so.conf`, dpkg's database, `*.dist-info/{WHEEL,METADATA,RECORD}`).
//! Files under `/usr/lib/debug` (detached debug information) are not read as ELF.
//! Memory is bounded by the number of paths, not the image size: an ELF file larger than
//! [`SPOOL_OVER`] is spooled to an anonymous temporary file to be parsed with seeks.
//!
//! Layers are merged bottom first whatever order an archive stores them in: whiteouts
//! (`.wh.NAME`) remove a lower path and everything below it, opaque markers
//! (`.wh..wh..opq`) hide a directory's lower contents, and a non-directory replacing a
//! directory removes its children. [`Rootfs::resolve`] follows symlinks inside the image
//! root (absolute targets are relative to it, `..` stops at it, at most [`MAX_LINKS`] links).
//! [`Rootfs::from_nodes`] builds an index from plain data, for tests and other front ends.
//!
//! [`Rootfs::read_cached`] keeps each layer's index in the store, keyed by the layer's
//! diff_id (its uncompressed content) and composer's version: a layer checked before (the
//! Debian base under a new Python layer) is not decompressed again. [`IndexTap`] computes
//! that index while a build assembles the layer, from the bytes it hashes into the diff_id.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use composer_store::{Digest, NodeKey, NodeRecord, Store};
use serde::{Deserialize, Serialize};

use super::elf::{self, ElfFacts, ReadAt};
use crate::oci::read::ImageView;
use crate::oci::walk::{Entry, Kind, WalkError, walk_layers_while};

/// ELF files larger than this are spooled to a temporary file instead of memory.
pub const SPOOL_OVER: u64 = 64 << 20;
/// Metadata files larger than this are not kept (and reported).
pub const MAX_TEXT: u64 = 32 << 20;
/// Symlinks followed while resolving one path (Linux's limit).
pub const MAX_LINKS: usize = 40;

/// What a path is in the merged tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Node {
    /// A directory.
    Dir,
    /// A symlink and its target, as stored.
    Symlink(String),
    /// A regular file.
    File(FileInfo),
    /// A device, FIFO or anything else.
    Other,
}

/// A regular file's facts.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FileInfo {
    /// Permission bits.
    pub mode: u32,
    /// Size in bytes.
    pub size: u64,
    /// The ELF facts, or why the file could not be read as ELF (`None`: not ELF).
    pub elf: Option<Result<ElfFacts, String>>,
    /// The content of a metadata file the checks read.
    pub text: Option<String>,
}

/// The merged tree: normalized paths (no leading `/`) to nodes.
#[derive(Debug, Clone, Default)]
pub struct Rootfs {
    /// Every path.
    pub nodes: BTreeMap<String, Node>,
    /// The config's `Env` (`KEY=VALUE`).
    pub env: Vec<String>,
    /// The config's architecture (`amd64`).
    pub architecture: String,
    /// The config's labels.
    pub labels: BTreeMap<String, String>,
}

/// One layer's entries before merging: path → node, `None` for a whiteout; opaque dirs.
#[derive(Default, Serialize, Deserialize)]
struct LayerIndex {
    entries: BTreeMap<String, Option<Node>>,
    opaque: Vec<String>,
}

/// Bumped when what a layer index holds changes.
const LAYER_INDEX_VERSION: u32 = 1;

/// The store node holding the check's index of the layer with `diff_id`.
fn layer_index_id(diff_id: &Digest) -> composer_store::NodeId {
    let mut key = NodeKey::new("check-layer-index", LAYER_INDEX_VERSION);
    key.digest("diff_id", diff_id)
        .str("composer", env!("CARGO_PKG_VERSION"));
    key.finish()
}

fn load_index(store: &Store, id: &composer_store::NodeId) -> Option<LayerIndex> {
    let rec = store.get_node(id).ok()??;
    let bytes = store.read_blob(rec.blobs.first()?).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn save_index(store: &Store, id: &composer_store::NodeId, layer: &LayerIndex) {
    let Ok(json) = serde_json::to_vec(layer) else {
        return;
    };
    if let Ok((blob, _)) = store.put_blob_bytes(&json) {
        let _ = store.put_node(
            id,
            &NodeRecord {
                kind: "check-layer-index".into(),
                blobs: vec![blob],
                children: vec![],
                meta: serde_json::json!({ "paths": layer.entries.len() }),
            },
        );
    }
}

/// Whether the checks keep this file's text.
#[must_use]
pub fn wants_text(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    let parent = path.rsplit_once('/').map_or("", |(p, _)| p);
    path == "etc/ld.so.conf"
        || (parent == "etc/ld.so.conf.d" && name.ends_with(".conf"))
        || parent == "var/lib/dpkg/status.d"
        || path == "var/lib/dpkg/status"
        || (parent == "var/lib/dpkg/info"
            && (name.ends_with(".list") || name.ends_with(".md5sums")))
        || (parent.ends_with(".dist-info") && matches!(name, "WHEEL" | "METADATA" | "RECORD"))
}

/// A spooled or in-memory ELF file.
struct Spooled(std::fs::File, u64);

impl ReadAt for Spooled {
    fn size(&self) -> u64 {
        self.1
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), String> {
        use std::os::unix::fs::FileExt;
        if offset.saturating_add(buf.len() as u64) > self.1 {
            return Err(format!("{} bytes at {offset} are past the end", buf.len()));
        }
        self.0.read_exact_at(buf, offset).map_err(|e| e.to_string())
    }
}

/// Reads a file's content into its [`FileInfo`]: ELF facts or kept text.
fn file_info(e: &Entry, r: &mut dyn Read) -> Result<FileInfo, String> {
    let mut info = FileInfo {
        mode: e.mode,
        size: e.size,
        ..FileInfo::default()
    };
    if wants_text(&e.path) {
        if e.size > MAX_TEXT {
            return Ok(info);
        }
        let mut buf = Vec::new();
        r.read_to_end(&mut buf)
            .map_err(|err| format!("{}: {err}", e.path))?;
        info.text = Some(String::from_utf8_lossy(&buf).into_owned());
        return Ok(info);
    }
    // Detached debug information: ELF headers over sections that are not in the file.
    if e.size < 16 || e.path.starts_with("usr/lib/debug/") {
        return Ok(info);
    }
    let mut head = [0u8; 4];
    r.read_exact(&mut head)
        .map_err(|err| format!("{}: {err}", e.path))?;
    if !elf::is_elf(&head) {
        return Ok(info);
    }
    let facts = if e.size <= SPOOL_OVER {
        let mut buf = head.to_vec();
        r.read_to_end(&mut buf)
            .map_err(|err| format!("{}: {err}", e.path))?;
        elf::parse(buf.as_slice())
    } else {
        let mut f = tempfile::tempfile().map_err(|err| format!("temporary file: {err}"))?;
        std::io::Write::write_all(&mut f, &head).map_err(|err| format!("spool: {err}"))?;
        let n = std::io::copy(r, &mut f).map_err(|err| format!("{}: {err}", e.path))?;
        elf::parse(&Spooled(f, n + 4))
    };
    info.elf = Some(facts.map_err(|err| err.to_string()));
    Ok(info)
}

/// Removes `path` and everything below it.
fn remove_tree<V>(map: &mut BTreeMap<String, V>, path: &str) {
    map.remove(path);
    remove_children(map, path);
}

/// Removes everything below `dir` (not `dir` itself).
fn remove_children<V>(map: &mut BTreeMap<String, V>, dir: &str) {
    let prefix = if dir == "." || dir.is_empty() {
        String::new()
    } else {
        format!("{dir}/")
    };
    let doomed: Vec<String> = map
        .range(prefix.clone()..)
        .take_while(|(k, _)| k.starts_with(&prefix))
        .map(|(k, _)| k.clone())
        .collect();
    for k in doomed {
        map.remove(&k);
    }
}

/// Adds one entry of a layer's tar to its index.
fn index_entry(layer: &mut LayerIndex, e: &Entry, r: &mut dyn Read) -> Result<bool, String> {
    if e.path == "." {
        return Ok(true);
    }
    let (parent, name) = match e.path.rsplit_once('/') {
        Some((p, n)) => (p, n),
        None => (".", e.path.as_str()),
    };
    if name == ".wh..wh..opq" {
        layer.opaque.push(parent.to_string());
        return Ok(true);
    }
    if let Some(hidden) = name.strip_prefix(".wh.") {
        let hidden = if parent == "." {
            hidden.to_string()
        } else {
            format!("{parent}/{hidden}")
        };
        layer.entries.insert(hidden, None);
        return Ok(true);
    }
    let node = match &e.kind {
        Kind::Dir => Node::Dir,
        Kind::Symlink => Node::Symlink(e.link.clone().unwrap_or_default()),
        Kind::File => Node::File(file_info(e, r)?),
        Kind::HardLink => {
            let target = e.link.clone().unwrap_or_default();
            match layer.entries.get(&target) {
                Some(Some(n)) => n.clone(),
                _ => Node::Other,
            }
        }
        _ => Node::Other,
    };
    layer.entries.insert(e.path.clone(), Some(node));
    Ok(true)
}

/// Indexes each layer a build assembles, from the same uncompressed bytes the build hashes
/// into the layer's diff_id, and keeps the index in the store under that diff_id: the
/// check that follows the build finds it there, as it finds the index of any layer it read
/// before, instead of decompressing the layer again.
#[derive(Debug)]
pub struct IndexTap {
    store: Store,
}

impl IndexTap {
    /// A tap keeping indexes in `store`.
    #[must_use]
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}

impl crate::layer::build::LayerTap for IndexTap {
    fn read(&self, tar: &mut dyn Read) -> Box<dyn FnOnce(&Digest) + Send> {
        let mut layer = LayerIndex::default();
        let walked = crate::oci::walk::walk_tar_stream(tar, |e, r| index_entry(&mut layer, e, r));
        let store = self.store.clone();
        Box::new(move |diff_id| {
            if walked.is_ok() {
                save_index(&store, &layer_index_id(diff_id), &layer);
            }
        })
    }
}

impl Rootfs {
    /// Reads the image at `path` (already read into `view`).
    ///
    /// # Errors
    /// [`WalkError`] naming the image and layer.
    pub fn read(path: &Path, view: &ImageView) -> Result<Self, WalkError> {
        Self::read_cached(path, view, None)
    }

    /// As [`Rootfs::read`], taking the index of each layer the store has seen before from
    /// the store (without decompressing that layer) and storing the others'. A store
    /// failure only costs the cache.
    ///
    /// # Errors
    /// [`WalkError`] naming the image and layer.
    pub fn read_cached(
        path: &Path,
        view: &ImageView,
        store: Option<&Store>,
    ) -> Result<Self, WalkError> {
        let ids: Vec<_> = view
            .layers
            .iter()
            .map(|l| layer_index_id(&l.diff_id))
            .collect();
        let mut cached: Vec<bool> = Vec::with_capacity(ids.len());
        let mut layers: Vec<LayerIndex> = Vec::with_capacity(ids.len());
        for id in &ids {
            match store.and_then(|s| load_index(s, id)) {
                Some(l) => {
                    layers.push(l);
                    cached.push(true);
                }
                None => {
                    layers.push(LayerIndex::default());
                    cached.push(false);
                }
            }
        }
        walk_layers_while(path, view, |li, e, r| {
            if cached.get(li).copied().unwrap_or(true) {
                return Ok(false);
            }
            match layers.get_mut(li) {
                Some(layer) => index_entry(layer, e, r),
                None => Ok(true),
            }
        })?;
        if let Some(store) = store {
            for ((id, layer), was_cached) in ids.iter().zip(&layers).zip(&cached) {
                if !was_cached {
                    save_index(store, id, layer);
                }
            }
        }
        let mut nodes: BTreeMap<String, Node> = BTreeMap::new();
        for layer in layers {
            merge(&mut nodes, layer);
        }
        Ok(Self {
            nodes,
            env: view.config.config.env.clone(),
            architecture: view.config.architecture.clone(),
            labels: view.config.config.labels.clone(),
        })
    }

    /// An index from plain data (tests, other front ends).
    #[must_use]
    pub fn from_nodes(nodes: BTreeMap<String, Node>, architecture: &str) -> Self {
        Self {
            nodes,
            architecture: architecture.into(),
            ..Self::default()
        }
    }

    /// The node at `path` (normalized, no leading `/`), not following a final symlink.
    #[must_use]
    pub fn get(&self, path: &str) -> Option<&Node> {
        self.nodes.get(path)
    }

    /// `path` with every symlink followed, inside the image root: the path of a node that
    /// is not a symlink, or `None` when a component is missing, not a directory, or the
    /// chain is longer than [`MAX_LINKS`].
    #[must_use]
    pub fn resolve(&self, path: &str) -> Option<String> {
        let mut todo: std::collections::VecDeque<String> = path
            .split('/')
            .filter(|c| !c.is_empty())
            .map(str::to_owned)
            .collect();
        let mut cur: Vec<String> = Vec::new();
        let mut links = 0;
        while let Some(c) = todo.pop_front() {
            match c.as_str() {
                "." => {}
                ".." => {
                    cur.pop();
                }
                _ => {
                    cur.push(c);
                    let joined = cur.join("/");
                    match self.nodes.get(&joined) {
                        Some(Node::Symlink(target)) => {
                            links += 1;
                            if links > MAX_LINKS {
                                return None;
                            }
                            cur.pop();
                            if target.starts_with('/') {
                                cur.clear();
                            }
                            for part in target.split('/').rev().filter(|p| !p.is_empty()) {
                                todo.push_front(part.to_owned());
                            }
                        }
                        Some(Node::Dir) => {}
                        Some(_) if todo.is_empty() => {}
                        // A directory some layer implies without an entry of its own.
                        None if !todo.is_empty() && self.has_children(&joined) => {}
                        _ => return None,
                    }
                }
            }
        }
        Some(cur.join("/"))
    }

    /// Whether some path lies below `dir`.
    fn has_children(&self, dir: &str) -> bool {
        let prefix = format!("{dir}/");
        self.nodes
            .range(prefix.clone()..)
            .next()
            .is_some_and(|(k, _)| k.starts_with(&prefix))
    }

    /// The file at `path` after following symlinks, with its resolved path.
    #[must_use]
    pub fn file(&self, path: &str) -> Option<(String, &FileInfo)> {
        let real = self.resolve(path)?;
        match self.nodes.get(&real) {
            Some(Node::File(f)) => Some((real, f)),
            _ => None,
        }
    }

    /// Regular files, sorted by path.
    pub fn files(&self) -> impl Iterator<Item = (&String, &FileInfo)> {
        self.nodes.iter().filter_map(|(p, n)| match n {
            Node::File(f) => Some((p, f)),
            _ => None,
        })
    }

    /// The kept text of the file at `path` (symlinks followed).
    #[must_use]
    pub fn text(&self, path: &str) -> Option<&str> {
        self.file(path).and_then(|(_, f)| f.text.as_deref())
    }

    /// `LD_LIBRARY_PATH` from the image config, split at `:` (empty entries dropped).
    #[must_use]
    pub fn ld_library_path(&self) -> Vec<String> {
        self.env
            .iter()
            .filter_map(|e| e.strip_prefix("LD_LIBRARY_PATH="))
            .flat_map(|v| v.split(':'))
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

/// Applies one layer on top of `nodes`.
fn merge(nodes: &mut BTreeMap<String, Node>, layer: LayerIndex) {
    for dir in &layer.opaque {
        remove_children(nodes, dir);
    }
    for (path, node) in layer.entries {
        match node {
            None => remove_tree(nodes, &path),
            Some(Node::Dir) => {
                if !matches!(nodes.get(&path), Some(Node::Dir)) {
                    nodes.insert(path, Node::Dir);
                }
            }
            Some(n) => {
                if matches!(nodes.get(&path), Some(Node::Dir)) {
                    remove_children(nodes, &path);
                }
                nodes.insert(path, n);
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn file() -> Node {
        Node::File(FileInfo::default())
    }

    #[test]
    #[allow(clippy::unwrap_used)]
    fn a_tapped_layer_build_stores_the_index_the_layer_tar_gives() {
        use crate::layer::build::{build_layer, copy_layer_tar};
        use crate::layer::plan::{ItemEntries, PlannedEntry, plan_layer};
        use std::sync::Arc;
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        // Big enough for several tap chunks; a dist-info METADATA the index keeps as text.
        let mut entries: Vec<PlannedEntry> = (0..40)
            .map(|i| {
                let body: Vec<u8> = (0..20_000u32).map(|b| (b * 31 + i) as u8).collect();
                PlannedEntry::inline_file(format!("opt/f{i}"), 0o644, Arc::from(body))
            })
            .collect();
        entries.push(PlannedEntry::inline_file(
            "usr/lib/python3/dist-packages/x-1.0.dist-info/METADATA",
            0o644,
            Arc::from(&b"Name: x\nVersion: 1.0\n"[..]),
        ));
        entries.push(PlannedEntry::symlink("opt/link", "f1"));
        let plan = plan_layer(
            "l",
            vec![ItemEntries {
                label: "x".into(),
                entries,
            }],
        )
        .unwrap();
        struct NoArchives;
        impl crate::layer::build::Materializer for NoArchives {
            fn open(
                &self,
                _: &Digest,
                _: &str,
            ) -> Result<Box<dyn Read + '_>, crate::layer::LayerError> {
                unreachable!("inline content only")
            }
        }
        let tap = IndexTap::new(store.clone());
        let c = crate::layer::Compression::default();
        let (out, _) =
            build_layer(&store, &plan, c, 0, 2, &NoArchives, &|_| {}, Some(&tap)).unwrap();
        let stored = load_index(&store, &layer_index_id(&out.diff_id)).expect("tap stored it");
        let mut tar = Vec::new();
        copy_layer_tar(&store, &out, c, &mut tar).unwrap();
        let mut walked = LayerIndex::default();
        crate::oci::walk::walk_tar_stream(&tar[..], |e, r| index_entry(&mut walked, e, r)).unwrap();
        assert_eq!(
            serde_json::to_string(&stored).unwrap(),
            serde_json::to_string(&walked).unwrap()
        );
        assert_eq!(
            stored.entries.len(),
            42 + 6,
            "files, the link and six parents"
        );
    }

    pub(crate) fn link(t: &str) -> Node {
        Node::Symlink(t.into())
    }

    fn fs(nodes: &[(&str, Node)]) -> Rootfs {
        Rootfs::from_nodes(
            nodes
                .iter()
                .map(|(p, n)| ((*p).to_string(), n.clone()))
                .collect(),
            "amd64",
        )
    }

    #[test]
    fn resolves_symlinks_inside_the_root() {
        let r = fs(&[
            ("usr", Node::Dir),
            ("usr/lib", Node::Dir),
            ("usr/lib/libz.so.1.3", file()),
            ("usr/lib/libz.so.1", link("libz.so.1.3")),
            ("lib", link("usr/lib")),
            ("lib64", link("/usr/lib")),
            ("escape", link("../../../usr/lib/libz.so.1")),
            ("loop1", link("loop2")),
            ("loop2", link("loop1")),
            ("dangling", link("/nowhere")),
        ]);
        assert_eq!(
            r.resolve("lib/libz.so.1").as_deref(),
            Some("usr/lib/libz.so.1.3")
        );
        assert_eq!(
            r.resolve("/lib64/libz.so.1").as_deref(),
            Some("usr/lib/libz.so.1.3")
        );
        assert_eq!(r.resolve("escape").as_deref(), Some("usr/lib/libz.so.1.3"));
        assert_eq!(
            r.resolve("usr/lib/../lib/libz.so.1").as_deref(),
            Some("usr/lib/libz.so.1.3")
        );
        assert_eq!(r.resolve("loop1"), None);
        assert_eq!(r.resolve("dangling"), None);
        assert_eq!(r.resolve("usr/lib/libz.so.1.3/x"), None);
        assert!(r.file("lib/libz.so.1").is_some());
    }

    #[test]
    fn whiteouts_and_opaque_dirs_apply_in_layer_order() {
        let mut nodes = BTreeMap::new();
        let mut l0 = LayerIndex::default();
        for (p, n) in [
            ("a", Node::Dir),
            ("a/x", file()),
            ("a/y", file()),
            ("b", Node::Dir),
            ("b/z", file()),
            ("c", Node::Dir),
            ("c/w", file()),
        ] {
            l0.entries.insert(p.into(), Some(n));
        }
        merge(&mut nodes, l0);
        let mut l1 = LayerIndex::default();
        l1.entries.insert("a/x".into(), None);
        l1.entries.insert("c".into(), Some(file()));
        l1.opaque.push("b".into());
        l1.entries.insert("b/new".into(), Some(file()));
        merge(&mut nodes, l1);
        let paths: Vec<&str> = nodes.keys().map(String::as_str).collect();
        assert_eq!(paths, ["a", "a/y", "b", "b/new", "c"]);
    }

    #[test]
    fn metadata_files_are_kept() {
        assert!(wants_text("etc/ld.so.conf"));
        assert!(wants_text("etc/ld.so.conf.d/x86_64-linux-gnu.conf"));
        assert!(wants_text("var/lib/dpkg/status.d/libc6.md5sums"));
        assert!(wants_text(
            "usr/lib/python3/dist-packages/a-1.dist-info/RECORD"
        ));
        assert!(!wants_text(
            "usr/lib/python3/dist-packages/a-1.dist-info/LICENSE"
        ));
        assert!(!wants_text("usr/lib/libc.so.6"));
    }
    #[test]
    fn spooled_files_parse_like_bytes() {
        let bytes = super::super::elf::tests::ElfBuilder::new()
            .needed("libz.so.1")
            .build();
        let mut f = match tempfile::tempfile() {
            Ok(f) => f,
            Err(e) => panic!("{e}"),
        };
        assert!(std::io::Write::write_all(&mut f, &bytes).is_ok());
        let spooled = Spooled(f, bytes.len() as u64);
        assert_eq!(elf::parse(&spooled), elf::parse(bytes.as_slice()));
        let mut buf = [0u8; 4];
        assert!(spooled.read_at(bytes.len() as u64 - 2, &mut buf).is_err());
    }
}
