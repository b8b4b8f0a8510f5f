//! One function per subcommand; each only calls the `composer` library and prints.

mod build;
mod graph;
mod inspect;
mod store;

use std::path::PathBuf;
use std::process::ExitCode;

use composer::{BuildOptions, Compression, Store};
use miette::{IntoDiagnostic, Result, WrapErr};

use crate::args::{Cli, Command, CompressionArg, JobsArg};

pub(crate) fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Build(a) => build::run(cli.store, a),
        Command::Graph(a) => graph::run(a),
        Command::Inspect(a) => inspect::run(a),
        Command::Store(c) => store::run(cli.store, c),
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

pub(crate) fn load_recipe(path: &std::path::Path) -> Result<composer::ImageSpec> {
    composer::recipe::load(path).map_err(miette::Report::new)
}
