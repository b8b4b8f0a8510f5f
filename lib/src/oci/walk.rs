//! Streaming every entry of every layer of an image read back from disk (layout directory,
//! oci-archive or docker-archive), for `diff`, `audit` and `check`.
//!
//! Layers are decompressed on the fly (gzip, zstd or plain tar, recognised by their magic
//! bytes, not by the media type, so other tools' images work too) and their tar entries are
//! handed to a visitor together with a reader over the entry's content. Nothing is held in
//! memory beyond the tar crate's buffers, whatever the layer size. Layers of an archive are
//! visited in the archive's order (the visitor is told each layer's index in the manifest);
//! layers of a layout directory in manifest order.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use composer_store::Digest;
use serde::Serialize;

use super::read::{ImageView, ReadError};

/// What a layer entry is.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// Regular file.
    File,
    /// Directory.
    Dir,
    /// Symbolic link.
    Symlink,
    /// Hard link to an earlier entry of the same layer.
    HardLink,
    /// Character device.
    Char,
    /// Block device.
    Block,
    /// FIFO.
    Fifo,
    /// Anything else (tar type byte).
    Other(u8),
}

/// The metadata of one layer entry, as stored in the layer's tar.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// Path relative to the image root: no leading `./` or `/`, no trailing `/`.
    pub path: String,
    /// Entry kind.
    pub kind: Kind,
    /// Permission bits (`0o7777` mask).
    pub mode: u32,
    /// Owner uid.
    pub uid: u64,
    /// Owner gid.
    pub gid: u64,
    /// Modification time (seconds since the epoch).
    pub mtime: u64,
    /// Content size (files).
    pub size: u64,
    /// Link target (symlinks and hard links).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// Extended attributes (PAX `SCHILY.xattr.*`), by name.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub xattrs: BTreeMap<String, Vec<u8>>,
}

/// Walking failures, naming the image and the layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WalkError {
    /// The image could not be read.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// A layer could not be read or decoded.
    #[error("{}: layer {layer} ({blob}): {source}", path.display())]
    Layer {
        /// Image path.
        path: PathBuf,
        /// Layer index (bottom first).
        layer: usize,
        /// Blob name inside the image.
        blob: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// A layer listed in the manifest is not in the image.
    #[error("{}: layer {layer} ({blob}) is missing", path.display())]
    Missing {
        /// Image path.
        path: PathBuf,
        /// Layer index.
        layer: usize,
        /// Blob name.
        blob: String,
    },
    /// The visitor stopped the walk.
    #[error("{0}")]
    Visitor(String),
}

/// Visits every entry of every layer of the image at `path` (already read into `view`).
/// `visit(layer_index, entry, content)` gets a reader over a file's content (empty for other
/// kinds); it need not read it. An `Err` from the visitor ends the walk.
///
/// # Errors
/// [`WalkError`] naming the image, the layer and its blob.
pub fn walk_layers<F>(path: &Path, view: &ImageView, mut visit: F) -> Result<(), WalkError>
where
    F: FnMut(usize, &Entry, &mut dyn Read) -> Result<(), String>,
{
    walk_layers_while(path, view, |i, e, r| visit(i, e, r).map(|()| true))
}

/// As [`walk_layers`], but the visitor says whether to go on with the current layer:
/// `Ok(false)` skips the rest of it (reading a layout stops there; an archive is read
/// through to the next layer).
///
/// # Errors
/// As [`walk_layers`].
pub fn walk_layers_while<F>(path: &Path, view: &ImageView, mut visit: F) -> Result<(), WalkError>
where
    F: FnMut(usize, &Entry, &mut dyn Read) -> Result<bool, String>,
{
    for_each_layer_blob(path, view, |i, r| {
        walk_one(BufReader::with_capacity(1 << 20, r), i, &mut visit)
    })
}

