//! `compose push` and `compose build --push` against the real CNCF registry
//! (`docker-registry`, htpasswd auth, filesystem storage in a temp dir), checked with
//! skopeo; faults (500s, a registry that dies mid-push) and an opaque-token Bearer flow come
//! from a small loopback proxy in front of it; the registry's own token auth is checked with
//! a test-side token server issuing RS256 JWTs (signed by `openssl`). Everything listens
//! on 127.0.0.1 only.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use composer_tests::*;

pub(crate) const USER: &str = "pusher";
pub(crate) const PASSWORD: &str = "s3cret-pw";

/// Whether the registry tools are here; in CI (`CI` set) their absence fails the test.
pub(crate) fn tools() -> bool {
    let missing: Vec<&str> = ["docker-registry", "htpasswd", "skopeo"]
        .into_iter()
        .filter(|t| !have(t))
        .collect();
    if missing.is_empty() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{} not installed; .ci/run installs them",
        missing.join(", ")
    );
    eprintln!(
        "skipping: {} not installed (apt-get install docker-registry apache2-utils skopeo)",
        missing.join(", ")
    );
    false
}

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// How the registry authenticates.
enum Auth {
    None,
    Htpasswd,
    /// JWTs from `realm`, signed by the key of the self-signed certificate `cert`.
    Token {
        realm: String,
        cert: PathBuf,
    },
}

/// A `docker-registry` on a loopback port, killed on drop.
pub(crate) struct Registry {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Registry {
    pub(crate) fn start(htpasswd: bool) -> Self {
        Self::start_with(if htpasswd { Auth::Htpasswd } else { Auth::None })
    }

    fn start_with(auth: Auth) -> Self {
        let htpasswd = matches!(auth, Auth::Htpasswd);
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut cfg = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: test-secret\n",
            dir.path().join("data").display()
        );
        if htpasswd {
            let out = Command::new("htpasswd")
                .args(["-Bbn", USER, PASSWORD])
                .output()
                .unwrap();
            assert!(out.status.success());
            let file = dir.path().join("htpasswd");
            std::fs::write(&file, &out.stdout).unwrap();
            cfg.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: test\n    path: {}\n",
                file.display()
            ));
        }
        if let Auth::Token { realm, cert } = &auth {
            cfg.push_str(&format!(
                "auth:\n  token:\n    realm: {realm}\n    service: test-registry\n    issuer: test-issuer\n    rootcertbundle: {}\n",
                cert.display()
            ));
        }
        let cfg_path = dir.path().join("config.yml");
        std::fs::write(&cfg_path, cfg).unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&cfg_path)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let r = Self {
            child,
            port,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "docker-registry did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        r
    }

    pub(crate) fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The registry's filesystem storage (`docker/registry/v2/…`).
    pub(crate) fn storage(&self) -> PathBuf {
        self._dir.path().join("data")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `compose push` (or any compose command) with credentials in the environment.
pub(crate) fn with_login(mut c: Command, password: &str) -> Command {
    c.env("COMPOSE_REGISTRY_USER", USER)
        .env("COMPOSE_REGISTRY_PASSWORD", password)
        .env("DOCKER_CONFIG", "/nonexistent-compose-test");
    c
}

fn push_cmd(demo: &Demo, image: &Path, reference: &str, insecure: &str) -> Command {
    let mut c = compose(&demo.store);
    c.arg("push").arg(image).arg(reference).args([
        "--insecure",
        insecure,
        "--tag",
        "1.0",
        "--json",
    ]);
    with_login(c, PASSWORD)
}

pub(crate) fn json(out: &str) -> serde_json::Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

/// `skopeo inspect --raw`: the manifest or index bytes the registry serves for `reference`.
fn skopeo_raw(reference: &str) -> String {
    run_ok(Command::new("skopeo").args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        "--creds",
        &format!("{USER}:{PASSWORD}"),
        &format!("docker://{reference}"),
    ]))
}

fn skopeo_digest(reference: &str) -> String {
    let out = run_ok(Command::new("skopeo").args([
        "inspect",
        "--tls-verify=false",
        "--creds",
        &format!("{USER}:{PASSWORD}"),
        &format!("docker://{reference}"),
    ]));
    json(&out)["Digest"].as_str().unwrap().to_string()
}

fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(A[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn basic() -> String {
    format!("Basic {}", base64(format!("{USER}:{PASSWORD}").as_bytes()))
}

/// The status of a GET straight to the registry (with our login).
fn get_status(port: u16, path: &str) -> u16 {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: {}\r\nAccept: application/vnd.oci.image.manifest.v1+json\r\nConnection: close\r\n\r\n",
        basic()
    )
    .unwrap();
    let mut resp = String::new();
    let _ = s.read_to_string(&mut resp);
    resp.split(' ').nth(1).unwrap().parse().unwrap()
}

/// One request as the proxy saw it.
struct Req {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Req {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What the proxy does with a request.
enum Action {
    /// Pass it on (with `Authorization` replaced when given).
    Forward(Option<String>),
    /// Answer it here.
    Reply(u16, Vec<(String, String)>, String),
    /// Close the connection without answering.
    Hangup,
}

type Rule = Arc<dyn Fn(&Req) -> Action + Send + Sync>;

/// A loopback HTTP/1.1 proxy to the registry, one request per connection.
struct Proxy {
    port: u16,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    fn start(upstream: u16, rule: Rule) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let rule = rule.clone();
                std::thread::spawn(move || {
                    let _ = handle(conn, upstream, &rule);
                });
            }
        });
        Self { port, stop }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn handle(mut conn: TcpStream, upstream: u16, rule: &Rule) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if conn.read(&mut byte)? == 0 {
            return Ok(());
        }
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).to_string();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or("").split(' ');
    let method = first.next().unwrap_or("").to_string();
    let target = first.next().unwrap_or("").to_string();
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut req = Req {
        method,
        target,
        headers,
        body: Vec::new(),
    };
    let len: usize = req
        .header("content-length")
        .map_or(0, |v| v.parse().unwrap_or(0));
    assert!(
        req.header("transfer-encoding").is_none(),
        "composer sends Content-Length, never chunked bodies"
    );
    let mut body = vec![0u8; len];
    conn.read_exact(&mut body)?;
    req.body = body;
    match rule(&req) {
        Action::Hangup => Ok(()),
        Action::Reply(status, headers, body) => {
            let mut out = format!(
                "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n",
                body.len()
            );
            for (k, v) in headers {
                out.push_str(&format!("{k}: {v}\r\n"));
            }
            out.push_str("\r\n");
            out.push_str(&body);
            conn.write_all(out.as_bytes())
        }
        Action::Forward(auth) => {
            let mut up = TcpStream::connect(("127.0.0.1", upstream))?;
            let mut out = format!("{} {} HTTP/1.1\r\n", req.method, req.target);
            for (k, v) in &req.headers {
                if k.eq_ignore_ascii_case("connection")
                    || (auth.is_some() && k.eq_ignore_ascii_case("authorization"))
                {
                    continue;
                }
                out.push_str(&format!("{k}: {v}\r\n"));
            }
            if let Some(a) = auth.filter(|a| !a.is_empty()) {
                out.push_str(&format!("Authorization: {a}\r\n"));
            }
            out.push_str("Connection: close\r\n\r\n");
            up.write_all(out.as_bytes())?;
            up.write_all(&req.body)?;
            let mut resp = Vec::new();
            up.read_to_end(&mut resp)?;
            conn.write_all(&resp)
        }
    }
}

/// Builds the demo image (layout `out`) and an oci-archive of it.
fn built_demo() -> (Demo, PathBuf, String) {
    let demo = Demo::new();
    let out = demo.path("out");
    let digest = run_ok(demo.build(&out)).trim().to_string();
    (demo, out, digest)
}

