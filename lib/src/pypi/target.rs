//! The image's Python environment: its interpreter, glibc and machine, taken from the
//! image's Debian packages rather than from the build host, and what follows from them —
//! PEP 508 marker values and the wheel tags the image accepts, in priority order.
//!
//! The tag order is `packaging.tags.sys_tags()` for CPython on glibc Linux
//! (`cpython_tags` then `compatible_tags`, platforms from `_manylinux.platform_tags`),
//! with two deliberate differences: no `linux_<arch>` tag (PyPI refuses such wheels; they
//! only come from local builds) and no musllinux tags (a Debian image has glibc). The
//! `_manylinux` override module is not consulted: Debian's interpreter does not ship one.
//!
//! `platform_release` and `platform_version` are the running kernel's, unknown when the
//! image is built. [`Target::marker_env`] sets them to the empty string; use
//! [`Target::evaluate`] (or [`markers_need_unknown`]) so that a requirement whose outcome
//! depends on them is an error rather than a silent guess.

use std::fmt;
use std::str::FromStr;

use pep508_rs::{
    ExtraName, MarkerEnvironment, MarkerEnvironmentBuilder, MarkerTree, MarkerTreeKind,
    MarkerValueString,
};

use super::filename::WheelFilename;

/// Why the image's Python environment cannot be derived from its Debian packages.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// The Debian version of the `python3.X` package is not one this module understands.
    #[error("cannot read a Python version from Debian version `{version}`: {reason}")]
    Python {
        /// The Debian version as given.
        version: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The Debian version of `libc6` is not one this module understands.
    #[error("cannot read a glibc version from libc6 version `{version}`: {reason}")]
    Glibc {
        /// The Debian version as given.
        version: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An OCI architecture with no manylinux wheels.
    #[error(
        "no manylinux wheels exist for OCI architecture `{0}` (supported: amd64, arm64, ppc64le, s390x, riscv64)"
    )]
    Arch(String),
}

/// A marker whose outcome for the image depends on a value the image does not fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("it depends on {key}, which is the running kernel's and not known for an image")]
pub struct UnknownMarker {
    /// The marker variable: `platform_release` or `platform_version`.
    pub key: &'static str,
}

/// One wheel tag: `{python}-{abi}-{platform}`, e.g. `cp313-abi3-manylinux_2_17_x86_64`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WheelTag {
    /// Python tag (`cp313`, `py3`).
    pub python: String,
    /// ABI tag (`cp313`, `abi3`, `none`).
    pub abi: String,
    /// Platform tag (`manylinux_2_28_x86_64`, `any`).
    pub platform: String,
}

impl fmt::Display for WheelTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{}", self.python, self.abi, self.platform)
    }
}

/// The Python environment inside an image.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    /// The interpreter's `(major, minor)`, e.g. `(3, 13)`.
    pub python: (u32, u32),
    /// The interpreter's full version as Python reports it, e.g. `3.13.5` (or `3.14.0rc2`).
    pub python_full: String,
    /// The image's glibc `(major, minor)`, e.g. `(2, 41)`.
    pub glibc: (u32, u32),
    /// The machine as Python names it (`platform.machine()`): `x86_64`, `aarch64`, …
    pub arch: String,
    /// Always `linux`.
    pub os: String,
}

/// The legacy manylinux names, each an alias of a PEP 600 tag (PEP 600, "Legacy manylinux
/// tags").
const LEGACY_MANYLINUX: [(u32, &str); 3] = [
    (17, "manylinux2014"),
    (12, "manylinux2010"),
    (5, "manylinux1"),
];

