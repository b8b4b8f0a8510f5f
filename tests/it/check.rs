//! `compose check` and the check that ends `compose build`, offline: images built from a
//! signed fixture Debian repository and a fixture simple index (both on 127.0.0.1), whose
//! ELF files are compiled here with gcc (real glibc from the machine, or a throwaway library
//! left out of the image, or a stand-in `libc.so.6` that defines only `GLIBC_2.2.5` to
//! `GLIBC_2.28`), and fixture nvidia wheels. Each broken image is caught with the file, the
//! library or version, and the package that shipped the file named; a clean one passes and
//! carries the driver-floor label. Plus one live image (`recipes/python-numpy.kdl`), skipped
//! when `COMPOSE_OFFLINE=1`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use composer_tests::debrepo::*;
use composer_tests::wheels::*;
use composer_tests::*;

/// The multiarch library directory of the fixture images.
const LIB: &str = "/usr/lib/x86_64-linux-gnu";

// ---------------------------------------------------------------------------------------------
// Compiled fixtures

/// Compiles C `source` with gcc and `args` in `dir`; returns the output file's bytes.
fn gcc(dir: &Path, name: &str, source: &str, args: &[&str]) -> Vec<u8> {
    let src = dir.join(format!("{name}.c"));
    write(&src, source);
    let out = dir.join(name);
    let status = Command::new("gcc")
        .current_dir(dir)
        .args(args)
        .arg("-o")
        .arg(&out)
        .arg(&src)
        .status()
        .unwrap();
    assert!(status.success(), "gcc {name} failed");
    std::fs::read(&out).unwrap()
}

/// A C program that uses libc (so it needs `GLIBC_2.34` for `__libc_start_main` on this
/// machine's glibc, which is 2.34 or newer).
fn hello(dir: &Path) -> Vec<u8> {
    gcc(
        dir,
        "hello",
        "#include <stdio.h>\nint main(void) { puts(\"hello\"); return 0; }\n",
        &[],
    )
}

/// A shared object with soname `soname` that needs nothing but libc.
fn plain_lib(dir: &Path, soname: &str) -> Vec<u8> {
    gcc(
        dir,
        soname,
        "int answer(void) { return 42; }\n",
        &["-shared", "-fPIC", &format!("-Wl,-soname,{soname}")],
    )
}

/// `libbroken.so.1`, linked against `libgone.so.1`, which is then left out of the image.
fn broken_lib(dir: &Path) -> Vec<u8> {
    let _ = plain_lib(dir, "libgone.so.1");
    std::fs::copy(dir.join("libgone.so.1"), dir.join("libgone.so")).unwrap();
    gcc(
        dir,
        "libbroken.so.1",
        "int answer(void);\nint twice(void) { return 2 * answer(); }\n",
        &[
            "-shared",
            "-fPIC",
            "-Wl,-soname,libbroken.so.1",
            "-Wl,--no-as-needed",
            "-L.",
            "-lgone",
        ],
    )
}

/// A stand-in `libc.so.6` whose symbol versions stop at `GLIBC_2.28`.
fn old_libc(dir: &Path) -> Vec<u8> {
    write(
        &dir.join("old-libc.map"),
        "GLIBC_2.2.5 { global: fake_a; local: *; };\nGLIBC_2.28 { global: fake_b; } GLIBC_2.2.5;\n",
    );
    gcc(
        dir,
        "libc.so.6",
        "int fake_a(void) { return 1; }\nint fake_b(void) { return 2; }\n",
        &[
            "-shared",
            "-fPIC",
            "-nostdlib",
            "-Wl,-soname,libc.so.6",
            "-Wl,--version-script=old-libc.map",
        ],
    )
}

