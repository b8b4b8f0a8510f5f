//! Test support for composer's end-to-end tests: the `compose` binary, temporary
//! workspaces, and readers that check images independently of composer's own code
//! (decompress layers and hash them, list tar entries).
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use sha2::{Digest as _, Sha256};

/// The workspace root.
#[must_use]
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Path to a `compose` binary built from this checkout (built once per test process).
#[must_use]
pub fn compose_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Ok(p) = std::env::var("COMPOSE_BIN") {
            return PathBuf::from(p);
        }
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let out = Command::new(cargo)
            .args([
                "build",
                "-q",
                "-p",
                "composer-cli",
                "--bin",
                "compose",
                "--message-format",
                "short",
            ])
            .current_dir(workspace())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "cargo build failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let target = std::env::var("CARGO_TARGET_DIR")
            .map_or_else(|_| workspace().join("target"), PathBuf::from);
        target.join("debug/compose")
    })
    .clone()
}

/// A `compose` command with a clean, fixed environment (no inherited store or epoch).
#[must_use]
pub fn compose(store: &Path) -> Command {
    let mut c = Command::new(compose_bin());
    c.env_remove("SOURCE_DATE_EPOCH")
        .env_remove("COMPOSE_STORE")
        .arg("--store")
        .arg(store);
    c
}

