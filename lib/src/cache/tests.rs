//! The cache's logic over an in-memory [`Remote`]: upload from one store, pull into
//! another, and the refusals (corrupt blob, lying record, unreachable registry).

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::{Arc, Mutex};

use super::*;
use crate::layer::plan::{ItemEntries, PlannedEntry};
use crate::layer::{Compression, LayerError, build_layer, plan_layer};

#[derive(Default)]
struct Mem {
    tags: Mutex<BTreeMap<String, Vec<u8>>>,
    blobs: Mutex<BTreeMap<Digest, Vec<u8>>>,
    /// Answer every request with a connection failure.
    down: Mutex<bool>,
}

#[derive(Clone, Default)]
struct MemRemote(Arc<Mem>);

impl MemRemote {
    fn check(&self) -> Result<(), CacheError> {
        if *self.0.down.lock().unwrap() {
            return Err(CacheError::Registry(RegistryError::Failed {
                registry: "mem".into(),
                what: "GET".into(),
                attempts: 1,
                cause: "connection refused".into(),
            }));
        }
        Ok(())
    }
}

impl Remote for MemRemote {
    fn describe(&self) -> String {
        "mem/cache".into()
    }
    fn has_manifest(&self, tag: &str) -> Result<bool, CacheError> {
        self.check()?;
        Ok(self.0.tags.lock().unwrap().contains_key(tag))
    }
    fn manifest(&self, tag: &str) -> Result<Option<Vec<u8>>, CacheError> {
        self.check()?;
        Ok(self.0.tags.lock().unwrap().get(tag).cloned())
    }
    fn blob_bytes(&self, digest: &Digest) -> Result<Option<Vec<u8>>, CacheError> {
        self.check()?;
        Ok(self.0.blobs.lock().unwrap().get(digest).cloned())
    }
    fn blob_to_store(&self, digest: &Digest, store: &Store) -> Result<bool, CacheError> {
        self.check()?;
        let Some(b) = self.0.blobs.lock().unwrap().get(digest).cloned() else {
            return Ok(false);
        };
        let mut w = store.blob_writer()?;
        std::io::Write::write_all(&mut w, &b).unwrap();
        w.commit(Some(digest)).map_err(|e| {
            CacheError::Registry(RegistryError::DigestMismatch {
                registry: "mem".into(),
                what: e.to_string(),
                expected: digest.clone(),
                actual: String::new(),
            })
        })?;
        Ok(true)
    }
    fn push(
        &self,
        tag: &str,
        manifest: &[u8],
        blobs: Vec<BlobSource>,
    ) -> Result<usize, CacheError> {
        self.check()?;
        let mut sent = 0;
        for b in blobs {
            let mut bytes = Vec::new();
            b.open_at(0).unwrap().read_to_end(&mut bytes).unwrap();
            assert_eq!(Digest::of_bytes(&bytes), b.digest);
            if self
                .0
                .blobs
                .lock()
                .unwrap()
                .insert(b.digest, bytes)
                .is_none()
            {
                sent += 1;
            }
        }
        self.0
            .tags
            .lock()
            .unwrap()
            .insert(tag.into(), manifest.to_vec());
        Ok(sent)
    }
}

struct NoArchives;
impl crate::layer::build::Materializer for NoArchives {
    fn open(&self, _: &Digest, _: &str) -> Result<Box<dyn std::io::Read + '_>, LayerError> {
        unreachable!("inline content only")
    }
}

/// A store holding one two-file layer; returns it and the layer output.
fn built_layer(dir: &std::path::Path) -> (Store, LayerOutput) {
    let store = Store::open(dir).unwrap();
    let item = |name: &str, body: &[u8]| ItemEntries {
        label: name.into(),
        entries: vec![PlannedEntry::inline_file(
            format!("opt/{name}"),
            0o644,
            Arc::from(body),
        )],
    };
    let plan = plan_layer("app", vec![item("a", b"alpha\n"), item("b", b"beta\n")]).unwrap();
    let (out, _) = build_layer(
        &store,
        &plan,
        Compression::default(),
        0,
        1,
        &NoArchives,
        &|_| {},
        None,
    )
    .unwrap();
    (store, out)
}

fn upload(id: NodeId) -> Vec<Upload> {
    vec![Upload {
        id,
        omit: BTreeSet::new(),
    }]
}

#[test]
fn a_layer_uploaded_from_one_store_is_pulled_whole_into_another() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, out) = built_layer(&tmp.path().join("a"));
    let remote = MemRemote::default();
    let cache = Cache::new(Box::new(remote.clone()));
    cache.upload(&a, &upload(out.id));
    let r = cache.report();
    assert_eq!((r.pushed, r.present), (1, 0), "{r:?}");
    assert!(r.warnings.is_empty(), "{r:?}");
    // Fragments (3 with the end marker) and the document.
    assert_eq!(r.blobs_pushed, out.fragments.len() + 1);
    assert!(
        remote
            .0
            .tags
            .lock()
            .unwrap()
            .contains_key(&node::tag(&out.id))
    );
    // Uploading again finds it there.
    cache.upload(&a, &upload(out.id));
    assert_eq!(cache.report().present, 1);

    let b = Store::open(tmp.path().join("b")).unwrap();
    let cache_b = Cache::new(Box::new(remote.clone()));
    assert!(cache_b.pull(&b, &out.id));
    assert_eq!(b.get_node(&out.id).unwrap(), a.get_node(&out.id).unwrap());
    let rec = a.get_node(&out.id).unwrap().unwrap();
    for c in &rec.children {
        assert_eq!(b.get_node(c).unwrap(), a.get_node(c).unwrap());
    }
    for f in &out.fragments {
        assert!(b.has_blob(f));
    }
    let r = cache_b.report();
    assert_eq!(
        (r.pulled, r.blobs_pulled),
        (1, out.fragments.len()),
        "{r:?}"
    );
    // A pulled node is not uploaded again (nor looked up).
    cache_b.upload(&b, &upload(out.id));
    assert_eq!(cache_b.report().present, 1);
}

