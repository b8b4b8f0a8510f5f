//! `compose build --cache REF`: the real CNCF registry (`docker-registry`, htpasswd auth, on
//! 127.0.0.1) as a shared store between two "machines" (two stores). Machine A builds a
//! recipe of `.deb`s and wheels from fixture mirrors and uploads its nodes; with the mirrors
//! gone (their port closed), machine B builds the same recipe and lock from an empty store
//! and gets the same image without downloading or compressing anything. Then the failure
//! modes: an unreachable cache or a wrong password, a corrupt or missing blob in the cache,
//! and two builders uploading the same nodes at once.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use composer_tests::debrepo::*;
use composer_tests::wheels::*;
use composer_tests::*;

use crate::registry::{PASSWORD, Registry, free_port, json, tools, with_login};

const REPO: &str = "team/compose-cache";

/// A signed Debian repository (python3.13, libc6 and base-passwd, whose account files
/// planning reads) and a simple index with two wheels, served by one fixture server.
struct Mirrors {
    tmp: tempfile::TempDir,
    server: Option<FixtureServer>,
}

impl Mirrors {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let key = TestKey::new(11);
        let www = tmp.path().join("www");
        let debs = vec![
            DebSpec::new("python3.13", "3.13.5-2")
                .depends("libc6 (>= 2.36)")
                .exec("/usr/bin/python3.13", "#!/bin/sh\necho not really python\n"),
            DebSpec::new("libc6", "2.41-12")
                .source("glibc")
                .multi_arch("same")
                .file("/usr/lib/x86_64-linux-gnu/libc.so.6", "\u{7f}ELF libc"),
            DebSpec::new("base-passwd", "3.6.7")
                .essential()
                .priority("required")
                .file(
                    "/usr/share/base-passwd/passwd.master",
                    "root:*:0:0:root:/root:/bin/bash\n",
                )
                .file("/usr/share/base-passwd/group.master", "root:*:0:\n"),
        ];
        let repo = RepoSpec {
            suites: vec![SuiteSpec::new("trixie").component("main", debs)],
        };
        let _ = build_repo(&www.join("debian"), &repo, &key);
        let alpha = WheelSpec::new("alpha", "1.0")
            .requires("beta>=1")
            .file("alpha/core.py", "X = 1\n");
        let beta = WheelSpec::new("beta", "1.5").file("beta/util.py", "Y = 2\n");
        write_simple_index(
            &www,
            &[
                ("alpha", vec![IndexFileSpec::wheel(&alpha)]),
                ("beta", vec![IndexFileSpec::wheel(&beta)]),
            ],
        );
        write(&tmp.path().join("keys/archive.pgp"), key.public_keyring());
        let server = FixtureServer::start_index(&www);
        let url = server.url();
        write(
            &tmp.path().join("r.kdl"),
            format!(
                r#"image "cached" {{
    tag "1.0"
    platform "linux/amd64"
    epoch "2026-11-01T00:00:00Z"
}}
debian {{
    archive "{url}/debian" suites="trixie" components="main"
    keyring "keys/archive.pgp"
}}
pypi {{
    index "{url}/simple"
}}
layer "system" {{
    debian "python3.13" "base-passwd"
}}
layer "python" after="system" {{
    pypi "alpha"
}}
"#
            ),
        );
        Self {
            tmp,
            server: Some(server),
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }

    fn recipe(&self) -> PathBuf {
        self.path("r.kdl")
    }

    /// Stops the server; its port is closed afterwards.
    fn close(&mut self) -> String {
        let server = self.server.take().unwrap();
        let addr = server.url().trim_start_matches("http://").to_string();
        drop(server);
        assert!(
            TcpStream::connect(&addr).is_err(),
            "the mirrors still answer on {addr}"
        );
        addr
    }
}

/// `compose build RECIPE --locked --json -o OUT --cache HOST/REPO` with our login.
fn cached_build(store: &Path, recipe: &Path, out: &Path, host: &str, password: &str) -> Command {
    let mut c = compose(store);
    c.arg("build")
        .arg(recipe)
        .arg("--locked")
        .arg("--json")
        .arg("-o")
        .arg(out)
        .args(["--cache", &format!("{host}/{REPO}"), "--insecure", host]);
    with_login(c, password)
}

fn ok_json(c: Command) -> serde_json::Value {
    json(&run_ok(c))
}

