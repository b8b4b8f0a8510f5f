//! The build façade: recipe spec → plan → graph → store → [`BuiltImage`].
//!
//! ```text
//! ImageSpec ──plan (walk + hash local inputs)──▶ LayerPlan per layer
//!           ──graph──▶ layer nodes ─┐
//!                                    ├─▶ image node (config, manifest, index)
//!           ──execute (rayon, -j)───┘
//! ```
//! The store is held with a shared lock for the whole build, so `compose store gc` cannot
//! remove what a running build relies on.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use composer_store::{Digest, NodeId, NodeRecord, RootRecord, Store, StoreError};
use rayon::prelude::*;

use crate::cache::{Cache, Upload};
use crate::debian::deb::DebListing;
use crate::debian::install::{self, Extractor};
use crate::exec::{Outcome, execute};
use crate::fetch::{Download, Fetcher};
use crate::graph::{BuildGraph, NodeKind, build_graph};
use crate::layer::build::Materializer;
use crate::layer::build::Provenance;
use crate::layer::files::item_entries;
use crate::layer::plan::ItemEntries;
use crate::layer::{Compression, LayerError, LayerOutput, LayerPlan, build_layer, plan_layer};
use crate::lock::{Lock, LockedDeb, LockedWheel};
use crate::oci::json::{
    self, CONFIG_MEDIA_TYPE, Descriptor, LayerRef, MANIFEST_MEDIA_TYPE, to_canonical,
};
use crate::pypi::install::WheelExtractor;
use crate::pypi::wheel::Scheme;
use crate::recipe::ImageSpec;
use crate::recipe::LayerItem;
use crate::report::Reporter;

/// How to build.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// Layer compression.
    pub compression: Compression,
    /// Parallel jobs (nodes at once, and compressor workers per layer).
    pub jobs: usize,
    /// `SOURCE_DATE_EPOCH`: when set, overrides the recipe's epoch.
    pub source_date_epoch: Option<i64>,
    /// Gets each layer's uncompressed tar as it is assembled (the check's index).
    pub layer_tap: Option<Arc<dyn crate::layer::build::LayerTap>>,
}

impl Default for BuildOptions {
    fn default() -> Self {
        Self {
            compression: Compression::default(),
            jobs: std::thread::available_parallelism().map_or(2, std::num::NonZero::get),
            source_date_epoch: None,
            layer_tap: None,
        }
    }
}

impl BuildOptions {
    /// The mtime of every entry and the `created` time: `SOURCE_DATE_EPOCH`, else the
    /// recipe's epoch, else 0 (nothing else pins a date yet).
    ///
    /// # Errors
    /// A negative epoch.
    pub fn epoch(&self, spec: &ImageSpec) -> Result<u64, BuildError> {
        let e = self.source_date_epoch.or(spec.epoch).unwrap_or(0);
        u64::try_from(e).map_err(|_| BuildError::Epoch(e))
    }
}

/// A planned build: every layer's fragments and node ids, before anything is written.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The image.
    pub spec: ImageSpec,
    /// Entry mtime / created time.
    pub mtime: u64,
    /// Compression.
    pub compression: Compression,
    /// Layer plans, bottom first.
    pub layers: Vec<LayerPlan>,
    /// The node graph.
    pub graph: BuildGraph,
    /// Extracts packages whose fragments are not stored yet.
    pub archives: Arc<Extractor>,
    /// Input nodes the image keeps alive through `store gc` (package listings, which
    /// reference the downloaded `.deb`s), so a kept image rebuilds without downloading.
    pub inputs: Vec<NodeId>,
    /// Installs wheels whose fragments are not stored yet.
    pub wheels: Option<Arc<WheelExtractor>>,
    /// The `.deb`s planning read files from (accounts, CA certificates): a cache receives
    /// them with their listing nodes, so that a machine planning from the cache needs no
    /// mirror. Other archives stay out of the cache (their mirror serves them).
    pub planning_archives: BTreeSet<Digest>,
}

