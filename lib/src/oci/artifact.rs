//! Attaching an artifact (an SBOM) to an image in an OCI layout directory, as OCI 1.1 does:
//! an artifact manifest whose `subject` is the image manifest, its `artifactType` the
//! document's media type, the empty config, and one layer holding the document. The
//! artifact manifest is added to `index.json` after the image, so tools that read the first
//! manifest (or a tag) still see the image, and referrers-aware tools find the artifact.

use std::path::Path;

use composer_store::Digest;
use serde_json::{Value, json};

use super::read::ReadError;

/// The OCI empty descriptor's content (`application/vnd.oci.empty.v1+json`).
const EMPTY: &[u8] = b"{}";

/// Attaches `document` (of `media_type`) to the image manifest `subject` in the layout at
/// `dir`. Replaces an earlier artifact of the same type for the same subject. Returns the
/// artifact manifest's digest.
///
/// # Errors
/// [`ReadError`] naming the file that could not be read or written.
pub fn attach(
    dir: &Path,
    subject: &Digest,
    media_type: &str,
    document: &[u8],
    annotations: &[(&str, &str)],
) -> Result<Digest, ReadError> {
    let index_path = dir.join("index.json");
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ReadError::Io { path, source }
    };
    let bytes = std::fs::read(&index_path).map_err(io(&index_path))?;
    let mut index: Value = serde_json::from_slice(&bytes).map_err(|e| ReadError::Invalid {
        path: index_path.clone(),
        what: e.to_string(),
    })?;
    let manifests = index
        .get_mut("manifests")
        .and_then(Value::as_array_mut)
        .ok_or_else(|| ReadError::Invalid {
            path: index_path.clone(),
            what: "no manifests array".into(),
        })?;
    let subject_desc = manifests
        .iter()
        .find(|m| m.get("digest").and_then(Value::as_str) == Some(subject.as_str()))
        .cloned()
        .ok_or_else(|| ReadError::Invalid {
            path: index_path.clone(),
            what: format!("the image manifest {subject} is not in the index"),
        })?;
    let put = |b: &[u8]| -> Result<Digest, ReadError> {
        let d = Digest::of_bytes(b);
        let p = dir.join("blobs/sha256").join(d.hex());
        if !p.is_file() {
            let tmp = p.with_extension("tmp");
            std::fs::write(&tmp, b).map_err(io(&tmp))?;
            std::fs::rename(&tmp, &p).map_err(io(&p))?;
        }
        Ok(d)
    };
    let doc_digest = put(document)?;
    let empty_digest = put(EMPTY)?;
    let mut ann = serde_json::Map::new();
    for (k, v) in annotations {
        ann.insert((*k).to_string(), Value::String((*v).to_string()));
    }
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": media_type,
        "config": {
            "mediaType": "application/vnd.oci.empty.v1+json",
            "digest": empty_digest,
            "size": EMPTY.len(),
            "data": "e30=",
        },
        "layers": [{
            "mediaType": media_type,
            "digest": doc_digest,
            "size": document.len(),
        }],
        "subject": {
            "mediaType": subject_desc.get("mediaType").cloned().unwrap_or(Value::Null),
            "digest": subject.as_str(),
            "size": subject_desc.get("size").cloned().unwrap_or(Value::Null),
        },
        "annotations": ann,
    });
    let mbytes = serde_json::to_vec(&manifest).map_err(|e| ReadError::Invalid {
        path: index_path.clone(),
        what: e.to_string(),
    })?;
    let mdigest = put(&mbytes)?;
    // Drop an earlier artifact of this type (its blobs stay until the next export prunes
    // them), then add this one.
    manifests.retain(|m| m.get("artifactType").and_then(Value::as_str) != Some(media_type));
    manifests.push(json!({
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": media_type,
        "digest": mdigest,
        "size": mbytes.len(),
    }));
    let out = serde_json::to_vec(&index).map_err(|e| ReadError::Invalid {
        path: index_path.clone(),
        what: e.to_string(),
    })?;
    let tmp = dir.join("index.json.tmp");
    std::fs::write(&tmp, &out).map_err(io(&tmp))?;
    std::fs::rename(&tmp, &index_path).map_err(io(&index_path))?;
    Ok(mdigest)
}
