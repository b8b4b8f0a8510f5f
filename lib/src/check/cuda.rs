//! CUDA coherence of an image's NVIDIA wheels (`shared/reference/image-content.md` §3).
//!
//! - One CUDA major: every `nvidia-*-cuNN` distribution (names from `*.dist-info/METADATA`)
//!   targets the same NN, and CUDA 13's suffixless toolkit wheels (`nvidia-cuda-runtime`
//!   13.0.96, `nvidia-cublas` 13.x) count by their version's major; a mix
//!   (`nvidia-cublas-cu12` beside `nvidia-cudnn-cu13`) loads two runtimes into one process.
//! - The framework's pins: every `Requires-Dist` on an `nvidia-*` distribution (torch pins
//!   `==`, TensorFlow's `and-cuda` extra pins ranges) is met by the installed version; one
//!   without markers must be installed.
//! - No duplicate copies: `libcudnn*.so*`, `libnccl.so*` and `libcublas*.so*` of the same
//!   name at more than one place (a wheel and a Debian package, two wheels): which one a
//!   process loads depends on who loads first.
//! - The driver floor: from the CUDA runtime wheel's version (`nvidia-cuda-runtime-cu12`
//!   12.8.90 → CUDA 12.8), the lowest Linux driver that runs it, by NVIDIA's minor-version
//!   compatibility (any driver of the major's family from the floor on runs every minor of
//!   that major, without the features that need a newer driver, such as JIT-compiling PTX
//!   of a newer toolkit), and the driver of that toolkit release itself, from [`TOOLKIT_DRIVERS`].
//!   [`DRIVER_LABEL`] records the floor in the image config at build time
//!   ([`driver_label`], computed from the lock); `check` warns when the label disagrees.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr as _;

use pep508_rs::VersionOrUrl;

use super::owners::{Owners, name_version};
use super::report::{CudaSummary, Finding, Severity};
use super::rootfs::Rootfs;
use crate::pypi::filename::normalize_name;

/// The check's name.
pub const CHECK: &str = "cuda";

/// The config label that records the lowest NVIDIA driver an image's CUDA runtime needs.
pub const DRIVER_LABEL: &str = "com.nvidia.cuda.driver-min";

/// The lowest Linux x86_64 driver of each CUDA major's family that runs every minor of it
/// (CUDA minor-version compatibility, CUDA 11 onwards), from
/// <https://docs.nvidia.com/deploy/cuda-compatibility/minor-version-compatibility.html>:
/// 11.x ≥ 450.80.02, 12.x ≥ 525.60.13, 13.x ≥ 580 (the first 13.0 driver, 580.65.06).
pub const MINOR_COMPAT_FLOOR: &[(u32, &str)] =
    &[(11, "450.80.02"), (12, "525.60.13"), (13, "580.65.06")];

/// The Linux x86_64 driver shipped with the first (GA) release of each CUDA toolkit minor,
/// from the CUDA Toolkit release notes, table "CUDA Toolkit and Corresponding Driver
/// Versions" (<https://docs.nvidia.com/cuda/cuda-toolkit-release-notes/index.html>). A
/// driver at least this new runs that release with every feature.
pub const TOOLKIT_DRIVERS: &[((u32, u32), &str)] = &[
    ((11, 0), "450.51.06"),
    ((11, 1), "455.23"),
    ((11, 2), "460.27.03"),
    ((11, 3), "465.19.01"),
    ((11, 4), "470.42.01"),
    ((11, 5), "495.29.05"),
    ((11, 6), "510.39.01"),
    ((11, 7), "515.43.04"),
    ((11, 8), "520.61.05"),
    ((12, 0), "525.60.13"),
    ((12, 1), "530.30.02"),
    ((12, 2), "535.54.03"),
    ((12, 3), "545.23.06"),
    ((12, 4), "550.54.14"),
    ((12, 5), "555.42.02"),
    ((12, 6), "560.28.03"),
    ((12, 8), "570.26"),
    ((12, 9), "575.51.03"),
    ((13, 0), "580.65.06"),
];

