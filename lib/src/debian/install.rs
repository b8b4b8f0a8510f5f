//! Installing locked `.deb`s into layers without dpkg: each package's listing (cached in the
//! store by the package's sha256), one fragment per package whose files are read from an
//! extraction only when the fragment is not stored yet, and the files maintainer scripts
//! would have made ([`super::synth`]) placed in the layer of the package they belong to.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;

use crate::once::OnceMap;

use composer_store::{Digest, NodeKey, NodeRecord, Store};
use serde::{Deserialize, Serialize};

use super::deb::{DebEntry, DebError, DebListing, PathMap, extract_deb};
use super::synth::{self, InstalledPackage, SynthInput};
use crate::layer::LayerError;
use crate::layer::build::Materializer;
use crate::layer::listing::StoredEntry;
use crate::layer::plan::{Content, ItemEntries, PlannedEntry};
use crate::layer::tar::EntryKind;
use crate::lock::LockedDeb;
use crate::recipe::UserSpec;

/// Bumped when the listing format or the path mapping changes.
pub const LISTING_VERSION: u32 = 1;

/// Installation failures; each names the package.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InstallError {
    /// The `.deb` was refused.
    #[error(transparent)]
    Deb(#[from] DebError),
    /// Synthesis failed.
    #[error(transparent)]
    Synth(#[from] synth::SynthError),
    /// The lock's hash is not a sha256.
    #[error("{package}: the lock's sha256 `{sha256}` is not a valid digest")]
    BadDigest {
        /// Package.
        package: String,
        /// Value.
        sha256: String,
    },
    /// A cached listing did not parse.
    #[error("{package}: cached listing is unreadable: {reason}")]
    Listing {
        /// Package.
        package: String,
        /// Cause.
        reason: String,
    },
    /// Store failure.
    #[error(transparent)]
    Store(#[from] composer_store::StoreError),
    /// Reading an extracted file.
    #[error(transparent)]
    Layer(#[from] LayerError),
}

/// The digest of a locked package.
///
/// # Errors
/// [`InstallError::BadDigest`].
pub fn deb_digest(deb: &LockedDeb) -> Result<Digest, InstallError> {
    format!("sha256:{}", deb.sha256)
        .parse()
        .map_err(|_| InstallError::BadDigest {
            package: deb.name.clone(),
            sha256: deb.sha256.clone(),
        })
}

/// `name version` for messages.
#[must_use]
pub fn label(deb: &LockedDeb) -> String {
    format!("{} {}", deb.name, deb.version)
}

#[derive(Serialize, Deserialize)]
struct StoredListing {
    control: String,
    md5sums: Option<String>,
    entries: Vec<StoredEntry>,
}

impl StoredListing {
    fn from_listing(l: &DebListing) -> Self {
        let entries = l
            .entries
            .iter()
            .map(|e| StoredEntry::new(&e.header, &e.content_hash))
            .collect();
        Self {
            control: l.control.clone(),
            md5sums: l.md5sums.clone(),
            entries,
        }
    }

    fn into_listing(self, package: &str) -> Result<DebListing, InstallError> {
        let mut entries = Vec::with_capacity(self.entries.len());
        for e in self.entries {
            let (header, content_hash) = e.decode().map_err(|reason| InstallError::Listing {
                package: package.into(),
                reason,
            })?;
            let data_path = header.path.clone();
            entries.push(DebEntry {
                header,
                content_hash,
                data_path,
            });
        }
        Ok(DebListing {
            control: self.control,
            md5sums: self.md5sums,
            conffiles: None,
            scripts: BTreeMap::new(),
            entries,
        })
    }
}

/// The node that records a `.deb`'s listing (and keeps the `.deb` itself alive through gc).
#[must_use]
pub fn listing_id(deb: &Digest) -> composer_store::NodeId {
    let mut key = NodeKey::new("deb-listing", LISTING_VERSION);
    key.digest("deb", deb).u64("merged-usr", 1);
    key.finish()
}

/// The listing of a stored `.deb`: from the store when known, else read once (one streaming
/// pass that decompresses, validates and hashes) and stored.
///
/// # Errors
/// [`InstallError`] naming the package.
pub fn listing(
    store: &Store,
    deb: &LockedDeb,
    extractor: &Extractor,
) -> Result<DebListing, InstallError> {
    let digest = deb_digest(deb)?;
    let id = listing_id(&digest);
    if let Some(rec) = store.get_node(&id)?
        && let Some(blob) = rec.blobs.first()
        && store.has_blob(blob)
    {
        let bytes = store.read_blob(blob)?;
        let stored: StoredListing =
            serde_json::from_slice(&bytes).map_err(|e| InstallError::Listing {
                package: deb.name.clone(),
                reason: e.to_string(),
            })?;
        return stored.into_listing(&deb.name);
    }
    // Not listed yet: extract now (the build will need the files anyway) and list in the
    // same pass.
    let listing = extractor.extract(&digest)?.1.as_ref().clone();
    let json = serde_json::to_vec(&StoredListing::from_listing(&listing)).map_err(|e| {
        InstallError::Listing {
            package: deb.name.clone(),
            reason: e.to_string(),
        }
    })?;
    let (blob, _) = store.put_blob_bytes(&json)?;
    store.put_node(
        &id,
        &NodeRecord {
            kind: "deb-listing".into(),
            blobs: vec![blob, digest],
            children: vec![],
            meta: serde_json::json!({ "package": deb.name, "version": deb.version }),
        },
    )?;
    Ok(listing)
}

/// Extracts `.deb`s on demand into the store's temp area for the duration of a build.
pub struct Extractor {
    store: Store,
    labels: BTreeMap<Digest, String>,
    /// One cell per archive, so different archives extract in parallel and each only once.
    extracted: OnceMap<Digest, Extracted>,
}

/// An extraction: its directory (removed with the extractor) and the listing it produced.
type Extracted = Result<(Arc<tempfile::TempDir>, Arc<DebListing>), String>;

impl std::fmt::Debug for Extractor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Extractor")
            .field("packages", &self.labels.len())
            .finish_non_exhaustive()
    }
}

impl Extractor {
    /// An extractor for the given packages.
    ///
    /// # Errors
    /// A lock entry with a bad digest.
    pub fn new(store: Store, debs: &[LockedDeb]) -> Result<Self, InstallError> {
        let labels = debs
            .iter()
            .map(|d| Ok((deb_digest(d)?, label(d))))
            .collect::<Result<_, InstallError>>()?;
        Ok(Self {
            store,
            labels,
            extracted: OnceMap::default(),
        })
    }

    /// Extracts `archive` (once) and returns its directory and listing.
    fn extract(&self, archive: &Digest) -> Result<(PathBuf, Arc<DebListing>), LayerError> {
        let io = |source| LayerError::Io {
            path: self.store.blob_path(archive),
            source,
        };
        let done = self.extracted.get_or_init(archive, || {
            let label = self
                .labels
                .get(archive)
                .cloned()
                .unwrap_or_else(|| archive.to_string());
            let dir = tempfile::Builder::new()
                .prefix("extract-")
                .tempdir_in(self.store.layout().tmp_dir())
                .map_err(|e| format!("cannot create a temporary directory in the store: {e}"))?;
            let file = self.store.open_blob(archive).map_err(|e| e.to_string())?;
            let listing = extract_deb(
                std::io::BufReader::new(file),
                &label,
                &PathMap::default(),
                dir.path(),
            )
            .map_err(|e| e.to_string())?;
            Ok((Arc::new(dir), Arc::new(listing)))
        });
        match done {
            Ok((dir, listing)) => Ok((dir.path().to_path_buf(), listing)),
            Err(e) => Err(io(std::io::Error::other(e))),
        }
    }

    /// Reads one extracted file.
    fn read(&self, archive: &Digest, path: &str) -> Result<Vec<u8>, LayerError> {
        let full = self.extract(archive)?.0.join(path);
        std::fs::read(&full).map_err(|source| LayerError::Io { path: full, source })
    }
}

impl Materializer for Extractor {
    fn open(&self, archive: &Digest, path: &str) -> Result<Box<dyn Read + '_>, LayerError> {
        let full = self.extract(archive)?.0.join(path);
        let file =
            std::fs::File::open(&full).map_err(|source| LayerError::Io { path: full, source })?;
        Ok(Box::new(file))
    }

    fn describe(&self, archive: &Digest) -> String {
        self.labels
            .get(archive)
            .cloned()
            .unwrap_or_else(|| archive.to_string())
    }
}

