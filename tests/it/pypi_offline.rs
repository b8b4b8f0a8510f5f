//! Python images end to end, offline: a signed Debian repository that provides a fake
//! `python3.13` and `libc6` (the image's interpreter and glibc, as the lock derives them),
//! and a simple index of real wheels, both served on 127.0.0.1 by one fixture server;
//! recipes with a `debian` layer and a `pypi` layer `after` it, and the real
//! `compose lock|update|build`.
//!
//! Every test has its own temporary directory, repository, index, server and store.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use composer_tests::debrepo::*;
use composer_tests::wheels::*;
use composer_tests::*;

/// `2026-11-01T00:00:00Z`, the recipes' epoch.
const EPOCH: u64 = 1_793_491_200;
/// Where wheels go in the image (Debian's `posix_local` scheme for python3.13).
const SP: &str = "usr/local/lib/python3.13/dist-packages";
/// The image's interpreter, as shebangs name it.
const PYTHON: &str = "/usr/bin/python3.13";

/// A project of the index: its name and files.
type Project = (&'static str, Vec<IndexFileSpec>);

// ---------------------------------------------------------------------------------------------
// Fixture

/// A temporary directory with `www/debian` (a signed Debian repository) and `www/simple`,
/// `www/simple-json`, `www/files` (a simple index), served by one server, the archive key in
/// `keys/archive.pgp` and a store in `store/`.
struct Fx {
    tmp: tempfile::TempDir,
    server: FixtureServer,
}

impl Fx {
    /// The default Debian repository (amd64) and `projects`.
    fn new(projects: &[Project]) -> Self {
        Self::with_debian(&debian(&["amd64"]), projects)
    }

    fn with_debian(repo: &RepoSpec, projects: &[Project]) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let key = TestKey::new(7);
        let www = tmp.path().join("www");
        let _ = build_repo(&www.join("debian"), repo, &key);
        write_simple_index(&www, projects);
        write(&tmp.path().join("keys/archive.pgp"), key.public_keyring());
        let server = FixtureServer::start_index(&www);
        Self { tmp, server }
    }

    /// Publishes a new state of the index (pages rewritten; files already there stay).
    fn publish(&self, projects: &[Project]) {
        write_simple_index(&self.path("www"), projects);
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }

    fn store(&self) -> PathBuf {
        self.path("store")
    }

    fn url(&self, rel: &str) -> String {
        format!("{}/{rel}", self.server.url())
    }

    /// Requests for project `name`'s page on index `index` (`simple`, `simple-json`), with
    /// or without the trailing slash.
    fn page_hits(&self, index: &str, name: &str) -> usize {
        let hits = |p: String| self.server.hits(&p);
        hits(format!("{index}/{name}/")) + hits(format!("{index}/{name}"))
    }

    /// Writes `name.kdl`: the Debian `system` layer with python3.13 and `layers` above it,
    /// reading the index at `index` (`simple` or `simple-json`) for `platform`.
    fn recipe_with(&self, name: &str, index: &str, platform: &str, layers: &str) -> PathBuf {
        let text = format!(
            r#"image "py-test" {{
    tag "1.0"
    platform "{platform}"
    epoch "2026-11-01T00:00:00Z"
}}
debian {{
    archive "{url}/debian" suites="trixie" components="main"
    keyring "keys/archive.pgp"
}}
pypi {{
    index "{url}/{index}"
}}
layer "system" {{
    debian "python3.13"
}}
{layers}
"#,
            url = self.server.url()
        );
        let path = self.path(&format!("{name}.kdl"));
        write(&path, text);
        path
    }

    /// A recipe for linux/amd64 over the PEP 503 (HTML) index.
    fn recipe(&self, name: &str, layers: &str) -> PathBuf {
        self.recipe_with(name, "simple", "linux/amd64", layers)
    }

    /// A recipe whose `python` layer (after `system`) requests `reqs`.
    fn python(&self, name: &str, reqs: &[&str]) -> PathBuf {
        self.recipe(name, &python_layer("python", "system", reqs))
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

    /// Locks and builds `recipe` into `out`; returns the layout (diff ids checked).
    fn lock_and_build(&self, recipe: &Path, out: &str) -> Layout {
        self.lock(recipe);
        self.build(recipe, out);
        let layout = Layout::open(&self.path(out));
        layout.check_diff_ids();
        layout
    }
}

/// `layer "NAME" after="AFTER" { pypi "a" "b" }`.
fn python_layer(name: &str, after: &str, reqs: &[&str]) -> String {
    let reqs: Vec<String> = reqs
        .iter()
        .map(|r| format!("\"{}\"", r.replace('"', "\\\"")))
        .collect();
    format!(
        "layer \"{name}\" after=\"{after}\" {{\n    pypi {}\n}}\n",
        reqs.join(" ")
    )
}

/// A fake interpreter package: the lock reads the image's Python from its version.
fn python313(arch: &str) -> DebSpec {
    DebSpec::new("python3.13", "3.13.5-2")
        .arch(arch)
        .depends("libc6 (>= 2.36)")
        .exec("/usr/bin/python3.13", "#!/bin/sh\necho not really python\n")
}

/// A fake glibc: the lock reads the image's glibc from its version.
fn libc6(arch: &str) -> DebSpec {
    DebSpec::new("libc6", "2.41-12")
        .source("glibc")
        .multi_arch("same")
        .arch(arch)
        .file(
            &format!("/usr/lib/{}-linux-gnu/libc.so.6", gnu(arch)),
            "\u{7f}ELF libc",
        )
}

fn gnu(arch: &str) -> &'static str {
    match arch {
        "amd64" => "x86_64",
        "arm64" => "aarch64",
        other => panic!("no GNU triplet for {other}"),
    }
}

/// The trixie suite with python3.13 and libc6 for each of `archs`.
fn debian(archs: &[&str]) -> RepoSpec {
    let debs = archs
        .iter()
        .flat_map(|a| [python313(a), libc6(a)])
        .collect();
    RepoSpec {
        suites: vec![SuiteSpec::new("trixie").component("main", debs)],
    }
}

/// An index file for a wheel.
fn whl(spec: &WheelSpec) -> IndexFileSpec {
    IndexFileSpec::wheel(spec)
}

// ---------------------------------------------------------------------------------------------
// Reading locks and images

