//! A recipe's lock: resolved against the live (signature-verified) indexes, reused while it
//! is current, refused when stale under `--locked`, refreshed by `compose update`. The
//! effectful glue between [`crate::debian::archive`], the pure resolver and [`crate::lock`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use composer_store::Store;

use crate::debian::archive::{self, ArchiveError, debian_arch, effective_url};
use crate::debian::resolve::{ResolveError, ResolveRequest, resolve as resolve_debian};
use crate::fetch::{Download, Fetcher};
use crate::lock::{
    self, LOCK_VERSION, Lock, LockChange, LockError, LockFile, LockedDeb, LockedWheel, MultiLock,
};
use crate::pypi::client::PypiClient;
use crate::pypi::prebuild::EagerWheel;
use crate::pypi::resolve::{PyRequest, resolve_python};
use crate::pypi::target::Target;
use crate::pypi::wheel::Scheme;
use crate::recipe::{ImageSpec, LayerItem, Platform};
use pep440_rs::Version;
use pep508_rs::Requirement;
use std::str::FromStr;

/// Failures while making or checking a lock.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PinError {
    /// Loading the indexes failed.
    #[error(transparent)]
    Archive(#[from] Box<ArchiveError>),
    /// Resolution failed.
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    /// Reading or writing the lockfile failed.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// `--locked` and no lockfile.
    #[error("{} does not exist and --locked forbids creating it; run `compose lock {}`", lock.display(), recipe.display())]
    Missing {
        /// Lock path.
        lock: PathBuf,
        /// Recipe path.
        recipe: PathBuf,
    },
    /// `--locked` and the lockfile is out of date.
    #[error("{} is out of date for {} (the recipe's packages or sources changed) and --locked forbids updating it; run `compose lock {}`", lock.display(), recipe.display(), recipe.display())]
    Stale {
        /// Lock path.
        lock: PathBuf,
        /// Recipe path.
        recipe: PathBuf,
    },
    /// `update PKG` names a package that is not in the lock.
    #[error("`{0}` is not in the lock; `compose update` without names re-resolves everything")]
    NotLocked(String),
    /// `update PKG…` would also move packages that were not named.
    #[error(
        "updating {named} also moves {others}, whose locked versions no longer fit or are no longer published; run `compose update` without names, or name them too"
    )]
    WouldMove {
        /// The named packages.
        named: String,
        /// The other changes.
        others: String,
    },
    /// Python resolution failed.
    #[error(transparent)]
    Python(Box<crate::pypi::resolve::PyResolveError>),
    /// The image has no Debian Python to resolve wheels for.
    #[error(
        "the recipe installs Python packages but its Debian packages include no python3.X interpreter; add `debian \"python3\"` to a layer at or below them"
    )]
    NoPython,
    /// The image's Python or glibc could not be read from the lock.
    #[error("cannot derive the image's Python environment: {0}")]
    Target(String),
    /// A requirement string did not parse (the recipe validates them, so this is a bug).
    #[error("requirement `{0}`: {1}")]
    Requirement(String, String),
    /// A resolved distribution has no wheel to lock.
    #[error("{0}")]
    Wheel(String),
    /// A single-platform lock was asked of a multi-platform recipe.
    #[error(
        "{} names several platforms; this command works on one platform's lock (build with `--platform` to pick one)",
        recipe.display()
    )]
    MultiPlatform {
        /// Recipe path.
        recipe: PathBuf,
    },
    /// The recipe installs packages but declares no source.
    #[error("the recipe installs Debian packages but has no `debian {{ archive … }}` block")]
    NoSource,
}

/// `recipes/x.kdl` → `recipes/x.lock`.
#[must_use]
pub fn lock_path(recipe: &Path) -> PathBuf {
    recipe.with_extension("lock")
}

/// Whether the recipe installs packages (and so needs a lock).
#[must_use]
pub fn needs_lock(spec: &ImageSpec) -> bool {
    spec.layers.iter().any(|l| {
        l.items
            .iter()
            .any(|i| matches!(i, LayerItem::Debian { .. } | LayerItem::Pypi { .. }))
    })
}

