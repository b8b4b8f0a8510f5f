//! Files that maintainer scripts would have made, synthesized deterministically.
//!
//! No package code runs (`shared/reference/image-content.md` §1.5 and §5.6); the effects that
//! matter are rebuilt here from the installed packages' own files, as pure functions of their
//! inputs (sorted, so byte-identical for the same inputs):
//!
//! - `etc/passwd`, `etc/group`: base-passwd's `passwd.master` / `group.master` (what its
//!   postinst copies), else a root-only pair; then the recipe's users, by uid, each with a
//!   group of its own name unless its gid already exists, and a home directory (0755, owned by
//!   the user). No `etc/shadow`: password fields are `*` (locked), as in base-passwd's masters.
//! - `var/lib/dpkg/status.d/<pkg>` (the package's `control`, `Status: install ok installed`
//!   after the `Package:` line) and `status.d/<pkg>.md5sums` (verbatim), the layout distroless
//!   uses and Trivy/Syft read; one file per package so packages in different layers never
//!   overwrite one shared `status`.
//! - the CA bundle `etc/ssl/certs/ca-certificates.crt` exactly as `update-ca-certificates`
//!   builds it, the `etc/ssl/certs/<name>.pem` links it makes, and the
//!   `etc/ca-certificates.conf` that ca-certificates' postinst would have written. The OpenSSL
//!   subject-hash links (`<hash>.0`) are not made: they need `openssl rehash`, and only
//!   `capath` users need them; the bundle (`cafile`, `SSL_CERT_FILE`) is enough for Python,
//!   requests/certifi and OpenSSL defaults.
//! - `tmp` (1777) and `usr/local/lib/python3.X/dist-packages` (python3.X-minimal's postinst).
//!
//! Parent directories are left to the layer planner. [`merged_usr_links`] gives the
//! `bin -> usr/bin` style links that [`super::deb`]'s merged-/usr mapping relies on.

use std::collections::{BTreeMap, BTreeSet};

use crate::layer::plan::{Content, PlannedEntry};
use crate::layer::tar::{EntryKind, Header};
use crate::recipe::UserSpec;

/// One installed package, as the synthesizer needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstalledPackage<'a> {
    /// Package name.
    pub name: &'a str,
    /// The `.deb`'s `control` file, verbatim.
    pub control: &'a str,
    /// The `.deb`'s `md5sums` (or the one [`super::deb`] generated), verbatim.
    pub md5sums: Option<&'a str>,
    /// Package architecture (`amd64`, `all`); names the status files `<pkg>:<arch>` when one
    /// package name is installed for several architectures.
    pub arch: &'a str,
}

/// Everything the synthesized files depend on.
#[derive(Debug, Clone)]
pub struct SynthInput<'a> {
    /// The image's packages (any order; sorted here).
    pub packages: Vec<InstalledPackage<'a>>,
    /// Accounts from the recipe.
    pub users: &'a [UserSpec],
    /// `python3.13` for `usr/local/lib/python3.13/dist-packages`, if Python is installed.
    pub python_dist_packages: Option<&'a str>,
    /// Contents of the installed files that feed the synthesis, keyed by image path without
    /// a leading `/`: those for which [`is_input_file`] is true.
    pub files: &'a BTreeMap<String, Vec<u8>>,
}

/// Why synthesis failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SynthError {
    /// A package's control file names another package.
    #[error("package `{package}`: its control file says `Package: {found}`")]
    PackageName {
        /// The package.
        package: String,
        /// The control file's `Package` value (empty when missing).
        found: String,
    },
    /// A control file that is not one deb822 stanza.
    #[error("package `{package}`: control file {reason}")]
    Control {
        /// The package.
        package: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// The same package name and architecture twice.
    #[error("package `{package}` ({arch}) is listed twice")]
    DuplicatePackage {
        /// The package.
        package: String,
        /// Its architecture.
        arch: String,
    },
    /// An input file that must be text is not UTF-8.
    #[error("/{path} is not valid UTF-8")]
    NotUtf8 {
        /// Image path.
        path: String,
    },
    /// A recipe account that cannot be added.
    #[error("user `{user}`: {reason}")]
    User {
        /// Login name.
        user: String,
        /// What is wrong.
        reason: String,
    },
    /// A bad `python_dist_packages` value.
    #[error("`{value}` is not a python3.N directory name")]
    Python {
        /// The value.
        value: String,
    },
    /// Two synthesized entries for one path that differ (e.g. a home directory at `/tmp`).
    #[error("/{path} would be synthesized twice with different metadata")]
    Conflict {
        /// Image path.
        path: String,
    },
}

