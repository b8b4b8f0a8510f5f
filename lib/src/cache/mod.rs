//! The shared store: a registry repository used as a remote tier of the local store
//! (`compose build --cache REF`). A node (a layer with its fragments, or a package listing)
//! is one OCI artifact manifest tagged `node-<id hex>` ([`node`]); before building a node
//! missing locally the build pulls it from there, and after the build it uploads the nodes
//! the repository lacks. Every blob pulled is verified by digest on its way into the store,
//! a pulled layer is checked against its record (layer digest, size, diff_id) before the
//! record is written, and no cache failure fails a build: it becomes a warning in the
//! [`CacheReport`] and the node is built (or its upload skipped).
//!
//! - [`node`]: tags, the manifest and config document of a node, their checks (pure);
//! - [`remote`]: the [`Remote`] trait and its registry implementation.

pub mod node;
pub mod remote;

use std::collections::BTreeSet;
use std::io;
use std::path::PathBuf;
use std::sync::Mutex;

use composer_store::{Digest, NodeId, NodeRecord, Store, StoreError};
use rayon::prelude::*;
use serde::Serialize;

use crate::layer::LayerOutput;
use crate::registry::source::BlobSource;
use crate::registry::{ClientOptions, Reference, RegistryError};
use node::{BlobDesc, ChildRecord, NodeDoc};
pub use remote::{RegistryRemote, Remote};

/// Nodes looked up, pulled or uploaded at once.
const PARALLEL: usize = 6;

/// The node kind whose record describes a layer (see [`crate::layer::build`]).
const LAYER_KIND: &str = "layer";
/// The node kind of a layer's fragments.
const FRAGMENT_KIND: &str = "fragment";

/// Why a cache operation failed (reported as a warning, never failing a build).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CacheError {
    /// The registry failed or served bytes that are not what their digest says.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The local store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Reading a pulled blob back failed.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The blob.
        path: PathBuf,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// What the cache holds for a node cannot be trusted (names the node and why).
    #[error("{0}")]
    Invalid(String),
}

/// What the cache did during one build.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CacheReport {
    /// `host/repo`.
    pub reference: String,
    /// Nodes pulled into the local store.
    pub pulled: usize,
    /// Nodes uploaded.
    pub pushed: usize,
    /// Nodes the cache already had when they would have been uploaded.
    pub present: usize,
    /// Blobs pulled (node blobs and package archives).
    pub blobs_pulled: usize,
    /// Blobs uploaded.
    pub blobs_pushed: usize,
    /// Every failure, as one line each (the build went on without the cache's help).
    pub warnings: Vec<String>,
}

/// A node to upload, and the blobs of its record to leave out (package archives that the
/// package mirror serves).
#[derive(Debug, Clone)]
pub struct Upload {
    /// The node.
    pub id: NodeId,
    /// Blobs of its record not to upload.
    pub omit: BTreeSet<Digest>,
}

#[derive(Default)]
struct State {
    report: CacheReport,
    /// Nodes pulled in this build (known present: not looked up again before uploading).
    pulled: BTreeSet<NodeId>,
    /// Set after a failure to reach the registry: the rest of the build does without it.
    off: bool,
}

/// The remote tier: a [`Remote`] and what happened so far. Shared by the build's threads.
pub struct Cache {
    remote: Option<Box<dyn Remote>>,
    state: Mutex<State>,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("report", &self.report())
            .finish_non_exhaustive()
    }
}

impl Cache {
    /// A cache over `remote`.
    #[must_use]
    pub fn new(remote: Box<dyn Remote>) -> Self {
        let state = State {
            report: CacheReport {
                reference: remote.describe(),
                ..CacheReport::default()
            },
            ..State::default()
        };
        Self {
            remote: Some(remote),
            state: Mutex::new(state),
        }
    }