#[test]
fn push_with_htpasswd_then_skopeo_reads_it_back_and_a_second_push_uploads_nothing() {
    if !tools() {
        return;
    }
    let reg = Registry::start(true);
    let (demo, out, digest) = built_demo();
    let reference = format!("{}/team/demo:1.0", reg.host());
    // A small chunk size so the layers go up in several PATCHes.
    let first = json(&run_ok(
        push_cmd(&demo, &out, &reference, "127.0.0.1").args(["--chunk-size", "200"]),
    ));
    assert_eq!(first["digest"], digest.as_str());
    assert_eq!(first["uploaded"], 3, "{first}"); // two layers and the config
    assert_eq!(first["skipped"], 0);
    assert_eq!(skopeo_digest(&reference), digest);

    // Pulled back by skopeo: the same manifest, byte for byte.
    let copy = demo.path("copy");
    run_ok(Command::new("skopeo").args([
        "copy",
        "-q",
        "--src-tls-verify=false",
        "--src-creds",
        &format!("{USER}:{PASSWORD}"),
        &format!("docker://{reference}"),
        &format!("oci:{}:pulled", copy.display()),
    ]));
    let pulled = Layout::open(&copy);
    assert_eq!(pulled.manifest_digest, digest);

    // Again, from the oci-archive: every blob is there, nothing is sent.
    let archive = demo.path("demo-oci.tar");
    run_ok(demo.build(&archive).args(["--format", "oci-archive"]));
    let second = json(&run_ok(push_cmd(&demo, &archive, &reference, "127.0.0.1")));
    assert_eq!(second["uploaded"], 0, "{second}");
    assert_eq!(second["skipped"], 3);
    assert_eq!(second["digest"], digest.as_str());

    // A layout with an SBOM artifact beside the image: without --tag, the tagged image goes.
    let with_sbom = demo.path("out-sbom");
    run_ok(demo.build(&with_sbom).arg("--sbom"));
    let mut c = compose(&demo.store);
    c.arg("push")
        .arg(&with_sbom)
        .arg(format!("{}/team/sbom:1.0", reg.host()))
        .args(["--insecure", "127.0.0.1", "--json"]);
    let pushed = json(&run_ok(with_login(c, PASSWORD)));
    assert_eq!(pushed["digest"], digest.as_str());
    // …and its SBOM goes up beside it: distribution 2.8 has no referrers API, so the
    // artifact is listed in the OCI 1.1 fallback tag `sha256-<hex of the image>`.
    assert_eq!(pushed["referrers"], 1, "{pushed}");
    let referrers_tag = format!(
        "{}/team/sbom:sha256-{}",
        reg.host(),
        digest.trim_start_matches("sha256:")
    );
    let listed = json(&skopeo_raw(&referrers_tag));
    let entries = listed["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{listed}");
    assert_eq!(
        entries[0]["artifactType"], "application/spdx+json",
        "{listed}"
    );
    let local = Layout::open(&with_sbom);
    let attached = local.index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m.get("artifactType").is_some())
        .unwrap();
    assert_eq!(entries[0]["digest"], attached["digest"]);
    // Pushing again changes nothing: the tag is not rewritten with a duplicate entry.
    let mut c = compose(&demo.store);
    c.arg("push")
        .arg(&with_sbom)
        .arg(format!("{}/team/sbom:1.0", reg.host()))
        .args(["--insecure", "127.0.0.1", "--json"]);
    let again = json(&run_ok(with_login(c, PASSWORD)));
    assert_eq!(again["uploaded"], 0, "{again}");
    let relisted = json(&skopeo_raw(&referrers_tag));
    assert_eq!(relisted, listed);

    // build --push straight from the store (layers as concatenated fragments), chunked.
    let fresh = format!("{}/team/fromstore:v1", reg.host());
    let mut build = demo.build(&demo.path("out1"));
    build.args([
        "--push",
        &fresh,
        "--insecure",
        &reg.host(),
        "--chunk-size",
        "150",
        "--json",
    ]);
    let built = json(&run_ok(with_login(build, PASSWORD)));
    assert_eq!(built["push"]["digest"], digest.as_str());
    assert_eq!(built["push"]["uploaded"], 3, "{built}");
    assert_eq!(skopeo_digest(&fresh), digest);

    // build --push --sbom: the image from the store, the SBOM from the written layout
    // (its document and the empty config are the two extra blobs), listed in the tag.
    let with_doc = format!("{}/team/withsbom:v1", reg.host());
    let mut build = demo.build(&demo.path("out-sbom-push"));
    build.args([
        "--sbom",
        "--push",
        &with_doc,
        "--insecure",
        &reg.host(),
        "--json",
    ]);
    let built = json(&run_ok(with_login(build, PASSWORD)));
    assert_eq!(built["push"]["digest"], digest.as_str());
    assert_eq!(built["push"]["uploaded"], 5, "{built}");
    assert_eq!(built["push"]["referrers"], 1, "{built}");
    let listed = json(&skopeo_raw(&format!(
        "{}/team/withsbom:sha256-{}",
        reg.host(),
        digest.trim_start_matches("sha256:")
    )));
    assert_eq!(
        listed["manifests"][0]["artifactType"],
        "application/spdx+json"
    );

    // build --push into another repository, mounting the blobs from the first.
    let other = format!("{}/team/other:v2", reg.host());
    let mut build = demo.build(&demo.path("out2"));
    build.args([
        "--push",
        &other,
        "--insecure",
        &reg.host(),
        "--mount-from",
        "team/demo",
        "--json",
    ]);
    let built = json(&run_ok(with_login(build, PASSWORD)));
    assert_eq!(built["push"]["digest"], digest.as_str());
    assert_eq!(built["push"]["mounted"], 3, "{built}");
    assert_eq!(skopeo_digest(&other), digest);
}

