//! Multi-platform images, offline: a signed fixture repository with `binary-amd64` and
//! `binary-arm64` indexes (arch-specific packages and `Architecture: all` ones), a recipe
//! with `platform "linux/amd64" "linux/arm64"`, and the real `compose lock|build|inspect`.
//! Checked with skopeo (the image index) and our own layout reader (each platform's
//! manifest, config and layers).

use std::path::{Path, PathBuf};

use composer_tests::debrepo::*;
use composer_tests::*;

/// A repository with amd64 and arm64 packages, served over HTTP, and a key and store.
struct Fx {
    tmp: tempfile::TempDir,
    key: TestKey,
    server: FixtureServer,
}

/// A package built for `arch`: its files under the arch's multiarch triplet.
fn per_arch(name: &str, version: &str, arch: &str) -> DebSpec {
    let triplet = match arch {
        "amd64" => "x86_64-linux-gnu",
        _ => "aarch64-linux-gnu",
    };
    DebSpec::new(name, version).arch(arch).file(
        &format!("/usr/lib/{triplet}/{name}.so"),
        format!("{name} {version} for {arch}\n"),
    )
}

fn repo_spec(tzdata: &str) -> RepoSpec {
    let mut debs = vec![
        DebSpec::new("base-files", "13.8")
            .arch("all")
            .essential()
            .priority("required")
            .file("/etc/os-release", "ID=debian\nVERSION_ID=\"13\"\n")
            .dir("/usr/bin"),
        DebSpec::new("tzdata", tzdata)
            .arch("all")
            .file("/usr/share/zoneinfo/UTC", "TZif2 UTC\n"),
        DebSpec::new("app-data", "1.0-1")
            .arch("all")
            .file("/usr/share/app/data.txt", "shared between platforms\n"),
    ];
    for arch in ["amd64", "arm64"] {
        debs.push(per_arch("libc6", "2.41-12", arch).multi_arch("same"));
        debs.push(
            per_arch("app", "1.0-1", arch)
                .depends("libc6 (>= 2.36), app-data")
                .exec("/usr/bin/app", format!("#!/bin/sh\necho app on {arch}\n")),
        );
    }
    RepoSpec {
        suites: vec![SuiteSpec::new("trixie").component("main", debs)],
    }
}

impl Fx {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let key = TestKey::new(7);
        let repo = build_repo(&tmp.path().join("repo"), &repo_spec("2025b-4"), &key);
        write(&tmp.path().join("keys/archive.pgp"), key.public_keyring());
        let server = FixtureServer::start(&repo.root);
        Self { tmp, key, server }
    }

    /// Publishes the repository again with another tzdata version.
    fn republish(&self, tzdata: &str) {
        let _ = build_repo(&self.path("repo"), &repo_spec(tzdata), &self.key);
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }

    /// `multi.kdl`: `platforms` on the image, the `system` layer installs `app` and `tzdata`.
    fn recipe(&self, platforms: &str) -> PathBuf {
        let text = format!(
            r#"image "multi" {{
    tag "1.0"
    platform {platforms}
    epoch "2026-11-01T00:00:00Z"
}}
debian {{
    archive "{url}" suites="trixie" components="main"
    keyring "keys/archive.pgp"
    include "base-files"
}}
layer "system" {{
    debian "app" "tzdata"
}}
layer "files" after="system" {{
    write "/etc/motd" "hello\n"
}}
"#,
            url = self.server.url()
        );
        let path = self.path("multi.kdl");
        write(&path, text);
        path
    }
}

fn build(store: &Path, recipe: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let o = compose(store)
        .arg("build")
        .arg(recipe)
        .arg("-o")
        .arg(out)
        .args(extra)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "build failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// `(compressed, reused)` of layer `layer` of `platform` from the build's summary lines.
fn fragments(stderr: &str, platform: &str, layer: &str) -> (u32, u32) {
    let line = stderr
        .lines()
        .find(|l| l.starts_with(platform) && l.split_whitespace().nth(2) == Some(layer))
        .unwrap_or_else(|| panic!("no {platform} {layer} line:\n{stderr}"));
    let built = line
        .split("(built: ")
        .nth(1)
        .unwrap_or_else(|| panic!("layer not built now: {line}"));
    let nums: Vec<u32> = built
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    (nums[0], nums[1])
}

/// The `platform` block of a multi-platform lock file, as text.
fn block<'a>(lock: &'a str, platform: &str) -> &'a str {
    let start = lock
        .find(&format!("platform \"{platform}\""))
        .unwrap_or_else(|| panic!("no {platform} block:\n{lock}"));
    let rest = &lock[start..];
    &rest[..rest.find("\n}\n").unwrap()]
}