impl Target {
    /// Derives the image's environment from the Debian version of its `python3.X` package
    /// (`3.13.5-2+deb13u5`), of its `libc6` package (`2.41-12`), and from the image's OCI
    /// architecture (`amd64`, `arm64`, `ppc64le`, `s390x`, `riscv64`).
    ///
    /// An epoch and the Debian revision are dropped; a Debian pre-release
    /// (`3.14.0~rc2`) becomes Python's spelling (`3.14.0rc2`); a `+…` repack suffix is
    /// ignored.
    ///
    /// # Errors
    /// [`TargetError`] when the Python version is not `3.MINOR.MICRO[~(a|b|rc)N]`, the glibc
    /// version is not `2.MINOR…`, or the architecture has no manylinux wheels.
    pub fn from_debian(
        python_pkg_version: &str,
        libc6_version: &str,
        oci_arch: &str,
    ) -> Result<Target, TargetError> {
        let (python, python_full) =
            parse_python(python_pkg_version).map_err(|reason| TargetError::Python {
                version: python_pkg_version.to_string(),
                reason,
            })?;
        let glibc = parse_glibc(libc6_version).map_err(|reason| TargetError::Glibc {
            version: libc6_version.to_string(),
            reason,
        })?;
        let arch = match oci_arch {
            "amd64" => "x86_64",
            "arm64" => "aarch64",
            "ppc64le" => "ppc64le",
            "s390x" => "s390x",
            "riscv64" => "riscv64",
            other => return Err(TargetError::Arch(other.to_string())),
        };
        Ok(Target {
            python,
            python_full,
            glibc,
            arch: arch.to_string(),
            os: "linux".to_string(),
        })
    }

    /// The PEP 508 marker values of the image's interpreter (CPython on Linux).
    /// `platform_release` and `platform_version` are the empty string: they are the
    /// kernel's, unknown at build time. Evaluate through [`Target::evaluate`] to have a
    /// marker that depends on them reported.
    pub fn marker_env(&self) -> MarkerEnvironment {
        let python_version = format!("{}.{}", self.python.0, self.python.1);
        // `python_full` is checked by `from_debian`; a hand-built Target with an
        // unparseable one falls back to the minor version rather than failing.
        let python_full = if pep440_rs::Version::from_str(&self.python_full).is_ok() {
            self.python_full.as_str()
        } else {
            python_version.as_str()
        };
        let builder = MarkerEnvironmentBuilder {
            implementation_name: "cpython",
            implementation_version: python_full,
            os_name: "posix",
            platform_machine: &self.arch,
            platform_python_implementation: "CPython",
            platform_release: "",
            platform_system: "Linux",
            platform_version: "",
            python_full_version: python_full,
            python_version: &python_version,
            sys_platform: "linux",
        };
        match MarkerEnvironment::try_from(builder) {
            Ok(env) => env,
            // Both version strings were parsed above (or are `N.M` built from numbers).
            Err(e) => unreachable!("checked marker versions do not parse: {e}"),
        }
    }

    /// Evaluates `marker` for the image with the given extras active.
    ///
    /// # Errors
    /// [`UnknownMarker`] when the outcome for this image depends on `platform_release` or
    /// `platform_version`. A marker that mentions them on a branch the image never takes
    /// (`sys_platform == "darwin" and platform_release >= "20"`) evaluates normally.
    pub fn evaluate(
        &self,
        marker: &MarkerTree,
        extras: &[ExtraName],
    ) -> Result<bool, UnknownMarker> {
        evaluate_with_unknowns(marker, &self.marker_env(), extras)
    }

    /// Every tag a wheel may carry to be installable in the image, best first, as
    /// `packaging.tags.sys_tags()` orders them for this CPython (see the module docs for
    /// what is left out).
    pub fn compatible_tags(&self) -> Vec<WheelTag> {
        let platforms = self.platforms();
        let groups = self.platform_groups();
        let any = self.any_pythons();
        let mut tags = Vec::with_capacity(groups.len() * platforms.len() + any.len());
        for (python, abi) in &groups {
            for platform in &platforms {
                tags.push(WheelTag {
                    python: python.clone(),
                    abi: abi.clone(),
                    platform: platform.clone(),
                });
            }
        }
        for python in any {
            tags.push(WheelTag {
                python,
                abi: "none".to_string(),
                platform: "any".to_string(),
            });
        }
        tags
    }

    /// The image's platform tags, best first: `manylinux_2_N_<arch>` for its glibc 2.N down
    /// to `manylinux_2_5` on x86_64 (`manylinux_2_17` elsewhere), each legacy alias
    /// (`manylinux2014`, `manylinux2010`, `manylinux1`) right after its PEP 600 twin, as
    /// `packaging._manylinux.platform_tags` yields them. Never `linux_<arch>`. Empty for a
    /// glibc major other than 2 (which [`Target::from_debian`] refuses).
    pub fn platforms(&self) -> Vec<String> {
        let (major, minor) = self.glibc;
        if major != 2 {
            return Vec::new();
        }
        let oldest = if self.arch == "x86_64" { 5 } else { 17 };
        let mut out = Vec::new();
        for m in (oldest..=minor).rev() {
            out.push(format!("manylinux_2_{m}_{}", self.arch));
            if let Some((_, legacy)) = LEGACY_MANYLINUX.iter().find(|(l, _)| *l == m) {
                out.push(format!("{legacy}_{}", self.arch));
            }
        }
        out
    }