/// Resolves `spec` against the live indexes into a fresh lock. `prefer` keeps those
/// packages at their versions while they still satisfy (for `update PKG`).
///
/// # Errors
/// [`PinError`] naming the suite, URL or the unsatisfiable chain.
pub fn resolve(
    spec: &ImageSpec,
    store: &Store,
    fetcher: &Fetcher,
    now: i64,
    prefer: BTreeMap<String, String>,
) -> Result<Lock, PinError> {
    let mut lock = Lock {
        version: LOCK_VERSION,
        recipe: lock::inputs_digest(spec),
        debian: Vec::new(),
        pypi: Vec::new(),
    };
    if !needs_lock(spec) {
        return Ok(lock);
    }
    let wants_python = spec
        .layers
        .iter()
        .any(|l| l.items.iter().any(|i| matches!(i, LayerItem::Pypi { .. })));
    // The Python target comes from the Debian half. While that half resolves (mostly
    // waiting on the mirror's InRelease files), the Python half resolves for the target
    // this store saw for the same Debian request last time; the result stands when the
    // target turns out the same (a resolution is a function of its target), and is redone
    // otherwise. Without a remembered target, the requested projects' pages are fetched
    // meanwhile (they do not depend on the target).
    let pages = std::sync::Arc::new(crate::pypi::client::PageCache::default());
    let guess = if wants_python {
        remembered_target(store, spec)
    } else {
        None
    };
    let (debian, speculated) = std::thread::scope(|s| {
        let speculation = guess.as_ref().map(|t| {
            let pages = std::sync::Arc::clone(&pages);
            let prefer = &prefer;
            s.spawn(move || resolve_wheels(spec, store, fetcher, t, prefer, pages))
        });
        if wants_python && speculation.is_none() {
            let names = requested_projects(spec);
            let pages = &pages;
            s.spawn(move || pages.warm(fetcher, spec.pypi.as_ref(), &names));
        }
        let debian = resolve_debs(spec, store, fetcher, now, prefer.clone());
        (debian, speculation.and_then(|h| h.join().ok()))
    });
    lock.debian = debian?;
    // Also for an image without wheels: one with the same Debian half and wheels may follow.
    remember_target(store, spec, &lock.debian);
    if wants_python {
        let target = python_target(&lock.debian, spec)?;
        lock.pypi = match speculated {
            Some(Ok(wheels)) if guess.as_ref() == Some(&target) => wheels,
            _ => resolve_wheels(spec, store, fetcher, &target, &prefer, pages)?,
        };
    }
    Ok(lock)
}

/// The store node remembering which Python target the Debian half of `spec` gave last time.
fn target_memory_id(spec: &ImageSpec) -> composer_store::NodeId {
    let debian_items: Vec<&LayerItem> = spec
        .layers
        .iter()
        .flat_map(|l| &l.items)
        .filter(|i| matches!(i, LayerItem::Debian { .. }))
        .collect();
    let mut k = composer_store::NodeKey::new("python-target-memory", 1);
    k.str("debian", &format!("{:?}", spec.debian))
        .str("platform", &format!("{:?}", spec.platform))
        .str("packages", &format!("{debian_items:?}"));
    k.finish()
}

/// The target remembered for `spec`'s Debian request, if any (a guess: see [`resolve`]).
fn remembered_target(store: &Store, spec: &ImageSpec) -> Option<Target> {
    let rec = store.get_node(&target_memory_id(spec)).ok()??;
    let field = |k: &str| rec.meta.get(k)?.as_str().map(str::to_string);
    Target::from_debian(&field("python3")?, &field("libc6")?, &field("arch")?).ok()
}

/// Remembers the versions the target of `spec` came from. Best effort: a failure only costs
/// the next lock its head start.
fn remember_target(store: &Store, spec: &ImageSpec, debs: &[LockedDeb]) {
    let (Some(python), Some(libc)) = (image_python(debs), image_libc(debs)) else {
        return;
    };
    let _ = store.put_node(
        &target_memory_id(spec),
        &composer_store::NodeRecord {
            kind: "python-target-memory".into(),
            blobs: vec![],
            children: vec![],
            meta: serde_json::json!({
                "python3": python.version, "libc6": libc.version, "arch": spec.platform.architecture,
            }),
        },
    );
}