/// The packages of `layer`, one item (fragment) each, in name order.
///
/// # Errors
/// [`InstallError`] naming the package.
pub fn layer_items(
    listings: &BTreeMap<String, (LockedDeb, DebListing)>,
    layer: &str,
) -> Result<Vec<ItemEntries>, InstallError> {
    let mut items = Vec::new();
    for (deb, listing) in listings.values().filter(|(d, _)| d.layer == layer) {
        let archive = deb_digest(deb)?;
        let entries = listing
            .entries
            .iter()
            .map(|e| PlannedEntry {
                header: e.header.clone(),
                content: match e.header.kind {
                    EntryKind::File { .. } => Content::Extracted {
                        archive: archive.clone(),
                        path: e.header.path.clone(),
                    },
                    _ => Content::None,
                },
                content_hash: e.content_hash,
            })
            .collect();
        items.push(ItemEntries {
            label: format!("deb {}", label(deb)),
            entries,
        });
    }
    Ok(items)
}

/// The synthesized files, assigned to layers: `status.d` entries go with their package,
/// the CA bundle with `ca-certificates`, Python's `dist-packages` with `python3.X`, and
/// accounts, `/tmp` and the merged-/usr links with the first Debian layer.
///
/// # Errors
/// [`InstallError`] for inconsistent packages or unreadable inputs.
pub fn synthesized(
    listings: &BTreeMap<String, (LockedDeb, DebListing)>,
    layers: &[String],
    users: &[UserSpec],
    arch: &str,
    extractor: &Extractor,
) -> Result<BTreeMap<String, Vec<PlannedEntry>>, InstallError> {
    let mut out: BTreeMap<String, Vec<PlannedEntry>> = BTreeMap::new();
    let Some(first) = layers
        .iter()
        .find(|l| listings.values().any(|(d, _)| &d.layer == *l))
    else {
        return Ok(out);
    };
    let mut files = BTreeMap::new();
    for (deb, listing) in listings.values() {
        let archive = deb_digest(deb)?;
        for e in &listing.entries {
            if matches!(e.header.kind, EntryKind::File { .. })
                && synth::is_input_file(&e.header.path)
            {
                files.insert(
                    e.header.path.clone(),
                    extractor.read(&archive, &e.header.path)?,
                );
            }
        }
    }
    let python = listings
        .keys()
        .filter(|n| {
            n.strip_prefix("python3.")
                .is_some_and(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
        })
        .max_by_key(|n| n.trim_start_matches("python3.").parse::<u32>().unwrap_or(0))
        .cloned();
    let input = SynthInput {
        packages: listings
            .values()
            .map(|(d, l)| InstalledPackage {
                name: &d.name,
                control: &l.control,
                md5sums: l.md5sums.as_deref(),
                arch: &d.architecture,
            })
            .collect(),
        users,
        python_dist_packages: python.as_deref(),
        files: &files,
    };
    let layer_of = |pkg: &str| listings.get(pkg).map(|(d, _)| d.layer.clone());
    for entry in synth::synthesize(&input)?
        .into_iter()
        .chain(synth::merged_usr_links(arch))
    {
        let p = entry.header.path.as_str();
        let owner = if let Some(rest) = p.strip_prefix("var/lib/dpkg/status.d/") {
            let name = rest.trim_end_matches(".md5sums");
            let name = name.split(':').next().unwrap_or(name);
            layer_of(name)
        } else if p.starts_with("etc/ssl/certs") || p == synth::CA_CONF {
            layer_of("ca-certificates")
        } else if p.starts_with("usr/local/lib/python3") {
            python.as_deref().and_then(layer_of)
        } else {
            None
        };
        out.entry(owner.unwrap_or_else(|| first.clone()))
            .or_default()
            .push(entry);
    }
    Ok(out)
}
