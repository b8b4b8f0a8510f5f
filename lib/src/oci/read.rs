//! Reading an image back (layout directory, oci-archive or docker-archive) for `inspect`,
//! `diff` and `audit`.
//!
//! Only small JSON documents are read into memory; layer blobs are never read, only sized.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use composer_store::Digest;
use serde::Serialize;

use super::json::{ImageConfig, Index, Manifest, REF_NAME};

/// Largest JSON document we read (manifests and configs are kilobytes).
const MAX_JSON: u64 = 16 << 20;

/// What `inspect` shows.
#[derive(Debug, Clone, Serialize)]
pub struct ImageView {
    /// `oci`, `oci-archive` or `docker-archive`.
    pub format: &'static str,
    /// Tags found (ref names / RepoTags).
    pub tags: Vec<String>,
    /// Manifest digest (OCI formats).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest_digest: Option<Digest>,
    /// The manifest (OCI formats).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest: Option<Manifest>,
    /// Config digest.
    pub config_digest: Digest,
    /// The config.
    pub config: ImageConfig,
    /// Layers bottom first.
    pub layers: Vec<LayerView>,
    /// Of a multi-platform image (its `index.json` points at an image index): the platform
    /// read, and every platform of the index in order. `None` for a single-platform image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platforms: Option<PlatformsView>,
}

/// The platforms of a multi-platform image.
#[derive(Debug, Clone, Serialize)]
pub struct PlatformsView {
    /// The platform this view shows (`linux/arm64`).
    pub selected: String,
    /// The image index's digest.
    pub index_digest: Digest,
    /// Every platform of the image index, with its manifest digest, in index order.
    pub all: Vec<(String, Digest)>,
}

/// One layer as inspected.
#[derive(Debug, Clone, Serialize)]
pub struct LayerView {
    /// Blob digest (OCI formats; `None` for a docker-archive).
    pub digest: Option<Digest>,
    /// The blob's path inside the layout or archive (`blobs/sha256/…`, `…/layer.tar`).
    pub blob: String,
    /// diff_id from the config.
    pub diff_id: Digest,
    /// Blob size (compressed for OCI).
    pub size: u64,
    /// Media type (OCI).
    pub media_type: Option<String>,
    /// History `created_by`.
    pub created_by: Option<String>,
}

/// Inspection failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// I/O.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// Path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// A multi-platform image where one platform's image is expected, or a platform it
    /// does not have.
    #[error("{} is a multi-platform image ({}){}", path.display(), platforms.join(", "), match wanted {
        Some(w) => format!(" without {w}"),
        None => "; this command reads one platform's image: build that platform alone (`compose build --platform P`), or use `compose inspect` to list the platforms".to_owned(),
    })]
    MultiPlatform {
        /// Path.
        path: PathBuf,
        /// The platforms the image has.
        platforms: Vec<String>,
        /// The platform asked for, when it is missing.
        wanted: Option<String>,
    },
    /// Malformed content.
    #[error("{}: {what}", path.display())]
    Invalid {
        /// Path.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
}

/// Small files of an image, by path inside the layout/archive, plus sizes of big ones.
struct Files {
    path: PathBuf,
    small: BTreeMap<String, Vec<u8>>,
    sizes: BTreeMap<String, u64>,
}

impl Files {
    fn get(&self, name: &str) -> Result<&[u8], ReadError> {
        self.small
            .get(name)
            .map(Vec::as_slice)
            .ok_or_else(|| ReadError::Invalid {
                path: self.path.clone(),
                what: format!("missing {name}"),
            })
    }
    fn json<T: serde::de::DeserializeOwned>(&self, name: &str) -> Result<T, ReadError> {
        serde_json::from_slice(self.get(name)?).map_err(|e| ReadError::Invalid {
            path: self.path.clone(),
            what: format!("{name}: {e}"),
        })
    }
}

/// Reads the image at `path` (a layout dir, an oci-archive or a docker-archive).
///
/// # Errors
/// [`ReadError`] naming the path.
pub fn read_image(path: &Path) -> Result<ImageView, ReadError> {
    read_image_for(path, None)
}