/// One `wheel` line of a lock file, read with string matching only (not composer's parser).
#[derive(Debug, Clone)]
struct LockedWheel {
    version: String,
    filename: String,
    layer: String,
    reason: String,
    sha256: String,
    line: String,
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

/// Normalized project name → its lock line, from `RECIPE.lock`.
fn wheels(recipe: &Path) -> BTreeMap<String, LockedWheel> {
    let text = std::fs::read_to_string(recipe.with_extension("lock")).unwrap();
    text.lines()
        .filter_map(|l| l.strip_prefix("wheel \""))
        .map(|rest| {
            let name = rest[..rest.find('"').unwrap()].to_string();
            let line = format!(" {rest}");
            (
                name,
                LockedWheel {
                    version: attr(&line, "version"),
                    filename: attr(&line, "filename"),
                    layer: attr(&line, "layer"),
                    reason: attr(&line, "reason"),
                    sha256: attr(&line, "sha256"),
                    line,
                },
            )
        })
        .collect()
}

/// Normalized project name → locked version.
fn versions(recipe: &Path) -> BTreeMap<String, String> {
    wheels(recipe)
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

/// The entries of the image's layer `i` below the site-packages directory (`SP/…` → `…`).
fn site(layout: &Layout, i: usize) -> BTreeMap<String, TarEntry> {
    layout
        .entries(i)
        .into_iter()
        .filter_map(|(p, e)| {
            p.strip_prefix(&format!("{SP}/"))
                .map(|rest| (rest.to_string(), e))
        })
        .collect()
}

fn text(e: &TarEntry) -> String {
    String::from_utf8(e.data.clone()).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Wheels of every kind

#[test]
fn a_pure_wheel_is_locked_from_the_html_index_and_installed_into_dist_packages() {
    let tool = WheelSpec::new("Pure-Tool", "1.2.0").file("pure_tool/util.py", "X = 1\n");
    let fx = Fx::new(&[("Pure-Tool", vec![whl(&tool)])]);
    let recipe = fx.python("r", &["pure-tool"]);
    let layout = fx.lock_and_build(&recipe, "o");

    let lock = wheels(&recipe);
    assert_eq!(lock.keys().collect::<Vec<_>>(), ["pure-tool"], "{lock:#?}");
    let w = &lock["pure-tool"];
    assert_eq!(w.version, "1.2.0");
    assert_eq!(w.filename, "pure_tool-1.2.0-py3-none-any.whl");
    assert_eq!(w.layer, "python");
    assert_eq!(w.reason, "requested");
    assert_eq!(w.sha256, sha256_hex(&build_wheel(&tool).1));
    assert!(
        w.line
            .contains(&fx.url("files/pure_tool-1.2.0-py3-none-any.whl")),
        "{}",
        w.line
    );

    assert_eq!(layout.layers().len(), 2);
    let files = site(&layout, 1);
    assert_eq!(
        text(&files["pure_tool/__init__.py"]),
        "__version__ = \"1.2.0\"\n"
    );
    let util = &files["pure_tool/util.py"];
    assert_eq!(
        (util.mode & 0o7777, util.uid, util.gid, util.mtime),
        (0o644, 0, 0, EPOCH)
    );
    assert!(files.contains_key("pure_tool-1.2.0.dist-info/METADATA"));
    // No wheel file in the Debian layer (which may hold the empty dist-packages directory
    // that python3.13's maintainer script would make), nothing Debian in the Python layer.
    let base = site(&layout, 0);
    assert!(base.values().all(|e| e.kind == b'5'), "{:?}", base.keys());
    assert!(layout.entries(0).contains_key("usr/bin/python3.13"));
    let top = layout.entries(1);
    assert!(
        top.keys().all(|p| p.starts_with("usr/")),
        "{:?}",
        top.keys()
    );
    assert!(!top.contains_key("usr/bin/python3.13"));
}

#[test]
fn the_pep_691_json_index_gives_the_same_lock_and_image_as_the_html_one() {
    let a = WheelSpec::new("alpha", "1.0").requires("shared>=1");
    let shared = WheelSpec::new("shared", "1.5");
    let fx = Fx::new(&[
        ("alpha", vec![whl(&a)]),
        (
            "shared",
            vec![whl(&WheelSpec::new("shared", "1.0")), whl(&shared)],
        ),
    ]);
    let layers = python_layer("python", "system", &["alpha"]);
    let html = fx.recipe_with("html", "simple", "linux/amd64", &layers);
    let json = fx.recipe_with("json", "simple-json", "linux/amd64", &layers);
    fx.lock(&html);
    fx.server.reset_hits();
    fx.lock(&json);
    // The JSON pages were read, not the HTML ones.
    assert_eq!(
        fx.page_hits("simple-json", "alpha"),
        1,
        "{:?}",
        fx.server.requests()
    );
    assert_eq!(fx.page_hits("simple-json", "shared"), 1);
    assert_eq!(fx.page_hits("simple", "alpha"), 0);
    let (h, j) = (wheels(&html), wheels(&json));
    assert_eq!(versions(&html), versions(&json));
    assert_eq!(versions(&json)["shared"], "1.5");
    for name in ["alpha", "shared"] {
        assert_eq!(h[name].sha256, j[name].sha256, "{name}");
        assert_eq!(h[name].filename, j[name].filename, "{name}");
    }
    // The same layers; the images differ only in the recipe and lock digest labels (the
    // index URL is part of both texts).
    fx.build(&html, "oh");
    fx.build(&json, "oj");
    assert_eq!(
        Layout::open(&fx.path("oh")).layers(),
        Layout::open(&fx.path("oj")).layers()
    );
}

#[test]
fn a_platlib_wheel_installs_its_extension_module_into_dist_packages() {
    let native = WheelSpec::new("fast-math", "2.0.1")
        .tag("cp313-cp313-manylinux_2_17_x86_64")
        .file_mode(
            "fast_math/_core.cpython-313-x86_64-linux-gnu.so",
            b"\x7fELF\x02\x01\x01\0 x86_64 core",
            0o755,
        )
        .file("fast_math/py.typed", "");
    let fx = Fx::new(&[("fast-math", vec![whl(&native)])]);
    let recipe = fx.python("r", &["fast-math==2.0.1"]);
    let layout = fx.lock_and_build(&recipe, "o");
    assert_eq!(
        wheels(&recipe)["fast-math"].filename,
        "fast_math-2.0.1-cp313-cp313-manylinux_2_17_x86_64.whl"
    );
    let files = site(&layout, 1);
    let so = &files["fast_math/_core.cpython-313-x86_64-linux-gnu.so"];
    assert_eq!(so.data, b"\x7fELF\x02\x01\x01\0 x86_64 core");
    assert_eq!(so.mode & 0o7777, 0o755);
    assert_eq!(files["fast_math/py.typed"].mode & 0o7777, 0o644);
    let wheel_file = text(&files["fast_math-2.0.1.dist-info/WHEEL"]);
    assert!(
        wheel_file.contains("Root-Is-Purelib: false"),
        "{wheel_file}"
    );
}

#[test]
fn data_scripts_headers_and_data_are_spread_over_usr_local() {
    let spec = WheelSpec::new("Data-Pkg", "0.3")
        .data_file("scripts/data-tool", "#!python\nimport data_pkg\n")
        .data_file("scripts/plain.sh", "#!/bin/sh\necho plain\n")
        .data_file("headers/data.h", "int data;\n")
        .data_file("data/share/data-pkg/readme.txt", "shared\n")
        .data_file("platlib/data_pkg_native.py", "NATIVE = 1\n");
    let fx = Fx::new(&[("Data-Pkg", vec![whl(&spec)])]);
    let recipe = fx.python("r", &["data-pkg"]);
    let layout = fx.lock_and_build(&recipe, "o");
    let e = layout.entries(1);
    let tool = &e["usr/local/bin/data-tool"];
    assert_eq!(text(tool), format!("#!{PYTHON}\nimport data_pkg\n"));
    assert_eq!(tool.mode & 0o7777, 0o755);
    let plain = &e["usr/local/bin/plain.sh"];
    assert_eq!(text(plain), "#!/bin/sh\necho plain\n");
    assert_eq!(plain.mode & 0o7777, 0o755);
    let header = &e["usr/local/include/python3.13/data-pkg/data.h"];
    assert_eq!(
        (text(header).as_str(), header.mode & 0o7777),
        ("int data;\n", 0o644)
    );
    assert_eq!(text(&e["usr/local/share/data-pkg/readme.txt"]), "shared\n");
    assert_eq!(
        text(&e[&format!("{SP}/data_pkg_native.py")]),
        "NATIVE = 1\n"
    );
    assert!(
        !e.keys().any(|p| p.contains(".data/")),
        "{:?}",
        e.keys().collect::<Vec<_>>()
    );
}

#[test]
fn console_and_gui_entry_points_become_launchers_for_the_image_python() {
    let spec = WheelSpec::new("demo-cli", "1.0")
        .file("demo_cli/main.py", "def run():\n    return 0\n")
        .entry_points(
            "[console_scripts]\ndemo-cli = demo_cli.main:run\n\n[gui_scripts]\ndemo-gui = demo_cli.main:App.start\n",
        );
    let fx = Fx::new(&[("demo-cli", vec![whl(&spec)])]);
    let recipe = fx.python("r", &["demo-cli"]);
    let layout = fx.lock_and_build(&recipe, "o");
    let e = layout.entries(1);
    let cli = &e["usr/local/bin/demo-cli"];
    assert_eq!(cli.kind, b'0');
    assert_eq!(cli.mode & 0o7777, 0o755);
    assert_eq!(
        text(cli),
        "#!/usr/bin/python3.13\n\
         # -*- coding: utf-8 -*-\n\
         import re\n\
         import sys\n\
         from demo_cli.main import run\n\
         if __name__ == \"__main__\":\n    \
         sys.argv[0] = re.sub(r\"(-script\\.pyw|\\.exe)?$\", \"\", sys.argv[0])\n    \
         sys.exit(run())\n"
    );
    let gui = text(&e["usr/local/bin/demo-gui"]);
    assert!(gui.starts_with("#!/usr/bin/python3.13\n"), "{gui}");
    assert!(gui.contains("from demo_cli.main import App\n"), "{gui}");
    assert!(gui.contains("sys.exit(App.start())\n"), "{gui}");
    // The launchers are in RECORD, relative to dist-packages.
    let record = text(&e[&format!("{SP}/demo_cli-1.0.dist-info/RECORD")]);
    assert!(record.contains("../../../bin/demo-cli,sha256="), "{record}");
}

#[test]
fn a_venv_prefix_gets_a_skeleton_whose_python_the_launchers_use() {
    let spec = WheelSpec::new("demo-cli", "1.0")
        .file("demo_cli/main.py", "def run():\n    return 0\n")
        .entry_points("[console_scripts]\ndemo-cli = demo_cli.main:run\n");
    let fx = Fx::new(&[("demo-cli", vec![whl(&spec)])]);
    let recipe = fx.python("r", &["demo-cli"]);
    let text_in = std::fs::read_to_string(&recipe).unwrap();
    write(
        &recipe,
        text_in.replacen("pypi {\n", "pypi {\n    prefix \"/opt/venv\"\n", 1),
    );
    let layout = fx.lock_and_build(&recipe, "o");
    // The skeleton is part of the reproducible output: another store, the same image.
    assert_eq!(
        fx.build_in(&fx.path("store-2"), &recipe, "o2"),
        layout.manifest_digest
    );
    let e = layout.entries(1);
    let cfg = text(&e["opt/venv/pyvenv.cfg"]);
    assert!(cfg.starts_with("home = /usr/bin\n"), "{cfg}");
    assert!(cfg.contains("\nversion = 3.13."), "{cfg}");
    assert_eq!(
        e["opt/venv/bin/python"].link.as_deref(),
        Some("/usr/bin/python3.13")
    );
    assert_eq!(e["opt/venv/bin/python3"].link.as_deref(), Some("python"));
    assert_eq!(e["opt/venv/lib64"].link.as_deref(), Some("lib"));
    let cli = text(&e["opt/venv/bin/demo-cli"]);
    assert!(cli.starts_with("#!/opt/venv/bin/python\n"), "{cli}");
    assert!(e.contains_key("opt/venv/lib/python3.13/site-packages/demo_cli/main.py"));
    assert!(
        !e.keys().any(|p| p.starts_with("usr/local/")),
        "nothing in the system site"
    );
}

// ---------------------------------------------------------------------------------------------
// Resolution for the image

#[test]
fn an_extra_pulls_its_dependency_only_when_requested() {
    let fancy = WheelSpec::new("fancy", "1.0")
        .requires("plain-dep")
        .extra("speed")
        .requires("speed-dep>=2; extra == \"speed\"");
    let fx = Fx::new(&[
        ("fancy", vec![whl(&fancy)]),
        ("plain-dep", vec![whl(&WheelSpec::new("plain-dep", "1.0"))]),
        (
            "speed-dep",
            vec![
                whl(&WheelSpec::new("speed-dep", "1.0")),
                whl(&WheelSpec::new("speed-dep", "2.1")),
            ],
        ),
    ]);
    let plain = fx.python("plain", &["fancy"]);
    fx.lock(&plain);
    assert_eq!(fx.page_hits("simple", "plain-dep"), 1);
    assert_eq!(
        versions(&plain),
        BTreeMap::from([
            ("fancy".into(), "1.0".into()),
            ("plain-dep".into(), "1.0".into())
        ])
    );
    assert_eq!(
        fx.page_hits("simple", "speed-dep"),
        0,
        "{:?}",
        fx.server.requests()
    );

    let with = fx.python("with", &["fancy[speed]"]);
    let layout = fx.lock_and_build(&with, "o");
    let v = versions(&with);
    assert_eq!(v["speed-dep"], "2.1", "{v:?}");
    assert_eq!(v["plain-dep"], "1.0");
    assert_eq!(wheels(&with)["speed-dep"].layer, "python");
    let files = site(&layout, 1);
    assert!(
        files.contains_key("speed_dep/__init__.py"),
        "{:?}",
        files.keys()
    );
    assert!(files.contains_key("fancy-1.0.dist-info/METADATA"));
}

#[test]
fn markers_are_evaluated_for_the_image_not_the_host() {
    let marked = WheelSpec::new("marked", "1.0")
        .requires("for-image; python_version >= \"3.13\"")
        .requires("for-x86; platform_machine == \"x86_64\" and sys_platform == \"linux\"")
        .requires("for-windows; sys_platform == \"win32\"")
        // True for the host that runs the tests (Python 3.11), false for the image (3.13).
        .requires("for-old-python; python_version < \"3.12\"")
        .requires("for-arm; platform_machine == \"aarch64\"");
    let names = [
        "for-image",
        "for-x86",
        "for-windows",
        "for-old-python",
        "for-arm",
        "top-old",
    ];
    let mut projects: Vec<Project> = vec![("marked", vec![whl(&marked)])];
    for n in names {
        projects.push((n, vec![whl(&WheelSpec::new(n, "1.0"))]));
    }
    let fx = Fx::new(&projects);
    let recipe = fx.python("r", &["marked", "top-old; python_version < \"3.12\""]);
    fx.lock(&recipe);
    assert_eq!(
        versions(&recipe).keys().collect::<Vec<_>>(),
        ["for-image", "for-x86", "marked"]
    );
    // What the image does not need is not even looked up.
    assert_eq!(fx.page_hits("simple", "for-image"), 1);
    for n in ["for-windows", "for-old-python", "for-arm", "top-old"] {
        assert_eq!(
            fx.page_hits("simple", n),
            0,
            "{n}: {:?}",
            fx.server.requests()
        );
    }
}

#[test]
fn a_project_with_only_an_sdist_is_a_clear_lock_error() {
    let (sdist_name, sdist) = build_sdist("src-only", "1.0");
    let fx = Fx::new(&[
        ("src-only", vec![IndexFileSpec::new(&sdist_name, sdist)]),
        (
            "needs-src",
            vec![whl(&WheelSpec::new("needs-src", "1.0").requires("src-only"))],
        ),
    ]);
    let direct = fx.python("direct", &["src-only"]);
    let out = fx.lock_err(&direct);
    assert_mentions(&out, &["src-only", "1.0 has only sdist"]);
    assert!(!direct.with_extension("lock").exists());

    let deep = fx.python("deep", &["needs-src"]);
    let out = fx.lock_err(&deep);
    assert_mentions(&out, &["src-only", "needs-src", "has only sdist"]);
    assert!(!deep.with_extension("lock").exists());
}

#[test]
fn a_yanked_version_is_skipped_unless_pinned_exactly() {
    let fx = Fx::new(&[(
        "yanky",
        vec![
            whl(&WheelSpec::new("yanky", "1.0")),
            whl(&WheelSpec::new("yanky", "1.1")).yanked("broken"),
        ],
    )]);
    let free = fx.python("free", &["yanky"]);
    fx.lock(&free);
    assert_eq!(versions(&free)["yanky"], "1.0");
    let range = fx.python("range", &["yanky>=1.1"]);
    let out = fx.lock_err(&range);
    assert_mentions(&out, &["yanky", "yanked", "1.1"]);

    let pinned = fx.python("pinned", &["yanky==1.1"]);
    let layout = fx.lock_and_build(&pinned, "o");
    assert_eq!(versions(&pinned)["yanky"], "1.1");
    assert_eq!(
        text(&site(&layout, 1)["yanky/__init__.py"]),
        "__version__ = \"1.1\"\n"
    );
}

#[test]
fn versions_the_image_cannot_use_fall_back_to_one_it_can() {
    // 3.0 needs Python 3.14; 2.0's only wheel needs glibc 2.42 (the image has 2.41);
    // 1.0 has a manylinux_2_17 wheel, preferred over its pure one.
    let fx = Fx::new(&[(
        "native",
        vec![
            whl(&WheelSpec::new("native", "1.0").tag("cp313-cp313-manylinux_2_17_x86_64")),
            whl(&WheelSpec::new("native", "1.0")),
            whl(&WheelSpec::new("native", "2.0").tag("cp313-cp313-manylinux_2_42_x86_64")),
            whl(&WheelSpec::new("native", "3.0").requires_python(">=3.14")),
        ],
    )]);
    // Pinned to the version the image cannot use: the error lists the tags it has.
    let pinned = fx.python("pinned", &["native==2.0"]);
    let out = fx.lock_err(&pinned);
    assert_mentions(
        &out,
        &["native", "2.0 has only cp313-cp313-manylinux_2_42_x86_64"],
    );
    let recipe = fx.python("r", &["native"]);
    fx.lock(&recipe);
    let w = &wheels(&recipe)["native"];
    assert_eq!(w.version, "1.0");
    assert_eq!(
        w.filename,
        "native-1.0-cp313-cp313-manylinux_2_17_x86_64.whl"
    );
    // Neither 2.0's nor 3.0's metadata was needed to decide.
    assert_eq!(
        fx.server
            .hits("files/native-2.0-cp313-cp313-manylinux_2_42_x86_64.whl.metadata"),
        0
    );

    let pinned = fx.python("pinned", &["native==2.0"]);
    let out = fx.lock_err(&pinned);
    assert_mentions(&out, &["native", "2.0", "compatible with the image"]);
    let py = fx.python("py", &["native==3.0"]);
    let out = fx.lock_err(&py);
    assert_mentions(&out, &["native", "Requires-Python >=3.14", "3.13.5"]);
}

#[test]
fn lock_reads_pep_658_metadata_and_never_downloads_a_wheel() {
    let a = WheelSpec::new("alpha", "1.0").requires("beta");
    let b = WheelSpec::new("beta", "2.0");
    let fx = Fx::new(&[("alpha", vec![whl(&a)]), ("beta", vec![whl(&b)])]);
    let recipe = fx.recipe_with(
        "r",
        "simple-json",
        "linux/amd64",
        &python_layer("python", "system", &["alpha"]),
    );
    fx.lock(&recipe);
    for w in [&a, &b] {
        let f = w.filename();
        assert_eq!(
            fx.server.hits(&format!("files/{f}.metadata")),
            1,
            "{:?}",
            fx.server.requests()
        );
        assert_eq!(
            fx.server.hits(&format!("files/{f}")),
            0,
            "{:?}",
            fx.server.requests()
        );
    }
    // The build downloads each wheel once, and no page or metadata.
    fx.server.reset_hits();
    fx.build(&recipe, "o");
    let reqs = fx.server.requests();
    let wheel_reqs: Vec<_> = reqs.iter().filter(|r| r.ends_with(".whl")).collect();
    assert_eq!(wheel_reqs.len(), 2, "{reqs:?}");
    assert!(
        !reqs
            .iter()
            .any(|r| r.contains("/simple") || r.ends_with(".metadata")),
        "{reqs:?}"
    );
    // A rebuild needs nothing.
    fx.server.reset_hits();
    fx.build(&recipe, "o2");
    assert_eq!(fx.server.total_hits(), 0, "{:?}", fx.server.requests());
}

#[test]
fn without_pep_658_metadata_lock_reads_the_verified_wheel_once() {
    let a = WheelSpec::new("alpha", "1.0").requires("beta");
    let b = WheelSpec::new("beta", "2.0");
    let fx = Fx::new(&[("alpha", vec![whl(&a)]), ("beta", vec![whl(&b)])]);
    // alpha's page no longer offers its metadata file, and the file is gone.
    let page = fx.path("www/simple-json/alpha/index.json");
    let mut json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&page).unwrap()).unwrap();
    for f in json["files"].as_array_mut().unwrap() {
        f["core-metadata"] = serde_json::json!(false);
        f["dist-info-metadata"] = serde_json::json!(false);
    }
    write(&page, serde_json::to_vec_pretty(&json).unwrap());
    std::fs::remove_file(fx.path(&format!("www/files/{}.metadata", a.filename()))).unwrap();

    let recipe = fx.recipe_with(
        "r",
        "simple-json",
        "linux/amd64",
        &python_layer("python", "system", &["alpha"]),
    );
    fx.lock(&recipe);
    // alpha's dependency was read from the wheel itself.
    assert_eq!(versions(&recipe)["beta"], "2.0");
    assert_eq!(fx.server.hits(&format!("files/{}", a.filename())), 1);
    assert_eq!(
        fx.server.hits(&format!("files/{}.metadata", a.filename())),
        0
    );
    assert_eq!(
        fx.server.hits(&format!("files/{}.metadata", b.filename())),
        1
    );
    // The build finds that wheel in the store.
    fx.server.reset_hits();
    fx.build(&recipe, "o");
    let fetched: Vec<String> = fx
        .server
        .requests()
        .into_iter()
        .filter(|r| r.starts_with("GET /files/"))
        .collect();
    assert_eq!(fetched, [format!("GET /files/{}", b.filename())]);
}

#[test]
fn each_wheel_goes_to_the_lowest_layer_that_pulls_it() {
    let fx = Fx::new(&[
        (
            "alpha",
            vec![whl(&WheelSpec::new("alpha", "1.0").requires("shared"))],
        ),
        (
            "beta",
            vec![whl(&WheelSpec::new("beta", "1.0")
                .requires("shared")
                .requires("gamma"))],
        ),
        ("gamma", vec![whl(&WheelSpec::new("gamma", "1.0"))]),
        ("shared", vec![whl(&WheelSpec::new("shared", "1.0"))]),
    ]);
    let layers = format!(
        "{}{}",
        python_layer("app", "libs", &["beta"]),
        python_layer("libs", "system", &["alpha"])
    );
    let recipe = fx.recipe("r", &layers);
    let layout = fx.lock_and_build(&recipe, "o");
    let placed: BTreeMap<String, String> = wheels(&recipe)
        .into_iter()
        .map(|(n, w)| (n, w.layer))
        .collect();
    assert_eq!(
        placed,
        BTreeMap::from([
            ("alpha".into(), "libs".into()),
            ("beta".into(), "app".into()),
            ("gamma".into(), "app".into()),
            ("shared".into(), "libs".into()),
        ])
    );
    // Image order: system, libs, app.
    assert_eq!(layout.layers().len(), 3);
    let (libs, app) = (site(&layout, 1), site(&layout, 2));
    for m in [
        "alpha/__init__.py",
        "shared/__init__.py",
        "shared-1.0.dist-info/RECORD",
    ] {
        assert!(libs.contains_key(m), "{m} not in libs: {:?}", libs.keys());
        assert!(!app.contains_key(m), "{m} also in app");
    }
    for m in ["beta/__init__.py", "gamma/__init__.py"] {
        assert!(app.contains_key(m), "{m} not in app: {:?}", app.keys());
        assert!(!libs.contains_key(m), "{m} also in libs");
    }
}

// ---------------------------------------------------------------------------------------------
// What importlib.metadata reads

/// The rows of a RECORD: (path, hash, size).
fn record_rows(record: &str) -> Vec<(String, String, String)> {
    record
        .lines()
        .map(|l| {
            let mut parts = l.rsplitn(3, ',');
            let size = parts.next().unwrap().to_string();
            let hash = parts.next().unwrap().to_string();
            let path = parts.next().unwrap().to_string();
            (path, hash, size)
        })
        .collect()
}

/// `SP/<rel>` normalized (RECORD paths are relative to dist-packages: `../../../bin/x`).
fn from_site(rel: &str) -> String {
    let mut parts: Vec<&str> = SP.split('/').collect();
    for c in rel.split('/') {
        if c == ".." {
            parts.pop().unwrap();
        } else {
            parts.push(c);
        }
    }
    parts.join("/")
}

#[test]
fn dist_info_has_metadata_a_verified_record_installer_and_requested_only_when_asked() {
    let top = WheelSpec::new("Top-Pkg", "2.0")
        .requires("dep-pkg")
        .entry_points("[console_scripts]\ntop = top_pkg:main\n");
    let dep = WheelSpec::new("dep_pkg", "0.9");
    let fx = Fx::new(&[("Top-Pkg", vec![whl(&top)]), ("dep_pkg", vec![whl(&dep)])]);
    let recipe = fx.python("r", &["top-pkg"]);
    let layout = fx.lock_and_build(&recipe, "o");
    let e = layout.entries(1);

    for (spec, requested) in [(&top, true), (&dep, false)] {
        let di = format!("{SP}/{}", spec.dist_info());
        assert_eq!(text(&e[&format!("{di}/METADATA")]), metadata_text(spec));
        assert_eq!(e[&format!("{di}/INSTALLER")].data, b"composer\n");
        assert_eq!(
            e.contains_key(&format!("{di}/REQUESTED")),
            requested,
            "{di}/REQUESTED"
        );
        if requested {
            assert!(e[&format!("{di}/REQUESTED")].data.is_empty());
        }
        // RECORD lists every file of the distribution with its real hash and size, and
        // itself without one.
        let record = text(&e[&format!("{di}/RECORD")]);
        let rows = record_rows(&record);
        let mut listed = Vec::new();
        for (path, hash, size) in &rows {
            let image_path = from_site(path);
            if path.ends_with(".dist-info/RECORD") {
                assert_eq!((hash.as_str(), size.as_str()), ("", ""), "{record}");
                continue;
            }
            let entry = e
                .get(&image_path)
                .unwrap_or_else(|| panic!("RECORD row {path} is not in the layer"));
            let want = format!(
                "sha256={}",
                record_b64(&sha2::Digest::finalize(
                    <sha2::Sha256 as sha2::Digest>::new_with_prefix(&entry.data)
                ))
            );
            assert_eq!(*hash, want, "{path}");
            assert_eq!(*size, entry.data.len().to_string(), "{path}");
            listed.push(image_path);
        }
        assert!(
            rows.iter().any(|(p, _, _)| p.ends_with("/INSTALLER")),
            "{record}"
        );
        // And nothing of the distribution is left out of it.
        let module = spec.escaped();
        for p in e.keys().filter(|p| {
            e[*p].kind == b'0'
                && (p.starts_with(&format!("{SP}/{module}/")) || p.starts_with(&di))
                && !p.ends_with("/RECORD")
        }) {
            assert!(listed.contains(p), "{p} is not in {di}/RECORD:\n{record}");
        }
    }
    let record = text(&e[&format!("{SP}/{}/RECORD", top.dist_info())]);
    assert!(record.contains("../../../bin/top,"), "{record}");
}

// ---------------------------------------------------------------------------------------------
// Broken and hostile wheels

#[test]
fn a_wheel_whose_record_lies_fails_the_build_naming_the_wheel_and_the_file() {
    let bad = WheelSpec::new("bad-record", "1.0").bad_record();
    let fx = Fx::new(&[("bad-record", vec![whl(&bad)])]);
    let recipe = fx.python("r", &["bad-record"]);
    // Lock reads only the metadata, which is fine.
    fx.lock(&recipe);
    let out = fx.build_err(&recipe, "o");
    assert_mentions(
        &out,
        &["bad_record-1.0-py3-none-any.whl", "bad_record/__init__.py"],
    );
    assert!(!fx.path("o").exists());
    let v = run_ok(compose(&fx.store()).args(["store", "verify"]));
    assert!(v.contains(": 0 problems"), "{v}");

    // Without a lock the wheel is downloaded while resolving and then listed and written in
    // one pass, each member checked as it goes into the fragment: the lie is found there,
    // nothing of the wheel is recorded, and the build reports it as before.
    std::fs::remove_file(recipe.with_extension("lock")).unwrap();
    let out = fx.build_err(&recipe, "o");
    assert_mentions(
        &out,
        &["bad_record-1.0-py3-none-any.whl", "bad_record/__init__.py"],
    );
    assert!(!fx.path("o").exists());
    let nodes = node_records(&fx.store());
    assert!(
        !nodes.values().any(|r| {
            let r = String::from_utf8_lossy(r);
            (r.contains("\"wheel-listing\"") || r.contains("\"fragment\"")) && r.contains("bad")
        }),
        "{nodes:?}"
    );
    let v = run_ok(compose(&fx.store()).args(["store", "verify"]));
    assert!(v.contains(": 0 problems"), "{v}");
}

/// Every node record in `store`, by file name.
fn node_records(store: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(store.join("v1/nodes"))
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

#[test]
fn a_wheel_with_a_path_outside_its_root_fails_the_build_naming_it() {
    let evil = WheelSpec::new("evil", "1.0").raw("../evil.py", "print('escaped')\n");
    let fx = Fx::new(&[("evil", vec![whl(&evil)])]);
    let recipe = fx.python("r", &["evil"]);
    fx.lock(&recipe);
    let out = fx.build_err(&recipe, "o");
    assert_mentions(&out, &["evil-1.0-py3-none-any.whl", "../evil.py"]);
    assert!(!fx.path("o").exists());
}

#[test]
fn a_wheel_that_no_longer_matches_the_lock_fails_the_build_naming_it_and_both_hashes() {
    let spec = WheelSpec::new("alpha", "1.0");
    let fx = Fx::new(&[("alpha", vec![whl(&spec)])]);
    // The JSON index gives sizes, so lock downloads no wheel (the HTML one would have put
    // the wheel, verified, into the store).
    let recipe = fx.recipe_with(
        "r",
        "simple-json",
        "linux/amd64",
        &python_layer("python", "system", &["alpha"]),
    );
    fx.lock(&recipe);
    let expected = wheels(&recipe)["alpha"].sha256.clone();
    // The index now serves other bytes of the same size under the same name.
    let mut other = build_wheel(&spec).1;
    let mid = other.len() / 2;
    other[mid] ^= 0x55;
    std::fs::write(fx.path(&format!("www/files/{}", spec.filename())), &other).unwrap();
    let out = fx.build_err(&recipe, "o");
    assert_mentions(
        &out,
        &[
            "alpha 1.0",
            &fx.url(&format!("files/{}", spec.filename())),
            &format!("expected sha256:{expected}"),
            &format!("got sha256:{}", sha256_hex(&other)),
        ],
    );
    assert!(!fx.path("o").exists());
    let v = run_ok(compose(&fx.store()).args(["store", "verify"]));
    assert!(v.contains(": 0 problems"), "{v}");
}

#[test]
fn identical_files_of_two_wheels_are_kept_once_and_different_ones_name_both_wheels() {
    let ns = |name: &str, init: &str| {
        let module = name.replace('-', "_");
        WheelSpec::new(name, "1.0").files(vec![
            ("nvidia/__init__.py".into(), init.as_bytes().to_vec(), 0o644),
            (
                format!("nvidia/{module}/__init__.py"),
                b"X = 1\n".to_vec(),
                0o644,
            ),
        ])
    };
    let fx = Fx::new(&[
        ("nv-a", vec![whl(&ns("nv-a", ""))]),
        ("nv-b", vec![whl(&ns("nv-b", ""))]),
        ("nv-c", vec![whl(&ns("nv-c", "# not the same\n"))]),
    ]);
    let same = fx.python("same", &["nv-a", "nv-b"]);
    let layout = fx.lock_and_build(&same, "o1");
    let paths = tar_paths(&layout.layer_tar(1));
    let init = format!("{SP}/nvidia/__init__.py");
    assert_eq!(paths.iter().filter(|p| **p == init).count(), 1, "{paths:?}");
    let files = site(&layout, 1);
    assert!(files.contains_key("nvidia/nv_a/__init__.py"));
    assert!(files.contains_key("nvidia/nv_b/__init__.py"));

    let clash = fx.python("clash", &["nv-a", "nv-c"]);
    fx.lock(&clash);
    let out = fx.build_err(&clash, "o2");
    assert_mentions(&out, &["nv-a 1.0", "nv-c 1.0", "nvidia/__init__.py"]);
    assert!(!fx.path("o2").exists());

    // The same across layers: identical is fine, different names both wheels and layers.
    let layered = |name: &str, upper: &str| {
        fx.recipe(
            name,
            &format!(
                "{}{}",
                python_layer("low", "system", &["nv-a"]),
                python_layer("high", "low", &[upper])
            ),
        )
    };
    let fine = layered("fine", "nv-b");
    fx.lock_and_build(&fine, "o3");
    let clash = layered("clash2", "nv-c");
    fx.lock(&clash);
    let out = fx.build_err(&clash, "o4");
    assert_mentions(
        &out,
        &[
            "nv-a 1.0",
            "layer `low`",
            "nv-c 1.0",
            "layer `high`",
            "nvidia/__init__.py",
        ],
    );
    assert!(!fx.path("o4").exists());
}

// ---------------------------------------------------------------------------------------------
// Reproducibility, update, other platforms

#[test]
fn two_stores_build_the_same_image() {
    let fx = Fx::new(&[
        (
            "alpha",
            vec![whl(&WheelSpec::new("alpha", "1.0")
                .requires("beta")
                .entry_points("[console_scripts]\nalpha = alpha:main\n")
                .data_file("scripts/alpha-sh", "#!python\n"))],
        ),
        (
            "beta",
            vec![whl(
                &WheelSpec::new("beta", "3.1").tag("cp313-cp313-manylinux_2_28_x86_64")
            )],
        ),
    ]);
    let recipe = fx.python("r", &["alpha"]);
    fx.lock(&recipe);
    let a = fx.build(&recipe, "a");
    let b = run_ok(
        compose(&fx.path("store-b"))
            .args(["build", "-j", "1"])
            .arg(&recipe)
            .arg("-o")
            .arg(fx.path("b")),
    )
    .trim()
    .to_string();
    assert_eq!(a, b);
    let (la, lb) = (Layout::open(&fx.path("a")), Layout::open(&fx.path("b")));
    lb.check_diff_ids();
    assert_eq!(la.layer_tar(1), lb.layer_tar(1));
}

#[test]
fn a_stored_listing_rebuilds_fragments_straight_from_the_wheel_as_a_fresh_store_does() {
    // alpha: a launcher, a rewritten script, a stored (uncompressed) member and a large one.
    let big: Vec<u8> = (0..600_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let fx = Fx::new(&[(
        "alpha",
        vec![whl(&WheelSpec::new("alpha", "1.0")
            .entry_points("[console_scripts]\nalpha = alpha:main\n")
            .data_file("scripts/alpha-sh", "#!python -u\necho\n")
            .file("alpha/big.bin", &big)
            .stored("alpha/big.bin"))],
    )]);
    let recipe = fx.python("r", &["alpha"]);
    fx.lock(&recipe);
    // Store A lists the wheel (verified) while building zstd layers; its gzip build then finds
    // the listing stored and no gzip fragment, so it reads the wheel's members located from
    // its zip directory.
    fx.build(&recipe, "zstd");
    let build_gzip = |store: &Path, out: &str| {
        run_ok(
            compose(store)
                .args(["build", "--locked", "--compression", "gzip"])
                .arg(&recipe)
                .arg("-o")
                .arg(fx.path(out)),
        )
        .trim()
        .to_string()
    };
    let from_listing = build_gzip(&fx.store(), "gzip-a");
    let fresh = build_gzip(&fx.path("store-b"), "gzip-b");
    assert_eq!(from_listing, fresh);
    let (a, b) = (
        Layout::open(&fx.path("gzip-a")),
        Layout::open(&fx.path("gzip-b")),
    );
    a.check_diff_ids();
    assert_eq!(a.layer_tar(1), b.layer_tar(1));
    let site = site(&a, 1);
    assert_eq!(site["alpha/big.bin"].data, big);
    let sh = &a.entries(1)["usr/local/bin/alpha-sh"];
    assert_eq!(text(sh), "#!/usr/bin/python3.13\necho\n");
}

#[test]
fn a_lock_that_guessed_the_python_target_from_the_last_one_redoes_the_python_half_when_it_changed()
{
    // tool 2.0 only runs on Python before 3.13.6.
    let projects: Vec<Project> = vec![(
        "tool",
        vec![
            whl(&WheelSpec::new("tool", "1.0")),
            whl(&WheelSpec::new("tool", "2.0").requires_python("<3.13.6")),
        ],
    )];
    let fx = Fx::new(&projects);
    let recipe = fx.python("r", &["tool"]);
    // The first lock remembers the target its Debian half gave (Python 3.13.5).
    fx.lock(&recipe);
    assert_eq!(versions(&recipe)["tool"], "2.0");
    // The mirror moves on to Python 3.13.9. The next lock resolves the Python half for the
    // remembered 3.13.5 while the Debian half resolves, finds the target changed, and
    // resolves again for 3.13.9.
    let key = TestKey::new(7);
    let newer = DebSpec::new("python3.13", "3.13.9-1")
        .depends("libc6 (>= 2.36)")
        .exec("/usr/bin/python3.13", "#!/bin/sh\necho not really python\n");
    let repo = RepoSpec {
        suites: vec![SuiteSpec::new("trixie").component("main", vec![newer, libc6("amd64")])],
    };
    let _ = build_repo(&fx.path("www/debian"), &repo, &key);
    std::fs::remove_file(recipe.with_extension("lock")).unwrap();
    fx.lock(&recipe);
    let lock = std::fs::read_to_string(recipe.with_extension("lock")).unwrap();
    assert!(lock.contains("3.13.9-1"), "{lock}");
    assert_eq!(versions(&recipe)["tool"], "1.0", "{lock}");
    // A third lock guesses 3.13.9 and keeps its answer.
    std::fs::remove_file(recipe.with_extension("lock")).unwrap();
    fx.lock(&recipe);
    assert_eq!(versions(&recipe)["tool"], "1.0");
}

/// The check-layer-index nodes of `store`: node file name → its blob.
fn layer_indexes(store: &Path) -> BTreeMap<String, String> {
    std::fs::read_dir(store.join("v1/nodes"))
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let rec: serde_json::Value =
                serde_json::from_slice(&std::fs::read(e.path()).ok()?).ok()?;
            (rec["kind"] == "check-layer-index").then(|| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    rec["blobs"][0].as_str().unwrap_or_default().to_string(),
                )
            })
        })
        .collect()
}

