//! `compose audit`.

use std::process::ExitCode;

use composer::audit::{audit, to_text};
use miette::{IntoDiagnostic, Result, WrapErr};

use crate::args::AuditArgs;

pub(crate) fn run(a: AuditArgs) -> Result<ExitCode> {
    let inv = composer::inventory::read_with(&a.image, composer::inventory::Hashes::Sha256AndMd5)
        .into_diagnostic()
        .wrap_err_with(|| format!("cannot read {}", a.image.display()))?;
    let lock = match &a.lock {
        Some(p) => Some(
            composer::lock::read(p)
                .into_diagnostic()
                .wrap_err_with(|| format!("cannot read the lock {}", p.display()))?,
        ),
        None => None,
    };
    let report = audit(&inv, lock.as_ref());
    if a.json {
        let mut v = serde_json::to_value(&report).into_diagnostic()?;
        if let Some(m) = v.as_object_mut() {
            m.insert("clean".into(), report.is_clean().into());
        }
        println!("{v:#}");
    } else {
        print!("{}", to_text(&report));
    }
    Ok(if report.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
