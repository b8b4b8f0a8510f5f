//! `compose check IMAGE|RECIPE`.
//!
//! An image on disk is checked as it is. A recipe (`*.kdl`) is built first, through the same
//! path as `compose build` (lock, store), written to a temporary layout that is removed
//! afterwards, and checked with its own `check { … }` settings; nothing is written to `out/`.

use std::path::PathBuf;
use std::process::ExitCode;

use composer::Format;
use composer::check::{CheckConfig, check_image};
use miette::{IntoDiagnostic, Result, WrapErr};

use super::build::build_recipe;
use super::load_recipe;
use crate::args::CheckArgs;

fn is_recipe(p: &std::path::Path) -> bool {
    p.is_file() && p.extension().is_some_and(|e| e == "kdl")
}

pub(crate) fn run(store: Option<PathBuf>, a: CheckArgs) -> Result<ExitCode> {
    let mut report = if is_recipe(&a.target) {
        let built = build_recipe(store, &a.target, a.locked, &a.jobs, a.compression, None)?;
        let tmp = tempfile::Builder::new()
            .prefix("compose-check-")
            .tempdir()
            .into_diagnostic()
            .wrap_err("cannot create a temporary directory")?;
        let layout = tmp.path().join("image");
        composer::export(&built.store, &built.image, Format::Layout, &layout)
            .into_diagnostic()
            .wrap_err("cannot write the image")?;
        let cfg = CheckConfig::from_spec(&built.spec.check);
        let mut r = check_image(&layout, &cfg).into_diagnostic()?;
        r.image = format!("{} ({})", a.target.display(), built.image.manifest_digest);
        r
    } else {
        let cfg = match &a.recipe {
            Some(recipe) => CheckConfig::from_spec(&load_recipe(recipe)?.check),
            None => CheckConfig::default(),
        };
        check_image(&a.target, &cfg).into_diagnostic()?
    };
    report.normalize();
    if a.json {
        println!("{:#}", serde_json::to_value(&report).into_diagnostic()?);
    } else {
        print!("{}", report.to_text());
    }
    Ok(if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
