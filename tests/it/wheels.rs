//! The wheel builder of the offline PyPI tests: its wheels install with pip and with
//! composer's own installer to the same files; broken ones are refused; the simple index
//! tree holds every page, file and `.metadata`.

use std::collections::BTreeMap;
use std::io::{Cursor, Read};
use std::path::Path;
use std::process::Command;

use composer::layer::plan::Content;
use composer::pypi::wheel::{InstalledWheel, Scheme, WheelError, install_wheel};
use composer_tests::wheels::{
    IndexFileSpec, WheelSpec, build_sdist, build_wheel, metadata_text, wheel_metadata,
    write_simple_index,
};

fn demo_spec() -> WheelSpec {
    WheelSpec::new("Demo-Tool", "1.2.0")
        .file(
            "demo_tool/cli.py",
            "def main():\n    print('hi')\n\n\nclass App:\n    @staticmethod\n    def start():\n        return 0\n",
        )
        .file_mode("demo_tool/bin/helper", "#!/bin/sh\necho helper\n", 0o744)
        .file("demo_tool/data/with space, comma.txt", "odd name\n")
        .file("demo_tool/ünïcode.txt", "utf-8\n")
        .file("demo_tool/_native.so", b"\x7fELF\x02\x01\x01\0")
        .requires("requests>=2")
        .extra("fast")
        .requires("orjson; extra == \"fast\"")
        .entry_points(
            "[console_scripts]\ndemo-tool = demo_tool.cli:main\n\n[gui_scripts]\ndemo-gui = demo_tool.cli:App.start\n",
        )
        .data_file("scripts/demo-script", "#!python\nimport demo_tool\n")
        .data_file("scripts/plain.sh", "#!/bin/sh\necho plain\n")
        .data_file("data/share/demo/readme.txt", "shared\n")
        .data_file("headers/demo.h", "int demo;\n")
}

/// A file as installed: content and whether any x bit is set.
type Tree = BTreeMap<String, (Vec<u8>, bool)>;

fn ignored(path: &str) -> bool {
    let dist_info_file = path.rsplit_once('/').is_some_and(|(dir, f)| {
        dir.ends_with(".dist-info")
            && matches!(f, "RECORD" | "INSTALLER" | "REQUESTED" | "direct_url.json")
    });
    dist_info_file || path.contains("__pycache__/") || path.ends_with(".pyc")
}

fn walk(root: &Path, dir: &Path, out: &mut Tree) {
    use std::os::unix::fs::PermissionsExt as _;
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let path = e.path();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        if meta.is_dir() {
            walk(root, &path, out);
        } else {
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if !ignored(&rel) {
                let exec = meta.permissions().mode() & 0o111 != 0;
                out.insert(rel, (std::fs::read(&path).unwrap(), exec));
            }
        }
    }
}

/// composer's entries below `t/`, mapped the way `pip --target` lays them out (its `home`
/// scheme: `lib/python` moved to the target root, `bin`, `include/python/<name>`, data).
fn composer_tree(w: &InstalledWheel) -> Tree {
    let mut out = Tree::new();
    for e in &w.entries {
        let p = &e.header.path;
        let rel = p
            .strip_prefix("t/lib/python/")
            .or_else(|| p.strip_prefix("t/"))
            .unwrap_or_else(|| panic!("{p} outside t/"));
        if ignored(rel) {
            continue;
        }
        let Content::Inline(bytes) = &e.content else {
            panic!("{p}: not inline")
        };
        out.insert(
            rel.to_string(),
            (bytes.to_vec(), e.header.mode & 0o111 != 0),
        );
    }
    out
}