/// base-passwd's master files.
pub const PASSWD_MASTER: &str = "usr/share/base-passwd/passwd.master";
/// base-passwd's master files.
pub const GROUP_MASTER: &str = "usr/share/base-passwd/group.master";
/// The certificates ca-certificates ships.
pub const CERTS_DIR: &str = "usr/share/ca-certificates/";
/// Certificates added by the image builder.
pub const LOCAL_CERTS_DIR: &str = "usr/local/share/ca-certificates/";
/// The certificate selection.
pub const CA_CONF: &str = "etc/ca-certificates.conf";
/// The generated bundle (`SSL_CERT_FILE`).
pub const CA_BUNDLE: &str = "etc/ssl/certs/ca-certificates.crt";

/// Whether an installed file (image path, no leading `/`) is read by [`synthesize`] and so
/// belongs in [`SynthInput::files`].
#[must_use]
pub fn is_input_file(path: &str) -> bool {
    path == PASSWD_MASTER
        || path == GROUP_MASTER
        || path == CA_CONF
        || ((path.starts_with(CERTS_DIR) || path.starts_with(LOCAL_CERTS_DIR))
            && path.ends_with(".crt"))
}

/// The synthesized entries, sorted by path, with inline content.
///
/// # Errors
/// [`SynthError`] for inconsistent packages, accounts that clash, or non-UTF-8 inputs.
pub fn synthesize(input: &SynthInput<'_>) -> Result<Vec<PlannedEntry>, SynthError> {
    let mut out = Entries::default();
    accounts(input, &mut out)?;
    dpkg_status(&input.packages, &mut out)?;
    ca_certificates(input, &mut out)?;
    out.dir("tmp", 0o1777, 0, 0)?;
    if let Some(py) = input.python_dist_packages {
        let ok = py
            .strip_prefix("python3.")
            .is_some_and(|m| !m.is_empty() && m.bytes().all(|b| b.is_ascii_digit()));
        if !ok {
            return Err(SynthError::Python { value: py.into() });
        }
        out.dir(&format!("usr/local/lib/{py}/dist-packages"), 0o755, 0, 0)?;
    }
    Ok(out.0.into_values().collect())
}

/// Debian's merged-/usr links as relative symlinks (`bin -> usr/bin`, `sbin -> usr/sbin`,
/// `lib -> usr/lib`, and `lib64 -> usr/lib64` on architectures whose ELF interpreter is in
/// `/lib64`, e.g. amd64's `/lib64/ld-linux-x86-64.so.2`), identical to trixie base-files'.
#[must_use]
pub fn merged_usr_links(arch: &str) -> Vec<PlannedEntry> {
    let lib64 = matches!(
        arch,
        "amd64" | "ppc64el" | "ppc64" | "loong64" | "mips64el" | "sparc64"
    );
    let mut dirs = vec!["bin", "lib"];
    if lib64 {
        dirs.push("lib64");
    }
    dirs.push("sbin");
    dirs.into_iter()
        .map(|d| PlannedEntry {
            header: Header {
                path: d.into(),
                mode: 0o777,
                uid: 0,
                gid: 0,
                kind: EntryKind::Symlink {
                    target: format!("usr/{d}"),
                },
            },
            content: Content::None,
            content_hash: [0; 32],
        })
        .collect()
}

/// Entries by path; a second identical entry is dropped, a differing one is an error.
#[derive(Default)]
struct Entries(BTreeMap<String, PlannedEntry>);

impl Entries {
    fn put(&mut self, e: PlannedEntry) -> Result<(), SynthError> {
        if let Some(prev) = self.0.get(&e.header.path) {
            if *prev == e {
                return Ok(());
            }
            return Err(SynthError::Conflict {
                path: e.header.path,
            });
        }
        self.0.insert(e.header.path.clone(), e);
        Ok(())
    }

    fn file(&mut self, path: &str, body: Vec<u8>) -> Result<(), SynthError> {
        self.put(PlannedEntry::inline_file(path, 0o644, body.into()))
    }

    fn dir(&mut self, path: &str, mode: u32, uid: u32, gid: u32) -> Result<(), SynthError> {
        self.put(PlannedEntry {
            header: Header {
                path: path.into(),
                mode,
                uid,
                gid,
                kind: EntryKind::Dir,
            },
            content: Content::None,
            content_hash: [0; 32],
        })
    }

