//! End-to-end tests of `Store` against a real directory.
//!
//! Tests run as root in CI, so permission bits cannot make a directory unwritable; the
//! "not writable" case is tested with a root below a regular file (ENOTDIR), which fails for
//! root too.

#![allow(clippy::unwrap_used)]

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::{Arc, Barrier, mpsc};
use std::thread;
use std::time::Duration;

use composer_store::{Digest, NodeId, NodeKey, NodeRecord, RootRecord, Store, StoreError, layout};
use serde_json::json;

fn new_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    (dir, store)
}

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn tmp_entries(s: &Store) -> Vec<String> {
    entries(&s.layout().tmp_dir())
}

fn node_id(name: &str) -> NodeId {
    NodeKey::new("test", 1).str("name", name).finish()
}

fn record(blobs: &[&Digest], children: &[NodeId]) -> NodeRecord {
    NodeRecord {
        kind: "test".into(),
        blobs: blobs.iter().map(|d| (*d).clone()).collect(),
        children: children.to_vec(),
        meta: json!({"k": 1}),
    }
}

#[test]
fn open_creates_the_layout() {
    let (_dir, s) = new_store();
    let root = s.root();
    for d in [
        "v1/blobs/sha256",
        "v1/nodes",
        "v1/roots",
        "v1/tmp",
        "v1/quarantine",
    ] {
        assert!(root.join(d).is_dir(), "{d}");
    }
    assert!(root.join("v1/lock").is_file());
    let tag = fs::read_to_string(root.join("CACHEDIR.TAG")).unwrap();
    assert!(tag.starts_with("Signature: 8a477f597d28d172789f06886806bc55"));
    assert_eq!(fs::read_to_string(root.join(".gitignore")).unwrap(), "*\n");
    assert!(tmp_entries(&s).is_empty(), "the write probe is cleaned up");
    // Opening again is fine and keeps what is there.
    let (d, _) = s.put_blob_bytes(b"keep").unwrap();
    let s2 = Store::open(root).unwrap();
    assert!(s2.has_blob(&d));
}

#[test]
fn open_fails_clearly_when_root_cannot_be_created() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    fs::write(&file, b"x").unwrap();
    let root = file.join("store");
    let err = Store::open(&root).unwrap_err();
    assert!(matches!(err, StoreError::NotWritable { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains(&root.display().to_string()), "{msg}");
}

#[test]
fn blob_roundtrip() {
    let (_dir, s) = new_store();
    let (d, n) = s.put_blob_bytes(b"hello").unwrap();
    assert_eq!(d, Digest::of_bytes(b"hello"));
    assert_eq!(n, 5);
    assert!(s.has_blob(&d));
    assert_eq!(s.blob_size(&d).unwrap(), Some(5));
    assert_eq!(
        s.blob_path(&d),
        s.root().join("v1/blobs/sha256").join(d.hex())
    );
    let mut text = String::new();
    s.open_blob(&d).unwrap().read_to_string(&mut text).unwrap();
    assert_eq!(text, "hello");
    let mode = fs::metadata(s.blob_path(&d)).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o444);
    assert!(tmp_entries(&s).is_empty());

    // Streaming, with the right expected digest, and a second copy of existing content.
    let mut w = s.blob_writer().unwrap();
    for _ in 0..1000 {
        w.write_all(b"0123456789").unwrap();
    }
    assert_eq!(w.len(), 10_000);
    let want = Digest::of_bytes(&b"0123456789".repeat(1000));
    assert_eq!(w.commit(Some(&want)).unwrap(), (want.clone(), 10_000));
    let mut w = s.blob_writer().unwrap();
    w.write_all(&b"0123456789".repeat(1000)).unwrap();
    assert_eq!(w.commit(None).unwrap().0, want);
    assert_eq!(s.put_blob_bytes(b"hello").unwrap(), (d, 5));
    assert!(tmp_entries(&s).is_empty());
    assert_eq!(entries(&s.layout().blobs_dir()).len(), 2);
}

