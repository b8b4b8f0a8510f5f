//! The validated recipe: plain data that the planner turns into a build graph.
//!
//! Everything here is produced by [`crate::recipe::parse`] / [`crate::recipe::load`] after
//! validation, or built directly by library users who do not want a recipe file
//! (see `examples/`). No I/O happens here.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// A whole image: what `compose build` produces from one recipe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSpec {
    /// Image name (`image "NAME"`), used for `org.opencontainers.image.title` and archive names.
    pub name: String,
    /// Tags, in recipe order; never empty after validation (defaults to `latest`).
    pub tags: Vec<String>,
    /// Target platform: the only one, or the first of a multi-platform recipe
    /// (`platform "linux/amd64" "linux/arm64"`).
    pub platform: Platform,
    /// The recipe's further platforms, in recipe order, each different from `platform` and
    /// from each other; empty for a single-platform image (the usual case). Resolution,
    /// planning and building run once per platform on [`ImageSpec::for_platform`].
    pub other_platforms: Vec<Platform>,
    /// The recipe's epoch in seconds since 1970 (`epoch "2026-11-01T00:00:00Z"` or an integer);
    /// `None` when the recipe does not pin one. `SOURCE_DATE_EPOCH` overrides it at build time.
    pub epoch: Option<i64>,
    /// `org.opencontainers.image.version` (from `version "…"`), optional.
    pub version: Option<String>,
    /// `org.opencontainers.image.source`, optional.
    pub source: Option<String>,
    /// `org.opencontainers.image.revision`, optional.
    pub revision: Option<String>,
    /// Layers in image order (bottom first): a topological order of `after`, ties broken by
    /// declaration order.
    pub layers: Vec<LayerSpec>,
    /// Runtime configuration.
    pub config: RuntimeConfig,
    /// The Debian archives packages come from (`debian { … }`), if the recipe uses any.
    pub debian: Option<DebianSource>,
    /// Where Python packages come from (`pypi { index … }`). When layers have `pypi` items
    /// and the recipe has no block, the loader fills in the default index,
    /// <https://pypi.org/simple>; `None` only when nothing uses PyPI.
    pub pypi: Option<PypiSource>,
    /// `sha256:…` of the recipe's source files (the recipe, then its includes in the order
    /// they were read), written to the image's `org.composer.recipe.digest` label. `None`
    /// for a spec built without a recipe file.
    pub recipe_digest: Option<String>,
    /// What `compose check` (and the check after `compose build`) accepts: `check { … }`.
    pub check: CheckSpec,
}

/// `check { host-provided "libfoo.so.1"; allow "elf-closure" "/opt/x/*.so"; skip "cuda" }`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CheckSpec {
    /// Library names (globs) the host supplies, added to the default set (the NVIDIA
    /// driver's `libcuda.so.1`, `libnvidia-*.so.*`, …).
    pub host_provided: Vec<String>,
    /// `(check, glob)`: findings of that check whose file (or subject) matches are shown
    /// as `info` instead of failing.
    pub allow: Vec<(String, String)>,
    /// Checks not run at all.
    pub skip: Vec<String>,
}

/// `pypi { index "URL"; index "URL" only="torch torchvision"; prefix "/opt/venv" }`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PypiSource {
    /// Indexes in recipe order. The first without `only` is the default index; an index with
    /// `only` serves exactly those projects (and they come from nowhere else), so a private
    /// index cannot shadow a public name and vice versa.
    pub indexes: Vec<PypiIndex>,
    /// Install into a virtual environment at this prefix instead of the system
    /// `dist-packages` (`/usr/local/lib/python3.X/dist-packages`).
    pub prefix: Option<String>,
}

/// One package index (PEP 691 JSON, PEP 503 HTML fallback).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PypiIndex {
    /// Simple API base URL (`https://pypi.org/simple`), no trailing `/`.
    pub url: String,
    /// Projects pinned to this index (normalized names); empty = the default index.
    pub only: Vec<String>,
}