fn deb_line<'a>(block: &'a str, name: &str) -> &'a str {
    block
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("deb \"{name}\"")))
        .unwrap_or_else(|| panic!("no {name} in\n{block}"))
}

fn attr(line: &str, key: &str) -> String {
    let pat = format!(" {key}=\"");
    let start = line.find(&pat).unwrap() + pat.len();
    let len = line[start..].find('"').unwrap();
    line[start..start + len].to_string()
}

#[test]
fn two_platform_image_is_one_index_with_shared_fragments_and_reproducible() {
    let fx = Fx::new();
    let recipe = fx.recipe(r#""linux/amd64" "linux/arm64""#);
    let store = fx.path("store");

    // One lock, one block per platform; `Architecture: all` packages are the same file.
    let locked = run_ok(compose(&store).arg("lock").arg(&recipe));
    assert!(
        locked.contains("linux/amd64: 5 packages, linux/arm64: 5 packages"),
        "{locked}"
    );
    let lock = std::fs::read_to_string(recipe.with_extension("lock")).unwrap();
    let (amd, arm) = (block(&lock, "linux/amd64"), block(&lock, "linux/arm64"));
    assert_eq!(attr(deb_line(amd, "libc6"), "arch"), "amd64");
    assert_eq!(attr(deb_line(arm, "libc6"), "arch"), "arm64");
    assert_ne!(
        attr(deb_line(amd, "libc6"), "sha256"),
        attr(deb_line(arm, "libc6"), "sha256")
    );
    for shared in ["tzdata", "app-data", "base-files"] {
        assert_eq!(attr(deb_line(arm, shared), "arch"), "all");
        assert_eq!(deb_line(amd, shared), deb_line(arm, shared));
    }

    let out = fx.path("out");
    fx.server.reset_hits();
    let o = build(&store, &recipe, &out, &["--locked", "-j", "2"]);
    // Every platform's packages are downloaded in one batch, a shared one once.
    let reqs = fx.server.requests();
    assert_eq!(reqs.len(), 7, "{reqs:?}");
    assert_eq!(
        fx.server.hits(
            &DebSpec::new("tzdata", "2025b-4")
                .arch("all")
                .pool_path("main")
        ),
        1,
        "{reqs:?}"
    );
    let index_digest = stdout(&o);
    let stderr = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(index_digest.starts_with("sha256:"), "{index_digest}");

    // The second platform reuses the fragments that do not depend on the platform (the
    // three `all` packages at least) instead of compressing them again.
    let (_, amd_reused) = fragments(&stderr, "linux/amd64", "system");
    let (arm_compressed, arm_reused) = fragments(&stderr, "linux/arm64", "system");
    assert!(arm_reused >= amd_reused + 3, "{stderr}");
    assert!(
        arm_compressed >= 2,
        "libc6 and app are per platform: {stderr}"
    );
    // A layer without packages is the same layer on both platforms: built once.
    assert!(
        stderr.lines().any(|l| l.starts_with("linux/arm64")
            && l.contains(" files ")
            && l.ends_with("(cached)")),
        "{stderr}"
    );

    // skopeo reads an image index listing both platforms, in recipe order.
    if require("skopeo") {
        let raw = run_ok(
            std::process::Command::new("skopeo")
                .args(["inspect", "--raw"])
                .arg(format!("oci:{}:1.0", out.display())),
        );
        assert_eq!(
            format!("sha256:{}", sha256_hex(raw.as_bytes())),
            index_digest
        );
        let idx: serde_json::Value = serde_json::from_str(&raw).unwrap();
        assert_eq!(idx["mediaType"], "application/vnd.oci.image.index.v1+json");
        let platforms: Vec<(String, String)> = idx["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                assert_eq!(m["mediaType"], "application/vnd.oci.image.manifest.v1+json");
                (
                    m["platform"]["os"].as_str().unwrap().to_string(),
                    m["platform"]["architecture"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(
            platforms,
            [
                ("linux".to_string(), "amd64".to_string()),
                ("linux".to_string(), "arm64".to_string())
            ]
        );
        // skopeo copies every platform (verifying each blob) and keeps the index as is.
        let copy = fx.path("copy");
        run_ok(
            std::process::Command::new("skopeo")
                .args(["copy", "--all"])
                .arg(format!("oci:{}:1.0", out.display()))
                .arg(format!("oci:{}:1.0", copy.display())),
        );
        let copied = run_ok(
            std::process::Command::new("skopeo")
                .args(["inspect", "--raw"])
                .arg(format!("oci:{}:1.0", copy.display())),
        );
        assert_eq!(copied, raw);
    }

    // Each platform's manifest, config and layers.
    let amd_img = Layout::open_platform(&out, "linux/amd64");
    let arm_img = Layout::open_platform(&out, "linux/arm64");
    for (img, arch, triplet, other) in [
        (&amd_img, "amd64", "x86_64-linux-gnu", "aarch64-linux-gnu"),
        (&arm_img, "arm64", "aarch64-linux-gnu", "x86_64-linux-gnu"),
    ] {
        assert_eq!(img.config["architecture"], arch);
        assert_eq!(img.config["os"], "linux");
        img.check_diff_ids();
        let e = img.entries(0);
        let libc = &e[&format!("usr/lib/{triplet}/libc6.so")];
        assert_eq!(libc.data, format!("libc6 2.41-12 for {arch}\n").as_bytes());
        assert!(!e.contains_key(&format!("usr/lib/{other}/libc6.so")));
        assert_eq!(
            e["usr/bin/app"].data,
            format!("#!/bin/sh\necho app on {arch}\n").as_bytes()
        );
        assert_eq!(e["usr/share/zoneinfo/UTC"].data, b"TZif2 UTC\n");
    }
    assert_ne!(amd_img.layers()[0], arm_img.layers()[0]);
    assert_eq!(
        amd_img.layers()[1],
        arm_img.layers()[1],
        "the files layer is shared"
    );

    // Built again in another store with other -j: the same index, byte for byte.
    let again = fx.path("again");
    let o2 = build(
        &fx.path("store-2"),
        &recipe,
        &again,
        &["--locked", "-j", "1"],
    );
    assert_eq!(stdout(&o2), index_digest);
    assert_eq!(
        std::fs::read(again.join("index.json")).unwrap(),
        std::fs::read(out.join("index.json")).unwrap()
    );
    // An oci-archive holds the same index.
    let tar = fx.path("multi-oci.tar");
    let o3 = build(
        &store,
        &recipe,
        &tar,
        &["--locked", "--format", "oci-archive"],
    );
    assert_eq!(stdout(&o3), index_digest);

    // Each platform's image is the one a single-platform build of it gives.
    let single = fx.path("arm-only");
    let o4 = build(
        &store,
        &recipe,
        &single,
        &["--locked", "--platform", "linux/arm64"],
    );
    assert_eq!(stdout(&o4), arm_img.manifest_digest);
    assert_eq!(
        Layout::open(&single).manifest_digest,
        arm_img.manifest_digest
    );

    // inspect lists the platforms; one-platform readers and docker-archive say why not.
    let shown = run_ok(compose(&store).arg("inspect").arg(&out));
    assert!(shown.contains("platforms: 2"), "{shown}");
    assert!(shown.contains(&arm_img.manifest_digest), "{shown}");
    let one = run_ok(
        compose(&store)
            .args(["inspect", "--platform", "linux/arm64"])
            .arg(&out),
    );
    assert!(one.contains("platform: linux/arm64"), "{one}");
    // check: every platform of the image (or the recipe), or the one asked for.
    let checked = run_ok(compose(&store).arg("check").arg(&out));
    assert_eq!(checked.matches("passed:").count(), 2, "{checked}");
    let checked = run_ok(compose(&store).args(["check", "--locked"]).arg(&recipe));
    assert_eq!(checked.matches("passed:").count(), 2, "{checked}");
    let checked = run_ok(
        compose(&store)
            .args(["check", "--platform", "linux/arm64"])
            .arg(&out),
    );
    assert_eq!(checked.matches("passed:").count(), 1, "{checked}");
    for cmd in ["sbom", "audit"] {
        let e = run_err(compose(&store).arg(cmd).arg(&out));
        let err = String::from_utf8_lossy(&e.stderr);
        assert!(
            err.contains("is a multi-platform image (linux/amd64, linux/arm64)"),
            "{cmd}: {err}"
        );
    }
    let e = run_err(
        compose(&store)
            .arg("build")
            .arg(&recipe)
            .args(["--format", "docker-archive", "-o"])
            .arg(fx.path("d.tar")),
    );
    let err = String::from_utf8_lossy(&e.stderr);
    assert!(
        err.contains("a docker-archive holds one platform's image"),
        "{err}"
    );
}

#[test]
fn platform_option_makes_a_single_platform_recipe_multi_platform_and_locks_per_platform() {
    let fx = Fx::new();
    let recipe = fx.recipe(r#""linux/amd64""#);
    let store = fx.path("store");
    let o = build(&store, &recipe, &fx.path("single"), &[]);
    let single = stdout(&o);
    let flat = std::fs::read_to_string(recipe.with_extension("lock")).unwrap();
    assert!(
        !flat.contains("platform "),
        "single-platform locks stay flat:\n{flat}"
    );

    // `--platform` with several values: the lock gains an arm64 block; the amd64 block is
    // the single-platform lock's resolution, and its image is the same image.
    let out = fx.path("multi");
    let o = build(
        &store,
        &recipe,
        &out,
        &["--platform", "linux/amd64,linux/arm64"],
    );
    assert!(stdout(&o).starts_with("sha256:"));
    let lock = std::fs::read_to_string(recipe.with_extension("lock")).unwrap();
    let flat_debs: Vec<&str> = flat.lines().filter(|l| l.starts_with("deb ")).collect();
    let amd_debs: Vec<&str> = block(&lock, "linux/amd64")
        .lines()
        .filter_map(|l| l.strip_prefix("    "))
        .filter(|l| l.starts_with("deb "))
        .collect();
    assert_eq!(amd_debs, flat_debs);
    assert_eq!(
        Layout::open_platform(&out, "linux/amd64").manifest_digest,
        single
    );

    // Locking one platform of it keeps the other's block.
    run_ok(
        compose(&store)
            .args(["lock", "--platform", "linux/arm64"])
            .arg(&recipe),
    );
    let after = std::fs::read_to_string(recipe.with_extension("lock")).unwrap();
    assert_eq!(after, lock);

    // --locked: each platform's block serves; a platform the lock lacks is stale.
    build(
        &store,
        &recipe,
        &fx.path("a2"),
        &["--locked", "--platform", "linux/arm64"],
    );
    let e = run_err(
        compose(&store)
            .args([
                "build",
                "--locked",
                "--platform",
                "linux/amd64,linux/arm/v7",
            ])
            .arg(&recipe),
    );
    let err = String::from_utf8_lossy(&e.stderr);
    assert!(err.contains("is out of date"), "{err}");

    // `compose lock --platform` and `update` work per platform; the plain recipe again
    // reuses its platform's block.
    let relocked = run_ok(
        compose(&store)
            .args(["update", "--platform", "linux/amd64,linux/arm64"])
            .arg(&recipe)
            .arg("tzdata"),
    );
    assert!(relocked.contains("linux/arm64: 5 packages"), "{relocked}");
    let o = build(&store, &recipe, &fx.path("single-again"), &["--locked"]);
    assert_eq!(stdout(&o), single);

    // A new tzdata: updating it for arm64 alone moves it in that block only.
    fx.republish("2025c-1");
    let before = std::fs::read_to_string(recipe.with_extension("lock")).unwrap();
    run_ok(
        compose(&store)
            .args(["update", "--platform", "linux/arm64"])
            .arg(&recipe)
            .arg("tzdata"),
    );
    let after = std::fs::read_to_string(recipe.with_extension("lock")).unwrap();
    assert_eq!(block(&after, "linux/amd64"), block(&before, "linux/amd64"));
    assert_eq!(
        attr(deb_line(block(&after, "linux/arm64"), "tzdata"), "version"),
        "2025c-1"
    );
    assert_eq!(
        attr(deb_line(block(&after, "linux/arm64"), "libc6"), "version"),
        "2.41-12"
    );
    // Then for every platform of the lock.
    run_ok(
        compose(&store)
            .args(["update", "--platform", "linux/amd64,linux/arm64"])
            .arg(&recipe)
            .arg("tzdata"),
    );
    let all = std::fs::read_to_string(recipe.with_extension("lock")).unwrap();
    assert_eq!(
        attr(deb_line(block(&all, "linux/amd64"), "tzdata"), "version"),
        "2025c-1"
    );

    // A platform named twice is refused, as in a recipe.
    let e = run_err(
        compose(&store)
            .args([
                "lock",
                "--platform",
                "linux/arm64",
                "--platform",
                "linux/arm64",
            ])
            .arg(&recipe),
    );
    let err = String::from_utf8_lossy(&e.stderr);
    assert!(err.contains("names linux/arm64 twice"), "{err}");
}