    fn symlink(&mut self, path: &str, target: &str) -> Result<(), SynthError> {
        self.put(PlannedEntry {
            header: Header {
                path: path.into(),
                mode: 0o777,
                uid: 0,
                gid: 0,
                kind: EntryKind::Symlink {
                    target: target.into(),
                },
            },
            content: Content::None,
            content_hash: [0; 32],
        })
    }
}

fn text<'a>(
    files: &'a BTreeMap<String, Vec<u8>>,
    path: &str,
) -> Result<Option<&'a str>, SynthError> {
    files
        .get(path)
        .map(|b| std::str::from_utf8(b).map_err(|_| SynthError::NotUtf8 { path: path.into() }))
        .transpose()
}

fn with_newline(s: &str) -> String {
    let mut s = s.to_string();
    if !s.is_empty() && !s.ends_with('\n') {
        s.push('\n');
    }
    s
}

/// (names, ids) of the entries of a passwd/group file.
fn names_and_ids(file: &str) -> (BTreeSet<String>, BTreeSet<u32>) {
    let mut names = BTreeSet::new();
    let mut ids = BTreeSet::new();
    for line in file.lines() {
        let mut f = line.split(':');
        if let Some(name) = f.next().filter(|n| !n.is_empty() && !n.starts_with('#')) {
            names.insert(name.to_string());
            if let Some(id) = f.nth(1).and_then(|id| id.parse().ok()) {
                ids.insert(id);
            }
        }
    }
    (names, ids)
}

fn accounts(input: &SynthInput<'_>, out: &mut Entries) -> Result<(), SynthError> {
    let mut passwd = with_newline(
        text(input.files, PASSWD_MASTER)?.unwrap_or("root:*:0:0:root:/root:/bin/sh\n"),
    );
    let mut group = with_newline(text(input.files, GROUP_MASTER)?.unwrap_or("root:*:0:\n"));
    let (mut user_names, mut uids) = names_and_ids(&passwd);
    let (mut group_names, mut gids) = names_and_ids(&group);

    let mut users: Vec<&UserSpec> = input.users.iter().collect();
    users.sort_by(|a, b| (a.uid, &a.name).cmp(&(b.uid, &b.name)));
    for u in users {
        let err = |reason: String| SynthError::User {
            user: u.name.clone(),
            reason,
        };
        let bad = |s: &str| s.is_empty() || s.contains([':', '\n', '\r', '\0']);
        if bad(&u.name) || u.name.starts_with(['-', '+', '#']) {
            return Err(err("is not a valid login name".into()));
        }
        if bad(&u.home) || !u.home.starts_with('/') {
            return Err(err(format!("home {:?} is not an absolute path", u.home)));
        }
        if bad(&u.shell) {
            return Err(err(format!("shell {:?} is not valid", u.shell)));
        }
        if !user_names.insert(u.name.clone()) {
            return Err(err("already exists in /etc/passwd".into()));
        }
        if !uids.insert(u.uid) {
            return Err(err(format!("uid {} is already taken", u.uid)));
        }
        passwd.push_str(&format!(
            "{0}:*:{1}:{2}:{0}:{3}:{4}\n",
            u.name, u.uid, u.gid, u.home, u.shell
        ));
        // A group of the user's name, unless the gid exists (the user then joins it).
        if gids.insert(u.gid) {
            if !group_names.insert(u.name.clone()) {
                return Err(err(format!(
                    "group `{}` already exists with another gid than {}",
                    u.name, u.gid
                )));
            }
            group.push_str(&format!("{}:*:{}:\n", u.name, u.gid));
        }
        let home = normalized_home(&u.home).map_err(|r| err(format!("home {:?} {r}", u.home)))?;
        if let Some(home) = home {
            out.dir(&home, 0o755, u.uid, u.gid)?;
        }
    }
    out.file("etc/passwd", passwd.into_bytes())?;
    out.file("etc/group", group.into_bytes())
}

/// `/home/x/` → `home/x`; `None` for homes that must not exist (`/`, `/nonexistent`).
fn normalized_home(home: &str) -> Result<Option<String>, &'static str> {
    let parts: Vec<&str> = home.split('/').filter(|c| !c.is_empty()).collect();
    if parts.iter().any(|c| *c == "." || *c == "..") {
        return Err("has `.` or `..` components");
    }
    let p = parts.join("/");
    if p.is_empty() || p == "nonexistent" {
        return Ok(None);
    }
    Ok(Some(p))
}