#[test]
fn wrong_or_missing_password_is_a_clear_401_error() {
    if !tools() {
        return;
    }
    let reg = Registry::start(true);
    let (demo, out, _) = built_demo();
    let reference = format!("{}/team/demo:1.0", reg.host());
    let mut c = compose(&demo.store);
    c.args(["push"])
        .arg(&out)
        .arg(&reference)
        .args(["--insecure", "127.0.0.1"]);
    let err = run_err(with_login(c, "wrong"));
    let stderr = String::from_utf8_lossy(&err.stderr);
    assert!(
        stderr.contains(&format!("http://{}", reg.host())),
        "{stderr}"
    );
    assert!(stderr.contains("401"), "{stderr}");
    assert!(!stderr.contains("wrong"), "the password leaked: {stderr}");

    let mut c = compose(&demo.store);
    c.args(["push"])
        .arg(&out)
        .arg(&reference)
        .args(["--insecure", "127.0.0.1"])
        .env_remove("COMPOSE_REGISTRY_USER")
        .env_remove("COMPOSE_REGISTRY_PASSWORD")
        .env("DOCKER_CONFIG", demo.path("no-docker-config"));
    let stderr = String::from_utf8_lossy(&run_err(c).stderr).to_string();
    assert!(
        stderr.contains("401") && stderr.contains("COMPOSE_REGISTRY_USER"),
        "{stderr}"
    );

    // Without --insecure, plain http is refused (TLS to a plain-http port fails).
    let mut c = compose(&demo.store);
    c.args(["push"])
        .arg(&out)
        .arg(&reference)
        .args(["--attempts", "1"]);
    let stderr = String::from_utf8_lossy(&run_err(with_login(c, PASSWORD)).stderr).to_string();
    assert!(stderr.contains("--insecure"), "{stderr}");
    assert_eq!(get_status(reg.port, "/v2/team/demo/manifests/1.0"), 404);
}

#[test]
fn a_500_on_one_blob_is_retried_and_the_push_succeeds() {
    if !tools() {
        return;
    }
    let reg = Registry::start(true);
    let (demo, out, digest) = built_demo();
    let patches = Arc::new(AtomicUsize::new(0));
    let failed_put = Arc::new(AtomicBool::new(false));
    let injected = Arc::new(AtomicUsize::new(0));
    let sessions = Arc::new(AtomicUsize::new(0));
    let (pa, fu, inj, ses) = (
        patches.clone(),
        failed_put.clone(),
        injected.clone(),
        sessions.clone(),
    );
    let rule: Rule = Arc::new(move |r: &Req| {
        let blob_put = r.method == "PUT" && r.target.contains("digest=");
        if r.method == "POST" {
            ses.fetch_add(1, Ordering::SeqCst);
        }
        // The second PATCH (one chunk already landed) and the first finishing PUT fail.
        let first = match r.method.as_str() {
            "PATCH" => pa.fetch_add(1, Ordering::SeqCst) == 1,
            _ if blob_put => !fu.swap(true, Ordering::SeqCst),
            _ => false,
        };
        if first {
            inj.fetch_add(1, Ordering::SeqCst);
            return Action::Reply(
                500,
                vec![("Content-Type".into(), "application/json".into())],
                r#"{"errors":[{"code":"UNKNOWN","message":"injected"}]}"#.into(),
            );
        }
        Action::Forward(None)
    });
    let proxy = Proxy::start(reg.port, rule);
    let reference = format!("127.0.0.1:{}/team/flaky:1.0", proxy.port);
    let report = json(&run_ok(
        push_cmd(&demo, &out, &reference, "127.0.0.1").args(["--chunk-size", "100"]),
    ));
    assert_eq!(
        injected.load(Ordering::SeqCst),
        2,
        "a PATCH and a PUT failed once"
    );
    assert_eq!(report["digest"], digest.as_str());
    assert_eq!(report["uploaded"], 3);
    assert_eq!(
        skopeo_digest(&format!("{}/team/flaky:1.0", reg.host())),
        digest
    );

    // Monolithic uploads (small blobs, default chunk size): a failed PUT restarts that blob
    // with a new session.
    let failed = Arc::new(AtomicBool::new(false));
    let posts = Arc::new(AtomicUsize::new(0));
    let (fa, po) = (failed.clone(), posts.clone());
    let proxy = Proxy::start(
        reg.port,
        Arc::new(move |r: &Req| {
            if r.method == "POST" {
                po.fetch_add(1, Ordering::SeqCst);
            }
            if r.method == "PUT" && r.target.contains("digest=") && !fa.swap(true, Ordering::SeqCst)
            {
                return Action::Reply(503, vec![], String::new());
            }
            Action::Forward(None)
        }),
    );
    let reference = format!("127.0.0.1:{}/team/flaky2:1.0", proxy.port);
    let report = json(&run_ok(push_cmd(&demo, &out, &reference, "127.0.0.1")));
    assert_eq!(report["uploaded"], 3);
    assert_eq!(posts.load(Ordering::SeqCst), 4, "one blob restarted");
    assert_eq!(
        skopeo_digest(&format!("{}/team/flaky2:1.0", reg.host())),
        digest
    );
}

