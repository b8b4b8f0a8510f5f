//! The JSON records the store keeps besides blobs: [`NodeRecord`] (what a build node produced)
//! and [`RootRecord`] (a gc root), and their one serialized form.

use std::path::Path;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::StoreError;
use crate::nodeid::NodeId;

/// What a build node produced, stored as `v1/nodes/<node-id>.json`.
///
/// The store only interprets `blobs` and `children` (for `verify` and `gc`); `kind` and `meta`
/// belong to the caller.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct NodeRecord {
    /// The caller's node kind (e.g. `fragment`, `layer`).
    pub kind: String,
    /// Blobs the node produced; all must be in the store before the record is written.
    pub blobs: Vec<Digest>,
    /// Nodes this one depends on; kept alive by gc as long as this one is.
    pub children: Vec<NodeId>,
    /// Anything else the caller wants to remember.
    pub meta: serde_json::Value,
}

/// A gc root, stored as `v1/roots/<name>.json`: everything it names (recursively through node
/// children) survives `gc`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct RootRecord {
    /// Nodes to keep, with their children and blobs.
    pub nodes: Vec<NodeId>,
    /// Blobs to keep directly.
    pub blobs: Vec<Digest>,
    /// Anything else the caller wants to remember (e.g. the lockfile it came from).
    pub meta: serde_json::Value,
}

/// The bytes written for a record: compact JSON (serde field order) and a final newline.
pub(crate) fn encode<T: Serialize>(rec: &T, path: &Path) -> Result<Vec<u8>, StoreError> {
    let mut bytes = serde_json::to_vec(rec).map_err(|source| StoreError::Serialize {
        path: path.to_path_buf(),
        source,
    })?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// Parses a record read from `path`.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8], path: &Path) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|source| StoreError::CorruptRecord {
        path: path.to_path_buf(),
        source,
    })
}