/// The project names the recipe's `pypi` items request without a marker (a marker needs the
/// target to decide, and a project the image does not need is never looked up; unparsable
/// requirements are left for the resolution to report).
fn requested_projects(spec: &ImageSpec) -> Vec<String> {
    let mut names: Vec<String> = spec
        .layers
        .iter()
        .flat_map(|l| &l.items)
        .filter_map(|i| match i {
            LayerItem::Pypi { requirements } => Some(requirements),
            _ => None,
        })
        .flatten()
        .filter_map(|r| Requirement::from_str(r).ok())
        .filter(|r: &Requirement| r.marker.is_true())
        .map(|r: Requirement| r.name.to_string())
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The Debian half of a lock.
fn resolve_debs(
    spec: &ImageSpec,
    store: &Store,
    fetcher: &Fetcher,
    now: i64,
    prefer: BTreeMap<String, String>,
) -> Result<Vec<LockedDeb>, PinError> {
    let src = spec.debian.as_ref().ok_or(PinError::NoSource)?;
    let arch = debian_arch(
        &spec.platform.architecture,
        spec.platform.variant.as_deref(),
    );
    let files = archive::fetch_index(fetcher, store, src, &arch, now).map_err(Box::new)?;
    let layers: Vec<(String, Vec<String>)> = spec
        .layers
        .iter()
        .map(|l| {
            let reqs = l
                .items
                .iter()
                .filter_map(|i| match i {
                    LayerItem::Debian { packages } => Some(packages.clone()),
                    _ => None,
                })
                .flatten()
                .collect::<Vec<_>>();
            (l.name.clone(), reqs)
        })
        .filter(|(_, reqs)| !reqs.is_empty())
        .collect();
    // The resolution is a pure function of the verified indexes and the request: a run
    // with the same Packages files and the same request reads it back instead of loading
    // ~70k index records and resolving again.
    let key = debian_resolution_id(&files, &arch, &layers, src, &prefer);
    if let Some(debs) = cached_resolution(store, &key) {
        return Ok(debs);
    }
    let index = archive::parse_index(store, &files).map_err(Box::new)?;
    let req = ResolveRequest {
        index: &index,
        arch: &arch,
        layers,
        include: src.include.clone(),
        exclude: src.exclude.clone(),
        prefer,
    };
    let resolution = resolve_debian(&req)?;
    let bases: BTreeMap<&str, String> = src
        .archives
        .iter()
        .map(|a| (a.url.as_str(), effective_url(a, src.snapshot.as_deref())))
        .collect();
    let debs = resolution
        .packages
        .into_iter()
        .map(|r| {
            let p = r.package;
            let base = bases
                .get(p.archive.as_str())
                .cloned()
                .unwrap_or_else(|| p.archive.clone());
            LockedDeb {
                url: format!("{base}/{}", p.filename),
                name: p.name,
                version: p.version,
                architecture: p.architecture,
                suite: p.suite,
                component: p.component,
                archive: p.archive,
                filename: p.filename,
                sha256: p.sha256,
                size: p.size,
                layer: r.layer,
                reason: r.reason,
            }
        })
        .collect::<Vec<_>>();
    Ok(store_resolution(store, &key, debs))
}

/// Bumped when the Debian resolver's answer for the same input can change.
const DEBIAN_RESOLUTION_VERSION: u32 = 1;

/// The store node caching a Debian resolution: every Packages file's digest (in order) and
/// every field of the request, plus composer's version (the resolver is code).
fn debian_resolution_id(
    files: &[archive::IndexFile],
    arch: &str,
    layers: &[(String, Vec<String>)],
    src: &crate::recipe::DebianSource,
    prefer: &BTreeMap<String, String>,
) -> composer_store::NodeId {
    let mut k = composer_store::NodeKey::new("debian-resolution", DEBIAN_RESOLUTION_VERSION);
    k.str("composer", env!("CARGO_PKG_VERSION"))
        .str("arch", arch);
    k.u64("files", files.len() as u64);
    for f in files {
        k.str("suite", &f.suite)
            .str("component", &f.component)
            .str("archive", &f.archive)
            .digest("packages", &f.sha256);
    }
    for a in &src.archives {
        k.str("archive-url", &a.url)
            .str("effective-url", &effective_url(a, src.snapshot.as_deref()));
    }
    k.u64("layers", layers.len() as u64);
    for (name, reqs) in layers {
        k.str("layer", name).u64("requests", reqs.len() as u64);
        for r in reqs {
            k.str("request", r);
        }
    }
    k.u64("include", src.include.len() as u64);
    for i in &src.include {
        k.str("include", i);
    }
    k.u64("exclude", src.exclude.len() as u64);
    for e in &src.exclude {
        k.str("exclude", e);
    }
    k.u64("prefer", prefer.len() as u64);
    for (n, v) in prefer {
        k.str("prefer-name", n).str("prefer-version", v);
    }
    k.finish()
}

/// A cached resolution (in the lockfile's own format), if the store has a readable one.
fn cached_resolution(store: &Store, id: &composer_store::NodeId) -> Option<Vec<LockedDeb>> {
    let rec = store.get_node(id).ok()??;
    let bytes = store.read_blob(rec.blobs.first()?).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    Lock::parse(&text, "cached Debian resolution")
        .ok()
        .map(|l| l.debian)
}

/// Stores `debs` as the resolution for `id` and returns them as a later run will read them
/// (the lockfile's order), so a hit and a miss give the same answer. A store failure only
/// costs the cache.
fn store_resolution(
    store: &Store,
    id: &composer_store::NodeId,
    debs: Vec<LockedDeb>,
) -> Vec<LockedDeb> {
    // The lockfile format wants a digest here; this one names the resolution's inputs.
    let text = Lock {
        version: LOCK_VERSION,
        recipe: format!("sha256:{}", id.to_hex()),
        debian: debs.clone(),
        pypi: Vec::new(),
    }
    .to_text();
    let Ok(parsed) = Lock::parse(&text, "Debian resolution") else {
        return debs;
    };
    if let Ok((blob, _)) = store.put_blob_bytes(text.as_bytes()) {
        let _ = store.put_node(
            id,
            &composer_store::NodeRecord {
                kind: "debian-resolution".into(),
                blobs: vec![blob],
                children: vec![],
                meta: serde_json::json!({ "packages": parsed.debian.len() }),
            },
        );
    }
    parsed.debian
}

/// Every locked name → version (Debian package names and normalized Python project names).
fn pinned_versions(lock: &Lock) -> BTreeMap<String, String> {
    let debs = lock
        .debian
        .iter()
        .map(|d| (d.name.clone(), d.version.clone()));
    let wheels = lock
        .pypi
        .iter()
        .map(|w| (w.name.clone(), w.version.clone()));
    debs.chain(wheels).collect()
}

/// How `obtain` may treat the lockfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockMode {
    /// Use it when current; otherwise resolve and write it (`compose build`).
    Auto,
    /// Use it; fail when missing or stale (`--locked`).
    Locked,
    /// Re-resolve everything (`compose lock`, `compose update`).
    Refresh,
    /// Re-resolve, moving only these packages (`compose update PKG…`).
    Update(Vec<String>),
}

