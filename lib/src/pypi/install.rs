//! Installing locked wheels into layers: each wheel's installed listing (paths, modes,
//! blake3 of contents) cached in the store by the wheel's sha256 and the install scheme, so
//! a warm build reads no wheel at all; when a wheel's fragment must be (re)built, the wheel is
//! installed into a scratch directory on demand ([`WheelExtractor`]).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::once::OnceMap;

use composer_store::{Digest, NodeId, NodeKey, NodeRecord, Store};

use super::wheel::{Scheme, install_wheel_to};
use crate::layer::LayerError;
use crate::layer::build::Materializer;
use crate::layer::listing::StoredEntry;
use crate::layer::plan::{Content, ItemEntries, PlannedEntry};
use crate::layer::tar::EntryKind;
use crate::lock::LockedWheel;

/// Bumped when the installer's output or the listing format changes.
pub const WHEEL_LISTING_VERSION: u32 = 2;

/// The digest of a locked wheel.
///
/// # Errors
/// A lock entry whose sha256 is not a digest.
pub fn wheel_digest(w: &LockedWheel) -> Result<Digest, String> {
    format!("sha256:{}", w.sha256)
        .parse()
        .map_err(|_| format!("{}: bad sha256 `{}` in the lock", w.filename, w.sha256))
}

fn scheme_key(s: &Scheme) -> String {
    format!(
        "{}|{}|{}|{}|{}|{}",
        s.purelib, s.platlib, s.scripts, s.headers, s.data, s.interpreter
    )
}

/// The node that records a wheel's installed listing (and keeps the wheel alive through gc).
#[must_use]
pub fn listing_id(wheel: &Digest, scheme: &Scheme, requested: bool) -> NodeId {
    let mut k = NodeKey::new("wheel-listing", WHEEL_LISTING_VERSION);
    k.digest("wheel", wheel)
        .str("scheme", &scheme_key(scheme))
        .u64("requested", u64::from(requested));
    k.finish()
}

/// A wheel installed into its scratch directory: the directory and the installer's entries.
type Installed = Result<(PathBuf, Arc<Vec<PlannedEntry>>), String>;

/// Installs wheels on demand into scratch directories, for fragments not in the store yet.
pub struct WheelExtractor {
    store: Store,
    scratch: PathBuf,
    wheels: BTreeMap<Digest, (String, bool)>,
    scheme: Scheme,
    installed: OnceMap<Digest, Installed>,
}

impl std::fmt::Debug for WheelExtractor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WheelExtractor")
            .field("wheels", &self.wheels.len())
            .finish_non_exhaustive()
    }
}

impl WheelExtractor {
    /// An extractor installing `wheels` with `scheme` under `scratch`.
    ///
    /// # Errors
    /// A lock entry with a bad digest.
    pub fn new(
        store: Store,
        scratch: &Path,
        wheels: &[LockedWheel],
        scheme: Scheme,
    ) -> Result<Self, String> {
        let wheels = wheels
            .iter()
            .map(|w| {
                Ok((
                    wheel_digest(w)?,
                    (w.filename.clone(), w.reason == "requested"),
                ))
            })
            .collect::<Result<_, String>>()?;
        Ok(Self {
            store,
            scratch: scratch.to_path_buf(),
            wheels,
            scheme,
            installed: OnceMap::default(),
        })
    }

    /// Whether `digest` is one of this extractor's wheels.
    #[must_use]
    pub fn knows(&self, digest: &Digest) -> bool {
        self.wheels.contains_key(digest)
    }