#[test]
fn missing_blob_is_reported_as_such() {
    let (_dir, s) = new_store();
    let d = Digest::of_bytes(b"absent");
    assert!(!s.has_blob(&d));
    assert_eq!(s.blob_size(&d).unwrap(), None);
    match s.open_blob(&d) {
        Err(StoreError::MissingBlob { digest }) => assert_eq!(digest, d),
        other => panic!("{other:?}"),
    }
}

#[test]
fn digest_mismatch_leaves_store_unchanged() {
    let (_dir, s) = new_store();
    let expected = Digest::of_bytes(b"what we wanted");
    let mut w = s.blob_writer().unwrap();
    w.set_description("download of example.deb");
    w.write_all(b"what we got").unwrap();
    match w.commit(Some(&expected)) {
        Err(e @ StoreError::DigestMismatch { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("download of example.deb"), "{msg}");
            let StoreError::DigestMismatch {
                expected: e_exp,
                actual,
                ..
            } = e
            else {
                unreachable!()
            };
            assert_eq!(e_exp, expected);
            assert_eq!(actual, Digest::of_bytes(b"what we got"));
        }
        other => panic!("{other:?}"),
    }
    assert!(entries(&s.layout().blobs_dir()).is_empty());
    assert!(tmp_entries(&s).is_empty());
    assert!(!s.has_blob(&Digest::of_bytes(b"what we got")));
}

#[test]
fn dropped_writer_leaves_no_temp() {
    let (_dir, s) = new_store();
    let mut w = s.blob_writer().unwrap();
    w.write_all(&[7u8; 100_000]).unwrap();
    assert_eq!(tmp_entries(&s).len(), 1);
    drop(w);
    assert!(tmp_entries(&s).is_empty());
    assert!(entries(&s.layout().blobs_dir()).is_empty());
}

#[test]
fn concurrent_writers_of_the_same_blob() {
    let (_dir, s) = new_store();
    let content: Arc<Vec<u8>> = Arc::new((0..300_000u32).map(|i| (i % 251) as u8).collect());
    let threads = 8;
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            // Each thread opens its own handle, as separate processes would.
            let s = Store::open(s.root()).unwrap();
            let content = Arc::clone(&content);
            let barrier = Arc::clone(&barrier);
            thread::spawn(move || {
                let mut w = s.blob_writer().unwrap();
                barrier.wait();
                for chunk in content.chunks(4096) {
                    w.write_all(chunk).unwrap();
                }
                barrier.wait();
                w.commit(None).unwrap()
            })
        })
        .collect();
    let want = Digest::of_bytes(&content);
    for h in handles {
        assert_eq!(h.join().unwrap(), (want.clone(), content.len() as u64));
    }
    assert_eq!(
        entries(&s.layout().blobs_dir()),
        vec![want.hex().to_owned()]
    );
    assert!(tmp_entries(&s).is_empty());
    let mut back = Vec::new();
    s.open_blob(&want).unwrap().read_to_end(&mut back).unwrap();
    assert_eq!(&back, content.as_ref());
}

#[test]
fn node_roundtrip_and_put_node_checks_references() {
    let (_dir, s) = new_store();
    let (b, _) = s.put_blob_bytes(b"frag").unwrap();
    let child = node_id("child");
    let parent = node_id("parent");
    assert_eq!(s.get_node(&child).unwrap(), None);

    let missing = Digest::of_bytes(b"not stored");
    let err = s
        .put_node(&child, &record(&[&b, &missing], &[]))
        .unwrap_err();
    assert!(matches!(err, StoreError::IncompleteNode { .. }), "{err:?}");
    assert!(err.to_string().contains(&missing.to_string()), "{err}");
    let err = s.put_node(&parent, &record(&[], &[child])).unwrap_err();
    assert!(err.to_string().contains(&child.to_string()), "{err}");
    assert!(entries(&s.layout().nodes_dir()).is_empty());

    let rec = record(&[&b], &[]);
    s.put_node(&child, &rec).unwrap();
    s.put_node(&parent, &record(&[], &[child])).unwrap();
    assert_eq!(s.get_node(&child).unwrap(), Some(rec.clone()));
    // Rewriting the same record is fine.
    s.put_node(&child, &rec).unwrap();
    assert!(tmp_entries(&s).is_empty());
    let path = s.layout().node(&child);
    assert_eq!(path, s.root().join(format!("v1/nodes/{child}.json")));
}

