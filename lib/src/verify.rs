//! `compose verify`: the pieces a rebuild-and-compare needs besides the build itself.
//!
//! [`import_inputs`] seeds a fresh store with the lock's downloaded files from another store,
//! each re-hashed while it is copied and accepted only if it matches the lock (so a
//! tampered input store cannot make a rebuild pass). [`compare`] checks a rebuilt image
//! against the one under test, digest by digest, and explains a difference with
//! [`crate::diff`] when both images can be read (or with the layer digests alone when one
//! cannot, as with a corrupted layer blob).

use std::io::Write as _;
use std::path::Path;

use composer_store::{Digest, Store, StoreError};
use serde::Serialize;

use crate::diff::{DiffOptions, DiffReport, diff};
use crate::lock::Lock;
use crate::oci::read::read_image;

/// Failures while importing inputs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// A store operation failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A lock entry carries an unusable hash.
    #[error("{0}")]
    Lock(String),
    /// Reading a blob of the input store failed.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The blob.
        path: std::path::PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

/// Copies every file the lock pins from `from` into `to`, re-verifying each against the
/// lock's sha256. Files `from` lacks (or holds corrupted) are left for the fetcher. Returns
/// how many were imported.
///
/// # Errors
/// [`VerifyError`] on store failures.
pub fn import_inputs(from: &Store, to: &Store, lock: &Lock) -> Result<usize, VerifyError> {
    let mut digests = Vec::new();
    for d in &lock.debian {
        digests.push(
            crate::debian::install::deb_digest(d).map_err(|e| VerifyError::Lock(e.to_string()))?,
        );
    }
    for w in &lock.pypi {
        digests.push(crate::pypi::install::wheel_digest(w).map_err(VerifyError::Lock)?);
    }
    let mut n = 0;
    for d in digests {
        if to.has_blob(&d) || !from.has_blob(&d) {
            continue;
        }
        let path = from.blob_path(&d);
        let mut f = from.open_blob(&d)?;
        let mut w = to.blob_writer()?;
        std::io::copy(&mut f, &mut w).map_err(|source| VerifyError::Io {
            path: path.clone(),
            source,
        })?;
        w.flush().map_err(|source| VerifyError::Io {
            path: path.clone(),
            source,
        })?;
        // commit() re-checks the digest: a blob altered in `from` is refused, not imported.
        if w.commit(Some(&d)).is_ok() {
            n += 1;
        }
    }
    Ok(n)
}

/// One layer compared.
#[derive(Debug, Clone, Serialize)]
pub struct LayerComparison {
    /// Position (bottom first).
    pub index: usize,
    /// Digest in the image under test.
    pub expected: Option<String>,
    /// Digest of the rebuild.
    pub rebuilt: Option<String>,
}

/// The outcome of comparing a rebuild with the image under test.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// True when the manifests (hence config and every layer) are identical.
    pub identical: bool,
    /// Manifest (or config, for a docker-archive) digest of the image under test.
    pub expected: String,
    /// Same, for the rebuild.
    pub rebuilt: String,
    /// Per-layer digests.
    pub layers: Vec<LayerComparison>,
    /// What differs, when both images could be read in full.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<DiffReport>,
    /// Why no file-level diff is given (a layer that cannot be read, e.g. corrupted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff_error: Option<String>,
}

/// Compares `image` (under test) with `rebuilt`.
///
/// # Errors
/// Either image cannot be read at all.
pub fn compare(image: &Path, rebuilt: &Path) -> Result<Comparison, crate::oci::read::ReadError> {
    let (a, b) = (read_image(image)?, read_image(rebuilt)?);
    let id = |v: &crate::oci::read::ImageView| -> String {
        v.manifest_digest
            .as_ref()
            .unwrap_or(&v.config_digest)
            .to_string()
    };
    // A docker-archive has no manifest digest: compare its config and layer diff_ids.
    let key = |v: &crate::oci::read::ImageView, i: usize| -> Option<String> {
        v.layers.get(i).map(|l| {
            l.digest
                .as_ref()
                .map_or_else(|| l.diff_id.to_string(), Digest::to_string)
        })
    };
    let same_kind = a.manifest_digest.is_some() == b.manifest_digest.is_some();
    let documents_equal = if same_kind && a.manifest_digest.is_some() {
        a.manifest_digest == b.manifest_digest
    } else {
        a.config_digest == b.config_digest
    };
    // The documents only claim digests: hash the bytes the image under test really holds.
    let held = match crate::oci::walk::layer_blob_digests(image, &a) {
        Ok(d) => d,
        Err(e) => {
            return Ok(Comparison {
                identical: false,
                expected: id(&a),
                rebuilt: id(&b),
                layers: Vec::new(),
                diff: None,
                diff_error: Some(e.to_string()),
            });
        }
    };
    let n = a.layers.len().max(b.layers.len());
    let layers: Vec<LayerComparison> = (0..n)
        .map(|i| LayerComparison {
            index: i,
            expected: held.get(i).map(ToString::to_string),
            rebuilt: key(&b, i),
        })
        .collect();
    let blobs_match = layers.iter().all(|l| l.expected == l.rebuilt)
        && held
            .iter()
            .enumerate()
            .all(|(i, d)| key(&a, i).as_deref() == Some(d.as_str()));
    let identical = documents_equal && blobs_match;
    let mut out = Comparison {
        identical,
        expected: id(&a),
        rebuilt: id(&b),
        layers,
        diff: None,
        diff_error: None,
    };
    if !identical {
        match (
            crate::inventory::read(image),
            crate::inventory::read(rebuilt),
        ) {
            (Ok(ia), Ok(ib)) => out.diff = Some(diff(&ia, &ib, DiffOptions::default())),
            (Err(e), _) | (_, Err(e)) => out.diff_error = Some(e.to_string()),
        }
    }
    Ok(out)
}