/// What `obtain` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockOutcome {
    /// Nothing to lock (no packages).
    NotNeeded,
    /// The existing lock was current and used.
    Reused,
    /// A lock was resolved and written; the changes against the previous one (if any).
    Written(Vec<LockChange>),
}

/// Gets the lock for `recipe` as `mode` allows, writing `recipe.lock` when it changes.
///
/// # Errors
/// [`PinError`].
pub fn obtain(
    recipe: &Path,
    spec: &ImageSpec,
    mode: &LockMode,
    store: &Store,
    fetcher: &Fetcher,
    now: i64,
) -> Result<(Lock, LockOutcome), PinError> {
    if spec.is_multi_platform() {
        return Err(PinError::MultiPlatform {
            recipe: recipe.to_path_buf(),
        });
    }
    let path = lock_path(recipe);
    if !needs_lock(spec) {
        let empty = Lock {
            version: LOCK_VERSION,
            recipe: lock::inputs_digest(spec),
            debian: Vec::new(),
            pypi: Vec::new(),
        };
        return Ok((empty, LockOutcome::NotNeeded));
    }
    // A multi-platform lock (the recipe named several platforms, or was built with
    // `--platform`) serves this platform through its block.
    let file = if path.exists() {
        Some(lock::read_any(&path)?)
    } else {
        None
    };
    let existing = match &file {
        Some(LockFile::Single(l)) => Some(l.clone()),
        Some(LockFile::Multi(m)) => m.get(&spec.platform).cloned(),
        None => None,
    };
    let prefer = match (mode, &existing) {
        (LockMode::Locked, None) if file.is_none() => {
            return Err(PinError::Missing {
                lock: path,
                recipe: recipe.to_path_buf(),
            });
        }
        (LockMode::Locked, None) => {
            return Err(PinError::Stale {
                lock: path,
                recipe: recipe.to_path_buf(),
            });
        }
        (LockMode::Locked, Some(l)) if !l.is_current(spec) => {
            return Err(PinError::Stale {
                lock: path,
                recipe: recipe.to_path_buf(),
            });
        }
        (LockMode::Locked | LockMode::Auto, Some(l)) if l.is_current(spec) => {
            return Ok((l.clone(), LockOutcome::Reused));
        }
        (LockMode::Update(names), Some(l)) => {
            let locked = pinned_versions(l);
            for n in names {
                if !is_locked(&locked, n) {
                    return Err(PinError::NotLocked(n.clone()));
                }
            }
            without(locked, names)
        }
        // A stale lock under Auto keeps what still fits, as `cargo build` does.
        (LockMode::Auto, Some(l)) => pinned_versions(l),
        _ => BTreeMap::new(),
    };
    let fresh = resolve(spec, store, fetcher, now, prefer)?;
    let before = existing.clone().unwrap_or_else(|| Lock {
        version: LOCK_VERSION,
        recipe: String::new(),
        debian: Vec::new(),
        pypi: Vec::new(),
    });
    let changes = lock::diff(&before, &fresh);
    if let LockMode::Update(names) = mode {
        only_named_move(names, &changes)?;
    }
    // One platform of a multi-platform lock (`--platform P`) replaces only its block: the
    // other platforms' resolutions stay.
    let updated = match file {
        Some(LockFile::Multi(mut m)) => {
            match m.platforms.iter_mut().find(|(p, _)| *p == spec.platform) {
                Some((_, block)) => *block = fresh.clone(),
                None => m.platforms.push((spec.platform.clone(), fresh.clone())),
            }
            LockFile::Multi(m)
        }
        _ => LockFile::Single(fresh.clone()),
    };
    if existing.as_ref() != Some(&fresh) {
        lock::write_any(&path, &updated)?;
    }
    Ok((fresh, LockOutcome::Written(changes)))
}

