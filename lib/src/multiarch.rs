//! Multi-platform images: one build per platform of the recipe, then one OCI image index.
//!
//! ```text
//! ImageSpec (platform "linux/amd64" "linux/arm64")
//!    ├─ for_platform(amd64) + its lock ──plan──build_plan──▶ BuiltImage (manifest, config)
//!    ├─ for_platform(arm64) + its lock ──plan──build_plan──▶ BuiltImage
//!    └─ image index (application/vnd.oci.image.index.v1+json, one descriptor per platform)
//!         ◀── the layout's index.json points at it, once per tag
//! ```
//!
//! Each platform is planned and built exactly as a single-platform image of that platform,
//! so its manifest and config digests are the ones a single-platform recipe gets. The
//! platforms are built one after the other on the same store: a fragment whose inputs do
//! not depend on the platform (an `Architecture: all` .deb, a `py3-none-any` wheel, files
//! items) has the same node id on every platform, so the second platform finds it in the
//! store and only concatenates it (its layer reports it as reused, not compressed). Each
//! build already runs its nodes on `opts.jobs` threads; building platforms concurrently
//! would compress those shared fragments twice. What does run across platforms at once is
//! the download: every platform's pinned files are fetched in one parallel batch first,
//! each file once.

use composer_store::{Digest, NodeId, NodeKey, NodeRecord, RootRecord, Store};

use crate::build::{BuildError, BuildOptions, BuiltImage, Inputs, build_plan, plan};
use crate::debian::install;
use crate::fetch::{Download, Fetcher};
use crate::layer::Compression;
use crate::lock::Lock;
use crate::oci::json::{self, Descriptor, INDEX_MEDIA_TYPE, MANIFEST_MEDIA_TYPE, to_canonical};
use crate::recipe::{ImageSpec, Platform};
use crate::report::Reporter;

/// Format version of the image-index node's key; bump when its output changes.
const INDEX_NODE_FORMAT: u32 = 1;

/// A multi-platform image in the store: each platform's image, and the index over them.
#[derive(Debug, Clone)]
pub struct BuiltIndex {
    /// Image name.
    pub name: String,
    /// Tags.
    pub tags: Vec<String>,
    /// Compression of the layers.
    pub compression: Compression,
    /// Each platform's image, in recipe order.
    pub images: Vec<(Platform, BuiltImage)>,
    /// The image index JSON bytes (`application/vnd.oci.image.index.v1+json`).
    pub image_index: Vec<u8>,
    /// The image index's digest: what a registry and `skopeo inspect --raw` see.
    pub index_digest: Digest,
    /// The layout's `index.json` bytes, pointing at the image index once per tag.
    pub index: Vec<u8>,
    /// The index node id (the store root `image-NAME` keeps it, and through it every
    /// platform's image).
    pub node: NodeId,
}

/// Builds `spec` once per `(platform, lock)` of `locks` (in that order; see
/// [`crate::pin::obtain_platforms`]) and writes the image index over them into the store.
///
/// # Errors
/// [`BuildError`] of the first platform that fails, prefixed with the platform.
pub fn build_platforms(
    store: &Store,
    spec: &ImageSpec,
    locks: &[(Platform, Lock)],
    fetcher: &Fetcher,
    opts: &BuildOptions,
    reporter: &dyn Reporter,
) -> Result<BuiltIndex, BuildError> {
    let _lock = store.lock_shared()?;
    prefetch(store, locks, fetcher, reporter)?;
    let mut images = Vec::with_capacity(locks.len());
    for (platform, lock) in locks {
        let one = spec.for_platform(platform);
        // A multi-platform build does not use a remote cache yet.
        let inputs = Inputs {
            lock: Some(lock),
            fetcher,
            cache: None,
        };
        let built = plan(store, &one, inputs, opts, reporter)
            .and_then(|p| build_plan(store, &p, opts, reporter))
            .map_err(|e| BuildError::Platform {
                platform: platform.to_string(),
                source: Box::new(e),
            })?;
        images.push((platform.clone(), built));
    }
    write_index(store, spec, opts.compression, images)
}