/// `debian { archive …; keyring …; snapshot …; include …; exclude …; user … }`: where Debian
/// packages come from and image-wide package policy.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DebianSource {
    /// Archives in recipe order (`archive "URL" suites="trixie trixie-updates" components="main"`).
    pub archives: Vec<DebianArchive>,
    /// OpenPGP keyring file (binary or armored); `None` = the Debian archive keyring shipped
    /// with composer. Relative paths are made absolute against the declaring recipe file.
    pub keyring: Option<PathBuf>,
    /// `snapshot "20261101T000000Z"`: fetch from snapshot.debian.org at that time instead of
    /// the archive URLs (so old locks stay buildable).
    pub snapshot: Option<String>,
    /// `include "base-files" "dash" …`: packages added to the first layer that has `debian`
    /// items (Essential packages are never declared as dependencies).
    pub include: Vec<String>,
    /// `exclude "debconf" …`: packages never installed; dependencies on them count as met.
    pub exclude: Vec<String>,
    /// `user "app" uid=1000 gid=1000 home="/home/app" shell="/bin/sh"`: accounts added to
    /// `/etc/passwd` and `/etc/group` after base-passwd's.
    pub users: Vec<UserSpec>,
}

/// One Debian archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebianArchive {
    /// Base URL (`http://deb.debian.org/debian`), without a trailing `/`.
    pub url: String,
    /// Suites (`trixie`, `trixie-updates`); at least one.
    pub suites: Vec<String>,
    /// Components; default `["main"]`.
    pub components: Vec<String>,
}

/// An account synthesized into `/etc/passwd` / `/etc/group`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSpec {
    /// Login name.
    pub name: String,
    /// uid.
    pub uid: u32,
    /// gid (a group of the same name is created).
    pub gid: u32,
    /// Home directory (default `/home/NAME`), created with the account's owner.
    pub home: String,
    /// Login shell (default `/bin/sh`).
    pub shell: String,
}

/// `os/arch[/variant]`, e.g. `linux/amd64`, `linux/arm64/v8`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Platform {
    /// `linux`.
    pub os: String,
    /// OCI architecture name: `amd64`, `arm64`, ….
    pub architecture: String,
    /// Optional variant (`v8`).
    pub variant: Option<String>,
}

/// One named layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerSpec {
    /// Unique layer name.
    pub name: String,
    /// The layer this one is placed above (`after="…"`), if any.
    pub after: Option<String>,
    /// What goes into the layer, in recipe order. Each item becomes one fragment.
    pub items: Vec<LayerItem>,
}

/// Ownership and permission overrides for placed files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ownership {
    /// Owner uid (default 0).
    pub uid: u32,
    /// Owner gid (default 0).
    pub gid: u32,
}

