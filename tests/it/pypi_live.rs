//! Live PyPI and Debian: `recipes/python-numpy.kdl` locked at test time (indexes move on),
//! built twice into different stores, and the image's own `/usr/bin/python3` run in a chroot:
//! it imports the locked wheels, runs a console script, and `importlib.metadata` lists
//! exactly the locked distributions. Also locks an arm64 copy (nothing runs).
//! Skipped when `COMPOSE_OFFLINE=1`.

use std::collections::BTreeMap;
use std::path::Path;

use composer_tests::*;

const RECIPE: &str = "python-numpy.kdl";

/// The recipe text for `platform`: its `platform` node replaced, or one added to `image`.
fn with_platform(text: &str, platform: &str) -> String {
    let node = format!("platform \"{platform}\"");
    if let Some(start) = text.find("platform \"") {
        let end = start
            + "platform \"".len()
            + text[start + "platform \"".len()..].find('"').unwrap()
            + 1;
        return format!("{}{node}{}", &text[..start], &text[end..]);
    }
    let image = text.find("image \"").expect("the recipe has an image node");
    let brace = image + text[image..].find('{').expect("the image node has a block") + 1;
    format!("{}\n    {node}{}", &text[..brace], &text[brace..])
}

/// PEP 503 normalization: runs of `-_.` become `-`, lowercase.
fn normalize(name: &str) -> String {
    let mut out = String::new();
    let mut sep = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            sep = true;
        } else {
            if sep && !out.is_empty() {
                out.push('-');
            }
            sep = false;
            out.extend(c.to_lowercase());
        }
    }
    out
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

/// Normalized project name → (version, wheel file name), from the lock's `wheel` lines.
fn locked_wheels(recipe: &Path) -> BTreeMap<String, (String, String)> {
    let text = std::fs::read_to_string(recipe.with_extension("lock")).unwrap();
    text.lines()
        .filter_map(|l| l.strip_prefix("wheel \""))
        .map(|rest| {
            let name = rest[..rest.find('"').unwrap()].to_string();
            let line = format!(" {rest}");
            (name, (attr(&line, "version"), attr(&line, "filename")))
        })
        .collect()
}

#[test]
fn python_numpy_builds_reproducibly_and_its_wheels_import_and_run() {
    if !live_allowed() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let recipe = copy_recipe(&t.path().join("recipe"), RECIPE);
    let store_a = t.path().join("store-a");
    run_ok(compose(&store_a).arg("lock").arg(&recipe));
    let lock_text = std::fs::read_to_string(recipe.with_extension("lock")).unwrap();
    let wheels = locked_wheels(&recipe);
    for name in [
        "numpy",
        "requests",
        "charset-normalizer",
        "idna",
        "urllib3",
        "certifi",
    ] {
        assert!(
            wheels.contains_key(name),
            "{name} is not locked:\n{lock_text}"
        );
    }
    assert!(lock_text.contains("deb \"python3.13\""), "{lock_text}");
    let (numpy_version, numpy_file) = &wheels["numpy"];
    assert!(
        numpy_file.contains("-cp313-") && numpy_file.ends_with("_x86_64.whl"),
        "{numpy_file}"
    );

    // Two stores, the same lock → the same image.
    let (out_a, out_b) = (t.path().join("a"), t.path().join("b"));
    let da = run_ok(
        compose(&store_a)
            .args(["build", "--locked"])
            .arg(&recipe)
            .arg("-o")
            .arg(&out_a),
    );
    let db = run_ok(
        compose(&t.path().join("store-b"))
            .args(["build", "--locked", "-j", "1"])
            .arg(&recipe)
            .arg("-o")
            .arg(&out_b),
    );
    assert_eq!(da, db, "same lock, different stores: same image");
    Layout::open(&out_a).check_diff_ids();

    if !require("umoci") {
        return;
    }
    let gz = t.path().join("gz");
    run_ok(
        compose(&store_a)
            .args(["build", "--locked", "--compression", "gzip"])
            .arg(&recipe)
            .arg("-o")
            .arg(&gz),
    );
    let bundle = t.path().join("bundle");
    let rootfs = umoci_unpack(&gz, "latest", &bundle);

    // The locked numpy imports, next to requests.
    let printed = in_image_ok(
        &rootfs,
        &[
            "/usr/bin/python3",
            "-c",
            "import numpy, requests; print(numpy.__version__)",
        ],
    );
    assert_eq!(printed.trim(), numpy_version);

    // Console scripts made from entry points run with the image's Python.
    if wheels.contains_key("charset-normalizer") {
        let v = in_image_ok(&rootfs, &["/usr/local/bin/normalizer", "--version"]);
        assert!(
            v.contains(&wheels["charset-normalizer"].0),
            "normalizer --version: {v}"
        );
    }
    if numpy_version
        .split('.')
        .next()
        .unwrap()
        .parse::<u32>()
        .unwrap()
        >= 2
    {
        let v = in_image_ok(&rootfs, &["/usr/local/bin/numpy-config", "--version"]);
        assert_eq!(v.trim(), numpy_version, "numpy-config --version");
    }
    let f2py = in_image(&rootfs, &["/usr/local/bin/f2py", "-v"]);
    assert!(
        f2py.status.success(),
        "f2py -v: {}",
        String::from_utf8_lossy(&f2py.stderr)
    );

    // importlib.metadata sees every locked wheel at its version, in /usr/local, and nothing
    // else there; other distributions are Debian's own, under /usr/lib/python3.
    let script = "import importlib.metadata as m\n\
                  for d in m.distributions():\n    \
                  print(d.metadata['Name'], d.version, getattr(d, '_path', ''), sep='\\t')";
    let listed = in_image_ok(&rootfs, &["/usr/bin/python3", "-c", script]);
    let mut ours = BTreeMap::new();
    for line in listed.lines() {
        let mut f = line.split('\t');
        let (name, version, path) = (f.next().unwrap(), f.next().unwrap(), f.next().unwrap());
        if path.starts_with("/usr/local/") {
            let prev = ours.insert(normalize(name), version.to_string());
            assert!(prev.is_none(), "{name} listed twice:\n{listed}");
        } else {
            assert!(
                path.starts_with("/usr/lib/python3"),
                "{name} {version} from {path}, neither a wheel nor Debian's:\n{listed}"
            );
        }
    }
    let want: BTreeMap<String, String> = wheels
        .iter()
        .map(|(n, (v, _))| (n.clone(), v.clone()))
        .collect();
    assert_eq!(ours, want, "importlib.metadata in /usr/local vs the lock");
    // pip would say composer installed them.
    let installer = in_image_ok(
        &rootfs,
        &[
            "/usr/bin/python3",
            "-c",
            "import importlib.metadata as m; print(m.distribution('numpy').read_text('INSTALLER'), end='')",
        ],
    );
    assert_eq!(installer, "composer\n");
}