/// Whether `name` (a Debian package or a Python project, any spelling) is in `locked`.
fn is_locked(locked: &BTreeMap<String, String>, name: &str) -> bool {
    locked.contains_key(name) || locked.contains_key(&crate::pypi::filename::normalize_name(name))
}

/// `locked` without the packages `names` names.
fn without(locked: BTreeMap<String, String>, names: &[String]) -> BTreeMap<String, String> {
    locked
        .into_iter()
        .filter(|(name, _)| {
            !names
                .iter()
                .any(|n| n == name || crate::pypi::filename::normalize_name(n) == *name)
        })
        .collect()
}

/// `update PKG…`: new dependencies may appear; nothing else that was locked may move.
fn only_named_move(names: &[String], changes: &[LockChange]) -> Result<(), PinError> {
    let others: Vec<String> = changes
        .iter()
        .filter(|c| !names.iter().any(|n| n == c.name()) && !matches!(c, LockChange::Added { .. }))
        .map(ToString::to_string)
        .collect();
    if others.is_empty() {
        Ok(())
    } else {
        Err(PinError::WouldMove {
            named: names.join(", "),
            others: others.join("; "),
        })
    }
}

/// An empty lock: the `before` of a first resolution.
fn empty_lock(recipe: String) -> Lock {
    Lock {
        version: LOCK_VERSION,
        recipe,
        debian: Vec::new(),
        pypi: Vec::new(),
    }
}

/// Gets one lock per platform of `spec`, in recipe order, as `mode` allows, writing
/// `recipe.lock` when it changes. A single-platform recipe is [`obtain`]'s (same file, same
/// format); a multi-platform recipe's file is a [`MultiLock`], where each platform is
/// resolved, reused, refused under `--locked` or updated on its own: a platform whose
/// inputs did not change keeps its resolution, also when it comes from a single-platform
/// lock of the same recipe. The changes reported are every platform's, each listed once.
///
/// # Errors
/// [`PinError`].
pub fn obtain_platforms(
    recipe: &Path,
    spec: &ImageSpec,
    mode: &LockMode,
    store: &Store,
    fetcher: &Fetcher,
    now: i64,
) -> Result<(Vec<(Platform, Lock)>, LockOutcome), PinError> {
    if !spec.is_multi_platform() {
        let (lock, outcome) = obtain(recipe, spec, mode, store, fetcher, now)?;
        return Ok((vec![(spec.platform.clone(), lock)], outcome));
    }
    let platforms = spec.platforms();
    if !needs_lock(spec) {
        let empty = platforms
            .iter()
            .map(|p| {
                (
                    p.clone(),
                    empty_lock(lock::inputs_digest(&spec.for_platform(p))),
                )
            })
            .collect();
        return Ok((empty, LockOutcome::NotNeeded));
    }
    let path = lock_path(recipe);
    let existing = if path.exists() {
        Some(lock::read_any(&path)?)
    } else {
        None
    };
    // What was locked for a platform: its block, or a single-platform lock of this recipe
    // (current for that platform, or, to keep versions, for the first platform).
    let prior = |p: &Platform| -> Option<&Lock> {
        match &existing {
            Some(LockFile::Multi(m)) => m.get(p),
            Some(LockFile::Single(l))
                if l.is_current(&spec.for_platform(p)) || *p == spec.platform =>
            {
                Some(l)
            }
            _ => None,
        }
    };
    match (mode, &existing) {
        (LockMode::Locked, None) => {
            return Err(PinError::Missing {
                lock: path,
                recipe: recipe.to_path_buf(),
            });
        }
        (LockMode::Locked | LockMode::Auto, Some(LockFile::Multi(m))) if m.is_current(spec) => {
            return Ok((m.platforms.clone(), LockOutcome::Reused));
        }
        (LockMode::Locked, Some(_)) => {
            return Err(PinError::Stale {
                lock: path,
                recipe: recipe.to_path_buf(),
            });
        }
        (LockMode::Update(names), _) => {
            let locked: Vec<BTreeMap<String, String>> = platforms
                .iter()
                .filter_map(|p| prior(p).map(pinned_versions))
                .collect();
            if let Some(n) = names
                .iter()
                .find(|n| !locked.iter().any(|l| is_locked(l, n)))
            {
                return Err(PinError::NotLocked(n.clone()));
            }
        }
        _ => {}
    }
    let mut locks = Vec::with_capacity(platforms.len());
    let mut changes: Vec<LockChange> = Vec::new();
    for p in &platforms {
        let one = spec.for_platform(p);
        let before = prior(p);
        let fresh = match (mode, before) {
            (LockMode::Auto, Some(l)) if l.is_current(&one) => l.clone(),
            // A stale lock under Auto keeps what still fits, as `cargo build` does.
            (LockMode::Auto, Some(l)) => resolve(&one, store, fetcher, now, pinned_versions(l))?,
            (LockMode::Update(names), Some(l)) => resolve(
                &one,
                store,
                fetcher,
                now,
                without(pinned_versions(l), names),
            )?,
            _ => resolve(&one, store, fetcher, now, BTreeMap::new())?,
        };
        let platform_changes = lock::diff(before.unwrap_or(&empty_lock(String::new())), &fresh);
        if let LockMode::Update(names) = mode {
            only_named_move(names, &platform_changes)?;
        }
        for c in platform_changes {
            if !changes.contains(&c) {
                changes.push(c);
            }
        }
        locks.push((p.clone(), fresh));
    }
    let file = LockFile::Multi(MultiLock::new(spec, locks.clone()));
    if existing.as_ref() != Some(&file) {
        lock::write_any(&path, &file)?;
    }
    Ok((locks, LockOutcome::Written(changes)))
}

