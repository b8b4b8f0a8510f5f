//! Debian archives over the network: `InRelease` → OpenPGP signature → `Release` →
//! `Packages.xz` (size and sha256 checked against the signed Release) → package records.
//! Index files are cached in the store by their sha256, so an unchanged suite costs one
//! small InRelease download.

use std::io::Read;

use composer_store::{Digest, Store};
use rayon::prelude::*;

use super::index::IndexPackage;
use super::{control, pgp, release};
use crate::fetch::{Download, FetchError, Fetcher};
use crate::recipe::{DebianArchive, DebianSource};

/// Largest InRelease we accept (Debian's are ~150 KB).
const MAX_INRELEASE: u64 = 16 << 20;

/// Failures while loading an index; each names the suite and URL.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArchiveError {
    /// Download failure.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// The signature did not verify.
    #[error("{url}: {source}")]
    Signature {
        /// InRelease URL.
        url: String,
        /// Cause.
        #[source]
        source: pgp::SignatureError,
    },
    /// The Release file is unusable.
    #[error("{url}: {source}")]
    Release {
        /// InRelease URL.
        url: String,
        /// Cause.
        #[source]
        source: release::ReleaseError,
    },
    /// The suite does not publish an index we need.
    #[error(
        "{url}: the signed Release lists no {path}; check the suite, component and architecture"
    )]
    MissingIndex {
        /// InRelease URL.
        url: String,
        /// Index path.
        path: String,
    },
    /// A Packages file did not parse.
    #[error("{url}: {source}")]
    Packages {
        /// Packages URL.
        url: String,
        /// Cause.
        #[source]
        source: control::ControlError,
    },
    /// Reading the keyring or a cached index failed.
    #[error("cannot read {path}: {source}")]
    Io {
        /// Path.
        path: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// Store failure.
    #[error(transparent)]
    Store(#[from] composer_store::StoreError),
}

/// The Debian architecture name for an OCI platform architecture (and variant).
#[must_use]
pub fn debian_arch(oci_arch: &str, variant: Option<&str>) -> String {
    match (oci_arch, variant) {
        ("386", _) => "i386".into(),
        ("ppc64le", _) => "ppc64el".into(),
        ("arm", Some("v5")) => "armel".into(),
        ("arm", _) => "armhf".into(),
        (other, _) => other.into(),
    }
}

/// The snapshot.debian.org URL that served `archive_url` at `timestamp`
/// (`http://deb.debian.org/debian` + `20261101T000000Z` →
/// `https://snapshot.debian.org/archive/debian/20261101T000000Z`). The archive's name is the
/// last path segment of its URL (`debian`, `debian-security`, `debian-ports`).
#[must_use]
pub fn snapshot_url(archive_url: &str, timestamp: &str) -> String {
    let name = archive_url
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .filter(|s| !s.is_empty() && !s.contains(':'))
        .unwrap_or("debian");
    format!("https://snapshot.debian.org/archive/{name}/{timestamp}")
}

/// The base URL to fetch from: the archive, or its snapshot.
#[must_use]
pub fn effective_url(archive: &DebianArchive, snapshot: Option<&str>) -> String {
    match snapshot {
        Some(ts) => snapshot_url(&archive.url, ts),
        None => archive.url.trim_end_matches('/').to_string(),
    }
}

/// The keyring bytes: the recipe's file, or the shipped Debian archive keyring.
///
/// # Errors
/// The keyring file cannot be read.
pub fn keyring(src: &DebianSource) -> Result<Vec<u8>, ArchiveError> {
    match &src.keyring {
        Some(p) => std::fs::read(p).map_err(|source| ArchiveError::Io {
            path: p.display().to_string(),
            source,
        }),
        None => Ok(pgp::DEBIAN_ARCHIVE_KEYRING.to_vec()),
    }
}

/// Loads every package of every archive/suite/component for `arch` (`Architecture: all`
/// packages included), verified from the archive signature down. `now` (unix seconds) is
/// used for signature and Valid-Until checks; snapshots skip Valid-Until (as apt does).
///
/// # Errors
/// [`ArchiveError`] naming the suite and URL.
pub fn load_index(
    fetcher: &Fetcher,
    store: &Store,
    src: &DebianSource,
    arch: &str,
    now: i64,
) -> Result<Vec<IndexPackage>, ArchiveError> {
    parse_index(store, &fetch_index(fetcher, store, src, arch, now)?)
}

/// One verified `Packages.xz` of a source, stored but not parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexFile {
    /// Suite (`trixie`).
    pub suite: String,
    /// Component (`main`).
    pub component: String,
    /// The archive's URL as the recipe gives it.
    pub archive: String,
    /// sha256 of the `Packages.xz`, from the verified InRelease.
    pub sha256: Digest,
    /// Where it was downloaded from.
    pub url: String,
}