/// The driver needs of one CUDA runtime version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriverFloor {
    /// `major.minor` of the runtime.
    pub cuda: String,
    /// The lowest driver (minor-version compatibility).
    pub min: &'static str,
    /// The toolkit release's own driver, when the table knows the minor (or an older one
    /// of the same major: a newer minor needs at least that).
    pub full: Option<&'static str>,
}

/// The driver floor of a CUDA runtime version (`12.8.90`); `None` for a major the tables
/// do not know (before 11, or newer than them).
#[must_use]
pub fn driver_floor(runtime_version: &str) -> Option<DriverFloor> {
    let mut parts = runtime_version.split('.');
    let major: u32 = parts.next()?.parse().ok()?;
    let minor: u32 = parts
        .next()
        .and_then(|m| {
            m.chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
                .parse()
                .ok()
        })
        .unwrap_or(0);
    let min = MINOR_COMPAT_FLOOR
        .iter()
        .find(|(m, _)| *m == major)
        .map(|(_, d)| *d)?;
    let full = TOOLKIT_DRIVERS
        .iter()
        .filter(|((ma, mi), _)| *ma == major && *mi <= minor)
        .map(|(_, d)| *d)
        .next_back();
    Some(DriverFloor {
        cuda: format!("{major}.{minor}"),
        min,
        full,
    })
}

/// The CUDA major of an `nvidia-*-cuNN` distribution name (any spelling).
#[must_use]
pub fn cuda_major(name: &str) -> Option<u32> {
    let n = normalize_name(name);
    if !n.starts_with("nvidia-") {
        return None;
    }
    let (_, tail) = n.rsplit_once("-cu")?;
    tail.parse().ok()
}

/// Toolkit distributions without a `-cuNN` suffix (CUDA 13 dropped it: `nvidia-cuda-runtime`
/// 13.0.96, `nvidia-cublas` 13.1.0.3) whose version major is the CUDA major. Others, such as
/// `nvidia-cufft` (cuFFT 12 ships with CUDA 13), are versioned on their own.
const SUFFIXLESS: &[&str] = &[
    "nvidia-cuda-runtime",
    "nvidia-cuda-nvrtc",
    "nvidia-cuda-cupti",
    "nvidia-cuda-nvcc",
    "nvidia-nvjitlink",
    "nvidia-cublas",
];

/// The CUDA major a distribution targets: its `-cuNN` suffix, else the version major of a
/// [`SUFFIXLESS`] toolkit distribution.
#[must_use]
pub fn dist_major(name: &str, version: &str) -> Option<u32> {
    cuda_major(name).or_else(|| {
        let n = normalize_name(name);
        if !SUFFIXLESS.contains(&n.as_str()) {
            return None;
        }
        version.split('.').next()?.parse().ok()
    })
}

/// Whether a distribution is the CUDA runtime (`nvidia-cuda-runtime-cuNN`, or the suffixless
/// `nvidia-cuda-runtime` of CUDA 13).
fn is_runtime(name: &str) -> bool {
    let n = normalize_name(name);
    n == "nvidia-cuda-runtime"
        || n.strip_prefix("nvidia-cuda-runtime-cu")
            .is_some_and(|t| t.parse::<u32>().is_ok())
}

/// The label the build writes into the image config, from the locked wheels
/// (`(name, version)`): the driver floor of the CUDA runtime wheel, if there is one.
#[must_use]
pub fn driver_label<'a>(
    wheels: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Option<(String, String)> {
    let (_, version) = wheels.into_iter().find(|(n, _)| is_runtime(n))?;
    let floor = driver_floor(version)?;
    Some((DRIVER_LABEL.to_string(), floor.min.to_string()))
}

/// One installed distribution.
struct Dist {
    name: String,
    version: String,
    metadata: String,
    requires: Vec<pep508_rs::Requirement>,
}

impl Dist {
    fn label(&self) -> String {
        format!("{} {} (wheel)", self.name, self.version)
    }
}