    /// Connects to the repository of `reference`; a registry that cannot be reached or
    /// refuses the login gives a cache that does nothing and reports why as a warning.
    #[must_use]
    pub fn connect(reference: &Reference, options: ClientOptions) -> Self {
        match RegistryRemote::connect(reference, options) {
            Ok(r) => Self::new(Box::new(r)),
            Err(e) => Self::unavailable(
                format!("{}/{}", reference.registry, reference.repository),
                &e.to_string(),
            ),
        }
    }

    /// A cache that does nothing, its report saying why (`reference` is `host/repo`).
    #[must_use]
    pub fn unavailable(reference: String, why: &str) -> Self {
        let state = State {
            report: CacheReport {
                reference,
                warnings: vec![format!("cache not used: {why}")],
                ..CacheReport::default()
            },
            off: true,
            ..State::default()
        };
        Self {
            remote: None,
            state: Mutex::new(state),
        }
    }

    /// What happened so far.
    #[must_use]
    pub fn report(&self) -> CacheReport {
        self.state
            .lock()
            .map(|s| s.report.clone())
            .unwrap_or_default()
    }

    fn with_state<T>(&self, f: impl FnOnce(&mut State) -> T) -> Option<T> {
        self.state.lock().ok().map(|mut s| f(&mut s))
    }

    /// The remote, unless the cache is off.
    fn remote(&self) -> Option<&dyn Remote> {
        if self.with_state(|s| s.off).unwrap_or(true) {
            return None;
        }
        self.remote.as_deref()
    }

    /// Records a failure; one that means the registry is unreachable or refuses us turns
    /// the cache off for the rest of the build.
    fn warn(&self, what: &str, e: &CacheError) {
        let off = matches!(
            e,
            CacheError::Registry(
                RegistryError::Failed { .. }
                    | RegistryError::Unauthorized { .. }
                    | RegistryError::Insecure { .. }
            )
        );
        self.with_state(|s| {
            if s.off {
                // Another thread found the registry gone already: said once is enough.
                return;
            }
            let mut line = format!("{what}: {e}");
            if off {
                line.push_str(" (cache not used for the rest of this build)");
                s.off = true;
            }
            s.report.warnings.push(line);
        });
    }

    /// Pulls node `id` into `store` if the cache has it; `true` when the node is now there.
    /// Anything wrong (a missing or corrupt blob, a record that disagrees with its blobs)
    /// is a warning and `false`; nothing unverified is left in the store.
    pub fn pull(&self, store: &Store, id: &NodeId) -> bool {
        let Some(remote) = self.remote() else {
            return false;
        };
        match pull_node(remote, store, id) {
            Ok(Some(blobs)) => {
                self.with_state(|s| {
                    s.report.pulled += 1;
                    s.report.blobs_pulled += blobs;
                    s.pulled.insert(*id);
                });
                true
            }
            Ok(None) => false,
            Err(e) => {
                self.warn(&format!("pulling node {}", node::tag(id)), &e);
                false
            }
        }
    }

    /// Pulls each of `ids` the cache has, [`PARALLEL`] at a time; returns which are in the
    /// store now (in the order of `ids`).
    pub fn pull_all(&self, store: &Store, ids: &[NodeId]) -> Vec<bool> {
        if ids.is_empty() || self.remote().is_none() {
            return vec![false; ids.len()];
        }
        in_pool(|| ids.par_iter().map(|id| self.pull(store, id)).collect())
    }

    /// Pulls blob `digest` (a package archive another node carried) into `store`; `true`
    /// when it is there now.
    pub fn fetch_blob(&self, store: &Store, digest: &Digest) -> bool {
        let Some(remote) = self.remote() else {
            return false;
        };
        match remote.blob_to_store(digest, store) {
            Ok(true) => {
                self.with_state(|s| s.report.blobs_pulled += 1);
                true
            }
            Ok(false) => false,
            Err(e) => {
                self.warn(&format!("pulling blob {digest}"), &e);
                false
            }
        }
    }

