//! `compose sbom`.

use std::process::ExitCode;

use miette::{IntoDiagnostic, Result, WrapErr};

use crate::args::{SbomArgs, SbomFormat};

pub(crate) fn run(a: SbomArgs) -> Result<ExitCode> {
    let inv = composer::inventory::read_with(&a.image, composer::inventory::Hashes::None)
        .into_diagnostic()
        .wrap_err_with(|| format!("cannot read {}", a.image.display()))?;
    let doc = match a.format {
        SbomFormat::Spdx => composer::sbom::spdx(&inv),
        SbomFormat::Cyclonedx => composer::sbom::cyclonedx(&inv),
    };
    let mut text = serde_json::to_string_pretty(&doc).into_diagnostic()?;
    text.push('\n');
    match &a.output {
        Some(p) => std::fs::write(p, text)
            .into_diagnostic()
            .wrap_err_with(|| format!("cannot write {}", p.display()))?,
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}
