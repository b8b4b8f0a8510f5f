//! Work a build does for a wheel as soon as it is downloaded, while the resolution that will
//! pick it is still going on: list it (every member verified against `RECORD`) and write its
//! fragment into the store. The build that follows then finds both stored and only assembles
//! the layer. The resolver waits on the network most of that time, so this uses cores that
//! would otherwise idle.
//!
//! Listings and fragments are content-addressed, so a guess the resolution does not confirm
//! (an older version chosen, a file another wheel of the layer already places) costs CPU,
//! never correctness: the build plans from the lock and rebuilds what its plan names.
//! Failures are ignored here; the build meets them again and reports them.

use composer_store::{Digest, Store};

use super::install::{WheelExtractor, item_label};
use super::wheel::Scheme;
use crate::layer::Compression;
use crate::layer::build::build_fragment;
use crate::layer::plan::plan_layer;

/// A wheel downloaded while resolving, named as the lock will name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EagerWheel {
    /// sha256 of the wheel (stored under it).
    pub digest: Digest,
    /// The wheel's file name.
    pub filename: String,
    /// Normalized project name.
    pub name: String,
    /// Version as the lock spells it.
    pub version: String,
    /// Whether the recipe asks for the project itself (it gets `REQUESTED`).
    pub requested: bool,
}

/// What a build does with a wheel as soon as it is stored.
pub trait Prebuild: Send + Sync {
    /// Called on a download thread once `wheel` is stored; `scheme` is where the image's
    /// wheels go.
    fn wheel(&self, scheme: &Scheme, wheel: &EagerWheel);
}

/// Lists each wheel and writes its fragment (as the only item of a layer: what it is unless
/// another wheel of its layer places some of the same files), at most `jobs` at a time.
#[derive(Debug)]
pub struct FragmentPrebuilder {
    store: Store,
    compression: Compression,
    mtime: u64,
    workers: u32,
    /// `jobs` threads: a download thread hands its wheel over and waits.
    pool: Option<rayon::ThreadPool>,
}

impl FragmentPrebuilder {
    /// A prebuilder for a build into `store` with `compression` and entry time `mtime`.
    #[must_use]
    pub fn new(store: Store, compression: Compression, mtime: u64, jobs: usize) -> Self {
        Self {
            store,
            compression,
            mtime,
            workers: u32::try_from(jobs.clamp(1, 8)).unwrap_or(1),
            pool: rayon::ThreadPoolBuilder::new()
                .num_threads(jobs.max(1))
                .build()
                .ok(),
        }
    }

    /// Lists the wheel and writes its fragment.
    fn prebuild(&self, scheme: &Scheme, w: &EagerWheel) {
        let ex = WheelExtractor::for_wheels(
            self.store.clone(),
            scheme.clone(),
            [(w.digest.clone(), w.filename.clone(), w.requested)],
        );
        let label = item_label(&w.name, &w.version);
        let Ok(item) = ex.item_for(&w.digest, label.clone()) else {
            return;
        };
        let Ok(plan) = plan_layer("", vec![item]) else {
            return;
        };
        if let Some(frag) = plan.fragments.iter().find(|f| f.label == label) {
            // As many compression workers as jobs (the bytes are the same for any count):
            // the last big wheel's prebuild, often alone, then uses every core.
            let _ = build_fragment(
                &self.store,
                frag,
                self.compression,
                self.mtime,
                self.workers,
                &ex,
            );
        }
    }
}

impl Prebuild for FragmentPrebuilder {
    fn wheel(&self, scheme: &Scheme, w: &EagerWheel) {
        // A pool that could not start only costs the head start.
        if let Some(pool) = &self.pool {
            pool.install(|| self.prebuild(scheme, w));
        }
    }
}
