//! `compose diff`.

use std::process::ExitCode;

use composer::diff::{DiffOptions, diff, to_text};
use miette::{IntoDiagnostic, Result, WrapErr};

use crate::args::DiffArgs;

/// Exit status: 0 when identical, 1 when they differ (as `diff(1)`); errors exit 2 via main.
pub(crate) fn run(a: DiffArgs) -> Result<ExitCode> {
    let read = |p: &std::path::Path| {
        composer::inventory::read(p)
            .into_diagnostic()
            .wrap_err_with(|| format!("cannot read {}", p.display()))
    };
    let (ia, ib) = (read(&a.a)?, read(&a.b)?);
    let report = diff(
        &ia,
        &ib,
        DiffOptions {
            semantic: a.semantic,
        },
    );
    if a.json {
        let mut v = serde_json::to_value(&report).into_diagnostic()?;
        if let Some(m) = v.as_object_mut() {
            m.insert("identical".into(), report.is_identical().into());
        }
        println!("{v:#}");
    } else {
        println!("--- {}\n+++ {}", a.a.display(), a.b.display());
        print!("{}", to_text(&report));
    }
    Ok(if report.is_identical() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
