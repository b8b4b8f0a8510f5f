//! [`StoreError`], the one error type of this crate.
//!
//! Every message is one sentence that names the path, digest or name involved. The
//! underlying cause (an `io::Error`, a JSON error) is not repeated in the message; it is
//! the error's [`source`](std::error::Error::source), which reporters such as miette print
//! as the next line of the chain.

use std::io;
use std::path::{Path, PathBuf};

use crate::digest::Digest;
use crate::nodeid::NodeId;

/// Everything that can go wrong in the store.
#[derive(thiserror::Error, Debug)]
#[non_exhaustive]
pub enum StoreError {
    /// An I/O operation on `path` failed.
    #[error("store I/O failed on {}: {source}", path.display())]
    Io {
        /// The file or directory operated on.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },

    /// The store root (or something under it) cannot be created or written.
    #[error("cannot create or write the store at {}", path.display())]
    NotWritable {
        /// The path that could not be created or written.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },

    /// No location for the store could be derived from the environment.
    #[error("no store location: set $COMPOSE_STORE, $XDG_CACHE_HOME or $HOME")]
    NoDefaultRoot,

    /// A blob that was asked for is not in the store.
    #[error("blob {digest} is not in the store")]
    MissingBlob {
        /// The missing blob.
        digest: Digest,
    },

    /// A node record was refused because something it references is not in the store.
    #[error("node {node} references {what}, which is not in the store; write it first")]
    IncompleteNode {
        /// The node whose record was refused.
        node: NodeId,
        /// What is missing, e.g. `blob sha256:…` or `child node …`.
        what: String,
    },

    /// Content did not hash to the digest it was expected to have.
    #[error("{what} has digest {actual}, expected {expected}")]
    DigestMismatch {
        /// The digest the caller expected.
        expected: Digest,
        /// The digest of the bytes actually written.
        actual: Digest,
        /// What was being written (a path or a description).
        what: String,
    },

    /// A name (of a gc root) cannot be used as a single, safe path segment.
    #[error("{name:?} cannot be used as a store name: {reason}")]
    BadName {
        /// The rejected name.
        name: String,
        /// Why it was rejected.
        reason: &'static str,
    },

    /// A record file exists but does not parse, and cannot be ignored.
    #[error("record {} is corrupt; inspect or delete it", path.display())]
    CorruptRecord {
        /// The record file.
        path: PathBuf,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },

    /// A record could not be serialized (not expected to happen for well-formed values).
    #[error("cannot serialize the record for {}", path.display())]
    Serialize {
        /// The record file that was to be written.
        path: PathBuf,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
}

impl StoreError {
    /// Wraps an `io::Error` with the path it happened on.
    pub(crate) fn io(path: impl AsRef<Path>, source: io::Error) -> StoreError {
        StoreError::Io {
            path: path.as_ref().to_path_buf(),
            source,
        }
    }
}

/// `map_err` helper: `.map_err(io_at(&path))`.
pub(crate) fn io_at(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::io(path, source)
}

/// Recovers the [`StoreError`] that a [`BlobWriter`](crate::BlobWriter) wrapped in the
/// `io::Error` its `Write` impl returned; other errors are attributed to `path`.
pub(crate) fn from_write_error(e: io::Error, path: &Path) -> StoreError {
    match e.downcast::<StoreError>() {
        Ok(inner) => inner,
        Err(e) => StoreError::io(path, e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_errors_keep_their_path() {
        let wrapped = io::Error::new(
            io::ErrorKind::StorageFull,
            StoreError::io(
                "/s/v1/tmp/blob-1",
                io::Error::from(io::ErrorKind::StorageFull),
            ),
        );
        let e = from_write_error(wrapped, Path::new("/elsewhere"));
        assert!(e.to_string().contains("/s/v1/tmp/blob-1"), "{e}");
        let plain = io::Error::from(io::ErrorKind::StorageFull);
        let e = from_write_error(plain, Path::new("/elsewhere"));
        assert!(e.to_string().contains("/elsewhere"), "{e}");
    }
}