    /// The position of `tag` in [`Target::compatible_tags`] (0 is best), or `None` when
    /// the image cannot use it. Computed without building the whole list.
    pub fn tag_index(&self, tag: &WheelTag) -> Option<usize> {
        if tag.platform == "any" {
            if tag.abi != "none" {
                return None;
            }
            let any = self.any_pythons();
            let base = self.platform_groups().len() * self.platforms().len();
            return any.iter().position(|p| *p == tag.python).map(|i| base + i);
        }
        let platforms = self.platforms();
        let p = platforms.iter().position(|p| *p == tag.platform)?;
        let g = self
            .platform_groups()
            .iter()
            .position(|(python, abi)| *python == tag.python && *abi == tag.abi)?;
        Some(g * platforms.len() + p)
    }

    /// The priority of a wheel for the image: the best [`Target::tag_index`] over every
    /// tag in its compressed tag sets (lower is better), or `None` when no tag fits — the
    /// wheel cannot be installed in the image.
    pub fn tag_priority(&self, wheel: &WheelFilename) -> Option<usize> {
        wheel.tags().filter_map(|tag| self.tag_index(&tag)).min()
    }

    /// The CPython ABI tag: `cp313`; `cp37m` before 3.8 (pymalloc builds, as Debian's).
    fn abi(&self) -> String {
        let (major, minor) = self.python;
        let pymalloc = if (major, minor) < (3, 8) { "m" } else { "" };
        format!("cp{major}{minor}{pymalloc}")
    }

    /// The `(python, abi)` pairs combined with every platform, in order: `cpXY-cpXY`,
    /// `cpXY-abi3`, `cpXY-none`, `cpXW-abi3` for W < Y down to 2, then `pyXY`, `pyX`,
    /// `pyXW` for W < Y down to 0, all with `none`.
    fn platform_groups(&self) -> Vec<(String, String)> {
        let (major, minor) = self.python;
        let interpreter = format!("cp{major}{minor}");
        let abi3 = (major, minor) >= (3, 2);
        let mut groups = vec![(interpreter.clone(), self.abi())];
        if abi3 {
            groups.push((interpreter.clone(), "abi3".to_string()));
        }
        groups.push((interpreter, "none".to_string()));
        if abi3 {
            for m in (2..minor).rev() {
                groups.push((format!("cp{major}{m}"), "abi3".to_string()));
            }
        }
        for python in self.py_range() {
            groups.push((python, "none".to_string()));
        }
        groups
    }

    /// The python tags paired with `none-any`, in order: `cpXY`, then `pyXY`, `pyX`, `pyXW`…
    fn any_pythons(&self) -> Vec<String> {
        let (major, minor) = self.python;
        let mut out = vec![format!("cp{major}{minor}")];
        out.extend(self.py_range());
        out
    }

    /// `packaging.tags._py_interpreter_range`: `pyXY`, `pyX`, then `pyXW` for W < Y down to 0.
    fn py_range(&self) -> Vec<String> {
        let (major, minor) = self.python;
        let mut out = vec![format!("py{major}{minor}"), format!("py{major}")];
        out.extend((0..minor).rev().map(|m| format!("py{major}{m}")));
        out
    }
}

/// Parses a manylinux platform tag (PEP 600 or legacy) into its glibc version and
/// architecture: `manylinux_2_28_x86_64` → `((2, 28), "x86_64")`,
/// `manylinux2014_aarch64` → `((2, 17), "aarch64")`. `None` for anything else.
pub fn manylinux_glibc(platform: &str) -> Option<((u32, u32), &str)> {
    for (minor, legacy) in LEGACY_MANYLINUX {
        if let Some(arch) = platform
            .strip_prefix(legacy)
            .and_then(|rest| rest.strip_prefix('_'))
        {
            return (!arch.is_empty()).then_some(((2, minor), arch));
        }
    }
    let rest = platform.strip_prefix("manylinux_")?;
    let (major, rest) = rest.split_once('_')?;
    let (minor, arch) = rest.split_once('_')?;
    let number = |s: &str| {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u32>().ok())
            .flatten()
    };
    Some(((number(major)?, number(minor)?), arch)).filter(|(_, arch)| !arch.is_empty())
}

