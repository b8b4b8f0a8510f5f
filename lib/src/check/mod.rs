//! `compose check`: checks none of the usual tools make, over an image read back from disk.
//!
//! ```text
//! image on disk ──oci::walk──▶ rootfs::Rootfs (merged tree, ELF facts, metadata texts)
//!                                   │ owners::owners (file → deb / wheel)
//!                                   ├─ closure  (elf-closure: DT_NEEDED, PT_INTERP)
//!                                   ├─ abi      (abi: symbol versions; wheel-tag: WHEEL tags)
//!                                   ├─ cuda     (cuda: one major, pins, duplicates, driver floor)
//!                                   └─ elf      (files that start like ELF but do not parse)
//!                                   ▼
//!                            report::Report (text, JSON)
//! ```
//!
//! [`check_image`] reads an image (layout directory, oci-archive or docker-archive);
//! [`check_rootfs`] runs the checks over an index and is pure. What a recipe can say
//! ([`CheckConfig`]: host-provided libraries, allow-lists, skipped checks) comes from its
//! `check { … }` block (`docs/recipes.md`).

pub mod abi;
pub mod closure;
pub mod cuda;
pub mod elf;
pub mod owners;
pub mod report;
pub mod rootfs;

use std::path::{Path, PathBuf};

pub use report::{Finding, Report, Severity};
pub use rootfs::{IndexTap, Rootfs};

use crate::recipe::CheckSpec;

/// The name of the check for files that look like ELF but do not parse.
pub const ELF_CHECK: &str = "elf";

/// Every check, by name (what `skip` and `allow` accept).
pub const CHECKS: &[&str] = &[
    closure::CHECK,
    abi::CHECK,
    abi::WHEEL_CHECK,
    cuda::CHECK,
    ELF_CHECK,
];

/// Libraries the host's NVIDIA driver supplies (the NVIDIA Container Toolkit mounts them
/// into the container): never in the image, never missing. Globs (`*`, `?`) on the name.
pub const DEFAULT_HOST_PROVIDED: &[&str] = &[
    "libcuda.so",
    "libcuda.so.1",
    "libcudadebugger.so.1",
    "libnvidia-*.so",
    "libnvidia-*.so.*",
    "libnvcuvid.so.1",
    "libnvoptix.so.1",
    "libEGL_nvidia.so.0",
    "libGLX_nvidia.so.0",
    "libGLESv1_CM_nvidia.so.1",
    "libGLESv2_nvidia.so.2",
];

/// Findings accepted by default (shown as `info`): optional plugins of NVIDIA wheels that
/// their library loads with `dlopen` only when the feature is used, and whose `DT_NEEDED`
/// are the host's network stack (read from the wheels, `readelf -d`):
/// `nvidia-nvshmem-cu12` 3.8.0's `nvshmem_bootstrap_{mpi,pmix,shmem}.so.3` need
/// `libmpi.so.40`, `libpmix.so.2`, `liboshmem.so.40`, its `nvshmem_transport_*.so.7` need
/// `libmlx5.so.1`, `libfabric.so.1`, `libucp.so.0`; `nvidia-cufile-cu12` 1.14's
/// `libcufile_rdma.so.1` needs `libmlx5.so.1`, `librdmacm.so.1`, `libibverbs.so.1`. CUDA 13
/// wheels (`nvidia-cufile` 1.17, no `-cu13` suffix) put it in the shared `nvidia/cu13/lib`
/// (seen in torch 2.15's set). `triton` 3.9's `triton/plugins/*.so` are MLIR plugins that
/// `libtriton.so` loads with `dlopen`, so their `libtriton.so` need is met by the library
/// already in the process (their RUNPATH points at triton's build tree).
pub const DEFAULT_ALLOW: &[(&str, &str)] = &[
    (
        "elf-closure",
        "*/nvidia/nvshmem/lib/nvshmem_bootstrap_*.so*",
    ),
    (
        "elf-closure",
        "*/nvidia/nvshmem/lib/nvshmem_transport_*.so*",
    ),
    ("elf-closure", "*/nvidia/cufile/lib/libcufile_rdma.so*"),
    ("elf-closure", "*/nvidia/cu1*/lib/libcufile_rdma.so*"),
    ("elf-closure", "*/triton/plugins/*.so*"),
];

