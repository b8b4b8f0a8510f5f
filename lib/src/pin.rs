//! A recipe's lock: resolved against the live (signature-verified) indexes, reused while it
//! is current, refused when stale under `--locked`, refreshed by `compose update`. The
//! effectful glue between [`crate::debian::archive`], the pure resolver and [`crate::lock`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use composer_store::Store;

use crate::debian::archive::{self, ArchiveError, debian_arch, effective_url};
use crate::debian::resolve::{ResolveError, ResolveRequest, resolve as resolve_debian};
use crate::fetch::Fetcher;
use crate::lock::{self, LOCK_VERSION, Lock, LockChange, LockError, LockedDeb};
use crate::recipe::{ImageSpec, LayerItem};

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
            .any(|i| matches!(i, LayerItem::Debian { .. }))
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
    let src = spec.debian.as_ref().ok_or(PinError::NoSource)?;
    let arch = debian_arch(
        &spec.platform.architecture,
        spec.platform.variant.as_deref(),
    );
    let index = archive::load_index(fetcher, store, src, &arch, now).map_err(Box::new)?;
    let layers = spec
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
    lock.debian = resolution
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
        .collect();
    Ok(lock)
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
    let existing = if path.exists() {
        Some(lock::read(&path)?)
    } else {
        None
    };
    let prefer = match (mode, &existing) {
        (LockMode::Locked, None) => {
            return Err(PinError::Missing {
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
            for n in names {
                if !l.debian.iter().any(|d| &d.name == n) {
                    return Err(PinError::NotLocked(n.clone()));
                }
            }
            l.debian
                .iter()
                .filter(|d| !names.contains(&d.name))
                .map(|d| (d.name.clone(), d.version.clone()))
                .collect()
        }
        // A stale lock under Auto keeps what still fits, as `cargo build` does.
        (LockMode::Auto, Some(l)) => l
            .debian
            .iter()
            .map(|d| (d.name.clone(), d.version.clone()))
            .collect(),
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
        // New dependencies may appear; nothing else that was locked may move.
        let others: Vec<String> = changes
            .iter()
            .filter(|c| {
                !names.iter().any(|n| n == c.name()) && !matches!(c, LockChange::Added { .. })
            })
            .map(ToString::to_string)
            .collect();
        if !others.is_empty() {
            return Err(PinError::WouldMove {
                named: names.join(", "),
                others: others.join("; "),
            });
        }
    }
    if existing.as_ref() != Some(&fresh) {
        lock::write(&path, &fresh)?;
    }
    Ok((fresh, LockOutcome::Written(changes)))
}
