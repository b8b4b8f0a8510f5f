//! Bad input gives a clear error naming the path and leaves the store usable.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use composer_tests::*;

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn assert_store_usable(store: &Path, src: &Path, as_user: Option<&str>) {
    let mut verify = as_user.map_or_else(|| compose(store), |u| as_nobody(u, store));
    let v = run_ok(verify.args(["store", "verify"]));
    assert!(v.contains(": 0 problems"), "{v}");
    let mut build = as_user.map_or_else(|| compose(store), |u| as_nobody(u, store));
    run_ok(
        build
            .arg("build")
            .arg(src.join("demo.kdl"))
            .arg("-o")
            .arg(src.join("out")),
    );
}

/// `compose` run as an unprivileged user (root ignores file permissions).
fn as_nobody(_user: &str, store: &Path) -> Command {
    let mut c = Command::new("setpriv");
    c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(compose_bin())
        .arg("--store")
        .arg(store)
        .env_remove("SOURCE_DATE_EPOCH")
        .env_remove("COMPOSE_STORE");
    c
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout == b"0\n")
}

#[test]
fn missing_local_file_names_the_path() {
    let demo = Demo::new();
    let (t, src, store) = (&demo.dir, &demo.src, &demo.store);
    run_ok(demo.build(&t.path().join("ok")));
    std::fs::remove_file(src.join("app/run.sh")).unwrap();
    let out = run_err(demo.build(&t.path().join("o")));
    let err = stderr(&out);
    assert!(
        err.contains(&src.join("app/run.sh").display().to_string()),
        "{err}"
    );
    assert!(err.contains("layer `app`"), "names the layer: {err}");
    write(&src.join("app/run.sh"), "#!/bin/sh\necho run\n");
    assert_store_usable(store, src, None);
}

#[test]
fn missing_recipe_names_the_path() {
    let t = tempfile::tempdir().unwrap();
    let missing = t.path().join("nope.kdl");
    let out = run_err(compose(&t.path().join("store")).arg("build").arg(&missing));
    assert!(
        stderr(&out).contains(&missing.display().to_string()),
        "{}",
        stderr(&out)
    );
}

#[test]
fn unreadable_directory_names_the_path() {
    if !running_as_root() || !have("setpriv") {
        eprintln!("skipping: needs root and setpriv to run compose as an unprivileged user");
        return;
    }
    let t = tempfile::tempdir().unwrap();
    std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let src = t.path().join("src");
    make_demo(&src, "022", false);
    let secret = src.join("tree/secret");
    std::fs::create_dir_all(&secret).unwrap();
    std::fs::write(secret.join("key"), "k").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o700)).unwrap();
    let store = t.path().join("store");
    std::fs::create_dir_all(&store).unwrap();
    let st = Command::new("chown")
        .args(["-R", "65534:65534"])
        .arg(&store)
        .arg(&src)
        .status()
        .unwrap();
    assert!(st.success());
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o700)).unwrap();
    let st = Command::new("chown")
        .args(["0:0"])
        .arg(&secret)
        .status()
        .unwrap();
    assert!(st.success());
    let out = run_err(
        as_nobody("nobody", &store)
            .arg("build")
            .arg(src.join("demo.kdl"))
            .arg("-o")
            .arg(src.join("out")),
    );
    let err = stderr(&out);
    assert!(err.contains(&secret.display().to_string()), "{err}");
    assert!(err.to_lowercase().contains("permission denied"), "{err}");
    std::fs::remove_dir_all(&secret).unwrap();
    assert_store_usable(&store, &src, Some("nobody"));
}

#[test]
fn store_on_a_read_only_path_names_the_path() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    make_demo(&src, "022", false);
    // A path below a regular file can never be created, even by root.
    let file = t.path().join("plain-file");
    std::fs::write(&file, "x").unwrap();
    let bad = file.join("store");
    let out = run_err(
        compose(&bad)
            .arg("build")
            .arg(src.join("demo.kdl"))
            .arg("-o")
            .arg(t.path().join("o")),
    );
    assert!(
        stderr(&out).contains(&bad.display().to_string()),
        "{}",
        stderr(&out)
    );

    if running_as_root() && have("setpriv") {
        // A directory the build user may not write to.
        std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let ro = t.path().join("ro-store");
        std::fs::create_dir_all(&ro).unwrap();
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
        let out = run_err(
            as_nobody("nobody", &ro)
                .arg("build")
                .arg(src.join("demo.kdl")),
        );
        let err = stderr(&out);
        assert!(err.contains(&ro.display().to_string()), "{err}");
        assert!(
            !ro.join("v1/blobs").exists()
                || std::fs::read_dir(ro.join("v1/blobs/sha256"))
                    .unwrap()
                    .next()
                    .is_none()
        );
    }
    // A good store next to it still works.
    let good = t.path().join("good-store");
    assert_store_usable(&good, &src, None);
}
