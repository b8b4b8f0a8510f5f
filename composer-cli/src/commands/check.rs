//! `compose check IMAGE|RECIPE`.
//!
//! An image on disk is checked as it is. A recipe (`*.kdl`) is built first, through the same
//! path as `compose build` (lock, store), written to a temporary layout that is removed
//! afterwards, and checked with its own `check { … }` settings; nothing is written to `out/`.
//! A multi-platform image (or recipe) is checked platform by platform, one report each.
//! Each layer's index (ELF facts, metadata texts) is cached in the store by diff_id, so a
//! layer checked before is not decompressed again (for an image on disk: with `--store`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use composer::Format;
use composer::Store;
use composer::check::{CheckConfig, Report, check_image_cached};
use miette::{IntoDiagnostic, Result, WrapErr};

use super::build::{build_index, build_spec};
use super::{load_recipe, with_platforms};
use crate::args::CheckArgs;

fn is_recipe(p: &std::path::Path) -> bool {
    p.is_file() && p.extension().is_some_and(|e| e == "kdl")
}

/// The platforms to check of the image at `path`: those asked for, else every platform of a
/// multi-platform image, else none (a single-platform image).
fn image_platforms(path: &Path, asked: &[String]) -> Result<Vec<String>> {
    if !asked.is_empty() {
        return Ok(asked.to_vec());
    }
    match composer::read_image(path) {
        Err(composer::oci::read::ReadError::MultiPlatform {
            platforms,
            wanted: None,
            ..
        }) => Ok(platforms),
        Ok(_) => Ok(Vec::new()),
        Err(e) => Err(e).into_diagnostic(),
    }
}

/// Checks `path`: each of `platforms`, or the one image when there are none.
fn check_all(
    path: &Path,
    platforms: &[String],
    cfg: &CheckConfig,
    store: Option<&Store>,
) -> Result<Vec<Report>> {
    if platforms.is_empty() {
        return Ok(vec![
            check_image_cached(path, None, cfg, store).into_diagnostic()?,
        ]);
    }
    platforms
        .iter()
        .map(|p| check_image_cached(path, Some(p), cfg, store).into_diagnostic())
        .collect()
}

pub(crate) fn run(store: Option<PathBuf>, a: CheckArgs) -> Result<ExitCode> {
    let mut reports = if is_recipe(&a.target) {
        let spec = with_platforms(load_recipe(&a.target)?, &a.platforms)?;
        let tmp = tempfile::Builder::new()
            .prefix("compose-check-")
            .tempdir()
            .into_diagnostic()
            .wrap_err("cannot create a temporary directory")?;
        let layout = tmp.path().join("image");
        let cfg = CheckConfig::from_spec(&spec.check);
        if spec.is_multi_platform() {
            let (store, index) = build_index(
                store,
                &a.target,
                &spec,
                a.locked,
                &a.jobs,
                a.compression,
                true,
            )?;
            composer::oci::export_index(&store, &index, Format::Layout, &layout)
                .into_diagnostic()
                .wrap_err("cannot write the image")?;
            let platforms: Vec<String> = index.images.iter().map(|(p, _)| p.to_string()).collect();
            let mut reports = check_all(&layout, &platforms, &cfg, Some(&store))?;
            for (r, (p, image)) in reports.iter_mut().zip(&index.images) {
                r.image = format!("{} [{p}] ({})", a.target.display(), image.manifest_digest);
            }
            reports
        } else {
            let built = build_spec(
                store,
                &a.target,
                spec,
                a.locked,
                &a.jobs,
                a.compression,
                None,
                true,
            )?;
            composer::export(&built.store, &built.image, Format::Layout, &layout)
                .into_diagnostic()
                .wrap_err("cannot write the image")?;
            let mut r =
                check_image_cached(&layout, None, &cfg, Some(&built.store)).into_diagnostic()?;
            r.image = format!("{} ({})", a.target.display(), built.image.manifest_digest);
            vec![r]
        }
    } else {
        let cfg = match &a.recipe {
            Some(recipe) => CheckConfig::from_spec(&load_recipe(recipe)?.check),
            None => CheckConfig::default(),
        };
        let platforms = image_platforms(&a.target, &a.platforms)?;
        // With `--store`, layers checked before are read from the store's index cache.
        let store = store.map(|p| super::open_store(Some(p))).transpose()?;
        check_all(&a.target, &platforms, &cfg, store.as_ref())?
    };
    for r in &mut reports {
        r.normalize();
    }
    if a.json {
        let v = match reports.as_slice() {
            [one] => serde_json::to_value(one),
            all => serde_json::to_value(all),
        }
        .into_diagnostic()?;
        println!("{v:#}");
    } else {
        for r in &reports {
            print!("{}", r.to_text());
        }
    }
    Ok(if reports.iter().all(Report::passed) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
