//! What gets pushed: an image's manifest bytes (exactly as written, so the registry's
//! digest is ours) — or an image index and the per-platform manifests it lists — its
//! blobs, each readable from any offset without loading it (a file of an OCI layout
//! directory, a byte range of an oci-archive, the concatenated fragments of a layer in the
//! store, or a small JSON document in memory), and the artifacts attached to it (an SBOM,
//! whose `subject` is the image).

use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use composer_store::{Digest, Store};

use super::error::RegistryError;
use crate::build::BuiltImage;
use crate::oci::json::{INDEX_MEDIA_TYPE, Index, MANIFEST_MEDIA_TYPE, Manifest, REF_NAME};

/// Largest manifest or index read into memory.
const MAX_DOC: u64 = 16 << 20;

/// Docker's manifest media type (accepted as well as OCI's).
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// Docker's manifest list media type (accepted as well as OCI's index).
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// An image ready to push.
#[derive(Debug, Clone)]
pub struct PushImage {
    /// The top document (an image manifest or an image index), byte for byte: pushed last,
    /// under the tag.
    pub manifest: Vec<u8>,
    /// Its sha256.
    pub manifest_digest: Digest,
    /// Its media type (the `Content-Type` of the PUT).
    pub media_type: String,
    /// The tag the image had in its layout, when one was picked.
    pub tag: Option<String>,
    /// Layers then config of every manifest, each once.
    pub blobs: Vec<BlobSource>,
    /// For an index: the manifests it lists, pushed by digest before it.
    pub manifests: Vec<PushDoc>,
    /// Artifacts whose `subject` is the image or one of its manifests (an attached SBOM),
    /// pushed by digest after it; their blobs are in `blobs`.
    pub referrers: Vec<PushDoc>,
}

/// A manifest pushed by digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushDoc {
    /// Its bytes.
    pub bytes: Vec<u8>,
    /// Their sha256.
    pub digest: Digest,
    /// Its media type.
    pub media_type: String,
    /// For an artifact: its `artifactType` and the digest of its `subject`.
    pub artifact: Option<(String, Digest)>,
    /// Its annotations (copied into a referrers index entry).
    pub annotations: std::collections::BTreeMap<String, String>,
}

/// One blob and where its bytes are.
#[derive(Debug, Clone)]
pub struct BlobSource {
    /// Its digest.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
    location: Location,
}

#[derive(Debug, Clone)]
enum Location {
    /// `len` bytes of `path` from `offset`.
    File { path: PathBuf, offset: u64 },
    /// Concatenated files with their sizes.
    Parts(Vec<(PathBuf, u64)>),
    /// In memory.
    Bytes(Vec<u8>),
}

impl BlobSource {
    /// A blob that is a whole file (e.g. a store blob) of `size` bytes.
    #[must_use]
    pub fn file(digest: Digest, size: u64, path: PathBuf) -> Self {
        Self {
            digest,
            size,
            location: Location::File { path, offset: 0 },
        }
    }

    /// A small blob held in memory; its digest is computed here.
    #[must_use]
    pub fn bytes(bytes: Vec<u8>) -> Self {
        Self {
            digest: Digest::of_bytes(&bytes),
            size: bytes.len() as u64,
            location: Location::Bytes(bytes),
        }
    }

