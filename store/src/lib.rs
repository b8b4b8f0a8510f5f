//! A content-addressed, crash-safe store for composer. It knows nothing about recipes or OCI:
//! it keeps **blobs** named by their sha256 [`Digest`], **node records** ([`NodeRecord`])
//! named by a [`NodeId`] (blake3 over a canonical [`NodeKey`] of a build node's inputs), and
//! **gc roots** ([`RootRecord`]) that say what to keep.
//!
//! # On-disk layout
//!
//! ```text
//! <root>/                        $COMPOSE_STORE, else $XDG_CACHE_HOME/compose, else ~/.cache/compose
//! ├── CACHEDIR.TAG               marks the tree as a cache for backup tools
//! ├── .gitignore                 "*": never commit the store
//! └── v1/                        LAYOUT_VERSION; a new layout gets a new directory
//!     ├── lock                   store lock: builders shared, gc/verify exclusive
//!     ├── blobs/
//!     │   └── sha256/
//!     │       └── <64 hex>       a blob, named by the sha256 of its content; mode 0444
//!     ├── nodes/
//!     │   └── <node-id>.json     NodeRecord: what a build node produced; mode 0444
//!     ├── roots/
//!     │   └── <name>.json        RootRecord: a gc root
//!     ├── tmp/                   temp files of writes in progress (same filesystem); gc empties it
//!     └── quarantine/            corrupt objects moved aside by verify and get_node
//! ```
//!
//! # Guarantees
//!
//! - **No half-written object is ever visible.** Every object is written to `v1/tmp/`,
//!   fsynced, renamed to its final name, and its directory fsynced. A killed writer leaves at
//!   most a temp file, which nothing trusts and `gc` removes.
//! - **Blobs are checked on the way in** when the caller knows the digest
//!   ([`BlobWriter::commit`] with `Some(expected)`); a mismatch leaves the store unchanged.
//! - **Records point only at what exists.** [`Store::put_node`] refuses a record whose blobs or
//!   children are missing; [`Store::verify`] re-checks everything and quarantines what is not.
//!   A record that does not parse is treated as absent and quarantined.
//! - **Concurrent use is safe.** Writers of the same blob race harmlessly (identical content,
//!   atomic rename). Builders hold [`Store::lock_shared`] for a whole build, so [`Store::gc`],
//!   which holds the exclusive lock, never deletes a blob a build wrote but has not rooted yet.
//!   Code that writes blobs without holding the shared lock can lose them to a concurrent gc.
//! - **Every I/O error names its path** ([`StoreError`]).
//!
//! Unix only (file modes, `flock`, directory fsync).

mod atomic;
mod blob;
pub mod digest;
mod du;
pub mod error;
mod gc;
pub mod layout;
mod lock;
pub mod nodeid;
mod records;
mod store;
mod verify;

pub use blob::{BLOB_MODE, BlobWriter};
pub use digest::{Digest, DigestParseError, Sha256Reader, Sha256Writer};
pub use du::{DuCount, DuReport};
pub use error::StoreError;
pub use gc::GcReport;
pub use layout::{LAYOUT_VERSION, Layout};
pub use lock::StoreLock;
pub use nodeid::{NodeId, NodeIdParseError, NodeKey};
pub use records::{NodeRecord, RootRecord};
pub use store::Store;
pub use verify::{Problem, VerifyReport};
