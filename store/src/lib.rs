//! A content-addressed, crash-safe store for composer (work in progress: identities first).

pub mod digest;
pub mod nodeid;

pub use digest::{Digest, DigestParseError, Sha256Reader, Sha256Writer};
pub use nodeid::{NodeId, NodeIdParseError, NodeKey};
