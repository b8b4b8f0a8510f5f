//! Live deep-learning images: `recipes/tf-cpu.kdl` locked at test time (indexes move on),
//! built, unpacked layer by layer (each diff_id checked while streaming), and TensorFlow run
//! by the image's own `/usr/bin/python3` in a chroot with the image config's environment.
//!
//! The GPU recipes are several GiB each (tf-gpu downloads ~3.5 GB of wheels and debs,
//! pytorch-gpu ~4.2 GB), so they run only with `COMPOSE_LIVE_DL=1`: tf-gpu built twice into
//! two stores (the second empty) with one manifest digest, pytorch-gpu once; both checked
//! for the driver-facing environment, a `cuda` layer holding every nvidia wheel below
//! `framework`, no driver library in the image, and a framework that imports and finds no
//! GPU here.
//! Everything is skipped when `COMPOSE_OFFLINE=1`.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use composer_tests::*;
use sha2::{Digest as _, Sha256};

/// Whether the multi-GiB GPU images may be built (`COMPOSE_LIVE_DL=1`).
fn gpu_allowed() -> bool {
    if !live_allowed() {
        return false;
    }
    if std::env::var("COMPOSE_LIVE_DL").is_ok_and(|v| v == "1") {
        return true;
    }
    eprintln!("skipping: set COMPOSE_LIVE_DL=1 to build the GPU images (several GiB each)");
    false
}

/// Copies `recipes/<name>` and every fragment of `recipes/common/` into `dir`, so the lock
/// made by the test is written there, not in the repository.
fn copy_dl_recipe(dir: &Path, name: &str) -> PathBuf {
    let recipes = workspace().join("recipes");
    std::fs::create_dir_all(dir.join("common")).unwrap();
    for e in std::fs::read_dir(recipes.join("common")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dir.join("common").join(e.file_name())).unwrap();
    }
    std::fs::copy(recipes.join(name), dir.join(name))
        .unwrap_or_else(|e| panic!("recipes/{name}: {e}"));
    dir.join(name)
}

fn attr(line: &str, key: &str) -> String {
    let pat = format!(" {key}=\"");
    let start = line
        .find(&pat)
        .unwrap_or_else(|| panic!("no {key} in {line}"))
        + pat.len();
    let len = line[start..].find('"').unwrap();
    line[start..start + len].to_string()
}

/// A locked wheel.
struct Wheel {
    version: String,
    filename: String,
    layer: String,
}

/// Project name → wheel, from the lock's `wheel` lines.
fn locked_wheels(lock_text: &str) -> BTreeMap<String, Wheel> {
    lock_text
        .lines()
        .filter_map(|l| l.strip_prefix("wheel \""))
        .map(|rest| {
            let name = rest[..rest.find('"').unwrap()].to_string();
            let line = format!(" {rest}");
            let wheel = Wheel {
                version: attr(&line, "version"),
                filename: attr(&line, "filename"),
                layer: attr(&line, "layer"),
            };
            (name, wheel)
        })
        .collect()
}

/// `compose lock` then `compose build --locked` into `out`, one store; returns the lock text,
/// the manifest digest and the build's wall time in seconds. `lock` already fetches every
/// locked artifact into the store, so the build's time is mostly compression.
fn lock_and_build(recipe: &Path, store: &Path, out: &Path) -> (String, String, f64) {
    let t0 = Instant::now();
    run_ok(compose(store).arg("lock").arg(recipe));
    let lock_secs = t0.elapsed().as_secs_f64();
    let lock_text = std::fs::read_to_string(recipe.with_extension("lock")).unwrap();
    let t1 = Instant::now();
    let digest = run_ok(
        compose(store)
            .args(["build", "--locked"])
            .arg(recipe)
            .arg("-o")
            .arg(out),
    );
    let build_secs = t1.elapsed().as_secs_f64();
    eprintln!(
        "{}: lock (with downloads) {lock_secs:.1} s, build {build_secs:.1} s",
        recipe.display()
    );
    (lock_text, digest.trim().to_string(), build_secs)
}

/// Hashes what passes through.
struct Hashing<R> {
    inner: R,
    hash: Sha256,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
}