/// The image's Python environment, read from its locked Debian packages: the newest
/// `python3.X` interpreter and `libc6`.
///
/// # Errors
/// No `python3.X` or `libc6` among the packages.
pub fn python_target(debs: &[LockedDeb], spec: &ImageSpec) -> Result<Target, PinError> {
    let python = image_python(debs).ok_or(PinError::NoPython)?;
    let libc = image_libc(debs).ok_or_else(|| PinError::Target("the image has no libc6".into()))?;
    Target::from_debian(&python.version, &libc.version, &spec.platform.architecture)
        .map_err(|e| PinError::Target(e.to_string()))
}

/// The image's interpreter package: the newest `python3.X`.
fn image_python(debs: &[LockedDeb]) -> Option<&LockedDeb> {
    debs.iter()
        .filter(|d| {
            d.name
                .strip_prefix("python3.")
                .is_some_and(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
        })
        .max_by_key(|d| {
            d.name
                .trim_start_matches("python3.")
                .parse::<u32>()
                .unwrap_or(0)
        })
}

fn image_libc(debs: &[LockedDeb]) -> Option<&LockedDeb> {
    debs.iter().find(|d| d.name == "libc6")
}

/// The Python half of a lock: one resolution across all layers, for the image's target.
fn resolve_wheels(
    spec: &ImageSpec,
    store: &Store,
    fetcher: &Fetcher,
    target: &Target,
    prefer: &BTreeMap<String, String>,
    pages: std::sync::Arc<crate::pypi::client::PageCache>,
) -> Result<Vec<LockedWheel>, PinError> {
    let client = PypiClient::with_pages(fetcher, store, spec.pypi.as_ref(), target, pages);
    let env = target.marker_env();
    let mut layers = Vec::new();
    for l in &spec.layers {
        let mut reqs = Vec::new();
        for item in &l.items {
            if let LayerItem::Pypi { requirements } = item {
                for r in requirements {
                    let req: Requirement = Requirement::from_str(r)
                        .map_err(|e| PinError::Requirement(r.clone(), e.to_string()))?;
                    // A marker the image cannot decide is an error, not a guess.
                    if let Err(e) = target.evaluate(&req.marker, &[]) {
                        return Err(PinError::Requirement(r.clone(), e.to_string()));
                    }
                    reqs.push(req);
                }
            }
        }
        if !reqs.is_empty() {
            layers.push((l.name.clone(), reqs));
        }
    }
    let python_version =
        Version::from_str(&target.python_full).map_err(|e| PinError::Target(e.to_string()))?;
    let prefer = prefer
        .iter()
        .filter_map(|(k, v)| Version::from_str(v).ok().map(|v| (k.clone(), v)))
        .collect();
    let roots: Vec<Requirement> = layers
        .iter()
        .flat_map(|(_, reqs)| reqs.iter())
        // A requirement whose marker is false for the image is never resolved.
        .filter(|r| target.evaluate(&r.marker, &[]).unwrap_or(true))
        .cloned()
        .collect();
    let req = PyRequest {
        layers,
        env: &env,
        python_version,
        prefer,
    };
    let downloads = EagerDownloads::default();
    let scheme = crate::pypi::install::scheme_for(spec, target);
    let wheels = std::thread::scope(|s| {
        // Eager: the wheels of the versions the prefetch finds (the newest, which the
        // resolution nearly always picks) download while the resolver runs.
        if fetcher.eager {
            for _ in 0..fetcher.parallel.max(1) {
                s.spawn(|| downloads.work(fetcher, store, &scheme));
            }
        }
        let eager = fetcher.eager.then_some(&downloads);
        let result = (|| {
            prefetch(&client, target, roots, eager);
            let resolution =
                resolve_python(&req, &client).map_err(|e| PinError::Python(Box::new(e)))?;
            chosen_wheels(&client, fetcher, store, resolution, eager)
        })();
        downloads.close();
        result
    })?;
    if let Some(p) = &fetcher.prebuild {
        p.finish();
    }
    Ok(wheels)
}

/// Downloads queued while resolving, done by a few worker threads; each wheel once.
/// Failures are ignored here: the build's own fetch retries and reports them.
#[derive(Default)]
struct EagerDownloads {
    queue: std::sync::Mutex<Queue>,
    ready: std::sync::Condvar,
}

#[derive(Default)]
struct Queue {
    waiting: std::collections::VecDeque<(Download, EagerWheel)>,
    /// Every wheel queued so far (by sha256), so none is fetched twice.
    queued: BTreeSet<composer_store::Digest>,
    /// No more downloads will be queued.
    closed: bool,
}

impl EagerDownloads {
    /// Queues `d`, the download of wheel `w`, unless it was queued before.
    fn push(&self, d: Download, w: EagerWheel) {
        if let Ok(mut q) = self.queue.lock()
            && !q.closed
            && q.queued.insert(d.sha256.clone())
        {
            q.waiting.push_back((d, w));
            self.ready.notify_one();
        }
    }

    /// No more downloads: workers finish the queue and stop.
    fn close(&self) {
        if let Ok(mut q) = self.queue.lock() {
            q.closed = true;
        }
        self.ready.notify_all();
    }

    /// The next download, waiting for one; `None` once closed and empty.
    fn next(&self) -> Option<(Download, EagerWheel)> {
        let mut q = self.queue.lock().ok()?;
        loop {
            if let Some(d) = q.waiting.pop_front() {
                return Some(d);
            }
            if q.closed {
                return None;
            }
            q = self.ready.wait(q).ok()?;
        }
    }

    /// Downloads queued wheels until closed, handing each stored one to the fetcher's
    /// prebuild.
    fn work(&self, fetcher: &Fetcher, store: &Store, scheme: &Scheme) {
        while let Some((d, w)) = self.next() {
            if fetcher.fetch_to_store(store, &d).is_ok()
                && let Some(p) = &fetcher.prebuild
            {
                p.wheel(scheme, &w);
            }
        }
    }
}

/// The lock entries of a resolution: each package's best wheel for the image.
fn chosen_wheels(
    client: &PypiClient<'_>,
    fetcher: &Fetcher,
    store: &Store,
    resolution: crate::pypi::resolve::PyResolution,
    eager: Option<&EagerDownloads>,
) -> Result<Vec<LockedWheel>, PinError> {
    let mut wheels = Vec::with_capacity(resolution.packages.len());
    for p in resolution.packages {
        let chosen = client
            .best_wheel(&p.name, &p.version)
            .map_err(|e| PinError::Wheel(e.to_string()))?
            .ok_or_else(|| {
                PinError::Wheel(format!(
                    "{} {}: no wheel compatible with the image",
                    p.name, p.version
                ))
            })?;
        let download = client
            .download(&chosen)
            .map_err(|e| PinError::Wheel(e.to_string()))?;
        if let Some(q) = eager {
            q.push(
                download.clone(),
                EagerWheel {
                    digest: download.sha256.clone(),
                    filename: chosen.file.filename.clone(),
                    name: p.name.clone(),
                    version: p.version.to_string(),
                    requested: p.reason == "requested",
                },
            );
        }
        let size = match download.size {
            Some(size) => size,
            // The index did not say: fetch it (verified) to learn the size for the lock.
            None => {
                fetcher
                    .fetch_to_store(store, &download)
                    .map_err(|e| PinError::Wheel(e.to_string()))?;
                store
                    .blob_size(&download.sha256)
                    .map_err(|e| PinError::Wheel(e.to_string()))?
                    .unwrap_or_default()
            }
        };
        wheels.push(LockedWheel {
            name: p.name,
            version: p.version.to_string(),
            filename: chosen.file.filename.clone(),
            index: chosen.index.clone(),
            url: chosen.file.url.clone(),
            sha256: download.sha256.hex().to_string(),
            size,
            layer: p.layer,
            extras: p.extras,
            reason: p.reason,
        });
    }
    Ok(wheels)
}

/// What [`prefetch`] was asked for of one project so far.
#[derive(Default, Clone)]
struct Wanted {
    extras: BTreeSet<pep508_rs::ExtraName>,
    /// Every requirement's specifiers (a version must meet them all).
    specifiers: Vec<pep440_rs::VersionSpecifiers>,
}

/// Warms the client's caches concurrently: the project pages and the metadata of the newest
/// usable version that `roots` allow, then of the dependencies whose markers hold for the
/// image (with the extras asked for), round after round until no project or extra is new:
/// the dependency graph of the newest allowed versions, which the resolution nearly always
/// picks. The resolver asks one question at a time; most of its answers are then already
/// here. With `eager`, the best wheel of each newest version is queued for download. Errors
/// are left for the resolver to report.
fn prefetch(
    client: &PypiClient<'_>,
    target: &Target,
    roots: Vec<Requirement>,
    eager: Option<&EagerDownloads>,
) {
    use crate::pypi::resolve::Provider;
    use rayon::prelude::*;
    // Network-bound: more requests in flight than cores.
    let Ok(pool) = rayon::ThreadPoolBuilder::new().num_threads(8).build() else {
        return;
    };
    // Requirement names are normalized already (`PackageName`).
    let requested: BTreeSet<String> = roots.iter().map(|r| r.name.to_string()).collect();
    let mut round = roots;
    // Each project looked at: the extras and version specifiers it was asked for with.
    let mut seen: BTreeMap<String, Wanted> = BTreeMap::new();
    // A bound for a graph that keeps growing (it cannot: names and extras are finite).
    for _ in 0..32 {
        let mut todo: BTreeMap<String, Wanted> = BTreeMap::new();
        for r in round {
            let name = r.name.to_string();
            let first = !seen.contains_key(&name);
            let wanted = seen.entry(name.clone()).or_default();
            let new_extras = r.extras.iter().any(|e| !wanted.extras.contains(e));
            wanted.extras.extend(r.extras.iter().cloned());
            if let Some(pep508_rs::VersionOrUrl::VersionSpecifier(specs)) = &r.version_or_url {
                wanted.specifiers.push(specs.clone());
            }
            if first || new_extras {
                todo.insert(name, wanted.clone());
            }
        }
        if todo.is_empty() {
            break;
        }
        let next: Vec<Requirement> = pool.install(|| {
            todo.into_iter()
                .collect::<Vec<_>>()
                .par_iter()
                .flat_map_iter(|(name, wanted)| {
                    let extras: Vec<pep508_rs::ExtraName> = wanted.extras.iter().cloned().collect();
                    let newest = client.versions(name).ok().and_then(|vs| {
                        vs.into_iter()
                            .filter(|c| c.has_wheel && !c.yanked && !c.version.any_prerelease())
                            .map(|c| c.version)
                            .filter(|v| wanted.specifiers.iter().all(|s| s.contains(v)))
                            .max()
                    });
                    if let (Some(q), Some(v)) = (eager, &newest)
                        && let Ok(Some(w)) = client.best_wheel(name, v)
                        && let Ok(d) = client.download(&w)
                    {
                        let name = name.clone();
                        q.push(
                            d.clone(),
                            EagerWheel {
                                digest: d.sha256,
                                filename: w.file.filename.clone(),
                                requested: requested.contains(&name),
                                name,
                                version: v.to_string(),
                            },
                        );
                    }
                    newest
                        .and_then(|v| client.metadata(name, &v).ok())
                        .map(|m| {
                            m.requires_dist
                                .iter()
                                // A marker the image cannot decide: looked at, in case.
                                .filter(|r| target.evaluate(&r.marker, &extras).unwrap_or(true))
                                .cloned()
                                .collect::<Vec<_>>()
                        })
                        .unwrap_or_default()
                })
                .collect()
        });
        round = next;
    }
}