fn warnings(doc: &serde_json::Value) -> Vec<String> {
    doc["cache"]["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap().to_string())
        .collect()
}

fn count(doc: &serde_json::Value, key: &str) -> u64 {
    doc["cache"][key].as_u64().unwrap()
}

/// Every layer of the build document came whole from the store: nothing compressed.
fn all_layers_cached(doc: &serde_json::Value) -> bool {
    doc["layers"].as_array().unwrap().iter().all(|l| {
        l["cached"].as_bool() == Some(true) && l["fragments_compressed"].as_u64() == Some(0)
    })
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn a_second_machine_builds_from_the_cache_without_mirrors_or_compressing() {
    if !tools() {
        return;
    }
    let reg = Registry::start(true);
    let host = reg.host();
    let mut m = Mirrors::new();
    let (store_a, store_b) = (m.path("store-a"), m.path("store-b"));
    // Locked with its own store, so that A downloads every package itself.
    run_ok(compose(&m.path("store-lock")).arg("lock").arg(m.recipe()));

    // Machine A: builds from the mirrors and uploads every node.
    let a = ok_json(cached_build(
        &store_a,
        &m.recipe(),
        &m.path("out-a"),
        &host,
        PASSWORD,
    ));
    assert!(warnings(&a).is_empty(), "{a:#}");
    // 3 .debs and 2 wheels downloaded; 5 listings and 2 layers uploaded.
    assert_eq!(a["downloads"], 5, "{a:#}");
    assert_eq!((count(&a, "pushed"), count(&a, "pulled")), (7, 0), "{a:#}");
    assert!(!all_layers_cached(&a));

    // The mirrors go away.
    let mirror = m.close();

    // Machine B: an empty store, the same recipe and lock.
    let b = ok_json(cached_build(
        &store_b,
        &m.recipe(),
        &m.path("out-b"),
        &host,
        PASSWORD,
    ));
    assert!(warnings(&b).is_empty(), "{b:#}");
    assert_eq!(b["manifest"], a["manifest"], "A: {a:#}\nB: {b:#}");
    assert_eq!(b["config"], a["config"]);
    assert_eq!(b["downloads"], 0, "{b:#}");
    assert_eq!((count(&b, "pulled"), count(&b, "pushed")), (7, 0), "{b:#}");
    assert!(all_layers_cached(&b), "B compressed something: {b:#}");
    let la = Layout::open(&m.path("out-a"));
    let lb = Layout::open(&m.path("out-b"));
    assert_eq!(la.layers(), lb.layers());
    lb.check_diff_ids();
    // The accounts planning derived from base-passwd (the one .deb the cache carries).
    assert!(lb.entries(0).contains_key("etc/passwd"));
    // What B pulled is a consistent store (every record's blobs there and intact).
    run_ok(compose(&store_b).args(["store", "verify"]));

    // Without the cache, a third empty store cannot build: the mirrors really are gone.
    let c = run_err(
        compose(&m.path("store-c"))
            .arg("build")
            .arg(m.recipe())
            .arg("--locked")
            .arg("-o")
            .arg(m.path("out-c")),
    );
    assert!(stderr(&c).contains(&mirror), "{}", stderr(&c));
}

#[test]
fn an_unreachable_cache_or_a_wrong_password_is_a_warning_and_the_build_goes_on() {
    let demo = Demo::new();
    let closed = format!("127.0.0.1:{}", free_port());
    let mut c = demo.build(&demo.path("out-1"));
    c.args(["--json", "--attempts", "1", "--cache"])
        .arg(format!("{closed}/{REPO}"))
        .args(["--insecure", &closed]);
    let doc = ok_json(with_login(c, PASSWORD));
    let w = warnings(&doc);
    assert_eq!(w.len(), 1, "{doc:#}");
    assert!(
        w[0].contains("cache not used") && w[0].contains(&closed),
        "{w:?}"
    );
    let plain = run_ok(demo.build(&demo.path("out-0"))).trim().to_string();
    assert_eq!(doc["manifest"], plain.as_str());

    if !tools() {
        return;
    }
    let reg = Registry::start(true);
    let host = reg.host();
    let mut c = demo.build(&demo.path("out-2"));
    c.args(["--cache", &format!("{host}/{REPO}"), "--insecure", &host]);
    let out = with_login(c, "wrong-password").output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("warning: cache") && err.contains("authentication failed"),
        "{err}"
    );
    assert!(!err.contains("wrong-password"), "{err}");
    // The summary line (text mode).
    assert!(
        err.contains(&format!("cache {host}/{REPO}: 0 nodes pulled")),
        "{err}"
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), plain);
}