    /// Installs the wheel once: every file written below its own directory; returns that
    /// directory and the installer's entries.
    fn install(&self, wheel: &Digest) -> Installed {
        self.installed.get_or_init(wheel, || {
            let (filename, requested) = self
                .wheels
                .get(wheel)
                .cloned()
                .ok_or_else(|| format!("{wheel} is not a locked wheel"))?;
            let dir = self.scratch.join(wheel.hex());
            let file = self.store.open_blob(wheel).map_err(|e| e.to_string())?;
            let iw = install_wheel_to(
                std::io::BufReader::new(file),
                &filename,
                &self.scheme,
                requested,
                Some(&dir),
            )
            .map_err(|e| e.to_string())?;
            for e in &iw.entries {
                if let Content::Inline(bytes) = &e.content {
                    let path = dir.join(&e.header.path);
                    if let Some(parent) = path.parent() {
                        std::fs::create_dir_all(parent)
                            .map_err(|err| format!("{}: {err}", parent.display()))?;
                    }
                    let mut f = std::fs::File::create(&path)
                        .map_err(|err| format!("{}: {err}", path.display()))?;
                    f.write_all(bytes)
                        .map_err(|err| format!("{}: {err}", path.display()))?;
                }
            }
            Ok((dir, Arc::new(iw.entries)))
        })
    }

    /// The wheel's entries for its layer: from the cached listing, or by installing it now
    /// (and caching the listing).
    ///
    /// # Errors
    /// The wheel cannot be installed, or the store fails.
    pub fn item(&self, w: &LockedWheel) -> Result<ItemEntries, String> {
        let digest = wheel_digest(w)?;
        let requested = w.reason == "requested";
        let id = listing_id(&digest, &self.scheme, requested);
        let label = format!("wheel {} {}", w.name, w.version);
        let store_err = |e: composer_store::StoreError| e.to_string();
        if let Some(rec) = self.store.get_node(&id).map_err(store_err)?
            && let Some(blob) = rec.blobs.first()
            && self.store.has_blob(blob)
        {
            let bytes = self.store.read_blob(blob).map_err(store_err)?;
            let stored: Vec<StoredEntry> = serde_json::from_slice(&bytes)
                .map_err(|e| format!("{label}: cached listing: {e}"))?;
            let entries = stored
                .into_iter()
                .map(|e| from_stored(e, &digest))
                .collect::<Result<Vec<_>, String>>()
                .map_err(|e| format!("{label}: cached listing: {e}"))?;
            return Ok(ItemEntries { label, entries });
        }
        let (_, entries) = self.install(&digest)?;
        let stored: Vec<StoredEntry> = entries
            .iter()
            .map(|e| StoredEntry::new(&e.header, &e.content_hash))
            .collect();
        let json = serde_json::to_vec(&stored).map_err(|e| e.to_string())?;
        let (blob, _) = self.store.put_blob_bytes(&json).map_err(store_err)?;
        self.store
            .put_node(
                &id,
                &NodeRecord {
                    kind: "wheel-listing".into(),
                    blobs: vec![blob, digest.clone()],
                    children: vec![],
                    meta: serde_json::json!({ "wheel": w.filename }),
                },
            )
            .map_err(store_err)?;
        let entries = entries
            .iter()
            .map(|e| PlannedEntry {
                header: e.header.clone(),
                content: match e.header.kind {
                    EntryKind::File { .. } => Content::Extracted {
                        archive: digest.clone(),
                        path: e.header.path.clone(),
                    },
                    _ => e.content.clone(),
                },
                content_hash: e.content_hash,
            })
            .collect();
        Ok(ItemEntries { label, entries })
    }
}

fn from_stored(e: StoredEntry, wheel: &Digest) -> Result<PlannedEntry, String> {
    let (header, content_hash) = e.decode()?;
    let content = match header.kind {
        EntryKind::File { .. } => Content::Extracted {
            archive: wheel.clone(),
            path: header.path.clone(),
        },
        _ => Content::None,
    };
    Ok(PlannedEntry {
        header,
        content,
        content_hash,
    })
}

impl Materializer for WheelExtractor {
    fn materialize(&self, archive: &Digest) -> Result<PathBuf, LayerError> {
        self.install(archive)
            .map(|(dir, _)| dir)
            .map_err(|e| LayerError::Io {
                path: self.store.blob_path(archive),
                source: std::io::Error::other(e),
            })
    }
}
