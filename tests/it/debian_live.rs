//! Live Debian: `recipes/debian-python.kdl` against the real mirror, with a lock made at
//! test time (mirrors move on), built twice into different stores, and the image's own
//! `/usr/bin/python3` run in a chroot.

use composer_tests::*;

#[test]
fn debian_python_builds_reproducibly_and_its_python_runs() {
    if !live_allowed() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let recipe = copy_recipe(&t.path().join("recipe"), "debian-python.kdl");
    // The lock is made now, from the live, signature-verified indexes.
    let locked = run_ok(compose(&t.path().join("store-a")).arg("lock").arg(&recipe));
    assert!(locked.contains("packages"), "{locked}");
    let lock = std::fs::read_to_string(recipe.with_extension("lock")).unwrap();
    for pkg in [
        "\"python3.13\"",
        "\"ca-certificates\"",
        "\"libc6\"",
        "\"base-passwd\"",
    ] {
        assert!(
            lock.contains(&format!("deb {pkg}")),
            "{pkg} missing from the lock:\n{lock}"
        );
    }

    // Two stores, same lock → the same digest, for zstd; gzip for umoci below.
    let out_a = t.path().join("a");
    let out_b = t.path().join("b");
    let da = run_ok(
        compose(&t.path().join("store-a"))
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
    let (la, lb) = (Layout::open(&out_a), Layout::open(&out_b));
    la.check_diff_ids();
    // The synthesized system files are byte-identical (implied by the digest; checked so a
    // failure points at the file).
    let (ea, eb) = (la.entries(0), lb.entries(0));
    for path in [
        "etc/passwd",
        "etc/group",
        "etc/ssl/certs/ca-certificates.crt",
        "var/lib/dpkg/status.d/python3.13",
    ] {
        assert_eq!(ea.get(path), eb.get(path), "{path} differs");
        assert!(ea.contains_key(path), "{path} missing");
    }
    let status = String::from_utf8(ea["var/lib/dpkg/status.d/python3.13"].data.clone()).unwrap();
    assert!(
        status.starts_with("Package: python3.13\nStatus: install ok installed\n"),
        "{status}"
    );
    assert!(ea["etc/passwd"].data.starts_with(b"root:"));
    assert_eq!(ea["bin"].link.as_deref(), Some("usr/bin"));

    if !require("umoci") {
        return;
    }
    let gz = t.path().join("gz");
    run_ok(
        compose(&t.path().join("store-a"))
            .args(["build", "--locked", "--compression", "gzip"])
            .arg(&recipe)
            .arg("-o")
            .arg(&gz),
    );
    let bundle = t.path().join("bundle");
    let rootfs = umoci_unpack(&gz, "latest", &bundle);
    let script = "import ssl, json, sqlite3; s = ssl.create_default_context().cert_store_stats(); print(s['x509_ca'])";
    let out = in_image_ok(&rootfs, &["/usr/bin/python3", "-c", script]);
    let cas: u32 = out.trim().parse().unwrap();
    assert!(cas > 100, "only {cas} CA certificates");
}

/// `e_machine` of an ELF file (little-endian), from its header.
fn elf_machine(data: &[u8]) -> u16 {
    assert!(
        data.len() > 20 && data.starts_with(b"\x7fELF"),
        "not an ELF file"
    );
    assert_eq!(data[5], 1, "not little-endian");
    u16::from_le_bytes([data[18], data[19]])
}

#[test]
fn debian_python_for_two_platforms_is_one_index_with_aarch64_binaries() {
    if !live_allowed() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let recipe = copy_recipe(&t.path().join("recipe"), "debian-python.kdl");
    let store = t.path().join("store");
    // The recipe names linux/amd64; --platform builds both from it, locked at test time.
    let locked = run_ok(
        compose(&store)
            .args(["lock", "--platform", "linux/amd64,linux/arm64"])
            .arg(&recipe),
    );
    assert!(locked.contains("linux/arm64: "), "{locked}");
    let lock = std::fs::read_to_string(recipe.with_extension("lock")).unwrap();
    assert!(
        lock.contains("platform \"linux/arm64\"") && lock.contains(" arch=\"arm64\""),
        "{lock}"
    );
    let out = t.path().join("out");
    let digest = run_ok(
        compose(&store)
            .args(["build", "--locked", "--platform", "linux/amd64,linux/arm64"])
            .arg(&recipe)
            .arg("-o")
            .arg(&out),
    )
    .trim()
    .to_string();

    if require("skopeo") {
        let raw = run_ok(
            std::process::Command::new("skopeo")
                .args(["inspect", "--raw"])
                .arg(format!("oci:{}:latest", out.display())),
        );
        assert_eq!(format!("sha256:{}", sha256_hex(raw.as_bytes())), digest);
        let idx: serde_json::Value = serde_json::from_str(&raw).unwrap();
        assert_eq!(idx["mediaType"], "application/vnd.oci.image.index.v1+json");
        let archs: Vec<&str> = idx["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["platform"]["architecture"].as_str().unwrap())
            .collect();
        assert_eq!(archs, ["amd64", "arm64"], "{raw}");
    }

    // The image's own python3.13: EM_X86_64 (62) on amd64, EM_AARCH64 (183) on arm64.
    for (platform, machine) in [("linux/amd64", 62), ("linux/arm64", 183)] {
        let img = Layout::open_platform(&out, platform);
        assert_eq!(
            img.config["architecture"],
            platform.trim_start_matches("linux/")
        );
        img.check_diff_ids();
        let python = (0..img.layers().len())
            .find_map(|i| img.entries(i).remove("usr/bin/python3.13"))
            .unwrap_or_else(|| panic!("{platform}: no /usr/bin/python3.13"));
        assert_eq!(elf_machine(&python.data), machine, "{platform} python3.13");
    }
}
