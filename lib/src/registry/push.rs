//! Pushing one image: every blob first (HEAD, skip the present ones; mount from a sibling
//! repository when hinted; else upload, monolithic or chunked and resumable), then the
//! manifest, byte for byte, under its tag or digest — last, so a failed push never leaves
//! a tag that points at a missing blob. The registry's `Docker-Content-Digest` must be ours.

use std::io::Read;

use composer_store::Digest;
use serde::Serialize;

use super::client::{Attempt, Client, ClientOptions, Reply, transient_status};
use super::error::RegistryError;
use super::plan::{
    DEFAULT_CHUNK, Upload, content_range, next_chunk, plan_upload, resolve_location, resume_offset,
    with_query,
};
use super::reference::Reference;
use super::source::{BlobSource, PushImage};

/// How a push runs.
#[derive(Debug, Clone)]
pub struct PushOptions {
    /// Connection, authentication and retries.
    pub client: ClientOptions,
    /// Blobs up to this size go in one request; larger ones in chunks of this size.
    pub chunk_size: u64,
    /// Repositories of the same registry that may already hold our blobs (tried as
    /// cross-repository mounts before uploading).
    pub mount_from: Vec<String>,
}

impl Default for PushOptions {
    fn default() -> Self {
        Self {
            client: ClientOptions::default(),
            chunk_size: DEFAULT_CHUNK,
            mount_from: Vec::new(),
        }
    }
}

/// What happened to one blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BlobOutcome {
    /// Sent now.
    Uploaded,
    /// Already in the repository.
    Skipped,
    /// Mounted from another repository.
    Mounted,
}

/// Receives push progress, one blob at a time. All methods have empty defaults.
pub trait PushReporter: Sync {
    /// A blob of `size` bytes is being checked or sent.
    fn blob_started(&self, _digest: &Digest, _size: u64) {}
    /// `done` bytes of it have been sent.
    fn blob_progress(&self, _digest: &Digest, _done: u64) {}
    /// It is in the repository.
    fn blob_finished(&self, _digest: &Digest, _outcome: BlobOutcome) {}
}

/// Reports nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoPushReporter;
impl PushReporter for NoPushReporter {}

/// The result of a push.
#[derive(Debug, Clone, Serialize)]
pub struct PushReport {
    /// Where it went (`host/repo:tag`).
    pub reference: String,
    /// The manifest digest, as the registry confirmed it.
    pub digest: Digest,
    /// Blobs sent.
    pub uploaded: usize,
    /// Blobs the repository already had.
    pub skipped: usize,
    /// Blobs mounted from another repository.
    pub mounted: usize,
    /// Bytes sent for blobs.
    pub uploaded_bytes: u64,
}