/// Extracts `.deb`s or installs wheels, whichever the archive is.
struct Archives<'a> {
    debs: &'a Extractor,
    wheels: Option<&'a WheelExtractor>,
}

impl Materializer for Archives<'_> {
    fn open(
        &self,
        archive: &Digest,
        path: &str,
    ) -> Result<Box<dyn std::io::Read + '_>, LayerError> {
        match self.wheels {
            Some(w) if w.knows(archive) => w.open(archive, path),
            _ => self.debs.open(archive, path),
        }
    }

    fn describe(&self, archive: &Digest) -> String {
        match self.wheels {
            Some(w) if w.knows(archive) => w.describe(archive),
            _ => self.debs.describe(archive),
        }
    }
}

/// One built layer.
#[derive(Debug, Clone)]
pub struct BuiltLayer {
    /// Layer name.
    pub name: String,
    /// Digests, sizes and fragments.
    pub output: LayerOutput,
    /// Built now or found in the store.
    pub provenance: Provenance,
}

/// A built image: its JSON documents and layers, all in the store.
#[derive(Debug, Clone)]
pub struct BuiltImage {
    /// Image name.
    pub name: String,
    /// Tags.
    pub tags: Vec<String>,
    /// Compression of the layers.
    pub compression: Compression,
    /// Layers bottom first.
    pub layers: Vec<BuiltLayer>,
    /// Config JSON bytes.
    pub config: Vec<u8>,
    /// Config digest (the image ID).
    pub config_digest: Digest,
    /// Manifest JSON bytes.
    pub manifest: Vec<u8>,
    /// Manifest digest.
    pub manifest_digest: Digest,
    /// `index.json` bytes.
    pub index: Vec<u8>,
    /// The image node id.
    pub node: NodeId,
}

/// Build failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A negative epoch.
    #[error(
        "epoch {0} is before 1970; SOURCE_DATE_EPOCH and the recipe epoch must be non-negative"
    )]
    Epoch(i64),
    /// Planning a layer failed.
    #[error("layer `{layer}`: {source}")]
    Plan {
        /// Layer name.
        layer: String,
        /// Cause.
        #[source]
        source: Box<LayerError>,
    },
    /// One or more nodes failed.
    #[error("{}", failures.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Nodes {
        /// Every failed node.
        failures: Vec<NodeFailure>,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The recipe installs packages but no lock was given.
    #[error(
        "the recipe installs Debian packages but has no lock; run `compose lock RECIPE` (or build without --locked)"
    )]
    NoLock,
    /// Downloading pinned files failed.
    #[error("{}", failures.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Fetch {
        /// Every failed download.
        failures: Vec<crate::fetch::FetchError>,
    },
    /// A wheel could not be installed.
    #[error("{0}")]
    Wheel(String),
    /// A package could not be installed.
    #[error(transparent)]
    Install(install::InstallError),
    /// The layer's provenance file could not be written into its plan.
    #[error("layer `{layer}`: provenance: {message}")]
    Provenance {
        /// Layer name.
        layer: String,
        /// Cause.
        message: String,
    },
    /// One platform of a multi-platform build failed.
    #[error("platform {platform}: {source}")]
    Platform {
        /// The platform (`linux/arm64`).
        platform: String,
        /// Cause.
        #[source]
        source: Box<BuildError>,
    },
    /// The worker pool could not start.
    #[error("cannot start {jobs} worker threads: {message}")]
    Pool {
        /// Requested jobs.
        jobs: usize,
        /// Cause.
        message: String,
    },
}

/// A node that failed, with its cause.
#[derive(Debug, thiserror::Error)]
#[error("{node} failed: {source}")]
pub struct NodeFailure {
    /// The node's label (`layer app`).
    pub node: String,
    /// The cause.
    #[source]
    pub source: LayerError,
}

/// What a build needs besides the recipe: the lock that pins its packages, the fetcher
/// that downloads the pinned files the store does not have yet, and optionally a shared
/// store ([`crate::cache`]) tried before building or downloading anything.
#[derive(Clone, Copy)]
pub struct Inputs<'a> {
    /// The lock; required when the recipe installs packages.
    pub lock: Option<&'a Lock>,
    /// Downloads missing pinned files.
    pub fetcher: &'a Fetcher,
    /// The remote tier: nodes missing locally are pulled from it, built ones uploaded.
    pub cache: Option<&'a Cache>,
}

