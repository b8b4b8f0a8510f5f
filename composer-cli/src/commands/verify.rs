//! `compose verify`: rebuild from the lock in a fresh temporary store and compare.

use std::path::PathBuf;
use std::process::ExitCode;

use composer::pin::LockMode;
use composer::{Format, Inputs, NoReporter, Store, build, export};
use miette::{IntoDiagnostic, Result, WrapErr};

use super::{build_options, fetcher, load_recipe, obtain_lock, open_store};
use crate::args::{CompressionArg, VerifyArgs};

pub(crate) fn run(a: VerifyArgs) -> Result<ExitCode> {
    let spec = load_recipe(&a.recipe)?;
    let against = a
        .against
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("out/{}", spec.name)));
    let view = composer::read_image(&against)
        .into_diagnostic()
        .wrap_err_with(|| format!("cannot read the image to verify, {}", against.display()))?;
    // Rebuild the way the image was built: its compression and its epoch.
    let compression = match a.compression {
        Some(CompressionArg::Gzip) => CompressionArg::Gzip,
        Some(CompressionArg::Zstd) => CompressionArg::Zstd,
        None if view
            .layers
            .iter()
            .any(|l| l.media_type.as_deref().is_some_and(|m| m.ends_with("gzip"))) =>
        {
            CompressionArg::Gzip
        }
        None => CompressionArg::Zstd,
    };
    let mut opts = build_options(&a.jobs, compression)?;
    if opts.source_date_epoch.is_none()
        && let Ok(created) = composer::time::parse_rfc3339(&view.config.created)
        && Some(created) != spec.epoch
    {
        opts.source_date_epoch = Some(created);
    }
    let tmp = tempfile::Builder::new()
        .prefix("compose-verify-")
        .tempdir()
        .into_diagnostic()
        .wrap_err("cannot create a temporary directory")?;
    let fresh = Store::open(tmp.path().join("store"))
        .into_diagnostic()
        .wrap_err("cannot create the temporary store")?;
    let fetcher = fetcher();
    let lock = obtain_lock(&a.recipe, &spec, &LockMode::Locked, &fresh, &fetcher)?;
    if let Some(from) = &a.inputs_from {
        let src = open_store(Some(from.clone()))?;
        let n = composer::verify::import_inputs(&src, &fresh, &lock)
            .into_diagnostic()
            .wrap_err_with(|| format!("cannot import inputs from {}", from.display()))?;
        eprintln!(
            "imported {n} locked input(s) from {}, re-verified",
            from.display()
        );
    }
    let inputs = Inputs {
        lock: Some(&lock),
        fetcher: &fetcher,
        cache: None,
    };
    let image = build(&fresh, &spec, inputs, &opts, &NoReporter)
        .into_diagnostic()
        .wrap_err_with(|| format!("cannot rebuild {}", a.recipe.display()))?;
    let format = match view.format {
        "oci-archive" => Format::OciArchive,
        "docker-archive" => Format::DockerArchive,
        _ => Format::Layout,
    };
    let rebuilt = tmp.path().join("rebuilt");
    export(&fresh, &image, format, &rebuilt)
        .into_diagnostic()
        .wrap_err("cannot write the rebuilt image")?;
    let cmp = composer::verify::compare(&against, &rebuilt)
        .into_diagnostic()
        .wrap_err("cannot compare")?;
    if a.json {
        println!("{:#}", serde_json::to_value(&cmp).into_diagnostic()?);
    } else if cmp.identical {
        println!(
            "verified: {} rebuilds bit for bit from {} and its lock ({})",
            against.display(),
            a.recipe.display(),
            cmp.expected
        );
    } else {
        println!(
            "MISMATCH: {} is {}, the rebuild from {} is {}",
            against.display(),
            cmp.expected,
            a.recipe.display(),
            cmp.rebuilt
        );
        for l in &cmp.layers {
            if l.expected != l.rebuilt {
                println!(
                    "  layer {}: {} ≠ {}",
                    l.index,
                    l.expected.as_deref().unwrap_or("(absent)"),
                    l.rebuilt.as_deref().unwrap_or("(absent)")
                );
            }
        }
        if let Some(d) = &cmp.diff {
            print!("{}", composer::diff::to_text(d));
        }
        if let Some(e) = &cmp.diff_error {
            println!("no file-level diff: {e}");
        }
    }
    Ok(if cmp.identical {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