/// Unpacks every layer of the layout's image into `rootfs`, bottom first, streaming: each
/// blob's sha256 is its descriptor digest and each decompressed stream's its diff_id.
fn unpack(layout: &Layout, rootfs: &Path) {
    std::fs::create_dir_all(rootfs).unwrap();
    let diff_ids = layout.config["rootfs"]["diff_ids"].as_array().unwrap();
    let layers = layout.layers();
    assert_eq!(diff_ids.len(), layers.len());
    for (i, (media_type, digest)) in layers.iter().enumerate() {
        assert!(media_type.ends_with("+zstd"), "{media_type}");
        let blob = Hashing {
            inner: std::fs::File::open(layout.blob_path(digest)).unwrap(),
            hash: Sha256::new(),
        };
        let mut tar_stream = Hashing {
            inner: zstd::stream::read::Decoder::new(blob).unwrap(),
            hash: Sha256::new(),
        };
        {
            let mut ar = tar::Archive::new(&mut tar_stream);
            ar.set_preserve_permissions(true);
            ar.set_overwrite(true);
            ar.unpack(rootfs)
                .unwrap_or_else(|e| panic!("layer {i} ({digest}): {e}"));
        }
        // The end-of-archive blocks the tar reader stopped at belong to the diff_id too.
        std::io::copy(&mut tar_stream, &mut std::io::sink()).unwrap();
        assert_eq!(
            format!("sha256:{}", hex::encode(tar_stream.hash.finalize())),
            diff_ids[i].as_str().unwrap(),
            "layer {i} diff_id"
        );
        // The decoder's buffer holds bytes already hashed; drain it, then the file.
        let mut rest = tar_stream.inner.finish();
        std::io::copy(&mut rest, &mut std::io::sink()).unwrap();
        let blob = rest.into_inner();
        assert_eq!(
            format!("sha256:{}", hex::encode(blob.hash.finalize())),
            *digest,
            "layer {i} blob digest"
        );
    }
}

/// The image config's `Env` as (key, value) pairs, in order.
fn image_env(layout: &Layout) -> Vec<(String, String)> {
    layout.config["config"]["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            let kv = v.as_str().unwrap();
            let (k, v) = kv.split_once('=').unwrap();
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// The layers' names, bottom first, from the config history (`composer: layer NAME`).
fn layer_names(layout: &Layout) -> Vec<String> {
    layout.config["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            h["created_by"]
                .as_str()
                .unwrap()
                .strip_prefix("composer: layer ")
                .unwrap()
                .to_string()
        })
        .collect()
}

/// Runs `/usr/bin/python3 -c CODE` in the unpacked image, as a container would: its own root,
/// a fresh /proc, the host's /dev (TensorFlow reads /dev/urandom), no network, and exactly
/// the image config's environment. Returns stdout; panics with both streams on failure.
fn python_in_image(rootfs: &Path, env: &[(String, String)], code: &str) -> String {
    std::fs::create_dir_all(rootfs.join("dev")).unwrap();
    let t = Instant::now();
    let out = Command::new("unshare")
        .args(["--mount", "--pid", "--fork", "--net"])
        .arg(format!("--mount-proc={}", rootfs.join("proc").display()))
        .args([
            "sh",
            "-c",
            r#"mount --bind /dev "$1/dev" && exec chroot "$1" /usr/bin/python3 -c "$2""#,
            "sh",
        ])
        .arg(rootfs)
        .arg(code)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "python3 -c {code:?} in the image failed ({}):\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "ran in the image in {:.1} s: {}",
        t.elapsed().as_secs_f64(),
        stdout.trim()
    );
    stdout
}

/// Files under `root` whose name says they are the NVIDIA driver's (the host supplies those).
fn driver_libraries(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            let ft = e.file_type().unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            if ft.is_dir() {
                stack.push(e.path());
            } else if name.starts_with("libcuda.so")
                || name.starts_with("libnvidia-")
                || name.starts_with("libnvcuvid.so")
            {
                found.push(e.path());
            }
        }
    }
    found
}

