//! Progress bars on stderr (indicatif), hidden when stderr is not a terminal.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use composer::Reporter;
use composer::layer::LayerOutput;
use composer::layer::build::Provenance;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// One bar per layer being built.
pub(crate) struct Bars {
    multi: MultiProgress,
    bars: Mutex<BTreeMap<String, ProgressBar>>,
    /// Files downloaded from their mirrors (not found in the store or the cache).
    downloads: AtomicUsize,
}

impl Bars {
    pub(crate) fn new() -> Self {
        Self {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            bars: Mutex::new(BTreeMap::new()),
            downloads: AtomicUsize::new(0),
        }
    }

    /// How many files were downloaded from their mirrors.
    pub(crate) fn downloads(&self) -> usize {
        self.downloads.load(Ordering::Relaxed)
    }

    pub(crate) fn finish(&self) {
        let _ = self.multi.clear();
    }

    fn with_bar(&self, layer: &str, f: impl FnOnce(&ProgressBar)) {
        if let Ok(bars) = self.bars.lock()
            && let Some(b) = bars.get(layer)
        {
            f(b);
        }
    }
}

impl Reporter for Bars {
    fn fetched(&self, _what: &str, fetched: bool) {
        if fetched {
            self.downloads.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn layer_started(&self, layer: &str, total: u64) {
        let bar = self.multi.add(ProgressBar::new(total));
        let style = ProgressStyle::with_template(
            "{prefix:>16} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        bar.set_prefix(layer.to_string());
        if let Ok(mut bars) = self.bars.lock() {
            bars.insert(layer.to_string(), bar);
        }
    }

    fn layer_progress(&self, layer: &str, done: u64) {
        self.with_bar(layer, |b| b.set_position(done));
    }

    fn layer_finished(&self, layer: &str, _out: &LayerOutput, how: Provenance) {
        let msg = if how == Provenance::Cached {
            "cached"
        } else {
            "built"
        };
        self.with_bar(layer, |b| b.finish_with_message(msg));
    }
}