/// Pushes `image` to `reference`.
///
/// # Errors
/// [`RegistryError`] naming the registry, the blob or manifest, the status and the
/// registry's error text. Nothing is tagged unless every blob is present.
pub fn push(
    image: &PushImage,
    reference: &Reference,
    options: &PushOptions,
    reporter: &dyn PushReporter,
) -> Result<PushReport, RegistryError> {
    if let Some(d) = &reference.digest
        && *d != image.manifest_digest
    {
        return Err(RegistryError::DigestMismatch {
            registry: reference.registry.clone(),
            what: format!("{reference}: the reference's digest is not the image's"),
            expected: image.manifest_digest.clone(),
            actual: d.to_string(),
        });
    }
    let mut client = Client::connect(reference, options.client.clone(), &options.mount_from)?;
    let repo = reference.repository.as_str();
    let mut report = PushReport {
        reference: reference.to_string(),
        digest: image.manifest_digest.clone(),
        uploaded: 0,
        skipped: 0,
        mounted: 0,
        uploaded_bytes: 0,
    };
    for blob in &image.blobs {
        reporter.blob_started(&blob.digest, blob.size);
        let outcome = push_blob(&mut client, repo, blob, options, reporter)?;
        match outcome {
            BlobOutcome::Uploaded => {
                report.uploaded += 1;
                report.uploaded_bytes += blob.size;
            }
            BlobOutcome::Skipped => report.skipped += 1,
            BlobOutcome::Mounted => report.mounted += 1,
        }
        reporter.blob_finished(&blob.digest, outcome);
    }
    // Every blob is in the repository: now, and only now, the manifest (and its tag).
    let target = match (&reference.digest, &reference.tag, &image.tag) {
        (Some(d), _, _) => d.to_string(),
        (None, Some(t), _) | (None, None, Some(t)) => t.clone(),
        (None, None, None) => "latest".into(),
    };
    let url = client.url(repo, &format!("manifests/{target}"));
    let what = format!("manifest {} as {repo}:{target}", image.manifest_digest);
    let reply = client.retry(&what, |c| {
        let bytes = &image.manifest;
        let mut body = || -> Result<(Box<dyn Read>, u64), RegistryError> {
            Ok((Box::new(bytes.as_slice()), bytes.len() as u64))
        };
        let r = c.request(
            "PUT",
            &url,
            &[("Content-Type", image.media_type.clone())],
            Some(&mut body),
        )?;
        check(c, r, &what, &[201, 200, 202])
    })?;
    if let Some(d) = reply.header("docker-content-digest")
        && d != image.manifest_digest.as_str()
    {
        return Err(RegistryError::DigestMismatch {
            registry: client.base().into(),
            what,
            expected: image.manifest_digest.clone(),
            actual: d.into(),
        });
    }
    if reference.digest.is_none() {
        report.reference = format!("{}/{}:{target}", reference.registry, repo);
    }
    Ok(report)
}

/// Turns a reply into success (an expected status), a retry (5xx, 408, 429) or an error.
fn check(c: &Client, r: Reply, what: &str, ok: &[u16]) -> Result<Reply, Attempt> {
    if ok.contains(&r.status) {
        return Ok(r);
    }
    Err(match r.status {
        401 | 403 => Attempt::Fatal(c.unauthorized(what, &r)),
        s if transient_status(s) => Attempt::Transient(format!("{what}: HTTP {s}{}", r.detail())),
        s => Attempt::Fatal(RegistryError::Status {
            registry: c.base().into(),
            what: what.into(),
            status: s,
            detail: r.detail(),
        }),
    })
}

/// The upload URL from a 202's `Location`.
fn location(c: &Client, r: &Reply, what: &str) -> Result<String, Attempt> {
    r.header("location")
        .map(|l| resolve_location(c.base(), l))
        .ok_or_else(|| {
            Attempt::Fatal(RegistryError::Status {
                registry: c.base().into(),
                what: format!("{what}: the registry sent no Location for the upload"),
                status: r.status,
                detail: String::new(),
            })
        })
}

fn push_blob(
    client: &mut Client,
    repo: &str,
    blob: &BlobSource,
    options: &PushOptions,
    reporter: &dyn PushReporter,
) -> Result<BlobOutcome, RegistryError> {
    let what = format!("blob {}", blob.digest);
    let head_url = client.url(repo, &format!("blobs/{}", blob.digest));
    let present = client.retry(&format!("{what}: HEAD"), |c| {
        let r = c.request("HEAD", &head_url, &[], None)?;
        match r.status {
            200 => Ok(true),
            404 => Ok(false),
            _ => check(c, r, &format!("{what}: HEAD"), &[]).map(|_| false),
        }
    })?;
    if present {
        return Ok(BlobOutcome::Skipped);
    }
    // Cross-repository mount: 201 means done; 202 opens an ordinary upload session.
    let mut session: Option<String> = None;
    for from in options.mount_from.iter().filter(|r| r.as_str() != repo) {
        let url = with_query(
            &with_query(
                &client.url(repo, "blobs/uploads/"),
                "mount",
                blob.digest.as_str(),
            ),
            "from",
            from,
        );
        let mwhat = format!("{what}: mount from {from}");
        let r = client.retry(&mwhat, |c| {
            let r = c.request("POST", &url, &[], None)?;
            check(c, r, &mwhat, &[201, 202])
        })?;
        if r.status == 201 {
            return Ok(BlobOutcome::Mounted);
        }
        session = r
            .header("location")
            .map(|l| resolve_location(client.base(), l));
    }
    upload(client, repo, blob, options.chunk_size, session, reporter)?;
    Ok(BlobOutcome::Uploaded)
}