#[test]
fn a_corrupt_blob_is_refused_and_nothing_is_recorded() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, out) = built_layer(&tmp.path().join("a"));
    let remote = MemRemote::default();
    Cache::new(Box::new(remote.clone())).upload(&a, &upload(out.id));
    remote
        .0
        .blobs
        .lock()
        .unwrap()
        .insert(out.fragments[0].clone(), b"not zstd".to_vec());
    let b = Store::open(tmp.path().join("b")).unwrap();
    let cache = Cache::new(Box::new(remote.clone()));
    assert!(!cache.pull(&b, &out.id));
    assert!(!b.has_blob(&out.fragments[0]));
    assert!(!b.has_node(&out.id));
    let r = cache.report();
    assert_eq!(r.pulled, 0);
    assert_eq!(r.warnings.len(), 1, "{r:?}");
    assert!(r.warnings[0].contains(&node::tag(&out.id)), "{r:?}");
    // A missing blob: also a miss with a warning.
    remote.0.blobs.lock().unwrap().remove(&out.fragments[0]);
    assert!(!cache.pull(&b, &out.id));
    assert!(cache.report().warnings[1].contains("missing"), "{r:?}");
}

#[test]
fn a_record_that_lies_about_its_layer_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, out) = built_layer(&tmp.path().join("a"));
    // Upload a record claiming another diff_id (what a buggy or hostile writer could do):
    // the fragments are intact, the record is not.
    let mut rec = a.get_node(&out.id).unwrap().unwrap();
    rec.meta["diff_id"] = serde_json::json!(Digest::of_bytes(b"other").to_string());
    let liar = tempfile::tempdir().unwrap();
    let l = Store::open(liar.path()).unwrap();
    for f in &out.fragments {
        let mut bytes = Vec::new();
        a.open_blob(f).unwrap().read_to_end(&mut bytes).unwrap();
        l.put_blob_bytes(&bytes).unwrap();
    }
    for c in &rec.children {
        l.put_node(c, &a.get_node(c).unwrap().unwrap()).unwrap();
    }
    l.put_node(&out.id, &rec).unwrap();
    let remote = MemRemote::default();
    Cache::new(Box::new(remote.clone())).upload(&l, &upload(out.id));

    let b = Store::open(tmp.path().join("b")).unwrap();
    let cache = Cache::new(Box::new(remote));
    assert!(!cache.pull(&b, &out.id));
    assert!(!b.has_node(&out.id));
    let w = &cache.report().warnings;
    assert!(w[0].contains("not the recorded"), "{w:?}");
}

#[test]
fn omitted_archives_are_left_out_and_dropped_from_the_pulled_record() {
    let tmp = tempfile::tempdir().unwrap();
    let a = Store::open(tmp.path().join("a")).unwrap();
    let (listing, _) = a.put_blob_bytes(b"{\"entries\":[]}").unwrap();
    let (archive, _) = a.put_blob_bytes(b"!<arch>\n").unwrap();
    let id = NodeId::from_bytes([5; 32]);
    a.put_node(
        &id,
        &NodeRecord {
            kind: "deb-listing".into(),
            blobs: vec![listing.clone(), archive.clone()],
            children: vec![],
            meta: serde_json::json!({}),
        },
    )
    .unwrap();
    let remote = MemRemote::default();
    Cache::new(Box::new(remote.clone())).upload(
        &a,
        &[Upload {
            id,
            omit: BTreeSet::from([archive.clone()]),
        }],
    );
    assert!(!remote.0.blobs.lock().unwrap().contains_key(&archive));
    let b = Store::open(tmp.path().join("b")).unwrap();
    assert!(Cache::new(Box::new(remote)).pull(&b, &id));
    assert_eq!(b.get_node(&id).unwrap().unwrap().blobs, vec![listing]);
}

#[test]
fn an_unreachable_registry_is_one_warning_then_the_cache_is_off() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, out) = built_layer(&tmp.path().join("a"));
    let remote = MemRemote::default();
    *remote.0.down.lock().unwrap() = true;
    let cache = Cache::new(Box::new(remote));
    assert!(!cache.pull(&a, &NodeId::from_bytes([1; 32])));
    assert!(!cache.pull(&a, &NodeId::from_bytes([2; 32])));
    cache.upload(&a, &upload(out.id));
    let r = cache.report();
    assert_eq!(r.warnings.len(), 1, "{r:?}");
    assert!(r.warnings[0].contains("connection refused"), "{r:?}");
    assert_eq!((r.pulled, r.pushed), (0, 0));
}