#[test]
fn a_registry_dying_mid_push_is_a_clear_error_and_leaves_no_tag() {
    if !tools() {
        return;
    }
    let reg = Registry::start(true);
    let (demo, out, _) = built_demo();
    let uploads = Arc::new(AtomicUsize::new(0));
    let dead = Arc::new(AtomicBool::new(false));
    let (up, dd) = (uploads.clone(), dead.clone());
    let rule: Rule = Arc::new(move |r: &Req| {
        if dd.load(Ordering::SeqCst) {
            return Action::Hangup;
        }
        if (r.method == "PATCH" || r.method == "PUT") && up.fetch_add(1, Ordering::SeqCst) == 1 {
            // The second upload request: the registry goes away for good.
            dd.store(true, Ordering::SeqCst);
            return Action::Hangup;
        }
        Action::Forward(None)
    });
    let proxy = Proxy::start(reg.port, rule);
    let reference = format!("127.0.0.1:{}/team/dying:1.0", proxy.port);
    let err = run_err(push_cmd(&demo, &out, &reference, "127.0.0.1").args(["--attempts", "2"]));
    let stderr = String::from_utf8_lossy(&err.stderr);
    assert!(
        stderr.contains(&format!("http://127.0.0.1:{}", proxy.port)),
        "{stderr}"
    );
    assert!(stderr.contains("blob sha256:"), "{stderr}");
    assert!(stderr.contains("failed after 2 attempts"), "{stderr}");
    // Nothing was tagged.
    assert_eq!(get_status(reg.port, "/v2/team/dying/manifests/1.0"), 404);
}

