//! Reproducibility, asserted as equal digests: the same recipe built under different store
//! directories, working directories, TZ, LANG/LC_ALL, umask, `-j`, input creation order and
//! `SOURCE_DATE_EPOCH` unset vs set to the recipe's epoch.

use std::path::Path;
use std::process::Command;

use composer_tests::*;

struct Conditions<'a> {
    umask: &'a str,
    reverse: bool,
    jobs: &'a str,
    tz: &'a str,
    lang: &'a str,
    epoch_env: Option<&'a str>,
}

/// Builds the demo recipe in a fresh directory tree under `root` and returns
/// (manifest digest, layout dir).
fn build_under(root: &Path, compression: &str, c: &Conditions<'_>) -> (String, std::path::PathBuf) {
    let src = root.join("work/src");
    make_demo(&src, c.umask, c.reverse);
    let store = root.join("a-store-somewhere");
    let out = root.join("out");
    // umask applies to the compose process too (store files, output files).
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!("umask {}; exec \"$0\" \"$@\"", c.umask))
        .arg(compose_bin())
        .arg("--store")
        .arg(&store)
        .args([
            "build",
            "demo.kdl",
            "-j",
            c.jobs,
            "--compression",
            compression,
            "-o",
        ])
        .arg(&out)
        .current_dir(&src)
        .env_remove("COMPOSE_STORE")
        .env("TZ", c.tz)
        .env("LANG", c.lang)
        .env("LC_ALL", c.lang);
    match c.epoch_env {
        Some(e) => cmd.env("SOURCE_DATE_EPOCH", e),
        None => cmd.env_remove("SOURCE_DATE_EPOCH"),
    };
    let digest = run_ok(&mut cmd).trim().to_string();
    (digest, out)
}

fn assert_same(compression: &str) {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::Builder::new()
        .prefix("other-build-path-")
        .tempdir()
        .unwrap();
    let (da, oa) = build_under(
        a.path(),
        compression,
        &Conditions {
            umask: "022",
            reverse: false,
            jobs: "1",
            tz: "UTC",
            lang: "C",
            epoch_env: None,
        },
    );
    let (db, ob) = build_under(
        &b.path().join("deeper/nested"),
        compression,
        &Conditions {
            umask: "077",
            reverse: true,
            jobs: "8",
            tz: "Asia/Kolkata",
            lang: "tr_TR.UTF-8",
            epoch_env: Some("1793491200"), // the recipe's own epoch
        },
    );
    if da != db {
        // Show what differs before failing.
        let (la, lb) = (Layout::open(&oa), Layout::open(&ob));
        for i in 0..la.layers().len().min(lb.layers().len()) {
            let (ea, eb) = (la.entries(i), lb.entries(i));
            for (k, v) in &ea {
                if eb.get(k) != Some(v) {
                    eprintln!("layer {i}: {k}: {v:?} vs {:?}", eb.get(k));
                }
            }
        }
        panic!(
            "{compression}: digests differ: {da} vs {db}\nconfig a: {}\nconfig b: {}",
            la.config, lb.config
        );
    }
    Layout::open(&oa).check_diff_ids();
}

#[test]
fn zstd_build_is_reproducible_across_conditions() {
    assert_same("zstd");
}

#[test]
fn gzip_build_is_reproducible_across_conditions() {
    assert_same("gzip");
}

#[test]
fn source_date_epoch_changes_the_image_only_when_it_differs() {
    let t = tempfile::tempdir().unwrap();
    let c = |e| Conditions {
        umask: "022",
        reverse: false,
        jobs: "2",
        tz: "UTC",
        lang: "C",
        epoch_env: e,
    };
    let (plain, _) = build_under(&t.path().join("1"), "zstd", &c(None));
    let (other, out) = build_under(&t.path().join("2"), "zstd", &c(Some("1000000000")));
    assert_ne!(plain, other);
    let l = Layout::open(&out);
    assert_eq!(l.config["created"], "2001-09-09T01:46:40Z");
    assert!(l.entries(0).values().all(|e| e.mtime == 1_000_000_000));
}

#[test]
fn archives_are_byte_identical_across_builds() {
    // Two independent trees, stores and jobs settings; the archive files themselves must match,
    // not only the manifest digest inside them.
    let (a, b) = (Demo::new(), Demo::new());
    for format in ["oci-archive", "docker-archive"] {
        let out_a = a.path(&format!("{format}.tar"));
        let out_b = b.path(&format!("{format}.tar"));
        run_ok(a.build(&out_a).args(["--format", format, "-j", "1"]));
        run_ok(b.build(&out_b).args(["--format", format, "-j", "8"]));
        let (ba, bb) = (
            std::fs::read(&out_a).unwrap(),
            std::fs::read(&out_b).unwrap(),
        );
        assert!(!ba.is_empty());
        assert_eq!(
            sha256_hex(&ba),
            sha256_hex(&bb),
            "{format} differs between builds"
        );
    }
}
