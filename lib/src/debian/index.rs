//! Package records as they appear in a `Packages` index, tagged with where they came from.

use serde::{Deserialize, Serialize};

/// One binary package stanza of a `Packages` index (the fields composer uses; relation fields
/// are kept raw and parsed by [`super::control`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexPackage {
    /// `Package`.
    pub name: String,
    /// `Version` (raw, compare with [`super::version`]).
    pub version: String,
    /// `Architecture` (`amd64`, `all`, …).
    pub architecture: String,
    /// `Depends`, raw.
    #[serde(default)]
    pub depends: String,
    /// `Pre-Depends`, raw.
    #[serde(default)]
    pub pre_depends: String,
    /// `Provides`, raw.
    #[serde(default)]
    pub provides: String,
    /// `Conflicts`, raw.
    #[serde(default)]
    pub conflicts: String,
    /// `Breaks`, raw.
    #[serde(default)]
    pub breaks: String,
    /// `Replaces`, raw (lets a package overwrite another's files).
    #[serde(default)]
    pub replaces: String,
    /// `Source` as written (`gcc-12` or `gcc-12 (12.2.0-14)`); `None` when the source
    /// package has the binary's name and version.
    #[serde(default)]
    pub source: Option<String>,
    /// `Essential: yes`.
    #[serde(default)]
    pub essential: bool,
    /// `Priority`.
    #[serde(default)]
    pub priority: Option<String>,
    /// `Multi-Arch`.
    #[serde(default)]
    pub multi_arch: Option<String>,
    /// `Filename` (relative to the archive URL).
    pub filename: String,
    /// `Size`.
    pub size: u64,
    /// `SHA256` (64 lowercase hex).
    pub sha256: String,
    /// The suite whose index listed it (`trixie-security`).
    pub suite: String,
    /// The component (`main`).
    pub component: String,
    /// Archive base URL it came from.
    pub archive: String,
}
