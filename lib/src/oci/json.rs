//! OCI image JSON (config, manifest, index, layout marker) as canonical bytes.
//!
//! Our own serde types instead of `oci-spec`: its maps are `HashMap`s, so its JSON key order
//! changes between processes (`shared/reference/crates.md`). Here every object is a struct
//! (fixed field order) or a `BTreeMap` (sorted keys), serialized compactly by one
//! serializer, so the same inputs always give the same bytes and digests. Pure.

use std::collections::BTreeMap;

use composer_store::Digest;
use serde::{Deserialize, Serialize};

use crate::recipe::{ImageSpec, Platform};

/// `application/vnd.oci.image.manifest.v1+json`.
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// `application/vnd.oci.image.index.v1+json`.
pub const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
/// `application/vnd.oci.image.config.v1+json`.
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
/// Annotation naming a tag in `index.json`.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// The default search path set when a recipe sets none (as Docker's official images do).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A content descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Descriptor {
    /// Media type.
    #[serde(rename = "mediaType")]
    pub media_type: String,
    /// sha256 digest.
    pub digest: Digest,
    /// Size in bytes.
    pub size: u64,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Platform (index entries).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<PlatformJson>,
}

/// Platform object of an index entry / config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlatformJson {
    /// `amd64`.
    pub architecture: String,
    /// `linux`.
    pub os: String,
    /// `v8`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl From<&Platform> for PlatformJson {
    fn from(p: &Platform) -> Self {
        Self {
            architecture: p.architecture.clone(),
            os: p.os.clone(),
            variant: p.variant.clone(),
        }
    }
}

/// Image config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageConfig {
    /// Creation time (the epoch, RFC 3339).
    pub created: String,
    /// Architecture.
    pub architecture: String,
    /// OS.
    pub os: String,
    /// Variant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// Runtime config.
    pub config: RunConfig,
    /// Layer diff_ids.
    pub rootfs: RootFs,
    /// One entry per layer.
    pub history: Vec<History>,
}

/// The `config` object of an image config.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RunConfig {
    /// `User`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// `ExposedPorts`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub exposed_ports: BTreeMap<String, Empty>,
    /// `Env`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    /// `Entrypoint`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    /// `Cmd`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    /// `Volumes`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub volumes: BTreeMap<String, Empty>,
    /// `WorkingDir`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// `Labels`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// `StopSignal`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
}

/// `{}`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Empty {}

/// `rootfs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootFs {
    /// Always `layers`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Uncompressed layer digests, bottom first.
    pub diff_ids: Vec<Digest>,
}

/// One history entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    /// The epoch.
    pub created: String,
    /// What made the layer.
    pub created_by: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// Image manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// 2.
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    /// Manifest media type.
    #[serde(rename = "mediaType")]
    pub media_type: String,
    /// Config descriptor.
    pub config: Descriptor,
    /// Layer descriptors, bottom first.
    pub layers: Vec<Descriptor>,
    /// `org.opencontainers.image.*` and recipe annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// Image index (`index.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Index {
    /// 2.
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    /// Index media type.
    #[serde(rename = "mediaType")]
    pub media_type: String,
    /// Manifests (one per tag).
    pub manifests: Vec<Descriptor>,
}

/// A layer as the config and manifest see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerRef {
    /// Layer name (history).
    pub name: String,
    /// Blob digest.
    pub digest: Digest,
    /// diff_id.
    pub diff_id: Digest,
    /// Blob size.
    pub size: u64,
    /// Media type.
    pub media_type: String,
}

/// Serializes any of the types above canonically.
///
/// # Panics
/// Never: these types contain only strings, integers, vectors and string-keyed maps.
#[must_use]
#[allow(clippy::expect_used)]
pub fn to_canonical<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("OCI JSON types always serialize")
}

/// Builds the image config for `spec` and its layers, created at `created` (RFC 3339).
#[must_use]
pub fn image_config(spec: &ImageSpec, layers: &[LayerRef], created: &str) -> ImageConfig {
    let c = &spec.config;
    let mut env: Vec<String> = Vec::new();
    if !c.env.iter().any(|(k, _)| k == "PATH") {
        env.push(format!("PATH={DEFAULT_PATH}"));
    }
    env.extend(c.env.iter().map(|(k, v)| format!("{k}={v}")));
    ImageConfig {
        created: created.to_string(),
        architecture: spec.platform.architecture.clone(),
        os: spec.platform.os.clone(),
        variant: spec.platform.variant.clone(),
        config: RunConfig {
            user: c.user.clone(),
            exposed_ports: c
                .exposed_ports
                .iter()
                .map(|p| (p.clone(), Empty {}))
                .collect(),
            env,
            entrypoint: c.entrypoint.clone(),
            cmd: c.cmd.clone(),
            volumes: c.volumes.iter().map(|v| (v.clone(), Empty {})).collect(),
            working_dir: c.workdir.clone(),
            labels: c.labels.clone(),
            stop_signal: c.stop_signal.clone(),
        },
        rootfs: RootFs {
            kind: "layers".into(),
            diff_ids: layers.iter().map(|l| l.diff_id.clone()).collect(),
        },
        history: layers
            .iter()
            .map(|l| History {
                created: created.to_string(),
                created_by: format!("composer: layer {}", l.name),
                comment: None,
            })
            .collect(),
    }
}

