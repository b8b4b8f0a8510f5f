//! ELF closure: every `DT_NEEDED` of every ELF file resolves inside the image, the way
//! glibc's `ld.so` searches (`elf/dl-load.c`, `_dl_map_object`):
//!
//! 1. a name with a `/` is a path, used as is;
//! 2. `DT_RPATH` of the object, only when it has no `DT_RUNPATH`;
//! 3. `LD_LIBRARY_PATH` from the image config's `Env`;
//! 4. `DT_RUNPATH` of the object;
//! 5. the directories of `/etc/ld.so.conf` (with its `include`s), which `ld.so` only sees
//!    through `/etc/ld.so.cache`: a library found only there in an image without a cache
//!    is a warning;
//! 6. the default directories: `/lib/<triplet>`, `/usr/lib/<triplet>` (Debian's multiarch
//!    directories), `/lib`, `/usr/lib`, and `/lib64`, `/usr/lib64` for 64-bit objects.
//!
//! `$ORIGIN` is the directory of the object as it sits in the image (symlinks to it are
//! not checked separately); `$LIB` is tried as `lib/<triplet>`, `lib64` and `lib`;
//! `$PLATFORM` as the machine name. A candidate must be an ELF file of the same class and
//! machine (like `ld.so`, a mismatching file is skipped); a file that is not readable ELF
//! counts as found (its own finding says why). Names in the host-provided set (the driver's
//! `libcuda.so.1`, …) are never looked for. Also checked: the `PT_INTERP` of executables
//! exists (PIE executables are `ET_DYN`, so every object with one). Pure over a [`Rootfs`].

use std::collections::{BTreeMap, BTreeSet};

use super::elf::{ElfFacts, machine_of_arch, triplet};
use super::owners::{Owners, normalize};
use super::report::{Finding, Severity};
use super::rootfs::Rootfs;
use super::{CheckConfig, glob};

/// The closure check's name.
pub const CHECK: &str = "elf-closure";

/// Where a directory on the search path came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// `DT_RPATH`.
    Rpath,
    /// `LD_LIBRARY_PATH`.
    LdLibraryPath,
    /// `DT_RUNPATH`.
    Runpath,
    /// `/etc/ld.so.conf` (needs `/etc/ld.so.cache`).
    LdSoConf,
    /// `ld.so`'s built-in directories.
    Default,
}

/// The library search of one image.
#[derive(Debug)]
pub struct Search<'a> {
    fs: &'a Rootfs,
    ld_library_path: Vec<String>,
    conf_dirs: Vec<String>,
    has_cache: bool,
}

/// A library found: its resolved path and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The resolved path of the library file.
    pub path: String,
    /// Which part of the search found it.
    pub origin: Origin,
}

/// Directories listed by `/etc/ld.so.conf` and the files it includes, in order.
#[must_use]
pub fn ld_so_conf(fs: &Rootfs) -> Vec<String> {
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    conf_file(fs, "etc/ld.so.conf", 0, &mut seen, &mut out);
    out
}

fn conf_file(
    fs: &Rootfs,
    path: &str,
    depth: usize,
    seen: &mut BTreeSet<String>,
    out: &mut Vec<String>,
) {
    if depth > 8 || !seen.insert(path.to_string()) {
        return;
    }
    let Some(text) = fs.text(path) else { return };
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() || line.starts_with("hwcap ") {
            continue;
        }
        if let Some(pattern) = line.strip_prefix("include") {
            for pat in pattern.split_whitespace() {
                let pat = if pat.starts_with('/') {
                    normalize(pat)
                } else {
                    // Relative includes are relative to /etc.
                    normalize(&format!("etc/{pat}"))
                };
                let matches: Vec<String> = fs
                    .files()
                    .map(|(p, _)| p.clone())
                    .filter(|p| glob(&pat, p))
                    .collect();
                for m in matches {
                    conf_file(fs, &m, depth + 1, seen, out);
                }
            }
            continue;
        }
        for dir in line.split(|c: char| c.is_whitespace() || c == ',' || c == ':') {
            let dir = normalize(dir);
            if !dir.is_empty() && !out.contains(&dir) {
                out.push(dir);
            }
        }
    }
}

/// The machine name `$PLATFORM` expands to.
fn platform(machine: u16) -> &'static str {
    match machine {
        62 => "x86_64",
        3 => "i686",
        183 => "aarch64",
        40 => "armv7l",
        21 => "ppc64le",
        22 => "s390x",
        243 => "riscv64",
        _ => "unknown",
    }
}

