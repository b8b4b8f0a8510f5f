//! `compose store verify|gc|du` on a real store.

use composer_tests::*;

#[test]
fn verify_detects_and_quarantines_a_corrupt_fragment_and_the_next_build_repairs_it() {
    let demo = Demo::new();
    let (t, store) = (&demo.dir, &demo.store);
    let first = run_ok(demo.build(&t.path().join("o1")));
    // Flip a byte in the largest blob.
    let blobs = store.join("v1/blobs/sha256");
    let victim = std::fs::read_dir(&blobs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let mut bytes = std::fs::read(&victim).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::set_permissions(&victim, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    std::fs::write(&victim, &bytes).unwrap();

    let out = run_err(compose(store).args(["store", "verify"]));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&victim.file_name().unwrap().to_string_lossy().to_string()),
        "{text}"
    );
    assert!(text.contains("quarantined"), "{text}");
    assert!(!victim.exists());
    // Rebuilding repairs the store and gives the same image.
    let again = run_ok(demo.build(&t.path().join("o2")));
    assert_eq!(first, again);
    let v = run_ok(compose(store).args(["store", "verify"]));
    assert!(v.contains(": 0 problems"), "{v}");
}

#[test]
fn gc_keeps_the_latest_image_and_removes_superseded_objects() {
    let demo = Demo::new();
    let (t, src, store) = (&demo.dir, &demo.src, &demo.store);
    run_ok(demo.build(&t.path().join("o1")));
    std::fs::write(src.join("app/run.sh"), "#!/bin/sh\necho v2\n").unwrap();
    let v2 = run_ok(demo.build(&t.path().join("o2")));
    let du: serde_json::Value =
        serde_json::from_str(&run_ok(compose(store).args(["store", "du", "--json"]))).unwrap();
    assert!(du["unreachable"]["count"].as_u64().unwrap() > 0, "{du}");
    let gc: serde_json::Value =
        serde_json::from_str(&run_ok(compose(store).args(["store", "gc", "--json"]))).unwrap();
    assert!(gc["blobs_removed"].as_u64().unwrap() > 0, "{gc}");
    let du: serde_json::Value =
        serde_json::from_str(&run_ok(compose(store).args(["store", "du", "--json"]))).unwrap();
    assert_eq!(du["unreachable"]["count"], 0, "{du}");
    // The kept image rebuilds entirely from the store.
    let again = run_ok(
        compose(store)
            .args(["build", "--json"])
            .arg(src.join("demo.kdl"))
            .arg("-o")
            .arg(t.path().join("o3")),
    );
    let again: serde_json::Value = serde_json::from_str(&again).unwrap();
    assert_eq!(format!("{}\n", again["manifest"].as_str().unwrap()), v2);
    assert!(
        again["layers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["cached"] == true)
    );
}