fn dists(fs: &Rootfs) -> Vec<Dist> {
    let mut out = Vec::new();
    for (path, info) in fs.files() {
        if !path.ends_with(".dist-info/METADATA") {
            continue;
        }
        let Some(text) = info.text.as_deref() else {
            continue;
        };
        match crate::pypi::metadata::parse_metadata(text) {
            Ok(m) => out.push(Dist {
                name: m.name,
                version: m.version.to_string(),
                metadata: path.clone(),
                requires: m.requires_dist,
            }),
            Err(_) => {
                if let (Some(name), Some(version)) = name_version(text) {
                    out.push(Dist {
                        name,
                        version,
                        metadata: path.clone(),
                        requires: Vec::new(),
                    });
                }
            }
        }
    }
    out
}

/// Whether a library file name belongs to a family that must exist once.
fn unique_family(name: &str) -> bool {
    (name.starts_with("libcudnn") || name.starts_with("libnccl.") || name.starts_with("libcublas"))
        && name.contains(".so")
}

/// Runs the CUDA checks; returns the CUDA facts when the image has CUDA wheels or libraries.
pub fn check(fs: &Rootfs, owners: &Owners, out: &mut Vec<Finding>) -> Option<CudaSummary> {
    let dists = dists(fs);
    let by_name: BTreeMap<String, &Dist> =
        dists.iter().map(|d| (normalize_name(&d.name), d)).collect();

    // One major.
    let mut majors: BTreeMap<u32, Vec<&Dist>> = BTreeMap::new();
    for d in &dists {
        if let Some(m) = dist_major(&d.name, &d.version) {
            majors.entry(m).or_default().push(d);
        }
    }
    if majors.len() > 1 {
        let listing: Vec<String> = majors
            .iter()
            .map(|(m, ds)| {
                let names: Vec<String> = ds
                    .iter()
                    .map(|d| format!("{} {}", d.name, d.version))
                    .collect();
                format!("CUDA {m}: {}", names.join(", "))
            })
            .collect();
        for (m, ds) in &majors {
            for d in ds {
                out.push(
                    Finding::new(
                        CHECK,
                        Severity::Error,
                        format!(
                            "nvidia wheels mix CUDA majors; this one targets CUDA {m} ({})",
                            listing.join("; ")
                        ),
                    )
                    .file(d.metadata.trim_end_matches("/METADATA"))
                    .subject(format!("cu{m}"))
                    .package(Some(&d.label())),
                );
            }
        }
    }

    // The framework's pins.
    for d in &dists {
        for r in &d.requires {
            let want = r.name.to_string();
            if !want.starts_with("nvidia-") {
                continue;
            }
            let finding = |detail: String| {
                Finding::new(CHECK, Severity::Error, detail)
                    .file(&d.metadata)
                    .subject(want.clone())
                    .package(Some(&d.label()))
            };
            match by_name.get(&want) {
                Some(have) => {
                    if let Some(VersionOrUrl::VersionSpecifier(spec)) = &r.version_or_url
                        && let Ok(v) = pep440_rs::Version::from_str(&have.version)
                        && !spec.contains(&v)
                    {
                        let detail = format!(
                            "{} {} requires {want}{spec}, the image has {want} {}",
                            d.name, d.version, have.version
                        );
                        if r.marker.is_true() {
                            out.push(finding(detail));
                        } else {
                            // A conditional requirement (an extra, a platform marker): the
                            // installed copy may come from another requirement, and the
                            // image does not record which extras were asked for.
                            out.push(
                                Finding::new(
                                    CHECK,
                                    Severity::Info,
                                    format!(
                                        "{detail} (only under `{}`, which the image cannot tell was in effect)",
                                        r.marker.try_to_string().unwrap_or_default()
                                    ),
                                )
                                .file(&d.metadata)
                                .subject(want.clone())
                                .package(Some(&d.label())),
                            );
                        }
                    }
                }
                None if r.marker.is_true() => out.push(finding(format!(
                    "{} {} requires {want}, which is not installed",
                    d.name, d.version
                ))),
                None => {}
            }
        }
    }

    // Duplicate copies.
    let mut copies: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (path, _) in fs.files() {
        let name = path.rsplit('/').next().unwrap_or(path);
        if unique_family(name) {
            copies
                .entry(name.to_string())
                .or_default()
                .insert(path.clone());
        }
    }
    for (name, paths) in &copies {
        if paths.len() < 2 {
            continue;
        }
        let listing: Vec<String> = paths
            .iter()
            .map(|p| match owners.of(p) {
                Some(o) => format!("/{p} ({o})"),
                None => format!("/{p}"),
            })
            .collect();
        for p in paths {
            out.push(
                Finding::new(
                    CHECK,
                    Severity::Error,
                    format!(
                        "{name} is in the image {} times: {}; which copy a process loads depends on who loads it first",
                        paths.len(),
                        listing.join(", ")
                    ),
                )
                .file(p)
                .subject(name.clone())
                .package(owners.of(p)),
            );
        }
    }

    // The driver floor.
    let runtime = dists.iter().find(|d| is_runtime(&d.name));
    if majors.is_empty() && runtime.is_none() && copies.is_empty() {
        return None;
    }
    let mut summary = CudaSummary {
        majors: majors.keys().copied().collect(),
        ..CudaSummary::default()
    };
    if let Some(rt) = runtime {
        match driver_floor(&rt.version) {
            Some(f) => {
                summary.runtime = Some(format!("{} ({} {})", f.cuda, rt.name, rt.version));
                summary.driver_min = Some(f.min.to_string());
                summary.driver_full = f.full.map(str::to_owned);
                match fs.labels.get(DRIVER_LABEL) {
                    Some(l) if l != f.min => out.push(
                        Finding::new(
                            CHECK,
                            Severity::Warning,
                            format!(
                                "label {DRIVER_LABEL}={l}, but CUDA {} needs a driver >= {}",
                                f.cuda, f.min
                            ),
                        )
                        .subject(DRIVER_LABEL)
                        .package(Some(&rt.label())),
                    ),
                    _ => {}
                }
            }
            None => out.push(
                Finding::new(
                    CHECK,
                    Severity::Warning,
                    format!("no driver table for CUDA runtime {}", rt.version),
                )
                .file(&rt.metadata)
                .package(Some(&rt.label())),
            ),
        }
    }
    Some(summary)
}

