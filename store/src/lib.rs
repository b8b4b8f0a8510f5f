//! A content-addressed, crash-safe store for composer (work in progress: no maintenance yet).

mod atomic;
mod blob;
pub mod digest;
pub mod error;
pub mod layout;
mod lock;
pub mod nodeid;
mod records;
mod store;

pub use blob::{BLOB_MODE, BlobWriter};
pub use digest::{Digest, DigestParseError, Sha256Reader, Sha256Writer};
pub use error::StoreError;
pub use layout::{LAYOUT_VERSION, Layout};
pub use lock::StoreLock;
pub use nodeid::{NodeId, NodeIdParseError, NodeKey};
pub use records::{NodeRecord, RootRecord};
pub use store::Store;
