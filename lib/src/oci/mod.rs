//! OCI output: canonical JSON ([`json`], pure), writing an image layout directory,
//! an oci-archive or a docker-archive from the store ([`export`]), and reading any of the
//! three back for `inspect` ([`read`]), and streaming their layers' entries ([`walk`]).

pub mod artifact;
pub mod export;
pub mod json;
pub mod read;
pub mod walk;

pub use export::{ExportError, Format, export, export_index};
pub use read::{ImageView, PlatformsView, read_image, read_image_for};