#[test]
fn bearer_token_flow_against_a_loopback_token_server() {
    if !tools() {
        return;
    }
    // The registry itself has no auth; the proxy in front demands Bearer tokens that its
    // own /token endpoint issues for our Basic login.
    let reg = Registry::start(false);
    let (demo, out, digest) = built_demo();
    let tokens_issued = Arc::new(AtomicUsize::new(0));
    let port_cell = Arc::new(AtomicUsize::new(0));
    let (issued, pc) = (tokens_issued.clone(), port_cell.clone());
    let rule: Rule = Arc::new(move |r: &Req| {
        let port = pc.load(Ordering::SeqCst);
        if r.target.starts_with("/token") {
            if r.header("authorization") != Some(basic().as_str()) {
                return Action::Reply(
                    401,
                    vec![],
                    r#"{"errors":[{"code":"UNAUTHORIZED","message":"bad login"}]}"#.into(),
                );
            }
            assert!(r.target.contains("service=fake-registry"), "{}", r.target);
            assert!(
                r.target
                    .contains("scope=repository%3Ateam%2Fbearer%3Apull%2Cpush"),
                "{}",
                r.target
            );
            let n = issued.fetch_add(1, Ordering::SeqCst) + 1;
            return Action::Reply(
                200,
                vec![],
                format!(r#"{{"token":"opaque-{n}","expires_in":300}}"#),
            );
        }
        let n = issued.load(Ordering::SeqCst);
        if n > 0 && r.header("authorization") == Some(format!("Bearer opaque-{n}").as_str()) {
            return Action::Forward(Some(String::new()));
        }
        Action::Reply(
            401,
            vec![(
                "WWW-Authenticate".into(),
                format!(
                    r#"Bearer realm="http://127.0.0.1:{port}/token",service="fake-registry",scope="repository:team/bearer:pull""#
                ),
            )],
            r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#.into(),
        )
    });
    let proxy = Proxy::start(reg.port, rule);
    port_cell.store(usize::from(proxy.port), Ordering::SeqCst);
    let reference = format!("127.0.0.1:{}/team/bearer:1.0", proxy.port);
    let report = json(&run_ok(push_cmd(&demo, &out, &reference, "127.0.0.1")));
    assert_eq!(report["digest"], digest.as_str());
    assert_eq!(report["uploaded"], 3);
    assert_eq!(
        tokens_issued.load(Ordering::SeqCst),
        1,
        "one token, cached for the whole push"
    );
    assert_eq!(get_status(reg.port, "/v2/team/bearer/manifests/1.0"), 200);

    let mut c = compose(&demo.store);
    c.args(["push"])
        .arg(&out)
        .arg(&reference)
        .args(["--insecure", "127.0.0.1", "--tag", "1.0"]);
    let stderr = String::from_utf8_lossy(&run_err(with_login(c, "nope")).stderr).to_string();
    assert!(
        stderr.contains("token") && stderr.contains("401"),
        "{stderr}"
    );
}

fn base64url(data: &[u8]) -> String {
    base64(data)
        .trim_end_matches('=')
        .replace('+', "-")
        .replace('/', "_")
}

fn query_values(target: &str, key: &str) -> Vec<String> {
    let decode = |v: &str| {
        let b = v.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'%' && i + 2 < b.len() {
                let h = u8::from_str_radix(&v[i + 1..i + 3], 16).unwrap();
                out.push(h);
                i += 3;
            } else {
                out.push(if b[i] == b'+' { b' ' } else { b[i] });
                i += 1;
            }
        }
        String::from_utf8(out).unwrap()
    };
    target
        .split_once('?')
        .map(|(_, q)| q)
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .filter(|(k, _)| *k == key)
        .map(|(_, v)| decode(v))
        .collect()
}

/// A JWT (RS256, the certificate in `x5c`) granting the requested scopes, as a token
/// server for docker-registry issues it; signed with `openssl dgst`.
fn sign_token(key: &Path, cert_der_b64: &str, scopes: &[String], dir: &Path) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let access: Vec<serde_json::Value> = scopes
        .iter()
        .filter_map(|s| {
            let mut parts = s.splitn(3, ':');
            let (kind, name, actions) = (parts.next()?, parts.next()?, parts.next()?);
            Some(serde_json::json!({"type": kind, "name": name, "actions": actions.split(',').collect::<Vec<_>>()}))
        })
        .collect();
    let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "x5c": [cert_der_b64]});
    let claims = serde_json::json!({
        "iss": "test-issuer", "sub": USER, "aud": "test-registry",
        "exp": now + 600, "nbf": now - 10, "iat": now - 10,
        "jti": format!("jti-{now}-{}", scopes.len()), "access": access,
    });
    let signing_input = format!(
        "{}.{}",
        base64url(header.to_string().as_bytes()),
        base64url(claims.to_string().as_bytes())
    );
    let input = dir.join(format!("jwt-input-{}", std::process::id()));
    std::fs::write(&input, &signing_input).unwrap();
    let out = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(key)
        .arg(&input)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    format!("{signing_input}.{}", base64url(&out.stdout))
}

