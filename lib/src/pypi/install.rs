//! Installing locked wheels into layers: each wheel's installed listing (paths, modes,
//! blake3 of contents) cached in the store by the wheel's sha256 and the install scheme, so
//! a warm build reads no wheel at all; when a wheel's fragment must be (re)built, the wheel is
//! indexed on demand and its files are read straight out of the stored wheel
//! ([`WheelExtractor`]).

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::{Arc, Mutex, PoisonError};

use sha2::{Digest as _, Sha256};

use crate::once::OnceMap;

use composer_store::{Digest, NodeId, NodeKey, NodeRecord, Store};

use super::wheel::{MemberRef, Scheme, index_wheel, locate_wheel, survey_wheel};
use crate::layer::LayerError;
use crate::layer::build::Materializer;
use crate::layer::listing::StoredEntry;
use crate::layer::plan::{Content, ItemEntries, PlannedEntry};
use crate::layer::tar::EntryKind;
use crate::lock::LockedWheel;

/// Bumped when the installer's output or the listing format changes.
pub const WHEEL_LISTING_VERSION: u32 = 3;

/// The digest of a locked wheel.
///
/// # Errors
/// A lock entry whose sha256 is not a digest.
pub fn wheel_digest(w: &LockedWheel) -> Result<Digest, String> {
    format!("sha256:{}", w.sha256)
        .parse()
        .map_err(|_| format!("{}: bad sha256 `{}` in the lock", w.filename, w.sha256))
}

fn scheme_key(s: &Scheme) -> String {
    format!(
        "{}|{}|{}|{}|{}|{}",
        s.purelib, s.platlib, s.scripts, s.headers, s.data, s.interpreter
    )
}

/// The fragment label of a wheel's item (its name and version as the lock spells them).
#[must_use]
pub fn item_label(name: &str, version: &str) -> String {
    format!("wheel {name} {version}")
}

/// Where wheels are installed in the image: the recipe's venv prefix, else Debian's
/// `/usr/local` scheme, for the image's Python.
#[must_use]
pub fn scheme_for(spec: &crate::recipe::ImageSpec, target: &super::target::Target) -> Scheme {
    match spec.pypi.as_ref().and_then(|p| p.prefix.as_deref()) {
        Some(prefix) => Scheme::venv(prefix.trim_start_matches('/'), target.python),
        None => Scheme::debian_system(target.python),
    }
}

/// The node that records a wheel's installed listing (and keeps the wheel alive through gc).
#[must_use]
pub fn listing_id(wheel: &Digest, scheme: &Scheme, requested: bool) -> NodeId {
    let mut k = NodeKey::new("wheel-listing", WHEEL_LISTING_VERSION);
    k.digest("wheel", wheel)
        .str("scheme", &scheme_key(scheme))
        .u64("requested", u64::from(requested));
    k.finish()
}

/// Where a wheel's member files lie, and the open wheel blob they are read from.
struct Located {
    file: Arc<std::fs::File>,
    members: BTreeMap<String, MemberRef>,
}

/// Lists wheels on demand (verifying every member against `RECORD`), for listings not in the
/// store yet, and reads their files straight out of the stored wheel for fragments not in
/// the store yet: nothing is extracted to disk.
pub struct WheelExtractor {
    store: Store,
    wheels: BTreeMap<Digest, (String, bool)>,
    scheme: Scheme,
    /// Entries of wheels indexed in this build: member files `Extracted`, generated inline.
    indexed: OnceMap<Digest, Result<Arc<Vec<PlannedEntry>>, String>>,
    located: OnceMap<Digest, Result<Arc<Located>, String>>,
    /// Files of surveyed wheels whose bytes are checked when read, by wheel and image path.
    pending: Mutex<BTreeMap<Digest, BTreeMap<String, Claim>>>,
}

