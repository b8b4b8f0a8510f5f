//! Pushing one image: every blob first, several at once (HEAD, skip the present ones;
//! mount from a sibling repository when hinted; else upload, monolithic or chunked and
//! resumable); then, for an image index, each platform's manifest by digest; then the
//! manifest or index, byte for byte, under its tag or digest — last, so a failed push never
//! leaves a tag that points at a missing blob or manifest; then attached artifacts (an
//! SBOM) by digest, listed for the referrers API or, on a registry without it, in the
//! referrers tag (`sha256-<hex>`) of the OCI 1.1 fallback. The registry's
//! `Docker-Content-Digest` must be ours.

use std::io::Read;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use composer_store::Digest;
use serde::Serialize;

use super::client::{Attempt, Client, ClientOptions, Reply, unexpected};
use super::error::RegistryError;
use super::plan::{
    DEFAULT_CHUNK, Upload, content_range, next_chunk, plan_upload, resolve_location, resume_offset,
    with_query,
};
use super::reference::Reference;
use super::source::{BlobSource, PushDoc, PushImage};
use crate::oci::json::INDEX_MEDIA_TYPE;

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
    /// Blobs sent at once (each on its own connection).
    pub jobs: usize,
}

/// Blobs sent at once by default: enough to fill a link to a registry in another region
/// without opening more connections than a registry's per-client limit tolerates.
pub const DEFAULT_PUSH_JOBS: usize = 4;