/// Downloads those of `wanted` the store lacks (first from the cache's blobs when
/// `from_cache`), reporting each.
fn fetch_archives(
    store: &Store,
    inputs: Inputs<'_>,
    wanted: impl IntoIterator<Item = Download>,
    from_cache: bool,
    reporter: &dyn Reporter,
) -> Result<(), BuildError> {
    let mut missing: Vec<Download> = wanted
        .into_iter()
        .filter(|d| !store.has_blob(&d.sha256))
        .collect();
    if let Some(cache) = inputs.cache.filter(|_| from_cache) {
        missing.retain(|d| !cache.fetch_blob(store, &d.sha256));
    }
    if missing.is_empty() {
        return Ok(());
    }
    reporter.fetching(missing.len());
    inputs
        .fetcher
        .fetch_all(store, &missing, &|d, fetched| {
            reporter.fetched(&d.what, fetched)
        })
        .map_err(|failures| BuildError::Fetch { failures })?;
    Ok(())
}

/// Whether a listing node is usable from the store (its record and listing blob).
fn listing_stored(store: &Store, id: &NodeId) -> bool {
    matches!(store.get_node(id), Ok(Some(rec)) if rec.blobs.first().is_some_and(|b| store.has_blob(b)))
}

/// Walks and hashes every local input, lists every locked package, and plans every layer
/// (on `opts.jobs` threads). Downloads only what the store (and the cache) lack: the
/// archives of packages not listed yet, those planning reads files from, and those whose
/// fragments must be built.
///
/// # Errors
/// [`BuildError`] naming the layer, package or local path.
pub fn plan(
    store: &Store,
    spec: &ImageSpec,
    inputs: Inputs<'_>,
    opts: &BuildOptions,
    reporter: &dyn Reporter,
) -> Result<Plan, BuildError> {
    let mtime = opts.epoch(spec)?;
    let labelled = with_labels(spec, inputs.lock);
    let spec = &labelled;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.jobs.max(1))
        .build()
        .map_err(|e| BuildError::Pool {
            jobs: opts.jobs,
            message: e.to_string(),
        })?;
    let is_deb = |i: &LayerItem| matches!(i, LayerItem::Debian { .. });
    let is_wheel = |i: &LayerItem| matches!(i, LayerItem::Pypi { .. });
    let wants_debian = spec.layers.iter().any(|l| l.items.iter().any(is_deb));
    let wants_python = spec.layers.iter().any(|l| l.items.iter().any(is_wheel));
    let (debs, wheels): (Vec<LockedDeb>, Vec<LockedWheel>) = match inputs.lock {
        Some(lock) if wants_debian || wants_python => (
            lock.debian.clone(),
            if wants_python {
                lock.pypi.clone()
            } else {
                Vec::new()
            },
        ),
        None if wants_debian || wants_python => return Err(BuildError::NoLock),
        _ => (Vec::new(), Vec::new()),
    };
    let extractor = Arc::new(Extractor::new(store.clone(), &debs).map_err(BuildError::Install)?);
    let mut listings = BTreeMap::new();
    // Every package's archive, and the node of its listing: stored, else pulled from the
    // cache, else its archive is downloaded now and listed below.
    let mut archives: BTreeMap<Digest, Download> = BTreeMap::new();
    let mut listing_nodes: Vec<(NodeId, Digest)> = Vec::new();
    for d in &debs {
        let sha256 = install::deb_digest(d).map_err(BuildError::Install)?;
        listing_nodes.push((install::listing_id(&sha256), sha256.clone()));
        archives.insert(
            sha256.clone(),
            Download {
                what: install::label(d),
                url: d.url.clone(),
                sha256,
                size: Some(d.size),
            },
        );
    }
    if !wheels.is_empty() {
        let scheme = wheel_scheme(spec, &debs)?;
        for w in &wheels {
            let sha256 = crate::pypi::install::wheel_digest(w).map_err(BuildError::Wheel)?;
            let id = crate::pypi::install::listing_id(&sha256, &scheme, w.reason == "requested");
            listing_nodes.push((id, sha256.clone()));
            archives.insert(
                sha256.clone(),
                Download {
                    what: format!("{} {}", w.name, w.version),
                    url: w.url.clone(),
                    sha256,
                    size: Some(w.size),
                },
            );
        }
    }
    listing_nodes.retain(|(id, _)| !listing_stored(store, id));
    if let Some(cache) = inputs.cache {
        let ids: Vec<NodeId> = listing_nodes.iter().map(|(id, _)| *id).collect();
        cache.pull_all(store, &ids);
    }
    let unlisted: Vec<Download> = listing_nodes
        .iter()
        .filter(|(id, _)| !listing_stored(store, id))
        .filter_map(|(_, archive)| archives.get(archive).cloned())
        .collect();
    fetch_archives(store, inputs, unlisted, false, reporter)?;
    if !debs.is_empty() {
        let listed: Vec<(String, (LockedDeb, DebListing))> = pool
            .install(|| {
                debs.par_iter()
                    .map(|d| {
                        Ok((
                            d.name.clone(),
                            (d.clone(), install::listing(store, d, &extractor)?),
                        ))
                    })
                    .collect::<Result<_, install::InstallError>>()
            })
            .map_err(BuildError::Install)?;
        listings.extend(listed);
    }
    // Planning reads a few files from some packages (accounts, CA certificates): those
    // archives are needed even when every listing is stored.
    let planning_archives: BTreeSet<Digest> = listings
        .values()
        .filter(|(_, l)| {
            l.entries.iter().any(|e| {
                matches!(e.header.kind, crate::layer::tar::EntryKind::File { .. })
                    && crate::debian::synth::is_input_file(&e.header.path)
            })
        })
        .map(|(d, _)| install::deb_digest(d))
        .collect::<Result<_, _>>()
        .map_err(BuildError::Install)?;
    fetch_archives(
        store,
        inputs,
        planning_archives
            .iter()
            .filter_map(|a| archives.get(a).cloned()),
        true,
        reporter,
    )?;
    let wheel_plan = plan_wheels(store, spec, &debs, &wheels, &pool)?;
    let layer_names: Vec<String> = spec.layers.iter().map(|l| l.name.clone()).collect();
    let users = spec
        .debian
        .as_ref()
        .map(|d| d.users.clone())
        .unwrap_or_default();
    let arch = crate::debian::archive::debian_arch(
        &spec.platform.architecture,
        spec.platform.variant.as_deref(),
    );
    let mut synthesized = install::synthesized(&listings, &layer_names, &users, &arch, &extractor)
        .map_err(BuildError::Install)?;

    reporter.planning(spec.layers.len());
    let synth_items: Vec<Option<ItemEntries>> = spec
        .layers
        .iter()
        .map(|l| {
            synthesized
                .remove(&l.name)
                .filter(|entries| !entries.is_empty())
                .map(|entries| ItemEntries {
                    label: "synthesized system files".into(),
                    entries,
                })
        })
        .collect();
    // Above (and beside) a merged-/usr Debian layer, `bin`, `sbin`, `lib*` are symlinks:
    // local files aimed at /bin/x land in /usr/bin/x, as they would when extracted onto the
    // image, instead of a `bin/` directory that hides the symlink.
    let first_debian = spec.layers.iter().position(|l| l.items.iter().any(is_deb));
    let usr_links: Vec<(String, String)> = if debs.is_empty() {
        Vec::new()
    } else {
        crate::debian::synth::merged_usr_links(&arch)
            .into_iter()
            .filter_map(|e| match e.header.kind {
                crate::layer::tar::EntryKind::Symlink { target } => Some((e.header.path, target)),
                _ => None,
            })
            .collect()
    };
    let origins = crate::provenance::Origins::new(&debs, &wheels);
    let layers: Vec<LayerPlan> = pool.install(|| {
        spec.layers
            .par_iter()
            .enumerate()
            .zip(synth_items)
            .map(|((li, l), synth)| {
                let links: &[(String, String)] = if first_debian.is_some_and(|f| li >= f) {
                    &usr_links
                } else {
                    &[]
                };
                let perr = |source: LayerError| BuildError::Plan {
                    layer: l.name.clone(),
                    source: Box::new(source),
                };
                let mut items = Vec::new();
                let mut debs_done = false;
                let mut wheels_done = false;
                for item in &l.items {
                    if is_wheel(item) {
                        if !wheels_done {
                            items
                                .extend(wheel_plan.items.get(&l.name).cloned().unwrap_or_default());
                            wheels_done = true;
                        }
                    } else if is_deb(item) {
                        if !debs_done {
                            items.extend(
                                install::layer_items(&listings, &l.name)
                                    .map_err(BuildError::Install)?,
                            );
                            debs_done = true;
                        }
                    } else {
                        let mut entries = item_entries(item).map_err(perr)?;
                        for e in &mut entries.entries {
                            e.header.path =
                                crate::layer::plan::through_links(&e.header.path, links);
                        }
                        items.push(entries);
                    }
                }
                items.extend(synth);
                // First after the parent directories, so readers find it without
                // decompressing the rest of the layer.
                items.insert(0, crate::provenance::placeholder(&l.name));
                let mut lp = plan_layer(&l.name, items).map_err(|e| perr(e.into()))?;
                crate::provenance::fill(&mut lp, &origins).map_err(|message| {
                    BuildError::Provenance {
                        layer: l.name.clone(),
                        message,
                    }
                })?;
                Ok::<LayerPlan, BuildError>(lp)
            })
            .collect::<Result<Vec<_>, _>>()
    })?;
    wheel_conflicts_across_layers(&layers)?;
    let graph = build_graph(spec, &layers, opts.compression, mtime);
    // Layers come from the store, else from the cache; the archives of the fragments still
    // missing are downloaded now.
    let perr = |lp: &LayerPlan| {
        let layer = lp.name.clone();
        move |source: LayerError| BuildError::Plan {
            layer,
            source: Box::new(source),
        }
    };
    if let Some(cache) = inputs.cache {
        let mut missing = Vec::new();
        for lp in &layers {
            let id = crate::layer::build::layer_node_id(lp, opts.compression, mtime);
            if !crate::layer::build::is_layer_stored(store, &id).map_err(perr(lp))? {
                missing.push(id);
            }
        }
        cache.pull_all(store, &missing);
    }
    let mut needed = BTreeSet::new();
    for lp in &layers {
        needed.extend(
            crate::layer::build::archives_needed(store, lp, opts.compression, mtime)
                .map_err(perr(lp))?,
        );
    }
    fetch_archives(
        store,
        inputs,
        needed.iter().filter_map(|a| archives.get(a).cloned()),
        false,
        reporter,
    )?;
    let inputs = debs
        .iter()
        .map(|d| install::deb_digest(d).map(|digest| install::listing_id(&digest)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(BuildError::Install)?;
    Ok(Plan {
        spec: spec.clone(),
        mtime,
        compression: opts.compression,
        layers,
        graph,
        archives: extractor,
        inputs: inputs.into_iter().chain(wheel_plan.inputs).collect(),
        wheels: wheel_plan.extractor,
        planning_archives,
    })
}

/// The scheme wheels are installed with: a venv under the recipe's prefix, else Debian's
/// system Python, for the interpreter the locked `.deb`s provide.
fn wheel_scheme(spec: &ImageSpec, debs: &[LockedDeb]) -> Result<Scheme, BuildError> {
    let target =
        crate::pin::python_target(debs, spec).map_err(|e| BuildError::Wheel(e.to_string()))?;
    Ok(crate::pypi::install::scheme_for(spec, &target))
}

/// Two wheels in different layers that install the same file: identical content is fine
/// (the upper copy changes nothing), different content is an error naming both, as it is
/// within one layer, instead of the upper layer silently shadowing the lower file.
fn wheel_conflicts_across_layers(layers: &[LayerPlan]) -> Result<(), BuildError> {
    let mut seen: BTreeMap<&str, (&str, &str, [u8; 32])> = BTreeMap::new();
    for l in layers {
        for f in l.fragments.iter().filter(|f| f.label.starts_with("wheel ")) {
            for e in &f.entries {
                if !matches!(e.header.kind, crate::layer::tar::EntryKind::File { .. }) {
                    continue;
                }
                match seen.get(e.header.path.as_str()) {
                    Some((layer, first, hash)) if *layer != l.name && *hash != e.content_hash => {
                        return Err(BuildError::Wheel(format!(
                            "/{} is installed by `{first}` (layer `{layer}`) and, with different content, by `{}` (layer `{}`); pin versions that agree or put both in one layer to see the conflict there",
                            e.header.path, f.label, l.name
                        )));
                    }
                    Some(_) => {}
                    None => {
                        seen.insert(&e.header.path, (&l.name, &f.label, e.content_hash));
                    }
                }
            }
        }
    }
    Ok(())
}

/// `spec` with the labels composer derives added to its config, all known before anything is
/// built: the recipe digest (when it came from a recipe file), the lock digest (when a lock
/// pins packages) and composer's version, which override a recipe label of the same name;
/// and the lowest NVIDIA driver the locked CUDA runtime wheel needs, which a recipe label of
/// the same key overrides.
fn with_labels(spec: &ImageSpec, lock: Option<&Lock>) -> ImageSpec {
    use crate::provenance::{LABEL_LOCK, LABEL_RECIPE, LABEL_VERSION};
    let mut s = spec.clone();
    let labels = &mut s.config.labels;
    labels.insert(LABEL_VERSION.into(), env!("CARGO_PKG_VERSION").into());
    if let Some(d) = &spec.recipe_digest {
        labels.insert(LABEL_RECIPE.into(), d.clone());
    }
    if let Some(lock) = lock
        && (!lock.debian.is_empty() || !lock.pypi.is_empty())
    {
        labels.insert(
            LABEL_LOCK.into(),
            Digest::of_bytes(lock.to_text().as_bytes()).to_string(),
        );
    }
    let wheels = lock.map_or(&[][..], |l| l.pypi.as_slice());
    if let Some((key, value)) = crate::check::cuda::driver_label(
        wheels.iter().map(|w| (w.name.as_str(), w.version.as_str())),
    ) {
        labels.entry(key).or_insert(value);
    }
    s
}

/// The wheel half of a plan.
#[derive(Default)]
struct WheelPlan {
    /// One item per wheel, by layer.
    items: BTreeMap<String, Vec<ItemEntries>>,
    /// The wheels' listing nodes (kept alive through gc by the image).
    inputs: Vec<NodeId>,
    /// Where wheels are installed when a fragment must be built.
    /// Installs them on demand.
    extractor: Option<Arc<WheelExtractor>>,
}

/// Wheels installed per the wheel spec into the image's scheme (listings cached in the
/// store), one item per wheel in its layer.
fn plan_wheels(
    store: &Store,
    spec: &ImageSpec,
    debs: &[LockedDeb],
    wheels: &[LockedWheel],
    pool: &rayon::ThreadPool,
) -> Result<WheelPlan, BuildError> {
    if wheels.is_empty() {
        return Ok(WheelPlan::default());
    }
    let target =
        crate::pin::python_target(debs, spec).map_err(|e| BuildError::Wheel(e.to_string()))?;
    let prefix = spec.pypi.as_ref().and_then(|p| p.prefix.as_deref());
    let scheme = crate::pypi::install::scheme_for(spec, &target);
    let mut inputs = Vec::with_capacity(wheels.len());
    for w in wheels {
        let digest = crate::pypi::install::wheel_digest(w).map_err(BuildError::Wheel)?;
        inputs.push(crate::pypi::install::listing_id(
            &digest,
            &scheme,
            w.reason == "requested",
        ));
    }
    let ex = WheelExtractor::new(store.clone(), wheels, scheme).map_err(BuildError::Wheel)?;
    let installed: Vec<(String, ItemEntries)> = pool.install(|| {
        wheels
            .par_iter()
            .map(|w| Ok((w.layer.clone(), ex.item(w).map_err(BuildError::Wheel)?)))
            .collect::<Result<_, BuildError>>()
    })?;
    let mut items: BTreeMap<String, Vec<ItemEntries>> = BTreeMap::new();
    // A venv prefix gets its skeleton (pyvenv.cfg, bin/python) in the lowest layer that
    // installs wheels, so every launcher's `#!PREFIX/bin/python` resolves.
    if let Some(prefix) = prefix
        && let Some(lowest) = spec
            .layers
            .iter()
            .find(|l| wheels.iter().any(|w| w.layer == l.name))
    {
        items
            .entry(lowest.name.clone())
            .or_default()
            .push(crate::pypi::venv::skeleton(prefix, &target));
    }
    for (layer, item) in installed {
        items.entry(layer).or_default().push(item);
    }
    Ok(WheelPlan {
        items,
        inputs,
        extractor: Some(Arc::new(ex)),
    })
}

/// Plans and builds `spec` into `store`.
///
/// # Errors
/// [`BuildError`] naming the failing node and its cause.
pub fn build(
    store: &Store,
    spec: &ImageSpec,
    inputs: Inputs<'_>,
    opts: &BuildOptions,
    reporter: &dyn Reporter,
) -> Result<BuiltImage, BuildError> {
    let _lock = store.lock_shared()?;
    let plan = plan(store, spec, inputs, opts, reporter)?;
    let image = build_plan(store, &plan, opts, reporter)?;
    if let Some(cache) = inputs.cache {
        cache.upload(store, &cache_uploads(store, &plan, &image));
    }
    Ok(image)
}

/// What a build offers the cache: its package listings (without the archives their mirrors
/// serve) and its layers (with their fragments).
fn cache_uploads(store: &Store, plan: &Plan, image: &BuiltImage) -> Vec<Upload> {
    let listings = plan.inputs.iter().map(|id| Upload {
        id: *id,
        omit: store
            .get_node(id)
            .ok()
            .flatten()
            .map(|rec| {
                rec.blobs
                    .into_iter()
                    .skip(1)
                    .filter(|b| !plan.planning_archives.contains(b))
                    .collect()
            })
            .unwrap_or_default(),
    });
    let layers = image.layers.iter().map(|l| Upload {
        id: l.output.id,
        omit: BTreeSet::new(),
    });
    listings.chain(layers).collect()
}

/// What a node produced.
enum NodeOutput {
    Layer(BuiltLayer),
    Image(Box<BuiltImage>),
}

/// Builds a plan into `store`.
///
/// # Errors
/// [`BuildError`] naming the failing node and its cause.
pub fn build_plan(
    store: &Store,
    plan: &Plan,
    opts: &BuildOptions,
    reporter: &dyn Reporter,
) -> Result<BuiltImage, BuildError> {
    let workers = u32::try_from(opts.jobs.clamp(1, 8)).unwrap_or(1);
    let outcomes = execute(
        &plan.graph.dag,
        opts.jobs,
        |_, node, deps: &[Arc<NodeOutput>]| match node.kind {
            NodeKind::Layer(i) => {
                let lp = &plan.layers[i];
                let total = lp.fragments.iter().map(|f| f.tar_len).sum();
                reporter.layer_started(&lp.name, total);
                let progress = |done| reporter.layer_progress(&lp.name, done);
                let (output, provenance) = build_layer(
                    store,
                    lp,
                    plan.compression,
                    plan.mtime,
                    workers,
                    &Archives {
                        debs: plan.archives.as_ref(),
                        wheels: plan.wheels.as_deref(),
                    },
                    &progress,
                    opts.layer_tap.as_deref(),
                )?;
                reporter.layer_finished(&lp.name, &output, provenance);
                Ok(NodeOutput::Layer(BuiltLayer {
                    name: lp.name.clone(),
                    output,
                    provenance,
                }))
            }
            NodeKind::Image => {
                let mut layers: Vec<BuiltLayer> = deps
                    .iter()
                    .filter_map(|d| match d.as_ref() {
                        NodeOutput::Layer(l) => Some(l.clone()),
                        NodeOutput::Image(_) => None,
                    })
                    .collect();
                let order: Vec<&str> = plan.layers.iter().map(|l| l.name.as_str()).collect();
                layers.sort_by_key(|l| order.iter().position(|n| *n == l.name));
                write_image(store, plan, &node.id, layers).map(|i| NodeOutput::Image(Box::new(i)))
            }
        },
    )
    .map_err(|message| BuildError::Pool {
        jobs: opts.jobs,
        message,
    })?;

    let mut failures = Vec::new();
    let mut image = None;
    for (i, o) in outcomes.into_iter().enumerate() {
        let label = plan
            .graph
            .dag
            .node_weights()
            .nth(i)
            .map(|n| n.label.clone())
            .unwrap_or_default();
        match o {
            Outcome::Done(out) => {
                if let NodeOutput::Image(img) = out.as_ref() {
                    image = Some(img.as_ref().clone());
                }
            }
            Outcome::Failed(source) => failures.push(NodeFailure {
                node: label,
                source,
            }),
            Outcome::Skipped(_) => {}
        }
    }
    match image {
        Some(img) if failures.is_empty() => Ok(img),
        _ => Err(BuildError::Nodes { failures }),
    }
}

fn write_image(
    store: &Store,
    plan: &Plan,
    id: &NodeId,
    layers: Vec<BuiltLayer>,
) -> Result<BuiltImage, LayerError> {
    let spec = &plan.spec;
    let created = crate::time::format_rfc3339(i64::try_from(plan.mtime).unwrap_or(i64::MAX));
    let refs: Vec<LayerRef> = layers
        .iter()
        .map(|l| LayerRef {
            name: l.name.clone(),
            digest: l.output.digest.clone(),
            diff_id: l.output.diff_id.clone(),
            size: l.output.size,
            media_type: l.output.media_type.clone(),
        })
        .collect();
    let config = to_canonical(&json::image_config(spec, &refs, &created));
    let (config_digest, config_size) = store.put_blob_bytes(&config)?;
    let config_desc = Descriptor {
        media_type: CONFIG_MEDIA_TYPE.into(),
        digest: config_digest.clone(),
        size: config_size,
        annotations: Default::default(),
        platform: None,
    };
    let manifest = to_canonical(&json::manifest(spec, config_desc, &refs, &created));
    let (manifest_digest, manifest_size) = store.put_blob_bytes(&manifest)?;
    let manifest_desc = Descriptor {
        media_type: MANIFEST_MEDIA_TYPE.into(),
        digest: manifest_digest.clone(),
        size: manifest_size,
        annotations: Default::default(),
        platform: None,
    };
    let index = to_canonical(&json::index(&manifest_desc, &spec.tags, &spec.platform));
    let (index_digest, _) = store.put_blob_bytes(&index)?;
    let meta = serde_json::json!({
        "name": spec.name, "tags": spec.tags, "manifest": manifest_digest, "config": config_digest,
    });
    store.put_node(
        id,
        &NodeRecord {
            kind: "image".into(),
            blobs: vec![config_digest.clone(), manifest_digest.clone(), index_digest],
            children: layers
                .iter()
                .map(|l| l.output.id)
                .chain(plan.inputs.iter().copied())
                .collect(),
            meta: meta.clone(),
        },
    )?;
    store.set_root(
        &format!("image-{}", spec.name),
        &RootRecord {
            nodes: vec![*id],
            blobs: vec![],
            meta,
        },
    )?;
    Ok(BuiltImage {
        name: spec.name.clone(),
        tags: spec.tags.clone(),
        compression: plan.compression,
        layers,
        config,
        config_digest,
        manifest,
        manifest_digest,
        index,
        node: *id,
    })
}
