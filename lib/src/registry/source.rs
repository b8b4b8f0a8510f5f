//! What gets pushed: an image's manifest bytes (exactly as written, so the registry's
//! digest is ours) and its blobs, each readable from any offset without loading it:
//! a file of an OCI layout directory, a byte range of an oci-archive, the concatenated
//! fragments of a layer in the store, or a small JSON document in memory.

use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use composer_store::{Digest, Store};

use super::error::RegistryError;
use crate::build::BuiltImage;
use crate::oci::json::{Index, MANIFEST_MEDIA_TYPE, Manifest, REF_NAME};

/// Largest manifest or index read into memory.
const MAX_DOC: u64 = 16 << 20;

/// Docker's manifest media type (accepted as well as OCI's).
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// An image ready to push.
#[derive(Debug, Clone)]
pub struct PushImage {
    /// The manifest, byte for byte.
    pub manifest: Vec<u8>,
    /// Its sha256.
    pub manifest_digest: Digest,
    /// Its media type (the `Content-Type` of the PUT).
    pub media_type: String,
    /// The tag the image had in its layout, when one was picked.
    pub tag: Option<String>,
    /// Layers then config, each once.
    pub blobs: Vec<BlobSource>,
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
    if first.media_type != MANIFEST_MEDIA_TYPE && first.media_type != DOCKER_MANIFEST {
        return Err(invalid(format!(
            "{} is a {}, not an image manifest; only single-platform images can be pushed",
            first.digest, first.media_type
        )));
    }
    let blob_name = |d: &Digest| format!("blobs/sha256/{}", d.hex());
    let manifest_loc = entries
        .find(&blob_name(&first.digest))
        .ok_or_else(|| invalid(format!("the manifest blob {} is missing", first.digest)))?;
    let manifest_bytes = read_doc(&manifest_loc)?;
    let actual = Digest::of_bytes(&manifest_bytes);
    if actual != first.digest {
        return Err(invalid(format!(
            "the manifest blob is corrupt: index.json says {}, its content hashes to {actual}",
            first.digest
        )));
    }
    let manifest: Manifest = serde_json::from_slice(&manifest_bytes)
        .map_err(|e| invalid(format!("manifest {}: {e}", first.digest)))?;
    let mut blobs: Vec<BlobSource> = Vec::new();
    for d in manifest.layers.iter().chain([&manifest.config]) {
        if blobs.iter().any(|b| b.digest == d.digest) {
            continue;
        }
        let loc = entries
            .find(&blob_name(&d.digest))
            .ok_or_else(|| invalid(format!("blob {} is missing", d.digest)))?;
        let (location, len) = match loc {
            Found::File { path, offset, len } => (Location::File { path, offset }, len),
        };
        if len != d.size {
            return Err(invalid(format!(
                "blob {} is {len} bytes, the manifest says {}",
                d.digest, d.size
            )));
        }
        blobs.push(BlobSource {
            digest: d.digest.clone(),
            size: d.size,
            location,
        });
    }
    Ok(PushImage {
        media_type: first.media_type.clone(),
        manifest: manifest_bytes,
        manifest_digest: first.digest.clone(),
        tag: first
            .annotations
            .get(REF_NAME)
            .cloned()
            .filter(|_| tag.is_some()),
        blobs,
    })
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