#[cfg(test)]
mod tests {
    use super::super::rootfs::{FileInfo, Node};
    use super::*;

    const SP: &str = "usr/local/lib/python3.13/dist-packages";

    fn text(t: &str) -> Node {
        Node::File(FileInfo {
            text: Some(t.into()),
            ..FileInfo::default()
        })
    }

    fn wheel(name: &str, version: &str, requires: &[&str]) -> Vec<(String, Node)> {
        let dir = format!("{SP}/{}-{version}.dist-info", name.replace('-', "_"));
        let mut meta = format!("Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n");
        for r in requires {
            meta.push_str(&format!("Requires-Dist: {r}\n"));
        }
        vec![(format!("{dir}/METADATA"), text(&meta))]
    }

    fn fs(parts: Vec<Vec<(String, Node)>>) -> Rootfs {
        Rootfs::from_nodes(parts.into_iter().flatten().collect(), "amd64")
    }

    #[test]
    fn the_driver_table() {
        let f = driver_floor("12.8.90");
        assert_eq!(
            f,
            Some(DriverFloor {
                cuda: "12.8".into(),
                min: "525.60.13",
                full: Some("570.26")
            })
        );
        // 12.7 was never released: the 12.6 driver is the best the table says.
        assert_eq!(
            driver_floor("12.7.1").and_then(|f| f.full),
            Some("560.28.03")
        );
        assert_eq!(driver_floor("13.0.96").map(|f| f.min), Some("580.65.06"));
        assert_eq!(driver_floor("10.2.89"), None);
        assert_eq!(
            driver_label([("numpy", "2.0"), ("nvidia-cuda-runtime-cu12", "12.9.79")]),
            Some((DRIVER_LABEL.to_string(), "525.60.13".to_string()))
        );
        assert_eq!(cuda_major("nvidia_cudnn_cu12"), Some(12));
        assert_eq!(cuda_major("nvidia-nccl-cu13"), Some(13));
        assert_eq!(cuda_major("cuda-python"), None);
        assert_eq!(dist_major("nvidia-cublas", "13.1.0.3"), Some(13));
        assert_eq!(dist_major("nvidia-cufft", "12.0.0.61"), None);
        assert_eq!(dist_major("nvidia-cufft-cu12", "11.3.3.83"), Some(12));
    }