impl Default for PushOptions {
    fn default() -> Self {
        Self {
            client: ClientOptions::default(),
            chunk_size: DEFAULT_CHUNK,
            mount_from: Vec::new(),
            jobs: DEFAULT_PUSH_JOBS,
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

/// Receives push progress; with several jobs, calls for different blobs interleave (from
/// several threads). All methods have empty defaults.
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
    /// Per-platform manifests pushed by digest before an index (0 for a single image).
    pub manifests: usize,
    /// Attached artifacts (an SBOM) pushed after the image.
    pub referrers: usize,
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
        manifests: 0,
        referrers: 0,
    };
    let outcomes = push_blobs(&client, repo, &image.blobs, options, reporter)?;
    for (blob, outcome) in image.blobs.iter().zip(outcomes) {
        match outcome {
            BlobOutcome::Uploaded => {
                report.uploaded += 1;
                report.uploaded_bytes += blob.size;
            }
            BlobOutcome::Skipped => report.skipped += 1,
            BlobOutcome::Mounted => report.mounted += 1,
        }
    }
    // Every blob is in the repository: an index's manifests, by digest (untagged)…
    for m in &image.manifests {
        put_manifest(&mut client, repo, m.digest.as_str(), m)?;
        report.manifests += 1;
    }
    // …and now, and only now, the manifest or index under its tag.
    let target = match (&reference.digest, &reference.tag, &image.tag) {
        (Some(d), _, _) => d.to_string(),
        (None, Some(t), _) | (None, None, Some(t)) => t.clone(),
        (None, None, None) => "latest".into(),
    };
    let top = PushDoc {
        bytes: image.manifest.clone(),
        digest: image.manifest_digest.clone(),
        media_type: image.media_type.clone(),
        artifact: None,
        annotations: Default::default(),
    };
    put_manifest(&mut client, repo, &target, &top)?;
    if reference.digest.is_none() {
        report.reference = format!("{}/{}:{target}", reference.registry, repo);
    }
    // Attached artifacts: after their subject, so the tag never waits on them.
    let mut fallback: Vec<(&Digest, &PushDoc)> = Vec::new();
    for r in &image.referrers {
        let reply = put_manifest(&mut client, repo, r.digest.as_str(), r)?;
        report.referrers += 1;
        // A registry with the referrers API says so with `OCI-Subject`; without it, the
        // client keeps the list itself in the referrers tag.
        if let Some((_, subject)) = &r.artifact
            && reply.header("oci-subject").is_none()
        {
            fallback.push((subject, r));
        }
    }
    let mut subjects: Vec<&Digest> = fallback.iter().map(|(s, _)| *s).collect();
    subjects.dedup();
    for subject in subjects {
        let docs: Vec<&PushDoc> = fallback
            .iter()
            .filter(|(s, _)| *s == subject)
            .map(|(_, d)| *d)
            .collect();
        update_referrers_tag(&mut client, repo, subject, &docs)?;
    }
    Ok(report)
}

/// `PUT manifests/TARGET` (a tag or a digest) with `doc`'s exact bytes; the registry's
/// digest must be ours.
fn put_manifest(
    client: &mut Client,
    repo: &str,
    target: &str,
    doc: &PushDoc,
) -> Result<Reply, RegistryError> {
    let url = client.url(repo, &format!("manifests/{target}"));
    let what = if target == doc.digest.as_str() {
        format!("manifest {}", doc.digest)
    } else {
        format!("manifest {} as {repo}:{target}", doc.digest)
    };
    let reply = client.retry(&what, |c| {
        let bytes = &doc.bytes;
        let mut body = || -> Result<(Box<dyn Read>, u64), RegistryError> {
            Ok((Box::new(bytes.as_slice()), bytes.len() as u64))
        };
        let r = c.request(
            "PUT",
            &url,
            &[("Content-Type", doc.media_type.clone())],
            Some(&mut body),
        )?;
        check(c, r, &what, &[201, 200, 202])
    })?;
    if let Some(d) = reply.header("docker-content-digest")
        && d != doc.digest.as_str()
    {
        return Err(RegistryError::DigestMismatch {
            registry: client.base().into(),
            what,
            expected: doc.digest.clone(),
            actual: d.into(),
        });
    }
    Ok(reply)
}

/// The OCI 1.1 referrers tag schema: the image index tagged `sha256-<hex of subject>` lists
/// the artifacts whose subject it is. Read it (a missing tag is an empty list), add ours
/// (an entry already there is kept as is), write it back. Entries are kept in the order
/// found, ours appended sorted by digest, so a repeated push writes the same bytes.
fn update_referrers_tag(
    client: &mut Client,
    repo: &str,
    subject: &Digest,
    docs: &[&PushDoc],
) -> Result<(), RegistryError> {
    let tag = referrers_tag(subject);
    let url = client.url(repo, &format!("manifests/{tag}"));
    let what = format!("referrers tag {repo}:{tag}");
    let existing = client.retry(&what, |c| {
        let r = c.request(
            "GET",
            &url,
            &[("Accept", INDEX_MEDIA_TYPE.to_string())],
            None,
        )?;
        match r.status {
            404 => Ok(None),
            _ => check(c, r, &what, &[200]).map(|r| Some(r.body)),
        }
    })?;
    let (bytes, changed) =
        referrers_index(existing.as_deref(), docs).map_err(|e| RegistryError::Status {
            registry: client.base().into(),
            what: what.clone(),
            status: 200,
            detail: e,
        })?;
    if !changed {
        return Ok(());
    }
    let doc = PushDoc {
        digest: Digest::of_bytes(&bytes),
        bytes,
        media_type: INDEX_MEDIA_TYPE.into(),
        artifact: None,
        annotations: Default::default(),
    };
    put_manifest(client, repo, &tag, &doc).map(|_| ())
}

/// `sha256-<hex>`: the fallback tag listing `subject`'s referrers.
#[must_use]
pub fn referrers_tag(subject: &Digest) -> String {
    format!("sha256-{}", subject.hex())
}

/// The referrers index with `docs` added to `existing` (an index's bytes, or nothing), and
/// whether that changed anything. Pure.
///
/// # Errors
/// `existing` is not an image index.
pub fn referrers_index(
    existing: Option<&[u8]>,
    docs: &[&PushDoc],
) -> Result<(Vec<u8>, bool), String> {
    use serde_json::{Value, json};
    let mut manifests: Vec<Value> = match existing {
        None => Vec::new(),
        Some(b) => {
            let v: Value = serde_json::from_slice(b)
                .map_err(|e| format!("the referrers tag is not JSON: {e}"))?;
            v.get("manifests")
                .and_then(Value::as_array)
                .cloned()
                .ok_or("the referrers tag is not an image index")?
        }
    };
    let mut ours: Vec<&&PushDoc> = docs.iter().collect();
    ours.sort_by(|a, b| a.digest.cmp(&b.digest));
    let mut changed = existing.is_none();
    for d in ours {
        if manifests
            .iter()
            .any(|m| m.get("digest").and_then(Value::as_str) == Some(d.digest.as_str()))
        {
            continue;
        }
        let mut entry = json!({
            "mediaType": d.media_type,
            "digest": d.digest,
            "size": d.bytes.len(),
        });
        if let Some((t, _)) = &d.artifact {
            entry["artifactType"] = json!(t);
        }
        if !d.annotations.is_empty() {
            entry["annotations"] = json!(d.annotations);
        }
        manifests.push(entry);
        changed = true;
    }
    let index = json!({
        "schemaVersion": 2,
        "mediaType": INDEX_MEDIA_TYPE,
        "manifests": manifests,
    });
    serde_json::to_vec(&index)
        .map(|b| (b, changed))
        .map_err(|e| e.to_string())
}

/// Pushes `blobs` on up to `options.jobs` connections at once, largest first (so one big
/// layer does not start last), each worker with its own copy of the connected client. The
/// first failure stops workers from starting more blobs; the error returned is the first
/// failing blob's in `blobs` order, so it does not depend on timing.
fn push_blobs(
    client: &Client,
    repo: &str,
    blobs: &[BlobSource],
    options: &PushOptions,
    reporter: &dyn PushReporter,
) -> Result<Vec<BlobOutcome>, RegistryError> {
    let mut order: Vec<usize> = (0..blobs.len()).collect();
    order.sort_by(|&a, &b| blobs[b].size.cmp(&blobs[a].size).then(a.cmp(&b)));
    let jobs = options.jobs.clamp(1, blobs.len().max(1));
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let results: Vec<Mutex<Option<Result<BlobOutcome, RegistryError>>>> =
        blobs.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..jobs {
            let mut c = client.clone();
            let (order, next, failed, results) = (&order, &next, &failed, &results);
            s.spawn(move || {
                loop {
                    if failed.load(Ordering::SeqCst) {
                        break;
                    }
                    let Some(&i) = order.get(next.fetch_add(1, Ordering::SeqCst)) else {
                        break;
                    };
                    let blob = &blobs[i];
                    reporter.blob_started(&blob.digest, blob.size);
                    let r = push_blob(&mut c, repo, blob, options, reporter);
                    match &r {
                        Ok(outcome) => reporter.blob_finished(&blob.digest, *outcome),
                        Err(_) => failed.store(true, Ordering::SeqCst),
                    }
                    if let Ok(mut slot) = results[i].lock() {
                        *slot = Some(r);
                    }
                }
            });
        }
    });
    let mut outcomes = Vec::with_capacity(blobs.len());
    let mut first_error = None;
    let mut unsent = None;
    for (slot, blob) in results.into_iter().zip(blobs) {
        match slot.into_inner().ok().flatten() {
            Some(Ok(o)) => outcomes.push(o),
            Some(Err(e)) => {
                first_error.get_or_insert(e);
            }
            None => {
                unsent.get_or_insert_with(|| blob.digest.clone());
            }
        }
    }
    match (first_error, unsent) {
        (Some(e), _) => Err(e),
        // Cannot happen (a blob is left unsent only after a failure), but never report
        // success for a blob that was not sent.
        (None, Some(d)) => Err(RegistryError::Failed {
            registry: client.base().into(),
            what: format!("blob {d}"),
            attempts: 0,
            cause: "not sent".into(),
        }),
        (None, None) => Ok(outcomes),
    }
}