/// The first marker variable in `marker` that an image cannot know (`platform_release`,
/// `platform_version`), whether or not the image's own values would reach it. For an
/// error that only fires when the outcome really depends on it, use [`Target::evaluate`].
pub fn markers_need_unknown(marker: &MarkerTree) -> Option<&'static str> {
    match marker.kind() {
        MarkerTreeKind::True | MarkerTreeKind::False => None,
        MarkerTreeKind::Version(node) => node
            .edges()
            .find_map(|(_, child)| markers_need_unknown(&child)),
        MarkerTreeKind::String(node) => unknown_key(node.key()).or_else(|| {
            node.children()
                .find_map(|(_, child)| markers_need_unknown(&child))
        }),
        MarkerTreeKind::In(node) => unknown_key(node.key()).or_else(|| {
            node.children()
                .find_map(|(_, child)| markers_need_unknown(&child))
        }),
        MarkerTreeKind::Contains(node) => unknown_key(node.key()).or_else(|| {
            node.children()
                .find_map(|(_, child)| markers_need_unknown(&child))
        }),
        MarkerTreeKind::Extra(node) => node
            .children()
            .find_map(|(_, child)| markers_need_unknown(&child)),
    }
}

fn unknown_key(key: &MarkerValueString) -> Option<&'static str> {
    match key {
        MarkerValueString::PlatformRelease => Some("platform_release"),
        MarkerValueString::PlatformVersion | MarkerValueString::PlatformVersionDeprecated => {
            Some("platform_version")
        }
        _ => None,
    }
}

/// [`Target::evaluate`] with an environment already built by [`Target::marker_env`], for
/// callers that evaluate many markers.
///
/// Evaluates like `MarkerTree::evaluate`, following the one branch the environment picks
/// at each known variable; at `platform_release` or `platform_version` every branch is
/// evaluated, and they must agree.
///
/// # Errors
/// [`UnknownMarker`] when the branches at an unknown variable disagree.
pub fn evaluate_marker(
    marker: &MarkerTree,
    env: &MarkerEnvironment,
    extras: &[ExtraName],
) -> Result<bool, UnknownMarker> {
    evaluate_with_unknowns(marker, env, extras)
}

fn evaluate_with_unknowns(
    marker: &MarkerTree,
    env: &MarkerEnvironment,
    extras: &[ExtraName],
) -> Result<bool, UnknownMarker> {
    // All branches of a node keyed on an unknown variable: the result if they agree.
    fn all_agree(
        key: &'static str,
        children: impl Iterator<Item = MarkerTree>,
        env: &MarkerEnvironment,
        extras: &[ExtraName],
    ) -> Result<bool, UnknownMarker> {
        let mut seen = None;
        for child in children {
            let value = evaluate_with_unknowns(&child, env, extras)?;
            if seen.is_some_and(|s| s != value) {
                return Err(UnknownMarker { key });
            }
            seen = Some(value);
        }
        Ok(seen.unwrap_or(false))
    }

    match marker.kind() {
        MarkerTreeKind::True => Ok(true),
        MarkerTreeKind::False => Ok(false),
        MarkerTreeKind::Version(node) => {
            let value = env.get_version(node.key());
            for (range, child) in node.edges() {
                if range.contains(value) {
                    return evaluate_with_unknowns(&child, env, extras);
                }
            }
            Ok(false)
        }
        MarkerTreeKind::String(node) => {
            if let Some(key) = unknown_key(node.key()) {
                return all_agree(key, node.children().map(|(_, c)| c), env, extras);
            }
            let value = env.get_string(node.key()).to_string();
            for (range, child) in node.children() {
                if range.contains(&value) {
                    return evaluate_with_unknowns(&child, env, extras);
                }
            }
            Ok(false)
        }
        MarkerTreeKind::In(node) => {
            if let Some(key) = unknown_key(node.key()) {
                return all_agree(key, node.children().map(|(_, c)| c), env, extras);
            }
            let taken = node.value().contains(env.get_string(node.key()));
            evaluate_with_unknowns(&node.edge(taken), env, extras)
        }
        MarkerTreeKind::Contains(node) => {
            if let Some(key) = unknown_key(node.key()) {
                return all_agree(key, node.children().map(|(_, c)| c), env, extras);
            }
            let taken = env.get_string(node.key()).contains(node.value());
            evaluate_with_unknowns(&node.edge(taken), env, extras)
        }
        MarkerTreeKind::Extra(node) => {
            let taken = match node.name() {
                pep508_rs::MarkerValueExtra::Extra(name) => extras.contains(name),
                pep508_rs::MarkerValueExtra::Arbitrary(_) => false,
            };
            evaluate_with_unknowns(&node.edge(taken), env, extras)
        }
    }
}