    #[test]
    fn a_coherent_set_passes_and_reports_the_floor() {
        let r = fs(vec![
            wheel("nvidia-cuda-runtime-cu12", "12.8.90", &[]),
            wheel("nvidia-cudnn-cu12", "9.10.2.21", &["nvidia-cublas-cu12"]),
            wheel("nvidia-cublas-cu12", "12.8.4.1", &[]),
            wheel(
                "torch",
                "2.8.0",
                &[
                    "nvidia-cudnn-cu12==9.10.2.21; platform_system == \"Linux\"",
                    "nvidia-cufile-cu12==1.13.1.3; extra == \"x\"",
                ],
            ),
        ]);
        let mut out = Vec::new();
        let s = check(&r, &Owners::default(), &mut out);
        assert_eq!(out, []);
        let s = s.unwrap_or_default();
        assert_eq!(s.majors, [12]);
        assert_eq!(s.driver_min.as_deref(), Some("525.60.13"));
    }

    #[test]
    fn a_pin_under_an_extra_that_the_image_does_not_meet_is_only_info() {
        // cuda-toolkit 13.2.2's `cccl` extra pins nvidia-cuda-cccl==13.2.86.*; torch pulls a
        // newer cccl through another requirement and never asks for that extra.
        let r = fs(vec![
            wheel("nvidia-cuda-cccl", "13.3.5.0.6", &[]),
            wheel(
                "cuda-toolkit",
                "13.2.2",
                &["nvidia-cuda-cccl==13.2.86.*; extra == \"cccl\""],
            ),
        ]);
        let mut out = Vec::new();
        let _ = check(&r, &Owners::default(), &mut out);
        let pins: Vec<&Finding> = out
            .iter()
            .filter(|f| f.subject.as_deref() == Some("nvidia-cuda-cccl"))
            .collect();
        assert_eq!(pins.len(), 1, "{out:#?}");
        assert_eq!(pins[0].severity, Severity::Info);
        assert!(
            pins[0].detail.contains("extra == 'cccl'"),
            "{}",
            pins[0].detail
        );
    }

    #[test]
    fn mixed_majors_pins_and_duplicates_are_errors() {
        let lib = |p: &str| vec![(p.to_string(), Node::File(FileInfo::default()))];
        let r = fs(vec![
            wheel("nvidia-cublas-cu12", "12.8.4.1", &[]),
            wheel("nvidia-cudnn-cu13", "9.19.0.56", &[]),
            wheel("nvidia-cuda-runtime", "13.0.96", &[]),
            wheel(
                "torch",
                "2.8.0",
                &["nvidia-cublas-cu12==12.6.4.1", "nvidia-nccl-cu12==2.27.3"],
            ),
            lib(&format!("{SP}/nvidia/cudnn/lib/libcudnn.so.9")),
            lib("usr/lib/x86_64-linux-gnu/libcudnn.so.9"),
        ]);
        let mut out = Vec::new();
        let _ = check(&r, &Owners::default(), &mut out);
        let subjects: Vec<&str> = out.iter().filter_map(|f| f.subject.as_deref()).collect();
        assert_eq!(
            subjects,
            [
                "cu12",
                "cu13",
                "cu13",
                "nvidia-cublas-cu12",
                "nvidia-nccl-cu12",
                "libcudnn.so.9",
                "libcudnn.so.9"
            ],
            "{out:#?}"
        );
        assert!(
            out[3].detail.contains(
                "requires nvidia-cublas-cu12==12.6.4.1, the image has nvidia-cublas-cu12 12.8.4.1"
            ),
            "{}",
            out[3].detail
        );
    }
}
