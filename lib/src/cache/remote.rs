//! The network side of the shared store: the [`Remote`] trait (what the cache asks of a
//! registry repository) and [`RegistryRemote`], its implementation over the registry
//! client (a few connections, so that lookups can run in parallel). Tests of the cache's
//! logic replace it with an in-memory map.

use std::sync::Mutex;

use composer_store::{Digest, Store};

use super::CacheError;
use crate::registry::client::{Client, ClientOptions};
use crate::registry::source::{BlobSource, PushImage};
use crate::registry::{NoPushReporter, PushOptions, Reference, pull};

/// A repository that holds node manifests and blobs.
pub trait Remote: Send + Sync {
    /// `host/repo`, for messages.
    fn describe(&self) -> String;
    /// Whether a manifest is tagged `tag`.
    ///
    /// # Errors
    /// The registry cannot be asked.
    fn has_manifest(&self, tag: &str) -> Result<bool, CacheError>;
    /// The manifest tagged `tag`, or `None`.
    ///
    /// # Errors
    /// The registry cannot be asked.
    fn manifest(&self, tag: &str) -> Result<Option<Vec<u8>>, CacheError>;
    /// A small blob, verified against `digest`, or `None` when absent.
    ///
    /// # Errors
    /// The registry fails or serves other bytes.
    fn blob_bytes(&self, digest: &Digest) -> Result<Option<Vec<u8>>, CacheError>;
    /// Streams a blob into `store` (verified); `false` when absent.
    ///
    /// # Errors
    /// The registry fails or serves other bytes, or the store fails.
    fn blob_to_store(&self, digest: &Digest, store: &Store) -> Result<bool, CacheError>;
    /// Uploads `blobs` (skipping those present), then `manifest` under `tag`. Returns the
    /// number of blobs sent.
    ///
    /// # Errors
    /// Any failure; a tag is only written after every blob is there.
    fn push(&self, tag: &str, manifest: &[u8], blobs: Vec<BlobSource>)
    -> Result<usize, CacheError>;
}

/// Connections per registry: requests on one are serialized.
const CONNECTIONS: usize = 4;

/// A registry repository reached through [`Client`]s: the first connected up front (to
/// learn that the registry answers and takes the login), the others on first use.
pub struct RegistryRemote {
    reference: Reference,
    options: ClientOptions,
    clients: Vec<Mutex<Option<Client>>>,
}

impl std::fmt::Debug for RegistryRemote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryRemote")
            .field("reference", &self.reference.to_string())
            .finish_non_exhaustive()
    }
}

impl RegistryRemote {
    /// Connects (`GET /v2/`, login checked) to `reference`'s registry; its tag or digest,
    /// if any, is ignored: the repository is the cache.
    ///
    /// # Errors
    /// The registry cannot be reached or refuses the login.
    pub fn connect(reference: &Reference, options: ClientOptions) -> Result<Self, CacheError> {
        let mut reference = reference.clone();
        reference.tag = None;
        reference.digest = None;
        let client = Client::connect(&reference, options.clone(), &[])?;
        let mut clients = vec![Mutex::new(Some(client))];
        clients.extend((1..CONNECTIONS).map(|_| Mutex::new(None)));
        Ok(Self {
            reference,
            options,
            clients,
        })
    }

    /// Runs `f` on a free connection (connecting it if it is new), else waits for the first.
    fn with_client<T>(
        &self,
        f: impl FnOnce(&mut Client, &str) -> Result<T, crate::registry::RegistryError>,
    ) -> Result<T, CacheError> {
        let poisoned = || CacheError::Invalid("a registry connection was poisoned".into());
        let mut slot = match self.clients.iter().find_map(|c| c.try_lock().ok()) {
            Some(g) => g,
            None => self
                .clients
                .first()
                .ok_or_else(poisoned)?
                .lock()
                .map_err(|_| poisoned())?,
        };
        if slot.is_none() {
            *slot = Some(Client::connect(&self.reference, self.options.clone(), &[])?);
        }
        let client = slot.as_mut().ok_or_else(poisoned)?;
        Ok(f(client, &self.reference.repository)?)
    }
}

impl Remote for RegistryRemote {
    fn describe(&self) -> String {
        format!("{}/{}", self.reference.registry, self.reference.repository)
    }

    fn has_manifest(&self, tag: &str) -> Result<bool, CacheError> {
        self.with_client(|c, repo| {
            pull::manifest_exists(c, repo, tag, crate::oci::json::MANIFEST_MEDIA_TYPE)
        })
    }

    fn manifest(&self, tag: &str) -> Result<Option<Vec<u8>>, CacheError> {
        self.with_client(|c, repo| {
            pull::manifest(c, repo, tag, crate::oci::json::MANIFEST_MEDIA_TYPE)
        })
    }

    fn blob_bytes(&self, digest: &Digest) -> Result<Option<Vec<u8>>, CacheError> {
        self.with_client(|c, repo| pull::blob_bytes(c, repo, digest))
    }

    fn blob_to_store(&self, digest: &Digest, store: &Store) -> Result<bool, CacheError> {
        self.with_client(|c, repo| pull::blob_to_store(c, repo, digest, store))
    }

    fn push(
        &self,
        tag: &str,
        manifest: &[u8],
        blobs: Vec<BlobSource>,
    ) -> Result<usize, CacheError> {
        let image = PushImage {
            manifest: manifest.to_vec(),
            manifest_digest: Digest::of_bytes(manifest),
            media_type: crate::oci::json::MANIFEST_MEDIA_TYPE.into(),
            tag: Some(tag.to_string()),
            blobs,
            manifests: Vec::new(),
            referrers: Vec::new(),
        };
        // Nodes are uploaded several at a time already: one connection each.
        let options = PushOptions {
            client: self.options.clone(),
            jobs: 1,
            ..PushOptions::default()
        };
        let report = crate::registry::push(&image, &self.reference, &options, &NoPushReporter)?;
        Ok(report.uploaded)
    }
}
