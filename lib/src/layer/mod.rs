//! Layers as DESIGN.md's "fragments, then concatenation".
//!
//! A recipe item (or, later, a package) becomes one **fragment**: a sorted run of
//! normalized tar entries without the end marker, compressed as its own zstd frame / gzip
//! member and stored under its sha256. A layer blob is the parent-directories fragment, the
//! item fragments in recipe order, then the end marker as its own final frame. Concatenated
//! frames/members are one valid stream, so a rebuild that finds its fragments in the store
//! only hashes and concatenates.
//!
//! - [`tar`]: deterministic header writer (pure).
//! - [`compress`]: pinned zstd/gzip parameters (pure).
//! - [`plan`]: merging item entries into a layer plan and naming nodes (pure).
//! - [`files`]: local files for `files` layers (reads the file system).
//! - [`build`]: writes fragments and layers into the store, computing digest and diff_id in
//!   the same streaming pass.

pub mod build;
pub mod compress;
pub mod files;
pub mod listing;
pub mod plan;
pub mod tar;

use std::path::PathBuf;

pub use build::{LayerOutput, build_layer, copy_layer_blob, copy_layer_tar};
pub use compress::Compression;
pub use plan::{FragmentPlan, LayerPlan, PlanError, plan_layer};

/// Errors while planning or building a layer. Every I/O error names its path.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LayerError {
    /// Reading a local input failed.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The local path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A local file name that is not UTF-8.
    #[error("file name is not valid UTF-8: {}", path.display())]
    NotUtf8 {
        /// The local path.
        path: PathBuf,
    },
    /// A FIFO, socket or device node in a copied tree.
    #[error("cannot place {}: it is {kind}; only files, directories and symlinks can be copied", path.display())]
    SpecialFile {
        /// The local path.
        path: PathBuf,
        /// What it is.
        kind: &'static str,
    },
    /// A local file changed between planning and building.
    #[error("{} changed while the layer was being built; rerun the build", path.display())]
    FileChanged {
        /// The local path.
        path: PathBuf,
    },
    /// Reading a file out of a package archive failed.
    #[error("cannot read /{path} from {archive}: {source}")]
    ArchiveRead {
        /// The archive (package and version, or file name).
        archive: String,
        /// Image path of the file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A file read out of a package archive is not what its listing says.
    #[error(
        "/{path} from {archive} is not what its listing says ({reason}); the store may be corrupt: `compose store verify` checks it"
    )]
    ArchiveContent {
        /// The archive (package and version, or file name).
        archive: String,
        /// Image path of the file.
        path: String,
        /// What differs.
        reason: String,
    },
    /// A `debian` item reached the local-files planner (it needs a resolved lock first).
    #[error("Debian packages must be resolved into a lock before their layer can be planned")]
    NotAFilesItem,
    /// Conflicting entries.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// Writing the compressed stream failed.
    #[error("compressing layer `{layer}`: {source}")]
    Compress {
        /// Layer name.
        layer: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] composer_store::StoreError),
}
