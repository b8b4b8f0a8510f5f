//! Pushing images to OCI registries (the distribution spec's push API) over blocking HTTP.
//!
//! - [`reference`]: `host[:port]/repo[:tag|@digest]`, pure;
//! - [`challenge`]: `WWW-Authenticate` parsing, pure;
//! - [`credentials`]: logins from the environment, the Docker config or a credential helper;
//! - [`plan`]: monolithic vs chunked uploads, ranges, backoff, URL helpers, pure;
//! - [`client`]: TLS, `--insecure` hosts, Basic and Bearer authentication, retries;
//! - [`source`]: an image's manifest and blobs from a layout, an oci-archive or the store;
//! - [`push`]: the push itself, blobs first and the manifest (tag) last;
//! - [`pull`]: manifests and blobs read back, blobs verified into the store (the shared
//!   store, [`crate::cache`], uses it);
//! - [`error`]: failures naming the registry, blob, HTTP status and registry error text.
//!
//! ```no_run
//! use composer::registry::{self, PushOptions, Reference};
//! let image = registry::source::from_path("out/demo".as_ref(), Some("1.0"))?;
//! let reference = Reference::parse("registry.example:5000/team/demo:1.0")?;
//! let mut options = PushOptions::default();
//! options.client.login = registry::credentials::from_environment(&reference.registry)?;
//! let report = registry::push(&image, &reference, &options, &registry::NoPushReporter)?;
//! println!("{} ({} uploaded, {} skipped)", report.digest, report.uploaded, report.skipped);
//! # Ok::<(), registry::RegistryError>(())
//! ```

pub mod challenge;
pub mod client;
pub mod credentials;
pub mod error;
pub mod plan;
pub mod pull;
pub mod push;
pub mod reference;
pub mod source;

pub use client::ClientOptions;
pub use error::RegistryError;
pub use push::{
    BlobOutcome, DEFAULT_PUSH_JOBS, NoPushReporter, PushOptions, PushReport, PushReporter, push,
};
pub use reference::Reference;
pub use source::{PushDoc, PushImage};