/// What a check run accepts and skips.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckConfig {
    /// Library names (globs) the host supplies: [`DEFAULT_HOST_PROVIDED`] plus the recipe's.
    pub host_provided: Vec<String>,
    /// `(check, glob)`: findings of `check` whose file (or subject) matches become `info`:
    /// [`DEFAULT_ALLOW`] plus the recipe's.
    pub allow: Vec<(String, String)>,
    /// Checks not run.
    pub skip: Vec<String>,
}

impl Default for CheckConfig {
    fn default() -> Self {
        Self {
            host_provided: DEFAULT_HOST_PROVIDED
                .iter()
                .map(|s| (*s).to_string())
                .collect(),
            allow: DEFAULT_ALLOW
                .iter()
                .map(|(c, p)| ((*c).to_string(), (*p).to_string()))
                .collect(),
            skip: Vec::new(),
        }
    }
}

impl CheckConfig {
    /// The defaults plus what a recipe's `check` block says.
    #[must_use]
    pub fn from_spec(spec: &CheckSpec) -> Self {
        let mut c = Self::default();
        for h in &spec.host_provided {
            if !c.host_provided.contains(h) {
                c.host_provided.push(h.clone());
            }
        }
        c.allow.extend(spec.allow.iter().cloned());
        c.skip.clone_from(&spec.skip);
        c
    }

    fn runs(&self, check: &str) -> bool {
        !self.skip.iter().any(|s| s == check)
    }
}

