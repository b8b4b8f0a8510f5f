//! Debian images end to end, offline: a generated repository (real `.deb`s, an `InRelease`
//! signed by a test key, `Packages.xz`) served on 127.0.0.1, a recipe whose `debian` block
//! points at it, and the real `compose lock|update|build|store verify`.
//!
//! Every test has its own temporary directory, repository, server and store.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use composer_tests::debrepo::*;
use composer_tests::*;

/// `2026-11-01T00:00:00Z`, the recipes' epoch: every entry's mtime.
const EPOCH: u64 = 1_793_491_200;

/// A temporary directory with a signed repository under `repo/`, served over HTTP, the
/// public key in `keys/archive.pgp` and a store in `store/`.
struct Fx {
    tmp: tempfile::TempDir,
    key: TestKey,
    repo: Repo,
    server: FixtureServer,
}

impl Fx {
    fn new(spec: &RepoSpec) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let key = TestKey::new(7);
        let repo = build_repo(&tmp.path().join("repo"), spec, &key);
        write(&tmp.path().join("keys/archive.pgp"), key.public_keyring());
        let server = FixtureServer::start(&repo.root);
        Self {
            tmp,
            key,
            repo,
            server,
        }
    }

    /// Publishes a new state of the repository (dists rewritten; old pool files stay).
    fn republish(&mut self, spec: &RepoSpec) {
        self.repo = build_repo(&self.repo.root.clone(), spec, &self.key);
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }

    fn store(&self) -> PathBuf {
        self.path("store")
    }

    /// Writes `name.kdl` for image `deb-test` reading `suites` of the fixture archive.
    fn recipe(&self, name: &str, suites: &str, debian_extra: &str, layers: &str) -> PathBuf {
        let text = format!(
            r#"image "deb-test" {{
    tag "1.0"
    epoch "2026-11-01T00:00:00Z"
}}
debian {{
    archive "{url}" suites="{suites}" components="main"
    keyring "keys/archive.pgp"
    {debian_extra}
}}
{layers}
"#,
            url = self.server.url()
        );
        let path = self.path(&format!("{name}.kdl"));
        write(&path, text);
        path
    }

    fn lock(&self, recipe: &Path) -> String {
        run_ok(compose(&self.store()).arg("lock").arg(recipe))
    }

    fn lock_err(&self, recipe: &Path) -> Output {
        run_err(compose(&self.store()).arg("lock").arg(recipe))
    }

    fn build_in(&self, store: &Path, recipe: &Path, out: &str) -> String {
        run_ok(
            compose(store)
                .arg("build")
                .arg(recipe)
                .arg("-o")
                .arg(self.path(out)),
        )
        .trim()
        .to_string()
    }

    fn build(&self, recipe: &Path, out: &str) -> String {
        self.build_in(&self.store(), recipe, out)
    }

    fn build_err(&self, recipe: &Path, out: &str) -> Output {
        run_err(
            compose(&self.store())
                .arg("build")
                .arg(recipe)
                .arg("-o")
                .arg(self.path(out)),
        )
    }

    fn url(&self, rel: &str) -> String {
        format!("{}/{rel}", self.server.url())
    }

    /// `compose store verify` succeeds with no problems.
    fn assert_store_clean(&self) {
        let v = run_ok(compose(&self.store()).args(["store", "verify"]));
        assert!(v.contains(": 0 problems"), "{v}");
    }
}

/// One `deb` line of a lock file, read with string matching only (not composer's parser).
#[derive(Debug, Clone)]
struct Locked {
    version: String,
    suite: String,
    layer: String,
    reason: String,
    sha256: String,
}

fn attr(line: &str, key: &str) -> String {
    let pat = format!(" {key}=\"");
    let start = line
        .find(&pat)
        .unwrap_or_else(|| panic!("no {key} in {line}"))
        + pat.len();
    let len = line[start..].find('"').unwrap();
    line[start..start + len].to_string()
}

/// Package name → its lock line, from `RECIPE.lock`.
fn locked(recipe: &Path) -> BTreeMap<String, Locked> {
    let text = std::fs::read_to_string(recipe.with_extension("lock")).unwrap();
    text.lines()
        .filter_map(|l| l.strip_prefix("deb \""))
        .map(|rest| {
            let name = rest[..rest.find('"').unwrap()].to_string();
            let line = format!(" {rest}");
            (
                name,
                Locked {
                    version: attr(&line, "version"),
                    suite: attr(&line, "suite"),
                    layer: attr(&line, "layer"),
                    reason: attr(&line, "reason"),
                    sha256: attr(&line, "sha256"),
                },
            )
        })
        .collect()
}

fn versions(recipe: &Path) -> BTreeMap<String, String> {
    locked(recipe)
        .into_iter()
        .map(|(k, v)| (k, v.version))
        .collect()
}

/// Text without whitespace and miette's box drawing, so that wrapped reports still match.
fn squash(s: &str) -> String {
    s.chars()
        .filter(|c| {
            !c.is_whitespace() && !('\u{2500}'..='\u{257F}').contains(c) && !matches!(c, '×' | '▶')
        })
        .collect()
}

/// Asserts that stderr mentions every needle (whitespace and line wrapping ignored).
fn assert_mentions(out: &Output, needles: &[&str]) {
    let err = String::from_utf8_lossy(&out.stderr);
    let flat = squash(&err);
    for n in needles {
        assert!(flat.contains(&squash(n)), "stderr lacks {n:?}:\n{err}");
    }
}

fn deb_url(fx: &Fx, spec: &DebSpec) -> String {
    fx.url(&spec.pool_path("main"))
}

// ---------------------------------------------------------------------------------------------
// Packages