/// Downloads every platform's pinned files in one parallel batch, each file once (an
/// `Architecture: all` .deb or a `py3-none-any` wheel is in every platform's lock), so the
/// platforms' plans find them in the store instead of downloading platform after platform.
fn prefetch(
    store: &Store,
    locks: &[(Platform, Lock)],
    fetcher: &Fetcher,
    reporter: &dyn Reporter,
) -> Result<(), BuildError> {
    let mut downloads: Vec<Download> = Vec::new();
    for (_, lock) in locks {
        for d in &lock.debian {
            downloads.push(Download {
                what: install::label(d),
                url: d.url.clone(),
                sha256: install::deb_digest(d).map_err(BuildError::Install)?,
                size: Some(d.size),
            });
        }
        for w in &lock.pypi {
            downloads.push(Download {
                what: format!("{} {}", w.name, w.version),
                url: w.url.clone(),
                sha256: crate::pypi::install::wheel_digest(w).map_err(BuildError::Wheel)?,
                size: Some(w.size),
            });
        }
    }
    downloads.sort_by(|a, b| a.sha256.cmp(&b.sha256));
    downloads.dedup_by(|a, b| a.sha256 == b.sha256);
    if downloads.is_empty() {
        return Ok(());
    }
    reporter.fetching(downloads.len());
    fetcher
        .fetch_all(store, &downloads, &|d, fetched| {
            reporter.fetched(&d.what, fetched);
        })
        .map(|_| ())
        .map_err(|failures| BuildError::Fetch { failures })
}

/// Writes the image index over `images` and the layout's `index.json` into the store, and
/// keeps them (with every platform's image) under the root `image-NAME`.
///
/// # Errors
/// A store failure.
pub fn write_index(
    store: &Store,
    spec: &ImageSpec,
    compression: Compression,
    images: Vec<(Platform, BuiltImage)>,
) -> Result<BuiltIndex, BuildError> {
    let manifests = images
        .iter()
        .map(|(p, img)| Descriptor {
            media_type: MANIFEST_MEDIA_TYPE.into(),
            digest: img.manifest_digest.clone(),
            size: img.manifest.len() as u64,
            annotations: Default::default(),
            platform: Some(p.into()),
        })
        .collect();
    let image_index = to_canonical(&json::image_index(manifests));
    let (index_digest, index_size) = store.put_blob_bytes(&image_index)?;
    let desc = Descriptor {
        media_type: INDEX_MEDIA_TYPE.into(),
        digest: index_digest.clone(),
        size: index_size,
        annotations: Default::default(),
        platform: None,
    };
    let index = to_canonical(&json::layout_index(&desc, &spec.tags));
    let (layout_digest, _) = store.put_blob_bytes(&index)?;
    let mut key = NodeKey::new("image-index", INDEX_NODE_FORMAT);
    key.digest("image index", &index_digest)
        .digest("layout index", &layout_digest);
    let node = key.finish();
    let meta = serde_json::json!({
        "name": spec.name, "tags": spec.tags, "index": index_digest,
        "platforms": images.iter().map(|(p, _)| p.to_string()).collect::<Vec<_>>(),
    });
    store.put_node(
        &node,
        &NodeRecord {
            kind: "image-index".into(),
            blobs: vec![index_digest.clone(), layout_digest],
            children: images.iter().map(|(_, img)| img.node).collect(),
            meta: meta.clone(),
        },
    )?;
    store.set_root(
        &format!("image-{}", spec.name),
        &RootRecord {
            nodes: vec![node],
            blobs: vec![],
            meta,
        },
    )?;
    Ok(BuiltIndex {
        name: spec.name.clone(),
        tags: spec.tags.clone(),
        compression,
        images,
        image_index,
        index_digest,
        index,
        node,
    })
}