#[test]
fn the_index_a_build_keeps_for_its_check_is_the_one_read_back_from_the_image() {
    let fx = Fx::new(&[(
        "alpha",
        vec![whl(&WheelSpec::new("alpha", "1.0")
            .tag("cp313-cp313-manylinux_2_28_x86_64")
            .entry_points("[console_scripts]\nalpha = alpha:main\n"))],
    )]);
    let recipe = fx.python("r", &["alpha"]);
    fx.lock(&recipe);
    // The build indexes each layer while assembling it (no image read back) and checks.
    fx.build(&recipe, "out");
    let built = layer_indexes(&fx.store());
    // A store that never saw the build indexes the written image's layers by reading them.
    run_ok(
        compose(&fx.path("store-b"))
            .arg("check")
            .arg(fx.path("out")),
    );
    let read = layer_indexes(&fx.path("store-b"));
    assert_eq!(Layout::open(&fx.path("out")).layers().len(), read.len());
    assert_eq!(built, read, "same nodes (by diff_id), same index blobs");
}

/// `compose build --locked` of `recipe` into `out`.
fn build_locked(fx: &Fx, recipe: &Path, out: &str) -> std::process::Command {
    let mut c = compose(&fx.store());
    c.args(["build", "--locked"])
        .arg(recipe)
        .arg("-o")
        .arg(fx.path(out));
    c
}

