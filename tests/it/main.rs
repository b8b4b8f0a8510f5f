//! End-to-end tests of `compose`: each module drives the real binary and checks its output
//! with independent readers or third-party tools.
#![allow(clippy::unwrap_used)]

/// Audits offline: diff, audit, verify and sbom on images from a fixture Debian repository.
mod audit;
/// Bad inputs: clear errors naming paths, and a store that stays usable.
mod bad_input;
/// Builds the demo recipe and checks the image's structure with our own independent reader.
mod build;
/// `build --cache`: a registry as a shared store between two machines (stores).
mod cache;
/// `compose check` and the build's check: ELF closure, glibc versions, CUDA coherence.
mod check;
/// A build killed with SIGKILL, then rerun: identical digest, nothing corrupt.
mod crash;
/// Live Debian mirror: debian-python built with a lock made at test time, python3 run.
mod debian_live;
/// Debian images end to end against an offline signed repository: lock, update, build, failures.
mod debian_offline;
/// The offline Debian repository generator: real .debs, signed repos, the fixture server.
mod debrepo;
/// Live deep-learning images: tf-cpu built and run (tf-gpu, pytorch-gpu with COMPOSE_LIVE_DL=1).
mod dl_live;
/// Multi-platform images offline: one image index, per-platform locks, shared fragments.
mod multiarch;
/// Live PyPI and Debian: python-numpy locked, built twice, its wheels imported and run.
mod pypi_live;
/// Python images end to end against an offline Debian repository and simple index.
mod pypi_offline;
/// `compose push` / `build --push` against docker-registry: htpasswd, Bearer, retries, faults.
mod registry;
/// Build twice under different conditions: identical digests.
mod repro;
/// Store maintenance commands.
mod store_cmds;
/// skopeo, umoci, runc and podman accept and run our images.
mod validators;
/// The PyPI fixture builder: pip and composer install its wheels alike; the simple-index tree.
mod wheels;