    /// A reader of the blob from byte `from` to its end.
    ///
    /// # Errors
    /// [`RegistryError::Io`] naming the file.
    pub fn open_at(&self, from: u64) -> Result<Box<dyn Read + Send>, RegistryError> {
        let ioe = |path: &Path| {
            let path = path.to_path_buf();
            move |source| RegistryError::Io { path, source }
        };
        let rest = self.size.saturating_sub(from);
        match &self.location {
            Location::Bytes(b) => {
                let start = usize::try_from(from.min(b.len() as u64)).unwrap_or(b.len());
                Ok(Box::new(io::Cursor::new(b[start..].to_vec())))
            }
            Location::File { path, offset } => {
                let mut f = std::fs::File::open(path).map_err(ioe(path))?;
                f.seek(SeekFrom::Start(offset + from)).map_err(ioe(path))?;
                Ok(Box::new(ExactReader::new(f.take(rest), rest, path.clone())))
            }
            Location::Parts(parts) => {
                let mut skip = from;
                let mut readers: Vec<Box<dyn Read + Send>> = Vec::new();
                for (path, len) in parts {
                    if skip >= *len {
                        skip -= len;
                        continue;
                    }
                    let mut f = std::fs::File::open(path).map_err(ioe(path))?;
                    f.seek(SeekFrom::Start(skip)).map_err(ioe(path))?;
                    readers.push(Box::new(f.take(len - skip)));
                    skip = 0;
                }
                let chain = readers
                    .into_iter()
                    .fold(Box::new(io::empty()) as Box<dyn Read + Send>, |acc, r| {
                        Box::new(acc.chain(r))
                    });
                let name = parts.first().map(|(p, _)| p.clone()).unwrap_or_default();
                Ok(Box::new(ExactReader::new(chain, rest, name)))
            }
        }
    }
}

/// Fails with an error naming the file when the source ends before `len` bytes, so a
/// truncated blob is never sent as if complete.
struct ExactReader<R> {
    inner: R,
    left: u64,
    path: PathBuf,
}

impl<R: Read> ExactReader<R> {
    fn new(inner: R, len: u64, path: PathBuf) -> Self {
        Self {
            inner,
            left: len,
            path,
        }
    }
}

impl<R: Read> Read for ExactReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let n = self.inner.read(buf)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{} ends {} bytes early", self.path.display(), self.left),
            ));
        }
        self.left = self.left.saturating_sub(n as u64);
        Ok(n)
    }
}