/// What `RECORD` says of a file not read yet, and whether a read found it so.
#[derive(Debug, Clone, Copy)]
struct Claim {
    sha256: [u8; 32],
    checked: bool,
}

impl std::fmt::Debug for WheelExtractor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WheelExtractor")
            .field("wheels", &self.wheels.len())
            .finish_non_exhaustive()
    }
}

impl WheelExtractor {
    /// An extractor installing `wheels` with `scheme`.
    ///
    /// # Errors
    /// A lock entry with a bad digest.
    pub fn new(store: Store, wheels: &[LockedWheel], scheme: Scheme) -> Result<Self, String> {
        let wheels = wheels
            .iter()
            .map(|w| {
                Ok((
                    wheel_digest(w)?,
                    w.filename.clone(),
                    w.reason == "requested",
                ))
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Self::for_wheels(store, scheme, wheels))
    }

    /// An extractor installing `wheels`, given as (digest, file name, requested), with
    /// `scheme`.
    #[must_use]
    pub fn for_wheels(
        store: Store,
        scheme: Scheme,
        wheels: impl IntoIterator<Item = (Digest, String, bool)>,
    ) -> Self {
        Self {
            store,
            wheels: wheels
                .into_iter()
                .map(|(d, filename, requested)| (d, (filename, requested)))
                .collect(),
            scheme,
            indexed: OnceMap::default(),
            located: OnceMap::default(),
            pending: Mutex::default(),
        }
    }

    /// Whether `digest` is one of this extractor's wheels.
    #[must_use]
    pub fn knows(&self, digest: &Digest) -> bool {
        self.wheels.contains_key(digest)
    }

    /// The wheel's file name and whether it was requested.
    fn wheel(&self, wheel: &Digest) -> Result<(String, bool), String> {
        self.wheels
            .get(wheel)
            .cloned()
            .ok_or_else(|| format!("{wheel} is not a locked wheel"))
    }

    /// Indexes the wheel once: every member verified against RECORD and hashed, no file
    /// kept; its member locations are kept for reading.
    fn index(&self, wheel: &Digest) -> Result<Arc<Vec<PlannedEntry>>, String> {
        self.indexed
            .get_or_init(wheel, || Ok(Arc::new(self.list(wheel, false)?.entries)))
    }

    /// Lists the stored wheel ([`survey_wheel`] with `survey`, else [`index_wheel`]) and
    /// keeps where its members lie, for reading them.
    fn list(&self, wheel: &Digest, survey: bool) -> Result<super::wheel::InstalledWheel, String> {
        let (filename, requested) = self.wheel(wheel)?;
        let file = self.store.open_blob(wheel).map_err(|e| e.to_string())?;
        let read = std::io::BufReader::new(&file);
        let listed = if survey {
            survey_wheel(read, &filename, &self.scheme, requested, wheel)
        } else {
            index_wheel(read, &filename, &self.scheme, requested, wheel)
        };
        let mut iw = listed.map_err(|e| e.to_string())?;
        let members = std::mem::take(&mut iw.members);
        self.located.get_or_init(wheel, || {
            Ok(Arc::new(Located {
                file: Arc::new(file),
                members,
            }))
        })?;
        Ok(iw)
    }

    /// The blob of the wheel's stored listing, if its record and blob are in the store.
    fn stored_listing(&self, digest: &Digest) -> Result<Option<Digest>, String> {
        let (_, requested) = self.wheel(digest)?;
        let id = listing_id(digest, &self.scheme, requested);
        let rec = self.store.get_node(&id).map_err(|e| e.to_string())?;
        Ok(rec
            .and_then(|r| r.blobs.into_iter().next())
            .filter(|b| self.store.has_blob(b)))
    }

    /// Where the wheel's member files lie: from its index in this build, else read from its
    /// zip directory (its listing was stored by an earlier build, which verified it).
    fn locate(&self, wheel: &Digest) -> Result<Arc<Located>, String> {
        self.located.get_or_init(wheel, || {
            let (filename, _) = self.wheel(wheel)?;
            let file = self.store.open_blob(wheel).map_err(|e| e.to_string())?;
            let members = locate_wheel(std::io::BufReader::new(&file), &filename, &self.scheme)
                .map_err(|e| e.to_string())?;
            Ok(Arc::new(Located {
                file: Arc::new(file),
                members,
            }))
        })
    }

    /// The wheel's entries for its layer: from the cached listing, or by installing it now
    /// (and caching the listing).
    ///
    /// # Errors
    /// The wheel cannot be installed, or the store fails.
    pub fn item(&self, w: &LockedWheel) -> Result<ItemEntries, String> {
        self.item_for(&wheel_digest(w)?, item_label(&w.name, &w.version))
    }

    /// [`Self::item`] of one of this extractor's wheels, labelled `label`.
    ///
    /// # Errors
    /// The wheel cannot be installed, or the store fails.
    pub fn item_for(&self, digest: &Digest, label: String) -> Result<ItemEntries, String> {
        if let Some(blob) = self.stored_listing(digest)? {
            let bytes = self.store.read_blob(&blob).map_err(|e| e.to_string())?;
            let stored: Vec<StoredEntry> = serde_json::from_slice(&bytes)
                .map_err(|e| format!("{label}: cached listing: {e}"))?;
            let entries = stored
                .into_iter()
                .map(|e| from_stored(e, digest))
                .collect::<Result<Vec<_>, String>>()
                .map_err(|e| format!("{label}: cached listing: {e}"))?;
            return Ok(ItemEntries { label, entries });
        }
        let entries = self.index(digest)?.as_ref().clone();
        self.store_listing(digest, &label, &entries)?;
        Ok(ItemEntries { label, entries })
    }

    /// The wheel's entries before its members are read: [`survey_wheel`]'s, whose pending
    /// files have an all-zero blake3 and are checked against `RECORD` when this extractor
    /// reads them. `None` when the wheel's listing is stored already ([`Self::item_for`]
    /// gives it). [`Self::complete`] turns the entries into the listing once every pending
    /// file was read.
    ///
    /// # Errors
    /// The wheel cannot be installed (a pending file's own errors show when it is read), or
    /// the store fails.
    pub fn survey(&self, digest: &Digest, label: String) -> Result<Option<ItemEntries>, String> {
        if self.stored_listing(digest)?.is_some() {
            return Ok(None);
        }
        let iw = self.list(digest, true)?;
        let claims = iw
            .pending
            .into_iter()
            .map(|(p, sha256)| {
                let claim = Claim {
                    sha256,
                    checked: false,
                };
                (p, claim)
            })
            .collect();
        self.lock_pending().insert(digest.clone(), claims);
        Ok(Some(ItemEntries {
            label,
            entries: iw.entries,
        }))
    }

    /// The entries of a wheel [`Self::survey`] gave, completed with the blake3 of each
    /// pending file (`learned`, by image path) once this extractor has read it whole and
    /// found it to match `RECORD`; the listing is stored, as [`Self::item_for`] stores it.
    /// Any other file in `learned` must have the blake3 the survey found.
    ///
    /// # Errors
    /// A pending file not read, or not found to match; another file whose learned blake3
    /// differs; a store failure.
    pub fn complete(
        &self,
        digest: &Digest,
        surveyed: ItemEntries,
        learned: &BTreeMap<String, [u8; 32]>,
    ) -> Result<ItemEntries, String> {
        let ItemEntries { label, mut entries } = surveyed;
        {
            let pending = self.lock_pending();
            let claims = pending.get(digest);
            // Every pending file first: the one not read and checked is what to report.
            for e in &mut entries {
                let path = &e.header.path;
                let Some(claim) = claims.and_then(|c| c.get(path)) else {
                    continue;
                };
                match learned.get(path) {
                    Some(hash) if claim.checked => e.content_hash = *hash,
                    _ => {
                        return Err(format!(
                            "{label}: /{path} was not read and checked against RECORD"
                        ));
                    }
                }
            }
            // The files the survey read itself (scripts) were read again for the fragment.
            for e in &entries {
                let path = &e.header.path;
                let pending = claims.is_some_and(|c| c.contains_key(path));
                if !pending && learned.get(path).is_some_and(|h| *h != e.content_hash) {
                    return Err(format!(
                        "{label}: /{path} read back differs from the survey's"
                    ));
                }
            }
        }
        self.store_listing(digest, &label, &entries)?;
        Ok(ItemEntries { label, entries })
    }

    fn lock_pending(&self) -> std::sync::MutexGuard<'_, BTreeMap<Digest, BTreeMap<String, Claim>>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stores the wheel's listing (what a later build reads instead of the wheel).
    fn store_listing(
        &self,
        digest: &Digest,
        label: &str,
        entries: &[PlannedEntry],
    ) -> Result<(), String> {
        let (filename, requested) = self.wheel(digest)?;
        let id = listing_id(digest, &self.scheme, requested);
        let store_err = |e: composer_store::StoreError| e.to_string();
        let stored: Vec<StoredEntry> = entries
            .iter()
            .map(|e| {
                let entry = StoredEntry::new(&e.header, &e.content_hash);
                match &e.content {
                    // Generated (RECORD, launchers): text the wheel does not hold.
                    Content::Inline(bytes) => std::str::from_utf8(bytes)
                        .map(|text| entry.with_text(text.to_string()))
                        .map_err(|_| format!("{label}: generated /{} is not UTF-8", e.header.path)),
                    _ => Ok(entry),
                }
            })
            .collect::<Result<_, String>>()?;
        let json = serde_json::to_vec(&stored).map_err(|e| e.to_string())?;
        let (blob, _) = self.store.put_blob_bytes(&json).map_err(store_err)?;
        self.store
            .put_node(
                &id,
                &NodeRecord {
                    kind: "wheel-listing".into(),
                    blobs: vec![blob, digest.clone()],
                    children: vec![],
                    meta: serde_json::json!({ "wheel": filename }),
                },
            )
            .map_err(store_err)?;
        Ok(())
    }
}

fn from_stored(e: StoredEntry, wheel: &Digest) -> Result<PlannedEntry, String> {
    let text = e.text().map(|t| Arc::<[u8]>::from(t.as_bytes()));
    let (header, content_hash) = e.decode()?;
    let content = match header.kind {
        EntryKind::File { .. } if text.is_some() => Content::Inline(text.unwrap_or_default()),
        EntryKind::File { .. } => Content::Extracted {
            archive: wheel.clone(),
            path: header.path.clone(),
        },
        _ => Content::None,
    };
    Ok(PlannedEntry {
        header,
        content,
        content_hash,
    })
}

impl Materializer for WheelExtractor {
    fn open(&self, archive: &Digest, path: &str) -> Result<Box<dyn Read + '_>, LayerError> {
        let err = |source: std::io::Error| LayerError::ArchiveRead {
            archive: self.describe(archive),
            path: path.to_string(),
            source,
        };
        let at = self
            .locate(archive)
            .map_err(|e| err(std::io::Error::other(e)))?;
        let m = at.members.get(path).ok_or_else(|| {
            err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "the wheel has no member installed there",
            ))
        })?;
        let stored = At {
            file: Arc::clone(&at.file),
            offset: m.data_start,
        };
        let claim = self
            .lock_pending()
            .get(archive)
            .and_then(|c| c.get(path))
            .map(|c| c.sha256);
        match claim {
            Some(expected) => Ok(Box::new(Checked {
                inner: m.open_whole(stored),
                sha256: Sha256::new(),
                expected,
                at: Some((archive.clone(), path.to_string())),
                extractor: self,
            })),
            None => m.open(stored).map_err(err),
        }
    }

    fn describe(&self, archive: &Digest) -> String {
        self.wheels
            .get(archive)
            .map_or_else(|| archive.to_string(), |(name, _)| name.clone())
    }
}