/// Reads the image at `path`; of a multi-platform image, the image of `platform`
/// (`linux/arm64`). `None` reads a single-platform image and refuses a multi-platform one
/// with [`ReadError::MultiPlatform`], which lists its platforms.
///
/// # Errors
/// [`ReadError`] naming the path.
pub fn read_image_for(path: &Path, platform: Option<&str>) -> Result<ImageView, ReadError> {
    let ioe = |source| ReadError::Io {
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(ioe)?;
    let files = if meta.is_dir() {
        read_dir(path)?
    } else {
        read_tar(path)?
    };
    if files.small.contains_key("manifest.json") && !files.small.contains_key("index.json") {
        docker_view(&files)
    } else {
        oci_view(
            &files,
            if meta.is_dir() { "oci" } else { "oci-archive" },
            platform,
        )
    }
}

fn read_dir(dir: &Path) -> Result<Files, ReadError> {
    let mut files = Files {
        path: dir.to_path_buf(),
        small: BTreeMap::new(),
        sizes: BTreeMap::new(),
    };
    for name in ["oci-layout", "index.json"] {
        let p = dir.join(name);
        if p.is_file() {
            files.small.insert(name.into(), read_small(&p)?);
        }
    }
    let blobs = dir.join("blobs/sha256");
    let entries = std::fs::read_dir(&blobs).map_err(|source| ReadError::Io {
        path: blobs.clone(),
        source,
    })?;
    for e in entries {
        let e = e.map_err(|source| ReadError::Io {
            path: blobs.clone(),
            source,
        })?;
        let name = format!("blobs/sha256/{}", e.file_name().to_string_lossy());
        let len = e
            .metadata()
            .map_err(|source| ReadError::Io {
                path: e.path(),
                source,
            })?
            .len();
        files.sizes.insert(name.clone(), len);
        if len <= MAX_JSON && looks_like_json(&e.path()) {
            files.small.insert(name, read_small(&e.path())?);
        }
    }
    Ok(files)
}

fn looks_like_json(p: &Path) -> bool {
    let mut b = [0u8; 1];
    std::fs::File::open(p)
        .and_then(|mut f| f.read_exact(&mut b))
        .map(|()| b[0] == b'{' || b[0] == b'[')
        .unwrap_or(false)
}

fn read_small(p: &Path) -> Result<Vec<u8>, ReadError> {
    std::fs::read(p).map_err(|source| ReadError::Io {
        path: p.to_path_buf(),
        source,
    })
}

/// The name of a member of an image archive as the layout spells it (`blobs/sha256/…`,
/// `index.json`), whatever the writer prefixed (`./`). The one place archive member names
/// are normalized: reading, walking and pushing an archive all match names this way.
///
/// # Errors
/// The member's name cannot be decoded.
pub fn member_name<R: Read>(e: &tar::Entry<'_, R>) -> std::io::Result<String> {
    Ok(e.path()?
        .to_string_lossy()
        .trim_start_matches("./")
        .to_string())
}

fn read_tar(path: &Path) -> Result<Files, ReadError> {
    let ioe = |source| ReadError::Io {
        path: path.to_path_buf(),
        source,
    };
    let f = std::fs::File::open(path).map_err(ioe)?;
    let mut ar = tar::Archive::new(std::io::BufReader::new(f));
    let mut files = Files {
        path: path.to_path_buf(),
        small: BTreeMap::new(),
        sizes: BTreeMap::new(),
    };
    for e in ar.entries().map_err(ioe)? {
        let mut e = e.map_err(ioe)?;
        let name = member_name(&e).map_err(ioe)?;
        let size = e.size();
        files.sizes.insert(name.clone(), size);
        let json_name = name.ends_with(".json")
            || name == "oci-layout"
            || name == "repositories"
            || name.starts_with("blobs/");
        if json_name && size <= MAX_JSON && !name.ends_with("/layer.tar") {
            let mut buf = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
            e.read_to_end(&mut buf).map_err(ioe)?;
            if buf.first().is_some_and(|b| *b == b'{' || *b == b'[') || !name.starts_with("blobs/")
            {
                files.small.insert(name, buf);
            }
        }
    }
    Ok(files)
}

/// `os/arch[/variant]` of an index entry.
fn platform_name(d: &super::json::Descriptor) -> String {
    d.platform.as_ref().map_or_else(
        || "unknown".to_owned(),
        |p| match &p.variant {
            Some(v) => format!("{}/{}/{v}", p.os, p.architecture),
            None => format!("{}/{}", p.os, p.architecture),
        },
    )
}

fn oci_view(
    files: &Files,
    format: &'static str,
    platform: Option<&str>,
) -> Result<ImageView, ReadError> {
    let index: Index = files.json("index.json")?;
    let first = index.manifests.first().ok_or_else(|| ReadError::Invalid {
        path: files.path.clone(),
        what: "index.json lists no manifest".into(),
    })?;
    let tags = index
        .manifests
        .iter()
        .filter_map(|m| m.annotations.get(REF_NAME).cloned())
        .collect();
    let mut platforms = None;
    let mut first = first.clone();
    if first.media_type == super::json::INDEX_MEDIA_TYPE {
        let image_index: Index = files.json(&format!("blobs/sha256/{}", first.digest.hex()))?;
        let all: Vec<(String, Digest)> = image_index
            .manifests
            .iter()
            .map(|m| (platform_name(m), m.digest.clone()))
            .collect();
        let names = || all.iter().map(|(p, _)| p.clone()).collect();
        let Some(wanted) = platform else {
            return Err(ReadError::MultiPlatform {
                path: files.path.clone(),
                platforms: names(),
                wanted: None,
            });
        };
        let Some(chosen) = image_index
            .manifests
            .iter()
            .find(|m| platform_name(m) == wanted)
        else {
            return Err(ReadError::MultiPlatform {
                path: files.path.clone(),
                platforms: names(),
                wanted: Some(wanted.to_owned()),
            });
        };
        platforms = Some(PlatformsView {
            selected: wanted.to_owned(),
            index_digest: first.digest.clone(),
            all,
        });
        first = chosen.clone();
    }
    let manifest: Manifest = files.json(&format!("blobs/sha256/{}", first.digest.hex()))?;
    let config: ImageConfig =
        files.json(&format!("blobs/sha256/{}", manifest.config.digest.hex()))?;
    let layers = manifest
        .layers
        .iter()
        .enumerate()
        .map(|(i, l)| LayerView {
            digest: Some(l.digest.clone()),
            blob: format!("blobs/sha256/{}", l.digest.hex()),
            diff_id: config
                .rootfs
                .diff_ids
                .get(i)
                .cloned()
                .unwrap_or_else(|| l.digest.clone()),
            size: files
                .sizes
                .get(&format!("blobs/sha256/{}", l.digest.hex()))
                .copied()
                .unwrap_or(l.size),
            media_type: Some(l.media_type.clone()),
            created_by: config.history.get(i).map(|h| h.created_by.clone()),
        })
        .collect();
    Ok(ImageView {
        format,
        tags,
        manifest_digest: Some(first.digest.clone()),
        config_digest: manifest.config.digest.clone(),
        manifest: Some(manifest),
        config,
        layers,
        platforms,
    })
}

fn docker_view(files: &Files) -> Result<ImageView, ReadError> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Entry {
        config: String,
        #[serde(default)]
        repo_tags: Vec<String>,
        layers: Vec<String>,
    }
    let entries: Vec<Entry> = files.json("manifest.json")?;
    let e = entries.first().ok_or_else(|| ReadError::Invalid {
        path: files.path.clone(),
        what: "manifest.json is empty".into(),
    })?;
    let config_bytes = files.get(&e.config)?;
    let config: ImageConfig = files.json(&e.config)?;
    let layers = e
        .layers
        .iter()
        .enumerate()
        .map(|(i, l)| LayerView {
            digest: None,
            blob: l.trim_start_matches("./").to_string(),
            diff_id: config
                .rootfs
                .diff_ids
                .get(i)
                .cloned()
                .unwrap_or_else(|| Digest::of_bytes(l.as_bytes())),
            size: files.sizes.get(l).copied().unwrap_or(0),
            media_type: None,
            created_by: config.history.get(i).map(|h| h.created_by.clone()),
        })
        .collect();
    Ok(ImageView {
        format: "docker-archive",
        tags: e.repo_tags.clone(),
        manifest_digest: None,
        manifest: None,
        config_digest: Digest::of_bytes(config_bytes),
        config,
        layers,
        platforms: None,
    })
}