/// `*` matches any run of characters (`/` included), `?` any one character.
#[must_use]
pub fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Failures to read the image (findings are not errors here: they are in the [`Report`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckError {
    /// The image could not be read.
    #[error("cannot check {}: {source}", path.display())]
    Read {
        /// The image.
        path: PathBuf,
        /// Cause.
        #[source]
        source: Box<crate::oci::walk::WalkError>,
    },
}

/// Reads the image at `path` and checks it.
///
/// # Errors
/// [`CheckError`] when the image cannot be read.
pub fn check_image(path: &Path, cfg: &CheckConfig) -> Result<Report, CheckError> {
    check_image_cached(path, None, cfg, None)
}

/// Reads the image at `path` and checks it; of a multi-platform image, the image of
/// `platform` (`linux/arm64`), and the report names it (`out/x [linux/arm64]`).
///
/// # Errors
/// [`CheckError`] when the image cannot be read (a multi-platform image without
/// `platform` included).
pub fn check_image_for(
    path: &Path,
    platform: Option<&str>,
    cfg: &CheckConfig,
) -> Result<Report, CheckError> {
    check_image_cached(path, platform, cfg, None)
}

/// As [`check_image_for`], keeping each layer's index in `store` so a layer checked before
/// is not read again (see [`Rootfs::read_cached`]).
///
/// # Errors
/// As [`check_image_for`].
pub fn check_image_cached(
    path: &Path,
    platform: Option<&str>,
    cfg: &CheckConfig,
    store: Option<&composer_store::Store>,
) -> Result<Report, CheckError> {
    let err = |source| CheckError::Read {
        path: path.to_path_buf(),
        source: Box::new(source),
    };
    let view = crate::oci::read_image_for(path, platform)
        .map_err(|e| err(crate::oci::walk::WalkError::from(e)))?;
    let fs = Rootfs::read_cached(path, &view, store).map_err(err)?;
    let mut report = check_rootfs(&fs, cfg);
    report.image = match &view.platforms {
        Some(p) => format!("{} [{}]", path.display(), p.selected),
        None => path.display().to_string(),
    };
    Ok(report)
}

/// Runs every check not skipped over `fs`. Pure.
#[must_use]
pub fn check_rootfs(fs: &Rootfs, cfg: &CheckConfig) -> Report {
    let owners = owners::owners(fs);
    let mut findings = Vec::new();
    let mut report = Report::default();
    if cfg.runs(ELF_CHECK) {
        for (path, info) in fs.files() {
            if let Some(Err(e)) = &info.elf {
                findings.push(
                    Finding::new(ELF_CHECK, Severity::Warning, format!("cannot be read: {e}"))
                        .file(path)
                        .package(owners.of(path)),
                );
            }
        }
    }
    if cfg.runs(closure::CHECK) {
        closure::check(fs, &owners, cfg, &mut findings);
    }
    if cfg.runs(abi::CHECK) {
        abi::check_versions(fs, &owners, cfg, &mut findings);
    }
    let mut wheels_out = Vec::new();
    let wheels = abi::check_wheels(fs, &owners, &mut wheels_out);
    if cfg.runs(abi::WHEEL_CHECK) {
        findings.extend(wheels_out);
    }
    if cfg.runs(cuda::CHECK) {
        report.cuda = cuda::check(fs, &owners, &mut findings);
    }
    for f in &mut findings {
        let allowed = cfg.allow.iter().any(|(check, pattern)| {
            let pattern = pattern.trim_start_matches('/');
            *check == f.check
                && (f
                    .file
                    .as_deref()
                    .is_some_and(|file| glob(pattern, file.trim_start_matches('/')))
                    || f.subject.as_deref().is_some_and(|s| glob(pattern, s)))
        });
        if allowed && f.severity != Severity::Info {
            f.severity = Severity::Info;
            f.detail = format!("allowed by the recipe: {}", f.detail);
        }
    }
    report.checks = CHECKS
        .iter()
        .filter(|c| cfg.runs(c))
        .map(|c| (*c).to_string())
        .collect();
    report.findings = findings;
    report.counts = report::Counts {
        paths: fs.nodes.len(),
        elf_files: fs
            .files()
            .filter(|(_, i)| matches!(i.elf, Some(Ok(_))))
            .count(),
        wheels,
        owned_files: owners.len(),
    };
    report.normalize();
    report
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::elf::parse;
    use super::elf::tests::ElfBuilder;
    use super::rootfs::{FileInfo, Node};
    use super::*;

    #[test]
    fn globs() {
        assert!(glob("libnvidia-*.so.*", "libnvidia-ml.so.1"));
        assert!(glob("usr/lib/foo/*.so", "usr/lib/foo/bar/baz.so"));
        assert!(glob("lib?.so", "libz.so"));
        assert!(!glob("libcuda.so.1", "libcudart.so.12"));
        assert!(glob("*", ""));
        assert!(!glob("a*b", "a"));
    }

    fn elf(b: &ElfBuilder) -> Node {
        Node::File(FileInfo {
            elf: Some(parse(b.build().as_slice()).map_err(|e| e.to_string())),
            ..FileInfo::default()
        })
    }

    #[test]
    fn allow_skip_and_host_provided() {
        let nodes: BTreeMap<String, Node> = [
            (
                "usr/lib/foo/libfoo.so",
                elf(&ElfBuilder::new()
                    .needed("libgone.so.1")
                    .needed("libnvidia-ml.so.1")),
            ),
            (
                "usr/lib/bar/libbar.so",
                elf(&ElfBuilder::new().needed("libgone.so.1")),
            ),
            (
                "usr/lib/bad.so",
                Node::File(FileInfo {
                    elf: Some(Err("malformed ELF: x".into())),
                    ..FileInfo::default()
                }),
            ),
        ]
        .into_iter()
        .map(|(p, n)| (p.to_string(), n))
        .collect();
        let fs = Rootfs::from_nodes(nodes, "amd64");
        let r = check_rootfs(&fs, &CheckConfig::default());
        assert_eq!(r.count(Severity::Error), 2, "{r:#?}");
        assert_eq!(r.count(Severity::Warning), 1, "{r:#?}");

        let cfg = CheckConfig::from_spec(&CheckSpec {
            host_provided: vec![],
            allow: vec![("elf-closure".into(), "/usr/lib/foo/*.so".into())],
            skip: vec!["elf".into()],
        });
        let r = check_rootfs(&fs, &cfg);
        assert_eq!(r.count(Severity::Error), 1, "{r:#?}");
        assert_eq!(r.count(Severity::Warning), 0, "{r:#?}");
        assert_eq!(r.count(Severity::Info), 1, "{r:#?}");
        assert!(!r.checks.contains(&"elf".to_string()));

        // NVIDIA's optional fabric plugins are allowed by default.
        let sp = "usr/local/lib/python3.13/dist-packages";
        let plugin = format!("{sp}/nvidia/nvshmem/lib/nvshmem_bootstrap_mpi.so.3");
        let nodes: BTreeMap<String, Node> = [(
            plugin.clone(),
            elf(&ElfBuilder::new().needed("libmpi.so.40")),
        )]
        .into_iter()
        .collect();
        let r = check_rootfs(&Rootfs::from_nodes(nodes, "amd64"), &CheckConfig::default());
        assert!(r.passed(), "{r:#?}");
        assert_eq!(r.count(Severity::Info), 1, "{r:#?}");

        let cfg = CheckConfig::from_spec(&CheckSpec {
            host_provided: vec!["libgone.so.*".into()],
            allow: vec![],
            skip: vec![],
        });
        assert!(check_rootfs(&fs, &cfg).passed());
    }
}