/// Expands `$ORIGIN`, `$LIB`, `$PLATFORM` (and their `${…}` forms) in one search path
/// entry; `$LIB` gives several candidates.
#[must_use]
pub fn expand(entry: &str, origin: &str, facts: &ElfFacts) -> Vec<String> {
    let libs: Vec<String> = match triplet(facts.machine, facts.class, facts.big_endian) {
        Some(t) => vec![format!("lib/{t}"), "lib64".into(), "lib".into()],
        None => vec!["lib64".into(), "lib".into()],
    };
    let base = entry
        .replace("${ORIGIN}", "$ORIGIN")
        .replace("${LIB}", "$LIB")
        .replace("${PLATFORM}", "$PLATFORM")
        .replace("$ORIGIN", &format!("/{origin}"))
        .replace("$PLATFORM", platform(facts.machine));
    let mut out: Vec<String> = if base.contains("$LIB") {
        libs.iter().map(|l| base.replace("$LIB", l)).collect()
    } else {
        vec![base]
    };
    for o in &mut out {
        *o = normalize(o);
    }
    out
}

/// `ld.so`'s built-in directories for an object of this class and machine.
#[must_use]
pub fn default_dirs(facts: &ElfFacts) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(t) = triplet(facts.machine, facts.class, facts.big_endian) {
        out.push(format!("lib/{t}"));
        out.push(format!("usr/lib/{t}"));
    }
    out.push("lib".into());
    out.push("usr/lib".into());
    if facts.class == 64 {
        out.push("lib64".into());
        out.push("usr/lib64".into());
    }
    out
}

impl<'a> Search<'a> {
    /// The search of image `fs`.
    #[must_use]
    pub fn new(fs: &'a Rootfs) -> Self {
        Self {
            fs,
            ld_library_path: fs.ld_library_path().iter().map(|p| normalize(p)).collect(),
            conf_dirs: ld_so_conf(fs),
            has_cache: fs.file("etc/ld.so.cache").is_some(),
        }
    }

    /// The directories searched for the dependencies of the object at `obj`, in order.
    #[must_use]
    pub fn dirs(&self, obj: &str, facts: &ElfFacts) -> Vec<(String, Origin)> {
        let origin = obj.rsplit_once('/').map_or("", |(d, _)| d);
        let mut out = Vec::new();
        let mut push = |dirs: Vec<String>, o: Origin| {
            for d in dirs {
                if !out.iter().any(|(x, _)| *x == d) {
                    out.push((d, o));
                }
            }
        };
        if facts.runpath.is_empty() {
            for e in &facts.rpath {
                push(expand(e, origin, facts), Origin::Rpath);
            }
        }
        push(self.ld_library_path.clone(), Origin::LdLibraryPath);
        for e in &facts.runpath {
            push(expand(e, origin, facts), Origin::Runpath);
        }
        // A directory both in ld.so.conf and built in is searched without the cache too.
        let defaults = default_dirs(facts);
        let conf_only: Vec<String> = self
            .conf_dirs
            .iter()
            .filter(|d| !defaults.contains(d))
            .cloned()
            .collect();
        push(conf_only, Origin::LdSoConf);
        push(defaults, Origin::Default);
        out
    }

    /// Finds library `name` for the object at `obj`.
    #[must_use]
    pub fn find(&self, name: &str, obj: &str, facts: &ElfFacts) -> Option<Found> {
        if name.contains('/') {
            return self.candidate(&normalize(name), facts).map(|path| Found {
                path,
                origin: Origin::Default,
            });
        }
        self.dirs(obj, facts).into_iter().find_map(|(dir, origin)| {
            let p = if dir.is_empty() {
                name.to_string()
            } else {
                format!("{dir}/{name}")
            };
            self.candidate(&p, facts).map(|path| Found { path, origin })
        })
    }

    /// The resolved path of `path` when it is a usable library for `facts`.
    fn candidate(&self, path: &str, facts: &ElfFacts) -> Option<String> {
        let (real, info) = self.fs.file(path)?;
        match &info.elf {
            Some(Ok(f)) if f.class != facts.class || f.machine != facts.machine => None,
            _ => Some(real),
        }
    }

    /// Whether the image has `/etc/ld.so.cache`.
    #[must_use]
    pub fn has_cache(&self) -> bool {
        self.has_cache
    }
}

/// ELF files the checks look at: parsed, dynamic, of the image's machine (any machine
/// when the architecture is unknown), outside `/usr/lib/debug` (never parsed anyway).
pub fn objects(fs: &Rootfs) -> impl Iterator<Item = (&String, &ElfFacts)> {
    let machine = machine_of_arch(&fs.architecture);
    fs.files().filter_map(move |(p, info)| match &info.elf {
        Some(Ok(f))
            if f.dynamic
                && matches!(f.e_type, 2 | 3)
                && machine.is_none_or(|m| m == f.machine)
                && !p.starts_with("usr/lib/debug/") =>
        {
            Some((p, f))
        }
        _ => None,
    })
}