fn dpkg_status(packages: &[InstalledPackage<'_>], out: &mut Entries) -> Result<(), SynthError> {
    let mut pkgs: Vec<&InstalledPackage<'_>> = packages.iter().collect();
    pkgs.sort_by(|a, b| (a.name, a.arch).cmp(&(b.name, b.arch)));
    let mut per_name: BTreeMap<&str, usize> = BTreeMap::new();
    for p in &pkgs {
        *per_name.entry(p.name).or_default() += 1;
    }
    let mut seen = BTreeSet::new();
    for p in pkgs {
        if !seen.insert((p.name, p.arch)) {
            return Err(SynthError::DuplicatePackage {
                package: p.name.into(),
                arch: p.arch.into(),
            });
        }
        let file = if per_name[p.name] > 1 {
            format!("var/lib/dpkg/status.d/{}:{}", p.name, p.arch)
        } else {
            format!("var/lib/dpkg/status.d/{}", p.name)
        };
        out.file(&file, status_stanza(p)?.into_bytes())?;
        if let Some(md5) = p.md5sums {
            out.file(&format!("{file}.md5sums"), md5.as_bytes().to_vec())?;
        }
    }
    Ok(())
}

/// The control file as a dpkg status stanza: `Status: install ok installed` after the
/// `Package:` field, nothing else changed, one trailing newline.
fn status_stanza(p: &InstalledPackage<'_>) -> Result<String, SynthError> {
    let cerr = |reason| SynthError::Control {
        package: p.name.into(),
        reason,
    };
    let body = p.control.trim_end_matches(['\n', '\r', ' ', '\t']);
    let body = body.trim_start_matches('\n');
    if body.lines().any(|l| l.trim().is_empty()) {
        return Err(cerr("has more than one stanza"));
    }
    let found = super::deb::control_field(body, "Package").unwrap_or_default();
    if found != p.name {
        return Err(SynthError::PackageName {
            package: p.name.into(),
            found,
        });
    }
    let has_status = super::deb::control_field(body, "Status").is_some();
    let mut out = String::with_capacity(body.len() + 32);
    let mut in_package = false;
    let mut inserted = has_status;
    for line in body.lines() {
        let continuation = line.starts_with([' ', '\t']);
        if in_package && !continuation && !inserted {
            out.push_str("Status: install ok installed\n");
            inserted = true;
        }
        if !continuation {
            in_package = line
                .split_once(':')
                .is_some_and(|(k, _)| k.eq_ignore_ascii_case("Package"));
        }
        out.push_str(line);
        out.push('\n');
    }
    if !inserted {
        out.push_str("Status: install ok installed\n");
    }
    Ok(out)
}

/// The header ca-certificates' postinst writes before the certificate list.
const CA_CONF_HEADER: &str = "\
# This file lists certificates that you wish to use or to ignore to be
# installed in /etc/ssl/certs.
# update-ca-certificates(8) will update /etc/ssl/certs by reading this file.
#
# This is autogenerated by dpkg-reconfigure ca-certificates.
# Certificates should be installed under /usr/share/ca-certificates
# and files with extension '.crt' is recognized as available certs.
#
# line begins with # is comment.
# line begins with ! is certificate filename to be deselected.
#
";

/// `update-ca-certificates` without a shell: the selected certificates in configuration
/// order (the postinst writes it byte-sorted, all certificates enabled), then the local ones
/// sorted; each appended with a newline ensured; one `<name>.pem` link per certificate.
fn ca_certificates(input: &SynthInput<'_>, out: &mut Entries) -> Result<(), SynthError> {
    let files = input.files;
    let shipped: Vec<&str> = files
        .keys()
        .filter_map(|k| k.strip_prefix(CERTS_DIR))
        .filter(|k| k.ends_with(".crt"))
        .collect();
    let selected: Vec<String> = match text(files, CA_CONF)? {
        Some(conf) => conf
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with(['#', '!']))
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty() && files.contains_key(&format!("{CERTS_DIR}{l}")))
            .collect(),
        None => {
            if !shipped.is_empty() {
                let mut conf = CA_CONF_HEADER.to_string();
                for c in &shipped {
                    conf.push_str(c);
                    conf.push('\n');
                }
                out.file(CA_CONF, conf.into_bytes())?;
            }
            shipped.iter().map(|s| (*s).to_string()).collect()
        }
    };
    let mut certs: Vec<String> = selected
        .into_iter()
        .map(|c| format!("{CERTS_DIR}{c}"))
        .collect();
    certs.extend(
        files
            .keys()
            .filter(|k| k.starts_with(LOCAL_CERTS_DIR) && k.ends_with(".crt"))
            .cloned(),
    );
    if certs.is_empty() {
        return Ok(());
    }
    let mut bundle = Vec::new();
    let mut links: BTreeMap<String, String> = BTreeMap::new();
    for c in &certs {
        let body = &files[c];
        bundle.extend_from_slice(body);
        if body.last().is_some_and(|&b| b != b'\n') {
            bundle.push(b'\n');
        }
        let base = c.rsplit('/').next().unwrap_or(c);
        let base = base.strip_suffix(".crt").unwrap_or(base);
        let pem: String = base
            .chars()
            .map(|ch| match ch {
                ' ' | ',' => '_',
                '(' | ')' => '=',
                other => other,
            })
            .collect();
        // `ln -sf`: a later certificate with the same link name wins.
        links.insert(format!("etc/ssl/certs/{pem}.pem"), format!("/{c}"));
    }
    out.file(CA_BUNDLE, bundle)?;
    for (link, target) in links {
        out.symlink(&link, &target)?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:*:0:0:root:/root:/bin/bash\ndaemon:*:1:1:daemon:/usr/sbin:/usr/sbin/nologin\nnobody:*:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";
    const GROUP: &str = "root:*:0:\ndaemon:*:1:\nusers:*:100:\nnogroup:*:65534:\n";

    fn user(name: &str, uid: u32, gid: u32) -> UserSpec {
        UserSpec {
            name: name.into(),
            uid,
            gid,
            home: format!("/home/{name}"),
            shell: "/bin/sh".into(),
        }
    }

    fn input<'a>(
        files: &'a BTreeMap<String, Vec<u8>>,
        users: &'a [UserSpec],
        packages: Vec<InstalledPackage<'a>>,
    ) -> SynthInput<'a> {
        SynthInput {
            packages,
            users,
            python_dist_packages: None,
            files,
        }
    }

    fn body(entries: &[PlannedEntry], path: &str) -> String {
        let e = entries.iter().find(|e| e.header.path == path).unwrap();
        match &e.content {
            Content::Inline(b) => String::from_utf8(b.to_vec()).unwrap(),
            other => panic!("{path}: {other:?}"),
        }
    }

    fn get<'a>(entries: &'a [PlannedEntry], path: &str) -> Option<&'a PlannedEntry> {
        entries.iter().find(|e| e.header.path == path)
    }

    fn files(pairs: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn passwd_and_group_from_base_passwd_plus_users() {
        let f = files(&[(PASSWD_MASTER, PASSWD), (GROUP_MASTER, GROUP)]);
        let users = [user("nonroot", 65532, 65532), user("app", 1000, 100)];
        let out = synthesize(&input(&f, &users, vec![])).unwrap();
        assert_eq!(
            body(&out, "etc/passwd"),
            format!(
                "{PASSWD}app:*:1000:100:app:/home/app:/bin/sh\nnonroot:*:65532:65532:nonroot:/home/nonroot:/bin/sh\n"
            )
        );
        assert_eq!(
            body(&out, "etc/group"),
            format!("{GROUP}nonroot:*:65532:\n"),
            "gid 100 exists (users): app joins it"
        );
        let home = get(&out, "home/nonroot").unwrap();
        assert_eq!(
            (
                &home.header.kind,
                home.header.mode,
                home.header.uid,
                home.header.gid
            ),
            (&EntryKind::Dir, 0o755, 65532, 65532)
        );
        assert_eq!(get(&out, "home/app").unwrap().header.gid, 100);
        assert!(get(&out, "etc/shadow").is_none());
        let tmp = get(&out, "tmp").unwrap();
        assert_eq!(
            (&tmp.header.kind, tmp.header.mode),
            (&EntryKind::Dir, 0o1777)
        );
        // sorted by path
        let paths: Vec<&str> = out.iter().map(|e| e.header.path.as_str()).collect();
        let mut sorted = paths.clone();
        sorted.sort_unstable();
        assert_eq!(paths, sorted);
    }

    #[test]
    fn root_only_without_base_passwd() {
        let f = BTreeMap::new();
        let users = [user("nonroot", 65532, 65532)];
        let out = synthesize(&input(&f, &users, vec![])).unwrap();
        assert_eq!(
            body(&out, "etc/passwd"),
            "root:*:0:0:root:/root:/bin/sh\nnonroot:*:65532:65532:nonroot:/home/nonroot:/bin/sh\n"
        );
        assert_eq!(body(&out, "etc/group"), "root:*:0:\nnonroot:*:65532:\n");
    }

    #[test]
    fn clashing_users_are_errors() {
        let f = files(&[(PASSWD_MASTER, PASSWD), (GROUP_MASTER, GROUP)]);
        for (u, want) in [
            (user("daemon", 5000, 5000), "already exists"),
            (user("x", 1, 5000), "uid 1 is already taken"),
            (user("users", 5000, 5000), "group `users` already exists"),
            (user("a:b", 5000, 5000), "not a valid login name"),
            (
                UserSpec {
                    home: "home/x".into(),
                    ..user("x", 5000, 5000)
                },
                "not an absolute path",
            ),
            (
                UserSpec {
                    home: "/tmp".into(),
                    ..user("x", 5000, 5000)
                },
                "/tmp would be synthesized twice",
            ),
        ] {
            let users = [u];
            let err = synthesize(&input(&f, &users, vec![])).unwrap_err();
            assert!(
                err.to_string().contains(want),
                "{err} should contain {want}"
            );
        }
        let users = [user("a", 5000, 5000), user("b", 5000, 5001)];
        assert!(synthesize(&input(&f, &users, vec![])).is_err());
        // a home that must not exist is not created
        let users = [UserSpec {
            home: "/nonexistent".into(),
            ..user("svc", 999, 999)
        }];
        let out = synthesize(&input(&f, &users, vec![])).unwrap();
        assert!(get(&out, "nonexistent").is_none());
    }

    const CONTROL: &str = "Package: libc6\nSource: glibc\nVersion: 2.36-9+deb12u7\nArchitecture: amd64\nMulti-Arch: same\nDescription: GNU C Library: Shared libraries\n Contains the standard libraries.\n";

    #[test]
    fn status_d_format() {
        let f = BTreeMap::new();
        let md5 = "d41d8cd98f00b204e9800998ecf8427e  lib/x86_64-linux-gnu/libc.so.6\n";
        let pkgs = vec![
            InstalledPackage {
                name: "libc6",
                control: CONTROL,
                md5sums: Some(md5),
                arch: "amd64",
            },
            InstalledPackage {
                name: "tzdata",
                control: "Package: tzdata\nVersion: 2024a-0+deb12u1\nArchitecture: all\n\n",
                md5sums: None,
                arch: "all",
            },
        ];
        let out = synthesize(&input(&f, &[], pkgs.clone())).unwrap();
        assert_eq!(
            body(&out, "var/lib/dpkg/status.d/libc6"),
            "Package: libc6\nStatus: install ok installed\nSource: glibc\nVersion: 2.36-9+deb12u7\nArchitecture: amd64\nMulti-Arch: same\nDescription: GNU C Library: Shared libraries\n Contains the standard libraries.\n"
        );
        assert_eq!(body(&out, "var/lib/dpkg/status.d/libc6.md5sums"), md5);
        assert_eq!(
            body(&out, "var/lib/dpkg/status.d/tzdata"),
            "Package: tzdata\nStatus: install ok installed\nVersion: 2024a-0+deb12u1\nArchitecture: all\n"
        );
        assert!(get(&out, "var/lib/dpkg/status.d/tzdata.md5sums").is_none());
        let e = get(&out, "var/lib/dpkg/status.d/libc6").unwrap();
        assert_eq!((e.header.mode, e.header.uid), (0o644, 0));

        // one name, two architectures: `<pkg>:<arch>`
        let mut multi = pkgs.clone();
        multi.push(InstalledPackage {
            arch: "i386",
            ..pkgs[0]
        });
        let out = synthesize(&input(&f, &[], multi)).unwrap();
        assert!(get(&out, "var/lib/dpkg/status.d/libc6:amd64.md5sums").is_some());
        assert!(get(&out, "var/lib/dpkg/status.d/libc6:i386").is_some());

        let bad = |control: &'static str| {
            synthesize(&input(
                &f,
                &[],
                vec![InstalledPackage {
                    name: "libc6",
                    control,
                    md5sums: None,
                    arch: "amd64",
                }],
            ))
            .unwrap_err()
        };
        assert!(matches!(
            bad("Package: glibc\n"),
            SynthError::PackageName { .. }
        ));
        assert!(matches!(
            bad("Package: libc6\n\nPackage: x\n"),
            SynthError::Control { .. }
        ));
        let dup = vec![pkgs[1], pkgs[1]];
        assert!(matches!(
            synthesize(&input(&f, &[], dup)).unwrap_err(),
            SynthError::DuplicatePackage { .. }
        ));
    }

    const CERT_A: &str = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    const CERT_B: &str = "-----BEGIN CERTIFICATE-----\nBBBB\n-----END CERTIFICATE-----"; // no final newline
    const CERT_C: &str = "-----BEGIN CERTIFICATE-----\nCCCC\n-----END CERTIFICATE-----\n";

    #[test]
    fn ca_bundle_without_conf_is_every_cert_byte_sorted() {
        let f = files(&[
            ("usr/share/ca-certificates/mozilla/b_Root.crt", CERT_B),
            (
                "usr/share/ca-certificates/mozilla/AC_RAIZ (FNMT), 2.crt",
                CERT_C,
            ),
            ("usr/share/ca-certificates/mozilla/ACCVRAIZ1.crt", CERT_A),
            ("usr/local/share/ca-certificates/corp/zz.crt", CERT_A),
        ]);
        let out = synthesize(&input(&f, &[], vec![])).unwrap();
        // C-locale order: "ACCVRAIZ1" < "AC_RAIZ" ('C' < '_') < "b_Root" (lowercase last)
        assert_eq!(
            body(&out, CA_BUNDLE),
            format!("{CERT_A}{CERT_C}{CERT_B}\n{CERT_A}"),
            "newline ensured after each cert; local certs last"
        );
        assert_eq!(
            body(&out, CA_CONF),
            format!(
                "{CA_CONF_HEADER}mozilla/ACCVRAIZ1.crt\nmozilla/AC_RAIZ (FNMT), 2.crt\nmozilla/b_Root.crt\n"
            )
        );
        let link = get(&out, "etc/ssl/certs/AC_RAIZ_=FNMT=__2.pem").unwrap();
        assert_eq!(
            link.header.kind,
            EntryKind::Symlink {
                target: "/usr/share/ca-certificates/mozilla/AC_RAIZ (FNMT), 2.crt".into()
            }
        );
        assert_eq!(
            get(&out, "etc/ssl/certs/zz.pem").unwrap().header.kind,
            EntryKind::Symlink {
                target: "/usr/local/share/ca-certificates/corp/zz.crt".into()
            }
        );
        let bundle = get(&out, CA_BUNDLE).unwrap();
        assert_eq!(bundle.header.mode, 0o644);
    }

    #[test]
    fn ca_bundle_follows_the_conf() {
        let f = files(&[
            ("usr/share/ca-certificates/mozilla/A.crt", CERT_A),
            ("usr/share/ca-certificates/mozilla/B.crt", CERT_B),
            ("usr/share/ca-certificates/mozilla/C.crt", CERT_C),
            (
                CA_CONF,
                "# comment\nmozilla/C.crt\n!mozilla/B.crt\n\nmozilla/A.crt\nmozilla/missing.crt\n",
            ),
        ]);
        let out = synthesize(&input(&f, &[], vec![])).unwrap();
        assert_eq!(body(&out, CA_BUNDLE), format!("{CERT_C}{CERT_A}"));
        assert!(get(&out, "etc/ssl/certs/B.pem").is_none());
        assert!(
            get(&out, CA_CONF).is_none(),
            "a shipped conf is not replaced"
        );
        // no certificates, no bundle
        let out = synthesize(&input(&BTreeMap::new(), &[], vec![])).unwrap();
        assert!(get(&out, CA_BUNDLE).is_none());
        assert!(get(&out, CA_CONF).is_none());
    }

    #[test]
    fn python_dist_packages_dir() {
        let f = BTreeMap::new();
        let mut i = input(&f, &[], vec![]);
        i.python_dist_packages = Some("python3.13");
        let out = synthesize(&i).unwrap();
        let d = get(&out, "usr/local/lib/python3.13/dist-packages").unwrap();
        assert_eq!((&d.header.kind, d.header.mode), (&EntryKind::Dir, 0o755));
        i.python_dist_packages = Some("../python3.13");
        assert!(matches!(synthesize(&i), Err(SynthError::Python { .. })));
    }

    #[test]
    fn output_is_deterministic() {
        let f = files(&[
            (PASSWD_MASTER, PASSWD),
            (GROUP_MASTER, GROUP),
            ("usr/share/ca-certificates/mozilla/B.crt", CERT_B),
            ("usr/share/ca-certificates/mozilla/A.crt", CERT_A),
        ]);
        let p1 = InstalledPackage {
            name: "libc6",
            control: CONTROL,
            md5sums: None,
            arch: "amd64",
        };
        let p2 = InstalledPackage {
            name: "base-files",
            control: "Package: base-files\nVersion: 12.4\n",
            md5sums: Some("x  etc/os-release\n"),
            arch: "amd64",
        };
        let u1 = [user("b", 2000, 2000), user("a", 1000, 1000)];
        let u2 = [user("a", 1000, 1000), user("b", 2000, 2000)];
        let a = synthesize(&input(&f, &u1, vec![p1, p2])).unwrap();
        let b = synthesize(&input(&f, &u2, vec![p2, p1])).unwrap();
        assert_eq!(a, b, "input order does not matter");
        let mut i = input(&f, &u1, vec![p1, p2]);
        i.python_dist_packages = Some("python3.11");
        let hashes: Vec<_> = synthesize(&i)
            .unwrap()
            .iter()
            .map(|e| e.content_hash)
            .collect();
        let again: Vec<_> = synthesize(&i)
            .unwrap()
            .iter()
            .map(|e| e.content_hash)
            .collect();
        assert_eq!(hashes, again);
    }

    #[test]
    fn merged_usr_links_per_arch() {
        let amd64 = merged_usr_links("amd64");
        let got: Vec<(String, EntryKind)> = amd64
            .iter()
            .map(|e| (e.header.path.clone(), e.header.kind.clone()))
            .collect();
        let link = |p: &str| {
            (
                p.to_string(),
                EntryKind::Symlink {
                    target: format!("usr/{p}"),
                },
            )
        };
        assert_eq!(got, [link("bin"), link("lib"), link("lib64"), link("sbin")]);
        assert!(
            amd64
                .iter()
                .all(|e| e.header.mode == 0o777 && e.header.uid == 0)
        );
        let arm: Vec<String> = merged_usr_links("arm64")
            .into_iter()
            .map(|e| e.header.path)
            .collect();
        assert_eq!(arm, ["bin", "lib", "sbin"]);
    }

    #[test]
    fn input_files_filter() {
        assert!(is_input_file(PASSWD_MASTER));
        assert!(is_input_file("usr/share/ca-certificates/mozilla/X.crt"));
        assert!(is_input_file("usr/local/share/ca-certificates/x/y.crt"));
        assert!(is_input_file(CA_CONF));
        assert!(!is_input_file("usr/share/ca-certificates/mozilla/X.pem"));
        assert!(!is_input_file("etc/passwd"));
    }

    fn read_tree(root: &std::path::Path, prefix: &str, out: &mut BTreeMap<String, Vec<u8>>) {
        let Ok(rd) = std::fs::read_dir(root) else {
            return;
        };
        for e in rd {
            let e = e.unwrap();
            let name = e.file_name().into_string().unwrap();
            let key = format!("{prefix}{name}");
            let meta = std::fs::metadata(e.path()).unwrap();
            if meta.is_dir() {
                read_tree(&e.path(), &format!("{key}/"), out);
            } else if is_input_file(&key) {
                out.insert(key, std::fs::read(e.path()).unwrap());
            }
        }
    }

    /// On a Debian host, the bundle equals the one `update-ca-certificates` made there.
    #[test]
    fn ca_bundle_matches_this_hosts_update_ca_certificates() {
        let Ok(host_bundle) = std::fs::read("/etc/ssl/certs/ca-certificates.crt") else {
            return;
        };
        let Ok(conf) = std::fs::read("/etc/ca-certificates.conf") else {
            return;
        };
        let mut f = BTreeMap::new();
        read_tree(
            std::path::Path::new("/usr/share/ca-certificates"),
            CERTS_DIR,
            &mut f,
        );
        read_tree(
            std::path::Path::new("/usr/local/share/ca-certificates"),
            LOCAL_CERTS_DIR,
            &mut f,
        );
        if f.is_empty() {
            return;
        }
        let without_conf = synthesize(&input(&f, &[], vec![])).unwrap();
        f.insert(CA_CONF.into(), conf);
        let with_conf = synthesize(&input(&f, &[], vec![])).unwrap();
        let ours = body(&with_conf, CA_BUNDLE);
        assert_eq!(
            ours.as_bytes(),
            host_bundle.as_slice(),
            "bundle differs from the host's"
        );
        // with every certificate enabled, the sorted default is the same bundle
        if !String::from_utf8_lossy(&f[CA_CONF])
            .lines()
            .any(|l| l.starts_with('!'))
        {
            assert_eq!(body(&without_conf, CA_BUNDLE), ours);
        }
        for e in &with_conf {
            if let EntryKind::Symlink { target } = &e.header.kind {
                // (a host may have replaced a link by a file; only links are compared)
                if let Ok(host) = std::fs::read_link(format!("/{}", e.header.path)) {
                    assert_eq!(host.to_str().unwrap(), target, "{}", e.header.path);
                }
            }
        }
    }
}
