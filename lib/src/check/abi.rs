//! ABI: what ELF files and wheels need from the image's C library, C++ library and Python.
//!
//! - Symbol versions: every version an ELF file needs (`.gnu.version_r`: `GLIBC_2.34` from
//!   `libc.so.6`, `GLIBCXX_3.4.30` from `libstdc++.so.6`, `CXXABI_1.3.13`, or any other
//!   versioned library) must be defined (`.gnu.version_d`) by the library the closure search
//!   finds for it; `ld.so` refuses to start the program otherwise ("version `GLIBC_2.34' not
//!   found"). A provider without version definitions is not checked (`ld.so` only warns).
//! - Wheel tags (`*.dist-info/WHEEL`, `Tag:` lines, PEP 425/600): at least one tag must fit
//!   the image: `any`, or `manylinux_X_Y_<arch>` (`manylinux1` = 2.5, `manylinux2010` = 2.12,
//!   `manylinux2014` = 2.17) with X.Y at most the image's glibc and the image's architecture;
//!   an ABI tag `cpXY` must be the interpreter whose site directory the wheel is in, `abi3`
//!   needs a `cp3Y` at most that version. `musllinux` never fits a glibc image; a plain
//!   `linux_<arch>` tag is a warning (built against some other system's libraries).
//!
//! The image's glibc version is the highest `GLIBC_x.y` its `libc.so.6` defines, else the
//! `libc6` version in dpkg's database. Pure over a [`Rootfs`].

use std::cmp::Ordering;

use super::CheckConfig;
use super::closure::{Search, host_provided, objects};
use super::elf::{ElfFacts, machine_of_arch};
use super::owners::{Owners, name_version};
use super::report::{Finding, Severity};
use super::rootfs::Rootfs;

/// The symbol-version check's name.
pub const CHECK: &str = "abi";
/// The wheel-tag check's name.
pub const WHEEL_CHECK: &str = "wheel-tag";

/// Numeric parts of a version string (`2.2.5` → [2, 2, 5]; non-digits end a part).
#[must_use]
pub fn numbers(v: &str) -> Vec<u64> {
    v.split('.')
        .map(|p| {
            p.chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
                .parse()
                .unwrap_or(0)
        })
        .collect()
}

/// Compares two dotted versions numerically.
#[must_use]
pub fn compare(a: &str, b: &str) -> Ordering {
    let (x, y) = (numbers(a), numbers(b));
    for i in 0..x.len().max(y.len()) {
        let o = x.get(i).unwrap_or(&0).cmp(y.get(i).unwrap_or(&0));
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

/// `GLIBC_2.34` → (`GLIBC`, `2.34`).
#[must_use]
pub fn split_version(name: &str) -> Option<(&str, &str)> {
    let (prefix, v) = name.rsplit_once('_')?;
    v.starts_with(|c: char| c.is_ascii_digit())
        .then_some((prefix, v))
}

/// The highest definition in `defs` with the same prefix as `wanted`.
#[must_use]
pub fn highest<'a>(defs: &'a [String], wanted: &str) -> Option<&'a str> {
    let (prefix, _) = split_version(wanted)?;
    defs.iter()
        .filter_map(|d| {
            split_version(d)
                .filter(|(p, _)| *p == prefix)
                .map(|_| d.as_str())
        })
        .max_by(|a, b| {
            let va = split_version(a).map_or("", |x| x.1);
            let vb = split_version(b).map_or("", |x| x.1);
            compare(va, vb)
        })
}

/// Facts standing for "an object of the image's own architecture".
fn native(fs: &Rootfs) -> Option<ElfFacts> {
    let machine = machine_of_arch(&fs.architecture)?;
    let class = if matches!(fs.architecture.as_str(), "386" | "arm") {
        32
    } else {
        64
    };
    Some(ElfFacts {
        class,
        big_endian: fs.architecture == "s390x",
        e_type: 3,
        machine,
        interp: None,
        dynamic: true,
        needed: Vec::new(),
        soname: None,
        rpath: Vec::new(),
        runpath: Vec::new(),
        version_needs: Vec::new(),
        version_defs: Vec::new(),
    })
}

