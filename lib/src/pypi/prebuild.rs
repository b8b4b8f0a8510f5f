//! Work a build does for a wheel as soon as it is downloaded, while the resolution that will
//! pick it is still going on: list it (every member verified against `RECORD`) and write its
//! fragment into the store. The build that follows then finds both stored and only assembles
//! the layer. The resolver waits on the network most of that time, so this uses cores that
//! would otherwise idle.
//!
//! A wheel whose listing is not stored yet is read once: its zip directory and `RECORD` give
//! the fragment's paths, modes and sizes, and each member is checked against `RECORD` while
//! it is written into the fragment, which also gives its blake3 for the listing. Nothing is
//! recorded unless every member matched.
//!
//! Listings and fragments are content-addressed, so a guess the resolution does not confirm
//! (an older version chosen, a file another wheel of the layer already places) costs CPU,
//! never correctness: the build plans from the lock and rebuilds what its plan names.
//! Failures are ignored here; the build meets them again and reports them.

use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use composer_store::{Digest, Store};

use super::install::{WheelExtractor, item_label};
use super::wheel::Scheme;
use crate::layer::Compression;
use crate::layer::build::{build_fragment, record_fragment, write_fragment_learning};
use crate::layer::plan::{FragmentPlan, ItemEntries, plan_layer};

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
    /// wheels go. Returns without waiting for the work, so the thread goes on downloading.
    fn wheel(&self, scheme: &Scheme, wheel: &EagerWheel);

    /// Waits until the work for every wheel handed over so far is done (the build that
    /// follows then finds it stored instead of doing it again).
    fn finish(&self) {}
}

/// Lists each wheel and writes its fragment (as the only item of a layer: what it is unless
/// another wheel of its layer places some of the same files), at most `jobs` at a time, the
/// largest wheel waiting first: the last to finish is then a small one, not a large one
/// started late with the other cores idle.
pub struct FragmentPrebuilder {
    shared: Arc<Shared>,
    /// `jobs` threads.
    pool: Option<rayon::ThreadPool>,
}

impl std::fmt::Debug for FragmentPrebuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FragmentPrebuilder")
            .field("workers", &self.shared.workers)
            .finish_non_exhaustive()
    }
}

/// What the pool's tasks share.
struct Shared {
    store: Store,
    compression: Compression,
    mtime: u64,
    workers: u32,
    queue: Mutex<Queue>,
    /// Signalled when `Queue::outstanding` drops to zero.
    idle: Condvar,
}

#[derive(Default)]
struct Queue {
    /// Waiting wheels by (size, arrival): a task takes the last, the largest.
    waiting: BTreeMap<(u64, u64), (Scheme, EagerWheel)>,
    arrivals: u64,
    /// Handed over and not done.
    outstanding: usize,
}

impl FragmentPrebuilder {
    /// A prebuilder for a build into `store` with `compression` and entry time `mtime`.
    #[must_use]
    pub fn new(store: Store, compression: Compression, mtime: u64, jobs: usize) -> Self {
        Self {
            shared: Arc::new(Shared {
                store,
                compression,
                mtime,
                workers: u32::try_from(jobs.clamp(1, 8)).unwrap_or(1),
                queue: Mutex::default(),
                idle: Condvar::new(),
            }),
            // A panic is one wheel's head start lost, not the build: the build meets the
            // wheel again and reports what is wrong with it.
            pool: rayon::ThreadPoolBuilder::new()
                .num_threads(jobs.max(1))
                .panic_handler(|_| {})
                .build()
                .ok(),
        }
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs the largest waiting wheel's work (one task per wheel handed over, so each
    /// wheel's work runs once, whichever task takes it).
    fn run_largest(&self) {
        // Counted done even if the work panics, so that `finish` never waits forever.
        struct Done<'a>(&'a Shared);
        impl Drop for Done<'_> {
            fn drop(&mut self) {
                let mut q = self.0.lock();
                q.outstanding = q.outstanding.saturating_sub(1);
                if q.outstanding == 0 {
                    self.0.idle.notify_all();
                }
            }
        }
        let _done = Done(self);
        let job = self.lock().waiting.pop_last().map(|(_, job)| job);
        if let Some((scheme, w)) = job {
            self.prebuild(&scheme, &w);
        }
    }

    /// Lists the wheel and writes its fragment: in one pass when its listing is not stored
    /// yet. Failures are left for the build, which meets the wheel again and reports them.
    fn prebuild(&self, scheme: &Scheme, w: &EagerWheel) {
        let ex = WheelExtractor::for_wheels(
            self.store.clone(),
            scheme.clone(),
            [(w.digest.clone(), w.filename.clone(), w.requested)],
        );
        let label = item_label(&w.name, &w.version);
        // As many compression workers as jobs (the bytes are the same for any count): the
        // last big wheel's prebuild, often alone, then uses every core.
        let _ = match ex.survey(&w.digest, label.clone()) {
            Ok(Some(surveyed)) => self.list_and_write(&ex, &w.digest, surveyed),
            Ok(None) => ex.item_for(&w.digest, label).and_then(|item| {
                let frag = alone(item)?;
                build_fragment(
                    &self.store,
                    &frag,
                    self.compression,
                    self.mtime,
                    self.workers,
                    &ex,
                )
                .map_err(|e| e.to_string())
            }),
            Err(e) => Err(e),
        };
    }

    /// One pass over a surveyed wheel: its fragment written while every member is checked
    /// against `RECORD`, then its listing and the fragment recorded.
    fn list_and_write(
        &self,
        ex: &WheelExtractor,
        digest: &Digest,
        surveyed: ItemEntries,
    ) -> Result<(), String> {
        let draft = alone(surveyed.clone())?;
        let written = write_fragment_learning(
            &self.store,
            &draft,
            self.compression,
            self.mtime,
            self.workers,
            ex,
        )
        .map_err(|e| e.to_string())?;
        // complete() only fills in content hashes, which the tar does not hold: the finished
        // fragment's bytes are the draft's, under the finished fragment's node.
        let frag = alone(ex.complete(digest, surveyed, &written.learned)?)?;
        record_fragment(
            &self.store,
            &frag,
            self.compression,
            self.mtime,
            &written.blob,
            written.size,
        )
        .map_err(|e| e.to_string())
    }
}

/// The wheel's fragment when it is the only item of its layer (what it is unless another
/// wheel of the layer places some of the same files).
pub(crate) fn alone(item: ItemEntries) -> Result<FragmentPlan, String> {
    let label = item.label.clone();
    plan_layer("", vec![item])
        .map_err(|e| e.to_string())?
        .fragments
        .into_iter()
        .find(|f| f.label == label)
        .ok_or_else(|| format!("{label}: no fragment"))
}

impl Prebuild for FragmentPrebuilder {
    fn wheel(&self, scheme: &Scheme, w: &EagerWheel) {
        // A pool that could not start only costs the head start.
        let Some(pool) = &self.pool else {
            return;
        };
        let size = std::fs::metadata(self.shared.store.blob_path(&w.digest)).map_or(0, |m| m.len());
        {
            let mut q = self.shared.lock();
            let arrival = q.arrivals;
            q.arrivals += 1;
            q.waiting
                .insert((size, arrival), (scheme.clone(), w.clone()));
            q.outstanding += 1;
        }
        let shared = Arc::clone(&self.shared);
        pool.spawn(move || shared.run_largest());
    }

    fn finish(&self) {
        let mut q = self.shared.lock();
        while q.outstanding > 0 {
            q = self
                .shared
                .idle
                .wait(q)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}