/// Whether `name` is provided by the host (the driver) per `cfg`.
#[must_use]
pub fn host_provided(cfg: &CheckConfig, name: &str) -> bool {
    cfg.host_provided.iter().any(|p| glob(p, name))
}

/// Dependencies found only through an inherited `DT_RPATH`: glibc searches, for an object
/// without `DT_RUNPATH`, the `DT_RPATH` of the object that loaded it, and of that one's
/// loader, up to the executable (each only when it has no `DT_RUNPATH` itself). Statically,
/// "the object that loaded it" is any object whose dependency resolved to it; the loaders are
/// followed transitively, to a fixpoint. Returns (object, name) → the path it resolves to.
fn inherited(
    fs: &Rootfs,
    cfg: &CheckConfig,
    search: &Search<'_>,
) -> BTreeMap<(String, String), String> {
    let objs: Vec<(&String, &ElfFacts)> = objects(fs).collect();
    let mut loaded_by: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut extra: BTreeMap<(String, String), String> = BTreeMap::new();
    let mut missing: Vec<(&String, &ElfFacts, &String)> = Vec::new();
    for (path, facts) in &objs {
        for name in &facts.needed {
            if host_provided(cfg, name) {
                continue;
            }
            match search.find(name, path, facts) {
                Some(found) => {
                    loaded_by
                        .entry(found.path)
                        .or_default()
                        .insert((*path).clone());
                }
                None if facts.runpath.is_empty() => missing.push((path, facts, name)),
                None => {}
            }
        }
    }
    let facts_of: BTreeMap<&str, &ElfFacts> = objs.iter().map(|(p, f)| (p.as_str(), *f)).collect();
    loop {
        let mut changed = false;
        for (path, facts, name) in &missing {
            let key = ((*path).clone(), (*name).clone());
            if extra.contains_key(&key) {
                continue;
            }
            // Breadth first up the loaders, each one's RPATH (if it has no RUNPATH).
            let mut queue: Vec<String> = loaded_by
                .get(*path)
                .map(|s| s.iter().cloned().collect())
                .unwrap_or_default();
            let mut seen: BTreeSet<String> = BTreeSet::new();
            let mut hit = None;
            while let Some(loader) = queue.pop() {
                if !seen.insert(loader.clone()) || seen.len() > 64 {
                    continue;
                }
                let Some(lf) = facts_of.get(loader.as_str()) else {
                    continue;
                };
                if lf.runpath.is_empty() {
                    let origin = loader.rsplit_once('/').map_or("", |(d, _)| d);
                    for e in &lf.rpath {
                        for dir in expand(e, origin, lf) {
                            let p = if dir.is_empty() {
                                (*name).clone()
                            } else {
                                format!("{dir}/{name}")
                            };
                            if hit.is_none() {
                                hit = search.candidate(&p, facts);
                            }
                        }
                    }
                }
                if hit.is_some() {
                    break;
                }
                if let Some(up) = loaded_by.get(&loader) {
                    queue.extend(up.iter().cloned());
                }
            }
            if let Some(found) = hit {
                loaded_by
                    .entry(found.clone())
                    .or_default()
                    .insert((*path).clone());
                extra.insert(key, found);
                changed = true;
            }
        }
        if !changed {
            return extra;
        }
    }
}

