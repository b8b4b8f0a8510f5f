//! Building fragments and layers into the store.
//!
//! One pass per fragment: tar bytes go through a sha256 (the layer's diff_id) into the
//! compressor, whose output goes through a second sha256 (the layer's digest) into a store
//! blob. Fragments already in the store are not recompressed; their stored bytes are hashed
//! and decompressed once to continue both digests. A layer whose node is in the store is not
//! touched at all. Nothing is held in memory beyond fixed-size buffers.

use std::io::{self, Read, Write};

use composer_store::{Digest, NodeId, NodeRecord, Store};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::LayerError;
use super::compress::Compression;
use super::plan::{Content, FragmentPlan, LayerPlan, end_marker_id, layer_id};
use super::tar::{self, EntryKind};

/// What a built layer is: everything the image config and manifest need, and the fragment
/// blobs whose concatenation is the layer blob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerOutput {
    /// Layer node id in the store.
    pub id: NodeId,
    /// sha256 of the compressed blob (the manifest descriptor digest).
    pub digest: Digest,
    /// sha256 of the uncompressed tar (the config's diff_id).
    pub diff_id: Digest,
    /// Compressed size in bytes.
    pub size: u64,
    /// Uncompressed tar size in bytes.
    pub tar_size: u64,
    /// OCI media type.
    pub media_type: String,
    /// Fragment blobs, in order; their concatenation is the layer blob.
    pub fragments: Vec<Digest>,
}

/// Extracts archives whose files a fragment needs (`Content::Extracted`), returning the
/// directory that holds them. Called only for fragments that are not in the store yet.
pub trait Materializer: Sync {
    /// The directory with `archive`'s files at their image paths.
    ///
    /// # Errors
    /// The archive cannot be read or extracted.
    fn materialize(&self, archive: &Digest) -> Result<std::path::PathBuf, LayerError>;
}

/// Whether a layer came from the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provenance {
    /// The layer node was already in the store.
    Cached,
    /// Built now (some fragments may have been reused).
    Built {
        /// Fragments compressed in this build.
        compressed: usize,
        /// Fragments reused from the store.
        reused: usize,
    },
}

const LAYER_KIND: &str = "layer";
const FRAGMENT_KIND: &str = "fragment";

/// Builds (or finds) the layer for `plan`.
///
/// `progress` is called with the number of uncompressed bytes processed so far.
///
/// # Errors
/// [`LayerError`] naming the input file, or a store error.
pub fn build_layer(
    store: &Store,
    plan: &LayerPlan,
    compression: Compression,
    mtime: u64,
    workers: u32,
    archives: &dyn Materializer,
    progress: &dyn Fn(u64),
) -> Result<(LayerOutput, Provenance), LayerError> {
    let frag_ids: Vec<NodeId> = plan
        .fragments
        .iter()
        .map(|f| f.node_id(compression, mtime))
        .collect();
    let id = layer_id(&frag_ids, compression);
    if let Some(out) = cached_layer(store, &id)? {
        return Ok((out, Provenance::Cached));
    }

    let mut diff = Sha256::new();
    let mut blob = Sha256::new();
    let mut size = 0u64;
    let mut tar_size = 0u64;
    let mut fragments = Vec::with_capacity(frag_ids.len() + 1);
    let mut children = Vec::with_capacity(frag_ids.len() + 1);
    let (mut compressed, mut reused) = (0, 0);
    let end = end_marker_id(compression);
    let all = plan.fragments.iter().map(Some).chain(std::iter::once(None));
    for (frag, fid) in all.zip(frag_ids.iter().chain(std::iter::once(&end))) {
        let mut sink = Hashing {
            diff: &mut diff,
            blob: &mut blob,
            size: &mut size,
            tar_size: &mut tar_size,
        };
        let digest = match reuse_fragment(store, fid, compression, &mut sink)? {
            Some(d) => {
                reused += 1;
                d
            }
            None => {
                compressed += 1;
                write_fragment(
                    store,
                    fid,
                    frag,
                    compression,
                    mtime,
                    workers,
                    archives,
                    &mut sink,
                    &plan.name,
                    progress,
                )?
            }
        };
        progress(tar_size);
        fragments.push(digest);
        children.push(*fid);
    }

    let out = LayerOutput {
        id,
        digest: Digest::from_sha256_bytes(blob.finalize().into()),
        diff_id: Digest::from_sha256_bytes(diff.finalize().into()),
        size,
        tar_size,
        media_type: compression.media_type().to_string(),
        fragments: fragments.clone(),
    };
    let meta = serde_json::to_value(&out).map_err(|e| LayerError::Compress {
        layer: plan.name.clone(),
        source: io::Error::other(e),
    })?;
    store.put_node(
        &id,
        &NodeRecord {
            kind: LAYER_KIND.into(),
            blobs: fragments,
            children,
            meta,
        },
    )?;
    Ok((out, Provenance::Built { compressed, reused }))
}

