//! Progress reporting without terminal code: the library calls a [`Reporter`]; the CLI
//! draws progress bars, tests and library users may ignore it ([`NoReporter`]).

use crate::layer::LayerOutput;
use crate::layer::build::Provenance;

/// Receives build progress. All methods have empty defaults; calls may come from several
/// threads at once.
pub trait Reporter: Sync {
    /// `count` pinned downloads are checked (and fetched where the store lacks them).
    fn fetching(&self, _count: usize) {}
    /// One download is in the store (`fetched`: it was downloaded now).
    fn fetched(&self, _what: &str, _fetched: bool) {}
    /// Local inputs of `layers` layers are being walked and hashed.
    fn planning(&self, _layers: usize) {}
    /// A layer starts; `total` is its uncompressed size in bytes.
    fn layer_started(&self, _layer: &str, _total: u64) {}
    /// `done` uncompressed bytes of the layer are processed.
    fn layer_progress(&self, _layer: &str, _done: u64) {}
    /// A layer is finished.
    fn layer_finished(&self, _layer: &str, _out: &LayerOutput, _how: Provenance) {}
}

/// Ignores everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoReporter;
impl Reporter for NoReporter {}