/// The image's glibc version (`2.41`) and where it was read.
#[must_use]
pub fn image_glibc(fs: &Rootfs) -> Option<(String, String)> {
    let search = Search::new(fs);
    if let Some(facts) = native(fs)
        && let Some(found) = search.find("libc.so.6", "", &facts)
        && let Some((_, info)) = fs.file(&found.path)
        && let Some(Ok(libc)) = &info.elf
        && let Some(top) = highest(&libc.version_defs, "GLIBC_2.0")
        && let Some((_, v)) = split_version(top)
    {
        return Some((v.to_string(), format!("/{}", found.path)));
    }
    // dpkg's database: `libc6` (or `libc6:ARCH`) `Version: 2.41-12`.
    for (path, info) in fs.files() {
        let Some(rest) = path.strip_prefix("var/lib/dpkg/status.d/") else {
            continue;
        };
        if (rest != "libc6" && !rest.starts_with("libc6:")) || rest.ends_with(".md5sums") {
            continue;
        }
        let text = info.text.as_deref().unwrap_or("");
        if let Some(v) = text.lines().find_map(|l| l.strip_prefix("Version:")) {
            let v = v.trim();
            let upstream = v.split_once(':').map_or(v, |(_, r)| r);
            let upstream = upstream.split('-').next().unwrap_or(upstream);
            let parts: Vec<&str> = upstream.split('.').take(2).collect();
            return Some((parts.join("."), format!("/{path}")));
        }
    }
    None
}

/// Runs the symbol-version check.
pub fn check_versions(fs: &Rootfs, owners: &Owners, cfg: &CheckConfig, out: &mut Vec<Finding>) {
    let search = Search::new(fs);
    for (path, facts) in objects(fs) {
        for (file, versions) in &facts.version_needs {
            if host_provided(cfg, file) {
                continue;
            }
            let Some(found) = search.find(file, path, facts) else {
                continue; // the closure check reports it
            };
            let Some((_, info)) = fs.file(&found.path) else {
                continue;
            };
            let Some(Ok(provider)) = &info.elf else {
                continue;
            };
            if provider.version_defs.is_empty() {
                continue;
            }
            for v in versions {
                if provider.version_defs.contains(v) {
                    continue;
                }
                let has = highest(&provider.version_defs, v)
                    .map(|h| format!("defines only up to {h}"))
                    .unwrap_or_else(|| "does not define it".into());
                out.push(
                    Finding::new(
                        CHECK,
                        Severity::Error,
                        format!("needs {v} from {file}, but /{} {has}", found.path),
                    )
                    .file(path)
                    .subject(v.clone())
                    .package(owners.of(path)),
                );
            }
        }
    }
}

/// The wheel platform name of an OCI architecture.
fn wheel_arch(arch: &str) -> &str {
    match arch {
        "amd64" => "x86_64",
        "arm64" => "aarch64",
        "386" => "i686",
        "arm" => "armv7l",
        other => other,
    }
}

/// The Python version (`3.13`) of a site directory: from its path, else what
/// `/usr/bin/python3` points to.
fn python_of(site: &str, fs: &Rootfs) -> Option<(u64, u64)> {
    let parse = |s: &str| {
        let v = s.strip_prefix("python")?;
        let (a, b) = v.split_once('.')?;
        Some((a.parse().ok()?, b.parse().ok()?))
    };
    site.split('/').find_map(parse).or_else(|| {
        let real = fs.resolve("usr/bin/python3")?;
        parse(real.rsplit('/').next()?)
    })
}

/// What is wrong with one (uncompressed) tag for this image; empty: it fits.
fn tag_problems(
    tag: &str,
    arch: &str,
    glibc: Option<&str>,
    python: Option<(u64, u64)>,
) -> Vec<String> {
    let mut out = Vec::new();
    let parts: Vec<&str> = tag.split('-').collect();
    let [py, abi, plat] = parts[..] else {
        return vec![format!("`{tag}` is not a wheel tag")];
    };
    let want_arch = wheel_arch(arch);
    let cp = |s: &str| -> Option<(u64, u64)> {
        let d = s.strip_prefix("cp")?;
        let d = d.trim_end_matches(['m', 't', 'u', 'd']);
        let (major, minor) = d.split_at(1.min(d.len()));
        Some((major.parse().ok()?, minor.parse().ok()?))
    };
    if plat != "any" {
        // PEP 600 names, and the legacy aliases (PEP 513, 571, 599).
        let legacy = [
            ("manylinux1_", "2.5"),
            ("manylinux2010_", "2.12"),
            ("manylinux2014_", "2.17"),
        ];
        let glibc_floor = match plat.strip_prefix("manylinux_") {
            Some(rest) => {
                let mut it = rest.splitn(3, '_');
                match (it.next(), it.next(), it.next()) {
                    (Some(x), Some(y), Some(a)) => Some((format!("{x}.{y}"), a)),
                    _ => None,
                }
            }
            None => legacy.iter().find_map(|(prefix, floor)| {
                plat.strip_prefix(prefix).map(|a| ((*floor).to_string(), a))
            }),
        };
        if let Some((floor, a)) = glibc_floor {
            if a != want_arch {
                out.push(format!("built for {a}, the image is {want_arch}"));
            }
            if let Some(g) = glibc
                && compare(&floor, g) == Ordering::Greater
            {
                out.push(format!("needs glibc >= {floor}, the image has {g}"));
            }
        } else if plat.starts_with("musllinux_") {
            out.push("built for musl libc, the image uses glibc".into());
        } else if let Some(a) = plat.strip_prefix("linux_") {
            if a != want_arch {
                out.push(format!("built for {a}, the image is {want_arch}"));
            }
        } else {
            out.push(format!("platform {plat} is not Linux"));
        }
    }
    if let Some(image_py) = python {
        if abi == "abi3" {
            match cp(py) {
                Some(v) if v.0 == image_py.0 && v.1 <= image_py.1 => {}
                Some(v) => out.push(format!(
                    "stable ABI for CPython >= {}.{}, the image has Python {}.{}",
                    v.0, v.1, image_py.0, image_py.1
                )),
                None => {}
            }
        } else if let Some(v) = cp(abi)
            && v != image_py
        {
            out.push(format!(
                "built for CPython {}.{} ({abi}), installed for Python {}.{}",
                v.0, v.1, image_py.0, image_py.1
            ));
        }
    }
    out
}