fn pip_available() -> bool {
    Command::new("python3")
        .args(["-m", "pip", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn pip_install(wheel: &Path, target: &Path) -> std::process::Output {
    Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-index",
            "--no-compile",
            "--disable-pip-version-check",
            "--target",
        ])
        .arg(target)
        .arg(wheel)
        .env("PIP_CONFIG_FILE", "/dev/null")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .unwrap()
}

#[test]
fn built_wheel_installs_like_pip() {
    let spec = demo_spec();
    let (filename, bytes) = build_wheel(&spec);
    assert_eq!(filename, "demo_tool-1.2.0-py3-none-any.whl");

    // composer, in a scheme shaped like pip's `--target` one.
    let mut scheme = Scheme {
        purelib: "t/lib/python".into(),
        platlib: "t/lib/python".into(),
        scripts: "t/bin".into(),
        headers: "t/include/python".into(),
        data: "t".into(),
        interpreter: "/usr/bin/python3".into(),
    };
    let ours = install_wheel(Cursor::new(&bytes), &filename, &scheme, true).unwrap();
    assert_eq!(ours.name, "Demo-Tool");
    assert_eq!(ours.dist_info, "t/lib/python/demo_tool-1.2.0.dist-info");
    let tree = composer_tree(&ours);
    assert_eq!(
        tree["bin/demo-script"],
        (b"#!/usr/bin/python3\nimport demo_tool\n".to_vec(), true)
    );
    assert!(
        tree["demo_tool/bin/helper"].1,
        "0744 in the zip → executable"
    );
    assert!(!tree["demo_tool/cli.py"].1);

    if !pip_available() {
        eprintln!("skipping the pip comparison: python3 -m pip is not available");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let wheel_path = dir.path().join(&filename);
    std::fs::write(&wheel_path, &bytes).unwrap();
    let target = dir.path().join("target");
    let out = pip_install(&wheel_path, &target);
    assert!(
        out.status.success(),
        "pip failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut theirs = Tree::new();
    walk(&target, &target, &mut theirs);

    // pip writes its own interpreter into shebangs: install again with that one.
    let exe = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .unwrap();
    scheme.interpreter = String::from_utf8(exe.stdout).unwrap().trim().to_string();
    let ours =
        composer_tree(&install_wheel(Cursor::new(&bytes), &filename, &scheme, true).unwrap());

    let our_paths: Vec<&String> = ours.keys().collect();
    let their_paths: Vec<&String> = theirs.keys().collect();
    assert_eq!(our_paths, their_paths, "installed paths differ from pip's");
    for (path, (content, exec)) in &ours {
        let (pip_content, pip_exec) = &theirs[path];
        assert_eq!(exec, pip_exec, "{path}: x bit differs from pip's");
        if path == "bin/demo-tool" || path == "bin/demo-gui" {
            // Launchers: the same shebang, import and call; pip's template uses other quotes.
            let (ours, pip) = (
                String::from_utf8_lossy(content),
                String::from_utf8_lossy(pip_content),
            );
            assert_eq!(ours.lines().next(), pip.lines().next(), "{path} shebang");
            for line in ours
                .lines()
                .filter(|l| l.starts_with("from ") || l.contains("sys.exit("))
            {
                assert!(
                    pip.contains(line),
                    "{path}: pip's launcher lacks {line:?}:\n{pip}"
                );
            }
            continue;
        }
        assert!(
            content == pip_content,
            "{path} differs from pip's:\n{}\n---\n{}",
            String::from_utf8_lossy(content),
            String::from_utf8_lossy(pip_content)
        );
    }
}

#[test]
fn platlib_wheel_installs_into_dist_packages() {
    let spec = WheelSpec::new("fastthing", "0.3")
        .tag("cp313-cp313-manylinux_2_17_x86_64.manylinux2014_x86_64")
        .file_mode(
            "fastthing/_core.cpython-313-x86_64-linux-gnu.so",
            b"\x7fELF",
            0o755,
        );
    let (filename, bytes) = build_wheel(&spec);
    assert_eq!(
        filename,
        "fastthing-0.3-cp313-cp313-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
    );
    let w = install_wheel(
        Cursor::new(&bytes),
        &filename,
        &Scheme::debian_system((3, 13)),
        false,
    )
    .unwrap();
    let so = w
        .entries
        .iter()
        .find(|e| e.header.path.ends_with(".so"))
        .unwrap();
    assert_eq!(
        so.header.path,
        "usr/local/lib/python3.13/dist-packages/fastthing/_core.cpython-313-x86_64-linux-gnu.so"
    );
    assert_eq!(so.header.mode, 0o755);
    let wheel_file = wheel_member(&bytes, "fastthing-0.3.dist-info/WHEEL");
    assert!(
        wheel_file.contains("Root-Is-Purelib: false\n"),
        "{wheel_file}"
    );
    assert!(wheel_file.contains("Tag: cp313-cp313-manylinux2014_x86_64\n"));
}

fn wheel_member(wheel: &[u8], name: &str) -> String {
    let mut z = zip::ZipArchive::new(Cursor::new(wheel)).unwrap();
    let mut s = String::new();
    z.by_name(name).unwrap().read_to_string(&mut s).unwrap();
    s
}

#[test]
fn broken_wheels_are_refused() {
    let scheme = Scheme::debian_system((3, 13));
    let (filename, bytes) = build_wheel(&demo_spec().bad_record());
    let err = install_wheel(Cursor::new(&bytes), &filename, &scheme, false).unwrap_err();
    assert!(matches!(err, WheelError::HashMismatch { .. }), "{err}");
    assert_eq!(err.member(), "demo_tool/__init__.py");
    assert!(err.to_string().contains(&filename), "{err}");

    let evil = demo_spec().raw("../evil.py", "import os\n");
    let (filename, bytes) = build_wheel(&evil);
    let err = install_wheel(Cursor::new(&bytes), &filename, &scheme, false).unwrap_err();
    assert!(matches!(err, WheelError::UnsafePath { .. }), "{err}");
    assert_eq!(err.member(), "../evil.py");
    if pip_available() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(&filename);
        std::fs::write(&path, &bytes).unwrap();
        let out = pip_install(&path, &dir.path().join("t"));
        assert!(!out.status.success(), "pip installed ../evil.py");
        assert!(!dir.path().join("evil.py").exists());
    }
}

#[test]
fn builds_are_deterministic_and_metadata_matches() {
    let spec = demo_spec().requires_python(">=3.9");
    assert_eq!(build_wheel(&spec), build_wheel(&spec));
    let (_, bytes) = build_wheel(&spec);
    let meta = metadata_text(&spec);
    assert_eq!(wheel_metadata(&bytes).unwrap(), meta.as_bytes());
    assert!(meta.contains("Name: Demo-Tool\nVersion: 1.2.0\n"), "{meta}");
    assert!(meta.contains("Requires-Python: >=3.9\n"));
    assert!(meta.contains("Provides-Extra: fast\n"));
    assert!(meta.contains("Requires-Dist: orjson; extra == \"fast\"\n"));
    assert_eq!(
        build_sdist("Demo-Tool", "1.2.0"),
        build_sdist("Demo-Tool", "1.2.0")
    );
}

#[test]
fn simple_index_tree() {
    let dir = tempfile::tempdir().unwrap();
    let spec = demo_spec().requires_python(">=3.9");
    let (sdist_name, sdist) = build_sdist("Demo-Tool", "1.1.0");
    assert_eq!(sdist_name, "demo_tool-1.1.0.tar.gz");
    write_simple_index(
        dir.path(),
        &[
            (
                "Demo-Tool",
                vec![
                    IndexFileSpec::wheel(&spec),
                    IndexFileSpec::new(&sdist_name, sdist.clone()).yanked("broken build"),
                ],
            ),
            (
                "other",
                vec![IndexFileSpec::wheel(&WheelSpec::new("other", "2"))],
            ),
        ],
    );
    let root = dir.path();
    let (wheel_name, wheel) = build_wheel(&spec);
    assert_eq!(
        std::fs::read(root.join("files").join(&wheel_name)).unwrap(),
        wheel
    );
    let metadata = std::fs::read(root.join(format!("files/{wheel_name}.metadata"))).unwrap();
    assert_eq!(metadata, metadata_text(&spec).as_bytes());
    assert!(!root.join(format!("files/{sdist_name}.metadata")).exists());

    let json: serde_json::Value = serde_json::from_slice(
        &std::fs::read(root.join("simple-json/demo-tool/index.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(json["meta"]["api-version"], "1.1");
    assert_eq!(json["name"], "demo-tool");
    assert_eq!(json["versions"], serde_json::json!(["1.1.0", "1.2.0"]));
    let files = json["files"].as_array().unwrap();
    assert_eq!(files.len(), 2);
    assert_eq!(files[0]["filename"], wheel_name.as_str());
    assert_eq!(files[0]["url"], format!("../../files/{wheel_name}"));
    assert_eq!(
        files[0]["hashes"]["sha256"],
        composer_tests::sha256_hex(&wheel)
    );
    assert_eq!(files[0]["requires-python"], ">=3.9");
    assert_eq!(files[0]["yanked"], false);
    assert_eq!(files[0]["size"], wheel.len());
    assert_eq!(
        files[0]["core-metadata"]["sha256"],
        composer_tests::sha256_hex(&metadata)
    );
    assert_eq!(files[1]["yanked"], "broken build");
    assert_eq!(files[1]["core-metadata"], false);
    assert!(files[1].get("requires-python").is_none());

    let html = std::fs::read_to_string(root.join("simple/demo-tool/index.html")).unwrap();
    assert!(html.contains(&format!(
        "<a href=\"../../files/{wheel_name}#sha256={}\" data-requires-python=\"&gt;=3.9\" data-dist-info-metadata=\"sha256={m}\" data-core-metadata=\"sha256={m}\">{wheel_name}</a>",
        composer_tests::sha256_hex(&wheel),
        m = composer_tests::sha256_hex(&metadata)
    )), "{html}");
    assert!(html.contains("data-yanked=\"broken build\""), "{html}");
    let index = std::fs::read_to_string(root.join("simple/index.html")).unwrap();
    assert!(
        index.contains("<a href=\"other/index.html\">other</a>"),
        "{index}"
    );
    assert!(root.join("simple-json/other/index.json").is_file());
    assert!(root.join("simple-json/index.json").is_file());

    // The sdist is a readable .tar.gz.
    let mut names = Vec::new();
    let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(&sdist[..]));
    for e in ar.entries().unwrap() {
        names.push(e.unwrap().path().unwrap().to_string_lossy().into_owned());
    }
    assert_eq!(
        names,
        ["demo_tool-1.1.0/PKG-INFO", "demo_tool-1.1.0/pyproject.toml"]
    );
}