/// The machine's own glibc file, by real path.
fn host_lib(name: &str) -> Vec<u8> {
    std::fs::read(Path::new(LIB).join(name)).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Packages

/// glibc as Debian ships it: `libc.so.6` and the dynamic loader, `/lib64` link included.
fn libc6(version: &str, libc: Vec<u8>) -> DebSpec {
    DebSpec::new("libc6", version)
        .source("glibc")
        .multi_arch("same")
        .arch("amd64")
        .file(&format!("{LIB}/libc.so.6"), libc)
        .file(
            &format!("{LIB}/ld-linux-x86-64.so.2"),
            host_lib("ld-linux-x86-64.so.2"),
        )
        .symlink(
            "/usr/lib64/ld-linux-x86-64.so.2",
            "../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
        )
}

/// The machine's glibc, packaged as version 2.36 (the lock reads the image's glibc from it).
fn real_libc6() -> DebSpec {
    libc6("2.36-9", host_lib("libc.so.6"))
}

/// A fake interpreter package (the lock reads the image's Python from its version).
fn python313() -> DebSpec {
    DebSpec::new("python3.13", "3.13.5-2")
        .arch("amd64")
        .depends("libc6 (>= 2.28)")
        .exec("/usr/bin/python3.13", "#!/bin/sh\necho not really python\n")
}

/// `hello-app`: `/usr/bin/hello`, a real program.
fn hello_app(dir: &Path) -> DebSpec {
    DebSpec::new("hello-app", "1.0-1")
        .arch("amd64")
        .depends("libc6")
        .exec("/usr/bin/hello", hello(dir))
}

/// An nvidia wheel holding `files` (path below the root → content).
fn nvidia(name: &str, version: &str, files: Vec<(&str, Vec<u8>)>) -> IndexFileSpec {
    let module = escape_name(name);
    let mut all = vec![(format!("{module}/__init__.py"), b"".to_vec(), 0o644)];
    all.extend(files.into_iter().map(|(p, c)| (p.to_string(), c, 0o755)));
    IndexFileSpec::wheel(
        &WheelSpec::new(name, version)
            .tag("py3-none-manylinux_2_17_x86_64")
            .files(all),
    )
}

// ---------------------------------------------------------------------------------------------
// Fixture

/// A temporary directory with a signed Debian repository and a simple index served on
/// 127.0.0.1, a store, and gcc's scratch directory.
struct Fx {
    tmp: tempfile::TempDir,
    server: FixtureServer,
}

impl Fx {
    fn new(debs: Vec<DebSpec>, projects: &[(&str, Vec<IndexFileSpec>)]) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let key = TestKey::new(11);
        let www = tmp.path().join("www");
        let repo = RepoSpec {
            suites: vec![SuiteSpec::new("trixie").component("main", debs)],
        };
        let _ = build_repo(&www.join("debian"), &repo, &key);
        write_simple_index(&www, projects);
        write(&tmp.path().join("keys/archive.pgp"), key.public_keyring());
        let server = FixtureServer::start_index(&www);
        Self { tmp, server }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }

    fn compose(&self) -> Command {
        compose(&self.path("store"))
    }

    /// Writes `name.kdl`: a `system` layer with `debs`, a `python` layer with `wheels`
    /// (when any), and `extra` at the end (a `check` block).
    fn recipe(&self, name: &str, debs: &[&str], wheels: &[&str], extra: &str) -> PathBuf {
        let quote = |xs: &[&str]| {
            xs.iter()
                .map(|x| format!("\"{x}\""))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let python = if wheels.is_empty() {
            String::new()
        } else {
            format!(
                "layer \"python\" after=\"system\" {{\n    pypi {}\n}}\n",
                quote(wheels)
            )
        };
        let text = format!(
            r#"image "{name}" {{
    tag "1.0"
    epoch "2026-11-01T00:00:00Z"
}}
debian {{
    archive "{url}/debian" suites="trixie" components="main"
    keyring "keys/archive.pgp"
}}
pypi {{
    index "{url}/simple"
}}
layer "system" {{
    debian {debs}
}}
{python}{extra}
"#,
            url = self.server.url(),
            debs = quote(debs),
        );
        let path = self.path(&format!("{name}.kdl"));
        write(&path, text);
        path
    }

    /// `compose build RECIPE -o OUT` (plus `args`).
    fn build(&self, recipe: &Path, out: &str, args: &[&str]) -> Output {
        self.compose()
            .arg("build")
            .arg(recipe)
            .arg("-o")
            .arg(self.path(out))
            .args(args)
            .output()
            .unwrap()
    }

    /// `compose check TARGET --json`: the exit status and the report.
    fn check_json(&self, target: &Path) -> (bool, serde_json::Value) {
        let out = self
            .compose()
            .arg("check")
            .arg(target)
            .arg("--json")
            .output()
            .unwrap();
        let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{e}: stdout {}\nstderr {}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (out.status.success(), report)
    }
}

/// The findings of `severity` as (check, file, subject, package).
fn findings(report: &serde_json::Value, severity: &str) -> Vec<(String, String, String, String)> {
    let s = |v: &serde_json::Value| v.as_str().unwrap_or("").to_string();
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] == severity)
        .map(|f| {
            (
                s(&f["check"]),
                s(&f["file"]),
                s(&f["subject"]),
                s(&f["package"]),
            )
        })
        .collect()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

// ---------------------------------------------------------------------------------------------
// Tests