fn base_files() -> DebSpec {
    DebSpec::new("base-files", "13.8")
        .essential()
        .priority("required")
        .file(
            "/etc/os-release",
            "PRETTY_NAME=\"Debian GNU/Linux 13 (trixie)\"\nID=debian\nVERSION_ID=\"13\"\n",
        )
        .dir("/usr/bin")
        .dir("/usr/sbin")
        // trixie's base-files ships the merged-/usr links itself; composer makes its own.
        .symlink("/bin", "usr/bin")
        .symlink("/lib", "usr/lib")
        .symlink("/lib64", "usr/lib64")
        .symlink("/sbin", "usr/sbin")
}

fn base_passwd() -> DebSpec {
    DebSpec::new("base-passwd", "3.6.7")
        .essential()
        .priority("required")
        .file(
            "/usr/share/base-passwd/passwd.master",
            "root:*:0:0:root:/root:/bin/bash\ndaemon:*:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n",
        )
        .file(
            "/usr/share/base-passwd/group.master",
            "root:*:0:\ndaemon:*:1:\n",
        )
}

/// A libc shipped under `./lib/…` as trixie's still is; merged /usr puts it under `usr/lib`.
fn libc6(version: &str) -> DebSpec {
    DebSpec::new("libc6", version)
        .source("glibc")
        .priority("required")
        .multi_arch("same")
        .file("/lib/x86_64-linux-gnu/libc.so.6", "\u{7f}ELF libc")
        .file("/lib64/ld-linux-x86-64.so.2", "\u{7f}ELF ld")
}

fn app(version: &str) -> DebSpec {
    DebSpec::new("app", version)
        .depends("libc6 (>= 2.36)")
        .exec("/usr/bin/app", format!("#!/bin/sh\necho app {version}\n"))
}

fn suite(name: &str, debs: Vec<DebSpec>) -> SuiteSpec {
    SuiteSpec::new(name).component("main", debs)
}

fn repo(suites: Vec<SuiteSpec>) -> RepoSpec {
    RepoSpec { suites }
}

fn basic_repo() -> RepoSpec {
    repo(vec![suite(
        "trixie",
        vec![base_files(), base_passwd(), libc6("2.41-12"), app("1.0-1")],
    )])
}

const BASE_POLICY: &str = r#"include "base-files" "base-passwd"
    user "app" uid=1000 gid=1000"#;

const APP_LAYER: &str = r#"layer "system" {
    debian "app"
}"#;

// ---------------------------------------------------------------------------------------------
// 1. Happy path

#[test]
fn lock_then_build_installs_a_dependency_graph_reproducibly_and_offline_on_rebuild() {
    let fx = Fx::new(&basic_repo());
    let recipe = fx.recipe("img", "trixie", BASE_POLICY, APP_LAYER);

    let out = fx.lock(&recipe);
    assert!(out.contains("img.lock"), "{out}");
    let lock = locked(&recipe);
    assert_eq!(
        lock.keys().map(String::as_str).collect::<Vec<_>>(),
        ["app", "base-files", "base-passwd", "libc6"]
    );
    assert_eq!(lock["libc6"].version, "2.41-12");
    assert_eq!(lock["libc6"].reason, "app → libc6");
    assert_eq!(lock["app"].reason, "requested");
    assert_eq!(lock["base-files"].reason, "included");
    assert!(
        lock.values()
            .all(|l| l.layer == "system" && l.suite == "trixie")
    );
    assert_eq!(lock["app"].sha256, fx.repo.deb("app").1);
    // lock reads the signed InRelease and the index it lists, never a package.
    assert_eq!(
        fx.server.requests(),
        [
            "GET /dists/trixie/InRelease".to_string(),
            format!("GET /{PACKAGES_XZ}")
        ]
    );

    // The first build uses the current lock: it downloads each package once and no index.
    fx.server.reset_hits();
    let digest = fx.build(&recipe, "o1");
    assert!(digest.starts_with("sha256:"), "{digest}");
    let reqs = fx.server.requests();
    assert_eq!(reqs.len(), 4, "{reqs:?}");
    assert!(reqs.iter().all(|r| r.ends_with(".deb")), "{reqs:?}");

    let layout = Layout::open(&fx.path("o1"));
    assert_eq!(layout.manifest_digest, digest);
    layout.check_diff_ids();
    assert_eq!(layout.layers().len(), 1);
    let e = layout.entries(0);

    // merged /usr: shipped under lib/, placed under usr/lib/, reached through the lib link.
    let libc = &e["usr/lib/x86_64-linux-gnu/libc.so.6"];
    assert_eq!(libc.kind, b'0');
    assert_eq!(libc.data, b"\x7fELF libc");
    assert_eq!(libc.mtime, EPOCH);
    assert!(e.contains_key("usr/lib64/ld-linux-x86-64.so.2"));
    assert!(!e.contains_key("lib/x86_64-linux-gnu/libc.so.6"));
    for (link, target) in [
        ("bin", "usr/bin"),
        ("lib", "usr/lib"),
        ("lib64", "usr/lib64"),
        ("sbin", "usr/sbin"),
    ] {
        let l = e
            .get(link)
            .unwrap_or_else(|| panic!("no /{link}: {:?}", e.keys()));
        assert_eq!(l.kind, b'2', "/{link} is a symlink");
        assert_eq!(l.link.as_deref(), Some(target), "/{link}");
    }
    let app_bin = &e["usr/bin/app"];
    assert_eq!(app_bin.mode & 0o777, 0o755);
    assert_eq!(app_bin.data, b"#!/bin/sh\necho app 1.0-1\n");
    assert_eq!(
        e["etc/os-release"].data,
        b"PRETTY_NAME=\"Debian GNU/Linux 13 (trixie)\"\nID=debian\nVERSION_ID=\"13\"\n"
    );

    // Accounts: base-passwd's masters, then the recipe's user with its home.
    let passwd = String::from_utf8(e["etc/passwd"].data.clone()).unwrap();
    assert_eq!(
        passwd,
        "root:*:0:0:root:/root:/bin/bash\ndaemon:*:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n\
         app:*:1000:1000:app:/home/app:/bin/sh\n"
    );
    let group = String::from_utf8(e["etc/group"].data.clone()).unwrap();
    assert_eq!(group, "root:*:0:\ndaemon:*:1:\napp:*:1000:\n");
    let home = &e["home/app/"];
    assert_eq!((home.kind, home.uid, home.gid), (b'5', 1000, 1000));

    // The dpkg database, one file per package.
    for name in ["app", "base-files", "base-passwd", "libc6"] {
        let status =
            String::from_utf8(e[&format!("var/lib/dpkg/status.d/{name}")].data.clone()).unwrap();
        assert!(
            status.starts_with(&format!("Package: {name}\nStatus: install ok installed\n")),
            "{status}"
        );
    }
    let md5 = String::from_utf8(e["var/lib/dpkg/status.d/libc6.md5sums"].data.clone()).unwrap();
    // As shipped (the dpkg database keeps lib/, not usr/lib/).
    assert!(md5.contains("  lib/x86_64-linux-gnu/libc.so.6\n"), "{md5}");

    // A second store downloads everything again and gives the same image.
    fx.server.reset_hits();
    let other_store = fx.path("store2");
    assert_eq!(fx.build_in(&other_store, &recipe, "o2"), digest);
    assert_eq!(fx.server.total_hits(), 4, "{:?}", fx.server.requests());

    // A rebuild with the first store needs nothing from the network: not even InRelease.
    fx.server.reset_hits();
    assert_eq!(fx.build(&recipe, "o3"), digest);
    assert_eq!(fx.server.total_hits(), 0, "{:?}", fx.server.requests());
    fx.assert_store_clean();
}