/// Strips a Debian epoch (`1:`) and revision (`-2+deb13u5`), leaving the upstream version.
fn debian_upstream(version: &str) -> &str {
    let v = version.trim();
    let v = match v.split_once(':') {
        Some((epoch, rest)) if !epoch.is_empty() && epoch.bytes().all(|b| b.is_ascii_digit()) => {
            rest
        }
        _ => v,
    };
    match v.rsplit_once('-') {
        Some((upstream, _)) => upstream,
        None => v,
    }
}

/// Leading `N(.N)*` of `s` as numbers, and the rest.
fn leading_numbers(s: &str) -> (Vec<u32>, &str) {
    let mut numbers = Vec::new();
    let mut rest = s;
    loop {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let Ok(n) = rest[..digits].parse::<u32>() else {
            break;
        };
        numbers.push(n);
        rest = &rest[digits..];
        match rest.strip_prefix('.') {
            Some(after) if after.starts_with(|c: char| c.is_ascii_digit()) => rest = after,
            _ => break,
        }
    }
    (numbers, rest)
}

fn parse_python(debian_version: &str) -> Result<((u32, u32), String), String> {
    let upstream = debian_upstream(debian_version);
    let (numbers, rest) = leading_numbers(upstream);
    let [major, minor, micro] = numbers[..] else {
        return Err(format!(
            "expected an upstream version MAJOR.MINOR.MICRO, found `{upstream}`"
        ));
    };
    if major != 3 {
        return Err(format!("Python {major} is not supported, only Python 3"));
    }
    let mut full = format!("{major}.{minor}.{micro}");
    if let Some(pre) = rest.strip_prefix('~') {
        let pre = pre.split('+').next().unwrap_or_default();
        let kind_len = pre.bytes().take_while(u8::is_ascii_alphabetic).count();
        let (kind, number) = pre.split_at(kind_len);
        if !matches!(kind, "a" | "b" | "rc")
            || number.is_empty()
            || !number.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(format!("unknown pre-release `~{pre}`"));
        }
        full.push_str(pre);
    } else if !(rest.is_empty() || rest.starts_with('+')) {
        return Err(format!("unexpected `{rest}` after the version number"));
    }
    Ok(((major, minor), full))
}