    /// Uploads every node of `nodes` the cache does not have (`HEAD` on its tag first;
    /// nodes pulled in this build are known present), [`PARALLEL`] at a time. Failures are
    /// warnings.
    pub fn upload(&self, store: &Store, nodes: &[Upload]) {
        in_pool(|| nodes.par_iter().for_each(|u| self.upload_one(store, u)));
    }

    fn upload_one(&self, store: &Store, u: &Upload) {
        let Some(remote) = self.remote() else {
            return;
        };
        if self
            .with_state(|s| s.pulled.contains(&u.id))
            .unwrap_or(false)
        {
            self.with_state(|s| s.report.present += 1);
            return;
        }
        // A writer of the same node at the same time can make a registry refuse our
        // manifest for a moment (distribution's filesystem storage rewrites a blob's link
        // in place, so a concurrent reader may find it empty: MANIFEST_BLOB_UNKNOWN). The
        // content is identical whoever writes it: try again, finding the tag or writing it.
        let mut result = upload_node(remote, store, u);
        for delay in [250, 1000] {
            match &result {
                Err(CacheError::Registry(RegistryError::Status {
                    status: 400,
                    detail,
                    ..
                })) if detail.contains("BLOB_UNKNOWN") => {
                    std::thread::sleep(std::time::Duration::from_millis(delay));
                    result = upload_node(remote, store, u);
                }
                _ => break,
            }
        }
        match result {
            Ok(Some(blobs)) => {
                self.with_state(|s| {
                    s.report.pushed += 1;
                    s.report.blobs_pushed += blobs;
                });
            }
            Ok(None) => {
                self.with_state(|s| s.report.present += 1);
            }
            Err(e) => self.warn(&format!("uploading node {}", node::tag(&u.id)), &e),
        }
    }
}

/// Runs `f` on a pool of [`PARALLEL`] threads (on the caller's when none can start).
fn in_pool<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    match rayon::ThreadPoolBuilder::new()
        .num_threads(PARALLEL)
        .build()
    {
        Ok(pool) => pool.install(f),
        Err(_) => f(),
    }
}

/// Pulls one node: manifest, document, blobs (verified), checks, then the records.
/// Returns the number of blobs downloaded, or `None` when the cache lacks the node.
fn pull_node(remote: &dyn Remote, store: &Store, id: &NodeId) -> Result<Option<usize>, CacheError> {
    let tag = node::tag(id);
    // The caller's warning names the node.
    let invalid = CacheError::Invalid;
    let Some(bytes) = remote.manifest(&tag)? else {
        return Ok(None);
    };
    let m = node::parse_manifest(&bytes, id).map_err(invalid)?;
    let config = remote
        .blob_bytes(&m.config.digest)?
        .ok_or_else(|| invalid(format!("its document {} is missing", m.config.digest)))?;
    let doc = node::parse_doc(&config, id, &m).map_err(invalid)?;
    let mut pulled = 0;
    for d in &m.layers {
        if store.has_blob(&d.digest) {
            continue;
        }
        if !remote.blob_to_store(&d.digest, store)? {
            return Err(invalid(format!("blob {} is missing", d.digest)));
        }
        pulled += 1;
    }
    if doc.record.kind == LAYER_KIND {
        check_layer(store, &doc)?;
    }
    for c in &doc.children {
        if !store.has_node(&c.id) {
            store.put_node(&c.id, &c.record)?;
        }
    }
    store.put_node(id, &stored_record(&doc, store))?;
    Ok(Some(pulled))
}