#[test]
fn build_without_a_lock_resolves_writes_the_lock_and_matches_lock_then_build() {
    let fx = Fx::new(&basic_repo());
    let a = fx.recipe("a", "trixie", BASE_POLICY, APP_LAYER);
    let b = fx.recipe("b", "trixie", BASE_POLICY, APP_LAYER);
    let from_build = fx.build(&a, "oa");
    assert!(a.with_extension("lock").exists());
    fx.lock(&b);
    assert_eq!(fx.build(&b, "ob"), from_build);
    assert_eq!(
        std::fs::read(a.with_extension("lock")).unwrap(),
        std::fs::read(b.with_extension("lock")).unwrap()
    );
}

#[test]
fn packages_go_to_the_lowest_layer_that_pulls_them_with_their_dpkg_status() {
    let fx = Fx::new(&basic_repo());
    let recipe = fx.recipe(
        "r",
        "trixie",
        BASE_POLICY,
        r#"layer "base" {
    debian "libc6"
}
layer "app" after="base" {
    debian "app"
    write "/etc/app.conf" "x=1\n"
}"#,
    );
    fx.lock(&recipe);
    let lock = locked(&recipe);
    let layers: BTreeMap<&str, &str> = lock
        .iter()
        .map(|(n, l)| (n.as_str(), l.layer.as_str()))
        .collect();
    assert_eq!(
        layers,
        BTreeMap::from([
            ("app", "app"),
            ("base-files", "base"),
            ("base-passwd", "base"),
            ("libc6", "base"),
        ])
    );
    fx.build(&recipe, "o");
    let layout = Layout::open(&fx.path("o"));
    layout.check_diff_ids();
    assert_eq!(layout.layers().len(), 2);
    let (base, top) = (layout.entries(0), layout.entries(1));
    assert!(base.contains_key("usr/lib/x86_64-linux-gnu/libc.so.6"));
    assert!(base.contains_key("var/lib/dpkg/status.d/libc6"));
    assert!(base.contains_key("etc/passwd"));
    assert_eq!(base["lib"].link.as_deref(), Some("usr/lib"));
    assert!(!base.contains_key("usr/bin/app"));
    assert!(top.contains_key("usr/bin/app"));
    assert!(top.contains_key("var/lib/dpkg/status.d/app"));
    assert_eq!(top["etc/app.conf"].data, b"x=1\n");
    for p in ["etc/passwd", "lib", "var/lib/dpkg/status.d/libc6"] {
        assert!(!top.contains_key(p), "{p} is in the app layer too");
    }
}

// ---------------------------------------------------------------------------------------------
// 2. Resolution rules

fn rules_repo() -> RepoSpec {
    repo(vec![
        suite(
            "trixie",
            vec![
                // Alternatives: the first satisfiable one wins.
                DebSpec::new("alt-user", "1").depends("no-such-mta | mta-b | mta-a"),
                DebSpec::new("mta-a", "1"),
                DebSpec::new("mta-b", "1"),
                // Virtual packages.
                DebSpec::new("wants-editor", "1").depends("editor"),
                DebSpec::new("nano-lite", "1").provides("editor"),
                DebSpec::new("wants-browser", "1").depends("www-browser (>= 2)"),
                DebSpec::new("aa-browser", "1").provides("www-browser"),
                DebSpec::new("zz-browser", "1").provides("www-browser (= 3)"),
                // Epochs: 1:1.0 > 2.0.
                DebSpec::new("epochy", "1:1.0-1"),
                DebSpec::new("epochy", "2.0-1"),
                DebSpec::new("wants-epoch", "1").depends("epochy (>= 3.0)"),
                // Tildes: 1.0~rc1 < 1.0.
                DebSpec::new("tilde-a", "1.0~rc1-1"),
                DebSpec::new("tilde-a", "1.0-1"),
                DebSpec::new("tilde-b", "2.0~beta1-1"),
                DebSpec::new("tilde-b", "2.0-1"),
                DebSpec::new("wants-pre", "1").depends("tilde-b (<< 2.0)"),
                // Suites: the highest version wins, wherever it is.
                DebSpec::new("secpkg", "1.0-1"),
                DebSpec::new("oldsec", "2.0-1"),
            ],
        ),
        suite(
            "trixie-security",
            vec![
                DebSpec::new("secpkg", "1.0-1+deb13u1"),
                DebSpec::new("oldsec", "1.5-1+deb13u1"),
            ],
        ),
    ])
}

