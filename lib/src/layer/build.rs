//! Building fragments and layers into the store.
//!
//! One pass per fragment: tar bytes go through a sha256 (the layer's diff_id) into the
//! compressor, whose output goes through a second sha256 (the layer's digest) into a store
//! blob. Fragments already in the store are not recompressed; their stored bytes are hashed
//! and decompressed once to continue both digests. A layer whose node is in the store is not
//! touched at all. Nothing is held in memory beyond fixed-size buffers.

use std::collections::BTreeMap;
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

/// Reads the files of archives that a fragment needs (`Content::Extracted`). Called only for
/// fragments that are not in the store yet. The layer builder checks every file it reads
/// against its planned size and blake3, so an implementation only has to find the bytes.
pub trait Materializer: Sync {
    /// A reader of the file at image path `path` (relative) of `archive`.
    ///
    /// # Errors
    /// The archive cannot be read, or has no such file.
    fn open(&self, archive: &Digest, path: &str) -> Result<Box<dyn Read + '_>, LayerError>;

    /// How errors name `archive` (a package and version, a file name).
    fn describe(&self, archive: &Digest) -> String {
        archive.to_string()
    }
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

/// Receives a copy of a layer's uncompressed tar while [`build_layer`] assembles it,
/// on a thread of its own, so that what it learns from the bytes (the check's index) costs
/// no second decompression. Best effort: a tap that stops reading early changes nothing.
pub trait LayerTap: Send + Sync + std::fmt::Debug {
    /// Reads the tar (to its end, or as far as it needs) and returns what to do once the
    /// layer is built, with its diff_id.
    fn read(&self, tar: &mut dyn Read) -> Box<dyn FnOnce(&Digest) + Send>;
}

/// Builds (or finds) the layer for `plan`.
///
/// `progress` is called with the number of uncompressed bytes processed so far. `tap`, when
/// given, gets a copy of the layer's uncompressed tar if the layer is assembled (not when it
/// is found stored).
///
/// # Errors
/// [`LayerError`] naming the input file, or a store error.
#[allow(clippy::too_many_arguments)]
pub fn build_layer(
    store: &Store,
    plan: &LayerPlan,
    compression: Compression,
    mtime: u64,
    workers: u32,
    archives: &dyn Materializer,
    progress: &dyn Fn(u64),
    tap: Option<&dyn LayerTap>,
) -> Result<(LayerOutput, Provenance), LayerError> {
    std::thread::scope(|s| {
        let mut tapped = tap.map(|tap| {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(8);
            let reader = s.spawn(move || {
                tap.read(&mut ChannelReader {
                    rx,
                    chunk: Vec::new(),
                    at: 0,
                })
            });
            let copy = ChannelWriter {
                tx: Some(tx),
                buf: Vec::with_capacity(CHUNK),
            };
            (copy, reader)
        });
        let built = assemble(
            store,
            plan,
            compression,
            mtime,
            workers,
            archives,
            progress,
            tapped.as_mut().map(|(copy, _)| copy),
        );
        if let Some((mut copy, reader)) = tapped {
            copy.close();
            if let (Ok((out, Provenance::Built { .. })), Ok(finish)) = (&built, reader.join()) {
                finish(&out.diff_id);
            }
        }
        built
    })
}

/// Bytes per message to a tap.
const CHUNK: usize = 256 << 10;

/// The writing end of a tap: chunks of the tar, sent as they fill; a tap that hung up is
/// ignored.
struct ChannelWriter {
    tx: Option<std::sync::mpsc::SyncSender<Vec<u8>>>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    fn send(&mut self) {
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        if let Some(tx) = &self.tx
            && tx.send(chunk).is_err()
        {
            self.tx = None;
        }
    }