/// Reads the image at `path`: an OCI layout directory or an oci-archive. `tag` picks one
/// of several images in the layout; without it the layout must hold one manifest.
///
/// # Errors
/// [`RegistryError::Io`] or [`RegistryError::Image`] naming the path.
pub fn from_path(path: &Path, tag: Option<&str>) -> Result<PushImage, RegistryError> {
    let meta = std::fs::metadata(path).map_err(|source| RegistryError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let entries = if meta.is_dir() {
        dir_entries(path)
    } else {
        tar_entries(path)?
    };
    let invalid = |what: String| RegistryError::Image {
        path: path.to_path_buf(),
        what,
    };
    let index_loc = entries.find("index.json").ok_or_else(|| {
        invalid(
            "not an OCI image layout or oci-archive (no index.json); docker-archive cannot be pushed"
                .into(),
        )
    })?;
    let index: Index = serde_json::from_slice(&read_doc(&index_loc)?)
        .map_err(|e| invalid(format!("index.json: {e}")))?;
    let tags: Vec<&str> = index
        .manifests
        .iter()
        .filter_map(|m| m.annotations.get(REF_NAME).map(String::as_str))
        .collect();
    let chosen: Vec<_> = match tag {
        Some(t) => index
            .manifests
            .iter()
            .filter(|m| m.annotations.get(REF_NAME).is_some_and(|r| r == t))
            .collect(),
        // Without a tag: the tagged entries (an attached SBOM or other artifact has none),
        // or every entry of an index without tags.
        None if tags.is_empty() => index.manifests.iter().collect(),
        None => index
            .manifests
            .iter()
            .filter(|m| m.annotations.contains_key(REF_NAME))
            .collect(),
    };
    let first = chosen.first().ok_or_else(|| match tag {
        Some(t) => invalid(format!("no image tagged `{t}` (tags: {})", tags.join(", "))),
        None => invalid("index.json lists no image".into()),
    })?;
    if chosen.iter().any(|m| m.digest != first.digest) {
        return Err(invalid(format!(
            "holds several images (tags: {}); pick one with --tag",
            tags.join(", ")
        )));
    }
    let top = read_manifest_doc(&entries, &first.digest, &invalid)?;
    let mut blobs: Vec<BlobSource> = Vec::new();
    let mut manifests = Vec::new();
    let mut subjects = vec![first.digest.clone()];
    if first.media_type == INDEX_MEDIA_TYPE || first.media_type == DOCKER_LIST {
        let index: Index = serde_json::from_slice(&top)
            .map_err(|e| invalid(format!("image index {}: {e}", first.digest)))?;
        if index.manifests.is_empty() {
            return Err(invalid(format!(
                "image index {} lists no manifest",
                first.digest
            )));
        }
        for m in &index.manifests {
            if m.media_type != MANIFEST_MEDIA_TYPE && m.media_type != DOCKER_MANIFEST {
                return Err(invalid(format!(
                    "image index {} lists {} of type {}; only image manifests can be nested",
                    first.digest, m.digest, m.media_type
                )));
            }
            let bytes = read_manifest_doc(&entries, &m.digest, &invalid)?;
            collect_blobs(&entries, &bytes, &m.digest, &mut blobs, &invalid)?;
            subjects.push(m.digest.clone());
            manifests.push(PushDoc {
                bytes,
                digest: m.digest.clone(),
                media_type: m.media_type.clone(),
                artifact: None,
                annotations: Default::default(),
            });
        }
    } else if first.media_type == MANIFEST_MEDIA_TYPE || first.media_type == DOCKER_MANIFEST {
        collect_blobs(&entries, &top, &first.digest, &mut blobs, &invalid)?;
    } else {
        return Err(invalid(format!(
            "{} is a {}, neither an image manifest nor an image index",
            first.digest, first.media_type
        )));
    }
    // Untagged entries whose `subject` is what we push: attached artifacts (an SBOM).
    let mut referrers = Vec::new();
    for m in index
        .manifests
        .iter()
        .filter(|m| !m.annotations.contains_key(REF_NAME) && m.media_type == MANIFEST_MEDIA_TYPE)
    {
        let Some(found) = entries.find(&blob_name(&m.digest)) else {
            continue;
        };
        let bytes = read_doc(&found)?;
        let Some(doc) = artifact_doc(&bytes) else {
            continue;
        };
        if !subjects.contains(&doc.1) || Digest::of_bytes(&bytes) != m.digest {
            continue;
        }
        collect_blobs(&entries, &bytes, &m.digest, &mut blobs, &invalid)?;
        referrers.push(PushDoc {
            bytes,
            digest: m.digest.clone(),
            media_type: m.media_type.clone(),
            artifact: Some((doc.0, doc.1)),
            annotations: doc.2,
        });
    }
    Ok(PushImage {
        media_type: first.media_type.clone(),
        manifest: top,
        manifest_digest: first.digest.clone(),
        tag: first
            .annotations
            .get(REF_NAME)
            .cloned()
            .filter(|_| tag.is_some()),
        blobs,
        manifests,
        referrers,
    })
}

/// `blobs/sha256/<hex>`.
fn blob_name(d: &Digest) -> String {
    format!("blobs/sha256/{}", d.hex())
}

/// A manifest or index blob of the layout, checked against its digest.
fn read_manifest_doc(
    entries: &Entries,
    digest: &Digest,
    invalid: &dyn Fn(String) -> RegistryError,
) -> Result<Vec<u8>, RegistryError> {
    let found = entries
        .find(&blob_name(digest))
        .ok_or_else(|| invalid(format!("the manifest blob {digest} is missing")))?;
    let bytes = read_doc(&found)?;
    let actual = Digest::of_bytes(&bytes);
    if actual != *digest {
        return Err(invalid(format!(
            "the manifest blob is corrupt: the index says {digest}, its content hashes to {actual}"
        )));
    }
    Ok(bytes)
}

/// Adds the layers and config of the manifest `bytes` to `blobs` (each digest once),
/// checking that every one is in the layout with the size the manifest gives.
fn collect_blobs(
    entries: &Entries,
    bytes: &[u8],
    digest: &Digest,
    blobs: &mut Vec<BlobSource>,
    invalid: &dyn Fn(String) -> RegistryError,
) -> Result<(), RegistryError> {
    let manifest: Manifest =
        serde_json::from_slice(bytes).map_err(|e| invalid(format!("manifest {digest}: {e}")))?;
    for d in manifest.layers.iter().chain([&manifest.config]) {
        if blobs.iter().any(|b| b.digest == d.digest) {
            continue;
        }
        let Found::File { path, offset, len } = entries
            .find(&blob_name(&d.digest))
            .ok_or_else(|| invalid(format!("blob {} is missing", d.digest)))?;
        if len != d.size {
            return Err(invalid(format!(
                "blob {} is {len} bytes, the manifest says {}",
                d.digest, d.size
            )));
        }
        blobs.push(BlobSource {
            digest: d.digest.clone(),
            size: d.size,
            location: Location::File { path, offset },
        });
    }
    Ok(())
}

/// An artifact manifest's `artifactType`, `subject` digest and annotations; `None` for a
/// manifest without a subject.
fn artifact_doc(
    bytes: &[u8],
) -> Option<(String, Digest, std::collections::BTreeMap<String, String>)> {
    #[derive(serde::Deserialize)]
    struct Subject {
        digest: Digest,
    }
    #[derive(serde::Deserialize)]
    struct Artifact {
        #[serde(rename = "artifactType", default)]
        artifact_type: Option<String>,
        config: crate::oci::json::Descriptor,
        subject: Option<Subject>,
        #[serde(default)]
        annotations: std::collections::BTreeMap<String, String>,
    }
    let a: Artifact = serde_json::from_slice(bytes).ok()?;
    let subject = a.subject?;
    Some((
        a.artifact_type.unwrap_or(a.config.media_type),
        subject.digest,
        a.annotations,
    ))
}

/// The artifacts attached to `subject` in the layout or oci-archive at `path` (an SBOM
/// written by `build --sbom`), with their blobs added to `image.blobs`.
///
/// # Errors
/// [`RegistryError`] naming the path.
pub fn add_referrers(image: &mut PushImage, path: &Path) -> Result<(), RegistryError> {
    let from_layout = from_path(path, None)?;
    if from_layout.manifest_digest != image.manifest_digest {
        return Err(RegistryError::Image {
            path: path.to_path_buf(),
            what: format!(
                "holds {}, not the image being pushed ({})",
                from_layout.manifest_digest, image.manifest_digest
            ),
        });
    }
    // Same manifest, so the same layers and config: what the layout adds is exactly the
    // artifacts' blobs.
    for b in from_layout.blobs {
        if !image.blobs.iter().any(|x| x.digest == b.digest) {
            image.blobs.push(b);
        }
    }
    image.referrers.extend(from_layout.referrers);
    Ok(())
}

/// A built image straight from the store: layers as their stored fragments, config and
/// manifest from memory.
///
/// # Errors
/// A fragment missing from the store.
pub fn from_built(store: &Store, image: &BuiltImage) -> Result<PushImage, RegistryError> {
    let mut blobs: Vec<BlobSource> = Vec::new();
    for layer in &image.layers {
        let out = &layer.output;
        if blobs.iter().any(|b| b.digest == out.digest) {
            continue;
        }
        let mut parts = Vec::with_capacity(out.fragments.len());
        for f in &out.fragments {
            let size = store
                .blob_size(f)?
                .ok_or_else(|| composer_store::StoreError::MissingBlob { digest: f.clone() })?;
            parts.push((store.blob_path(f), size));
        }
        blobs.push(BlobSource {
            digest: out.digest.clone(),
            size: out.size,
            location: Location::Parts(parts),
        });
    }
    if !blobs.iter().any(|b| b.digest == image.config_digest) {
        blobs.push(BlobSource {
            digest: image.config_digest.clone(),
            size: image.config.len() as u64,
            location: Location::Bytes(image.config.clone()),
        });
    }
    Ok(PushImage {
        manifest: image.manifest.clone(),
        manifest_digest: image.manifest_digest.clone(),
        media_type: MANIFEST_MEDIA_TYPE.into(),
        tag: None,
        blobs,
        manifests: Vec::new(),
        referrers: Vec::new(),
    })
}

/// Where a named file of the layout or archive is.
enum Found {
    File {
        path: PathBuf,
        offset: u64,
        len: u64,
    },
}

/// Names inside a layout (`index.json`, `blobs/sha256/…`) mapped to file ranges.
enum Entries {
    Dir(PathBuf),
    Tar(PathBuf, std::collections::BTreeMap<String, (u64, u64)>),
}

impl Entries {
    fn find(&self, name: &str) -> Option<Found> {
        match self {
            Self::Dir(root) => {
                let path = root.join(name);
                let len = std::fs::metadata(&path).ok().filter(|m| m.is_file())?.len();
                Some(Found::File {
                    path,
                    offset: 0,
                    len,
                })
            }
            Self::Tar(path, map) => map.get(name).map(|(offset, len)| Found::File {
                path: path.clone(),
                offset: *offset,
                len: *len,
            }),
        }
    }
}

fn dir_entries(dir: &Path) -> Entries {
    Entries::Dir(dir.to_path_buf())
}

/// The position and size of every regular file in an oci-archive.
fn tar_entries(path: &Path) -> Result<Entries, RegistryError> {
    let ioe = |source| RegistryError::Io {
        path: path.to_path_buf(),
        source,
    };
    let f = std::fs::File::open(path).map_err(ioe)?;
    let mut ar = tar::Archive::new(io::BufReader::new(f));
    let mut map = std::collections::BTreeMap::new();
    for e in ar.entries().map_err(ioe)? {
        let e = e.map_err(ioe)?;
        if !e.header().entry_type().is_file() {
            continue;
        }
        let name = crate::oci::read::member_name(&e).map_err(ioe)?;
        map.insert(name, (e.raw_file_position(), e.size()));
    }
    Ok(Entries::Tar(path.to_path_buf(), map))
}

fn read_doc(found: &Found) -> Result<Vec<u8>, RegistryError> {
    let Found::File { path, offset, len } = found;
    if *len > MAX_DOC {
        return Err(RegistryError::Image {
            path: path.clone(),
            what: format!("a JSON document of {len} bytes is too large"),
        });
    }
    let mut buf = Vec::new();
    let ioe = |source| RegistryError::Io {
        path: path.clone(),
        source,
    };
    let mut f = std::fs::File::open(path).map_err(ioe)?;
    f.seek(SeekFrom::Start(*offset)).map_err(ioe)?;
    f.take(*len).read_to_end(&mut buf).map_err(ioe)?;
    Ok(buf)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parts_read_from_any_offset() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        std::fs::write(&a, b"hello ").unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(&b, b"world").unwrap_or_else(|e| panic!("{e}"));
        let blob = BlobSource {
            digest: Digest::of_bytes(b"hello world"),
            size: 11,
            location: Location::Parts(vec![(a.clone(), 6), (b, 5)]),
        };
        for from in 0..=11u64 {
            let mut s = String::new();
            blob.open_at(from)
                .and_then(|mut r| {
                    r.read_to_string(&mut s)
                        .map_err(|source| RegistryError::Io {
                            path: a.clone(),
                            source,
                        })
                })
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(s, &"hello world"[from as usize..]);
        }
        // A truncated file is an error naming it, not a short blob.
        let short = BlobSource {
            digest: Digest::of_bytes(b"x"),
            size: 10,
            location: Location::File {
                path: a.clone(),
                offset: 0,
            },
        };
        let mut buf = Vec::new();
        let err = short
            .open_at(0)
            .unwrap_or_else(|e| panic!("{e}"))
            .read_to_end(&mut buf)
            .unwrap_err();
        assert!(err.to_string().contains("ends 4 bytes early"), "{err}");
    }
}
