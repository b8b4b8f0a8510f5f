//! Downloads: one [`Transport`] seam (HTTP by default, replaceable in tests), retries with
//! backoff on transient failures, and verification against a hash we already trust
//! *before* anything reads the bytes: a download streams into a store temp file and only
//! becomes a blob when its size and sha256 match (`BlobWriter::commit(Some(expected))`).
//!
//! This is the only module that touches the network.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::Duration;

use composer_store::{Digest, Store, StoreError};
use rayon::prelude::*;

/// A response body.
pub type Body = Box<dyn Read + Send>;

/// Fetches URLs. Implemented over HTTP(S) by [`HttpTransport`]; tests may substitute their own.
pub trait Transport: Send + Sync {
    /// GETs `url`, returning the body of a 2xx response.
    ///
    /// # Errors
    /// [`TransportError`] saying whether a retry may help.
    fn get(&self, url: &str) -> Result<Body, TransportError>;

    /// GETs a document with an `Accept` header, returning the body and its `Content-Type`
    /// (empty when unknown). The default ignores `accept`.
    ///
    /// # Errors
    /// [`TransportError`] saying whether a retry may help.
    fn get_page(&self, url: &str, accept: &str) -> Result<(Body, String), TransportError> {
        let _ = accept;
        self.get(url).map(|b| (b, String::new()))
    }
}

/// A failed request.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// A status the server answered with.
    #[error("HTTP status {0}")]
    Status(u16),
    /// Connection, TLS, timeout or read failure.
    #[error("{0}")]
    Network(String),
}

impl TransportError {
    /// Whether retrying may succeed (connection problems, 408, 429, 5xx).
    #[must_use]
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Status(s) => *s == 408 || *s == 429 || *s >= 500,
            Self::Network(_) => true,
        }
    }
}

/// HTTP(S) with rustls (ring) and the webpki roots; redirects followed; no proxy magic.
pub struct HttpTransport {
    agent: ureq::Agent,
    credentials: crate::auth::Credentials,
}

/// The trusted roots: the system's CA bundle (`SSL_CERT_FILE`, else Debian's
/// `/etc/ssl/certs/ca-certificates.crt`), so TLS-inspecting proxies whose CA the host trusts
/// work as they do for curl and pip; the built-in webpki roots when there is no bundle.
pub(crate) fn root_certs() -> ureq::tls::RootCerts {
    let path = std::env::var_os("SSL_CERT_FILE")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from("/etc/ssl/certs/ca-certificates.crt"));
    let Ok(pem) = std::fs::read(&path) else {
        return ureq::tls::RootCerts::WebPki;
    };
    let certs: Vec<ureq::tls::Certificate<'static>> = ureq::tls::parse_pem(&pem)
        .filter_map(|item| match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
            _ => None,
        })
        .collect();
    if certs.is_empty() {
        ureq::tls::RootCerts::WebPki
    } else {
        ureq::tls::RootCerts::from(certs)
    }
}

impl Default for HttpTransport {
    fn default() -> Self {
        let tls = ureq::tls::TlsConfig::builder()
            .root_certs(root_certs())
            .build();
        let config = ureq::Agent::config_builder()
            .tls_config(tls)
            .timeout_connect(Some(Duration::from_secs(15)))
            .timeout_recv_response(Some(Duration::from_secs(60)))
            .timeout_recv_body(Some(Duration::from_secs(300)))
            .user_agent(concat!("composer/", env!("CARGO_PKG_VERSION")))
            .http_status_as_error(true)
            .build();
        Self {
            agent: ureq::Agent::new_with_config(config),
            credentials: crate::auth::Credentials::from_env(),
        }
    }
}

impl Transport for HttpTransport {
    fn get_page(&self, url: &str, accept: &str) -> Result<(Body, String), TransportError> {
        let mut req = self.agent.get(url).header("Accept", accept);
        if let Some(login) = self.credentials.for_url(url) {
            req = req.header("Authorization", login.basic_header());
        }
        match req.call() {
            Ok(resp) => {
                let content_type = resp
                    .headers()
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                let body: Body =
                    Box::new(resp.into_body().into_with_config().limit(u64::MAX).reader());
                Ok((body, content_type))
            }
            Err(ureq::Error::StatusCode(s)) => Err(TransportError::Status(s)),
            Err(e) => Err(TransportError::Network(e.to_string())),
        }
    }

    fn get(&self, url: &str) -> Result<Body, TransportError> {
        let mut req = self.agent.get(url);
        if let Some(login) = self.credentials.for_url(url) {
            req = req.header("Authorization", login.basic_header());
        }
        match req.call() {
            Ok(resp) => Ok(Box::new(
                resp.into_body().into_with_config().limit(u64::MAX).reader(),
            )),
            Err(ureq::Error::StatusCode(s)) => Err(TransportError::Status(s)),
            Err(e) => Err(TransportError::Network(e.to_string())),
        }
    }
}