/// Reads a pending member, hashing it: at its end, a sha256 other than `RECORD`'s is an
/// error, and a match marks the claim checked.
struct Checked<'a> {
    inner: Box<dyn Read + 'a>,
    sha256: Sha256,
    expected: [u8; 32],
    /// The wheel and image path; taken once the end is seen.
    at: Option<(Digest, String)>,
    extractor: &'a WheelExtractor,
}

impl Read for Checked<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 {
            self.sha256.update(&buf[..n]);
        } else if let Some((wheel, path)) = self.at.take() {
            let got: [u8; 32] = std::mem::take(&mut self.sha256).finalize().into();
            if got != self.expected {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!(
                        "sha256={} but RECORD says sha256={}",
                        crate::base64::encode_url_safe_nopad(&got),
                        crate::base64::encode_url_safe_nopad(&self.expected)
                    ),
                ));
            }
            if let Some(c) = self
                .extractor
                .lock_pending()
                .get_mut(&wheel)
                .and_then(|c| c.get_mut(&path))
            {
                c.checked = true;
            }
        }
        Ok(n)
    }
}

/// Reads a shared file from `offset` on (positioned reads: many readers, one descriptor).
struct At {
    file: Arc<std::fs::File>,
    offset: u64,
}

impl Read for At {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = std::os::unix::fs::FileExt::read_at(&*self.file, buf, self.offset)?;
        self.offset += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::io::Write as _;

