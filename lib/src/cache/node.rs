//! How a store node is written in a registry, pure (no I/O): the tag `node-<id hex>`, the
//! config document (the node's record, the records of the children that travel with it and
//! the blobs deliberately left out), the OCI 1.1 artifact manifest naming its blobs, and the
//! checks a manifest and document must pass before anything they name is pulled.

use std::collections::{BTreeMap, BTreeSet};

use composer_store::{Digest, NodeId, NodeRecord};
use serde::{Deserialize, Serialize};

use crate::oci::json::{Descriptor, MANIFEST_MEDIA_TYPE, to_canonical};

/// The artifact type of a node manifest, and the media type of its config blob.
pub const NODE_MEDIA_TYPE: &str = "application/vnd.composer.node.v1+json";
/// The media type of a package listing blob (JSON).
pub const LISTING_MEDIA_TYPE: &str = "application/vnd.composer.listing.v1+json";
/// The media type of any other blob a node names (a `.deb`, a wheel).
pub const BLOB_MEDIA_TYPE: &str = "application/octet-stream";
/// Annotation: the node id (hex).
pub const ANNOTATION_NODE: &str = "dev.composer.node";
/// Annotation: the node kind (`layer`, `deb-listing`, `wheel-listing`).
pub const ANNOTATION_KIND: &str = "dev.composer.kind";
/// Annotation: the layer format version that is part of every fragment's id.
pub const ANNOTATION_FORMAT: &str = "dev.composer.format";

/// Largest config document read into memory.
pub const MAX_DOC: u64 = 4 << 20;

/// The tag a node is stored under: `node-<64 hex>` (69 characters, a valid tag).
#[must_use]
pub fn tag(id: &NodeId) -> String {
    format!("node-{}", id.to_hex())
}

/// The config blob of a node manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeDoc {
    /// The node.
    pub id: NodeId,
    /// Its record, as the store that uploaded it holds it.
    pub record: NodeRecord,
    /// Records of children that travel with it (a layer's fragments), sorted by id.
    pub children: Vec<ChildRecord>,
    /// Blobs of `record` not uploaded (a package archive, available from its mirror): a
    /// puller stores the record without them.
    pub omitted: Vec<Digest>,
}

/// A child node's record inside a [`NodeDoc`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChildRecord {
    /// The child.
    pub id: NodeId,
    /// Its record.
    pub record: NodeRecord,
}

/// The manifest of a node (only the fields read back).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeManifest {
    /// 2.
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    /// The OCI image manifest media type.
    #[serde(rename = "mediaType")]
    pub media_type: String,
    /// [`NODE_MEDIA_TYPE`] (OCI 1.1; registries older than 1.1 keep it as an unknown field).
    #[serde(
        rename = "artifactType",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub artifact_type: Option<String>,
    /// The [`NodeDoc`] blob, of media type [`NODE_MEDIA_TYPE`].
    pub config: Descriptor,
    /// Every blob uploaded with the node.
    pub layers: Vec<Descriptor>,
    /// [`ANNOTATION_NODE`], [`ANNOTATION_KIND`], [`ANNOTATION_FORMAT`].
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

/// One blob to name in a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobDesc {
    /// Digest.
    pub digest: Digest,
    /// Size.
    pub size: u64,
    /// Media type.
    pub media_type: String,
}

fn descriptor(b: &BlobDesc) -> Descriptor {
    Descriptor {
        media_type: b.media_type.clone(),
        digest: b.digest.clone(),
        size: b.size,
        annotations: BTreeMap::new(),
        platform: None,
    }
}

/// The config blob bytes (canonical JSON) of `doc`.
#[must_use]
pub fn doc_bytes(doc: &NodeDoc) -> Vec<u8> {
    to_canonical(doc)
}

/// The manifest bytes (canonical JSON) of a node whose config blob is `config` and whose
/// uploaded blobs are `blobs` (each once, in record order). Two machines uploading the same
/// node write the same bytes, hence the same manifest digest.
#[must_use]
pub fn manifest_bytes(doc: &NodeDoc, config: &[u8], blobs: &[BlobDesc]) -> Vec<u8> {
    let annotations = BTreeMap::from([
        (ANNOTATION_NODE.to_string(), doc.id.to_hex()),
        (ANNOTATION_KIND.to_string(), doc.record.kind.clone()),
        (
            ANNOTATION_FORMAT.to_string(),
            crate::layer::plan::FORMAT_VERSION.to_string(),
        ),
    ]);
    let m = NodeManifest {
        schema_version: 2,
        media_type: MANIFEST_MEDIA_TYPE.into(),
        artifact_type: Some(NODE_MEDIA_TYPE.into()),
        config: descriptor(&BlobDesc {
            digest: Digest::of_bytes(config),
            size: config.len() as u64,
            media_type: NODE_MEDIA_TYPE.into(),
        }),
        layers: blobs.iter().map(descriptor).collect(),
        annotations,
    };
    to_canonical(&m)
}