/// A pulled layer's record must describe its blobs: fragments in record order, one
/// fragment record per child naming that blob, and the layer digest, size, diff_id and
/// tar size recomputed from the fragments (decompressed) equal to the recorded ones.
fn check_layer(store: &Store, doc: &NodeDoc) -> Result<(), CacheError> {
    let bad = |why: &str| CacheError::Invalid(why.to_string());
    let rec = &doc.record;
    let out: LayerOutput = serde_json::from_value(rec.meta.clone())
        .map_err(|e| CacheError::Invalid(format!("the layer record does not parse: {e}")))?;
    if out.id != doc.id || out.fragments != rec.blobs || rec.children.len() != rec.blobs.len() {
        return Err(bad("the layer record disagrees with its fragments"));
    }
    for (child, blob) in rec.children.iter().zip(&rec.blobs) {
        let Some(c) = doc.children.iter().find(|c| c.id == *child) else {
            return Err(bad("a fragment has no record"));
        };
        if c.record.kind != FRAGMENT_KIND || c.record.blobs != [blob.clone()] {
            return Err(bad("a fragment record disagrees with the layer"));
        }
    }
    let Some(decoder) = node::decoder_for(&out.media_type) else {
        return Err(CacheError::Invalid(format!(
            "unknown layer media type {}",
            out.media_type
        )));
    };
    let (digest, diff_id, size, tar_size) =
        crate::layer::build::layer_digests(store, &rec.blobs, decoder)
            .map_err(|e| CacheError::Invalid(format!("its fragments cannot be read: {e}")))?;
    if digest != out.digest
        || size != out.size
        || diff_id != out.diff_id
        || tar_size != out.tar_size
    {
        return Err(CacheError::Invalid(format!(
            "its fragments make layer {digest} (diff_id {diff_id}), not the recorded {} ({})",
            out.digest, out.diff_id
        )));
    }
    Ok(())
}

/// Uploads one node unless the cache has it; returns the blobs sent, or `None` when it
/// was there.
fn upload_node(
    remote: &dyn Remote,
    store: &Store,
    u: &Upload,
) -> Result<Option<usize>, CacheError> {
    let tag = node::tag(&u.id);
    if remote.has_manifest(&tag)? {
        return Ok(None);
    }
    let Some(record) = store.get_node(&u.id)? else {
        return Err(CacheError::Invalid(format!(
            "node {} is not in the local store",
            u.id
        )));
    };
    let mut children = Vec::new();
    let mut blob_type = node::BLOB_MEDIA_TYPE.to_string();
    if record.kind == LAYER_KIND {
        for c in &record.children {
            let r = store.get_node(c)?.ok_or_else(|| {
                CacheError::Invalid(format!("fragment {c} is not in the local store"))
            })?;
            children.push(ChildRecord { id: *c, record: r });
        }
        if let Some(t) = record.meta.get("media_type").and_then(|v| v.as_str()) {
            blob_type = t.to_string();
        }
    }
    let listing = record.blobs.first().cloned();
    let is_listing = record.kind.ends_with("-listing");
    let omitted = record
        .blobs
        .iter()
        .filter(|b| u.omit.contains(b))
        .cloned()
        .collect();
    let doc = NodeDoc {
        id: u.id,
        record,
        children,
        omitted,
    };
    let config = node::doc_bytes(&doc);
    let mut blobs = Vec::new();
    for d in node::carried_blobs(&doc) {
        let size = store
            .blob_size(&d)?
            .ok_or_else(|| StoreError::MissingBlob { digest: d.clone() })?;
        let media_type = if is_listing && listing.as_ref() == Some(&d) {
            node::LISTING_MEDIA_TYPE.to_string()
        } else {
            blob_type.clone()
        };
        blobs.push(BlobDesc {
            digest: d,
            size,
            media_type,
        });
    }
    let manifest = node::manifest_bytes(&doc, &config, &blobs);
    let mut sources: Vec<BlobSource> = blobs
        .iter()
        .map(|b| BlobSource::file(b.digest.clone(), b.size, store.blob_path(&b.digest)))
        .collect();
    sources.push(BlobSource::bytes(config));
    let sent = remote.push(&tag, &manifest, sources)?;
    Ok(Some(sent))
}

/// A record as a puller stores it: the document's record without the omitted blobs the
/// store lacks (a listing pulled without its package archive).
fn stored_record(doc: &NodeDoc, store: &Store) -> NodeRecord {
    let mut record = doc.record.clone();
    record
        .blobs
        .retain(|b| !doc.omitted.contains(b) || store.has_blob(b));
    record
}

#[cfg(test)]
mod tests;