    use super::*;
    use crate::layer::Compression;
    use crate::layer::build::{build_fragment, write_fragment_learning};
    use crate::layer::plan::FragmentPlan;

    const NAME: &str = "demo_pkg-1.0-py3-none-any.whl";

    /// A wheel with a module, a 300 KiB file and a script; `lie` makes RECORD give the
    /// module another sha256.
    fn wheel(lie: bool) -> Vec<u8> {
        let files: Vec<(&str, Vec<u8>)> = vec![
            ("demo_pkg/__init__.py", b"print('hi')\n".to_vec()),
            ("demo_pkg/big.bin", vec![7u8; 300 << 10]),
            (
                "demo_pkg-1.0.data/scripts/tool",
                b"#!python\nprint(1)\n".to_vec(),
            ),
            (
                "demo_pkg-1.0.dist-info/METADATA",
                b"Metadata-Version: 2.1\nName: demo-pkg\nVersion: 1.0\n".to_vec(),
            ),
            (
                "demo_pkg-1.0.dist-info/WHEEL",
                b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\n".to_vec(),
            ),
        ];
        let mut record = String::new();
        for (name, body) in &files {
            let body: &[u8] = if lie && name.ends_with("__init__.py") {
                b"print('ho')\n"
            } else {
                body
            };
            let hash = crate::base64::encode_url_safe_nopad(&Sha256::digest(body));
            record.push_str(&format!("{name},sha256={hash},{}\n", body.len()));
        }
        record.push_str("demo_pkg-1.0.dist-info/RECORD,,\n");
        let mut out = std::io::Cursor::new(Vec::new());
        let mut zip = zip::ZipWriter::new(&mut out);
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (name, body) in files
            .iter()
            .map(|(n, b)| (*n, b.as_slice()))
            .chain([("demo_pkg-1.0.dist-info/RECORD", record.as_bytes())])
        {
            zip.start_file(name, opts).unwrap();
            zip.write_all(body).unwrap();
        }
        zip.finish().unwrap();
        out.into_inner()
    }

