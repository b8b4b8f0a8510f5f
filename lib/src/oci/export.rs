//! Writing a built image out of the store: an OCI image layout directory, an oci-archive
//! (that layout as a tar) or a docker-archive (`docker load` / `podman load`).
//!
//! Layer blobs are streamed as the concatenation of their stored fragments (never held in
//! memory). Archive tars use the same deterministic header writer as layers, so an archive
//! of the same image is byte-identical wherever it is written. A layout directory is
//! updated in place: blobs already present with the right size are kept, new ones appear
//! by rename, `index.json` is replaced last, and blobs no longer referenced are removed.

use std::collections::BTreeSet;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use composer_store::{Digest, Store};

use super::json::{OCI_LAYOUT, to_canonical};
use crate::build::BuiltImage;
use crate::layer::tar::{self as tarw, EntryKind, Header};
use crate::layer::{LayerError, copy_layer_blob, copy_layer_tar};
use crate::multiarch::BuiltIndex;

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// OCI image layout directory.
    #[default]
    Layout,
    /// OCI image layout as a tar file.
    OciArchive,
    /// Docker's `docker save` format (uncompressed layers).
    DockerArchive,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "oci" | "layout" | "oci-layout" => Ok(Self::Layout),
            "oci-archive" => Ok(Self::OciArchive),
            "docker-archive" => Ok(Self::DockerArchive),
            other => Err(format!(
                "unknown format `{other}` (expected oci, oci-archive or docker-archive)"
            )),
        }
    }
}

/// Export failures; each names the output path.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// Writing the output failed.
    #[error("cannot write {}: {source}", path.display())]
    Io {
        /// Output path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// The output directory holds something that is not an OCI layout.
    #[error("{} exists and is not an OCI image layout (no oci-layout file); choose an empty or new directory", path.display())]
    NotALayout {
        /// Output path.
        path: PathBuf,
    },
    /// A docker-archive holds one platform's image.
    #[error(
        "a docker-archive holds one platform's image, and this image has {platforms} platforms; write --format oci or oci-archive, or build one platform with --platform"
    )]
    MultiPlatform {
        /// How many platforms the image has.
        platforms: usize,
    },
    /// Reading from the store failed.
    #[error(transparent)]
    Layer(#[from] LayerError),
    /// Store failure.
    #[error(transparent)]
    Store(#[from] composer_store::StoreError),
}

/// Writes `image` from `store` to `out` in `format`.
///
/// # Errors
/// [`ExportError`] naming the path.
pub fn export(
    store: &Store,
    image: &BuiltImage,
    format: Format,
    out: &Path,
) -> Result<(), ExportError> {
    match format {
        Format::Layout => write_layout(store, &image_blobs(image), &image.index, out),
        Format::OciArchive => write_archive(out, |w| {
            oci_archive(store, &image_blobs(image), &image.index, w)
        }),
        Format::DockerArchive => write_archive(out, |w| docker_archive(store, image, w)),
    }
}

/// Writes the multi-platform `image` from `store` to `out`: an OCI layout (directory or
/// oci-archive) whose `index.json` points at the image index, which lists each platform's
/// manifest. Blobs shared between platforms are written once.
///
/// # Errors
/// [`ExportError::MultiPlatform`] for a docker-archive; otherwise as [`export`].
pub fn export_index(
    store: &Store,
    image: &BuiltIndex,
    format: Format,
    out: &Path,
) -> Result<(), ExportError> {
    let mut blobs: Vec<ImageBlob<'_>> = image
        .images
        .iter()
        .flat_map(|(_, i)| image_blobs(i))
        .collect();
    blobs.push(ImageBlob {
        digest: &image.index_digest,
        size: image.image_index.len() as u64,
        layer: None,
        bytes: &image.image_index,
    });
    blobs.sort_by(|a, b| a.digest.cmp(b.digest));
    blobs.dedup_by(|a, b| a.digest == b.digest);
    match format {
        Format::Layout => write_layout(store, &blobs, &image.index, out),
        Format::OciArchive => write_archive(out, |w| oci_archive(store, &blobs, &image.index, w)),
        Format::DockerArchive => Err(ExportError::MultiPlatform {
            platforms: image.images.len(),
        }),
    }
}

fn ioe(path: &Path) -> impl FnOnce(io::Error) -> ExportError + '_ {
    move |source| ExportError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn write_layout(
    store: &Store,
    image_blobs: &[ImageBlob<'_>],
    index: &[u8],
    dir: &Path,
) -> Result<(), ExportError> {
    if dir.exists() {
        let empty = std::fs::read_dir(dir).map_err(ioe(dir))?.next().is_none();
        if !empty && !dir.join("oci-layout").is_file() {
            return Err(ExportError::NotALayout {
                path: dir.to_path_buf(),
            });
        }
    }
    let blobs = dir.join("blobs").join("sha256");
    std::fs::create_dir_all(&blobs).map_err(ioe(&blobs))?;
    let wanted: BTreeSet<String> = image_blobs
        .iter()
        .map(|b| b.digest.hex().to_string())
        .collect();
    for blob in image_blobs {
        let dest = blobs.join(blob.digest.hex());
        put_blob(&blobs, blob.digest, blob.size, |w| {
            blob.write(store, w, &dest)
        })?;
    }
    replace_file(&dir.join("oci-layout"), OCI_LAYOUT)?;
    replace_file(&dir.join("index.json"), index)?;
    for entry in std::fs::read_dir(&blobs).map_err(ioe(&blobs))? {
        let entry = entry.map_err(ioe(&blobs))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !wanted.contains(&name) {
            let p = entry.path();
            std::fs::remove_file(&p).map_err(ioe(&p))?;
        }
    }
    Ok(())
}

/// One blob of an image: a layer (the concatenation of its stored fragments) or a JSON
/// document held in memory.
struct ImageBlob<'a> {
    digest: &'a Digest,
    size: u64,
    layer: Option<&'a crate::layer::LayerOutput>,
    bytes: &'a [u8],
}

impl ImageBlob<'_> {
    /// Writes the blob to `w`; `dest` names the output in errors.
    fn write<W: Write>(&self, store: &Store, w: &mut W, dest: &Path) -> Result<(), LayerError> {
        match self.layer {
            Some(layer) => copy_layer_blob(store, layer, w).map(|_| ()),
            None => w.write_all(self.bytes).map_err(|source| LayerError::Io {
                path: dest.to_path_buf(),
                source,
            }),
        }
    }
}

