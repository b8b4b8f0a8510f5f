//! PyPI over the network, for one image: project pages (PEP 691 JSON, PEP 503 HTML),
//! core metadata (PEP 658 `.metadata` files when the index serves them, else the wheel's own
//! `METADATA`), the best wheel for the image, and the resolver's [`Provider`].
//!
//! Every downloaded wheel and metadata file is checked against the sha256 the index gave
//! before it is read. Pages are fetched once per run, into a [`PageCache`] that does not
//! depend on the image's target, so it can be filled before the target is known (while the
//! Debian half resolves).

use std::collections::BTreeMap;
use std::io::Read;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use composer_store::{Digest, Store};
use pep440_rs::{Version, VersionSpecifiers};

use super::filename::{WheelFilename, is_sdist, normalize_name};
use super::index::{ACCEPT, ProjectFile, parse_page, project_url};
use super::metadata::{CoreMetadata, parse_metadata};
use super::resolve::{Candidate, Provider, ProviderError, Requires};
use super::target::Target;
use crate::fetch::{Download, Fetcher};
use crate::recipe::{PypiIndex, PypiSource};

/// Largest project page we read (PyPI's biggest JSON pages are tens of MB).
const MAX_PAGE: u64 = 256 << 20;
/// Largest `.metadata` file.
const MAX_METADATA: u64 = 16 << 20;

/// The default index.
pub const DEFAULT_INDEX: &str = "https://pypi.org/simple";

/// One wheel chosen for a version.
#[derive(Debug, Clone)]
pub struct ChosenWheel {
    /// The index entry.
    pub file: ProjectFile,
    /// Its parsed name.
    pub name: WheelFilename,
    /// The index it came from.
    pub index: String,
}

/// A PyPI client bound to one image's target and sources.
pub struct PypiClient<'a> {
    fetcher: &'a Fetcher,
    store: &'a Store,
    indexes: Vec<PypiIndex>,
    target: &'a Target,
    pages: Arc<PageCache>,
    metadata: Mutex<BTreeMap<(String, String), Arc<CoreMetadata>>>,
}

/// Parsed project pages by URL, each fetched once even when several threads ask at the same
/// time (a failure is remembered too: it was already retried). Independent of the target.
#[derive(Default)]
pub struct PageCache {
    pages: crate::once::OnceMap<String, Result<Arc<Vec<ProjectFile>>, String>>,
}

impl PageCache {
    /// The files of project `name` on `index`.
    ///
    /// # Errors
    /// Download or parse failures, naming the URL.
    pub fn files(
        &self,
        fetcher: &Fetcher,
        index: &str,
        name: &str,
    ) -> Result<Arc<Vec<ProjectFile>>, ProviderError> {
        let n = normalize_name(name);
        let url = project_url(index, &n);
        self.pages
            .get_or_init(&url, || {
                let (body, content_type) = fetcher
                    .get_page(&format!("index page of {n}"), &url, ACCEPT, MAX_PAGE)
                    .map_err(|e| e.to_string())?;
                parse_page(&url, &content_type, &body)
                    .map(Arc::new)
                    .map_err(|e| e.to_string())
            })
            .map_err(perr)
    }

    /// Fetches the pages of `names` (on the index `source` assigns each) concurrently, on
    /// up to 8 connections, so a later resolution finds them here. Errors are left for the
    /// resolver to report.
    pub fn warm(&self, fetcher: &Fetcher, source: Option<&PypiSource>, names: &[String]) {
        use rayon::prelude::*;
        let indexes = indexes_of(source);
        // Network-bound: more requests in flight than cores.
        let Ok(pool) = rayon::ThreadPoolBuilder::new().num_threads(8).build() else {
            return;
        };
        pool.install(|| {
            names.par_iter().for_each(|name| {
                let _ = self.files(fetcher, index_of(&indexes, name), name);
            });
        });
    }
}

/// The indexes of `source`, with the default index last when none is unrestricted.
fn indexes_of(source: Option<&PypiSource>) -> Vec<PypiIndex> {
    let mut indexes = source.map(|s| s.indexes.clone()).unwrap_or_default();
    if !indexes.iter().any(|i| i.only.is_empty()) {
        indexes.push(PypiIndex {
            url: DEFAULT_INDEX.into(),
            only: Vec::new(),
        });
    }
    indexes
}

/// The index that serves `name`: the one that pins it, else the first unrestricted one.
fn index_of<'i>(indexes: &'i [PypiIndex], name: &str) -> &'i str {
    let n = normalize_name(name);
    indexes
        .iter()
        .find(|i| i.only.iter().any(|o| normalize_name(o) == n))
        .or_else(|| indexes.iter().find(|i| i.only.is_empty()))
        .map_or(DEFAULT_INDEX, |i| i.url.as_str())
}

fn perr(message: String) -> ProviderError {
    ProviderError {
        message,
        source: None,
    }
}