/// The layer node id of `plan` (what [`build_layer`] stores it under).
#[must_use]
pub fn layer_node_id(plan: &LayerPlan, compression: Compression, mtime: u64) -> NodeId {
    let frag_ids: Vec<NodeId> = plan
        .fragments
        .iter()
        .map(|f| f.node_id(compression, mtime))
        .collect();
    layer_id(&frag_ids, compression)
}

/// Whether the layer node `id` is in the store whole (so [`build_layer`] reads nothing).
///
/// # Errors
/// A store failure.
pub fn is_layer_stored(store: &Store, id: &NodeId) -> Result<bool, LayerError> {
    Ok(cached_layer(store, id)?.is_some())
}

/// The archives (`.deb`s, wheels) that building `plan` would read: none when the layer is
/// stored, else those of its fragments that are not.
///
/// # Errors
/// A store failure.
pub fn archives_needed(
    store: &Store,
    plan: &LayerPlan,
    compression: Compression,
    mtime: u64,
) -> Result<std::collections::BTreeSet<Digest>, LayerError> {
    let mut out = std::collections::BTreeSet::new();
    if is_layer_stored(store, &layer_node_id(plan, compression, mtime))? {
        return Ok(out);
    }
    for f in &plan.fragments {
        let stored = store
            .get_node(&f.node_id(compression, mtime))?
            .is_some_and(|rec| {
                rec.kind == FRAGMENT_KIND
                    && matches!(rec.blobs.as_slice(), [d] if store.has_blob(d))
            });
        if stored {
            continue;
        }
        for e in &f.entries {
            if let Content::Extracted { archive, .. } = &e.content {
                out.insert(archive.clone());
            }
        }
    }
    Ok(out)
}

fn cached_layer(store: &Store, id: &NodeId) -> Result<Option<LayerOutput>, LayerError> {
    let Some(rec) = store.get_node(id)? else {
        return Ok(None);
    };
    if rec.kind != LAYER_KIND || !rec.blobs.iter().all(|b| store.has_blob(b)) {
        return Ok(None);
    }
    Ok(serde_json::from_value::<LayerOutput>(rec.meta)
        .ok()
        .filter(|o| o.id == *id && o.fragments == rec.blobs))
}

/// Running digests of the layer being assembled.
struct Hashing<'a> {
    diff: &'a mut Sha256,
    blob: &'a mut Sha256,
    size: &'a mut u64,
    tar_size: &'a mut u64,
}

/// Continues the layer digests with a fragment already in the store, if it is there.
fn reuse_fragment(
    store: &Store,
    fid: &NodeId,
    compression: Compression,
    sink: &mut Hashing<'_>,
) -> Result<Option<Digest>, LayerError> {
    let Some(rec) = store.get_node(fid)? else {
        return Ok(None);
    };
    let [digest] = rec.blobs.as_slice() else {
        return Ok(None);
    };
    if rec.kind != FRAGMENT_KIND || !store.has_blob(digest) {
        return Ok(None);
    }
    hash_fragment(store, digest, compression, sink)?;
    Ok(Some(digest.clone()))
}

/// What a layer made of the stored fragment blobs `fragments` (in order) is: its digest,
/// diff_id, compressed size and tar size, recomputed by reading (and decompressing) them.
///
/// # Errors
/// A fragment missing from the store or unreadable, naming its path.
pub fn layer_digests(
    store: &Store,
    fragments: &[Digest],
    compression: Compression,
) -> Result<(Digest, Digest, u64, u64), LayerError> {
    let (mut diff, mut blob) = (Sha256::new(), Sha256::new());
    let (mut size, mut tar_size) = (0, 0);
    for d in fragments {
        let mut sink = Hashing {
            diff: &mut diff,
            blob: &mut blob,
            size: &mut size,
            tar_size: &mut tar_size,
        };
        hash_fragment(store, d, compression, &mut sink)?;
    }
    Ok((
        Digest::from_sha256_bytes(blob.finalize().into()),
        Digest::from_sha256_bytes(diff.finalize().into()),
        size,
        tar_size,
    ))
}