/// The first half of [`load_index`]: every suite's InRelease downloaded and verified (in
/// parallel), and each component's `Packages.xz` stored, verified against it. What the
/// index holds is then fixed by these digests.
///
/// # Errors
/// [`ArchiveError`] naming the suite and URL.
pub fn fetch_index(
    fetcher: &Fetcher,
    store: &Store,
    src: &DebianSource,
    arch: &str,
    now: i64,
) -> Result<Vec<IndexFile>, ArchiveError> {
    let keys = keyring(src)?;
    // Suites are fetched and verified in parallel; results keep recipe order.
    let suites: Vec<(&DebianArchive, &String)> = src
        .archives
        .iter()
        .flat_map(|a| a.suites.iter().map(move |s| (a, s)))
        .collect();
    let per_suite: Vec<Vec<IndexFile>> = suites
        .par_iter()
        .map(|(archive, suite)| load_suite(fetcher, store, src, &keys, archive, suite, arch, now))
        .collect::<Result<_, _>>()?;
    Ok(per_suite.into_iter().flatten().collect())
}

/// The second half of [`load_index`]: the packages of stored `files`, parsed (or read from
/// the parse cache), in order.
///
/// # Errors
/// [`ArchiveError`] naming the file.
pub fn parse_index(store: &Store, files: &[IndexFile]) -> Result<Vec<IndexPackage>, ArchiveError> {
    let per_file: Vec<Vec<IndexPackage>> = files
        .par_iter()
        .map(|f| {
            if let Some(pkgs) =
                cached_packages(store, &f.sha256, &f.suite, &f.component, &f.archive)
            {
                return Ok(pkgs);
            }
            let blob = store.open_blob(&f.sha256)?;
            let mut text = String::new();
            liblzma::read::XzDecoder::new(blob)
                .read_to_string(&mut text)
                .map_err(|source| ArchiveError::Io {
                    path: f.url.clone(),
                    source,
                })?;
            let pkgs = control::packages_from_index(&text, &f.suite, &f.component, &f.archive)
                .map_err(|source| ArchiveError::Packages {
                    url: f.url.clone(),
                    source,
                })?;
            cache_packages(store, &f.sha256, &f.suite, &f.component, &f.archive, &pkgs)?;
            Ok(pkgs)
        })
        .collect::<Result<_, ArchiveError>>()?;
    Ok(per_file.into_iter().flatten().collect())
}