impl<'a> PypiClient<'a> {
    /// A client for `target`, reading `source` (or the default index).
    #[must_use]
    pub fn new(
        fetcher: &'a Fetcher,
        store: &'a Store,
        source: Option<&PypiSource>,
        target: &'a Target,
    ) -> Self {
        Self::with_pages(fetcher, store, source, target, Arc::default())
    }

    /// A client that reads project pages through `pages` (filled earlier, or shared).
    #[must_use]
    pub fn with_pages(
        fetcher: &'a Fetcher,
        store: &'a Store,
        source: Option<&PypiSource>,
        target: &'a Target,
        pages: Arc<PageCache>,
    ) -> Self {
        Self {
            fetcher,
            store,
            indexes: indexes_of(source),
            target,
            pages,
            metadata: Mutex::new(BTreeMap::new()),
        }
    }

    /// The index that serves `name`: the one that pins it, else the default.
    #[must_use]
    pub fn index_for(&self, name: &str) -> &str {
        index_of(&self.indexes, name)
    }

    /// Every file of project `name` on its index.
    ///
    /// # Errors
    /// Download or parse failures, naming the URL.
    pub fn files(&self, name: &str) -> Result<Arc<Vec<ProjectFile>>, ProviderError> {
        self.pages.files(self.fetcher, self.index_for(name), name)
    }

    /// The best wheel of `name` at `version` for the image: the highest tag priority;
    /// among equals, the lexically first file name (so the choice never depends on page order).
    ///
    /// # Errors
    /// The project page cannot be read.
    pub fn best_wheel(
        &self,
        name: &str,
        version: &Version,
    ) -> Result<Option<ChosenWheel>, ProviderError> {
        let files = self.files(name)?;
        let mut best: Option<(usize, &ProjectFile, WheelFilename)> = None;
        for f in files.iter() {
            let Ok(w) = WheelFilename::from_str(&f.filename) else {
                continue;
            };
            if &w.version != version {
                continue;
            }
            let Some(prio) = self.target.tag_priority(&w) else {
                continue;
            };
            let better = match &best {
                None => true,
                Some((p, bf, _)) => prio < *p || (prio == *p && f.filename < bf.filename),
            };
            if better {
                best = Some((prio, f, w));
            }
        }
        Ok(best.map(|(_, f, w)| ChosenWheel {
            file: f.clone(),
            name: w,
            index: self.index_for(name).to_string(),
        }))
    }

    /// Core metadata of `name` at `version`, from its best wheel.
    ///
    /// # Errors
    /// No compatible wheel, a download/verification failure, or unparsable metadata.
    pub fn metadata(
        &self,
        name: &str,
        version: &Version,
    ) -> Result<Arc<CoreMetadata>, ProviderError> {
        let key = (normalize_name(name), version.to_string());
        if let Some(m) = self
            .metadata
            .lock()
            .map_err(|_| perr("metadata cache poisoned".into()))?
            .get(&key)
        {
            return Ok(Arc::clone(m));
        }
        let wheel = self.best_wheel(name, version)?.ok_or_else(|| {
            perr(format!(
                "{name} {version}: no wheel compatible with the image"
            ))
        })?;
        let text = match &wheel.file.core_metadata {
            Some(meta) => {
                let url = format!("{}.metadata", wheel.file.url);
                let bytes = self
                    .fetcher
                    .get_bytes(
                        &format!("metadata of {}", wheel.file.filename),
                        &url,
                        MAX_METADATA,
                    )
                    .map_err(|e| ProviderError {
                        message: e.to_string(),
                        source: Some(Box::new(e)),
                    })?;
                if let Some(want) = &meta.sha256 {
                    let got = Digest::of_bytes(&bytes);
                    if got.hex() != want {
                        return Err(perr(format!(
                            "{url} does not match the index's hash: expected sha256:{want}, got {got}"
                        )));
                    }
                }
                String::from_utf8(bytes).map_err(|_| perr(format!("{url} is not UTF-8")))?
            }
            None => self.metadata_from_wheel(&wheel)?,
        };
        let parsed = Arc::new(
            parse_metadata(&text).map_err(|e| perr(format!("{}: {e}", wheel.file.filename)))?,
        );
        self.metadata
            .lock()
            .map_err(|_| perr("metadata cache poisoned".into()))?
            .insert(key, Arc::clone(&parsed));
        Ok(parsed)
    }

    /// Downloads the wheel into the store (verified) and reads `*.dist-info/METADATA`.
    fn metadata_from_wheel(&self, wheel: &ChosenWheel) -> Result<String, ProviderError> {
        let d = self.download(wheel)?;
        self.fetcher
            .fetch_to_store(self.store, &d)
            .map_err(|e| ProviderError {
                message: e.to_string(),
                source: Some(Box::new(e)),
            })?;
        let file = self
            .store
            .open_blob(&d.sha256)
            .map_err(|e| perr(e.to_string()))?;
        let mut zip = zip::ZipArchive::new(file)
            .map_err(|e| perr(format!("{}: {e}", wheel.file.filename)))?;
        let dist_info = format!(
            "{}-{}.dist-info/METADATA",
            wheel.file.filename.split('-').next().unwrap_or_default(),
            wheel.file.filename.split('-').nth(1).unwrap_or_default()
        );
        let mut entry = zip
            .by_name(&dist_info)
            .map_err(|e| perr(format!("{}: no {dist_info}: {e}", wheel.file.filename)))?;
        let mut text = String::new();
        entry
            .read_to_string(&mut text)
            .map_err(|e| perr(format!("{}: {dist_info}: {e}", wheel.file.filename)))?;
        Ok(text)
    }