#[test]
fn resolution_follows_alternatives_provides_version_order_and_suite_precedence() {
    let fx = Fx::new(&rules_repo());
    let recipe = fx.recipe(
        "rules",
        "trixie trixie-security",
        "",
        r#"layer "apps" {
    debian "alt-user" "wants-editor" "wants-browser" "epochy" "wants-epoch"
    debian "tilde-a" "wants-pre" "secpkg" "oldsec"
}"#,
    );
    fx.lock(&recipe);
    let lock = locked(&recipe);
    let v = |n: &str| {
        lock.get(n)
            .unwrap_or_else(|| panic!("{n} not locked: {lock:#?}"))
            .version
            .clone()
    };

    // `no-such-mta | mta-b | mta-a`: mta-b, the first alternative that exists.
    assert_eq!(v("mta-b"), "1");
    assert!(!lock.contains_key("mta-a"), "{lock:#?}");
    assert_eq!(lock["mta-b"].reason, "alt-user → mta-b");

    // A virtual package through its only provider.
    assert_eq!(v("nano-lite"), "1");
    assert!(
        lock["nano-lite"].reason.contains("provides editor"),
        "{lock:#?}"
    );
    // An unversioned Provides does not meet `www-browser (>= 2)`; `(= 3)` does.
    assert_eq!(v("zz-browser"), "1");
    assert!(!lock.contains_key("aa-browser"), "{lock:#?}");

    // The epoch outranks the upstream version, in both directions.
    assert_eq!(v("epochy"), "1:1.0-1");
    assert_eq!(v("wants-epoch"), "1");
    // A tilde sorts before the release.
    assert_eq!(v("tilde-a"), "1.0-1");
    assert_eq!(v("tilde-b"), "2.0~beta1-1");
    assert_eq!(lock["tilde-b"].reason, "wants-pre → tilde-b");

    // Highest version across suites.
    assert_eq!(v("secpkg"), "1.0-1+deb13u1");
    assert_eq!(lock["secpkg"].suite, "trixie-security");
    assert_eq!(v("oldsec"), "2.0-1");
    assert_eq!(lock["oldsec"].suite, "trixie");

    // The lock is a function of the indexes: locking again changes nothing, and the
    // unchanged indexes come from the store (only the InRelease files are fetched).
    let before = std::fs::read(recipe.with_extension("lock")).unwrap();
    fx.server.reset_hits();
    let out = fx.lock(&recipe);
    assert!(out.contains("up to date"), "{out}");
    assert_eq!(
        std::fs::read(recipe.with_extension("lock")).unwrap(),
        before
    );
    // Suites are fetched in parallel: compare as a set.
    let mut requests = fx.server.requests();
    requests.sort();
    assert_eq!(
        requests,
        [
            "GET /dists/trixie-security/InRelease",
            "GET /dists/trixie/InRelease",
        ]
    );

    // The locked versions install: build and look at the dpkg database.
    fx.build(&recipe, "o");
    let e = Layout::open(&fx.path("o")).entries(0);
    let status = String::from_utf8(e["var/lib/dpkg/status.d/epochy"].data.clone()).unwrap();
    assert!(status.contains("\nVersion: 1:1.0-1\n"), "{status}");
}

#[test]
fn a_second_archive_serves_security_updates_from_its_own_url() {
    let fx = Fx::new(&basic_repo());
    // deb.debian.org/debian and deb.debian.org/debian-security, side by side.
    let security = build_repo(
        &fx.repo.root.join("debian-security"),
        &repo(vec![suite(
            "trixie-security",
            vec![libc6("2.41-12+deb13u1")],
        )]),
        &fx.key,
    );
    let sec_url = fx.url("debian-security");
    let recipe = fx.recipe(
        "r",
        "trixie",
        &format!("archive \"{sec_url}\" suites=\"trixie-security\"\n    {BASE_POLICY}"),
        APP_LAYER,
    );
    fx.lock(&recipe);
    let text = std::fs::read_to_string(recipe.with_extension("lock")).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("deb \"libc6\""))
        .unwrap();
    assert!(line.contains(" version=\"2.41-12+deb13u1\""), "{line}");
    assert!(line.contains(" suite=\"trixie-security\""), "{line}");
    assert!(line.contains(&format!(" archive=\"{sec_url}\"")), "{line}");
    assert!(!line.contains(" url="), "{line}");
    let app_line = text.lines().find(|l| l.starts_with("deb \"app\"")).unwrap();
    assert!(
        app_line.contains(&format!(" archive=\"{}\"", fx.server.url())),
        "{app_line}"
    );

    fx.server.reset_hits();
    fx.build(&recipe, "o");
    let libc_path = format!(
        "debian-security/{}",
        libc6("2.41-12+deb13u1").pool_path("main")
    );
    assert_eq!(fx.server.hits(&libc_path), 1, "{:?}", fx.server.requests());
    assert_eq!(
        security.deb("libc6").1,
        locked(&recipe)["libc6"].sha256,
        "the security archive's file is the one locked"
    );
}

#[test]
fn an_unversioned_provides_alone_cannot_meet_a_versioned_dependency() {
    let fx = Fx::new(&repo(vec![suite(
        "trixie",
        vec![
            DebSpec::new("wants-browser", "1").depends("www-browser (>= 2)"),
            DebSpec::new("aa-browser", "1").provides("www-browser"),
        ],
    )]));
    let recipe = fx.recipe(
        "r",
        "trixie",
        "",
        r#"layer "apps" { debian "wants-browser"; }"#,
    );
    let out = fx.lock_err(&recipe);
    assert_mentions(
        &out,
        &["wants-browser → www-browser (>= 2) → only provided by aa-browser (no version)"],
    );
    assert!(!recipe.with_extension("lock").exists());
}