#[test]
fn corrupt_node_record_is_absent_and_quarantined() {
    let (_dir, s) = new_store();
    let (b, _) = s.put_blob_bytes(b"x").unwrap();
    let id = node_id("n");
    s.put_node(&id, &record(&[&b], &[])).unwrap();
    let path = s.layout().node(&id);
    let good = fs::read(&path).unwrap();

    // Truncated.
    fs::remove_file(&path).unwrap();
    fs::write(&path, &good[..good.len() / 2]).unwrap();
    assert_eq!(s.get_node(&id).unwrap(), None);
    assert!(!path.exists());
    assert_eq!(entries(&s.layout().quarantine_dir()).len(), 1);

    // Garbage.
    fs::write(&path, b"\0\xff garbage").unwrap();
    assert_eq!(s.get_node(&id).unwrap(), None);
    assert!(!path.exists());
    let q = entries(&s.layout().quarantine_dir());
    assert_eq!(q.len(), 2);
    assert!(
        q.iter().all(|n| n.starts_with(&format!("node.{id}.json."))),
        "{q:?}"
    );
}

#[test]
fn verify_detects_and_quarantines_a_flipped_byte() {
    let (_dir, s) = new_store();
    let (good, _) = s.put_blob_bytes(b"good content").unwrap();
    let (bad, _) = s.put_blob_bytes(b"soon corrupt").unwrap();
    let clean = s.verify(true).unwrap();
    assert!(clean.is_ok(), "{clean:?}");
    assert_eq!(clean.blobs_checked, 2);
    assert_eq!(clean.bytes_checked, 24);

    let path = s.blob_path(&bad);
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    let mut bytes = fs::read(&path).unwrap();
    bytes[3] ^= 0x01;
    fs::write(&path, &bytes).unwrap();

    // Report only.
    let r = s.verify(false).unwrap();
    assert_eq!(r.problems.len(), 1, "{r:?}");
    assert!(!r.problems[0].quarantined);
    assert!(s.has_blob(&bad));

    // Quarantine.
    let r = s.verify(true).unwrap();
    assert_eq!(r.problems.len(), 1, "{r:?}");
    let p = &r.problems[0];
    assert_eq!(p.path, path);
    assert!(p.quarantined);
    assert!(p.what.contains("hashes to"), "{}", p.what);
    assert!(!s.has_blob(&bad));
    assert!(s.has_blob(&good));
    assert_eq!(entries(&s.layout().quarantine_dir()).len(), 1);
    assert!(s.verify(true).unwrap().is_ok());
}

#[test]
fn verify_quarantines_nodes_with_missing_references() {
    let (_dir, s) = new_store();
    let (b1, _) = s.put_blob_bytes(b"one").unwrap();
    let (b2, _) = s.put_blob_bytes(b"two").unwrap();
    let leaf = node_id("leaf");
    let mid = node_id("mid");
    let top = node_id("top");
    let other = node_id("other");
    s.put_node(&leaf, &record(&[&b1], &[])).unwrap();
    s.put_node(&mid, &record(&[], &[leaf])).unwrap();
    s.put_node(&top, &record(&[&b2], &[mid])).unwrap();
    s.put_node(&other, &record(&[&b2], &[])).unwrap();
    s.set_root(
        "img",
        &RootRecord {
            nodes: vec![top],
            blobs: vec![],
            meta: json!(null),
        },
    )
    .unwrap();

    // The blob disappears behind the store's back.
    fs::remove_file(s.blob_path(&b1)).unwrap();
    let r = s.verify(true).unwrap();
    assert_eq!(r.nodes_checked, 4);
    let quarantined: Vec<_> = r.problems.iter().filter(|p| p.quarantined).collect();
    assert_eq!(quarantined.len(), 3, "{r:#?}");
    assert!(
        r.problems
            .iter()
            .any(|p| p.path == s.layout().node(&leaf) && p.what.contains(&b1.to_string()))
    );
    // The root is reported, not moved.
    assert!(
        r.problems
            .iter()
            .any(|p| !p.quarantined && p.what.contains("root \"img\"")),
        "{r:#?}"
    );
    for id in [leaf, mid, top] {
        assert_eq!(s.get_node(&id).unwrap(), None);
    }
    assert!(s.get_node(&other).unwrap().is_some());
}