#[test]
fn a_lock_goes_stale_when_requirements_or_indexes_change_but_not_their_spelling() {
    let fx = Fx::new(&[
        ("alpha", vec![whl(&WheelSpec::new("alpha", "1.0"))]),
        ("beta", vec![whl(&WheelSpec::new("beta", "1.0"))]),
    ]);
    // Without a lock, build resolves and writes the same lock as `compose lock`.
    let built = fx.python("built", &["alpha>=1.0"]);
    let d = fx.build(&built, "o0");
    let recipe = fx.python("r", &["alpha>=1.0"]);
    fx.lock(&recipe);
    assert_eq!(
        std::fs::read_to_string(built.with_extension("lock")).unwrap(),
        std::fs::read_to_string(recipe.with_extension("lock")).unwrap()
    );
    let before = std::fs::read(recipe.with_extension("lock")).unwrap();
    let text = std::fs::read_to_string(&recipe).unwrap();
    fx.server.reset_hits();

    // Spacing and the spelling of the name do not change what is resolved: the same layers
    // (the image differs only in its org.composer.recipe.digest label, the recipe's text).
    write(&recipe, text.replace("\"alpha>=1.0\"", "\"Alpha >= 1.0\""));
    let d1 = run_ok(build_locked(&fx, &recipe, "o1")).trim().to_string();
    assert_ne!(d1, d, "the recipe digest label follows the recipe text");
    assert_eq!(
        Layout::open(&fx.path("o1")).layers(),
        Layout::open(&fx.path("o0")).layers()
    );

    // Another requirement, or another index, does.
    for changed in [
        text.replace("\"alpha>=1.0\"", "\"alpha>=1.0\" \"beta\""),
        text.replace(
            &format!("{}/simple\"", fx.server.url()),
            &format!("{}/simple-json\"", fx.server.url()),
        ),
    ] {
        assert_ne!(changed, text);
        write(&recipe, &changed);
        let out = run_err(build_locked(&fx, &recipe, "o2"));
        assert_mentions(&out, &["r.lock is out of date", "--locked", "compose lock"]);
    }
    assert_eq!(
        std::fs::read(recipe.with_extension("lock")).unwrap(),
        before
    );
    assert!(!fx.path("o2").exists());
    // --locked looked nothing up, and the first build fetched nothing new.
    assert_eq!(fx.server.total_hits(), 0, "{:?}", fx.server.requests());
}

