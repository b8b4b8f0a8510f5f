//! Third-party validation: skopeo and umoci accept our images (umoci also checks diff_ids),
//! skopeo converts them, and runc and podman run a program from them.

use std::path::{Path, PathBuf};
use std::process::Command;

use composer_tests::*;

/// A recipe whose image holds a static binary that prints a file from the image, so running
/// the image proves the layers unpacked as intended.
fn runnable(dir: &Path) -> Option<PathBuf> {
    if !have("gcc") {
        return None;
    }
    make_demo(dir, "022", false);
    write(
        &dir.join("hello.c"),
        r#"#include <stdio.h>
int main(int argc, char **argv) {
    FILE *f = fopen("/etc/motd", "r");
    char buf[256] = {0};
    if (!f) { perror("/etc/motd"); return 3; }
    fread(buf, 1, sizeof buf - 1, f);
    printf("%s", buf);
    return 0;
}
"#,
    );
    let st = Command::new("gcc")
        .args(["-static", "-O1", "-o"])
        .arg(dir.join("app/hello"))
        .arg(dir.join("hello.c"))
        .status()
        .ok()?;
    if !st.success() {
        return None;
    }
    let recipe = DEMO_RECIPE.replace(
        "copy \"app/run.sh\" \"/usr/local/bin/run\"",
        "copy \"app/run.sh\" \"/usr/local/bin/run\"\n    copy \"app/hello\" \"/usr/local/bin/hello\"",
    );
    let recipe = recipe.replace("cmd \"/usr/local/bin/run\"", "cmd \"/usr/local/bin/hello\"");
    std::fs::write(dir.join("run.kdl"), recipe).unwrap();
    Some(dir.join("run.kdl"))
}

#[test]
fn skopeo_inspects_and_copies_zstd_and_gzip_images() {
    if !require("skopeo") {
        return;
    }
    let demo = Demo::new();
    let (t, src, store) = (&demo.dir, &demo.src, &demo.store);
    for compression in ["zstd", "gzip"] {
        let out = t.path().join(format!("img-{compression}"));
        let digest = run_ok(
            compose(store)
                .args(["build", "--compression", compression])
                .arg(src.join("demo.kdl"))
                .arg("-o")
                .arg(&out),
        );
        let inspect = run_ok(
            Command::new("skopeo")
                .arg("inspect")
                .arg(format!("oci:{}:1.0", out.display())),
        );
        let v: serde_json::Value = serde_json::from_str(&inspect).unwrap();
        assert_eq!(
            v["Digest"],
            digest.trim(),
            "skopeo sees our manifest digest"
        );
        assert_eq!(v["Layers"].as_array().unwrap().len(), 2);
        assert_eq!(v["Labels"]["org.example.team"], "ml");
        // oci → oci copy re-verifies every blob digest.
        let copy = t.path().join(format!("copy-{compression}"));
        run_ok(
            Command::new("skopeo")
                .args(["copy", "--quiet"])
                .arg(format!("oci:{}:1.0", out.display()))
                .arg(format!("oci:{}:1.0", copy.display())),
        );
        assert_eq!(
            Layout::open(&copy).manifest_digest,
            digest.trim(),
            "copied unchanged"
        );
    }
    // docker-archive accepts gzip (skopeo cannot write zstd there).
    let gz = t.path().join("img-gzip");
    let archive = t.path().join("demo-docker.tar");
    run_ok(
        Command::new("skopeo")
            .args(["copy", "--quiet"])
            .arg(format!("oci:{}:1.0", gz.display()))
            .arg(format!("docker-archive:{}:demo:1.0", archive.display())),
    );
    assert!(std::fs::metadata(&archive).unwrap().len() > 0);
}

#[test]
fn umoci_unpacks_the_gzip_image_and_runc_runs_it() {
    if !require("umoci") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    let recipe = runnable(&src).unwrap_or_else(|| {
        make_demo(&src, "022", false);
        src.join("demo.kdl")
    });
    let store = t.path().join("store");
    let out = t.path().join("img");
    run_ok(
        compose(&store)
            .args(["build", "--compression", "gzip"])
            .arg(&recipe)
            .arg("-o")
            .arg(&out),
    );
    let bundle = t.path().join("bundle");
    // umoci verifies blob digests and diff_ids while unpacking.
    run_ok(
        Command::new("umoci")
            .args(["unpack", "--image"])
            .arg(format!("{}:1.0", out.display()))
            .arg(&bundle),
    );
    let rootfs = bundle.join("rootfs");
    assert_eq!(
        std::fs::read_to_string(rootfs.join("etc/motd")).unwrap(),
        "hello from composer\n"
    );
    assert_eq!(
        std::fs::read_link(rootfs.join("usr/bin/run")).unwrap(),
        Path::new("/usr/local/bin/run")
    );
    let meta = std::fs::metadata(rootfs.join("data")).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), 1000);

    if recipe.ends_with("run.kdl") && require("runc") {
        // Run the image's own program with runc.
        let cfg_path = bundle.join("config.json");
        let mut cfg: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&cfg_path).unwrap()).unwrap();
        cfg["process"]["terminal"] = serde_json::Value::Bool(false);
        std::fs::write(&cfg_path, serde_json::to_vec(&cfg).unwrap()).unwrap();
        let id = format!("compose-test-{}", std::process::id());
        let out = Command::new("runc")
            .args(["run", "-b"])
            .arg(&bundle)
            .arg(&id)
            .output()
            .unwrap();
        let _ = Command::new("runc").args(["delete", "-f", &id]).output();
        assert!(
            out.status.success(),
            "runc: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "hello from composer\n"
        );
    }
}

#[test]
fn podman_loads_and_runs_our_docker_archive() {
    if !require("podman") || !require("runc") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    let Some(recipe) = runnable(&src) else {
        eprintln!("skipping: no static C toolchain");
        return;
    };
    let store = t.path().join("store");
    let archive = t.path().join("img.tar");
    run_ok(
        compose(&store)
            .args(["build", "--format", "docker-archive"])
            .arg(&recipe)
            .arg("-o")
            .arg(&archive),
    );
    let root = t.path().join("podman");
    let podman = |args: &[&str]| {
        let mut c = Command::new("podman");
        c.args(["--storage-driver", "vfs", "--root"])
            .arg(root.join("root"))
            .arg("--runroot")
            .arg(root.join("runroot"))
            .args([
                "--cgroup-manager=cgroupfs",
                "--events-backend=file",
                "--runtime",
                "runc",
            ])
            .args(args);
        c
    };
    let loaded = run_ok(&mut podman(&["load", "-i", archive.to_str().unwrap()]));
    assert!(loaded.contains("demo:1.0"), "{loaded}");
    let out = run_ok(&mut podman(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--ulimit",
        "nofile=20000:20000",
        "--ulimit",
        "nproc=4096:4096",
        "localhost/demo:1.0",
    ]));
    assert_eq!(out, "hello from composer\n");
}