/// Every blob of `image` once (layers, config, manifest), in digest order.
fn image_blobs(image: &BuiltImage) -> Vec<ImageBlob<'_>> {
    let layers = image.layers.iter().map(|l| ImageBlob {
        digest: &l.output.digest,
        size: l.output.size,
        layer: Some(&l.output),
        bytes: &[],
    });
    let docs = [
        (&image.config_digest, &image.config),
        (&image.manifest_digest, &image.manifest),
    ]
    .into_iter()
    .map(|(digest, bytes)| ImageBlob {
        digest,
        size: bytes.len() as u64,
        layer: None,
        bytes,
    });
    let mut blobs: Vec<ImageBlob<'_>> = layers.chain(docs).collect();
    blobs.sort_by(|a, b| a.digest.cmp(b.digest));
    blobs.dedup_by(|a, b| a.digest == b.digest);
    blobs
}

fn put_blob(
    blobs: &Path,
    digest: &Digest,
    size: u64,
    fill: impl FnOnce(&mut std::fs::File) -> Result<(), LayerError>,
) -> Result<(), ExportError> {
    let path = blobs.join(digest.hex());
    if std::fs::metadata(&path)
        .map(|m| m.len() == size)
        .unwrap_or(false)
    {
        return Ok(());
    }
    let tmp = blobs.join(format!(".tmp-{}-{}", digest.hex(), std::process::id()));
    // Unbuffered: a layer is copied from its fragment files file to file, which the kernel
    // does without our copying the bytes (copy_file_range); a document is one write.
    let mut file = std::fs::File::create(&tmp).map_err(ioe(&tmp))?;
    let result = fill(&mut file)
        .map_err(ExportError::from)
        .and_then(|()| file.sync_all().map_err(ioe(&tmp)));
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, &path).map_err(ioe(&path))
}

fn replace_file(path: &Path, bytes: &[u8]) -> Result<(), ExportError> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(ioe(&tmp))?;
    std::fs::rename(&tmp, path).map_err(ioe(path))
}

/// Writes a whole archive to a temporary sibling, then renames it into place.
fn write_archive(
    out: &Path,
    body: impl FnOnce(&mut ArchiveWriter<'_>) -> Result<(), ExportError>,
) -> Result<(), ExportError> {
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(ioe(parent))?;
    }
    let tmp = out.with_extension(format!("tmp-{}", std::process::id()));
    let file = std::fs::File::create(&tmp).map_err(ioe(&tmp))?;
    let mut w = ArchiveWriter {
        inner: BufWriter::with_capacity(1 << 20, file),
        path: &tmp,
    };
    let result = body(&mut w).and_then(|()| {
        w.inner.write_all(&tarw::END_MARKER).map_err(ioe(&tmp))?;
        let f = w.inner.into_inner().map_err(|e| ExportError::Io {
            path: tmp.clone(),
            source: e.into_error(),
        })?;
        f.sync_all().map_err(ioe(&tmp))
    });
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, out).map_err(ioe(out))
}