/// One item of a `files` layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayerItem {
    /// `copy "SRC" "DEST" [mode="0755"] [dir-mode="0755"] [uid=0] [gid=0]`: a local file or
    /// directory tree (recursively; symlinks are kept as symlinks). `src` is resolved relative
    /// to the directory of the recipe file that declares it (absolute after loading).
    Copy {
        /// Local source path.
        src: PathBuf,
        /// Absolute destination path in the image (`/opt/app`). For a directory source, the
        /// directory itself becomes `dest`.
        dest: String,
        /// File mode override (all regular files); default: 0644, or 0755 when any x bit is set.
        mode: Option<u32>,
        /// Directory mode override; default 0755.
        dir_mode: Option<u32>,
        /// Owner.
        owner: Ownership,
    },
    /// `write "DEST" "CONTENT" [mode="0644"] [uid=0] [gid=0]`: a file with inline content.
    Write {
        /// Absolute destination path.
        dest: String,
        /// File content (UTF-8 text).
        content: String,
        /// Mode, default 0644.
        mode: u32,
        /// Owner.
        owner: Ownership,
    },
    /// `dir "DEST" [mode="0755"] [uid=0] [gid=0]`: an (empty) directory.
    Dir {
        /// Absolute destination path.
        dest: String,
        /// Mode, default 0755.
        mode: u32,
        /// Owner.
        owner: Ownership,
    },
    /// `debian "python3" "ca-certificates=20250419" "libc6 (>= 2.36)"`: Debian packages (with
    /// their dependency closure) installed into this layer. Needs a `debian { … }` source.
    Debian {
        /// Requested packages: a name, optionally `=VERSION` or a ` (OP VERSION)` constraint.
        packages: Vec<String>,
    },
    /// `pypi "numpy" "requests>=2.31" "tensorflow[and-cuda]==2.21.0"`: PEP 508 requirements
    /// resolved for the image's own Python (one resolution across all layers) and installed
    /// from wheels into this layer (each distribution lands in the lowest layer that pulls it).
    Pypi {
        /// PEP 508 requirement strings, validated when the recipe is loaded.
        requirements: Vec<String>,
    },
    /// `symlink "DEST" "TARGET"`: a symbolic link at `dest` pointing to `target` (verbatim).
    Symlink {
        /// Absolute destination path.
        dest: String,
        /// Link target, stored as written.
        target: String,
    },
}

/// The image's runtime config (OCI image config `config` object).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RuntimeConfig {
    /// `env "KEY" "VALUE"`, in recipe order; a later duplicate key replaces the earlier value
    /// in place.
    pub env: Vec<(String, String)>,
    /// `entrypoint "a" "b"`.
    pub entrypoint: Option<Vec<String>>,
    /// `cmd "a" "b"`.
    pub cmd: Option<Vec<String>>,
    /// `workdir "/path"`.
    pub workdir: Option<String>,
    /// `user "uid[:gid]"` or a name.
    pub user: Option<String>,
    /// `label "k" "v"`: config labels.
    pub labels: BTreeMap<String, String>,
    /// `annotation "k" "v"`: manifest annotations (added to the `org.opencontainers.image.*` ones).
    pub annotations: BTreeMap<String, String>,
    /// `expose "8080/tcp"` (a bare port means tcp), normalized to `PORT/PROTO`.
    pub exposed_ports: Vec<String>,
    /// `volume "/data"`.
    pub volumes: Vec<String>,
    /// `stop-signal "SIGTERM"`.
    pub stop_signal: Option<String>,
}

impl ImageSpec {
    /// Every target platform, in recipe order: `platform`, then `other_platforms`.
    #[must_use]
    pub fn platforms(&self) -> Vec<Platform> {
        std::iter::once(self.platform.clone())
            .chain(self.other_platforms.iter().cloned())
            .collect()
    }

    /// Whether the recipe names more than one platform (its output is an image index).
    #[must_use]
    pub fn is_multi_platform(&self) -> bool {
        !self.other_platforms.is_empty()
    }

    /// This spec for `platform` alone: what one platform's resolution, plan and image see.
    #[must_use]
    pub fn for_platform(&self, platform: &Platform) -> ImageSpec {
        ImageSpec {
            platform: platform.clone(),
            other_platforms: Vec::new(),
            ..self.clone()
        }
    }

    /// This spec with `platforms` (at least one) instead of its own, in that order (the
    /// `--platform` override of `compose build` and `compose lock`).
    #[must_use]
    pub fn with_platforms(&self, platforms: &[Platform]) -> ImageSpec {
        let mut s = self.clone();
        if let Some((first, rest)) = platforms.split_first() {
            s.platform = first.clone();
            s.other_platforms = rest.to_vec();
        }
        s
    }
}

impl Platform {
    /// `linux/amd64`.
    #[must_use]
    pub fn linux_amd64() -> Self {
        Self {
            os: "linux".into(),
            architecture: "amd64".into(),
            variant: None,
        }
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}