#[test]
fn gc_keeps_reachable_and_removes_the_rest() {
    let (_dir, s) = new_store();
    let put = |b: &[u8]| s.put_blob_bytes(b).unwrap().0;
    let (leaf_b, top_b, root_b, loose_b, dead_b) = (
        put(b"leaf"),
        put(b"top"),
        put(b"root"),
        put(b"loose"),
        put(b"dead-node-blob"),
    );
    let leaf = node_id("leaf");
    let top = node_id("top");
    let dead = node_id("dead");
    s.put_node(&leaf, &record(&[&leaf_b], &[])).unwrap();
    s.put_node(&top, &record(&[&top_b], &[leaf])).unwrap();
    s.put_node(&dead, &record(&[&dead_b, &leaf_b], &[leaf]))
        .unwrap();
    s.set_root(
        "img",
        &RootRecord {
            nodes: vec![top],
            blobs: vec![root_b.clone()],
            meta: json!({"from": "test"}),
        },
    )
    .unwrap();
    // Leftovers of crashed writers: a file and a directory.
    fs::write(s.layout().tmp_dir().join("blob-1-2-3"), b"partial").unwrap();
    fs::create_dir(s.layout().tmp_dir().join("junk")).unwrap();
    fs::write(s.layout().tmp_dir().join("junk/f"), b"12").unwrap();

    let before = s.du().unwrap();
    assert_eq!(before.blobs.count, 5);
    assert_eq!(before.nodes.count, 3);
    assert_eq!(before.roots.count, 1);
    assert_eq!(before.tmp, composer_store::DuCount { count: 2, bytes: 9 });
    assert_eq!(before.reachable.count, 3 + 2);
    assert_eq!(before.unreachable.count, 2 + 1);

    let dry = s.gc(true).unwrap();
    assert_eq!(
        (dry.blobs_removed, dry.nodes_removed, dry.tmp_removed),
        (2, 1, 2)
    );
    assert_eq!(s.du().unwrap().blobs.count, 5, "dry run removes nothing");
    assert_eq!(tmp_entries(&s).len(), 2);

    let r = s.gc(false).unwrap();
    assert_eq!((r.blobs_removed, r.nodes_removed, r.tmp_removed), (2, 1, 2));
    assert_eq!(r.bytes_freed, dry.bytes_freed);
    assert_eq!(r.bytes_freed, before.unreachable.bytes + before.tmp.bytes);
    for d in [&leaf_b, &top_b, &root_b] {
        assert!(s.has_blob(d), "{d}");
    }
    assert!(!s.has_blob(&loose_b));
    assert!(!s.has_blob(&dead_b));
    assert!(s.get_node(&top).unwrap().is_some());
    assert!(s.get_node(&leaf).unwrap().is_some());
    assert_eq!(s.get_node(&dead).unwrap(), None);
    assert!(tmp_entries(&s).is_empty());
    let after = s.du().unwrap();
    assert_eq!(after.unreachable.count, 0);
    assert!(s.verify(false).unwrap().is_ok());

    // Without roots, everything goes.
    assert!(s.remove_root("img").unwrap());
    assert!(!s.remove_root("img").unwrap());
    let r = s.gc(false).unwrap();
    assert_eq!((r.blobs_removed, r.nodes_removed), (3, 2));
    assert!(entries(&s.layout().blobs_dir()).is_empty());
}

