//! Debian packages without dpkg, apt or maintainer scripts.
//!
//! Pure: [`version`] (dpkg ordering), [`control`] (deb822 stanzas and relation fields),
//! [`release`] (Release files and index hashes), [`index`] (package records), [`resolve`]
//! (apt-like dependency closure given an index), [`synth`] (files that maintainer scripts
//! would have made). Reading bytes: [`pgp`] (InRelease signatures), [`deb`] (`.deb` archives
//! to normalized entries).

pub mod archive;
pub mod control;
pub mod deb;
pub mod index;
pub mod install;
pub mod pgp;
pub mod release;
pub mod resolve;
pub mod synth;
pub mod version;
