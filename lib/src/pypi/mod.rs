//! Python packages from PyPI wheels, resolved for the image (not the host) and installed
//! without pip. (Being built: see the issue on Python environments.)
//!
//! Pure: [`target`] (the image's interpreter, glibc and platform → markers and wheel tags),
//! [`filename`] (wheel and sdist names), [`index`] (PEP 691 / PEP 503 pages), [`metadata`]
//! (core metadata), [`resolve`] (pubgrub over a provider), [`wheel`] (installing a wheel's
//! files per the wheel spec).

pub mod client;
pub mod filename;
pub mod index;
pub mod install;
pub mod metadata;
pub mod prebuild;
pub mod resolve;
pub mod target;
pub mod venv;
pub mod wheel;