    fn setup(dir: &std::path::Path, bytes: &[u8]) -> (Store, Digest, WheelExtractor) {
        let store = Store::open(dir).unwrap();
        let (digest, _) = store.put_blob_bytes(bytes).unwrap();
        let ex = WheelExtractor::for_wheels(
            store.clone(),
            Scheme::debian_system((3, 13)),
            [(digest.clone(), NAME.to_string(), true)],
        );
        (store, digest, ex)
    }

    fn fragment(item: ItemEntries) -> FragmentPlan {
        crate::pypi::prebuild::alone(item).unwrap()
    }

    const ZSTD: Compression = Compression::Zstd { level: 3 };

    #[test]
    fn one_pass_gives_the_listing_and_fragment_of_two() {
        let tmp = tempfile::tempdir().unwrap();
        let bytes = wheel(false);
        let label = item_label("demo-pkg", "1.0");

        // One pass: survey, write while checking and learning, complete.
        let (store, digest, ex) = setup(&tmp.path().join("one"), &bytes);
        let surveyed = ex.survey(&digest, label.clone()).unwrap().unwrap();
        assert!(
            surveyed.entries.iter().any(|e| e.content_hash == [0; 32]),
            "some files are pending"
        );
        let written =
            write_fragment_learning(&store, &fragment(surveyed.clone()), ZSTD, 7, 1, &ex).unwrap();
        // A file the survey read itself (the script) must read back the same.
        let mut tampered = written.learned.clone();
        let script = "usr/local/bin/tool".to_string();
        assert!(tampered.contains_key(&script), "{tampered:?}");
        tampered.insert(script, [9; 32]);
        let differs = ex
            .complete(&digest, surveyed.clone(), &tampered)
            .unwrap_err();
        assert!(differs.contains("differs from the survey's"), "{differs}");
        let item = ex.complete(&digest, surveyed, &written.learned).unwrap();
        assert!(
            ex.survey(&digest, label.clone()).unwrap().is_none(),
            "listing stored"
        );

        // Two passes, in another store: index, then write against the listing.
        let (store2, digest2, ex2) = setup(&tmp.path().join("two"), &bytes);
        let indexed = ex2.item_for(&digest2, label.clone()).unwrap();
        assert_eq!(indexed.entries, item.entries);
        let frag = fragment(indexed);
        build_fragment(&store2, &frag, ZSTD, 7, 1, &ex2).unwrap();
        let rec = store2.get_node(&frag.node_id(ZSTD, 7)).unwrap().unwrap();
        assert_eq!(rec.blobs, vec![written.blob.clone()], "same fragment bytes");
        assert_eq!(
            ex.store
                .get_node(&listing_id(&digest, &ex.scheme, true))
                .unwrap(),
            store2
                .get_node(&listing_id(&digest2, &ex2.scheme, true))
                .unwrap(),
            "same listing record"
        );
    }

    #[test]
    fn a_member_that_does_not_match_record_fails_the_pass_and_nothing_is_listed() {
        let tmp = tempfile::tempdir().unwrap();
        let (store, digest, ex) = setup(tmp.path(), &wheel(true));
        let label = item_label("demo-pkg", "1.0");
        let surveyed = ex.survey(&digest, label.clone()).unwrap().unwrap();
        let err = write_fragment_learning(&store, &fragment(surveyed.clone()), ZSTD, 7, 1, &ex)
            .unwrap_err()
            .to_string();
        assert!(err.contains(NAME), "{err}");
        assert!(err.contains("demo_pkg/__init__.py"), "{err}");
        assert!(err.contains("RECORD"), "{err}");
        // Completing without the member read and checked is refused.
        let learned: BTreeMap<String, [u8; 32]> = surveyed
            .entries
            .iter()
            .map(|e| (e.header.path.clone(), [1; 32]))
            .collect();
        let refused = ex.complete(&digest, surveyed, &learned).unwrap_err();
        assert!(refused.contains("not read and checked"), "{refused}");
        assert!(
            ex.survey(&digest, label).unwrap().is_some(),
            "nothing listed"
        );
    }
}