// ---------------------------------------------------------------------------------------------
// 3. Unsatisfiable

#[test]
fn an_unsatisfiable_dependency_fails_the_lock_with_the_chain_and_writes_nothing() {
    let fx = Fx::new(&repo(vec![suite(
        "trixie",
        vec![
            DebSpec::new("app", "1.0-1").depends("libbar1"),
            DebSpec::new("libbar1", "1.0-1").depends("libfoo1 (>= 2)"),
            DebSpec::new("libfoo1", "1.0-1"),
        ],
    )]));
    let recipe = fx.recipe("r", "trixie", "", APP_LAYER);
    let out = fx.lock_err(&recipe);
    assert_mentions(
        &out,
        &[
            "cannot lock",
            "r.kdl",
            "layer `system`: cannot satisfy app → libbar1 → libfoo1 (>= 2) → only 1.0-1 available",
        ],
    );
    assert!(!recipe.with_extension("lock").exists());
    // `build` resolves the same way and fails the same way, writing nothing either.
    let out = fx.build_err(&recipe, "o");
    assert_mentions(
        &out,
        &["app → libbar1 → libfoo1 (>= 2) → only 1.0-1 available"],
    );
    assert!(!recipe.with_extension("lock").exists());
    assert!(!fx.path("o").exists());
}

// ---------------------------------------------------------------------------------------------
// 4–6. Integrity: signature, index, package

#[test]
fn a_tampered_inrelease_fails_with_a_signature_error_naming_the_url() {
    let fx = Fx::new(&basic_repo());
    let inrelease = fx.repo.path("dists/trixie/InRelease");
    let text = std::fs::read_to_string(&inrelease).unwrap();
    assert!(text.contains("Origin: Composer Test\n"));
    // One byte of the signed text.
    write(
        &inrelease,
        text.replacen("Origin: Composer Test\n", "Origin: Composer Tesu\n", 1),
    );
    let recipe = fx.recipe("r", "trixie", BASE_POLICY, APP_LAYER);
    let out = fx.lock_err(&recipe);
    assert_mentions(&out, &[&fx.url("dists/trixie/InRelease"), "signature"]);
    assert!(!recipe.with_extension("lock").exists());
    // Nothing was fetched past the InRelease.
    assert_eq!(
        fx.server.requests(),
        ["GET /dists/trixie/InRelease"],
        "{:?}",
        fx.server.requests()
    );
    fx.assert_store_clean();
}

#[test]
fn an_inrelease_signed_by_another_key_is_refused() {
    let fx = Fx::new(&basic_repo());
    // Re-sign the same Release with a key the recipe's keyring does not hold.
    let release = std::fs::read(fx.repo.path("dists/trixie/Release")).unwrap();
    write(
        &fx.repo.path("dists/trixie/InRelease"),
        TestKey::new(8).clearsign(&release),
    );
    let recipe = fx.recipe("r", "trixie", BASE_POLICY, APP_LAYER);
    let out = fx.lock_err(&recipe);
    assert_mentions(&out, &[&fx.url("dists/trixie/InRelease")]);
    assert!(!recipe.with_extension("lock").exists());
    fx.assert_store_clean();
}

#[test]
fn an_expired_release_is_refused_naming_the_suite_and_url() {
    let fx = Fx::new(&repo(vec![
        suite(
            "trixie",
            vec![base_files(), base_passwd(), libc6("2.41-12"), app("1.0-1")],
        )
        .valid_until(DEFAULT_DATE + 7 * 86_400),
    ]));
    let recipe = fx.recipe("r", "trixie", BASE_POLICY, APP_LAYER);
    let out = fx.lock_err(&recipe);
    assert_mentions(
        &out,
        &[
            &fx.url("dists/trixie/InRelease"),
            "Release file for `trixie` expired on Mon, 08 Jan 2024 00:00:00 UTC",
        ],
    );
    assert!(!recipe.with_extension("lock").exists());
}

const PACKAGES_XZ: &str = "dists/trixie/main/binary-amd64/Packages.xz";

#[test]
fn a_packages_xz_that_no_longer_matches_the_signed_release_names_the_index_and_both_hashes() {
    let fx = Fx::new(&basic_repo());
    let path = fx.repo.path(PACKAGES_XZ);
    let expected = fx.repo.dists[PACKAGES_XZ].clone();
    // Same size, other bytes: only the hash tells.
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    std::fs::write(&path, &bytes).unwrap();
    let actual = sha256_hex(&bytes);

    let recipe = fx.recipe("r", "trixie", BASE_POLICY, APP_LAYER);
    let out = fx.lock_err(&recipe);
    assert_mentions(
        &out,
        &[
            "trixie/main Packages.xz",
            &fx.url(PACKAGES_XZ),
            &format!("expected sha256:{expected}"),
            &format!("got sha256:{actual}"),
        ],
    );
    assert!(!recipe.with_extension("lock").exists());
    fx.assert_store_clean();
}

#[test]
fn a_packages_xz_rewritten_with_another_size_is_refused_naming_the_index() {
    let fx = Fx::new(&basic_repo());
    // A rewritten index that lists one more package (a bigger file than the signed one).
    let mut text =
        std::fs::read_to_string(fx.repo.path("dists/trixie/main/binary-amd64/Packages")).unwrap();
    text.push_str("\nPackage: intruder\nVersion: 1\nArchitecture: amd64\nFilename: pool/x.deb\nSize: 1\nSHA256: 00\n");
    let xz = {
        use std::io::Write as _;
        let mut e = liblzma::write::XzEncoder::new(Vec::new(), 6);
        e.write_all(text.as_bytes()).unwrap();
        e.finish().unwrap()
    };
    std::fs::write(fx.repo.path(PACKAGES_XZ), &xz).unwrap();
    let recipe = fx.recipe("r", "trixie", BASE_POLICY, APP_LAYER);
    let out = fx.lock_err(&recipe);
    assert_mentions(&out, &["trixie/main Packages.xz", &fx.url(PACKAGES_XZ)]);
    assert!(!recipe.with_extension("lock").exists());
    fx.assert_store_clean();
}