#[test]
fn python_numpy_for_arm64_locks_aarch64_wheels() {
    if !live_allowed() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let recipe = copy_recipe(&t.path().join("recipe"), RECIPE);
    let text = std::fs::read_to_string(&recipe).unwrap();
    write(&recipe, with_platform(&text, "linux/arm64"));
    run_ok(compose(&t.path().join("store")).arg("lock").arg(&recipe));
    let lock_text = std::fs::read_to_string(recipe.with_extension("lock")).unwrap();
    let wheels = locked_wheels(&recipe);
    let (_, numpy) = wheels.get("numpy").unwrap_or_else(|| panic!("{lock_text}"));
    assert!(
        numpy.contains("-cp313-") && numpy.ends_with("_aarch64.whl"),
        "{numpy}"
    );
    for (name, (_, file)) in &wheels {
        assert!(
            file.ends_with("-any.whl") || file.ends_with("_aarch64.whl"),
            "{name}: {file} is not for aarch64"
        );
    }
    for line in lock_text.lines().filter(|l| l.starts_with("deb ")) {
        assert!(
            line.contains(" arch=\"arm64\"") || line.contains(" arch=\"all\""),
            "{line}"
        );
    }
}

#[test]
fn platform_is_replaced_or_added() {
    assert_eq!(
        with_platform(
            "image \"x\" {\n    platform \"linux/amd64\"\n}\n",
            "linux/arm64"
        ),
        "image \"x\" {\n    platform \"linux/arm64\"\n}\n"
    );
    assert_eq!(
        with_platform("image \"x\" {\n    tag \"1\"\n}\n", "linux/arm64"),
        "image \"x\" {\n    platform \"linux/arm64\"\n    tag \"1\"\n}\n"
    );
}

/// Live: the same recipe with `pypi { prefix "/opt/venv" }`: the venv's own `bin/python`
/// (the image's Python through pyvenv.cfg) sees the wheels, `sys.prefix` is the venv, and a
/// launcher runs through its `#!/opt/venv/bin/python`.
#[test]
fn a_venv_prefix_runs_with_the_images_python() {
    if !live_allowed() || !require("umoci") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let recipe = copy_recipe(&t.path().join("recipe"), RECIPE);
    let text = std::fs::read_to_string(&recipe).unwrap();
    let at = text.find("image \"").unwrap();
    write(
        &recipe,
        format!(
            "{}pypi {{\n    prefix \"/opt/venv\"\n}}\n\n{}",
            &text[..at],
            &text[at..]
        ),
    );
    let store = t.path().join("store");
    let out = t.path().join("gz");
    run_ok(
        compose(&store)
            .args(["build", "--compression", "gzip"])
            .arg(&recipe)
            .arg("-o")
            .arg(&out),
    );
    let rootfs = umoci_unpack(&out, "latest", &t.path().join("bundle"));
    let printed = in_image_ok(
        &rootfs,
        &[
            "/opt/venv/bin/python",
            "-c",
            "import sys, numpy, requests; print(sys.prefix, numpy.__file__)",
        ],
    );
    assert!(
        printed.starts_with("/opt/venv /opt/venv/lib/python3.13/site-packages/numpy/"),
        "{printed}"
    );
    let v = in_image_ok(&rootfs, &["/opt/venv/bin/normalizer", "--version"]);
    assert!(!v.trim().is_empty());
    // The system Python does not see the venv's packages.
    let sys = in_image(&rootfs, &["/usr/bin/python3", "-c", "import numpy"]);
    assert!(!sys.status.success(), "numpy leaked into the system site");
}