/// What every CUDA image must satisfy, whatever its framework: the driver-facing config,
/// one `cuda` layer below `framework` that holds every nvidia wheel of one CUDA major, a tag
/// and NVIDIA_REQUIRE_CUDA that name the locked CUDA line, /usr/local/nvidia/lib64
/// searchable, and no driver library shipped.
fn check_cuda_image(layout: &Layout, rootfs: &Path, wheels: &BTreeMap<String, Wheel>) {
    assert_eq!(
        layer_names(layout),
        ["system", "python", "cuda", "framework"]
    );
    let nvidia: Vec<_> = wheels
        .iter()
        .filter(|(n, _)| n.starts_with("nvidia-"))
        .collect();
    assert!(nvidia.len() >= 10, "only {} nvidia wheels", nvidia.len());
    for (name, w) in &nvidia {
        assert_eq!(w.layer, "cuda", "{name} is in layer {}", w.layer);
        assert!(name.ends_with("-cu12"), "{name}: not a CUDA 12 wheel");
    }
    let runtime = &wheels["nvidia-cuda-runtime-cu12"].version;
    let mut parts = runtime.split('.');
    let (major, minor) = (parts.next().unwrap(), parts.next().unwrap());
    let tags: Vec<&str> = layout.index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            m["annotations"]["org.opencontainers.image.ref.name"]
                .as_str()
                .unwrap()
        })
        .collect();
    let cu = format!("-cu{major}{minor}-");
    assert!(
        tags.iter().any(|t| t.contains(&cu)),
        "no tag names the locked CUDA runtime {runtime} ({cu}): {tags:?}"
    );

    let env: BTreeMap<_, _> = image_env(layout).into_iter().collect();
    assert_eq!(env["NVIDIA_DRIVER_CAPABILITIES"], "compute,utility");
    assert_eq!(env["NVIDIA_REQUIRE_CUDA"], format!("cuda>={major}.{minor}"));
    assert!(
        env["LD_LIBRARY_PATH"]
            .split(':')
            .any(|d| d == "/usr/local/nvidia/lib64"),
        "{env:?}"
    );
    assert!(!env.contains_key("NVIDIA_VISIBLE_DEVICES"), "{env:?}");

    let conf_d = rootfs.join("etc/ld.so.conf.d");
    assert!(conf_d.is_dir(), "no /etc/ld.so.conf.d");
    let listed = std::fs::read_dir(&conf_d).unwrap().any(|e| {
        std::fs::read_to_string(e.unwrap().path())
            .unwrap_or_default()
            .lines()
            .any(|l| l.trim() == "/usr/local/nvidia/lib64")
    });
    assert!(
        listed,
        "no file in /etc/ld.so.conf.d lists /usr/local/nvidia/lib64"
    );
    let driver = driver_libraries(rootfs);
    assert!(
        driver.is_empty(),
        "driver libraries in the image: {driver:?}"
    );
}