#[test]
fn a_deb_that_no_longer_matches_the_lock_fails_the_build_and_never_becomes_a_blob() {
    let fx = Fx::new(&basic_repo());
    let recipe = fx.recipe("r", "trixie", BASE_POLICY, APP_LAYER);
    fx.lock(&recipe);
    let (path, expected) = fx.repo.deb("app").clone();
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();
    let actual = sha256_hex(&bytes);

    let out = fx.build_err(&recipe, "o");
    assert_mentions(
        &out,
        &[
            "app 1.0-1",
            &deb_url(&fx, &app("1.0-1")),
            &format!("expected sha256:{expected}"),
            &format!("got sha256:{actual}"),
        ],
    );
    assert!(!fx.path("o").exists());
    fx.assert_store_clean();
    let blobs = fx.store().join("v1/blobs/sha256");
    assert!(!blobs.join(&actual).exists());
    assert!(!blobs.join(&expected).exists());
}

// ---------------------------------------------------------------------------------------------
// 7. Hostile packages

#[test]
fn debs_that_escape_the_root_fail_the_build_naming_the_package_and_the_path() {
    use tar::EntryType;
    let evil = [
        (
            "evil-dotdot",
            vec![DebFile::raw("./../escape", EntryType::Regular, b"x", "")],
            "../escape",
        ),
        (
            "evil-abs",
            vec![DebFile::raw("/etc/evil", EntryType::Regular, b"x", "")],
            "/etc/evil",
        ),
        (
            "evil-link",
            vec![
                DebFile::raw("./usr/", EntryType::Directory, b"", ""),
                DebFile::raw("./usr/share", EntryType::Symlink, b"", "/etc"),
                DebFile::raw("./usr/share/passwd", EntryType::Regular, b"pwned", ""),
            ],
            "usr/share/passwd",
        ),
    ];
    let debs = evil
        .iter()
        .map(|(name, files, _)| {
            files
                .iter()
                .cloned()
                .fold(DebSpec::new(name, "1.0-1"), DebSpec::entry)
        })
        .collect();
    let fx = Fx::new(&repo(vec![suite("trixie", debs)]));
    for (name, _, path) in &evil {
        let recipe = fx.recipe(
            name,
            "trixie",
            "",
            &format!("layer \"system\" {{ debian \"{name}\"; }}"),
        );
        fx.lock(&recipe);
        let out = fx.build_err(&recipe, &format!("o-{name}"));
        assert_mentions(&out, &[&format!("{name} 1.0-1"), path]);
        assert!(!fx.path(&format!("o-{name}")).exists());
    }
    // The escape went nowhere.
    assert!(!fx.tmp.path().parent().unwrap().join("escape").exists());
    fx.assert_store_clean();
}

// ---------------------------------------------------------------------------------------------
// 8. Overlapping packages

#[test]
fn two_packages_placing_one_path_differently_fail_naming_both_and_identical_copies_are_kept_once() {
    let fx = Fx::new(&repo(vec![suite(
        "trixie",
        vec![
            DebSpec::new("pkg-a", "1.0-1").file("/usr/share/common/file", "from a\n"),
            DebSpec::new("pkg-b", "2.0-1").file("/usr/share/common/file", "from b\n"),
            DebSpec::new("pkg-c", "1.0-1").file("/usr/share/same/file", "same\n"),
            DebSpec::new("pkg-d", "1.0-1").file("/usr/share/same/file", "same\n"),
        ],
    )]));
    let clash = fx.recipe(
        "clash",
        "trixie",
        "",
        r#"layer "system" { debian "pkg-a" "pkg-b"; }"#,
    );
    fx.lock(&clash);
    let out = fx.build_err(&clash, "o1");
    assert_mentions(
        &out,
        &[
            "/usr/share/common/file",
            "pkg-a 1.0-1",
            "pkg-b 2.0-1",
            "content",
        ],
    );

    let same = fx.recipe(
        "same",
        "trixie",
        "",
        r#"layer "system" { debian "pkg-c" "pkg-d"; }"#,
    );
    fx.lock(&same);
    fx.build(&same, "o2");
    let layout = Layout::open(&fx.path("o2"));
    layout.check_diff_ids();
    let paths = tar_paths(&layout.layer_tar(0));
    assert_eq!(
        paths.iter().filter(|p| *p == "usr/share/same/file").count(),
        1,
        "{paths:?}"
    );
    assert_eq!(layout.entries(0)["usr/share/same/file"].data, b"same\n");
}

// ---------------------------------------------------------------------------------------------
// 9. Network failures

#[test]
fn transient_server_errors_are_retried() {
    let fx = Fx::new(&basic_repo());
    let recipe = fx.recipe("r", "trixie", BASE_POLICY, APP_LAYER);
    fx.server.fail_next("/InRelease", 503, 1);
    fx.server.fail_next("/Packages.xz", 502, 1);
    fx.lock(&recipe);
    assert_eq!(fx.server.hits("dists/trixie/InRelease"), 2);
    assert_eq!(fx.server.hits(PACKAGES_XZ), 2);

    let deb = app("1.0-1").pool_path("main");
    fx.server.fail_next("/app_1.0-1_amd64.deb", 503, 2);
    let digest = fx.build(&recipe, "o");
    Layout::open(&fx.path("o")).check_diff_ids();
    // Two failures, then the package came through; the others were fetched once.
    assert_eq!(fx.server.hits(&deb), 3);
    let debs: Vec<_> = fx
        .server
        .requests()
        .into_iter()
        .filter(|r| r.ends_with(".deb"))
        .collect();
    assert_eq!(debs.len(), 4 + 2, "{debs:?}");
    fx.assert_store_clean();
    // The retried download is the same package: a clean store gives the same image.
    assert_eq!(fx.build_in(&fx.path("store2"), &recipe, "o2"), digest);
}