#[test]
fn update_pkg_moves_only_that_project() {
    let fx = Fx::new(&[
        ("alpha", vec![whl(&WheelSpec::new("alpha", "1.0"))]),
        ("beta", vec![whl(&WheelSpec::new("beta", "1.0"))]),
    ]);
    let recipe = fx.python("r", &["alpha", "beta"]);
    fx.lock(&recipe);
    let d0 = fx.build(&recipe, "o0");

    fx.publish(&[
        (
            "alpha",
            vec![
                whl(&WheelSpec::new("alpha", "1.0")),
                whl(&WheelSpec::new("alpha", "1.1")),
            ],
        ),
        (
            "beta",
            vec![
                whl(&WheelSpec::new("beta", "1.0")),
                whl(&WheelSpec::new("beta", "1.1")),
            ],
        ),
    ]);
    // The lock still pins 1.0: a build neither moves nor looks.
    fx.server.reset_hits();
    assert_eq!(fx.build(&recipe, "o1"), d0);
    assert_eq!(fx.server.total_hits(), 0, "{:?}", fx.server.requests());

    let out = run_ok(compose(&fx.store()).arg("update").arg(&recipe).arg("alpha"));
    assert!(out.contains("alpha 1.0 → 1.1"), "{out}");
    assert!(!out.contains("beta"), "{out}");
    assert_eq!(
        versions(&recipe),
        BTreeMap::from([
            ("alpha".into(), "1.1".into()),
            ("beta".into(), "1.0".into())
        ])
    );

    let out = run_ok(compose(&fx.store()).arg("update").arg(&recipe));
    assert!(out.contains("beta 1.0 → 1.1"), "{out}");
    assert_eq!(versions(&recipe)["beta"], "1.1");

    let d2 = fx.build(&recipe, "o2");
    assert_ne!(d2, d0);
    let files = site(&Layout::open(&fx.path("o2")), 1);
    assert_eq!(text(&files["alpha/__init__.py"]), "__version__ = \"1.1\"\n");
    assert_eq!(text(&files["beta/__init__.py"]), "__version__ = \"1.1\"\n");
}

