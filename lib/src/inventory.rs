//! An image's inventory: every entry of every layer with its metadata and content sha256,
//! the provenance documents the layers carry, and the package metadata the image holds
//! (dpkg `md5sums`, wheel `RECORD`, license fields), collected in one streaming walk.
//!
//! Memory grows with the number of entries (a few hundred bytes each), never with file
//! sizes: contents are hashed as they stream past, and only small metadata files
//! (provenance, md5sums, RECORD, METADATA, copyright headers) are kept. This is what
//! `diff`, `audit` and `sbom` read.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use composer_store::Digest;
use serde::Serialize;

use crate::oci::read::{ImageView, read_image};
use crate::oci::walk::{Entry, Kind, WalkError, walk_layers};
use crate::provenance::{self, LayerProvenance};

/// Largest metadata file kept in memory (provenance maps of big layers are a few MB).
const MAX_META: u64 = 64 << 20;

/// One entry of a layer, as read back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileMeta {
    /// Kind.
    pub kind: Kind,
    /// Permission bits.
    pub mode: u32,
    /// Owner.
    pub uid: u64,
    /// Group.
    pub gid: u64,
    /// mtime (seconds).
    pub mtime: u64,
    /// Content size.
    pub size: u64,
    /// Link target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// Extended attributes (name → hex of the value).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub xattrs: BTreeMap<String, String>,
    /// sha256 of the content (files only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<Digest>,
    /// md5 (hex) of the content, when asked for (dpkg `md5sums` checks).
    #[serde(skip)]
    pub md5: Option<String>,
}

/// One layer's entries and provenance.
#[derive(Debug, Clone, Default)]
pub struct LayerInventory {
    /// Entries by path (the last entry wins if a tar repeats a path).
    pub files: BTreeMap<String, FileMeta>,
    /// blake3 of the paths in the order the tar holds them (only ever compared, so a
    /// digest rather than a second copy of every path).
    pub order: [u8; 32],
    /// The layer's provenance document, when it carries one.
    pub provenance: Option<LayerProvenance>,
    /// A provenance file that could not be parsed.
    pub provenance_error: Option<String>,
}

impl LayerInventory {
    /// path → origin label, from the provenance document.
    #[must_use]
    pub fn owners(&self) -> BTreeMap<&str, String> {
        let mut m = BTreeMap::new();
        if let Some(p) = &self.provenance {
            for o in &p.origins {
                let label = o.label();
                for path in &o.paths {
                    m.entry(path.as_str()).or_insert_with(|| label.clone());
                }
            }
        }
        m
    }
}

/// A package the image's provenance declares: its layer and its origin.
#[derive(Debug, Clone, Copy)]
pub struct DeclaredPackage<'a> {
    /// Layer name.
    pub layer: &'a str,
    /// The deb or wheel origin (it has a version).
    pub origin: &'a crate::provenance::Origin,
    /// The version.
    pub version: &'a str,
}

/// The whole image.
#[derive(Debug, Clone)]
pub struct Inventory {
    /// What was read (manifest, config, layer list).
    pub view: ImageView,
    /// Layers bottom first.
    pub layers: Vec<LayerInventory>,
    /// Small metadata files by image path, from the topmost layer that has them:
    /// `var/lib/dpkg/status.d/*`, `*.dist-info/{RECORD,METADATA}`, `usr/share/doc/*/copyright`.
    pub meta_files: BTreeMap<String, Vec<u8>>,
}

impl Inventory {
    /// Every locked package (deb or wheel) the layers' provenance maps declare, bottom
    /// layer first: what `diff`, `audit` and `sbom` compare and list.
    pub fn packages(&self) -> impl Iterator<Item = DeclaredPackage<'_>> {
        use crate::provenance::OriginKind;
        self.layers
            .iter()
            .filter_map(|l| l.provenance.as_ref())
            .flat_map(|p| {
                p.origins
                    .iter()
                    .filter_map(move |o| match (o.kind, &o.version) {
                        (OriginKind::Deb | OriginKind::Wheel, Some(version)) => {
                            Some(DeclaredPackage {
                                layer: &p.layer,
                                origin: o,
                                version,
                            })
                        }
                        _ => None,
                    })
            })
    }
}

/// Reading failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InventoryError {
    /// Walking the image failed.
    #[error(transparent)]
    Walk(#[from] WalkError),
}

fn keep_meta(path: &str) -> bool {
    (path.starts_with("var/lib/dpkg/status.d/") && !path.ends_with('/'))
        || (path.contains(".dist-info/")
            && (path.ends_with("/RECORD") || path.ends_with("/METADATA")))
        || (path.starts_with("usr/share/doc/") && path.ends_with("/copyright"))
}

/// Which content digests a read computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hashes {
    /// None: metadata, provenance and metadata files only (`sbom`).
    None,
    /// sha256 of every file (`diff`).
    Sha256,
    /// sha256 and md5 of every file (`audit`: dpkg `md5sums`).
    Sha256AndMd5,
}

