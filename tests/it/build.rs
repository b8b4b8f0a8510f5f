use composer_tests::*;

#[test]
fn demo_image_has_normalized_entries_and_correct_digests() {
    let demo = Demo::new();
    let (t, store) = (&demo.dir, &demo.store);
    let out = t.path().join("out");
    let digest = run_ok(demo.build(&out));
    let layout = Layout::open(&out);
    assert_eq!(digest.trim(), layout.manifest_digest);
    layout.check_diff_ids();

    // index.json: one entry per tag.
    let refs: Vec<&str> = layout.index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            m["annotations"]["org.opencontainers.image.ref.name"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(refs, ["1.0", "latest"]);
    // Annotations and config from the recipe; created from the epoch.
    let ann = &layout.manifest["annotations"];
    assert_eq!(
        ann["org.opencontainers.image.created"],
        "2026-11-01T00:00:00Z"
    );
    assert_eq!(ann["org.opencontainers.image.title"], "demo");
    assert_eq!(ann["org.opencontainers.image.version"], "1.0.0");
    assert_eq!(
        ann["org.opencontainers.image.source"],
        "https://example.org/demo"
    );
    let c = &layout.config;
    assert_eq!(c["created"], "2026-11-01T00:00:00Z");
    assert_eq!(c["config"]["WorkingDir"], "/data");
    assert_eq!(c["config"]["Cmd"][0], "/usr/local/bin/run");
    assert!(
        c["config"]["Env"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e == "GREETING=hello")
    );
    assert!(c["config"]["ExposedPorts"]["8080/tcp"].is_object());
    assert_eq!(c["history"].as_array().unwrap().len(), 2);

    // Layer 0: parents, explicit dir with owner, the copied tree with normalized modes.
    let epoch = 1_793_491_200; // 2026-11-01T00:00:00Z
    let base = layout.entries(0);
    let paths: Vec<&str> = base.keys().map(String::as_str).collect();
    for want in [
        "data/",
        "etc/",
        "etc/motd",
        "opt/",
        "opt/tree/",
        "opt/tree/a.txt",
        "opt/tree/b/d/e.bin",
        "opt/tree/link-to-a",
    ] {
        assert!(paths.contains(&want), "missing {want} in {paths:?}");
    }
    assert_eq!(base["data/"].mode, 0o775);
    assert_eq!((base["data/"].uid, base["data/"].gid), (1000, 1000));
    assert_eq!(base["opt/tree/a.txt"].mode, 0o644);
    assert_eq!(base["opt/tree/tool.sh"].mode, 0o755);
    assert_eq!(base["opt/tree/a.txt"].data, b"alpha\n");
    assert_eq!(base["opt/tree/link-to-a"].link.as_deref(), Some("a.txt"));
    assert!(
        base.values().all(|e| e.mtime == epoch),
        "every mtime is the epoch"
    );
    assert!(base.keys().any(|p| p.contains("Főtanúsítvány")));
    let app = layout.entries(1);
    assert_eq!(app["usr/local/bin/run"].mode, 0o755);
    assert_eq!(
        app["usr/bin/run"].link.as_deref(),
        Some("/usr/local/bin/run")
    );

    // The archive order: parents first, then sorted per fragment; no duplicates.
    let tar = layout.layer_tar(0);
    let order = tar_paths(&tar);
    let mut dedup = order.clone();
    dedup.sort();
    dedup.dedup();
    assert_eq!(dedup.len(), order.len(), "no duplicate paths: {order:?}");
    assert_eq!(
        &tar[tar.len() - 1024..],
        &[0u8; 1024][..],
        "ends with the end-of-archive marker"
    );

    // `inspect` reads it back, as text and JSON.
    let text = run_ok(compose(store).arg("inspect").arg(&out));
    assert!(text.contains(&layout.manifest_digest), "{text}");
    assert!(text.contains("composer: layer base"), "{text}");
    let json: serde_json::Value = serde_json::from_str(&run_ok(
        compose(store).args(["inspect", "--json"]).arg(&out),
    ))
    .unwrap();
    assert_eq!(json["layers"].as_array().unwrap().len(), 2);

    // A rebuild reuses every layer and gives the same digest.
    let again = run_ok(demo.build(&out).arg("--json"));
    let again: serde_json::Value = serde_json::from_str(&again).unwrap();
    assert_eq!(again["manifest"], layout.manifest_digest.as_str());
    assert!(
        again["layers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["cached"] == true)
    );
}

#[test]
fn changing_one_file_rebuilds_only_its_fragment() {
    let demo = Demo::new();
    let (t, src) = (&demo.dir, &demo.src);
    let first = run_ok(demo.build(&t.path().join("o1")).arg("--json"));
    std::fs::write(src.join("app/run.sh"), "#!/bin/sh\necho changed\n").unwrap();
    let second = run_ok(demo.build(&t.path().join("o2")).arg("--json"));
    let (a, b): (serde_json::Value, serde_json::Value) = (
        serde_json::from_str(&first).unwrap(),
        serde_json::from_str(&second).unwrap(),
    );
    assert_ne!(a["manifest"], b["manifest"]);
    assert_eq!(
        a["layers"][0]["digest"], b["layers"][0]["digest"],
        "base layer unchanged"
    );
    assert_eq!(b["layers"][0]["cached"], true);
    assert_ne!(a["layers"][1]["digest"], b["layers"][1]["digest"]);
    assert_eq!(b["layers"][1]["cached"], false);
}

#[test]
fn archives_hold_the_same_image() {
    let demo = Demo::new();
    let (t, src, store) = (&demo.dir, &demo.src, &demo.store);
    let layout_digest = run_ok(demo.build(&t.path().join("dir")));
    let oci = t.path().join("demo-oci.tar");
    let d2 = run_ok(
        compose(store)
            .args(["build", "--format", "oci-archive"])
            .arg(src.join("demo.kdl"))
            .arg("-o")
            .arg(&oci),
    );
    assert_eq!(layout_digest, d2);
    // The oci-archive unpacks to the same layout files.
    let unpacked = t.path().join("unpacked");
    std::fs::create_dir_all(&unpacked).unwrap();
    tar::Archive::new(std::fs::File::open(&oci).unwrap())
        .unpack(&unpacked)
        .unwrap();
    let l = Layout::open(&unpacked);
    assert_eq!(format!("{}\n", l.manifest_digest), layout_digest);
    l.check_diff_ids();
    // The docker-archive's layer tars hash to the config's diff_ids.
    let docker = t.path().join("demo-docker.tar");
    run_ok(
        compose(store)
            .args(["build", "--format", "docker-archive"])
            .arg(src.join("demo.kdl"))
            .arg("-o")
            .arg(&docker),
    );
    let mut ar = tar::Archive::new(std::fs::File::open(&docker).unwrap());
    let mut files = std::collections::BTreeMap::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let p = e.path().unwrap().to_string_lossy().into_owned();
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut v).unwrap();
        files.insert(p, v);
    }
    let manifest: serde_json::Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
    assert_eq!(manifest[0]["RepoTags"][0], "demo:1.0");
    let config: serde_json::Value =
        serde_json::from_slice(&files[manifest[0]["Config"].as_str().unwrap()]).unwrap();
    for (i, layer) in manifest[0]["Layers"].as_array().unwrap().iter().enumerate() {
        let tar = &files[layer.as_str().unwrap()];
        assert_eq!(
            format!("sha256:{}", sha256_hex(tar)),
            config["rootfs"]["diff_ids"][i].as_str().unwrap()
        );
    }
    assert_eq!(config, l.config, "same config, so the same image ID");
}

#[test]
fn graph_prints_layers_fragments_and_dot() {
    let demo = Demo::new();
    let (src, store) = (&demo.src, &demo.store);
    let text = run_ok(compose(store).arg("graph").arg(src.join("demo.kdl")));
    assert!(text.starts_with("image demo ("), "{text}");
    assert!(
        text.contains("layer base") && text.contains("layer app"),
        "{text}"
    );
    assert!(text.contains("fragment parent directories"), "{text}");
    let dot = run_ok(
        compose(store)
            .args(["graph", "--dot"])
            .arg(src.join("demo.kdl")),
    );
    assert!(
        dot.starts_with("digraph compose {") && dot.contains("->"),
        "{dot}"
    );
}