/// The blobs a node manifest carries: every blob of its record and of its children, each
/// once, in order, except the omitted ones.
#[must_use]
pub fn carried_blobs(doc: &NodeDoc) -> Vec<Digest> {
    let omitted: BTreeSet<&Digest> = doc.omitted.iter().collect();
    let mut seen = BTreeSet::new();
    doc.record
        .blobs
        .iter()
        .chain(doc.children.iter().flat_map(|c| c.record.blobs.iter()))
        .filter(|d| !omitted.contains(d) && seen.insert((*d).clone()))
        .cloned()
        .collect()
}

/// Parses a node manifest fetched under [`tag`]`(id)` and checks it is one: our artifact
/// type (or config media type), the node annotation naming `id`.
///
/// # Errors
/// Why it is not a node manifest for `id`.
pub fn parse_manifest(bytes: &[u8], id: &NodeId) -> Result<NodeManifest, String> {
    let m: NodeManifest =
        serde_json::from_slice(bytes).map_err(|e| format!("not an OCI manifest: {e}"))?;
    if m.schema_version != 2 {
        return Err(format!("schemaVersion {}", m.schema_version));
    }
    if m.artifact_type.as_deref().unwrap_or(&m.config.media_type) != NODE_MEDIA_TYPE
        || m.config.media_type != NODE_MEDIA_TYPE
    {
        return Err(format!(
            "not a composer node (config media type {})",
            m.config.media_type
        ));
    }
    match m.annotations.get(ANNOTATION_NODE) {
        Some(h) if *h == id.to_hex() => {}
        other => {
            return Err(format!(
                "annotation {ANNOTATION_NODE} is {other:?}, expected {}",
                id.to_hex()
            ));
        }
    }
    if m.config.size > MAX_DOC {
        return Err(format!("config of {} bytes is too large", m.config.size));
    }
    Ok(m)
}

/// Parses the config document and checks it against its manifest: it names `id`, every
/// record child travels with it, and the manifest's layers are exactly the carried blobs.
///
/// # Errors
/// Why the document cannot be trusted to describe the manifest.
pub fn parse_doc(bytes: &[u8], id: &NodeId, manifest: &NodeManifest) -> Result<NodeDoc, String> {
    let doc: NodeDoc =
        serde_json::from_slice(bytes).map_err(|e| format!("unreadable node document: {e}"))?;
    if doc.id != *id {
        return Err(format!("the document is for node {}", doc.id));
    }
    for c in &doc.record.children {
        if !doc.children.iter().any(|r| r.id == *c) {
            return Err(format!("child node {c} has no record in the document"));
        }
    }
    if doc
        .omitted
        .iter()
        .any(|d| doc.record.blobs.first() == Some(d))
    {
        return Err("the node's first blob is omitted".into());
    }
    let carried = carried_blobs(&doc);
    let layers: Vec<&Digest> = manifest.layers.iter().map(|d| &d.digest).collect();
    if layers != carried.iter().collect::<Vec<_>>() {
        return Err("the manifest's layers are not the blobs its document names".into());
    }
    Ok(doc)
}