#[test]
fn bearer_tokens_from_a_jwt_token_server_for_a_real_token_auth_registry() {
    if !tools() || !require("openssl") {
        return;
    }
    let keys = tempfile::tempdir().unwrap();
    let (key, cert) = (keys.path().join("key.pem"), keys.path().join("cert.pem"));
    run_ok(
        Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=test-issuer",
                "-keyout",
            ])
            .arg(&key)
            .arg("-out")
            .arg(&cert),
    );
    let der = Command::new("openssl")
        .args(["x509", "-outform", "DER", "-in"])
        .arg(&cert)
        .output()
        .unwrap();
    assert!(der.status.success());
    let cert_b64 = base64(&der.stdout);
    let issued = Arc::new(AtomicUsize::new(0));
    let (iss, key2, dir2) = (issued.clone(), key.clone(), keys.path().to_path_buf());
    let token_server = Proxy::start(
        0,
        Arc::new(move |r: &Req| {
            if r.header("authorization") != Some(basic().as_str()) {
                return Action::Reply(401, vec![], r#"{"details":"bad login"}"#.into());
            }
            assert_eq!(query_values(&r.target, "service"), ["test-registry"]);
            let scopes = query_values(&r.target, "scope");
            iss.fetch_add(1, Ordering::SeqCst);
            let token = sign_token(&key2, &cert_b64, &scopes, &dir2);
            Action::Reply(
                200,
                vec![("Content-Type".into(), "application/json".into())],
                format!(r#"{{"token":"{token}","expires_in":600}}"#),
            )
        }),
    );
    let reg = Registry::start_with(Auth::Token {
        realm: format!("http://127.0.0.1:{}/token", token_server.port),
        cert,
    });
    let (demo, out, digest) = built_demo();
    let reference = format!("{}/team/tok:1.0", reg.host());
    let report = json(&run_ok(push_cmd(&demo, &out, &reference, "127.0.0.1")));
    assert_eq!(report["digest"], digest.as_str());
    assert_eq!(report["uploaded"], 3);
    let n = issued.load(Ordering::SeqCst);
    assert!(
        (1..=2).contains(&n),
        "{n} tokens: one per scope set, cached"
    );
    // Pushed again: still authorized, nothing sent.
    let again = json(&run_ok(push_cmd(&demo, &out, &reference, "127.0.0.1")));
    assert_eq!(again["uploaded"], 0);

    let mut c = compose(&demo.store);
    c.args(["push"])
        .arg(&out)
        .arg(&reference)
        .args(["--insecure", "127.0.0.1"]);
    let stderr = String::from_utf8_lossy(&run_err(with_login(c, "nope")).stderr).to_string();
    assert!(
        stderr.contains("token") && stderr.contains("401"),
        "{stderr}"
    );
}

#[test]
fn a_multi_megabyte_layer_goes_up_in_bounded_chunks() {
    if !tools() {
        return;
    }
    let reg = Registry::start(true);
    let demo = Demo::new();
    // 3 MiB of incompressible bytes in the base layer.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let big: Vec<u8> = (0..3 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[0]
        })
        .collect();
    write(&demo.src.join("tree/big.bin"), &big);
    let out = demo.path("out");
    let digest = run_ok(demo.build(&out)).trim().to_string();
    let patches = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = patches.clone();
    let proxy = Proxy::start(
        reg.port,
        Arc::new(move |r: &Req| {
            if r.method == "PATCH" {
                seen.lock().unwrap().push(r.body.len());
            }
            Action::Forward(None)
        }),
    );
    let reference = format!("127.0.0.1:{}/team/big:1.0", proxy.port);
    let report = json(&run_ok(
        push_cmd(&demo, &out, &reference, "127.0.0.1").args(["--chunk-size", "1048576"]),
    ));
    assert_eq!(report["digest"], digest.as_str());
    let sizes = patches.lock().unwrap().clone();
    assert!(sizes.len() >= 4, "{sizes:?}");
    assert!(sizes.iter().all(|s| *s <= 1 << 20), "{sizes:?}");
    let copy = demo.path("copy");
    run_ok(Command::new("skopeo").args([
        "copy",
        "-q",
        "--src-tls-verify=false",
        "--src-creds",
        &format!("{USER}:{PASSWORD}"),
        &format!("docker://{}/team/big:1.0", reg.host()),
        &format!("oci:{}:pulled", copy.display()),
    ]));
    let pulled = Layout::open(&copy);
    assert_eq!(pulled.manifest_digest, digest);
    pulled.check_diff_ids();
}

/// Copies every blob of the layout `from` into `to/blobs/sha256`.
fn copy_blobs(from: &Path, to: &Path) {
    let dst = to.join("blobs/sha256");
    std::fs::create_dir_all(&dst).unwrap();
    for e in std::fs::read_dir(from.join("blobs/sha256")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dst.join(e.file_name())).unwrap();
    }
}