/// Builds the manifest.
#[must_use]
pub fn manifest(
    spec: &ImageSpec,
    config: Descriptor,
    layers: &[LayerRef],
    created: &str,
) -> Manifest {
    let mut annotations = spec.config.annotations.clone();
    annotations.insert(
        "org.opencontainers.image.created".into(),
        created.to_string(),
    );
    annotations.insert("org.opencontainers.image.title".into(), spec.name.clone());
    for (key, value) in [
        ("org.opencontainers.image.version", &spec.version),
        ("org.opencontainers.image.source", &spec.source),
        ("org.opencontainers.image.revision", &spec.revision),
    ] {
        if let Some(v) = value {
            annotations.insert(key.into(), v.clone());
        }
    }
    Manifest {
        schema_version: 2,
        media_type: MANIFEST_MEDIA_TYPE.into(),
        config,
        layers: layers
            .iter()
            .map(|l| Descriptor {
                media_type: l.media_type.clone(),
                digest: l.digest.clone(),
                size: l.size,
                annotations: BTreeMap::new(),
                platform: None,
            })
            .collect(),
        annotations,
    }
}

/// `index.json` with one entry per tag, each naming the same manifest.
#[must_use]
pub fn index(manifest: &Descriptor, tags: &[String], platform: &Platform) -> Index {
    tagged(manifest, tags, Some(platform.into()))
}

/// An `index.json` naming `target` once per tag, each entry with `platform`.
fn tagged(target: &Descriptor, tags: &[String], platform: Option<PlatformJson>) -> Index {
    Index {
        schema_version: 2,
        media_type: INDEX_MEDIA_TYPE.into(),
        manifests: tags
            .iter()
            .map(|t| Descriptor {
                annotations: BTreeMap::from([(REF_NAME.to_string(), t.clone())]),
                platform: platform.clone(),
                ..target.clone()
            })
            .collect(),
    }
}

/// The image index of a multi-platform image: one entry per platform's manifest (each
/// descriptor carries its `platform`), in the given (recipe) order.
#[must_use]
pub fn image_index(manifests: Vec<Descriptor>) -> Index {
    Index {
        schema_version: 2,
        media_type: INDEX_MEDIA_TYPE.into(),
        manifests,
    }
}

/// A layout's `index.json` that points at an image index: one entry per tag, each naming
/// `image_index` (as buildx and apko write a multi-platform layout).
#[must_use]
pub fn layout_index(image_index: &Descriptor, tags: &[String]) -> Index {
    tagged(image_index, tags, None)
}

/// The `oci-layout` file.
pub const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::recipe::{ImageSpec, RuntimeConfig};

    fn spec() -> ImageSpec {
        let config = RuntimeConfig {
            env: vec![("A".into(), "1".into())],
            labels: [
                ("z".to_string(), "1".to_string()),
                ("a".to_string(), "2".to_string()),
            ]
            .into(),
            exposed_ports: vec!["8080/tcp".into()],
            ..RuntimeConfig::default()
        };
        ImageSpec {
            name: "demo".into(),
            tags: vec!["1".into(), "latest".into()],
            platform: Platform::linux_amd64(),
            other_platforms: Vec::new(),
            epoch: Some(0),
            version: Some("1.0".into()),
            source: None,
            revision: None,
            recipe_digest: None,
            layers: vec![],
            config,
            debian: None,
            pypi: None,
            check: Default::default(),
        }
    }

    #[test]
    fn config_json_is_canonical_and_sorted() {
        let layer = LayerRef {
            name: "base".into(),
            digest: Digest::of_bytes(b"blob"),
            diff_id: Digest::of_bytes(b"tar"),
            size: 4,
            media_type: "m".into(),
        };
        let c = image_config(&spec(), &[layer], "1970-01-01T00:00:00Z");
        let json = String::from_utf8(to_canonical(&c)).unwrap();
        assert!(json.starts_with(r#"{"created":"1970-01-01T00:00:00Z","architecture":"amd64","os":"linux","config":{"ExposedPorts":{"8080/tcp":{}},"Env":["PATH=/usr/local/sbin"#), "{json}");
        assert!(json.contains(r#""Labels":{"a":"2","z":"1"}"#), "{json}");
        assert!(
            !json.contains('\n') && !json.contains("\": ") && !json.contains("\", "),
            "compact: no whitespace variance"
        );
        let back: ImageConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn index_has_one_ref_per_tag() {
        let d = Descriptor {
            media_type: MANIFEST_MEDIA_TYPE.into(),
            digest: Digest::of_bytes(b"m"),
            size: 1,
            annotations: BTreeMap::new(),
            platform: None,
        };
        let i = index(&d, &spec().tags, &Platform::linux_amd64());
        let refs: Vec<_> = i
            .manifests
            .iter()
            .map(|m| m.annotations[REF_NAME].as_str())
            .collect();
        assert_eq!(refs, ["1", "latest"]);
        let m = manifest(&spec(), d, &[], "t");
        assert_eq!(m.annotations["org.opencontainers.image.version"], "1.0");
        assert_eq!(m.annotations["org.opencontainers.image.title"], "demo");
    }
}