/// Reads the image at `path` (layout directory, oci-archive or docker-archive) and walks
/// every layer once, hashing every file's content with sha256.
///
/// # Errors
/// [`InventoryError`] naming the image and layer.
pub fn read(path: &Path) -> Result<Inventory, InventoryError> {
    read_with(path, Hashes::Sha256)
}

/// As [`read`], computing the content digests `hashes` asks for.
///
/// # Errors
/// As [`read`].
pub fn read_with(path: &Path, hashes: Hashes) -> Result<Inventory, InventoryError> {
    let view = read_image(path).map_err(WalkError::from)?;
    let mut layers = vec![LayerInventory::default(); view.layers.len()];
    let mut order = vec![blake3::Hasher::new(); view.layers.len()];
    // Per layer, the metadata files it holds; merged bottom-up afterwards so the top wins.
    let mut metas: Vec<BTreeMap<String, Vec<u8>>> = vec![BTreeMap::new(); view.layers.len()];
    walk_layers(path, &view, |i, e: &Entry, r: &mut dyn Read| {
        let li = &mut layers[i];
        order[i].update(e.path.as_bytes()).update(b"\0");
        let (sha256, md5) = if e.kind == Kind::File {
            let is_prov = e.path.starts_with(provenance::DIR) && e.path.ends_with(".json");
            if (is_prov || keep_meta(&e.path)) && e.size <= MAX_META {
                let mut buf = Vec::with_capacity(usize::try_from(e.size).unwrap_or(0));
                r.read_to_end(&mut buf).map_err(|err| err.to_string())?;
                let digests = hash(&mut buf.as_slice(), hashes)?;
                if is_prov {
                    match provenance::parse(&buf) {
                        Ok(doc) => li.provenance = Some(doc),
                        Err(err) => li.provenance_error = Some(format!("/{}: {err}", e.path)),
                    }
                } else {
                    metas[i].insert(e.path.clone(), buf);
                }
                digests
            } else {
                hash(r, hashes)?
            }
        } else {
            (None, None)
        };
        let meta = FileMeta {
            kind: e.kind.clone(),
            mode: e.mode,
            uid: e.uid,
            gid: e.gid,
            mtime: e.mtime,
            size: if e.kind == Kind::File { e.size } else { 0 },
            link: e.link.clone(),
            xattrs: e
                .xattrs
                .iter()
                .map(|(k, v)| (k.clone(), hex::encode(v)))
                .collect(),
            sha256,
            md5,
        };
        li.files.insert(e.path.clone(), meta);
        Ok(())
    })?;
    for (l, h) in layers.iter_mut().zip(order) {
        l.order = *h.finalize().as_bytes();
    }
    let mut meta_files = BTreeMap::new();
    for m in metas {
        meta_files.extend(m);
    }
    Ok(Inventory {
        view,
        layers,
        meta_files,
    })
}

/// The digests `hashes` asks for of everything left in `r`, in one pass.
fn hash(r: &mut dyn Read, hashes: Hashes) -> Result<(Option<Digest>, Option<String>), String> {
    use md5::Digest as _;
    if hashes == Hashes::None {
        std::io::copy(r, &mut std::io::sink()).map_err(|e| e.to_string())?;
        return Ok((None, None));
    }
    let mut sha = composer_store::Sha256Writer::new(std::io::sink());
    let mut md5 = (hashes == Hashes::Sha256AndMd5).then(md5::Md5::new);
    let mut buf = vec![0u8; 256 << 10];
    loop {
        let n = r.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        std::io::Write::write_all(&mut sha, &buf[..n]).map_err(|e| e.to_string())?;
        if let Some(m) = md5.as_mut() {
            m.update(&buf[..n]);
        }
    }
    Ok((Some(sha.finish().1), md5.map(|m| hex::encode(m.finalize()))))
}

/// Each layer's provenance document, reading each layer only up to it (composer writes it
/// right after the parent directories): cheap even for multi-GB layers in a layout.
/// `None` for a layer without one (or whose first regular file is something else).
///
/// # Errors
/// As [`read`].
pub fn read_provenance(
    path: &Path,
) -> Result<(ImageView, Vec<Option<LayerProvenance>>), InventoryError> {
    let view = read_image(path).map_err(WalkError::from)?;
    let mut out = vec![None; view.layers.len()];
    crate::oci::walk::walk_layers_while(path, &view, |i, e, r| {
        if e.kind != Kind::File {
            return Ok(true);
        }
        if e.path.starts_with(provenance::DIR) && e.size <= MAX_META {
            let mut buf = Vec::new();
            r.read_to_end(&mut buf).map_err(|err| err.to_string())?;
            out[i] = provenance::parse(&buf).ok();
        }
        Ok(false)
    })?;
    Ok((view, out))
}
