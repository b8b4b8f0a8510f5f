//! composer: reproducible OCI images for deep-learning environments from KDL recipes.
//!
//! ```text
//! recipe.kdl ──recipe::load──▶ ImageSpec ──build::plan──▶ Plan (layers, fragments, node ids)
//!                                              │
//!                         build::build_plan (exec on rayon; store skips known nodes)
//!                                              ▼
//!                               BuiltImage ──oci::export──▶ layout dir | oci-archive | docker-archive
//! ```
//!
//! Pure modules (no network, no clock): [`recipe`] parsing and validation, [`layer::tar`],
//! [`layer::compress`], [`layer::plan`], [`graph`], [`oci::json`], [`time`]. Effects live at
//! the edges: [`layer::files`] reads local inputs, [`layer::build`] and [`oci::export`] read
//! and write the store and the output, [`exec`] runs the graph. [`check`] runs its checks
//! over an index of an image's merged tree (pure), which [`check::check_image`] reads from
//! an image on disk. [`cache`] makes a registry repository a remote tier of the store
//! (`build --cache`), its node manifests pure in [`cache::node`]. The CLI (`compose`) only
//! wires these public functions together; `examples/` shows a build without a recipe file.

pub mod audit;
pub mod auth;
pub mod base64;
pub mod build;
pub mod cache;
pub mod check;
pub mod debian;
pub mod diff;
pub mod exec;
pub mod fetch;
pub mod graph;
pub mod inventory;
pub mod layer;
pub mod lock;
pub mod multiarch;
pub mod oci;
pub mod once;
pub mod pin;
pub mod provenance;
pub mod pypi;
pub mod recipe;
pub mod registry;
pub mod report;
pub mod sbom;
pub mod time;
pub mod verify;

pub use build::{BuildError, BuildOptions, BuiltImage, Inputs, Plan, build, build_plan, plan};
pub use composer_store::{Digest, NodeId, Store, StoreError};
pub use layer::Compression;
pub use multiarch::{BuiltIndex, build_platforms};
pub use oci::{Format, export, read_image};
pub use recipe::ImageSpec;
pub use report::{NoReporter, Reporter};