/// Runs the closure check.
pub fn check(fs: &Rootfs, owners: &Owners, cfg: &CheckConfig, out: &mut Vec<Finding>) {
    let search = Search::new(fs);
    let through_loaders = inherited(fs, cfg, &search);
    for (path, facts) in objects(fs) {
        let owner = owners.of(path);
        if let Some(interp) = &facts.interp
            && fs.file(&normalize(interp)).is_none()
        {
            out.push(
                Finding::new(
                    CHECK,
                    Severity::Error,
                    format!("program interpreter {interp} is not in the image"),
                )
                .file(path)
                .subject(interp.clone())
                .package(owner),
            );
        }
        for name in &facts.needed {
            if host_provided(cfg, name)
                || through_loaders.contains_key(&(path.clone(), name.clone()))
            {
                continue;
            }
            match search.find(name, path, facts) {
                Some(found) if found.origin == Origin::LdSoConf && !search.has_cache() => {
                    out.push(
                        Finding::new(
                            CHECK,
                            Severity::Warning,
                            format!(
                                "needs {name}, found at /{} only through /etc/ld.so.conf, but the image has no /etc/ld.so.cache (ldconfig never ran), so ld.so will not find it",
                                found.path
                            ),
                        )
                        .file(path)
                        .subject(name.clone())
                        .package(owner),
                    );
                }
                Some(_) => {}
                None => {
                    let searched: Vec<String> = search
                        .dirs(path, facts)
                        .into_iter()
                        .map(|(d, _)| format!("/{d}"))
                        .collect();
                    let elsewhere: Vec<String> = fs
                        .files()
                        .filter(|(p, _)| p.rsplit('/').next() == Some(name.as_str()))
                        .map(|(p, _)| format!("/{p}"))
                        .take(3)
                        .collect();
                    let mut detail = format!(
                        "needs {name}, which is not in the image on its search path (searched {})",
                        searched.join(", ")
                    );
                    if !elsewhere.is_empty() {
                        detail.push_str(&format!(
                            "; a file of that name is at {}, outside the search path",
                            elsewhere.join(", ")
                        ));
                    }
                    out.push(
                        Finding::new(CHECK, Severity::Error, detail)
                            .file(path)
                            .subject(name.clone())
                            .package(owner),
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::super::elf::parse;
    use super::super::elf::tests::ElfBuilder;
    use super::super::rootfs::{FileInfo, Node};
    use super::*;

    pub(crate) fn elf(b: &ElfBuilder) -> Node {
        let facts = parse(b.build().as_slice()).map_err(|e| e.to_string());
        Node::File(FileInfo {
            elf: Some(facts),
            ..FileInfo::default()
        })
    }

    fn fs(nodes: Vec<(&str, Node)>) -> Rootfs {
        let nodes: BTreeMap<String, Node> =
            nodes.into_iter().map(|(p, n)| (p.to_string(), n)).collect();
        Rootfs::from_nodes(nodes, "amd64")
    }

    fn run(fs: &Rootfs) -> Vec<Finding> {
        let mut out = Vec::new();
        check(fs, &Owners::default(), &CheckConfig::default(), &mut out);
        out
    }

    #[test]
    fn origin_runpath_and_defaults_resolve() {
        let lib = ElfBuilder::new().soname("libdep.so.1");
        let r = fs(vec![
            ("lib", Node::Symlink("usr/lib".into())),
            (
                "usr/lib/x86_64-linux-gnu/libc.so.6",
                elf(&ElfBuilder::new()),
            ),
            ("opt/app/lib/libdep.so.1", elf(&lib)),
            (
                "opt/app/bin/app",
                elf(&ElfBuilder::new()
                    .needed("libdep.so.1")
                    .needed("libc.so.6")
                    .needed("libcuda.so.1")
                    .runpath("$ORIGIN/../lib")),
            ),
            (
                "opt/app/bin/tool",
                elf(&ElfBuilder::new()
                    .needed("libdep.so.1")
                    .rpath("${ORIGIN}/../lib")),
            ),
        ]);
        assert_eq!(run(&r), []);
    }

    #[test]
    fn a_loaders_rpath_is_inherited_by_what_it_loads_unless_runpath_is_involved() {
        // h5py's layout: an extension with DT_RPATH $ORIGIN/../h5py.libs loads libhdf5
        // (no RPATH of its own), which needs libsz from the same directory.
        let hdf5 = "usr/lib/python3/h5py.libs/libhdf5.so.310";
        let sz = "usr/lib/python3/h5py.libs/libsz.so.2";
        let with = |runpath_on_ext: bool| {
            let ext = ElfBuilder::new().needed("libhdf5.so.310");
            let ext = if runpath_on_ext {
                ext.runpath("$ORIGIN/../h5py.libs")
            } else {
                ext.rpath("$ORIGIN/../h5py.libs")
            };
            fs(vec![
                ("usr/lib/python3/h5py/_conv.so", elf(&ext)),
                (hdf5, elf(&ElfBuilder::new().needed("libsz.so.2"))),
                (sz, elf(&ElfBuilder::new())),
            ])
        };
        assert_eq!(run(&with(false)), [], "found through the loader's RPATH");
        let f = run(&with(true));
        assert_eq!(f.len(), 1, "RUNPATH is not inherited: {f:#?}");
        assert_eq!(f[0].subject.as_deref(), Some("libsz.so.2"));
    }

    #[test]
    fn a_missing_needed_is_an_error_naming_file_and_library() {
        let r = fs(vec![
            (
                "usr/lib/x86_64-linux-gnu/libc.so.6",
                elf(&ElfBuilder::new()),
            ),
            ("opt/other/libgone.so.1", elf(&ElfBuilder::new())),
            (
                "usr/lib/foo/libfoo.so",
                elf(&ElfBuilder::new().needed("libgone.so.1").needed("libc.so.6")),
            ),
        ]);
        let f = run(&r);
        assert_eq!(f.len(), 1, "{f:#?}");
        assert_eq!(f[0].severity, Severity::Error);
        assert_eq!(f[0].file.as_deref(), Some("/usr/lib/foo/libfoo.so"));
        assert_eq!(f[0].subject.as_deref(), Some("libgone.so.1"));
        assert!(
            f[0].detail.contains("/opt/other/libgone.so.1"),
            "{}",
            f[0].detail
        );
    }

    #[test]
    fn runpath_disables_rpath_and_class_must_match() {
        let mut lib32 = ElfBuilder::new();
        lib32.class32 = true;
        let r = fs(vec![
            ("opt/a/libx.so.1", elf(&ElfBuilder::new())),
            ("opt/b/libx.so.1", elf(&lib32)),
            (
                "usr/bin/prog",
                elf(&ElfBuilder::new()
                    .needed("libx.so.1")
                    .rpath("/opt/a")
                    .runpath("/opt/b")),
            ),
        ]);
        let f = run(&r);
        assert_eq!(f.len(), 1, "{f:#?}");
        assert_eq!(f[0].subject.as_deref(), Some("libx.so.1"));
    }

    #[test]
    fn ld_so_conf_needs_a_cache_and_ld_library_path_counts() {
        let conf = |t: &str| {
            Node::File(FileInfo {
                text: Some(t.into()),
                ..FileInfo::default()
            })
        };
        let mut r = fs(vec![
            ("etc/ld.so.conf", conf("include /etc/ld.so.conf.d/*.conf\n")),
            (
                "etc/ld.so.conf.d/x.conf",
                conf("# local\n/opt/x/lib\n/usr/lib/x86_64-linux-gnu\n"),
            ),
            (
                "usr/lib/x86_64-linux-gnu/libz.so.1",
                elf(&ElfBuilder::new()),
            ),
            ("opt/x/lib/libx.so.1", elf(&ElfBuilder::new())),
            ("opt/y/libY.so.1", elf(&ElfBuilder::new())),
            (
                "usr/bin/prog",
                elf(&ElfBuilder::new()
                    .needed("libx.so.1")
                    .needed("libY.so.1")
                    .needed("libz.so.1")),
            ),
        ]);
        r.env = vec!["LD_LIBRARY_PATH=/opt/y:".into()];
        assert_eq!(ld_so_conf(&r), ["opt/x/lib", "usr/lib/x86_64-linux-gnu"]);
        let f = run(&r);
        assert_eq!(f.len(), 1, "{f:#?}");
        assert_eq!(f[0].severity, Severity::Warning);
        assert_eq!(f[0].subject.as_deref(), Some("libx.so.1"));
        r.nodes
            .insert("etc/ld.so.cache".into(), Node::File(FileInfo::default()));
        assert_eq!(run(&r), []);
    }

    #[test]
    fn a_missing_interpreter_is_reported() {
        let mut exe = ElfBuilder::new().interp("/lib64/ld-linux-x86-64.so.2");
        exe.needed.push("libc.so.6".into());
        let mut node = elf(&exe);
        if let Node::File(f) = &mut node
            && let Some(Ok(facts)) = &mut f.elf
        {
            facts.e_type = 2;
        }
        let r = fs(vec![
            (
                "usr/lib/x86_64-linux-gnu/libc.so.6",
                elf(&ElfBuilder::new()),
            ),
            ("usr/bin/prog", node),
        ]);
        let f = run(&r);
        assert_eq!(f.len(), 1, "{f:#?}");
        assert_eq!(f[0].subject.as_deref(), Some("/lib64/ld-linux-x86-64.so.2"));
    }

    #[test]
    fn expands_tokens() {
        let facts = match parse(ElfBuilder::new().build().as_slice()) {
            Ok(f) => f,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(
            expand(
                "$ORIGIN/../../nvidia/cudnn/lib",
                "usr/lib/python3/dist-packages/torch/lib",
                &facts
            ),
            ["usr/lib/python3/dist-packages/nvidia/cudnn/lib"]
        );
        assert_eq!(
            expand("/opt/$LIB/$PLATFORM", "x", &facts),
            [
                "opt/lib/x86_64-linux-gnu/x86_64",
                "opt/lib64/x86_64",
                "opt/lib/x86_64"
            ]
        );
    }
}