#[test]
fn an_arm64_image_locks_aarch64_wheels_and_arm64_packages() {
    let native = |arch: &str| {
        WheelSpec::new("native", "1.0")
            .tag(&format!("cp313-cp313-manylinux_2_17_{arch}"))
            .file("native/_impl.so", format!("\u{7f}ELF {arch}"))
    };
    let fx = Fx::with_debian(
        &debian(&["amd64", "arm64"]),
        &[
            (
                "native",
                vec![whl(&native("x86_64")), whl(&native("aarch64"))],
            ),
            ("pure", vec![whl(&WheelSpec::new("pure", "1.0"))]),
        ],
    );
    let layers = python_layer("python", "system", &["native", "pure"]);
    let arm = fx.recipe_with("arm", "simple", "linux/arm64", &layers);
    let amd = fx.recipe_with("amd", "simple", "linux/amd64", &layers);
    fx.lock(&arm);
    fx.lock(&amd);
    assert_eq!(
        wheels(&arm)["native"].filename,
        "native-1.0-cp313-cp313-manylinux_2_17_aarch64.whl"
    );
    assert_eq!(
        wheels(&amd)["native"].filename,
        "native-1.0-cp313-cp313-manylinux_2_17_x86_64.whl"
    );
    assert_eq!(wheels(&arm)["pure"].filename, "pure-1.0-py3-none-any.whl");
    let lock = std::fs::read_to_string(arm.with_extension("lock")).unwrap();
    assert!(
        lock.lines()
            .filter(|l| l.starts_with("deb "))
            .all(|l| l.contains(" arch=\"arm64\"")),
        "{lock}"
    );

    fx.build(&arm, "o");
    let layout = Layout::open(&fx.path("o"));
    layout.check_diff_ids();
    assert_eq!(layout.config["architecture"], "arm64");
    assert_eq!(site(&layout, 1)["native/_impl.so"].data, b"\x7fELF aarch64");
    assert!(
        layout
            .entries(0)
            .contains_key("usr/lib/aarch64-linux-gnu/libc.so.6")
    );
}

