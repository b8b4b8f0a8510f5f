//! One function per subcommand; each only calls the `composer` library and prints.

mod audit;
mod build;
mod check;
mod diff;
mod graph;
mod inspect;
mod lock;
mod push;
mod sbom;
mod store;
mod verify;

use std::path::PathBuf;
use std::process::ExitCode;

use composer::fetch::Fetcher;
use composer::lock::Lock;
use composer::pin::{self, LockMode, LockOutcome};
use composer::{BuildOptions, Compression, Store};
use miette::{IntoDiagnostic, Result, WrapErr};

use crate::args::{Cli, Command, CompressionArg, JobsArg};

pub(crate) fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Build(a) => build::run(cli.store, a),
        Command::Graph(a) => graph::run(cli.store, a),
        Command::Lock(a) => lock::run(cli.store, a, None),
        Command::Update(a) => {
            let names = a.packages.clone();
            lock::run(cli.store, a.lock, Some(names))
        }
        Command::Inspect(a) => inspect::run(a),
        Command::Check(a) => check::run(cli.store, a),
        Command::Push(a) => push::run(a),
        Command::Store(c) => store::run(cli.store, c),
        Command::Diff(a) => diff::run(a),
        Command::Audit(a) => audit::run(a),
        Command::Sbom(a) => sbom::run(a),
        // The user's store is never used: the rebuild is independent of it.
        Command::Verify(a) => verify::run(a),
    }
}

pub(crate) fn open_store(path: Option<PathBuf>) -> Result<Store> {
    let root = match path {
        Some(p) => p,
        None => Store::default_root().into_diagnostic()?,
    };
    Store::open(&root)
        .into_diagnostic()
        .wrap_err("cannot open the store")
}

pub(crate) fn build_options(jobs: &JobsArg, compression: CompressionArg) -> Result<BuildOptions> {
    let mut opts = BuildOptions::default();
    if let Some(j) = jobs.jobs {
        opts.jobs = usize::from(j);
    }
    opts.compression = match compression {
        CompressionArg::Zstd => Compression::default(),
        CompressionArg::Gzip => Compression::gzip(),
    };
    opts.source_date_epoch = source_date_epoch()?;
    Ok(opts)
}

/// `SOURCE_DATE_EPOCH` (reproducible-builds.org): whole seconds since 1970.
fn source_date_epoch() -> Result<Option<i64>> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) if v.trim().is_empty() => Ok(None),
        Ok(v) => v.trim().parse::<i64>().map(Some).map_err(|_| {
            miette::miette!(
                help = "set it to whole seconds since 1970, e.g. SOURCE_DATE_EPOCH=1767225600",
                "SOURCE_DATE_EPOCH is not an integer: {v:?}"
            )
        }),
        Err(_) => Ok(None),
    }
}

/// The download client, with advice for pinned files that left the mirror.
pub(crate) fn fetcher() -> Fetcher {
    let mut f = Fetcher::default();
    f.not_found_hint = "; the lock pins a file the mirror no longer has: run `compose update` to move to current versions, or add `snapshot \"YYYYMMDDTHHMMSSZ\"` to the recipe's debian block to fetch from snapshot.debian.org".into();
    f
}

/// Seconds since 1970, for signature and Valid-Until checks.
pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Gets the recipe's lock as `mode` allows and reports what happened on stderr.
pub(crate) fn obtain_lock(
    recipe: &std::path::Path,
    spec: &composer::ImageSpec,
    mode: &LockMode,
    store: &Store,
    fetcher: &Fetcher,
) -> Result<Lock> {
    let (lock, outcome) = pin::obtain(recipe, spec, mode, store, fetcher, now())
        .into_diagnostic()
        .wrap_err_with(|| format!("cannot lock {}", recipe.display()))?;
    match outcome {
        LockOutcome::NotNeeded | LockOutcome::Reused => {}
        LockOutcome::Written(changes) => {
            eprintln!(
                "wrote {} ({} packages)",
                pin::lock_path(recipe).display(),
                lock.debian.len()
            );
            for c in changes {
                eprintln!("  {c}");
            }
        }
    }
    Ok(lock)
}

pub(crate) fn load_recipe(path: &std::path::Path) -> Result<composer::ImageSpec> {
    composer::recipe::load(path).map_err(miette::Report::new)
}

/// `spec` with the platforms of `--platform` (none: the recipe's own).
pub(crate) fn with_platforms(
    spec: composer::ImageSpec,
    platforms: &[String],
) -> Result<composer::ImageSpec> {
    let mut parsed: Vec<composer::recipe::Platform> = Vec::new();
    for text in platforms {
        let p = composer::recipe::parse_platform(text)
            .map_err(|e| miette::miette!(help = e.help, "--platform {text:?}: {}", e.message))?;
        if parsed.contains(&p) {
            miette::bail!("--platform names {p} twice");
        }
        parsed.push(p);
    }
    Ok(if parsed.is_empty() {
        spec
    } else {
        spec.with_platforms(&parsed)
    })
}

/// Gets one lock per platform of `spec` as `mode` allows and reports what happened on
/// stderr.
pub(crate) fn obtain_locks(
    recipe: &std::path::Path,
    spec: &composer::ImageSpec,
    mode: &LockMode,
    store: &Store,
    fetcher: &Fetcher,
) -> Result<Vec<(composer::recipe::Platform, Lock)>> {
    let (locks, outcome) = pin::obtain_platforms(recipe, spec, mode, store, fetcher, now())
        .into_diagnostic()
        .wrap_err_with(|| format!("cannot lock {}", recipe.display()))?;
    if let LockOutcome::Written(changes) = outcome {
        eprintln!(
            "wrote {} ({})",
            pin::lock_path(recipe).display(),
            package_counts(&locks)
        );
        for c in changes {
            eprintln!("  {c}");
        }
    }
    Ok(locks)
}

/// `120 packages`, or `linux/amd64: 120 packages, linux/arm64: 119 packages`.
pub(crate) fn package_counts(locks: &[(composer::recipe::Platform, Lock)]) -> String {
    match locks {
        [(_, lock)] => format!("{} packages", lock.debian.len()),
        _ => locks
            .iter()
            .map(|(p, l)| format!("{p}: {} packages", l.debian.len()))
            .collect::<Vec<_>>()
            .join(", "),
    }
}