#[test]
fn a_server_that_keeps_failing_gives_up_naming_the_url_and_the_attempts() {
    let fx = Fx::new(&basic_repo());
    let recipe = fx.recipe("r", "trixie", BASE_POLICY, APP_LAYER);
    fx.server.fail_next("/InRelease", 503, 100);
    let out = fx.lock_err(&recipe);
    assert_mentions(
        &out,
        &[
            &fx.url("dists/trixie/InRelease"),
            "failed after 4 attempts",
            "503",
        ],
    );
    assert_eq!(fx.server.hits("dists/trixie/InRelease"), 4);
    assert!(!recipe.with_extension("lock").exists());
}

#[test]
fn a_locked_deb_that_left_the_mirror_says_so_and_suggests_update_or_snapshot() {
    let fx = Fx::new(&basic_repo());
    let recipe = fx.recipe("r", "trixie", BASE_POLICY, APP_LAYER);
    fx.lock(&recipe);
    std::fs::remove_file(&fx.repo.deb("app").0).unwrap();
    let out = fx.build_err(&recipe, "o");
    assert_mentions(
        &out,
        &[
            "app 1.0-1",
            &deb_url(&fx, &app("1.0-1")),
            "HTTP 404",
            "compose update",
            "snapshot",
        ],
    );
    // A 404 is final: one request, no retries.
    assert_eq!(fx.server.hits(&app("1.0-1").pool_path("main")), 1);
    fx.assert_store_clean();
}

// ---------------------------------------------------------------------------------------------
// 10. --locked and update

#[test]
fn build_locked_refuses_a_missing_or_stale_lock() {
    let fx = Fx::new(&basic_repo());
    let recipe = fx.recipe("r", "trixie", BASE_POLICY, APP_LAYER);
    let lock_path = recipe.with_extension("lock");

    let out = run_err(
        compose(&fx.store())
            .arg("build")
            .arg("--locked")
            .arg(&recipe)
            .arg("-o")
            .arg(fx.path("o")),
    );
    assert_mentions(&out, &["r.lock does not exist", "--locked", "compose lock"]);
    assert!(!lock_path.exists());
    assert_eq!(fx.server.total_hits(), 0, "{:?}", fx.server.requests());

    fx.lock(&recipe);
    let before = std::fs::read(&lock_path).unwrap();
    // Still current after an edit that does not change what is resolved.
    let text = std::fs::read_to_string(&recipe).unwrap();
    write(&recipe, text.replace("tag \"1.0\"", "tag \"1.1\""));
    run_ok(
        compose(&fx.store())
            .arg("build")
            .arg("--locked")
            .arg(&recipe)
            .arg("-o")
            .arg(fx.path("o")),
    );

    // A changed request makes it stale.
    let text = std::fs::read_to_string(&recipe).unwrap();
    write(
        &recipe,
        text.replace("debian \"app\"", "debian \"app\" \"libc6\""),
    );
    fx.server.reset_hits();
    let out = run_err(
        compose(&fx.store())
            .arg("build")
            .arg("--locked")
            .arg(&recipe)
            .arg("-o")
            .arg(fx.path("o2")),
    );
    assert_mentions(&out, &["r.lock is out of date", "--locked", "compose lock"]);
    assert_eq!(std::fs::read(&lock_path).unwrap(), before);
    assert_eq!(fx.server.total_hits(), 0, "{:?}", fx.server.requests());
}

fn update_repo(updates: Vec<DebSpec>) -> RepoSpec {
    repo(vec![
        suite(
            "trixie",
            vec![base_files(), base_passwd(), libc6("2.41-12"), app("1.0-1")],
        ),
        suite("trixie-updates", updates),
    ])
}

#[test]
fn update_reports_new_versions_and_update_pkg_moves_only_that_package() {
    let mut fx = Fx::new(&update_repo(vec![]));
    let recipe = fx.recipe("r", "trixie trixie-updates", BASE_POLICY, APP_LAYER);
    fx.lock(&recipe);
    let v0 = versions(&recipe);
    assert_eq!(v0["app"], "1.0-1");
    assert_eq!(v0["libc6"], "2.41-12");
    let d0 = fx.build(&recipe, "o0");

    // A point release publishes new versions of both.
    fx.republish(&update_repo(vec![libc6("2.41-13"), app("1.1-1")]));
    // The lock still pins the old ones: build does not move (and does not look).
    fx.server.reset_hits();
    assert_eq!(fx.build(&recipe, "o1"), d0);
    assert_eq!(fx.server.total_hits(), 0);

    let out = run_ok(compose(&fx.store()).arg("update").arg(&recipe).arg("libc6"));
    assert!(out.contains("libc6 2.41-12 → 2.41-13"), "{out}");
    assert!(!out.contains("app "), "{out}");
    let lock = locked(&recipe);
    assert_eq!(lock["libc6"].version, "2.41-13");
    assert_eq!(lock["libc6"].suite, "trixie-updates");
    assert_eq!(lock["app"].version, "1.0-1");
    assert_eq!(lock["app"].suite, "trixie");
    assert_eq!(lock["base-files"].version, v0["base-files"]);

    let out = run_ok(compose(&fx.store()).arg("update").arg(&recipe));
    assert!(out.contains("app 1.0-1 → 1.1-1"), "{out}");
    assert!(!out.contains("libc6"), "{out}");
    assert_eq!(versions(&recipe)["app"], "1.1-1");

    let out = run_ok(compose(&fx.store()).arg("update").arg(&recipe));
    assert!(out.contains("up to date"), "{out}");

    // The new image has the new app.
    let d2 = fx.build(&recipe, "o2");
    assert_ne!(d2, d0);
    let e = Layout::open(&fx.path("o2")).entries(0);
    assert_eq!(e["usr/bin/app"].data, b"#!/bin/sh\necho app 1.1-1\n");

    // Naming a package the lock does not have is an error.
    let out = run_err(
        compose(&fx.store())
            .arg("update")
            .arg(&recipe)
            .arg("no-such"),
    );
    assert_mentions(&out, &["`no-such` is not in the lock"]);
}