/// Turns a reply into success (an expected status), a retry (5xx, 408, 429) or an error.
fn check(c: &Client, r: Reply, what: &str, ok: &[u16]) -> Result<Reply, Attempt> {
    if ok.contains(&r.status) {
        return Ok(r);
    }
    Err(unexpected(c, &r, what))
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn doc(n: u8) -> PushDoc {
        let bytes = vec![b'{', n, b'}'];
        PushDoc {
            digest: Digest::of_bytes(&bytes),
            bytes,
            media_type: crate::oci::json::MANIFEST_MEDIA_TYPE.into(),
            artifact: Some(("application/spdx+json".into(), Digest::of_bytes(b"img"))),
            annotations: [("k".to_string(), "v".to_string())].into(),
        }
    }

    #[test]
    fn referrers_index_adds_once_keeps_foreign_entries_and_is_stable() {
        let (a, b) = (doc(1), doc(2));
        let (first, changed) = referrers_index(None, &[&b, &a]).unwrap();
        assert!(changed);
        let v: serde_json::Value = serde_json::from_slice(&first).unwrap();
        let digests: Vec<&str> = v["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["digest"].as_str().unwrap())
            .collect();
        let mut sorted = vec![a.digest.as_str(), b.digest.as_str()];
        sorted.sort_unstable();
        assert_eq!(digests, sorted);
        assert_eq!(v["manifests"][0]["artifactType"], "application/spdx+json");
        assert_eq!(v["manifests"][0]["annotations"]["k"], "v");
        assert_eq!(v["mediaType"], INDEX_MEDIA_TYPE);
        // Same docs again: unchanged, same bytes.
        let (again, changed) = referrers_index(Some(&first), &[&a]).unwrap();
        assert!(!changed);
        assert_eq!(again, first);
        // Someone else's entry survives ours.
        let foreign = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"x","digest":"sha256:00","size":1}]}"#;
        let (merged, changed) = referrers_index(Some(foreign), &[&a]).unwrap();
        assert!(changed);
        let v: serde_json::Value = serde_json::from_slice(&merged).unwrap();
        assert_eq!(v["manifests"].as_array().unwrap().len(), 2);
        assert_eq!(v["manifests"][0]["digest"], "sha256:00");
        assert!(referrers_index(Some(b"[]"), &[&a]).is_err());
        assert_eq!(
            referrers_tag(&a.digest),
            format!("sha256-{}", a.digest.hex())
        );
    }
}