#[test]
fn a_clean_image_passes_and_carries_the_driver_floor_label() {
    if !require("gcc") {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let d = scratch.path();
    let runtime = nvidia(
        "nvidia-cuda-runtime-cu12",
        "12.8.90",
        vec![(
            "nvidia/cuda_runtime/lib/libcudart.so.12",
            plain_lib(d, "libcudart.so.12"),
        )],
    );
    let fx = Fx::new(
        vec![real_libc6(), python313(), hello_app(d)],
        &[("nvidia-cuda-runtime-cu12", vec![runtime])],
    );
    let recipe = fx.recipe(
        "clean",
        &["libc6", "hello-app", "python3.13"],
        &["nvidia-cuda-runtime-cu12"],
        "",
    );
    let out = fx.build(&recipe, "out", &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("passed: 0 errors"),
        "{}",
        stderr(&out)
    );

    let layout = Layout::open(&fx.path("out"));
    assert_eq!(
        layout.config["config"]["Labels"]["com.nvidia.cuda.driver-min"],
        "525.60.13"
    );
    let (ok, report) = fx.check_json(&fx.path("out"));
    assert!(ok, "{report:#}");
    assert_eq!(findings(&report, "error"), [], "{report:#}");
    assert_eq!(findings(&report, "warning"), [], "{report:#}");
    assert!(
        report["counts"]["elf_files"].as_u64().unwrap() >= 4,
        "{report:#}"
    );
    assert_eq!(report["counts"]["wheels"], 1, "{report:#}");
    assert_eq!(report["cuda"]["majors"], serde_json::json!([12]));
    assert_eq!(report["cuda"]["driver_min"], "525.60.13");
    assert_eq!(report["cuda"]["driver_full"], "570.26");

    // The text report says so too, and a recipe checks the same way (built to a temporary dir).
    let text = run_ok(fx.compose().arg("check").arg(fx.path("out")));
    assert!(text.contains("CUDA 12.8"), "{text}");
    assert!(text.contains("needs NVIDIA driver >= 525.60.13"), "{text}");
    let (ok, from_recipe) = fx.check_json(&recipe);
    assert!(ok, "{from_recipe:#}");
    assert_eq!(from_recipe["findings"], report["findings"]);

    // Archives: the build stages and checks them too, and `compose check` reads them.
    for format in ["oci-archive", "docker-archive"] {
        let name = format!("img-{format}.tar");
        let out = fx.build(&recipe, &name, &["--format", format]);
        assert!(out.status.success(), "{format}: {}", stderr(&out));
        let (ok, r) = fx.check_json(&fx.path(&name));
        assert!(ok, "{format}: {r:#}");
        assert_eq!(r["counts"], report["counts"], "{format}");
    }
    let names: Vec<String> = std::fs::read_dir(fx.path(""))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("compose-check"))
        .collect();
    assert!(names.is_empty(), "staging left behind: {names:?}");
}