/// Expands a compressed tag set (`py2.py3-none-any`) into single tags.
#[must_use]
pub fn expand_tags(tag: &str) -> Vec<String> {
    let parts: Vec<Vec<&str>> = tag.split('-').map(|p| p.split('.').collect()).collect();
    let [py, abi, plat] = &parts[..] else {
        return vec![tag.to_string()];
    };
    let mut out = Vec::new();
    for p in py {
        for a in abi {
            for l in plat {
                out.push(format!("{p}-{a}-{l}"));
            }
        }
    }
    out
}

/// Runs the wheel-tag check; returns the number of wheels seen.
pub fn check_wheels(fs: &Rootfs, owners: &Owners, out: &mut Vec<Finding>) -> usize {
    let glibc = image_glibc(fs).map(|(v, _)| v);
    let mut wheels = 0;
    for (path, info) in fs.files() {
        let Some(dir) = path.strip_suffix("/WHEEL") else {
            continue;
        };
        if !dir.ends_with(".dist-info") {
            continue;
        }
        wheels += 1;
        let Some(text) = info.text.as_deref() else {
            continue;
        };
        let site = dir.rsplit_once('/').map_or("", |(s, _)| s);
        let python = python_of(site, fs);
        let tags: Vec<String> = text
            .lines()
            .filter_map(|l| l.strip_prefix("Tag:"))
            .flat_map(|t| expand_tags(t.trim()))
            .collect();
        if tags.is_empty() {
            continue;
        }
        let meta = fs.text(&format!("{dir}/METADATA")).unwrap_or("");
        let package = match name_version(meta) {
            (Some(n), Some(v)) => Some(format!("{n} {v} (wheel)")),
            _ => owners.of(path).map(str::to_owned),
        };
        let problems: Vec<(String, Vec<String>)> = tags
            .iter()
            .map(|t| {
                (
                    t.clone(),
                    tag_problems(t, &fs.architecture, glibc.as_deref(), python),
                )
            })
            .collect();
        let finding = |sev, detail: String, subject: &str| {
            Finding::new(WHEEL_CHECK, sev, detail)
                .file(path)
                .subject(subject.to_string())
                .package(package.as_deref())
        };
        match problems.iter().find(|(_, p)| p.is_empty()) {
            Some((t, _)) if t.contains("-linux_") => out.push(finding(
                Severity::Warning,
                format!("tag {t} is not manylinux: built against another system's libraries"),
                t,
            )),
            Some(_) => {}
            None => {
                let (t, p) = &problems[0];
                let all: Vec<&str> = tags.iter().map(String::as_str).collect();
                out.push(finding(
                    Severity::Error,
                    format!(
                        "no tag of this wheel fits the image ({}): {}",
                        all.join(", "),
                        p.join("; ")
                    ),
                    t,
                ));
            }
        }
    }
    wheels
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::super::elf::parse;
    use super::super::elf::tests::ElfBuilder;
    use super::super::rootfs::{FileInfo, Node};
    use super::*;

    fn elf(b: &ElfBuilder) -> Node {
        Node::File(FileInfo {
            elf: Some(parse(b.build().as_slice()).map_err(|e| e.to_string())),
            ..FileInfo::default()
        })
    }

    fn text(t: &str) -> Node {
        Node::File(FileInfo {
            text: Some(t.into()),
            ..FileInfo::default()
        })
    }

    fn fs(nodes: Vec<(&str, Node)>) -> Rootfs {
        let nodes: BTreeMap<String, Node> =
            nodes.into_iter().map(|(p, n)| (p.to_string(), n)).collect();
        Rootfs::from_nodes(nodes, "amd64")
    }

    fn libc(defs: &[&str]) -> Node {
        elf(&ElfBuilder::new().soname("libc.so.6").defs(defs))
    }

    #[test]
    fn versions_compare_numerically() {
        assert_eq!(compare("2.34", "2.4"), Ordering::Greater);
        assert_eq!(compare("2.17", "2.17.0"), Ordering::Equal);
        let defs: Vec<String> = ["GLIBC_2.2.5", "GLIBC_2.28", "GLIBC_2.3", "GLIBC_PRIVATE"]
            .iter()
            .map(|s| (*s).to_string())
            .collect();
        assert_eq!(highest(&defs, "GLIBC_2.34"), Some("GLIBC_2.28"));
        assert_eq!(highest(&defs, "GLIBCXX_3.4"), None);
    }

    #[test]
    fn a_newer_glibc_need_is_an_error() {
        let r = fs(vec![
            (
                "usr/lib/x86_64-linux-gnu/libc.so.6",
                libc(&["GLIBC_2.2.5", "GLIBC_2.28"]),
            ),
            (
                "usr/bin/prog",
                elf(&ElfBuilder::new()
                    .needed("libc.so.6")
                    .need("libc.so.6", &["GLIBC_2.2.5", "GLIBC_2.34"])),
            ),
        ]);
        let mut out = Vec::new();
        check_versions(&r, &Owners::default(), &CheckConfig::default(), &mut out);
        assert_eq!(out.len(), 1, "{out:#?}");
        assert_eq!(out[0].subject.as_deref(), Some("GLIBC_2.34"));
        assert!(
            out[0].detail.contains("defines only up to GLIBC_2.28"),
            "{}",
            out[0].detail
        );
        assert_eq!(image_glibc(&r).map(|g| g.0).as_deref(), Some("2.28"));
    }

    #[test]
    fn glibc_from_dpkg_when_libc_is_unreadable() {
        let r = fs(vec![(
            "var/lib/dpkg/status.d/libc6:amd64",
            text("Package: libc6\nVersion: 2.41-12\n"),
        )]);
        assert_eq!(image_glibc(&r).map(|g| g.0).as_deref(), Some("2.41"));
    }

    #[test]
    fn wheel_tags_against_glibc_arch_and_python() {
        let t = |tag: &str| tag_problems(tag, "amd64", Some("2.36"), Some((3, 13)));
        assert!(t("py3-none-any").is_empty());
        assert!(t("cp313-cp313-manylinux_2_17_x86_64").is_empty());
        assert!(t("cp310-abi3-manylinux2014_x86_64").is_empty());
        assert_eq!(
            t("cp313-cp313-manylinux_2_39_x86_64"),
            ["needs glibc >= 2.39, the image has 2.36"]
        );
        assert_eq!(t("cp312-cp312-manylinux1_x86_64").len(), 1);
        assert_eq!(t("py3-none-manylinux_2_17_aarch64").len(), 1);
        assert_eq!(t("py3-none-musllinux_1_2_x86_64").len(), 1);
        assert_eq!(t("cp314-abi3-manylinux_2_17_x86_64").len(), 1);
        assert_eq!(
            expand_tags("py2.py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64"),
            [
                "py2-none-manylinux_2_17_x86_64",
                "py2-none-manylinux2014_x86_64",
                "py3-none-manylinux_2_17_x86_64",
                "py3-none-manylinux2014_x86_64"
            ]
        );
    }

    #[test]
    fn a_wheel_for_another_python_is_reported() {
        let sp = "usr/local/lib/python3.13/dist-packages";
        let r = fs(vec![
            (
                "usr/lib/x86_64-linux-gnu/libc.so.6",
                libc(&["GLIBC_2.2.5", "GLIBC_2.36"]),
            ),
            (
                &format!("{sp}/fast-1.0.dist-info/WHEEL"),
                text("Wheel-Version: 1.0\nTag: cp312-cp312-manylinux_2_17_x86_64\n"),
            ),
            (
                &format!("{sp}/fast-1.0.dist-info/METADATA"),
                text("Name: fast\nVersion: 1.0\n"),
            ),
            (
                &format!("{sp}/ok-1.0.dist-info/WHEEL"),
                text("Tag: py3-none-any\n"),
            ),
        ]);
        let mut out = Vec::new();
        assert_eq!(check_wheels(&r, &Owners::default(), &mut out), 2);
        assert_eq!(out.len(), 1, "{out:#?}");
        assert_eq!(out[0].package.as_deref(), Some("fast 1.0 (wheel)"));
        assert!(out[0].detail.contains("CPython 3.12"), "{}", out[0].detail);
    }
}