#[test]
fn update_pkg_refuses_to_move_a_package_it_was_not_asked_to() {
    let mut fx = Fx::new(&update_repo(vec![]));
    let recipe = fx.recipe("r", "trixie trixie-updates", BASE_POLICY, APP_LAYER);
    fx.lock(&recipe);
    let before = std::fs::read_to_string(recipe.with_extension("lock")).unwrap();
    // The old app leaves the index entirely (replaced, not updated alongside).
    fx.republish(&repo(vec![
        suite(
            "trixie",
            vec![base_files(), base_passwd(), libc6("2.41-12"), app("1.1-1")],
        ),
        suite("trixie-updates", vec![libc6("2.41-13")]),
    ]));
    let out = run_err(compose(&fx.store()).arg("update").arg(&recipe).arg("libc6"));
    assert_mentions(
        &out,
        &[
            "updating libc6 also moves app 1.0-1 → 1.1-1",
            "compose update",
        ],
    );
    assert_eq!(
        std::fs::read_to_string(recipe.with_extension("lock")).unwrap(),
        before,
        "lock untouched"
    );
}

#[test]
fn build_with_a_stale_lock_re_resolves_but_keeps_the_locked_versions_that_still_fit() {
    let mut fx = Fx::new(&update_repo(vec![]));
    let recipe = fx.recipe("r", "trixie trixie-updates", BASE_POLICY, APP_LAYER);
    fx.lock(&recipe);
    fx.republish(&update_repo(vec![libc6("2.41-13"), app("1.1-1")]));
    // A new request makes the lock stale; a plain build re-resolves and writes it.
    let text = std::fs::read_to_string(&recipe).unwrap();
    write(
        &recipe,
        text.replace("debian \"app\"", "debian \"app\" \"base-passwd\""),
    );
    let out = run_err(
        compose(&fx.store())
            .arg("build")
            .arg("--locked")
            .arg(&recipe)
            .arg("-o")
            .arg(fx.path("o")),
    );
    assert_mentions(&out, &["out of date"]);
    fx.build(&recipe, "o");
    let lock = locked(&recipe);
    assert_eq!(lock["app"].version, "1.0-1");
    assert_eq!(lock["libc6"].version, "2.41-12");
    assert_eq!(lock["base-passwd"].reason, "requested");
    // And the lock is current again.
    run_ok(
        compose(&fx.store())
            .arg("build")
            .arg("--locked")
            .arg(&recipe)
            .arg("-o")
            .arg(fx.path("o2")),
    );
}

/// The store's cached Debian resolutions: (record path, blob path) of each.
fn cached_resolutions(store: &Path) -> Vec<(PathBuf, PathBuf)> {
    std::fs::read_dir(store.join("v1/nodes"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter_map(|p| {
            let rec: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).ok()?).ok()?;
            (rec["kind"] == "debian-resolution").then(|| {
                let blob = store.join("v1/blobs/sha256").join(
                    rec["blobs"][0]
                        .as_str()
                        .unwrap()
                        .trim_start_matches("sha256:"),
                );
                (p, blob)
            })
        })
        .collect()
}

#[test]
fn a_debian_resolution_is_reused_for_the_same_indexes_and_request_and_redone_when_they_change() {
    let mut fx = Fx::new(&update_repo(vec![]));
    let recipe = fx.recipe("r", "trixie trixie-updates", BASE_POLICY, APP_LAYER);
    fx.lock(&recipe);
    let first = std::fs::read_to_string(recipe.with_extension("lock")).unwrap();
    let cached = cached_resolutions(&fx.store());
    assert_eq!(cached.len(), 1);

    // Same indexes, same request: the same lock, from the cache (shown by editing the
    // cached answer: the next lock follows it).
    std::fs::remove_file(recipe.with_extension("lock")).unwrap();
    fx.lock(&recipe);
    assert_eq!(
        std::fs::read_to_string(recipe.with_extension("lock")).unwrap(),
        first
    );
    let (_, blob) = &cached[0];
    let text = std::fs::read_to_string(blob).unwrap();
    assert!(text.contains("reason="), "{text}");
    std::fs::remove_file(blob).unwrap();
    std::fs::write(blob, text.replace("reason=\"", "reason=\"cached: ")).unwrap();
    std::fs::remove_file(recipe.with_extension("lock")).unwrap();
    fx.lock(&recipe);
    let edited = std::fs::read_to_string(recipe.with_extension("lock")).unwrap();
    assert!(edited.contains("reason=\"cached: "), "{edited}");

    // Another request (a layer asks for less): resolved again, not the cached answer.
    let smaller = fx.recipe(
        "s",
        "trixie trixie-updates",
        BASE_POLICY,
        "layer \"system\" {\n    debian \"libc6\"\n}\n",
    );
    fx.lock(&smaller);
    let s = std::fs::read_to_string(smaller.with_extension("lock")).unwrap();
    assert!(!s.contains("cached: "), "{s}");
    assert!(!versions(&smaller).contains_key("app"));

    // A point release (new Packages files): resolved again, and the new versions show.
    fx.republish(&update_repo(vec![libc6("2.41-12+deb13u1"), app("1.0-2")]));
    std::fs::remove_file(recipe.with_extension("lock")).unwrap();
    fx.lock(&recipe);
    let v = versions(&recipe);
    assert_eq!(v["app"], "1.0-2");
    assert_eq!(v["libc6"], "2.41-12+deb13u1");
    let relocked = std::fs::read_to_string(recipe.with_extension("lock")).unwrap();
    assert!(!relocked.contains("cached: "), "{relocked}");
    assert_eq!(cached_resolutions(&fx.store()).len(), 3);
}