#[test]
fn an_image_index_goes_up_manifests_first_blobs_in_parallel_and_skopeo_copies_it_back() {
    if !tools() {
        return;
    }
    let reg = Registry::start(true);
    let demo = Demo::new();
    let amd = demo.path("amd64");
    let amd_digest = run_ok(demo.build(&amd)).trim().to_string();
    let recipe = demo.src.join("demo.kdl");
    let text = std::fs::read_to_string(&recipe).unwrap();
    std::fs::write(
        &recipe,
        text.replacen(
            "image \"demo\" {",
            "image \"demo\" {\n    platform \"linux/arm64\"",
            1,
        ),
    )
    .unwrap();
    let arm = demo.path("arm64");
    let arm_digest = run_ok(demo.build(&arm)).trim().to_string();
    assert_ne!(amd_digest, arm_digest);

    // A two-platform layout: the image index, tagged, lists both manifests.
    let both = demo.path("both");
    copy_blobs(&amd, &both);
    copy_blobs(&arm, &both);
    std::fs::write(both.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let entry = |dir: &Path, arch: &str| {
        let l = Layout::open(dir);
        let size = std::fs::metadata(l.blob_path(&l.manifest_digest))
            .unwrap()
            .len();
        serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": l.manifest_digest, "size": size,
            "platform": {"architecture": arch, "os": "linux"},
        })
    };
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [entry(&amd, "amd64"), entry(&arm, "arm64")],
    }))
    .unwrap();
    let index_digest = format!("sha256:{}", sha256_hex(&index));
    std::fs::write(both.join("blobs/sha256").join(sha256_hex(&index)), &index).unwrap();
    std::fs::write(
        both.join("index.json"),
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [{
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "digest": index_digest, "size": index.len(),
                "annotations": {"org.opencontainers.image.ref.name": "1.0"},
            }],
        }))
        .unwrap(),
    )
    .unwrap();

    let reference = format!("{}/team/multi:1.0", reg.host());
    let pushed = json(&run_ok(
        push_cmd(&demo, &both, &reference, "127.0.0.1").args(["--push-jobs", "3"]),
    ));
    assert_eq!(pushed["digest"], index_digest.as_str(), "{pushed}");
    assert_eq!(pushed["manifests"], 2, "{pushed}");
    // Two configs, the arch-specific layers; layers with identical bytes go up once.
    let blobs: std::collections::BTreeSet<String> = [&amd, &arm]
        .iter()
        .flat_map(|d| {
            let l = Layout::open(d);
            let mut v: Vec<String> = l.layers().into_iter().map(|(_, d)| d).collect();
            v.push(l.manifest["config"]["digest"].as_str().unwrap().to_string());
            v
        })
        .collect();
    assert_eq!(pushed["uploaded"], blobs.len(), "{pushed}");

    // The registry serves our index, byte for byte, and each platform's manifest.
    let raw = skopeo_raw(&reference);
    assert_eq!(
        format!("sha256:{}", sha256_hex(raw.as_bytes())),
        index_digest
    );
    let copy = demo.path("copy");
    run_ok(Command::new("skopeo").args([
        "copy",
        "-q",
        "--all",
        "--src-tls-verify=false",
        "--src-creds",
        &format!("{USER}:{PASSWORD}"),
        &format!("docker://{reference}"),
        &format!("oci:{}:pulled", copy.display()),
    ]));
    let pulled: serde_json::Value =
        serde_json::from_slice(&std::fs::read(copy.join("index.json")).unwrap()).unwrap();
    assert_eq!(pulled["manifests"][0]["digest"], index_digest.as_str());
    for d in [&amd_digest, &arm_digest] {
        let blob = copy
            .join("blobs/sha256")
            .join(d.trim_start_matches("sha256:"));
        assert!(blob.is_file(), "{d} not pulled");
    }

    // Again: nothing is uploaded, the same index digest.
    let again = json(&run_ok(push_cmd(&demo, &both, &reference, "127.0.0.1")));
    assert_eq!(again["uploaded"], 0, "{again}");
    assert_eq!(again["digest"], index_digest.as_str());
}

#[test]
fn build_push_of_two_platforms_pushes_each_manifest_then_the_image_index() {
    if !tools() {
        return;
    }
    let reg = Registry::start(true);
    let demo = Demo::new();
    let reference = format!("{}/team/multi-built:1.0", reg.host());
    let mut build = demo.build(&demo.path("both"));
    build.args([
        "--platform",
        "linux/amd64,linux/arm64",
        "--push",
        &reference,
        "--insecure",
        &reg.host(),
        "--json",
    ]);
    let built = json(&run_ok(with_login(build, PASSWORD)));
    let index = built["index"].as_str().unwrap();
    assert_eq!(built["push"]["digest"], index, "{built}");
    assert_eq!(built["push"]["manifests"], 2, "{built}");
    // The registry serves the index we wrote; skopeo resolves it (the Digest of the tag).
    assert_eq!(skopeo_digest(&reference), index);
    let raw = skopeo_raw(&reference);
    assert_eq!(format!("sha256:{}", sha256_hex(raw.as_bytes())), index);
}