/// Why an upload attempt stopped.
enum Stop {
    /// Give up.
    Fatal(RegistryError),
    /// Try again, resuming the session when it still exists.
    Retry(String),
    /// Try again with a new session.
    Restart(String),
}

impl From<Attempt> for Stop {
    fn from(a: Attempt) -> Self {
        match a {
            Attempt::Fatal(e) => Self::Fatal(e),
            Attempt::Transient(m) => Self::Retry(m),
        }
    }
}

fn upload(
    client: &mut Client,
    repo: &str,
    blob: &BlobSource,
    chunk_size: u64,
    mut session: Option<String>,
    reporter: &dyn PushReporter,
) -> Result<(), RegistryError> {
    let what = format!("blob {}", blob.digest);
    let plan = plan_upload(blob.size, chunk_size);
    let start_url = client.url(repo, "blobs/uploads/");
    let attempts = client.options().attempts.max(1);
    let mut last = String::new();
    // How many bytes the registry holds in `session`.
    let mut offset: u64 = 0;
    for attempt in 1..=attempts {
        if attempt > 1 {
            std::thread::sleep(super::plan::backoff(client.options().backoff, attempt - 1));
            // Resume a chunked session from what the registry reports; else restart.
            if let (Some(url), Upload::Chunked { .. }) = (&session, plan) {
                offset = match upload_status(client, url) {
                    Some((next_url, o)) if o <= blob.size => {
                        session = Some(next_url);
                        o
                    }
                    _ => {
                        abandon(client, session.take());
                        0
                    }
                };
            } else {
                abandon(client, session.take());
                offset = 0;
            }
        }
        let result = (|| -> Result<(), Stop> {
            let url = match session.clone() {
                Some(u) => u,
                None => {
                    let r = client.request("POST", &start_url, &[], None)?;
                    let r = check(client, r, &format!("{what}: start upload"), &[202])?;
                    let u = location(client, &r, &what)?;
                    session = Some(u.clone());
                    offset = 0;
                    u
                }
            };
            match plan {
                Upload::Monolithic => {
                    let put = with_query(&url, "digest", blob.digest.as_str());
                    let mut body = || -> Result<(Box<dyn Read>, u64), RegistryError> {
                        Ok((
                            Box::new(Progress::new(blob.open_at(0)?, reporter, &blob.digest, 0)),
                            blob.size,
                        ))
                    };
                    let r = client.request(
                        "PUT",
                        &put,
                        &[("Content-Type", "application/octet-stream".into())],
                        Some(&mut body),
                    )?;
                    finish(client, r, blob, &what)
                }
                Upload::Chunked { chunk } => {
                    let mut url = url;
                    while let Some((start, end)) = next_chunk(blob.size, offset, chunk) {
                        let mut body = || -> Result<(Box<dyn Read>, u64), RegistryError> {
                            let r = blob.open_at(start)?.take(end - start);
                            Ok((
                                Box::new(Progress::new(r, reporter, &blob.digest, start)),
                                end - start,
                            ))
                        };
                        let r = client.request(
                            "PATCH",
                            &url,
                            &[
                                ("Content-Type", "application/octet-stream".into()),
                                ("Content-Range", content_range(start, end)),
                            ],
                            Some(&mut body),
                        )?;
                        if matches!(r.status, 404 | 416) {
                            return Err(Stop::Restart(format!(
                                "{what}: PATCH {}: HTTP {}{}",
                                content_range(start, end),
                                r.status,
                                r.detail()
                            )));
                        }
                        let r = check(
                            client,
                            r,
                            &format!("{what}: PATCH {}", content_range(start, end)),
                            &[202, 204],
                        )?;
                        url = location(client, &r, &what)?;
                        session = Some(url.clone());
                        offset = end;
                        // `0-0` is ambiguous (see `resume_offset`): it also means one byte.
                        if let Some(o) = r.header("range").and_then(resume_offset)
                            && o != end
                            && !(o == 0 && end == 1)
                        {
                            return Err(Stop::Restart(format!(
                                "{what}: the registry holds {o} bytes after a chunk ending at {end}"
                            )));
                        }
                    }
                    let put = with_query(&url, "digest", blob.digest.as_str());
                    let r = client.request("PUT", &put, &[], None)?;
                    finish(client, r, blob, &what)
                }
            }
        })();
        match result {
            Ok(()) => return Ok(()),
            Err(Stop::Fatal(e)) => {
                abandon(client, session.take());
                return Err(e);
            }
            Err(Stop::Retry(m)) => last = m,
            Err(Stop::Restart(m)) => {
                last = m;
                abandon(client, session.take());
            }
        }
    }
    abandon(client, session.take());
    Err(RegistryError::Failed {
        registry: client.base().into(),
        what,
        attempts,
        cause: last,
    })
}