    /// The pinned download of a chosen wheel.
    ///
    /// # Errors
    /// The index gave no sha256 (nothing to verify against).
    pub fn download(&self, wheel: &ChosenWheel) -> Result<Download, ProviderError> {
        let sha = wheel.file.sha256.as_ref().ok_or_else(|| {
            perr(format!(
                "{}: the index gives no sha256, so it cannot be verified",
                wheel.file.url
            ))
        })?;
        let sha256 = format!("sha256:{sha}")
            .parse()
            .map_err(|_| perr(format!("{}: bad sha256 {sha}", wheel.file.url)))?;
        Ok(Download {
            what: wheel.file.filename.clone(),
            url: wheel.file.url.clone(),
            sha256,
            size: wheel.file.size,
        })
    }
}

/// The version in an sdist file name (`numpy-2.3.1.tar.gz` → 2.3.1).
fn sdist_version(filename: &str) -> Option<Version> {
    let stem = [".tar.gz", ".zip", ".tar.bz2", ".tar.xz", ".tgz", ".tar"]
        .iter()
        .find_map(|ext| filename.strip_suffix(ext))?;
    let (_, v) = stem.rsplit_once('-')?;
    Version::from_str(v).ok()
}

impl Provider for PypiClient<'_> {
    fn versions(&self, name: &str) -> Result<Vec<Candidate>, ProviderError> {
        let files = self.files(name)?;
        // version → (all files yanked?, requires-python, compatible wheel?)
        let mut by_version: BTreeMap<Version, (bool, Option<VersionSpecifiers>, bool)> =
            BTreeMap::new();
        // version → what its files are (wheel tag triples, `sdist`), for errors.
        let mut kinds: BTreeMap<Version, std::collections::BTreeSet<String>> = BTreeMap::new();
        for f in files.iter() {
            let (version, compatible) = if let Ok(w) = WheelFilename::from_str(&f.filename) {
                let ok = self.target.tag_priority(&w).is_some();
                let stem = f.filename.trim_end_matches(".whl");
                let triple: Vec<&str> = stem.rsplitn(4, '-').take(3).collect();
                kinds
                    .entry(w.version.clone())
                    .or_default()
                    .insert(triple.into_iter().rev().collect::<Vec<_>>().join("-"));
                (w.version, ok)
            } else if is_sdist(&f.filename) {
                match sdist_version(&f.filename) {
                    Some(v) => {
                        kinds.entry(v.clone()).or_default().insert("sdist".into());
                        (v, false)
                    }
                    None => continue,
                }
            } else {
                continue;
            };
            let rp = f
                .requires_python
                .as_deref()
                .and_then(|r| VersionSpecifiers::from_str(r).ok());
            let e = by_version.entry(version).or_insert((true, None, false));
            if compatible {
                // A compatible wheel's own flags decide.
                e.0 = e.0 && f.yanked.is_some();
                e.1 = rp.or(e.1.take());
                e.2 = true;
            } else if !e.2 {
                e.0 = e.0 && f.yanked.is_some();
                e.1 = e.1.take().or(rp);
            }
        }
        Ok(by_version
            .into_iter()
            .map(
                |(version, (yanked, requires_python, has_wheel))| Candidate {
                    files: kinds
                        .remove(&version)
                        .map(|k| k.into_iter().collect())
                        .unwrap_or_default(),
                    version,
                    yanked,
                    requires_python,
                    has_wheel,
                },
            )
            .collect())
    }

    fn requires(&self, name: &str, version: &Version) -> Result<Requires, ProviderError> {
        let m = self.metadata(name, version)?;
        // A marker the image cannot decide (the running kernel's release/version) is an
        // error, not a guess.
        for r in &m.requires_dist {
            if let Err(e) = self.target.evaluate(&r.marker, &[]) {
                return Err(perr(format!("{name} {version} requires `{r}`, but {e}")));
            }
        }
        Ok(Requires {
            requires_dist: m.requires_dist.clone(),
            provides_extra: m.provides_extra.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdist_versions_parse() {
        assert_eq!(
            sdist_version("numpy-2.3.1.tar.gz"),
            Version::from_str("2.3.1").ok()
        );
        assert_eq!(
            sdist_version("zope.interface-7.0.zip"),
            Version::from_str("7.0").ok()
        );
        assert_eq!(
            sdist_version("numpy-2.3.1-cp313-cp313-manylinux_2_28_x86_64.whl"),
            None
        );
    }
}