/// A tar being written with fixed metadata (root-owned, epoch 0, 0644/0755).
struct ArchiveWriter<'a> {
    inner: BufWriter<std::fs::File>,
    path: &'a Path,
}

impl ArchiveWriter<'_> {
    fn dir(&mut self, path: &str) -> Result<(), ExportError> {
        let h = Header {
            path: path.into(),
            mode: 0o755,
            uid: 0,
            gid: 0,
            kind: EntryKind::Dir,
        };
        tarw::write_header(&mut self.inner, &h, 0).map_err(ioe(self.path))
    }

    fn file(&mut self, path: &str, bytes: &[u8]) -> Result<(), ExportError> {
        self.stream(path, bytes.len() as u64, |w| {
            w.write_all(bytes).map_err(|source| LayerError::Io {
                path: PathBuf::from(path),
                source,
            })
        })
    }

    /// A file of `size` bytes produced by `fill`; the size is checked.
    fn stream(
        &mut self,
        path: &str,
        size: u64,
        fill: impl FnOnce(&mut CountingWriter<'_>) -> Result<(), LayerError>,
    ) -> Result<(), ExportError> {
        let h = Header {
            path: path.into(),
            mode: 0o644,
            uid: 0,
            gid: 0,
            kind: EntryKind::File { size },
        };
        tarw::write_header(&mut self.inner, &h, 0).map_err(ioe(self.path))?;
        let mut cw = CountingWriter {
            inner: &mut self.inner,
            count: 0,
        };
        fill(&mut cw)?;
        if cw.count != size {
            return Err(ExportError::Io {
                path: self.path.to_path_buf(),
                source: io::Error::other(format!(
                    "{path}: expected {size} bytes, wrote {}",
                    cw.count
                )),
            });
        }
        self.inner
            .write_all(&vec![0u8; tarw::padding(size)])
            .map_err(ioe(self.path))
    }
}

struct CountingWriter<'a> {
    inner: &'a mut BufWriter<std::fs::File>,
    count: u64,
}
impl Write for CountingWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn oci_archive(
    store: &Store,
    blobs: &[ImageBlob<'_>],
    index: &[u8],
    w: &mut ArchiveWriter<'_>,
) -> Result<(), ExportError> {
    w.file("oci-layout", OCI_LAYOUT)?;
    w.file("index.json", index)?;
    w.dir("blobs")?;
    w.dir("blobs/sha256")?;
    let w_path = w.path;
    for blob in blobs {
        w.stream(
            &format!("blobs/sha256/{}", blob.digest.hex()),
            blob.size,
            |cw| blob.write(store, cw, w_path),
        )?;
    }
    Ok(())
}

fn docker_archive(
    store: &Store,
    image: &BuiltImage,
    w: &mut ArchiveWriter<'_>,
) -> Result<(), ExportError> {
    let config_name = format!("{}.json", image.config_digest.hex());
    w.file(&config_name, &image.config)?;
    let mut layer_names = Vec::new();
    let mut written = BTreeSet::new();
    for layer in &image.layers {
        let dir = layer.output.diff_id.hex().to_string();
        let name = format!("{dir}/layer.tar");
        if written.insert(dir.clone()) {
            w.dir(&dir)?;
            w.stream(&name, layer.output.tar_size, |cw| {
                copy_layer_tar(store, &layer.output, image.compression, cw).map(|_| ())
            })?;
        }
        layer_names.push(name);
    }
    let repo = image.name.to_ascii_lowercase();
    let repo_tags: Vec<String> = image.tags.iter().map(|t| format!("{repo}:{t}")).collect();
    let manifest = serde_json::json!([{ "Config": config_name, "RepoTags": repo_tags, "Layers": layer_names }]);
    w.file("manifest.json", &to_canonical(&manifest))?;
    let top = layer_names
        .last()
        .and_then(|n| n.split('/').next())
        .unwrap_or_default()
        .to_string();
    let tags: serde_json::Map<String, serde_json::Value> = image
        .tags
        .iter()
        .map(|t| (t.clone(), serde_json::Value::String(top.clone())))
        .collect();
    let repositories = serde_json::json!({ repo: tags });
    w.file("repositories", &to_canonical(&repositories))?;
    Ok(())
}
