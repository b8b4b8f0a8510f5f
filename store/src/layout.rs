//! Pure path math for the on-disk layout (see the crate docs for the tree), root-name
//! validation, and the choice of the default store location. Nothing here touches the disk.
//!
//! Every directory name is a `const` and the test `layout_paths_are_pinned` pins the paths:
//! changing the layout means a new [`LAYOUT_VERSION`], not an edit in place.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use crate::digest::Digest;
use crate::error::StoreError;
use crate::nodeid::NodeId;

/// Version of the on-disk layout: everything the store writes lives under `root/<LAYOUT_VERSION>/`.
pub const LAYOUT_VERSION: &str = "v1";
/// `v1/blobs/`: content-addressed blobs, one subdirectory per algorithm.
pub const BLOBS_DIR: &str = "blobs";
/// `v1/blobs/sha256/`: the only algorithm.
pub const SHA256_DIR: &str = "sha256";
/// `v1/nodes/`: node records, `<node-id>.json`.
pub const NODES_DIR: &str = "nodes";
/// `v1/roots/`: gc roots, `<name>.json`.
pub const ROOTS_DIR: &str = "roots";
/// `v1/tmp/`: temp files of writes in progress (same filesystem, so rename is atomic).
pub const TMP_DIR: &str = "tmp";
/// `v1/quarantine/`: corrupt objects moved aside by `verify` and `get_node`.
pub const QUARANTINE_DIR: &str = "quarantine";
/// `v1/lock`: the store lock file.
pub const LOCK_FILE: &str = "lock";
/// `root/CACHEDIR.TAG`: tells backup tools the store is a cache.
pub const CACHEDIR_TAG: &str = "CACHEDIR.TAG";
/// `root/.gitignore`: keeps the store out of git if it sits in a work tree.
pub const GITIGNORE: &str = ".gitignore";
/// Extension of node and root records.
pub const RECORD_EXT: &str = "json";

/// Longest accepted root name, in bytes (file names are limited to 255 bytes).
pub const MAX_NAME_LEN: usize = 200;

/// Paths of everything in a store rooted at `root`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    /// The layout of a store at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Layout {
        Layout { root: root.into() }
    }

    /// The store root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `root/v1`.
    pub fn version_dir(&self) -> PathBuf {
        self.root.join(LAYOUT_VERSION)
    }

    /// `root/v1/blobs/sha256`.
    pub fn blobs_dir(&self) -> PathBuf {
        self.version_dir().join(BLOBS_DIR).join(SHA256_DIR)
    }

    /// `root/v1/blobs/sha256/<hex>`.
    pub fn blob(&self, d: &Digest) -> PathBuf {
        self.blobs_dir().join(d.hex())
    }

    /// `root/v1/nodes`.
    pub fn nodes_dir(&self) -> PathBuf {
        self.version_dir().join(NODES_DIR)
    }

    /// `root/v1/nodes/<node-id>.json`.
    pub fn node(&self, id: &NodeId) -> PathBuf {
        self.nodes_dir().join(format!("{id}.{RECORD_EXT}"))
    }

    /// `root/v1/roots`.
    pub fn roots_dir(&self) -> PathBuf {
        self.version_dir().join(ROOTS_DIR)
    }

    /// `root/v1/roots/<name>.json`, after checking that `name` is safe (see [`check_root_name`]).
    pub fn root_record(&self, name: &str) -> Result<PathBuf, StoreError> {
        check_root_name(name)?;
        Ok(self.roots_dir().join(format!("{name}.{RECORD_EXT}")))
    }

    /// `root/v1/tmp`.
    pub fn tmp_dir(&self) -> PathBuf {
        self.version_dir().join(TMP_DIR)
    }

    /// `root/v1/quarantine`.
    pub fn quarantine_dir(&self) -> PathBuf {
        self.version_dir().join(QUARANTINE_DIR)
    }

    /// `root/v1/lock`.
    pub fn lock_file(&self) -> PathBuf {
        self.version_dir().join(LOCK_FILE)
    }

    /// `root/CACHEDIR.TAG`.
    pub fn cachedir_tag(&self) -> PathBuf {
        self.root.join(CACHEDIR_TAG)
    }

    /// `root/.gitignore`.
    pub fn gitignore(&self) -> PathBuf {
        self.root.join(GITIGNORE)
    }

    /// Every directory `Store::open` creates, parents first.
    pub fn dirs(&self) -> [PathBuf; 8] {
        [
            self.root.clone(),
            self.version_dir(),
            self.version_dir().join(BLOBS_DIR),
            self.blobs_dir(),
            self.nodes_dir(),
            self.roots_dir(),
            self.tmp_dir(),
            self.quarantine_dir(),
        ]
    }
}

/// The digest a file in `blobs/sha256/` is named after, if its name is one.
pub fn parse_blob_name(name: &OsStr) -> Option<Digest> {
    let name = name.to_str()?;
    format!("sha256:{name}").parse().ok()
}

/// The node id a file in `nodes/` is named after, if its name is `<node-id>.json`.
pub fn parse_node_name(name: &OsStr) -> Option<NodeId> {
    name.to_str()?
        .strip_suffix(RECORD_EXT)?
        .strip_suffix('.')?
        .parse()
        .ok()
}

/// The root name a file in `roots/` stands for, if its name is `<valid name>.json`.
pub fn parse_root_name(name: &OsStr) -> Option<String> {
    let name = name.to_str()?.strip_suffix(RECORD_EXT)?.strip_suffix('.')?;
    check_root_name(name).ok()?;
    Some(name.to_owned())
}