/// One suite: InRelease verified, then each component's Packages.xz stored.
#[allow(clippy::too_many_arguments)]
fn load_suite(
    fetcher: &Fetcher,
    store: &Store,
    src: &DebianSource,
    keys: &[u8],
    archive: &DebianArchive,
    suite: &str,
    arch: &str,
    now: i64,
) -> Result<Vec<IndexFile>, ArchiveError> {
    let base = effective_url(archive, src.snapshot.as_deref());
    let mut all = Vec::new();
    let url = format!("{base}/dists/{suite}/InRelease");
    let inrelease = fetcher.get_bytes(&format!("InRelease of {suite}"), &url, MAX_INRELEASE)?;
    let payload =
        pgp::verify_inrelease(&inrelease, keys, now).map_err(|source| ArchiveError::Signature {
            url: url.clone(),
            source,
        })?;
    let text = String::from_utf8_lossy(&payload);
    let rel = release::parse_release(&text).map_err(|source| ArchiveError::Release {
        url: url.clone(),
        source,
    })?;
    if src.snapshot.is_none() {
        rel.check_valid_at(now)
            .map_err(|source| ArchiveError::Release {
                url: url.clone(),
                source,
            })?;
    }
    store.put_blob_bytes(&inrelease)?;
    for component in &archive.components {
        let path = release::packages_path(component, arch, "xz");
        let entry = rel
            .index_entry(&path)
            .ok_or_else(|| ArchiveError::MissingIndex {
                url: url.clone(),
                path: path.clone(),
            })?;
        let sha256: Digest =
            format!("sha256:{}", entry.sha256)
                .parse()
                .map_err(|_| ArchiveError::MissingIndex {
                    url: url.clone(),
                    path: path.clone(),
                })?;
        let packages_url = format!("{base}/dists/{suite}/{path}");
        fetcher.fetch_to_store(
            store,
            &Download {
                what: format!("{suite}/{component} Packages.xz"),
                url: packages_url.clone(),
                sha256: sha256.clone(),
                size: Some(entry.size),
            },
        )?;
        all.push(IndexFile {
            suite: suite.to_string(),
            component: component.clone(),
            archive: archive.url.clone(),
            sha256,
            url: packages_url,
        });
    }
    Ok(all)
}

/// Bumped when [`IndexPackage`] or the Packages parser changes.
const PARSED_INDEX_VERSION: u32 = 1;

/// The node caching the parsed records of one verified Packages.xz.
fn parsed_index_id(
    xz: &Digest,
    suite: &str,
    component: &str,
    archive: &str,
) -> composer_store::NodeId {
    let mut k = composer_store::NodeKey::new("packages-index", PARSED_INDEX_VERSION);
    k.digest("packages-xz", xz)
        .str("suite", suite)
        .str("component", component)
        .str("archive", archive);
    k.finish()
}

/// The parsed records of a Packages.xz seen before (re-parsing ~70k stanzas costs a second);
/// `None` when not cached or unreadable (then the caller parses the verified file again).
fn cached_packages(
    store: &Store,
    xz: &Digest,
    suite: &str,
    component: &str,
    archive: &str,
) -> Option<Vec<IndexPackage>> {
    let rec = store
        .get_node(&parsed_index_id(xz, suite, component, archive))
        .ok()??;
    let blob = rec.blobs.first()?;
    let bytes = store.read_blob(blob).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn cache_packages(
    store: &Store,
    xz: &Digest,
    suite: &str,
    component: &str,
    archive: &str,
    pkgs: &[IndexPackage],
) -> Result<(), ArchiveError> {
    let json = serde_json::to_vec(pkgs).map_err(|e| ArchiveError::Io {
        path: format!("{suite}/{component} index cache"),
        source: std::io::Error::other(e),
    })?;
    let (blob, _) = store.put_blob_bytes(&json)?;
    store.put_node(
        &parsed_index_id(xz, suite, component, archive),
        &composer_store::NodeRecord {
            kind: "packages-index".into(),
            blobs: vec![blob, xz.clone()],
            children: vec![],
            meta: serde_json::json!({ "suite": suite, "component": component, "packages": pkgs.len() }),
        },
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_urls_keep_the_archive_name() {
        assert_eq!(
            snapshot_url("http://deb.debian.org/debian", "20261101T000000Z"),
            "https://snapshot.debian.org/archive/debian/20261101T000000Z"
        );
        assert_eq!(
            snapshot_url("http://deb.debian.org/debian-security/", "20261101T000000Z"),
            "https://snapshot.debian.org/archive/debian-security/20261101T000000Z"
        );
        let a = DebianArchive {
            url: "http://deb.debian.org/debian/".into(),
            suites: vec!["trixie".into()],
            components: vec!["main".into()],
        };
        assert_eq!(effective_url(&a, None), "http://deb.debian.org/debian");
    }

    #[test]
    fn oci_arches_map_to_debian_names() {
        assert_eq!(debian_arch("amd64", None), "amd64");
        assert_eq!(debian_arch("arm64", Some("v8")), "arm64");
        assert_eq!(debian_arch("arm", Some("v7")), "armhf");
        assert_eq!(debian_arch("ppc64le", None), "ppc64el");
        assert_eq!(debian_arch("386", None), "i386");
    }
}