#[test]
fn tf_cpu_builds_and_computes_in_the_image() {
    if !live_allowed() {
        return;
    }
    let started = Instant::now();
    let t = tempfile::tempdir().unwrap();
    let recipe = copy_dl_recipe(&t.path().join("recipe"), "tf-cpu.kdl");
    let out = t.path().join("out");
    let (lock_text, digest, _) = lock_and_build(&recipe, &t.path().join("store"), &out);
    let wheels = locked_wheels(&lock_text);
    let tf = wheels
        .get("tensorflow-cpu")
        .unwrap_or_else(|| panic!("tensorflow-cpu is not locked:\n{lock_text}"));
    assert!(
        tf.filename.contains("-cp313-") && tf.filename.ends_with("_x86_64.whl"),
        "{}",
        tf.filename
    );
    assert_eq!(tf.layer, "framework");
    assert!(
        !wheels.keys().any(|n| n.starts_with("nvidia-")),
        "tf-cpu pulls nvidia wheels:\n{lock_text}"
    );

    let layout = Layout::open(&out);
    assert_eq!(layout.manifest_digest, digest);
    assert_eq!(layer_names(&layout), ["system", "python", "framework"]);
    let rootfs = t.path().join("rootfs");
    unpack(&layout, &rootfs);
    assert!(driver_libraries(&rootfs).is_empty());

    let printed = python_in_image(
        &rootfs,
        &image_env(&layout),
        "import tensorflow as tf; print(tf.__version__, float(tf.reduce_sum(tf.ones([1000,1000]))))",
    );
    let last = printed.lines().last().unwrap_or_default();
    assert_eq!(last, format!("{} 1000000.0", tf.version), "{printed}");
    eprintln!(
        "tf-cpu: lock + build + unpack + run in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn tf_gpu_builds_reproducibly_and_imports_without_a_gpu() {
    if !gpu_allowed() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let recipe = copy_dl_recipe(&t.path().join("recipe"), "tf-gpu.kdl");
    let out_a = t.path().join("a");
    let store_a = t.path().join("store-a");
    let (lock_text, digest_a, _) = lock_and_build(&recipe, &store_a, &out_a);
    // Each store holds ~7 GB of wheels and fragments: one at a time.
    std::fs::remove_dir_all(&store_a).unwrap();
    let wheels = locked_wheels(&lock_text);
    let tf = wheels
        .get("tensorflow")
        .unwrap_or_else(|| panic!("tensorflow is not locked:\n{lock_text}"));
    assert_eq!(tf.layer, "framework");

    // The same lock in an empty store, one job: the same image.
    let store_b = t.path().join("store-b");
    let out_b = t.path().join("b");
    let digest_b = run_ok(
        compose(&store_b)
            .args(["build", "--locked", "-j", "1"])
            .arg(&recipe)
            .arg("-o")
            .arg(&out_b),
    );
    assert_eq!(digest_a, digest_b.trim(), "same lock, different stores");
    std::fs::remove_dir_all(&store_b).unwrap();
    std::fs::remove_dir_all(&out_b).unwrap();

    let layout = Layout::open(&out_a);
    let rootfs = t.path().join("rootfs");
    unpack(&layout, &rootfs);
    check_cuda_image(&layout, &rootfs, &wheels);
    let printed = python_in_image(
        &rootfs,
        &image_env(&layout),
        "import tensorflow as tf; print(tf.__version__, tf.config.list_physical_devices('GPU'))",
    );
    let last = printed.lines().last().unwrap_or_default();
    assert_eq!(last, format!("{} []", tf.version), "{printed}");
}

#[test]
fn pytorch_gpu_builds_and_computes_on_the_cpu() {
    if !gpu_allowed() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let recipe = copy_dl_recipe(&t.path().join("recipe"), "pytorch-gpu.kdl");
    let out = t.path().join("out");
    let store = t.path().join("store");
    let (lock_text, _, _) = lock_and_build(&recipe, &store, &out);
    // ~7 GB: gone before the ~7 GB rootfs is unpacked.
    std::fs::remove_dir_all(&store).unwrap();
    let wheels = locked_wheels(&lock_text);
    let torch = wheels
        .get("torch")
        .unwrap_or_else(|| panic!("torch is not locked:\n{lock_text}"));
    assert_eq!(torch.layer, "framework");

    let layout = Layout::open(&out);
    let rootfs = t.path().join("rootfs");
    unpack(&layout, &rootfs);
    check_cuda_image(&layout, &rootfs, &wheels);
    let runtime = &wheels["nvidia-cuda-runtime-cu12"].version;
    let cuda_line: String = runtime.split('.').take(2).collect::<Vec<_>>().join(".");
    let printed = python_in_image(
        &rootfs,
        &image_env(&layout),
        "import torch; a=torch.ones(512,512); \
         print(torch.__version__, float((a@a).sum()), torch.version.cuda, torch.cuda.is_available())",
    );
    let last: Vec<&str> = printed
        .lines()
        .last()
        .unwrap_or_default()
        .split(' ')
        .collect();
    // The PyPI wheel reports its CUDA flavour as a local version: 2.10.0+cu128.
    let local = format!("+cu{}", cuda_line.replace('.', ""));
    assert!(
        last.len() == 4
            && (last[0] == torch.version || last[0] == format!("{}{local}", torch.version)),
        "{printed}"
    );
    assert_eq!(
        last[1..],
        ["134217728.0", cuda_line.as_str(), "False"],
        "{printed}"
    );
}

#[test]
fn hashing_reader_hashes_what_it_reads() {
    let mut r = Hashing {
        inner: &b"abc"[..],
        hash: Sha256::new(),
    };
    let mut s = Vec::new();
    r.read_to_end(&mut s).unwrap();
    assert_eq!(s, b"abc");
    assert_eq!(
        hex::encode(r.hash.finalize()),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}