/// Visits every entry of one uncompressed layer tar, as [`walk_layers_while`] does a layer
/// of an image (`Ok(false)` stops). Returns whether the walk went to the end marker.
///
/// # Errors
/// An I/O or tar error, or the visitor's.
pub fn walk_tar_stream<R, F>(r: R, mut visit: F) -> Result<(), String>
where
    R: Read,
    F: FnMut(&Entry, &mut dyn Read) -> Result<bool, String>,
{
    let mut f = |_: usize, e: &Entry, r: &mut dyn Read| visit(e, r);
    walk_tar(r, 0, &mut f).map_err(|e| match e {
        Step::Io(e) => e.to_string(),
        Step::Visitor(m) => m,
    })
}

/// sha256 of each layer blob's bytes as stored (not as the manifest claims), in layer order:
/// what a rebuild must match. Streams; nothing is held in memory.
///
/// # Errors
/// [`WalkError`] naming the image, the layer and its blob.
pub fn layer_blob_digests(path: &Path, view: &ImageView) -> Result<Vec<Digest>, WalkError> {
    let mut out = vec![None; view.layers.len()];
    for_each_layer_blob(path, view, |i, r| {
        let mut w = composer_store::Sha256Writer::new(std::io::sink());
        std::io::copy(r, &mut w)?;
        out[i] = Some(w.finish().1);
        Ok(())
    })?;
    Ok(out.into_iter().flatten().collect())
}

/// Calls `f(layer_index, blob_bytes)` for every layer blob of the image, in the layout's
/// manifest order or the archive's order.
fn for_each_layer_blob<F>(path: &Path, view: &ImageView, mut f: F) -> Result<(), WalkError>
where
    F: FnMut(usize, &mut dyn Read) -> Result<(), Step>,
{
    let blobs: Vec<String> = view.layers.iter().map(|l| l.blob.clone()).collect();
    let layer_err = |layer: usize, source: std::io::Error| WalkError::Layer {
        path: path.to_path_buf(),
        layer,
        blob: blobs[layer].clone(),
        source,
    };
    let step = |i: usize| {
        move |e: Step| match e {
            Step::Io(source) => layer_err(i, source),
            Step::Visitor(m) => WalkError::Visitor(m),
        }
    };
    if path.is_dir() {
        for (i, blob) in blobs.iter().enumerate() {
            let p = path.join(blob);
            let mut file = std::fs::File::open(&p).map_err(|source| match source.kind() {
                std::io::ErrorKind::NotFound => WalkError::Missing {
                    path: path.to_path_buf(),
                    layer: i,
                    blob: blob.clone(),
                },
                _ => layer_err(i, source),
            })?;
            f(i, &mut file).map_err(step(i))?;
        }
        return Ok(());
    }
    let ioe = |source| {
        WalkError::Read(ReadError::Io {
            path: path.to_path_buf(),
            source,
        })
    };
    let file = std::fs::File::open(path).map_err(ioe)?;
    let mut outer = tar::Archive::new(BufReader::with_capacity(1 << 20, file));
    let mut seen = vec![false; blobs.len()];
    for e in outer.entries().map_err(ioe)? {
        let mut e = e.map_err(ioe)?;
        let name = super::read::member_name(&e).map_err(ioe)?;
        // One blob can back several layers (identical layers); visit it for each.
        let idx: Vec<usize> = (0..blobs.len())
            .filter(|i| blobs[*i] == name && !seen[*i])
            .collect();
        let Some(&first) = idx.first() else { continue };
        if idx.len() == 1 {
            seen[first] = true;
            f(first, &mut e).map_err(step(first))?;
        } else {
            // Rare: spool to a temporary file and visit it once per layer index.
            use std::io::Seek;
            let mut tmp = tempfile::tempfile().map_err(|s| layer_err(first, s))?;
            std::io::copy(&mut e, &mut tmp).map_err(|s| layer_err(first, s))?;
            for i in idx {
                seen[i] = true;
                tmp.rewind().map_err(|s| layer_err(i, s))?;
                let mut r = tmp.try_clone().map_err(|s| layer_err(i, s))?;
                f(i, &mut r).map_err(step(i))?;
            }
        }
    }
    if let Some(i) = seen.iter().position(|s| !s) {
        return Err(WalkError::Missing {
            path: path.to_path_buf(),
            layer: i,
            blob: blobs[i].clone(),
        });
    }
    Ok(())
}

