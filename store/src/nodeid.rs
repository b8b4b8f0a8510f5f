//! Build-node identities: [`NodeId`] (a blake3 hash) and [`NodeKey`], the canonical encoding
//! of a node's inputs that the hash is taken over.
//!
//! # Encoding
//!
//! A [`NodeKey`] is a byte string built as follows; the [`NodeId`] is `blake3(bytes)`.
//! Integers are fixed-width little-endian; `lenbytes(x)` is `u64le(len(x)) ‖ x`.
//!
//! ```text
//! key     = MAGIC header field*
//! MAGIC   = "composer.node-key\0"                       (18 bytes)
//! header  = u32le(ENCODING_VERSION) lenbytes(kind) u32le(format_version)
//! field   = tag:u8 lenbytes(field name) value
//!
//!   tag   method    value
//!   0x01  str       lenbytes(UTF-8)
//!   0x02  bytes     lenbytes(bytes)
//!   0x03  u64       u64le
//!   0x04  i64       i64le (two's complement)
//!   0x05  digest    lenbytes("sha256:<64 lowercase hex>")
//!   0x06  node      the 32 raw bytes of the NodeId
//!   0x07  opt_str   0x00 (None) | 0x01 lenbytes(UTF-8) (Some)
//! ```
//!
//! Every variable-length item carries its length and every value its type tag, so two
//! different sequences of calls never produce the same bytes: `("ab", "c")` and `("a", "bc")`
//! differ, a `str` never collides with `bytes` of the same content, and `opt_str(None)` differs
//! from `str("")`. The `kind` and `format_version` domain-separate node kinds, and bumping a
//! kind's `format_version` changes every id of that kind.
//!
//! Field **order is significant**: callers add fields in a fixed order. The same field name may
//! appear more than once (for lists); the order of the repeats is part of the key.
//!
//! `std::hash` is never involved: its output is not stable across Rust releases.
//!
//! Changing anything here changes every node id in every store; the test
//! `golden_node_id_is_stable` pins one id so that such a change cannot go unnoticed. Bump
//! [`ENCODING_VERSION`] when the encoding really must change.

use std::fmt;
use std::str::FromStr;

use crate::digest::{Digest, shorten};

/// Version of the encoding described in the module docs, hashed into every key.
pub const ENCODING_VERSION: u32 = 1;

const MAGIC: &[u8] = b"composer.node-key\0";

const TAG_STR: u8 = 0x01;
const TAG_BYTES: u8 = 0x02;
const TAG_U64: u8 = 0x03;
const TAG_I64: u8 = 0x04;
const TAG_DIGEST: u8 = 0x05;
const TAG_NODE: u8 = 0x06;
const TAG_OPT_STR: u8 = 0x07;

/// The identity of a build node: blake3 over its [`NodeKey`]. Displayed as 64 lowercase hex.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct NodeId([u8; 32]);

impl NodeId {
    /// The id whose raw blake3 value is `b`.
    pub fn from_bytes(b: [u8; 32]) -> NodeId {
        NodeId(b)
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The 64 lowercase hex characters (same as `Display`).
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({})", self.to_hex())
    }
}

/// Why a text is not a valid [`NodeId`].
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
#[error("node id {input:?} is not valid: expected 64 lowercase hex characters ({reason})")]
pub struct NodeIdParseError {
    input: String,
    reason: &'static str,
}

impl FromStr for NodeId {
    type Err = NodeIdParseError;

    fn from_str(s: &str) -> Result<NodeId, NodeIdParseError> {
        let err = |reason| NodeIdParseError {
            input: shorten(s),
            reason,
        };
        if !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(err("found a character other than 0-9, a-f"));
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).map_err(|_| err("wrong length"))?;
        Ok(NodeId(out))
    }
}

impl TryFrom<String> for NodeId {
    type Error = NodeIdParseError;

    fn try_from(s: String) -> Result<NodeId, NodeIdParseError> {
        s.parse()
    }
}

impl From<NodeId> for String {
    fn from(id: NodeId) -> String {
        id.to_hex()
    }
}

/// Builder for the canonical encoding of a node's inputs; see the module docs for the format.
///
/// ```
/// # use composer_store::NodeKey;
/// let id = NodeKey::new("fragment", 3)
///     .str("package", "libc6")
///     .u64("zstd_level", 19)
///     .opt_str("prefix", None)
///     .finish();
/// assert_eq!(id.to_string().len(), 64);
/// ```
#[derive(Clone, Debug)]
pub struct NodeKey {
    buf: Vec<u8>,
}

impl NodeKey {
    /// Starts a key for a node of `kind`, whose output format is at `format_version`.
    pub fn new(kind: &str, format_version: u32) -> NodeKey {
        let mut key = NodeKey {
            buf: Vec::with_capacity(256),
        };
        key.buf.extend_from_slice(MAGIC);
        key.buf.extend_from_slice(&ENCODING_VERSION.to_le_bytes());
        key.len_bytes(kind.as_bytes());
        key.buf.extend_from_slice(&format_version.to_le_bytes());
        key
    }

    fn len_bytes(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(&(b.len() as u64).to_le_bytes());
        self.buf.extend_from_slice(b);
    }

    fn field(&mut self, tag: u8, name: &str) {
        self.buf.push(tag);
        self.len_bytes(name.as_bytes());
    }

    /// Adds a text field.
    pub fn str(&mut self, field: &str, v: &str) -> &mut Self {
        self.field(TAG_STR, field);
        self.len_bytes(v.as_bytes());
        self
    }