// ---------------------------------------------------------------------------------------------
// Credentials

#[test]
fn index_credentials_come_from_the_environment_or_netrc_and_go_nowhere_else() {
    let fx = Fx::new(&[("alpha", vec![whl(&WheelSpec::new("alpha", "1.0"))])]);
    fx.server.require_basic_auth("alice", "s3cret-pw");
    let recipe = fx.python("r", &["alpha"]);

    // None: a clear 401 naming the URL.
    let out = fx.lock_err(&recipe);
    assert_mentions(&out, &["401", "127.0.0.1"]);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("s3cret"));

    // COMPOSE_AUTH_<HOST>.
    let with_env = |c: &mut std::process::Command| {
        c.env("COMPOSE_AUTH_127_0_0_1", "alice:s3cret-pw")
            .env("NETRC", fx.path("no-netrc"));
    };
    let mut lock = compose(&fx.store());
    lock.arg("lock").arg(&recipe);
    with_env(&mut lock);
    run_ok(&mut lock);
    let mut build = compose(&fx.store());
    build.arg("build").arg(&recipe).arg("-o").arg(fx.path("o1"));
    with_env(&mut build);
    run_ok(&mut build);

    // A netrc file instead (a fresh store, so everything is fetched again).
    let netrc = fx.path("netrc");
    write(&netrc, "machine 127.0.0.1 login alice password s3cret-pw\n");
    let mut again = compose(&fx.path("store2"));
    again
        .arg("build")
        .arg(&recipe)
        .arg("--locked")
        .arg("-o")
        .arg(fx.path("o2"))
        .env("NETRC", &netrc);
    run_ok(&mut again);

    // The secret is in neither the lock nor any image byte.
    let lock_text = std::fs::read_to_string(recipe.with_extension("lock")).unwrap();
    assert!(!lock_text.contains("s3cret") && !lock_text.contains("alice"));
    for out in ["o1", "o2"] {
        let layout = Layout::open(&fx.path(out));
        for i in 0..layout.layers().len() {
            let tar = layout.layer_tar(i);
            assert!(
                !tar.windows(9).any(|w| w == b"s3cret-pw"),
                "secret in layer {i}"
            );
        }
    }
}