#[test]
fn a_missing_needed_library_fails_the_build_naming_file_library_and_package() {
    if !require("gcc") {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let d = scratch.path();
    let broken = DebSpec::new("libbroken1", "1.0-1")
        .arch("amd64")
        .depends("libc6")
        .file(&format!("{LIB}/libbroken.so.1"), broken_lib(d));
    let fx = Fx::new(vec![real_libc6(), broken], &[]);
    let recipe = fx.recipe("broken", &["libc6", "libbroken1"], &[], "");

    // The build fails with the report, and writes nothing.
    let out = fx.build(&recipe, "out/img", &[]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("error[elf-closure] /usr/lib/x86_64-linux-gnu/libbroken.so.1 (from libbroken1 1.0-1 (deb))"), "{err}");
    assert!(err.contains("needs libgone.so.1"), "{err}");
    assert!(err.contains("failed its check"), "{err}");
    assert!(!fx.path("out/img").exists());
    let leftovers: Vec<_> = std::fs::read_dir(fx.path("out"))
        .unwrap()
        .flatten()
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // --no-check builds it; `compose check` then fails on it with the same finding.
    let out = fx.build(&recipe, "out/img", &["--no-check"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (ok, report) = fx.check_json(&fx.path("out/img"));
    assert!(!ok);
    assert_eq!(
        findings(&report, "error"),
        [(
            "elf-closure".to_string(),
            "/usr/lib/x86_64-linux-gnu/libbroken.so.1".to_string(),
            "libgone.so.1".to_string(),
            "libbroken1 1.0-1 (deb)".to_string()
        )],
        "{report:#}"
    );

    // Each layer's index was cached in the store by diff_id: a second check reads it from
    // there, not from the image. Shown by editing the cached index: the report follows it.
    let store = fx.path("store");
    let cached: Vec<PathBuf> = std::fs::read_dir(store.join("v1/nodes"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| std::fs::read_to_string(p).is_ok_and(|t| t.contains("\"check-layer-index\"")))
        .collect();
    assert!(!cached.is_empty());
    let mut edited = Vec::new();
    for rec in &cached {
        let rec: serde_json::Value = serde_json::from_slice(&std::fs::read(rec).unwrap()).unwrap();
        let blob = store.join("v1/blobs/sha256").join(
            rec["blobs"][0]
                .as_str()
                .unwrap()
                .trim_start_matches("sha256:"),
        );
        let text = std::fs::read_to_string(&blob).unwrap();
        if text.contains("libgone.so.1") {
            std::fs::remove_file(&blob).unwrap();
            std::fs::write(&blob, text.replace("libgone.so.1", "libelse.so.1")).unwrap();
            edited.push((blob, text));
        }
    }
    assert_eq!(edited.len(), 1);
    let (ok, again) = fx.check_json(&fx.path("out/img"));
    assert!(!ok);
    assert_eq!(findings(&again, "error")[0].2, "libelse.so.1", "{again:#}");
    for (blob, text) in edited {
        std::fs::remove_file(&blob).unwrap();
        std::fs::write(&blob, text).unwrap();
    }

    // An allow-list in the recipe accepts it (shown as info); the build succeeds.
    let allowed = fx.recipe(
        "broken",
        &["libc6", "libbroken1"],
        &[],
        "check {\n    allow \"elf-closure\" \"/usr/lib/x86_64-linux-gnu/libbroken.so.*\"\n}\n",
    );
    let out = fx.build(&allowed, "out/allowed", &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("info[elf-closure]"),
        "{}",
        stderr(&out)
    );
    // So does declaring the library host-provided; `compose check --recipe` reads the block.
    let host = fx.recipe(
        "broken",
        &["libc6", "libbroken1"],
        &[],
        "check {\n    host-provided \"libgone.so.1\"\n}\n",
    );
    run_ok(
        fx.compose()
            .arg("check")
            .arg(fx.path("out/img"))
            .arg("--recipe")
            .arg(host),
    );
}

#[test]
fn a_glibc_symbol_version_newer_than_the_images_glibc_is_an_error() {
    if !require("gcc") {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let d = scratch.path();
    let fx = Fx::new(vec![libc6("2.28-10", old_libc(d)), hello_app(d)], &[]);
    let recipe = fx.recipe("old-glibc", &["libc6", "hello-app"], &[], "");
    let out = fx.build(&recipe, "out", &["--no-check"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (ok, report) = fx.check_json(&fx.path("out"));
    assert!(!ok);
    let errors = findings(&report, "error");
    assert!(
        errors.contains(&(
            "abi".to_string(),
            "/usr/bin/hello".to_string(),
            "GLIBC_2.34".to_string(),
            "hello-app 1.0-1 (deb)".to_string()
        )),
        "{report:#}"
    );
    let detail = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["subject"] == "GLIBC_2.34")
        .map(|f| f["detail"].as_str().unwrap().to_string())
        .unwrap();
    assert!(
        detail.contains("/usr/lib/x86_64-linux-gnu/libc.so.6 defines only up to GLIBC_2.28"),
        "{detail}"
    );
    // The build without --no-check refuses it.
    let out = fx.build(&recipe, "out2", &[]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("error[abi] /usr/bin/hello"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn nvidia_wheels_of_two_cuda_majors_are_an_error() {
    if !require("gcc") {
        return;
    }
    let fx = Fx::new(
        vec![real_libc6(), python313()],
        &[
            (
                "nvidia-cublas-cu12",
                vec![nvidia("nvidia-cublas-cu12", "12.8.4.1", vec![])],
            ),
            (
                "nvidia-cudnn-cu13",
                vec![nvidia("nvidia-cudnn-cu13", "9.19.0.56", vec![])],
            ),
        ],
    );
    let recipe = fx.recipe(
        "mixed",
        &["libc6", "python3.13"],
        &["nvidia-cublas-cu12", "nvidia-cudnn-cu13"],
        "",
    );
    let out = fx.build(&recipe, "out", &[]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("nvidia wheels mix CUDA majors"),
        "{}",
        stderr(&out)
    );
    let out = fx.build(&recipe, "out", &["--no-check"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (ok, report) = fx.check_json(&fx.path("out"));
    assert!(!ok);
    let sp = "/usr/local/lib/python3.13/dist-packages";
    assert_eq!(
        findings(&report, "error"),
        [
            (
                "cuda".to_string(),
                format!("{sp}/nvidia_cublas_cu12-12.8.4.1.dist-info"),
                "cu12".to_string(),
                "nvidia-cublas-cu12 12.8.4.1 (wheel)".to_string()
            ),
            (
                "cuda".to_string(),
                format!("{sp}/nvidia_cudnn_cu13-9.19.0.56.dist-info"),
                "cu13".to_string(),
                "nvidia-cudnn-cu13 9.19.0.56 (wheel)".to_string()
            )
        ],
        "{report:#}"
    );
    // `skip "cuda"` turns the check off.
    let skipped = fx.recipe(
        "mixed",
        &["libc6", "python3.13"],
        &["nvidia-cublas-cu12", "nvidia-cudnn-cu13"],
        "check {\n    skip \"cuda\"\n}\n",
    );
    let out = fx.build(&skipped, "out-skipped", &[]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn cudnn_from_a_wheel_and_a_deb_is_a_duplicate() {
    if !require("gcc") {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let d = scratch.path();
    let cudnn = plain_lib(d, "libcudnn.so.9");
    let deb = DebSpec::new("libcudnn9-cuda-12", "9.10.2.21-1")
        .arch("amd64")
        .depends("libc6")
        .file(&format!("{LIB}/libcudnn.so.9"), cudnn.clone());
    let fx = Fx::new(
        vec![real_libc6(), python313(), deb],
        &[(
            "nvidia-cudnn-cu12",
            vec![nvidia(
                "nvidia-cudnn-cu12",
                "9.10.2.21",
                vec![("nvidia/cudnn/lib/libcudnn.so.9", cudnn)],
            )],
        )],
    );
    let recipe = fx.recipe(
        "dup",
        &["libc6", "python3.13", "libcudnn9-cuda-12"],
        &["nvidia-cudnn-cu12"],
        "",
    );
    let out = fx.build(&recipe, "out", &["--no-check"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (ok, report) = fx.check_json(&fx.path("out"));
    assert!(!ok);
    assert_eq!(
        findings(&report, "error"),
        [
            (
                "cuda".to_string(),
                "/usr/lib/x86_64-linux-gnu/libcudnn.so.9".to_string(),
                "libcudnn.so.9".to_string(),
                "libcudnn9-cuda-12 9.10.2.21-1 (deb)".to_string()
            ),
            (
                "cuda".to_string(),
                "/usr/local/lib/python3.13/dist-packages/nvidia/cudnn/lib/libcudnn.so.9"
                    .to_string(),
                "libcudnn.so.9".to_string(),
                "nvidia-cudnn-cu12 9.10.2.21 (wheel)".to_string()
            )
        ],
        "{report:#}"
    );
}

#[test]
fn a_live_numpy_image_passes() {
    if !live_allowed() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let recipe = copy_recipe(dir.path(), "python-numpy.kdl");
    let store = dir.path().join("store");
    let out = dir.path().join("out");
    // The build itself checks; then `compose check` on the result, as JSON.
    run_ok(
        compose(&store)
            .arg("build")
            .arg(&recipe)
            .arg("-o")
            .arg(&out),
    );
    let o = compose(&store)
        .arg("check")
        .arg(&out)
        .arg("--json")
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(o.status.success(), "{report:#}");
    assert_eq!(findings(&report, "error"), [], "{report:#}");
    assert!(
        report["counts"]["elf_files"].as_u64().unwrap() > 50,
        "{report:#}"
    );
    assert!(
        report["counts"]["wheels"].as_u64().unwrap() >= 1,
        "{report:#}"
    );
}

/// A pass is remembered per image and settings: the second build of the same image does not
/// read it back again, and says so.
#[test]
fn a_passing_check_is_remembered_for_the_same_image_and_settings() {
    let t = tempfile::tempdir().unwrap();
    let store = t.path().join("store");
    let recipe = workspace().join("examples/hello.kdl");
    let build = |out: &str| -> serde_json::Value {
        let text = run_ok(
            compose(&store)
                .args(["build", "--json"])
                .arg(&recipe)
                .arg("-o")
                .arg(t.path().join(out)),
        );
        serde_json::from_str(&text).unwrap()
    };
    let first = build("a");
    assert_eq!(first["check"]["passed"], true, "{first:#}");
    assert!(first["check"].get("cached").is_none(), "{first:#}");
    let second = build("b");
    assert_eq!(second["check"]["cached"], true, "{second:#}");
    assert_eq!(first["manifest"], second["manifest"]);
}