/// Download failures. Each names the URL (and the package, where there is one).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The server does not have it.
    #[error("{what}: {url} is not on the server (HTTP 404){hint}")]
    NotFound {
        /// What was being fetched.
        what: String,
        /// URL.
        url: String,
        /// Extra advice.
        hint: String,
    },
    /// Failed after retries.
    #[error("{what}: fetching {url} failed after {attempts} attempts: {cause}")]
    Failed {
        /// What was being fetched.
        what: String,
        /// URL.
        url: String,
        /// Attempts made.
        attempts: u32,
        /// Last cause.
        cause: String,
    },
    /// The bytes are not what the lock or the signed index says.
    #[error("{what}: {url} does not match its pinned hash: expected {expected}, got {actual}")]
    HashMismatch {
        /// What was fetched.
        what: String,
        /// URL.
        url: String,
        /// Expected digest.
        expected: Digest,
        /// Actual digest.
        actual: Digest,
    },
    /// Wrong size.
    #[error("{what}: {url} is {actual} bytes, but {expected} were expected")]
    SizeMismatch {
        /// What was fetched.
        what: String,
        /// URL.
        url: String,
        /// Expected size.
        expected: u64,
        /// Actual size (at least).
        actual: u64,
    },
    /// Writing the download into the store failed.
    #[error("{what}: cannot store the download: {source}")]
    Write {
        /// What was fetched.
        what: String,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One pinned download.
#[derive(Debug, Clone)]
pub struct Download {
    /// Human label (`libc6 2.41-12`).
    pub what: String,
    /// URL.
    pub url: String,
    /// Expected sha256.
    pub sha256: Digest,
    /// Expected size, when known (a wheel index may not say).
    pub size: Option<u64>,
}

/// Downloads with retries and bounded parallelism.
#[derive(Clone)]
pub struct Fetcher {
    transport: Arc<dyn Transport>,
    /// Attempts per URL (≥ 1).
    pub attempts: u32,
    /// First backoff delay; doubles per attempt.
    pub backoff: Duration,
    /// Downloads at once.
    pub parallel: usize,
    /// Appended to 404 errors of pinned artifacts.
    pub not_found_hint: String,
    /// While resolving, download the wheels the resolution is about to pick, so a build
    /// that follows finds them stored (off for `compose lock`, which needs none of them).
    pub eager: bool,
    /// With `eager`, what a build does with each wheel as soon as it is stored (list it and
    /// write its fragment while the resolution goes on).
    pub prebuild: Option<Arc<dyn crate::pypi::prebuild::Prebuild>>,
    /// One lock per digest being fetched (shared by clones): a second request for a blob
    /// another thread is downloading waits for it instead of downloading it again.
    in_flight: Arc<std::sync::Mutex<BTreeMap<Digest, Arc<std::sync::Mutex<()>>>>>,
}

impl Default for Fetcher {
    fn default() -> Self {
        Self::new(Arc::new(HttpTransport::default()))
    }
}

impl Fetcher {
    /// A fetcher over `transport`.
    #[must_use]
    pub fn new(transport: Arc<dyn Transport>) -> Self {
        Self {
            transport,
            attempts: 4,
            backoff: Duration::from_millis(250),
            parallel: 6,
            not_found_hint: String::new(),
            eager: false,
            prebuild: None,
            in_flight: Arc::default(),
        }
    }

    fn with_retries<T>(
        &self,
        what: &str,
        url: &str,
        mut f: impl FnMut() -> Result<T, AttemptError>,
    ) -> Result<T, FetchError> {
        let mut delay = self.backoff;
        let attempts = self.attempts.max(1);
        for attempt in 1..=attempts {
            match f() {
                Ok(v) => return Ok(v),
                Err(AttemptError::Fatal(e)) => return Err(e),
                Err(AttemptError::Transport(TransportError::Status(404))) => {
                    return Err(FetchError::NotFound {
                        what: what.into(),
                        url: url.into(),
                        hint: self.not_found_hint.clone(),
                    });
                }
                Err(AttemptError::Transport(e)) if e.is_transient() && attempt < attempts => {
                    std::thread::sleep(delay);
                    delay = delay.saturating_mul(2);
                }
                Err(AttemptError::Transport(e)) => {
                    return Err(FetchError::Failed {
                        what: what.into(),
                        url: url.into(),
                        attempts: attempt,
                        cause: e.to_string(),
                    });
                }
            }
        }
        Err(FetchError::Failed {
            what: what.into(),
            url: url.into(),
            attempts,
            cause: "no attempt made".into(),
        })
    }

    /// GETs a small document (an index) into memory, at most `limit` bytes.
    ///
    /// # Errors
    /// [`FetchError`] naming the URL.
    pub fn get_bytes(&self, what: &str, url: &str, limit: u64) -> Result<Vec<u8>, FetchError> {
        self.get_page(what, url, "*/*", limit).map(|(body, _)| body)
    }

    /// GETs a page (an index document) with an `Accept` header, at most `limit` bytes;
    /// returns the body and its content type.
    ///
    /// # Errors
    /// [`FetchError`] naming the URL.
    pub fn get_page(
        &self,
        what: &str,
        url: &str,
        accept: &str,
        limit: u64,
    ) -> Result<(Vec<u8>, String), FetchError> {
        self.with_retries(what, url, || {
            let (body, content_type) = self
                .transport
                .get_page(url, accept)
                .map_err(AttemptError::Transport)?;
            let mut buf = Vec::new();
            body.take(limit + 1)
                .read_to_end(&mut buf)
                .map_err(|e| AttemptError::Transport(TransportError::Network(e.to_string())))?;
            if buf.len() as u64 > limit {
                return Err(AttemptError::Fatal(FetchError::SizeMismatch {
                    what: what.into(),
                    url: url.into(),
                    expected: limit,
                    actual: buf.len() as u64,
                }));
            }
            Ok((buf, content_type))
        })
    }

    /// Streams `d` into the store, verifying size and sha256 before it becomes a blob.
    /// Does nothing if the blob is already stored.
    ///
    /// # Errors
    /// [`FetchError`] naming the package, URL, expected and actual digest.
    pub fn fetch_to_store(&self, store: &Store, d: &Download) -> Result<bool, FetchError> {
        if store.has_blob(&d.sha256) {
            return Ok(false);
        }
        // The resolver reading a wheel's metadata and an eager download of the same wheel:
        // one downloads, the other waits and finds it stored.
        let slot = {
            let mut map = self
                .in_flight
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            Arc::clone(map.entry(d.sha256.clone()).or_default())
        };
        let held = slot
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let fetched = if store.has_blob(&d.sha256) {
            Ok(false)
        } else {
            self.fetch_unlocked(store, d)
        };
        drop(held);
        // Waiters hold their own handle on the slot; a later fetch finds the blob stored.
        self.in_flight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&d.sha256);
        fetched
    }

    /// [`Self::fetch_to_store`], once this thread holds the digest.
    fn fetch_unlocked(&self, store: &Store, d: &Download) -> Result<bool, FetchError> {
        self.with_retries(&d.what, &d.url, || {
            let mut body = self
                .transport
                .get(&d.url)
                .map_err(AttemptError::Transport)?;
            let mut w = store
                .blob_writer()
                .map_err(|e| AttemptError::Fatal(e.into()))?;
            w.set_description(format!("{} from {}", d.what, d.url));
            let mut buf = vec![0u8; 256 << 10];
            let mut n: u64 = 0;
            loop {
                let k = body
                    .read(&mut buf)
                    .map_err(|e| AttemptError::Transport(TransportError::Network(e.to_string())))?;
                if k == 0 {
                    break;
                }
                n += k as u64;
                if let Some(size) = d.size
                    && n > size
                {
                    return Err(AttemptError::Fatal(FetchError::SizeMismatch {
                        what: d.what.clone(),
                        url: d.url.clone(),
                        expected: size,
                        actual: n,
                    }));
                }
                w.write_all(&buf[..k])
                    .map_err(|e| AttemptError::Fatal(store_write_error(&d.what, e)))?;
            }
            if let Some(size) = d.size
                && n != size
            {
                return Err(AttemptError::Fatal(FetchError::SizeMismatch {
                    what: d.what.clone(),
                    url: d.url.clone(),
                    expected: size,
                    actual: n,
                }));
            }
            match w.commit(Some(&d.sha256)) {
                Ok(_) => Ok(true),
                Err(StoreError::DigestMismatch {
                    expected, actual, ..
                }) => Err(AttemptError::Fatal(FetchError::HashMismatch {
                    what: d.what.clone(),
                    url: d.url.clone(),
                    expected,
                    actual,
                })),
                Err(e) => Err(AttemptError::Fatal(e.into())),
            }
        })
    }

    /// Fetches all downloads, `parallel` at a time; returns how many were actually
    /// downloaded (the rest were in the store) or every failure.
    ///
    /// # Errors
    /// Every failed download.
    pub fn fetch_all(
        &self,
        store: &Store,
        downloads: &[Download],
        on_done: &(dyn Fn(&Download, bool) + Sync),
    ) -> Result<usize, Vec<FetchError>> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(self.parallel.max(1))
            .build();
        let run = || -> Vec<Result<bool, FetchError>> {
            downloads
                .par_iter()
                .map(|d| {
                    let r = self.fetch_to_store(store, d);
                    if let Ok(fetched) = &r {
                        on_done(d, *fetched);
                    }
                    r
                })
                .collect()
        };
        let results = match pool {
            Ok(p) => p.install(run),
            Err(_) => run(),
        };
        let mut errors = Vec::new();
        let mut fetched = 0;
        for r in results {
            match r {
                Ok(true) => fetched += 1,
                Ok(false) => {}
                Err(e) => errors.push(e),
            }
        }
        if errors.is_empty() {
            Ok(fetched)
        } else {
            Err(errors)
        }
    }
}

fn store_write_error(what: &str, e: io::Error) -> FetchError {
    match e.downcast::<StoreError>() {
        Ok(se) => FetchError::Store(se),
        Err(e) => FetchError::Write {
            what: what.into(),
            source: e,
        },
    }
}

enum AttemptError {
    Transport(TransportError),
    Fatal(FetchError),
}