enum Step {
    Io(std::io::Error),
    Visitor(String),
}

impl From<std::io::Error> for Step {
    fn from(e: std::io::Error) -> Self {
        Step::Io(e)
    }
}

/// Walks one layer blob, decompressing by its magic bytes.
fn walk_one<R, F>(mut r: BufReader<R>, layer: usize, visit: &mut F) -> Result<(), Step>
where
    R: Read,
    F: FnMut(usize, &Entry, &mut dyn Read) -> Result<bool, String>,
{
    let head = r.fill_buf()?;
    if head.starts_with(&[0x1f, 0x8b]) {
        walk_tar(flate2::read::MultiGzDecoder::new(r), layer, visit)
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        walk_tar(zstd::stream::read::Decoder::with_buffer(r)?, layer, visit)
    } else {
        walk_tar(r, layer, visit)
    }
}

fn walk_tar<R, F>(r: R, layer: usize, visit: &mut F) -> Result<(), Step>
where
    R: Read,
    F: FnMut(usize, &Entry, &mut dyn Read) -> Result<bool, String>,
{
    let mut ar = tar::Archive::new(r);
    for e in ar.entries()? {
        let mut e = e?;
        let entry = entry_of(&mut e)?;
        if !visit(layer, &entry, &mut e).map_err(Step::Visitor)? {
            break;
        }
    }
    Ok(())
}

fn entry_of<R: Read>(e: &mut tar::Entry<'_, R>) -> std::io::Result<Entry> {
    let mut xattrs = BTreeMap::new();
    if let Some(exts) = e.pax_extensions()? {
        for ext in exts {
            let ext = ext?;
            if let Ok(key) = ext.key()
                && let Some(name) = key.strip_prefix("SCHILY.xattr.")
            {
                xattrs.insert(name.to_string(), ext.value_bytes().to_vec());
            }
        }
    }
    let h = e.header();
    use tar::EntryType as T;
    let t = h.entry_type();
    let kind = match t {
        T::Regular | T::Continuous => Kind::File,
        T::Directory => Kind::Dir,
        T::Symlink => Kind::Symlink,
        T::Link => Kind::HardLink,
        T::Char => Kind::Char,
        T::Block => Kind::Block,
        T::Fifo => Kind::Fifo,
        other => Kind::Other(other.as_byte()),
    };
    let link = match kind {
        Kind::Symlink | Kind::HardLink => e
            .link_name()?
            .map(|l| normalize(&l.to_string_lossy(), kind == Kind::HardLink)),
        _ => None,
    };
    let h = e.header();
    Ok(Entry {
        path: normalize(&e.path()?.to_string_lossy(), true),
        kind,
        mode: h.mode()? & 0o7777,
        uid: h.uid()?,
        gid: h.gid()?,
        mtime: h.mtime()?,
        size: e.size(),
        link,
        xattrs,
    })
}

/// `./usr/bin/` → `usr/bin`. Symlink targets keep a leading `/` (it is meaningful).
fn normalize(p: &str, strip_root: bool) -> String {
    let mut s = p;
    loop {
        if let Some(rest) = s.strip_prefix("./") {
            s = rest;
        } else if strip_root && let Some(rest) = s.strip_prefix('/') {
            s = rest;
        } else {
            break;
        }
    }
    let s = s.trim_end_matches('/');
    if s.is_empty() || s == "." {
        ".".into()
    } else {
        s.into()
    }
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn paths_are_normalized() {
        assert_eq!(normalize("./usr/bin/", true), "usr/bin");
        assert_eq!(normalize("/etc/passwd", true), "etc/passwd");
        assert_eq!(normalize("/usr/bin/python3", false), "/usr/bin/python3");
        assert_eq!(normalize("./", true), ".");
    }
}