/// Cancels an upload session we give up on (best effort: registries also expire them).
fn abandon(client: &mut Client, session: Option<String>) {
    if let Some(url) = session {
        let _ = client.request("DELETE", &url, &[], None);
    }
}

/// Checks the PUT that completes an upload.
fn finish(client: &Client, r: Reply, blob: &BlobSource, what: &str) -> Result<(), Stop> {
    if matches!(r.status, 404 | 416) {
        return Err(Stop::Restart(format!(
            "{what}: HTTP {}{}",
            r.status,
            r.detail()
        )));
    }
    if r.status == 400 && r.detail().contains("DIGEST_INVALID") {
        return Err(Stop::Fatal(RegistryError::Status {
            registry: client.base().into(),
            what: format!("{what}: the registry computed another digest for the bytes we sent"),
            status: 400,
            detail: r.detail(),
        }));
    }
    let r = check(client, r, &format!("{what}: finish upload"), &[201, 204])?;
    if let Some(d) = r.header("docker-content-digest")
        && d != blob.digest.as_str()
    {
        return Err(Stop::Fatal(RegistryError::DigestMismatch {
            registry: client.base().into(),
            what: what.into(),
            expected: blob.digest.clone(),
            actual: d.into(),
        }));
    }
    Ok(())
}

/// `GET` on an upload session: its current URL and how many bytes it holds.
fn upload_status(client: &mut Client, url: &str) -> Option<(String, u64)> {
    let r = client.request("GET", url, &[], None).ok()?;
    if r.status != 204 && r.status != 202 {
        return None;
    }
    let offset = r.header("range").and_then(resume_offset)?;
    let next = r
        .header("location")
        .map_or_else(|| url.to_string(), |l| resolve_location(client.base(), l));
    Some((next, offset))
}

/// Counts bytes read for the reporter.
struct Progress<'a, R> {
    inner: R,
    reporter: &'a dyn PushReporter,
    digest: &'a Digest,
    done: u64,
}

impl<'a, R> Progress<'a, R> {
    fn new(inner: R, reporter: &'a dyn PushReporter, digest: &'a Digest, done: u64) -> Self {
        Self {
            inner,
            reporter,
            digest,
            done,
        }
    }
}

impl<R: Read> Read for Progress<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        self.reporter.blob_progress(self.digest, self.done);
        Ok(n)
    }
}