/// `media_type` of a layer blob → a compression that decodes it (the level only matters to
/// encoders).
#[must_use]
pub fn decoder_for(media_type: &str) -> Option<crate::layer::Compression> {
    use crate::layer::Compression;
    [Compression::default(), Compression::gzip()]
        .into_iter()
        .find(|c| c.media_type() == media_type)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn id(b: u8) -> NodeId {
        NodeId::from_bytes([b; 32])
    }

    fn rec(kind: &str, blobs: &[&[u8]], children: Vec<NodeId>) -> NodeRecord {
        NodeRecord {
            kind: kind.into(),
            blobs: blobs.iter().map(|b| Digest::of_bytes(b)).collect(),
            children,
            meta: serde_json::json!({ "k": 1 }),
        }
    }

    fn layer_doc() -> NodeDoc {
        NodeDoc {
            id: id(1),
            record: rec("layer", &[b"f1", b"f2"], vec![id(2), id(3)]),
            children: vec![
                ChildRecord {
                    id: id(2),
                    record: rec("fragment", &[b"f1"], vec![]),
                },
                ChildRecord {
                    id: id(3),
                    record: rec("fragment", &[b"f2"], vec![]),
                },
            ],
            omitted: vec![],
        }
    }

    fn descs(doc: &NodeDoc) -> Vec<BlobDesc> {
        carried_blobs(doc)
            .into_iter()
            .map(|digest| BlobDesc {
                digest,
                size: 2,
                media_type: "application/vnd.oci.image.layer.v1.tar+zstd".into(),
            })
            .collect()
    }

    #[test]
    fn tags_are_valid_and_name_the_id() {
        let t = tag(&id(0xab));
        assert_eq!(t.len(), 69);
        assert!(t.starts_with("node-abab"));
        assert!(crate::registry::Reference::parse(&format!("h/r:{t}")).is_ok());
    }

    #[test]
    fn manifest_round_trips_and_is_deterministic() {
        let doc = layer_doc();
        let config = doc_bytes(&doc);
        let a = manifest_bytes(&doc, &config, &descs(&doc));
        assert_eq!(a, manifest_bytes(&doc.clone(), &config, &descs(&doc)));
        let text = String::from_utf8(a.clone()).unwrap();
        assert!(text.contains(r#""artifactType":"application/vnd.composer.node.v1+json""#));
        let m = parse_manifest(&a, &id(1)).unwrap();
        assert_eq!(m.config.digest, Digest::of_bytes(&config));
        assert_eq!(m.layers.len(), 2);
        assert_eq!(m.annotations[ANNOTATION_KIND], "layer");
        assert_eq!(parse_doc(&config, &id(1), &m).unwrap(), doc);
    }

    #[test]
    fn a_manifest_for_another_node_or_of_another_type_is_refused() {
        let doc = layer_doc();
        let config = doc_bytes(&doc);
        let bytes = manifest_bytes(&doc, &config, &descs(&doc));
        assert!(
            parse_manifest(&bytes, &id(9))
                .unwrap_err()
                .contains("annotation")
        );
        let other = String::from_utf8(bytes)
            .unwrap()
            .replace(NODE_MEDIA_TYPE, "application/vnd.oci.image.config.v1+json");
        assert!(parse_manifest(other.as_bytes(), &id(1)).is_err());
        assert!(parse_manifest(b"{}", &id(1)).is_err());
    }

    #[test]
    fn a_document_that_disagrees_with_its_manifest_is_refused() {
        let doc = layer_doc();
        let config = doc_bytes(&doc);
        let m = parse_manifest(&manifest_bytes(&doc, &config, &descs(&doc)), &id(1)).unwrap();
        // A child without its record.
        let mut d = doc.clone();
        d.children.pop();
        assert!(parse_doc(&doc_bytes(&d), &id(1), &m).is_err());
        // Layers that are not the document's blobs.
        let mut m2 = m.clone();
        m2.layers.reverse();
        assert!(parse_doc(&config, &id(1), &m2).is_err());
        // Another node's document.
        assert!(parse_doc(&config, &id(7), &m).is_err());
    }

    #[test]
    fn omitted_blobs_are_not_carried() {
        let archive = Digest::of_bytes(b"deb");
        let doc = NodeDoc {
            id: id(4),
            record: rec("deb-listing", &[b"listing", b"deb"], vec![]),
            children: vec![],
            omitted: vec![archive.clone()],
        };
        let carried = carried_blobs(&doc);
        assert_eq!(carried, vec![Digest::of_bytes(b"listing")]);
        let mut bad = doc.clone();
        bad.omitted = vec![Digest::of_bytes(b"listing")];
        let config = doc_bytes(&bad);
        let m = parse_manifest(&manifest_bytes(&bad, &config, &[]), &id(4)).unwrap();
        assert!(parse_doc(&config, &id(4), &m).is_err());
    }

    #[test]
    fn layer_media_types_map_to_decoders() {
        assert_eq!(
            decoder_for("application/vnd.oci.image.layer.v1.tar+gzip"),
            Some(crate::layer::Compression::gzip())
        );
        assert!(decoder_for("text/plain").is_none());
    }
}