/// Continues the layer digests with the stored fragment blob `digest`: its bytes into the
/// blob digest and size, its decompressed bytes into the diff_id and tar size.
fn hash_fragment(
    store: &Store,
    digest: &Digest,
    compression: Compression,
    sink: &mut Hashing<'_>,
) -> Result<(), LayerError> {
    let path = store.blob_path(digest);
    let file = store.open_blob(digest)?;
    let mut tee = TeeReader {
        inner: file,
        hash: &mut *sink.blob,
        count: &mut *sink.size,
    };
    {
        let mut dec = compression
            .decoder(&mut tee)
            .map_err(|source| LayerError::Io {
                path: path.clone(),
                source,
            })?;
        let mut w = TeeWriter {
            inner: io::sink(),
            hash: &mut *sink.diff,
            count: &mut *sink.tar_size,
        };
        io::copy(&mut dec, &mut w).map_err(|source| LayerError::Io {
            path: path.clone(),
            source,
        })?;
    }
    // Anything the decoder did not need still belongs to the blob.
    io::copy(&mut tee, &mut io::sink()).map_err(|source| LayerError::Io { path, source })?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn write_fragment(
    store: &Store,
    fid: &NodeId,
    frag: Option<&FragmentPlan>,
    compression: Compression,
    mtime: u64,
    workers: u32,
    archives: &dyn Materializer,
    sink: &mut Hashing<'_>,
    layer: &str,
    progress: &dyn Fn(u64),
) -> Result<Digest, LayerError> {
    let cerr = |source: io::Error| LayerError::Compress {
        layer: layer.to_string(),
        source,
    };
    let writer = store.blob_writer()?;
    let len = frag.map_or(tar::END_MARKER.len() as u64, |f| f.tar_len);
    let tee = TeeWriter {
        inner: writer,
        hash: &mut *sink.blob,
        count: &mut *sink.size,
    };
    let enc = compression.encoder(tee, len, workers).map_err(cerr)?;
    let mut w = TeeWriter {
        inner: enc,
        hash: &mut *sink.diff,
        count: &mut *sink.tar_size,
    };
    match frag {
        Some(f) => write_entries(&mut w, f, mtime, archives, layer, progress)?,
        None => w.write_all(&tar::END_MARKER).map_err(cerr)?,
    }
    let tee = w.inner.finish().map_err(cerr)?;
    let (digest, n) = tee.inner.commit(None)?;
    let meta = serde_json::json!({ "size": n, "tar_len": len, "label": frag.map_or("end of archive", |f| f.label.as_str()) });
    store.put_node(
        fid,
        &NodeRecord {
            kind: FRAGMENT_KIND.into(),
            blobs: vec![digest.clone()],
            children: vec![],
            meta,
        },
    )?;
    Ok(digest)
}

fn write_entries<W: Write>(
    w: &mut TeeWriter<'_, W>,
    frag: &FragmentPlan,
    mtime: u64,
    archives: &dyn Materializer,
    layer: &str,
    progress: &dyn Fn(u64),
) -> Result<(), LayerError> {
    let cerr = |source: io::Error| LayerError::Compress {
        layer: layer.to_string(),
        source,
    };
    let mut buf = vec![0u8; 1 << 20];
    for e in &frag.entries {
        tar::write_header(w, &e.header, mtime).map_err(cerr)?;
        let EntryKind::File { size } = e.header.kind else {
            continue;
        };
        match &e.content {
            Content::Inline(bytes) => w.write_all(bytes).map_err(cerr)?,
            Content::Local {
                path,
                size: planned,
                mtime_ns,
            } => {
                let meta = copy_exact(w, path, *planned, &mut buf, layer, progress)?;
                if meta.len() != *planned
                    || super::files::mtime_ns(&meta) != *mtime_ns
                    || size != *planned
                {
                    return Err(LayerError::FileChanged { path: path.clone() });
                }
            }
            Content::Extracted { archive, path } => {
                let full = archives.materialize(archive)?.join(path);
                let meta = copy_exact(w, &full, size, &mut buf, layer, progress)?;
                if meta.len() != size {
                    return Err(LayerError::FileChanged { path: full });
                }
            }
            Content::None => {
                return Err(cerr(io::Error::other(format!(
                    "no content for file /{}",
                    e.header.path
                ))));
            }
        }
        w.write_all(&vec![0u8; tar::padding(size)]).map_err(cerr)?;
    }
    Ok(())
}

/// Copies exactly `size` bytes of `path` into `w`; returns the file's metadata after reading
/// (to detect a file that changed while it was read).
fn copy_exact<W: Write>(
    w: &mut TeeWriter<'_, W>,
    path: &std::path::Path,
    size: u64,
    buf: &mut [u8],
    layer: &str,
    progress: &dyn Fn(u64),
) -> Result<std::fs::Metadata, LayerError> {
    let ioe = |source| LayerError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut f = std::fs::File::open(path).map_err(ioe)?;
    let mut left = size;
    while left > 0 {
        let want = usize::try_from(left.min(buf.len() as u64)).unwrap_or(buf.len());
        let n = f.read(&mut buf[..want]).map_err(ioe)?;
        if n == 0 {
            return Err(LayerError::FileChanged {
                path: path.to_path_buf(),
            });
        }
        w.write_all(&buf[..n])
            .map_err(|source| LayerError::Compress {
                layer: layer.to_string(),
                source,
            })?;
        left -= n as u64;
        progress(*w.count);
    }
    f.metadata().map_err(ioe)
}

/// Writes the layer blob (the concatenated fragments) to `w`.
///
/// # Errors
/// A missing fragment blob or an I/O error.
pub fn copy_layer_blob<W: Write>(
    store: &Store,
    layer: &LayerOutput,
    w: &mut W,
) -> Result<u64, LayerError> {
    let mut n = 0;
    for d in &layer.fragments {
        let mut f = store.open_blob(d)?;
        n += io::copy(&mut f, w).map_err(|source| LayerError::Io {
            path: store.blob_path(d),
            source,
        })?;
    }
    Ok(n)
}

/// Writes the layer's uncompressed tar (for docker-archive) to `w`.
///
/// # Errors
/// A missing fragment blob, a decoding or I/O error.
pub fn copy_layer_tar<W: Write>(
    store: &Store,
    layer: &LayerOutput,
    compression: Compression,
    w: &mut W,
) -> Result<u64, LayerError> {
    let mut n = 0;
    for d in &layer.fragments {
        let f = store.open_blob(d)?;
        let ioe = |source| LayerError::Io {
            path: store.blob_path(d),
            source,
        };
        let mut dec = compression.decoder(f).map_err(ioe)?;
        n += io::copy(&mut dec, w).map_err(|source| LayerError::Io {
            path: store.blob_path(d),
            source,
        })?;
    }
    Ok(n)
}

/// Hashes and counts bytes on their way into `inner` (tar bytes into the encoder, blob
/// bytes into the store).
struct TeeWriter<'a, W: Write> {
    inner: W,
    hash: &'a mut Sha256,
    count: &'a mut u64,
}
impl<W: Write> Write for TeeWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        *self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