/// Checks that `name` can be a gc root name: one path segment that is safe everywhere.
///
/// Rejected (not encoded, so a name always maps to the file name a person expects): the empty
/// name, names longer than [`MAX_NAME_LEN`] bytes, names starting with `.` (covers `.`, `..`
/// and hidden files), and names containing `/`, `\`, NUL or any other control character.
pub fn check_root_name(name: &str) -> Result<(), StoreError> {
    let reason = if name.is_empty() {
        Some("it is empty")
    } else if name.len() > MAX_NAME_LEN {
        Some("it is longer than 200 bytes")
    } else if name.starts_with('.') {
        Some("it starts with '.'")
    } else if name.contains(['/', '\\']) {
        Some("it contains a path separator")
    } else if name.chars().any(char::is_control) {
        Some("it contains NUL or another control character")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(StoreError::BadName {
            name: crate::digest::shorten(name),
            reason,
        }),
        None => Ok(()),
    }
}

/// The default store location from the given environment values, in order of precedence:
/// `$COMPOSE_STORE`; else `$XDG_CACHE_HOME/compose`; else `$HOME/.cache/compose`.
///
/// Empty values count as unset, and a relative `$XDG_CACHE_HOME` is ignored, as the XDG base
/// directory spec requires. Pure, so it can be tested without touching the process
/// environment; `Store::default_root` feeds it the real variables.
pub fn default_root_from(
    compose_store: Option<&OsStr>,
    xdg_cache_home: Option<&OsStr>,
    home: Option<&OsStr>,
) -> Result<PathBuf, StoreError> {
    let nonempty = |v: Option<&OsStr>| v.filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(p) = nonempty(compose_store) {
        return Ok(p);
    }
    if let Some(p) = nonempty(xdg_cache_home).filter(|p| p.is_absolute()) {
        return Ok(p.join("compose"));
    }
    if let Some(p) = nonempty(home) {
        return Ok(p.join(".cache").join("compose"));
    }
    Err(StoreError::NoDefaultRoot)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn layout_paths_are_pinned() {
        let l = Layout::new("/s");
        let d = Digest::of_bytes(b"");
        let id = NodeId::from_bytes([0xab; 32]);
        let hex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(LAYOUT_VERSION, "v1");
        assert_eq!(l.version_dir(), Path::new("/s/v1"));
        assert_eq!(
            l.blob(&d),
            PathBuf::from(format!("/s/v1/blobs/sha256/{hex}"))
        );
        assert_eq!(
            l.node(&id),
            PathBuf::from(format!("/s/v1/nodes/{}.json", "ab".repeat(32)))
        );
        assert_eq!(
            l.root_record("img").unwrap(),
            Path::new("/s/v1/roots/img.json")
        );
        assert_eq!(l.tmp_dir(), Path::new("/s/v1/tmp"));
        assert_eq!(l.quarantine_dir(), Path::new("/s/v1/quarantine"));
        assert_eq!(l.lock_file(), Path::new("/s/v1/lock"));
        assert_eq!(l.cachedir_tag(), Path::new("/s/CACHEDIR.TAG"));
        assert_eq!(l.gitignore(), Path::new("/s/.gitignore"));
    }

    #[test]
    fn names_parse_back() {
        let l = Layout::new("/s");
        let d = Digest::of_bytes(b"x");
        let id = NodeId::from_bytes([7; 32]);
        let file = |p: PathBuf| p.file_name().unwrap().to_owned();
        assert_eq!(parse_blob_name(&file(l.blob(&d))), Some(d));
        assert_eq!(parse_node_name(&file(l.node(&id))), Some(id));
        assert_eq!(
            parse_root_name(&file(l.root_record("a:b").unwrap())).as_deref(),
            Some("a:b")
        );
        assert_eq!(parse_blob_name(OsStr::new(".tmp-1")), None);
        assert_eq!(parse_node_name(OsStr::new("abc.json")), None);
        assert_eq!(parse_node_name(OsStr::new(&"ab".repeat(32))), None);
        assert_eq!(parse_root_name(OsStr::new(".x.json")), None);
    }

    #[test]
    fn root_names_are_sanitized() {
        for ok in ["img", "my-image:1.0", "a..b", "lock@sha256=ab", "ünï"] {
            assert!(check_root_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", ".", "..", ".hidden", "a/b", "../x", "a\\b", "a\0b", "a\nb",
        ] {
            let err = check_root_name(bad).unwrap_err();
            assert!(matches!(err, StoreError::BadName { .. }), "{bad}");
        }
        assert!(check_root_name(&"x".repeat(MAX_NAME_LEN)).is_ok());
        assert!(check_root_name(&"x".repeat(MAX_NAME_LEN + 1)).is_err());
        assert!(Layout::new("/s").root_record("../etc/passwd").is_err());
    }

    #[test]
    fn default_root_precedence() {
        let s = |v: &'static str| Some(OsStr::new(v));
        assert_eq!(
            default_root_from(s("/c"), s("/x"), s("/h")).unwrap(),
            Path::new("/c")
        );
        assert_eq!(
            default_root_from(None, s("/x"), s("/h")).unwrap(),
            Path::new("/x/compose")
        );
        assert_eq!(
            default_root_from(s(""), s("/x"), s("/h")).unwrap(),
            Path::new("/x/compose")
        );
        assert_eq!(
            default_root_from(None, s("rel"), s("/h")).unwrap(),
            Path::new("/h/.cache/compose")
        );
        assert_eq!(
            default_root_from(None, None, s("/h")).unwrap(),
            Path::new("/h/.cache/compose")
        );
        assert!(matches!(
            default_root_from(None, s(""), s("")),
            Err(StoreError::NoDefaultRoot)
        ));
    }
}