/// The registry's stored blobs whose content is a zstd frame (our fragments).
fn stored_fragments(reg: &Registry) -> Vec<PathBuf> {
    let root = reg.storage().join("docker/registry/v2/blobs/sha256");
    let mut out = Vec::new();
    for prefix in std::fs::read_dir(&root).unwrap() {
        for blob in std::fs::read_dir(prefix.unwrap().path()).unwrap() {
            let data = blob.unwrap().path().join("data");
            let bytes = std::fs::read(&data).unwrap();
            if bytes.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
                out.push(data);
            }
        }
    }
    out.sort();
    out
}

/// `compose build` of the demo recipe into `store` and `out` with the cache, logged in,
/// printing JSON.
fn demo_build(demo: &Demo, cache: &str, host: &str, store: &str, out: &str) -> Command {
    let mut c = compose(&demo.path(store));
    c.arg("build")
        .arg(demo.src.join("demo.kdl"))
        .args(["--json", "-o"])
        .arg(demo.path(out))
        .args(["--cache", cache, "--insecure", host]);
    with_login(c, PASSWORD)
}

#[test]
fn a_corrupt_or_missing_blob_in_the_cache_is_never_trusted() {
    if !tools() {
        return;
    }
    let reg = Registry::start(true);
    let host = reg.host();
    let demo = Demo::new();
    let cache = format!("{host}/{REPO}");
    let build = |store: &str, out: &str| ok_json(demo_build(&demo, &cache, &host, store, out));
    let a = build("store-a", "out-a");
    assert!(count(&a, "pushed") > 0 && warnings(&a).is_empty(), "{a:#}");

    // Same length, other bytes: the registry serves them under the old digest.
    let fragments = stored_fragments(&reg);
    assert!(!fragments.is_empty());
    for f in &fragments {
        let mut bytes = std::fs::read(f).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(f, bytes).unwrap();
    }
    let b = build("store-b", "out-b");
    assert_eq!(b["manifest"], a["manifest"]);
    assert_eq!(count(&b, "pulled"), 0, "{b:#}");
    let w = warnings(&b);
    assert!(
        !w.is_empty() && w.iter().all(|w| w.contains("digest")),
        "{w:?}"
    );
    assert!(!all_layers_cached(&b), "{b:#}");
    // Nothing bad made it into B's store.
    run_ok(compose(&demo.path("store-b")).args(["store", "verify"]));

    // Missing: the manifests stay, their fragment blobs are gone.
    for f in &fragments {
        std::fs::remove_dir_all(f.parent().unwrap()).unwrap();
    }
    let c = build("store-c", "out-c");
    assert_eq!(c["manifest"], a["manifest"]);
    assert_eq!(count(&c, "pulled"), 0, "{c:#}");
    assert!(!warnings(&c).is_empty(), "{c:#}");
    run_ok(compose(&demo.path("store-c")).args(["store", "verify"]));
}

#[test]
fn two_builders_uploading_the_same_nodes_at_once_both_succeed() {
    if !tools() {
        return;
    }
    let reg = Registry::start(true);
    let host = reg.host();
    let demo = Demo::new();
    let cache = format!("{host}/{REPO}");
    let build = |store: &str, out: &str| demo_build(&demo, &cache, &host, store, out);
    // Both run at once: each finds the cache empty and uploads the same nodes.
    let children: Vec<std::process::Child> = [("store-1", "out-1"), ("store-2", "out-2")]
        .into_iter()
        .map(|(store, out)| {
            build(store, out)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let docs: Vec<serde_json::Value> = children
        .into_iter()
        .map(|child| {
            let o = child.wait_with_output().unwrap();
            assert!(o.status.success(), "{}", stderr(&o));
            json(&String::from_utf8_lossy(&o.stdout))
        })
        .collect();
    assert_eq!(docs[0]["manifest"], docs[1]["manifest"]);
    for d in &docs {
        assert!(warnings(d).is_empty(), "{d:#}");
    }
    // One tag per node, whoever wrote it; a third builder pulls every layer.
    let tags = json(&run_ok(Command::new("skopeo").args([
        "list-tags",
        "--tls-verify=false",
        "--creds",
        &format!("{}:{PASSWORD}", crate::registry::USER),
        &format!("docker://{cache}"),
    ])));
    let tags = tags["Tags"].as_array().unwrap();
    let layers = docs[0]["layers"].as_array().unwrap().len();
    assert_eq!(tags.len(), layers, "{tags:?}");
    let third = ok_json(build("store-3", "out-3"));
    assert_eq!(third["manifest"], docs[0]["manifest"]);
    assert!(all_layers_cached(&third), "{third:#}");
    assert_eq!(count(&third, "pulled") as usize, layers);
}