struct TeeReader<'a, R: Read> {
    inner: R,
    hash: &'a mut Sha256,
    count: &'a mut u64,
}
impl<R: Read> Read for TeeReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        *self.count += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::layer::plan::{ItemEntries, PlannedEntry, plan_layer};

    /// Every archive's files in one directory (paths differ per archive).
    struct Dir(std::path::PathBuf);
    impl Materializer for Dir {
        fn materialize(&self, _: &Digest) -> Result<std::path::PathBuf, LayerError> {
            Ok(self.0.clone())
        }
    }

    /// An item of one file extracted from `archive`.
    fn extracted(dir: &std::path::Path, archive: &Digest, name: &str) -> ItemEntries {
        let body = format!("{name}\n");
        std::fs::write(dir.join(name), &body).unwrap();
        let mut e = PlannedEntry::inline_file(name, 0o644, Arc::from(body.as_bytes()));
        e.content = Content::Extracted {
            archive: archive.clone(),
            path: name.into(),
        };
        ItemEntries {
            label: name.into(),
            entries: vec![e],
        }
    }

    #[test]
    fn only_the_archives_of_fragments_not_stored_are_needed() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path().join("store")).unwrap();
        let files = tmp.path().join("files");
        std::fs::create_dir_all(&files).unwrap();
        let (a, b) = (Digest::of_bytes(b"a.deb"), Digest::of_bytes(b"b.deb"));
        let c = Compression::default();
        let one = plan_layer("l", vec![extracted(&files, &a, "a")]).unwrap();
        let need = |p: &LayerPlan| archives_needed(&store, p, c, 0).unwrap();
        assert_eq!(need(&one), [a.clone()].into());

        let (out, _) = build_layer(&store, &one, c, 0, 1, &Dir(files.clone()), &|_| {}).unwrap();
        assert_eq!(out.id, layer_node_id(&one, c, 0));
        assert!(is_layer_stored(&store, &out.id).unwrap());
        assert!(need(&one).is_empty());

        // Another layer with the same fragment and one more: only the new archive.
        let two = plan_layer(
            "l",
            vec![extracted(&files, &a, "a"), extracted(&files, &b, "b")],
        )
        .unwrap();
        assert!(!is_layer_stored(&store, &layer_node_id(&two, c, 0)).unwrap());
        assert_eq!(need(&two), [b].into());
        // Another compression: nothing of it is stored.
        assert_eq!(
            archives_needed(&store, &one, Compression::gzip(), 0).unwrap(),
            [a].into()
        );
    }
}
