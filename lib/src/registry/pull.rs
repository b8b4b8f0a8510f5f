//! Reading from a registry: whether a manifest exists (`HEAD`), a manifest by tag or digest
//! into memory, a small blob into memory and a blob streamed into the store, every blob
//! verified against its digest on the way in (a registry that serves other bytes is an
//! error, never trusted). Used by the shared store ([`crate::cache`]); there is no image
//! pull command yet.

use std::io::Read;

use composer_store::{Digest, Store, StoreError};

use super::client::{Attempt, Client, unexpected};
use super::error::RegistryError;

/// Whether `repo` has a manifest under `reference` (a tag or digest): `HEAD`, 404 → `false`.
///
/// # Errors
/// [`RegistryError`] naming the registry and the manifest.
pub fn manifest_exists(
    client: &mut Client,
    repo: &str,
    reference: &str,
    accept: &str,
) -> Result<bool, RegistryError> {
    let url = client.url(repo, &format!("manifests/{reference}"));
    let what = format!("HEAD manifest {repo}:{reference}");
    client.retry(&what, |c| {
        let r = c.request("HEAD", &url, &[("Accept", accept.to_string())], None)?;
        match r.status {
            200..=299 => Ok(true),
            404 => Ok(false),
            _ => Err(unexpected(c, &r, &what)),
        }
    })
}

/// The manifest of `repo` under `reference` (bytes as served), or `None` on 404.
///
/// # Errors
/// [`RegistryError`] naming the registry and the manifest.
pub fn manifest(
    client: &mut Client,
    repo: &str,
    reference: &str,
    accept: &str,
) -> Result<Option<Vec<u8>>, RegistryError> {
    let url = client.url(repo, &format!("manifests/{reference}"));
    let what = format!("GET manifest {repo}:{reference}");
    client.retry(&what, |c| {
        let r = c.request("GET", &url, &[("Accept", accept.to_string())], None)?;
        match r.status {
            200..=299 => Ok(Some(r.body)),
            404 => Ok(None),
            _ => Err(unexpected(c, &r, &what)),
        }
    })
}

/// A small blob (at most 4 MiB) into memory, verified; `None` on 404.
///
/// # Errors
/// [`RegistryError::DigestMismatch`] when the registry serves other bytes; HTTP failures.
pub fn blob_bytes(
    client: &mut Client,
    repo: &str,
    digest: &Digest,
) -> Result<Option<Vec<u8>>, RegistryError> {
    let url = client.url(repo, &format!("blobs/{digest}"));
    let what = format!("GET blob {digest}");
    let body = client.retry(&what, |c| {
        let r = c.request("GET", &url, &[], None)?;
        match r.status {
            200..=299 => Ok(Some(r.body)),
            404 => Ok(None),
            _ => Err(unexpected(c, &r, &what)),
        }
    })?;
    let Some(body) = body else {
        return Ok(None);
    };
    let actual = Digest::of_bytes(&body);
    if actual != *digest {
        return Err(RegistryError::DigestMismatch {
            registry: client.base().into(),
            what: format!("blob {repo}@{digest}"),
            expected: digest.clone(),
            actual: actual.to_string(),
        });
    }
    Ok(Some(body))
}

/// Streams a blob into the store (a temp file, published only when its sha256 is `digest`).
/// Returns `false` on 404; does nothing (`true`) when the store already has it.
///
/// # Errors
/// [`RegistryError::DigestMismatch`] when the registry serves other bytes (nothing is
/// stored); HTTP or store failures.
pub fn blob_to_store(
    client: &mut Client,
    repo: &str,
    digest: &Digest,
    store: &Store,
) -> Result<bool, RegistryError> {
    if store.has_blob(digest) {
        return Ok(true);
    }
    let url = client.url(repo, &format!("blobs/{digest}"));
    let what = format!("GET blob {digest}");
    let registry = client.base().to_string();
    client.retry(&what, |c| {
        let mut read = |body: &mut dyn Read| -> Result<(), Attempt> {
            let mut w = store.blob_writer().map_err(RegistryError::from)?;
            w.set_description(format!("blob {digest} from {registry}/{repo}"));
            let mut buf = vec![0u8; 256 << 10];
            loop {
                let n = body
                    .read(&mut buf)
                    .map_err(|e| Attempt::Transient(format!("{what}: {e}")))?;
                if n == 0 {
                    break;
                }
                std::io::Write::write_all(&mut w, &buf[..n]).map_err(|e| {
                    Attempt::Fatal(match e.downcast::<StoreError>() {
                        Ok(se) => RegistryError::Store(se),
                        Err(e) => RegistryError::Io {
                            path: store.layout().tmp_dir(),
                            source: e,
                        },
                    })
                })?;
            }
            match w.commit(Some(digest)) {
                Ok(_) => Ok(()),
                Err(StoreError::DigestMismatch { actual, .. }) => {
                    Err(Attempt::Fatal(RegistryError::DigestMismatch {
                        registry: registry.clone(),
                        what: format!("blob {repo}@{digest}"),
                        expected: digest.clone(),
                        actual: actual.to_string(),
                    }))
                }
                Err(e) => Err(Attempt::Fatal(e.into())),
            }
        };
        match c.get_streamed(&url, &[], &mut read)? {
            Ok(()) => Ok(true),
            Err(r) if r.status == 404 => Ok(false),
            Err(r) => Err(unexpected(c, &r, &what)),
        }
    })
}
