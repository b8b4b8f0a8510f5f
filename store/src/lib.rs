//! A content-addressed, crash-safe store for composer (work in progress: identities, errors
//! and the on-disk layout).

pub mod digest;
pub mod error;
pub mod layout;
pub mod nodeid;

pub use digest::{Digest, DigestParseError, Sha256Reader, Sha256Writer};
pub use error::StoreError;
pub use layout::{LAYOUT_VERSION, Layout};
pub use nodeid::{NodeId, NodeIdParseError, NodeKey};