fn parse_glibc(debian_version: &str) -> Result<(u32, u32), String> {
    let upstream = debian_upstream(debian_version);
    let (numbers, _) = leading_numbers(upstream);
    match numbers[..] {
        [2, minor, ..] => Ok((2, minor)),
        [major, _, ..] => Err(format!("glibc {major}.x is not supported, only glibc 2")),
        _ => Err(format!("expected MAJOR.MINOR, found `{upstream}`")),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    fn trixie_amd64() -> Target {
        Target::from_debian("3.13.5-2+deb13u5", "2.41-12", "amd64").unwrap()
    }

    fn marker(text: &str) -> MarkerTree {
        MarkerTree::from_str(text).unwrap()
    }

    /// sha256 of the tags joined by `\n` with a trailing `\n`.
    fn digest(tags: &[WheelTag]) -> String {
        let mut h = Sha256::new();
        for t in tags {
            h.update(t.to_string().as_bytes());
            h.update(b"\n");
        }
        hex::encode(h.finalize())
    }

    #[test]
    fn reads_debian_versions() {
        let t = trixie_amd64();
        assert_eq!(t.python, (3, 13));
        assert_eq!(t.python_full, "3.13.5");
        assert_eq!(t.glibc, (2, 41));
        assert_eq!(t.arch, "x86_64");
        assert_eq!(t.os, "linux");

        let t = Target::from_debian("3.11.2-6+deb12u6", "2.36-9+deb12u10", "arm64").unwrap();
        assert_eq!((t.python, t.python_full.as_str()), ((3, 11), "3.11.2"));
        assert_eq!((t.glibc, t.arch.as_str()), ((2, 36), "aarch64"));

        let t = Target::from_debian("1:3.14.0~rc2-1", "2.39-0ubuntu8.4", "amd64").unwrap();
        assert_eq!((t.python, t.python_full.as_str()), ((3, 14), "3.14.0rc2"));
        assert_eq!(t.glibc, (2, 39));

        for (py, libc, arch) in [
            ("3.13-1", "2.41-12", "amd64"),
            ("2.7.18-8", "2.41-12", "amd64"),
            ("3.13.5~dev1-1", "2.41-12", "amd64"),
            ("3.13.5x-1", "2.41-12", "amd64"),
            ("3.13.5-1", "2-1", "amd64"),
            ("3.13.5-1", "2.41-12", "i386"),
            ("3.13.5-1", "2.41-12", "x86_64"),
        ] {
            let e = Target::from_debian(py, libc, arch).unwrap_err();
            assert!(!e.to_string().is_empty());
        }
    }

    #[test]
    fn tags_for_cp313_glibc_241_x86_64() {
        let tags: Vec<String> = trixie_amd64()
            .compatible_tags()
            .iter()
            .map(ToString::to_string)
            .collect();
        let first: Vec<String> = (0..12)
            .map(|i| format!("cp313-cp313-manylinux_2_{}_x86_64", 41 - i))
            .collect();
        assert_eq!(tags[..12], first[..]);
        // 40 platforms: manylinux_2_41 … manylinux_2_5 (37) and 3 legacy aliases.
        // (cp313-cp313, cp313-abi3, cp313-none, cp312…cp32-abi3, py313, py3, py312…py30)
        // = 3 + 11 + 15 = 29 groups × 40, then 16 `-none-any` tags.
        assert_eq!(tags.len(), 29 * 40 + 16);
        assert_eq!(tags.len(), 1176);
        let at = |s: &str| tags.iter().position(|t| t == s).unwrap();
        assert_eq!(at("cp313-cp313-manylinux_2_17_x86_64"), 24);
        assert_eq!(at("cp313-cp313-manylinux2014_x86_64"), 25);
        assert_eq!(at("cp313-cp313-manylinux_2_16_x86_64"), 26);
        assert_eq!(at("cp313-cp313-manylinux_2_12_x86_64"), 30);
        assert_eq!(at("cp313-cp313-manylinux2010_x86_64"), 31);
        assert_eq!(at("cp313-cp313-manylinux_2_5_x86_64"), 38);
        assert_eq!(at("cp313-cp313-manylinux1_x86_64"), 39);
        assert_eq!(at("cp313-abi3-manylinux_2_41_x86_64"), 40);
        assert_eq!(at("cp313-none-manylinux_2_41_x86_64"), 80);
        assert_eq!(at("cp312-abi3-manylinux_2_41_x86_64"), 120);
        assert_eq!(at("cp32-abi3-manylinux1_x86_64"), 559);
        assert_eq!(at("py313-none-manylinux_2_41_x86_64"), 560);
        assert_eq!(at("py3-none-manylinux_2_41_x86_64"), 600);
        assert_eq!(at("py312-none-manylinux_2_41_x86_64"), 640);
        assert_eq!(at("py30-none-manylinux1_x86_64"), 1159);
        assert_eq!(
            tags[1160..1164],
            [
                "cp313-none-any",
                "py313-none-any",
                "py3-none-any",
                "py312-none-any"
            ]
        );
        assert_eq!(tags.last().unwrap(), "py30-none-any");
        assert!(
            !tags
                .iter()
                .any(|t| t.contains("linux_x86_64") && !t.contains("manylinux"))
        );
        assert!(!tags.iter().any(|t| t.contains("musllinux")));
    }

    /// The whole lists (sha256 of the tags, one per line), checked against pip 23.2.1's
    /// vendored packaging 21.3 driven with the image's values:
    /// `cpython_tags((3, Y), [abi], plats)` + `compatible_tags((3, Y), "cp3Y", plats)`,
    /// `plats` from `_manylinux.platform_tags` with `_get_glibc_version` patched (it yields
    /// no `linux_<arch>` tag; `sys_tags` would append one per group).
    #[test]
    fn tag_lists_match_packaging() {
        let cases = [
            (
                trixie_amd64(),
                1176,
                "649b56b895873c0fc2a89fd838acd21e9136333d20d27d32fb874d62ac4d6bb5",
            ),
            (
                Target::from_debian("3.13.5-2", "2.41-12", "arm64").unwrap(),
                770,
                "fc6fd442b357ffa2c6a9e9d1203ab88f6e1281fc4daf2a4d9d9e0e8041307cba",
            ),
            (
                Target::from_debian("3.11.2-6", "2.36-9", "amd64").unwrap(),
                889,
                "f9abe04da0767d02576760e98ccef6ba9498cdc25857edce454a1e53317c95b9",
            ),
            (
                // Buster: the pymalloc ABI `cp37m`.
                Target::from_debian("3.7.3-2+deb10u7", "2.28-10+deb10u4", "amd64").unwrap(),
                469,
                "df6bc54e07387c7a5d7d858d722aae9159a1a704e5619fd70ceb8ed3b77e79fb",
            ),
        ];
        for (target, len, sha) in cases {
            let tags = target.compatible_tags();
            assert_eq!(tags.len(), len, "{target:?}");
            assert_eq!(digest(&tags), sha, "{target:?}");
        }
    }

    #[test]
    fn aarch64_stops_at_manylinux2014() {
        let t = Target::from_debian("3.13.5-2", "2.41-12", "arm64").unwrap();
        let plats = t.platforms();
        assert_eq!(plats.len(), 26);
        assert_eq!(plats[0], "manylinux_2_41_aarch64");
        assert_eq!(
            plats[plats.len() - 2..],
            ["manylinux_2_17_aarch64", "manylinux2014_aarch64"]
        );
    }

    #[test]
    fn tag_index_agrees_with_the_list() {
        for target in [
            trixie_amd64(),
            Target::from_debian("3.13.5-2", "2.41-12", "arm64").unwrap(),
            Target::from_debian("3.7.3-1", "2.28-10", "amd64").unwrap(),
            Target::from_debian("3.11.2-6", "2.12-1", "amd64").unwrap(),
        ] {
            for (i, tag) in target.compatible_tags().iter().enumerate() {
                assert_eq!(target.tag_index(tag), Some(i), "{tag}");
            }
        }
        let t = Target::from_debian("3.7.3-1", "2.28-10", "amd64").unwrap();
        assert_eq!(
            t.compatible_tags()[0].to_string(),
            "cp37-cp37m-manylinux_2_28_x86_64"
        );
    }

    #[test]
    fn wheel_priority() {
        let t = trixie_amd64();
        let prio = |name: &str| t.tag_priority(&WheelFilename::parse(name).unwrap());
        // The legacy alias and its PEP 600 twin in one compressed set: the better one wins.
        assert_eq!(
            prio("numpy-2.3.2-cp313-cp313-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"),
            Some(24)
        );
        assert_eq!(
            prio("numpy-1.0-cp313-cp313-manylinux2014_x86_64.whl"),
            Some(25)
        );
        assert_eq!(
            prio("numpy-2.3.2-cp313-cp313-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl"),
            Some(13)
        );
        // Newer glibc than the image: not installable.
        assert_eq!(prio("x-1.0-cp313-cp313-manylinux_2_42_x86_64.whl"), None);
        assert_eq!(prio("x-1.0-cp313-cp313-manylinux_2_41_x86_64.whl"), Some(0));
        // Wrong arch, wrong Python, plain linux, other OSes.
        assert_eq!(prio("x-1.0-cp313-cp313-manylinux_2_17_aarch64.whl"), None);
        assert_eq!(prio("x-1.0-cp312-cp312-manylinux_2_17_x86_64.whl"), None);
        assert_eq!(prio("x-1.0-cp314-abi3-manylinux_2_17_x86_64.whl"), None);
        assert_eq!(prio("x-1.0-cp313-cp313-linux_x86_64.whl"), None);
        assert_eq!(prio("x-1.0-cp313-cp313-musllinux_1_2_x86_64.whl"), None);
        assert_eq!(prio("x-1.0-cp313-cp313-win_amd64.whl"), None);
        assert_eq!(prio("x-1.0-cp313-cp313t-manylinux_2_17_x86_64.whl"), None);
        assert_eq!(prio("x-1.0-py2-none-any.whl"), None);
        // abi3 from an older Python, pure wheels.
        assert!(prio("x-1.0-cp39-abi3-manylinux_2_17_x86_64.whl").is_some());
        assert_eq!(prio("x-1.0-py2.py3-none-any.whl"), Some(1162));
        assert!(prio("x-1.0-cp39-abi3-manylinux_2_17_x86_64.whl") < prio("x-1.0-py3-none-any.whl"));
        assert!(
            prio("x-1.0-cp313-cp313-manylinux1_x86_64.whl")
                < prio("x-1.0-cp313-abi3-manylinux_2_41_x86_64.whl")
        );
    }

    #[test]
    fn parses_manylinux_platforms() {
        assert_eq!(
            manylinux_glibc("manylinux_2_28_x86_64"),
            Some(((2, 28), "x86_64"))
        );
        assert_eq!(
            manylinux_glibc("manylinux2014_aarch64"),
            Some(((2, 17), "aarch64"))
        );
        assert_eq!(
            manylinux_glibc("manylinux1_x86_64"),
            Some(((2, 5), "x86_64"))
        );
        assert_eq!(manylinux_glibc("linux_x86_64"), None);
        assert_eq!(manylinux_glibc("manylinux_2_x_x86_64"), None);
        assert_eq!(manylinux_glibc("manylinux_2_28_"), None);
    }

    #[test]
    fn marker_environment() {
        let t = trixie_amd64();
        let env = t.marker_env();
        assert_eq!(env.python_version().string, "3.13");
        assert_eq!(env.python_full_version().string, "3.13.5");
        assert_eq!(env.implementation_version().string, "3.13.5");
        assert_eq!(env.implementation_name(), "cpython");
        assert_eq!(env.platform_python_implementation(), "CPython");
        assert_eq!(env.sys_platform(), "linux");
        assert_eq!(env.platform_system(), "Linux");
        assert_eq!(env.os_name(), "posix");
        assert_eq!(env.platform_machine(), "x86_64");

        let ok = |m: &str, extras: &[&str]| {
            let extras: Vec<ExtraName> = extras.iter().map(|e| e.parse().unwrap()).collect();
            t.evaluate(&marker(m), &extras)
        };
        assert_eq!(
            ok(
                r#"platform_system == "Linux" and platform_machine == "x86_64""#,
                &[]
            ),
            Ok(true)
        );
        assert_eq!(ok(r#"python_version < "3.9""#, &[]), Ok(false));
        assert_eq!(ok(r#"python_full_version >= "3.13.5""#, &[]), Ok(true));
        assert_eq!(ok(r#"sys_platform == "win32""#, &[]), Ok(false));
        assert_eq!(ok(r#"extra == "socks""#, &[]), Ok(false));
        assert_eq!(ok(r#"extra == "SOCKS""#, &["socks"]), Ok(true));
        assert_eq!(ok(r#"'linux' in sys_platform"#, &[]), Ok(true));
        assert_eq!(
            ok(r#"platform_release >= "5.10""#, &[]),
            Err(UnknownMarker {
                key: "platform_release"
            })
        );
        assert_eq!(
            ok(
                r#"python_version >= "3" and "generic" in platform_version"#,
                &[]
            ),
            Err(UnknownMarker {
                key: "platform_version"
            })
        );
        // Never reached for this image, or not deciding the outcome: no error.
        assert_eq!(
            ok(
                r#"sys_platform == "darwin" and platform_release >= "20""#,
                &[]
            ),
            Ok(false)
        );
        assert_eq!(
            ok(
                r#"sys_platform == "linux" or platform_release >= "20""#,
                &[]
            ),
            Ok(true)
        );
        assert_eq!(
            ok(r#"extra == "x" and platform_release >= "20""#, &[]),
            Ok(false)
        );
        assert_eq!(
            ok(r#"extra == "x" and platform_release >= "20""#, &["x"]),
            Err(UnknownMarker {
                key: "platform_release"
            })
        );

        assert_eq!(
            markers_need_unknown(&marker(
                r#"sys_platform == "darwin" and platform_release >= "20""#
            )),
            Some("platform_release")
        );
        assert_eq!(
            markers_need_unknown(&marker(r#"python_version < "3.9" and extra == "x""#)),
            None
        );
        assert_eq!(markers_need_unknown(&MarkerTree::TRUE), None);
        let e = UnknownMarker {
            key: "platform_release",
        };
        assert!(e.to_string().contains("platform_release"));
    }
}
