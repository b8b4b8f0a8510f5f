//! A build killed with SIGKILL in the middle of a layer, then rerun, gives the identical
//! digest, and `compose store verify` finds nothing corrupt.

use std::time::{Duration, Instant};

use composer_tests::*;

/// Writes `n` MiB of deterministic, poorly compressible data.
fn big_file(path: &std::path::Path, mib: usize) {
    let mut v = Vec::with_capacity(mib << 20);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    while v.len() < mib << 20 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    write(path, v);
}

#[test]
fn sigkill_mid_layer_then_rerun_gives_the_same_digest() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    make_demo(&src, "022", false);
    big_file(&src.join("tree/big/blob1.bin"), 96);
    big_file(&src.join("tree/big/blob2.bin"), 96);

    // Reference: an uninterrupted build into its own store.
    let reference = run_ok(
        compose(&t.path().join("ref-store"))
            .args(["build", "-j", "1"])
            .arg(src.join("demo.kdl"))
            .arg("-o")
            .arg(t.path().join("ref")),
    );

    let store = t.path().join("store");
    let tmp = store.join("v1/tmp");
    let mut killed_mid_layer = false;
    for attempt in 0..5 {
        let mut child = compose(&store)
            .args(["build", "-j", "1"])
            .arg(src.join("demo.kdl"))
            .arg("-o")
            .arg(t.path().join("out"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Wait until a blob is being written (a temp file with data), then kill.
        let start = Instant::now();
        loop {
            let busy = std::fs::read_dir(&tmp)
                .map(|d| {
                    d.filter_map(Result::ok)
                        .any(|e| e.metadata().is_ok_and(|m| m.len() > (1 << 20)))
                })
                .unwrap_or(false);
            if busy || start.elapsed() > Duration::from_secs(60) {
                break;
            }
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let was_running = child.try_wait().unwrap().is_none();
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        if was_running {
            killed_mid_layer = true;
            break;
        }
        eprintln!(
            "attempt {attempt}: build finished before it could be killed; retrying with a fresh store"
        );
        std::fs::remove_dir_all(&store).unwrap();
    }
    assert!(
        killed_mid_layer,
        "could not kill the build while it was writing a layer"
    );

    // Nothing half-written is trusted: verify finds no corrupt object.
    let verify = run_ok(compose(&store).args(["store", "verify"]));
    assert!(verify.contains(": 0 problems"), "{verify}");
    // The rerun completes and gives the identical digest.
    let rerun = run_ok(
        compose(&store)
            .args(["build", "-j", "1"])
            .arg(src.join("demo.kdl"))
            .arg("-o")
            .arg(t.path().join("out")),
    );
    assert_eq!(rerun, reference);
    let verify = run_ok(compose(&store).args(["store", "verify"]));
    assert!(verify.contains(": 0 problems"), "{verify}");
    Layout::open(&t.path().join("out")).check_diff_ids();
}