#[test]
fn corrupt_root_stops_gc() {
    let (_dir, s) = new_store();
    let (b, _) = s.put_blob_bytes(b"precious").unwrap();
    fs::write(s.layout().roots_dir().join("broken.json"), b"{not json").unwrap();
    let err = s.gc(false).unwrap_err();
    assert!(matches!(err, StoreError::CorruptRecord { .. }), "{err:?}");
    assert!(err.to_string().contains("broken.json"), "{err}");
    assert!(s.has_blob(&b));
    let r = s.verify(false).unwrap();
    assert!(r.problems.iter().any(|p| p.what.contains("does not parse")));
}

#[test]
fn root_names_are_sanitized_and_roots_roundtrip() {
    let (_dir, s) = new_store();
    let rec = RootRecord {
        nodes: vec![],
        blobs: vec![],
        meta: json!({"lockfile": "/x/compose.lock"}),
    };
    for bad in ["", ".", "..", "../escape", "a/b", "a\0b", ".hidden", "a\\b"] {
        let err = s.set_root(bad, &rec).unwrap_err();
        assert!(
            matches!(err, StoreError::BadName { .. }),
            "{bad:?}: {err:?}"
        );
    }
    assert!(entries(&s.layout().roots_dir()).is_empty());
    assert!(!s.root().parent().unwrap().join("escape.json").exists());

    s.set_root("img:latest", &rec).unwrap();
    s.set_root("b", &rec).unwrap();
    let roots = s.roots().unwrap();
    let names: Vec<_> = roots.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["b", "img:latest"]);
    assert_eq!(roots[0].1, rec);
    assert_eq!(
        s.layout().root_record("b").unwrap(),
        s.root().join("v1/roots/b.json")
    );
}

#[test]
fn exclusive_lock_waits_for_shared_holders() {
    let (_dir, s) = new_store();
    let other = Store::open(s.root()).unwrap();
    let shared = s.lock_shared().unwrap();
    let shared2 = other.lock_shared().unwrap();
    assert!(!shared.is_exclusive());
    assert!(other.try_lock_exclusive().unwrap().is_none());
    drop(shared);
    assert!(other.try_lock_exclusive().unwrap().is_none());
    drop(shared2);
    let ex = other.try_lock_exclusive().unwrap().unwrap();
    assert!(ex.is_exclusive());
    assert!(s.try_lock_exclusive().unwrap().is_none());
    drop(ex);

    // gc blocks while a build holds the shared lock.
    let shared = s.lock_shared().unwrap();
    let (tx, rx) = mpsc::channel();
    let gc_store = other.clone();
    let h = thread::spawn(move || {
        let r = gc_store.gc(false);
        tx.send(()).unwrap();
        r
    });
    assert!(rx.recv_timeout(Duration::from_millis(200)).is_err());
    drop(shared);
    rx.recv_timeout(Duration::from_secs(30)).unwrap();
    h.join().unwrap().unwrap();
}

#[test]
fn reports_serialize_to_json() {
    let (_dir, s) = new_store();
    s.put_blob_bytes(b"x").unwrap();
    let v = serde_json::to_value(s.du().unwrap()).unwrap();
    assert_eq!(v["blobs"]["count"], 1);
    let v = serde_json::to_value(s.verify(false).unwrap()).unwrap();
    assert_eq!(v["blobs_checked"], 1);
    let v = serde_json::to_value(s.gc(true).unwrap()).unwrap();
    assert_eq!(v["blobs_removed"], 1);
}

#[test]
fn default_root_uses_the_documented_precedence() {
    // Only the pure function is tested: tests share the process environment.
    let r = layout::default_root_from(None, None, Some("/home/u".as_ref())).unwrap();
    assert_eq!(r, Path::new("/home/u/.cache/compose"));
}