/// Runs a command, asserting success; returns stdout.
pub fn run_ok(mut c: impl std::borrow::BorrowMut<Command>) -> String {
    let c = c.borrow_mut();
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{c:?} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs a command, asserting failure; returns its output.
pub fn run_err(mut c: impl std::borrow::BorrowMut<Command>) -> Output {
    let c = c.borrow_mut();
    let out = c.output().unwrap();
    assert!(
        !out.status.success(),
        "{c:?} unexpectedly succeeded:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Whether a tool is on PATH.
#[must_use]
pub fn have(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Fails the test with a clear message when a validator is missing, unless
/// `COMPOSE_ALLOW_MISSING_TOOLS=1` (developer machines without the validators).
#[must_use]
pub fn require(tool: &str) -> bool {
    if have(tool) {
        return true;
    }
    assert!(
        std::env::var("COMPOSE_ALLOW_MISSING_TOOLS").is_ok_and(|v| v == "1"),
        "{tool} is not installed; .ci/run installs it (set COMPOSE_ALLOW_MISSING_TOOLS=1 to skip)"
    );
    eprintln!("skipping: {tool} not installed");
    false
}

/// sha256 hex of bytes.
#[must_use]
pub fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// A parsed OCI layout directory, read with serde_json only (not composer's types).
pub struct Layout {
    /// Root dir.
    pub dir: PathBuf,
    /// index.json.
    pub index: serde_json::Value,
    /// The first manifest.
    pub manifest: serde_json::Value,
    /// Its digest.
    pub manifest_digest: String,
    /// The config.
    pub config: serde_json::Value,
}

impl Layout {
    /// Reads `dir`.
    #[must_use]
    pub fn open(dir: &Path) -> Self {
        let index: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
        let manifest_digest = index["manifests"][0]["digest"]
            .as_str()
            .unwrap()
            .to_string();
        Self::with_manifest(dir, index, manifest_digest)
    }

    /// Reads the image of `platform` (`linux/arm64`) of a multi-platform layout: `index.json`
    /// names an image index, whose entry with that `platform` names the manifest.
    #[must_use]
    pub fn open_platform(dir: &Path, platform: &str) -> Self {
        let index: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
        let entry = &index["manifests"][0];
        assert_eq!(
            entry["mediaType"], "application/vnd.oci.image.index.v1+json",
            "index.json does not point at an image index: {index}"
        );
        let image_index: serde_json::Value =
            serde_json::from_slice(&Self::blob_at(dir, entry["digest"].as_str().unwrap())).unwrap();
        let found = image_index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| {
                let p = &m["platform"];
                let mut name = format!(
                    "{}/{}",
                    p["os"].as_str().unwrap(),
                    p["architecture"].as_str().unwrap()
                );
                if let Some(v) = p["variant"].as_str() {
                    name = format!("{name}/{v}");
                }
                name == platform
            })
            .unwrap_or_else(|| panic!("no {platform} in {image_index}"));
        let manifest_digest = found["digest"].as_str().unwrap().to_string();
        Self::with_manifest(dir, index, manifest_digest)
    }

    fn with_manifest(dir: &Path, index: serde_json::Value, manifest_digest: String) -> Self {
        let manifest: serde_json::Value =
            serde_json::from_slice(&Self::blob_at(dir, &manifest_digest)).unwrap();
        let config: serde_json::Value = serde_json::from_slice(&Self::blob_at(
            dir,
            manifest["config"]["digest"].as_str().unwrap(),
        ))
        .unwrap();
        Self {
            dir: dir.to_path_buf(),
            index,
            manifest,
            manifest_digest,
            config,
        }
    }

    fn blob_at(dir: &Path, digest: &str) -> Vec<u8> {
        let hexpart = digest.strip_prefix("sha256:").unwrap();
        let bytes = std::fs::read(dir.join("blobs/sha256").join(hexpart)).unwrap();
        assert_eq!(
            sha256_hex(&bytes),
            hexpart,
            "blob {digest} does not match its name"
        );
        bytes
    }

    /// Path of a blob.
    #[must_use]
    pub fn blob_path(&self, digest: &str) -> PathBuf {
        self.dir
            .join("blobs/sha256")
            .join(digest.strip_prefix("sha256:").unwrap())
    }

    /// Layer descriptors: (media type, digest).
    #[must_use]
    pub fn layers(&self) -> Vec<(String, String)> {
        self.manifest["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                (
                    l["mediaType"].as_str().unwrap().to_string(),
                    l["digest"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    /// Decompresses layer `i` with the reference decoders and returns the tar bytes.
    #[must_use]
    pub fn layer_tar(&self, i: usize) -> Vec<u8> {
        let (mt, digest) = &self.layers()[i];
        let f = std::fs::File::open(self.blob_path(digest)).unwrap();
        let mut out = Vec::new();
        if mt.ends_with("+zstd") {
            zstd::stream::read::Decoder::new(f)
                .unwrap()
                .read_to_end(&mut out)
                .unwrap();
        } else if mt.ends_with("+gzip") {
            flate2::read::MultiGzDecoder::new(f)
                .read_to_end(&mut out)
                .unwrap();
        } else {
            panic!("unexpected media type {mt}");
        }
        out
    }

    /// Checks every layer: blob digest matches, and diff_id = sha256(decompressed blob).
    pub fn check_diff_ids(&self) {
        let diff_ids = self.config["rootfs"]["diff_ids"].as_array().unwrap();
        let layers = self.layers();
        assert_eq!(diff_ids.len(), layers.len());
        for (i, (_, digest)) in layers.iter().enumerate() {
            let blob = std::fs::read(self.blob_path(digest)).unwrap();
            assert_eq!(
                format!("sha256:{}", sha256_hex(&blob)),
                *digest,
                "layer {i} blob digest"
            );
            let tar = self.layer_tar(i);
            assert_eq!(
                format!("sha256:{}", sha256_hex(&tar)),
                diff_ids[i].as_str().unwrap(),
                "layer {i} diff_id"
            );
        }
    }

    /// Entries of layer `i` as read by the `tar` crate: path → (type byte, mode, uid, gid, mtime, content or link).
    #[must_use]
    pub fn entries(&self, i: usize) -> BTreeMap<String, TarEntry> {
        tar_entries(&self.layer_tar(i))
    }
}

/// One entry as the `tar` crate reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TarEntry {
    /// Type flag.
    pub kind: u8,
    /// Mode bits.
    pub mode: u32,
    /// uid.
    pub uid: u64,
    /// gid.
    pub gid: u64,
    /// mtime.
    pub mtime: u64,
    /// File content.
    pub data: Vec<u8>,
    /// Link target.
    pub link: Option<String>,
}

/// Lists a tar's entries (in order of appearance; duplicates would collapse, so also assert
/// none with [`tar_paths`]).
#[must_use]
pub fn tar_entries(tar: &[u8]) -> BTreeMap<String, TarEntry> {
    let mut out = BTreeMap::new();
    let mut ar = tar::Archive::new(tar);
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let h = e.header().clone();
        let path = e.path().unwrap().to_string_lossy().into_owned();
        let link = e
            .link_name()
            .unwrap()
            .map(|l| l.to_string_lossy().into_owned());
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        out.insert(
            path,
            TarEntry {
                kind: h.entry_type().as_byte(),
                mode: h.mode().unwrap(),
                uid: h.uid().unwrap(),
                gid: h.gid().unwrap(),
                mtime: h.mtime().unwrap(),
                data,
                link,
            },
        );
    }
    out
}

/// Paths in archive order.
#[must_use]
pub fn tar_paths(tar: &[u8]) -> Vec<String> {
    let mut ar = tar::Archive::new(tar);
    ar.entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect()
}

/// Writes a file, creating parents.
pub fn write(path: &Path, content: impl AsRef<[u8]>) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

/// The recipe the end-to-end tests build: two layers, every `files` item kind, a config.
pub const DEMO_RECIPE: &str = r#"
image "demo" {
    tag "1.0" "latest"
    epoch "2026-11-01T00:00:00Z"
    version "1.0.0"
    source "https://example.org/demo"
}
layer "base" {
    dir "/data" mode="0775" uid=1000 gid=1000
    write "/etc/motd" "hello from composer\n"
    copy "tree" "/opt/tree"
}
layer "app" after="base" {
    copy "app/run.sh" "/usr/local/bin/run"
    symlink "/usr/bin/run" "/usr/local/bin/run"
}
config {
    env "GREETING" "hello"
    cmd "/usr/local/bin/run"
    workdir "/data"
    label "org.example.team" "ml"
    expose "8080"
    volume "/data"
}
"#;

/// Files of the demo input tree: (relative path, content, executable).
pub const DEMO_FILES: &[(&str, &str, bool)] = &[
    ("tree/a.txt", "alpha\n", false),
    ("tree/b/c.txt", "gamma\n", false),
    ("tree/b/d/e.bin", "\u{1}\u{2}\u{3}", false),
    ("tree/tool.sh", "#!/bin/sh\necho tool\n", true),
    (
        "tree/z/long-name-ünïcode-Főtanúsítvány.txt",
        "utf-8 names\n",
        false,
    ),
    ("app/run.sh", "#!/bin/sh\necho run\n", true),
];

/// Creates the demo recipe and its inputs under `dir` with a shell running under `umask`,
/// writing files in forward or reverse order (so directory order and host modes differ).
pub fn make_demo(dir: &Path, umask: &str, reverse: bool) {
    let mut files: Vec<_> = DEMO_FILES.to_vec();
    if reverse {
        files.reverse();
    }
    let mut script = format!("set -e\numask {umask}\ncd '{}'\n", dir.display());
    for (path, content, exec) in files {
        let parent = Path::new(path).parent().unwrap().display().to_string();
        script.push_str(&format!(
            "mkdir -p '{parent}'\nprintf '%s' '{content}' > '{path}'\n"
        ));
        if exec {
            script.push_str(&format!("chmod u+x '{path}'\n"));
        }
    }
    script.push_str("ln -s a.txt tree/link-to-a\n");
    std::fs::create_dir_all(dir).unwrap();
    let st = Command::new("sh").arg("-c").arg(&script).status().unwrap();
    assert!(st.success());
    std::fs::write(dir.join("demo.kdl"), DEMO_RECIPE).unwrap();
}

/// The demo recipe in a fresh temporary directory, with a store beside it.
pub struct Demo {
    /// The temporary directory (removed on drop).
    pub dir: tempfile::TempDir,
    /// The recipe's directory (`demo.kdl` and its inputs).
    pub src: PathBuf,
    /// The store directory.
    pub store: PathBuf,
}

impl Demo {
    /// Creates the demo inputs with umask 022 in forward order.
    #[must_use]
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        make_demo(&src, "022", false);
        let store = dir.path().join("store");
        Self { dir, src, store }
    }

    /// A path inside the temporary directory.
    #[must_use]
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `compose --store STORE build SRC/demo.kdl -o OUT`.
    #[must_use]
    pub fn build(&self, out: &Path) -> Command {
        let mut c = compose(&self.store);
        c.arg("build")
            .arg(self.src.join("demo.kdl"))
            .arg("-o")
            .arg(out);
        c
    }
}

impl Default for Demo {
    fn default() -> Self {
        Self::new()
    }
}
pub mod debrepo;
pub mod wheels;

/// Whether tests against the live Debian mirror and PyPI may run (`COMPOSE_OFFLINE=1` skips).
#[must_use]
pub fn live_allowed() -> bool {
    if std::env::var("COMPOSE_OFFLINE").is_ok_and(|v| v == "1") {
        eprintln!("skipping: COMPOSE_OFFLINE=1");
        return false;
    }
    true
}

/// Copies `recipes/<name>` and the `common/debian-trixie.kdl` fragment it includes into
/// `dir`, so a lock made by the test is written there, not in the repository.
#[must_use]
pub fn copy_recipe(dir: &Path, name: &str) -> PathBuf {
    let recipes = workspace().join("recipes");
    std::fs::create_dir_all(dir.join("common")).unwrap();
    std::fs::copy(recipes.join(name), dir.join(name))
        .unwrap_or_else(|e| panic!("recipes/{name}: {e}"));
    std::fs::copy(
        recipes.join("common/debian-trixie.kdl"),
        dir.join("common/debian-trixie.kdl"),
    )
    .unwrap();
    dir.join(name)
}

/// Unpacks `TAG` of a gzip-layered OCI layout with umoci (which checks blob digests and
/// diff_ids) into `bundle`; returns the root file system.
#[must_use]
pub fn umoci_unpack(layout: &Path, tag: &str, bundle: &Path) -> PathBuf {
    run_ok(
        Command::new("umoci")
            .args(["unpack", "--image"])
            .arg(format!("{}:{tag}", layout.display()))
            .arg(bundle),
    );
    bundle.join("rootfs")
}

/// Runs `args` in an unpacked image with its own root, no network and a fresh /proc.
#[must_use]
pub fn in_image(rootfs: &Path, args: &[&str]) -> Output {
    Command::new("unshare")
        .args(["--mount", "--pid", "--fork", "--net"])
        .arg(format!("--mount-proc={}", rootfs.join("proc").display()))
        .arg("chroot")
        .arg(rootfs)
        .args(args)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        .env("LANG", "C.UTF-8")
        .output()
        .unwrap()
}

/// [`in_image`], asserting success; returns stdout.
#[must_use]
pub fn in_image_ok(rootfs: &Path, args: &[&str]) -> String {
    let out = in_image(rootfs, args);
    assert!(
        out.status.success(),
        "{args:?} in the image failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}