    /// Sends what is buffered and hangs up (the tap then sees the end).
    fn close(&mut self) {
        if !self.buf.is_empty() {
            self.send();
        }
        self.tx = None;
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.tx.is_some() {
            self.buf.extend_from_slice(buf);
            if self.buf.len() >= CHUNK {
                self.send();
            }
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The reading end of a tap.
struct ChannelReader {
    rx: std::sync::mpsc::Receiver<Vec<u8>>,
    chunk: Vec<u8>,
    at: usize,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.chunk.len() {
            match self.rx.recv() {
                Ok(chunk) => {
                    self.chunk = chunk;
                    self.at = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.at);
        buf[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// The layer for `plan`: found stored, or assembled from its fragments (reused, or written
/// now), with the uncompressed tar also written to `copy`.
#[allow(clippy::too_many_arguments)]
fn assemble(
    store: &Store,
    plan: &LayerPlan,
    compression: Compression,
    mtime: u64,
    workers: u32,
    archives: &dyn Materializer,
    progress: &dyn Fn(u64),
    mut copy: Option<&mut ChannelWriter>,
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
    let writer = FragmentWriter::new(store, compression, mtime, workers, archives);
    let all = plan.fragments.iter().map(Some).chain(std::iter::once(None));
    for (frag, fid) in all.zip(frag_ids.iter().chain(std::iter::once(&end))) {
        let mut sink = Hashing {
            diff: Some(&mut diff),
            blob: Some(&mut blob),
            size: &mut size,
            tar_size: &mut tar_size,
            copy: copy.as_deref_mut().map(|w| w as &mut dyn Write),
        };
        let digest = match reuse_fragment(store, fid, compression, &mut sink)? {
            Some(d) => {
                reused += 1;
                d
            }
            None => {
                compressed += 1;
                let (digest, n) = writer.write_blob(frag, &mut sink, &plan.name, progress, None)?;
                put_fragment_node(store, fid, frag, &digest, n)?;
                digest
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

/// Writes one fragment into the store ahead of its layer (unless it is stored already), so
/// that [`build_layer`] later only reuses it. `workers` does not change the bytes.
///
/// # Errors
/// [`LayerError`] naming the input, or a store error.
pub fn build_fragment(
    store: &Store,
    frag: &FragmentPlan,
    compression: Compression,
    mtime: u64,
    workers: u32,
    archives: &dyn Materializer,
) -> Result<(), LayerError> {
    let fid = frag.node_id(compression, mtime);
    if fragment_blob(store, &fid)?.is_some() {
        return Ok(());
    }
    let w = FragmentWriter::new(store, compression, mtime, workers, archives);
    let (digest, size) = w.write_ahead(frag, None)?;
    put_fragment_node(store, &fid, Some(frag), &digest, size)
}

/// The blob of a fragment written by [`write_fragment_learning`], and what it learned.
#[derive(Debug)]
pub struct LearnedFragment {
    /// The stored fragment blob.
    pub blob: Digest,
    /// Its compressed size.
    pub size: u64,
    /// The blake3 of every file read from an archive, by image path.
    pub learned: BTreeMap<String, [u8; 32]>,
}

/// Writes the blob of `frag`, whose files from archives need not have their blake3 yet: the
/// tar bytes depend on paths, modes, sizes and contents only, so the blob is the one the
/// finished plan gives, and each file's blake3 is learned as it is copied (the archive's
/// reader checks its bytes against what the archive promises). The caller completes the plan
/// with the learned hashes and records the fragment with [`record_fragment`]; a failure
/// leaves no blob. One pass over the files instead of one to list them and one to write.
///
/// # Errors
/// [`LayerError`] naming the input, or a store error.
pub fn write_fragment_learning(
    store: &Store,
    frag: &FragmentPlan,
    compression: Compression,
    mtime: u64,
    workers: u32,
    archives: &dyn Materializer,
) -> Result<LearnedFragment, LayerError> {
    let mut learned = BTreeMap::new();
    let w = FragmentWriter::new(store, compression, mtime, workers, archives);
    let (blob, size) = w.write_ahead(frag, Some(&mut learned))?;
    Ok(LearnedFragment {
        blob,
        size,
        learned,
    })
}

/// Records `blob` (from [`write_fragment_learning`]) as the fragment of the finished `frag`.
///
/// # Errors
/// A store error.
pub fn record_fragment(
    store: &Store,
    frag: &FragmentPlan,
    compression: Compression,
    mtime: u64,
    blob: &Digest,
    size: u64,
) -> Result<(), LayerError> {
    put_fragment_node(
        store,
        &frag.node_id(compression, mtime),
        Some(frag),
        blob,
        size,
    )
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
        if fragment_blob(store, &f.node_id(compression, mtime))?.is_some() {
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
    /// None: not computed (a fragment written ahead of its layer).
    diff: Option<&'a mut Sha256>,
    blob: Option<&'a mut Sha256>,
    size: &'a mut u64,
    tar_size: &'a mut u64,
    /// Also receives the uncompressed bytes (a tap).
    copy: Option<&'a mut dyn Write>,
}

/// Continues the layer digests with a fragment already in the store, if it is there.
fn reuse_fragment(
    store: &Store,
    fid: &NodeId,
    compression: Compression,
    sink: &mut Hashing<'_>,
) -> Result<Option<Digest>, LayerError> {
    let Some(digest) = fragment_blob(store, fid)? else {
        return Ok(None);
    };
    hash_fragment(store, &digest, compression, sink)?;
    Ok(Some(digest))
}

/// The blob of fragment node `fid`, if the node and its blob are stored.
fn fragment_blob(store: &Store, fid: &NodeId) -> Result<Option<Digest>, LayerError> {
    let Some(rec) = store.get_node(fid)? else {
        return Ok(None);
    };
    Ok(match rec.blobs.as_slice() {
        [digest] if rec.kind == FRAGMENT_KIND && store.has_blob(digest) => Some(digest.clone()),
        _ => None,
    })
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
            diff: Some(&mut diff),
            blob: Some(&mut blob),
            size: &mut size,
            tar_size: &mut tar_size,
            copy: None,
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
    // Three threads: one reads and decompresses the blob, one hashes the blob, and this one
    // hashes the tar (and feeds a tap), so that a large layer is assembled at the pace of
    // the slowest (the tar's sha256) rather than of their sum.
    let (blob, size) = (sink.blob.as_deref_mut(), &mut *sink.size);
    let mut w = TeeWriter {
        inner: io::sink(),
        hash: sink.diff.as_deref_mut(),
        count: &mut *sink.tar_size,
        copy: sink.copy.as_mut().map(|w| &mut **w as &mut dyn Write),
    };
    std::thread::scope(|s| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(4);
        let (raw_tx, raw_rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(8);
        let hasher = blob.map(|blob| {
            s.spawn(move || {
                for chunk in raw_rx {
                    blob.update(&chunk);
                }
            })
        });
        let raw_tx = hasher.is_some().then_some(raw_tx);
        let producer = s.spawn(move || -> io::Result<()> {
            let mut tee = TeeReader {
                inner: file,
                hash: raw_tx,
                count: size,
            };
            {
                let mut dec = compression.decoder(&mut tee)?;
                loop {
                    let mut chunk = Vec::with_capacity(CHUNK);
                    if (&mut dec).take(CHUNK as u64).read_to_end(&mut chunk)? == 0 {
                        break;
                    }
                    if tx.send(chunk).is_err() {
                        return Ok(());
                    }
                }
            }
            // Anything the decoder did not need still belongs to the blob.
            io::copy(&mut tee, &mut io::sink())?;
            Ok(())
        });
        for chunk in rx {
            // Never fails: the inner writer is a sink and a tap's writer takes everything.
            w.write_all(&chunk).map_err(|source| LayerError::Io {
                path: path.clone(),
                source,
            })?;
        }
        let read = producer
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the decompressing thread panicked")));
        // The producer is done, so the hasher has every chunk (its channel is closed).
        let hashed = hasher.map_or(Ok(()), |h| {
            h.join()
                .map_err(|_| io::Error::other("the hashing thread panicked"))
        });
        read.and(hashed).map_err(|source| LayerError::Io {
            path: path.clone(),
            source,
        })
    })
}

/// What writing a fragment blob needs, whatever the fragment: the store, the compression,
/// the entries' time, the compression workers (they do not change the bytes) and where files
/// are read from.
struct FragmentWriter<'a> {
    store: &'a Store,
    compression: Compression,
    mtime: u64,
    workers: u32,
    archives: &'a dyn Materializer,
}

impl<'a> FragmentWriter<'a> {
    fn new(
        store: &'a Store,
        compression: Compression,
        mtime: u64,
        workers: u32,
        archives: &'a dyn Materializer,
    ) -> Self {
        Self {
            store,
            compression,
            mtime,
            workers,
            archives,
        }
    }

    /// Writes the blob of `frag` ahead of its layer (the layer digests are computed when the
    /// layer is assembled); returns its digest and compressed size. `learn` as for
    /// [`Self::write_blob`].
    fn write_ahead(
        &self,
        frag: &FragmentPlan,
        learn: Option<&mut BTreeMap<String, [u8; 32]>>,
    ) -> Result<(Digest, u64), LayerError> {
        let (mut size, mut tar_size) = (0, 0);
        let mut sink = Hashing {
            diff: None,
            blob: None,
            size: &mut size,
            tar_size: &mut tar_size,
            copy: None,
        };
        self.write_blob(Some(frag), &mut sink, &frag.label, &|_| {}, learn)
    }

    /// Writes the fragment blob of `frag` (the end marker when `None`) into the store,
    /// continuing the layer digests in `sink`; returns its digest and compressed size. With
    /// `learn`, files extracted from archives are not checked against their planned blake3:
    /// each one's blake3 goes into `learn` by image path (the archive's reader checks what it
    /// can).
    fn write_blob(
        &self,
        frag: Option<&FragmentPlan>,
        sink: &mut Hashing<'_>,
        layer: &str,
        progress: &dyn Fn(u64),
        learn: Option<&mut BTreeMap<String, [u8; 32]>>,
    ) -> Result<(Digest, u64), LayerError> {
        let cerr = |source: io::Error| LayerError::Compress {
            layer: layer.to_string(),
            source,
        };
        let writer = self.store.blob_writer()?;
        let len = frag.map_or(tar::END_MARKER.len() as u64, |f| f.tar_len);
        let tee = TeeWriter {
            inner: writer,
            hash: sink.blob.as_deref_mut(),
            count: &mut *sink.size,
            copy: None,
        };
        let enc = self
            .compression
            .encoder(tee, len, self.workers)
            .map_err(cerr)?;
        let mut w = TeeWriter {
            inner: enc,
            hash: sink.diff.as_deref_mut(),
            count: &mut *sink.tar_size,
            copy: sink.copy.as_mut().map(|w| &mut **w as &mut dyn Write),
        };
        match frag {
            Some(f) => write_entries(&mut w, f, self.mtime, self.archives, layer, progress, learn)?,
            None => w.write_all(&tar::END_MARKER).map_err(cerr)?,
        }
        let tee = w.inner.finish().map_err(cerr)?;
        Ok(tee.inner.commit(None)?)
    }
}

/// Records the stored blob `digest` (`size` bytes compressed) as fragment node `fid` of
/// `frag` (the end marker when `None`).
fn put_fragment_node(
    store: &Store,
    fid: &NodeId,
    frag: Option<&FragmentPlan>,
    digest: &Digest,
    size: u64,
) -> Result<(), LayerError> {
    let len = frag.map_or(tar::END_MARKER.len() as u64, |f| f.tar_len);
    let meta = serde_json::json!({ "size": size, "tar_len": len, "label": frag.map_or("end of archive", |f| f.label.as_str()) });
    store.put_node(
        fid,
        &NodeRecord {
            kind: FRAGMENT_KIND.into(),
            blobs: vec![digest.clone()],
            children: vec![],
            meta,
        },
    )?;
    Ok(())
}

fn write_entries<W: Write>(
    w: &mut TeeWriter<'_, W>,
    frag: &FragmentPlan,
    mtime: u64,
    archives: &dyn Materializer,
    layer: &str,
    progress: &dyn Fn(u64),
    mut learn: Option<&mut BTreeMap<String, [u8; 32]>>,
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
                let ioe = |source| LayerError::Io {
                    path: path.clone(),
                    source,
                };
                let file = std::fs::File::open(path).map_err(ioe)?;
                copy_verified(
                    w,
                    Box::new(&file),
                    size,
                    Some(&e.content_hash),
                    &mut buf,
                    progress,
                )
                .map_err(|failure| match failure {
                    Copy::Read(source) => ioe(source),
                    Copy::Write(source) => cerr(source),
                    Copy::Differs(_) => LayerError::FileChanged { path: path.clone() },
                })?;
                let meta = file.metadata().map_err(ioe)?;
                if meta.len() != *planned
                    || super::files::mtime_ns(&meta) != *mtime_ns
                    || size != *planned
                {
                    return Err(LayerError::FileChanged { path: path.clone() });
                }
            }
            Content::Extracted { archive, path } => {
                let r = archives.open(archive, path)?;
                let expected = learn.is_none().then_some(&e.content_hash);
                let hash =
                    copy_verified(w, r, size, expected, &mut buf, progress).map_err(|failure| {
                        match failure {
                            Copy::Read(source) => LayerError::ArchiveRead {
                                archive: archives.describe(archive),
                                path: path.clone(),
                                source,
                            },
                            Copy::Write(source) => cerr(source),
                            Copy::Differs(reason) => LayerError::ArchiveContent {
                                archive: archives.describe(archive),
                                path: path.clone(),
                                reason,
                            },
                        }
                    })?;
                if let Some(learn) = learn.as_deref_mut() {
                    learn.insert(e.header.path.clone(), hash);
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

/// Why [`copy_verified`] failed.
enum Copy {
    Read(io::Error),
    Write(io::Error),
    Differs(String),
}

/// Copies `r` into `w`, checking that it is exactly `size` bytes with blake3 `expected` (when
/// given); returns its blake3. A mismatch is found only at the end, after the bytes went into
/// `w`: the fragment being written is then abandoned (its blob is never committed).
fn copy_verified<W: Write>(
    w: &mut TeeWriter<'_, W>,
    mut r: Box<dyn Read + '_>,
    size: u64,
    expected: Option<&[u8; 32]>,
    buf: &mut [u8],
    progress: &dyn Fn(u64),
) -> Result<[u8; 32], Copy> {
    let mut hash = blake3::Hasher::new();
    let mut left = size;
    loop {
        let want = usize::try_from(left.min(buf.len() as u64)).unwrap_or(buf.len());
        // One byte past the end, to see that there is none.
        let want = if want == 0 { 1 } else { want };
        let n = match r.read(&mut buf[..want]) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Copy::Read(e)),
        };
        if n == 0 {
            break;
        }
        if n as u64 > left {
            return Err(Copy::Differs(format!("more than the {size} bytes planned")));
        }
        hash.update(&buf[..n]);
        w.write_all(&buf[..n]).map_err(Copy::Write)?;
        left -= n as u64;
        progress(*w.count);
    }
    if left > 0 {
        return Err(Copy::Differs(format!(
            "{} bytes, {size} planned",
            size - left
        )));
    }
    let hash = *hash.finalize().as_bytes();
    if expected.is_some_and(|e| *e != hash) {
        return Err(Copy::Differs(
            "its blake3 differs from the planned one".into(),
        ));
    }
    Ok(hash)
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
    hash: Option<&'a mut Sha256>,
    count: &'a mut u64,
    /// Also gets every byte written (never fails: a tap's writer).
    copy: Option<&'a mut dyn Write>,
}
impl<W: Write> Write for TeeWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        if let Some(h) = &mut self.hash {
            h.update(&buf[..n]);
        }
        if let Some(c) = &mut self.copy {
            c.write_all(&buf[..n])?;
        }
        *self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Counts what is read, and sends a copy of it to a hashing thread.
struct TeeReader<'a, R: Read> {
    inner: R,
    hash: Option<std::sync::mpsc::SyncSender<Vec<u8>>>,
    count: &'a mut u64,
}
impl<R: Read> Read for TeeReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(h) = &self.hash
            && n > 0
            && h.send(buf[..n].to_vec()).is_err()
        {
            return Err(io::Error::other("the hashing thread stopped"));
        }
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
        fn open(&self, _: &Digest, path: &str) -> Result<Box<dyn Read + '_>, LayerError> {
            Ok(Box::new(std::fs::File::open(self.0.join(path)).unwrap()))
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

        let (out, _) =
            build_layer(&store, &one, c, 0, 1, &Dir(files.clone()), &|_| {}, None).unwrap();
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

    /// Serves the same bytes for every file.
    struct Serves(Vec<u8>);
    impl Materializer for Serves {
        fn open(&self, _: &Digest, _: &str) -> Result<Box<dyn Read + '_>, LayerError> {
            Ok(Box::new(io::Cursor::new(self.0.clone())))
        }
        fn describe(&self, _: &Digest) -> String {
            "pkg 1.0".into()
        }
    }

    #[test]
    fn archive_files_are_checked_against_the_listing() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path().join("store")).unwrap();
        let files = tmp.path().join("files");
        std::fs::create_dir_all(&files).unwrap();
        let a = Digest::of_bytes(b"a.deb");
        let plan = plan_layer("l", vec![extracted(&files, &a, "a")]).unwrap();
        let c = Compression::default();
        for (bytes, says) in [
            (&b"a\n!"[..], "more than the 2 bytes planned"),
            (&b"a"[..], "1 bytes, 2 planned"),
            (&b"b\n"[..], "blake3 differs"),
        ] {
            let err = build_layer(
                &store,
                &plan,
                c,
                0,
                1,
                &Serves(bytes.to_vec()),
                &|_| {},
                None,
            )
            .unwrap_err();
            let msg = err.to_string();
            assert!(
                matches!(err, LayerError::ArchiveContent { .. })
                    && msg.contains("/a from pkg 1.0")
                    && msg.contains(says),
                "{msg}"
            );
            // Nothing of the failed build is recorded.
            assert!(
                archives_needed(&store, &plan, c, 0).unwrap().contains(&a),
                "{says}"
            );
        }
        let (out, _) = build_layer(
            &store,
            &plan,
            c,
            0,
            1,
            &Serves(b"a\n".to_vec()),
            &|_| {},
            None,
        )
        .unwrap();
        assert!(is_layer_stored(&store, &out.id).unwrap());
    }
}