#[test]
fn a_build_without_a_lock_downloads_wheels_while_resolving_each_once_and_lock_alone_downloads_none()
{
    // `dep` 2.0 is the newest and `top` takes any dep, but `cap` (also pulled by top) caps
    // it below 2: the eager download of dep 2.0 (queued when the prefetch sees top's
    // dependencies) is wasted, never installed. `pinned` 2.0 is never fetched at all: the
    // prefetch guesses the newest version top's own `==1.0` allows.
    let top = WheelSpec::new("top", "1.0")
        .requires("dep")
        .requires("cap")
        .requires("pinned==1.0");
    let projects: Vec<Project> = vec![
        ("top", vec![whl(&top)]),
        (
            "cap",
            vec![whl(&WheelSpec::new("cap", "1.0").requires("dep<2"))],
        ),
        (
            "dep",
            vec![
                whl(&WheelSpec::new("dep", "1.0")),
                whl(&WheelSpec::new("dep", "2.0")),
            ],
        ),
        (
            "pinned",
            vec![
                whl(&WheelSpec::new("pinned", "1.0")),
                whl(&WheelSpec::new("pinned", "2.0")),
            ],
        ),
    ];
    let fx = Fx::new(&projects);
    // The PEP 691 index: it gives sizes (a PEP 503 page does not, and then locking must
    // download a wheel to learn its size).
    let recipe = fx.recipe_with(
        "r",
        "simple-json",
        "linux/amd64",
        &python_layer("python", "system", &["top"]),
    );
    let wheel_gets = |fx: &Fx| -> Vec<String> {
        fx.server
            .requests()
            .into_iter()
            .filter(|r| r.starts_with("GET ") && r.ends_with(".whl"))
            .collect()
    };
    // `compose lock` needs no wheel: the index gives sizes and hashes, PEP 658 the metadata.
    fx.lock(&recipe);
    assert_eq!(wheel_gets(&fx), Vec::<String>::new());
    assert_eq!(versions(&recipe)["dep"], "1.0");

    // `compose build` with no lock: resolution and downloads overlap; each wheel is fetched
    // once (the build's own fetch finds them stored), and the image has what the lock says.
    std::fs::remove_file(recipe.with_extension("lock")).unwrap();
    fx.server.reset_hits();
    let build_json = |store: &Path, locked: bool, out: &str| -> serde_json::Value {
        let mut c = compose(store);
        // One job: layers are built one after the other, so the fragment they share (the
        // end marker) is compressed by the first in both stores, not by whichever wins.
        c.args(["build", "--json", "-j", "1"]);
        if locked {
            c.arg("--locked");
        }
        serde_json::from_str(&run_ok(c.arg(&recipe).arg("-o").arg(fx.path(out)))).unwrap()
    };
    let eager = build_json(&fx.store(), false, "out");
    let gets = wheel_gets(&fx);
    for w in [
        "top-1.0-py3-none-any.whl",
        "cap-1.0-py3-none-any.whl",
        "dep-1.0-py3-none-any.whl",
        "pinned-1.0-py3-none-any.whl",
    ] {
        assert_eq!(
            gets.iter().filter(|g| g.ends_with(w)).count(),
            1,
            "{w}: {gets:?}"
        );
    }
    // The eager download ran during the resolution: dep 2.0, the newest, was fetched
    // before the resolver settled on 1.0.
    assert_eq!(gets.len(), 5, "{gets:?}");
    assert!(
        gets.iter().any(|g| g.ends_with("dep-2.0-py3-none-any.whl")),
        "{gets:?}"
    );
    assert_eq!(versions(&recipe)["dep"], "1.0");
    assert_eq!(versions(&recipe)["pinned"], "1.0");
    let layout = Layout::open(&fx.path("out"));
    let files = site(&layout, 1);
    assert!(
        files.keys().any(|p| p.contains("dep-1.0.dist-info/")),
        "{:?}",
        files.keys().collect::<Vec<_>>()
    );
    assert!(!files.keys().any(|p| p.contains("dep-2.0.dist-info/")));

    // Each downloaded wheel was listed and its fragment written while the resolver ran (dep
    // 2.0's too, wasted): the layer reused them. A fresh store building from the lock
    // compresses them itself, into the same image.
    let fresh = build_json(&fx.path("store-b"), true, "fresh");
    assert_eq!(eager["manifest"], fresh["manifest"]);
    // The one-pass listings and fragments are the records the fresh store wrote in two.
    let (one_pass, two_pass) = (node_records(&fx.store()), node_records(&fx.path("store-b")));
    let mut compared = 0;
    for (name, record) in &two_pass {
        let text = String::from_utf8_lossy(record);
        if text.contains("\"wheel-listing\"") || text.contains("\"label\":\"wheel ") {
            assert_eq!(one_pass.get(name), Some(record), "{text}");
            compared += 1;
        }
    }
    assert_eq!(compared, 8, "four listings and four wheel fragments");
    let compressed = |doc: &serde_json::Value| doc["layers"][1]["fragments_compressed"].as_u64();
    assert_eq!(
        compressed(&fresh).unwrap() - compressed(&eager).unwrap(),
        4,
        "the four wheels were prebuilt: {eager:#} {fresh:#}"
    );
}

#[test]
fn a_two_platform_image_shares_pure_wheels_and_installs_each_platforms_native_wheel() {
    let pure = WheelSpec::new("pure-tool", "1.2.0").file("pure_tool/util.py", "X = 1\n");
    let native = |arch: &str| {
        WheelSpec::new("fast-math", "2.0.1")
            .tag(&format!("cp313-cp313-manylinux_2_17_{arch}"))
            .file_mode(
                &format!("fast_math/_core.cpython-313-{arch}-linux-gnu.so"),
                format!("\u{7f}ELF {arch} core").as_bytes(),
                0o755,
            )
    };
    let fx = Fx::with_debian(
        &debian(&["amd64", "arm64"]),
        &[
            ("pure-tool", vec![whl(&pure)]),
            (
                "fast-math",
                vec![whl(&native("x86_64")), whl(&native("aarch64"))],
            ),
        ],
    );
    // `platform "linux/amd64" "linux/arm64"`.
    let recipe = fx.recipe_with(
        "r",
        "simple",
        "linux/amd64\" \"linux/arm64",
        &python_layer("python", "system", &["pure-tool", "fast-math==2.0.1"]),
    );
    fx.lock(&recipe);
    let lock = std::fs::read_to_string(recipe.with_extension("lock")).unwrap();
    let arm = &lock[lock.find("platform \"linux/arm64\"").unwrap()..];
    let amd = &lock[lock.find("platform \"linux/amd64\"").unwrap()..lock.len() - arm.len()];
    assert!(
        amd.contains("fast_math-2.0.1-cp313-cp313-manylinux_2_17_x86_64.whl")
            && arm.contains("fast_math-2.0.1-cp313-cp313-manylinux_2_17_aarch64.whl"),
        "{lock}"
    );
    let pure_line = |block: &str| {
        block
            .lines()
            .find(|l| l.contains("wheel \"pure-tool\""))
            .unwrap()
            .to_string()
    };
    assert_eq!(pure_line(amd), pure_line(arm));

    let o = compose(&fx.store())
        .args(["build", "--locked", "-o"])
        .arg(fx.path("o"))
        .arg(&recipe)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    // The py3-none-any wheel's fragment is built for amd64 and reused for arm64.
    let python_line = |out: &str, platform: &str| {
        out.lines()
            .find(|l| l.starts_with(platform) && l.contains(" layer python "))
            .unwrap_or_else(|| panic!("{out}"))
            .to_string()
    };
    let reused = |line: &str| -> u32 {
        let after = line.split("compressed, ").nth(1).unwrap();
        after.split(' ').next().unwrap().parse().unwrap()
    };
    assert!(
        reused(&python_line(&stderr, "linux/arm64")) > reused(&python_line(&stderr, "linux/amd64")),
        "{stderr}"
    );
    for (platform, arch) in [("linux/amd64", "x86_64"), ("linux/arm64", "aarch64")] {
        let img = Layout::open_platform(&fx.path("o"), platform);
        img.check_diff_ids();
        let files = site(&img, 1);
        let so = &files[&format!("fast_math/_core.cpython-313-{arch}-linux-gnu.so")];
        assert_eq!(so.data, format!("\u{7f}ELF {arch} core").as_bytes());
        assert_eq!(text(&files["pure_tool/util.py"]), "X = 1\n");
    }

    // Without a lock, in a fresh store: each platform's wheels are listed and their
    // fragments written while resolving, and the image is the one built from the lock.
    let lock_path = recipe.with_extension("lock");
    std::fs::remove_file(&lock_path).unwrap();
    let o = compose(&fx.path("store-fresh"))
        .args(["build", "-o"])
        .arg(fx.path("o2"))
        .arg(&recipe)
        .output()
        .unwrap();
    let eager = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "{eager}");
    assert_eq!(std::fs::read_to_string(&lock_path).unwrap(), lock);
    assert_eq!(
        std::fs::read(fx.path("o2").join("index.json")).unwrap(),
        std::fs::read(fx.path("o").join("index.json")).unwrap()
    );
    let compressed = |line: &str| -> u32 {
        let after = line
            .split("built: ")
            .nth(1)
            .unwrap_or_else(|| panic!("{line}"));
        after.split(' ').next().unwrap().parse().unwrap()
    };
    for platform in ["linux/amd64", "linux/arm64"] {
        assert!(
            compressed(&python_line(&eager, platform))
                < compressed(&python_line(&stderr, platform)),
            "{platform}: the wheels' fragments were written while resolving\n{eager}\n{stderr}"
        );
    }
}