    /// Adds a byte-string field.
    pub fn bytes(&mut self, field: &str, v: &[u8]) -> &mut Self {
        self.field(TAG_BYTES, field);
        self.len_bytes(v);
        self
    }

    /// Adds an unsigned integer field.
    pub fn u64(&mut self, field: &str, v: u64) -> &mut Self {
        self.field(TAG_U64, field);
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// Adds a signed integer field.
    pub fn i64(&mut self, field: &str, v: i64) -> &mut Self {
        self.field(TAG_I64, field);
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// Adds a content digest field.
    pub fn digest(&mut self, field: &str, v: &Digest) -> &mut Self {
        self.field(TAG_DIGEST, field);
        self.len_bytes(v.as_str().as_bytes());
        self
    }

    /// Adds a dependency on another node.
    pub fn node(&mut self, field: &str, v: &NodeId) -> &mut Self {
        self.field(TAG_NODE, field);
        self.buf.extend_from_slice(v.as_bytes());
        self
    }

    /// Adds an optional text field; `None` and `Some("")` differ.
    pub fn opt_str(&mut self, field: &str, v: Option<&str>) -> &mut Self {
        self.field(TAG_OPT_STR, field);
        match v {
            None => self.buf.push(0),
            Some(s) => {
                self.buf.push(1);
                self.len_bytes(s.as_bytes());
            }
        }
        self
    }

    /// The encoded bytes so far (for debugging and tests).
    pub fn encoded(&self) -> &[u8] {
        &self.buf
    }

    /// The node id: blake3 of the encoding.
    pub fn finish(&self) -> NodeId {
        NodeId(*blake3::hash(&self.buf).as_bytes())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn golden_key() -> NodeKey {
        let mut k = NodeKey::new("fragment", 7);
        k.str("package", "libc6")
            .bytes("raw", &[0, 1, 2, 255])
            .u64("level", 19)
            .i64("epoch", -1)
            .digest("deb", &Digest::of_bytes(b"abc"))
            .node("parent", &NodeId::from_bytes([0x11; 32]))
            .opt_str("prefix", None)
            .opt_str("python", Some("3.11"));
        k
    }

    /// If this fails, the encoding changed and every node id in every store with it. That is
    /// only acceptable together with a bump of `ENCODING_VERSION` (and then update the value).
    #[test]
    fn golden_node_id_is_stable() {
        assert_eq!(
            golden_key().finish().to_string(),
            "6342ada1eb7fbb6a0542f8a28b543e8a3b1effd465a237b870425a25173d8159"
        );
    }

    #[test]
    fn encoding_layout_is_as_documented() {
        let mut k = NodeKey::new("k", 2);
        k.u64("n", 5);
        let mut want = Vec::new();
        want.extend_from_slice(b"composer.node-key\0");
        want.extend_from_slice(&1u32.to_le_bytes());
        want.extend_from_slice(&1u64.to_le_bytes());
        want.extend_from_slice(b"k");
        want.extend_from_slice(&2u32.to_le_bytes());
        want.push(0x03);
        want.extend_from_slice(&1u64.to_le_bytes());
        want.extend_from_slice(b"n");
        want.extend_from_slice(&5u64.to_le_bytes());
        assert_eq!(k.encoded(), want.as_slice());
    }

    #[test]
    fn field_boundaries_cannot_be_confused() {
        let a = NodeKey::new("k", 1).str("ab", "c").finish();
        let b = NodeKey::new("k", 1).str("a", "bc").finish();
        assert_ne!(a, b);
        let a = NodeKey::new("k", 1).str("x", "ab").str("y", "c").finish();
        let b = NodeKey::new("k", 1).str("x", "a").str("y", "bc").finish();
        assert_ne!(a, b);
        let a = NodeKey::new("ab", 1).str("c", "").finish();
        let b = NodeKey::new("a", 1).str("bc", "").finish();
        assert_ne!(a, b);
    }

    #[test]
    fn types_kinds_and_versions_are_separated() {
        let s = NodeKey::new("k", 1).str("f", "v").finish();
        assert_ne!(s, NodeKey::new("k", 1).bytes("f", b"v").finish());
        assert_ne!(s, NodeKey::new("k", 1).opt_str("f", Some("v")).finish());
        assert_ne!(s, NodeKey::new("k", 2).str("f", "v").finish());
        assert_ne!(s, NodeKey::new("j", 1).str("f", "v").finish());
        assert_ne!(
            NodeKey::new("k", 1).opt_str("f", None).finish(),
            NodeKey::new("k", 1).opt_str("f", Some("")).finish()
        );
        assert_ne!(
            NodeKey::new("k", 1).u64("f", 1).finish(),
            NodeKey::new("k", 1).i64("f", 1).finish()
        );
        // Same inputs, same id.
        assert_eq!(golden_key().finish(), golden_key().finish());
    }

    #[test]
    fn node_id_text_roundtrip_and_validation() {
        let id = golden_key().finish();
        let text = id.to_string();
        assert_eq!(text.len(), 64);
        assert_eq!(text.parse::<NodeId>().unwrap(), id);
        assert_eq!(
            serde_json::from_str::<NodeId>(&serde_json::to_string(&id).unwrap()).unwrap(),
            id
        );
        assert!(text.to_uppercase().parse::<NodeId>().is_err());
        assert!(text[..63].parse::<NodeId>().is_err());
        assert!(format!("{text}0").parse::<NodeId>().is_err());
        assert!("../etc".parse::<NodeId>().is_err());
        let err = serde_json::from_str::<NodeId>("\"xyz\"").unwrap_err();
        assert!(err.to_string().contains("xyz"), "{err}");
    }
}
