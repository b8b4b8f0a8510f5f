//! `compose`: the command line over the composer library. Parses arguments, calls public
//! library functions, prints data on stdout and progress and errors on stderr. No logic.

mod args;
mod commands;
mod progress;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = args::Cli::parse();
    match commands::run(args) {
        Ok(code) => code,
        Err(report) => {
            if report.source_code().is_some()
                || report.labels().is_some()
                || report.help().is_some()
                || report.related().is_some()
            {
                // Recipe diagnostics: spans, codes and help, rendered by miette.
                eprintln!("{report:?}");
            } else {
                eprintln!("error: {}", one_paragraph(&report));
            }
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes as one line, skipping a cause whose text an outer message
/// already includes (library errors often name their cause in their own message).
fn one_paragraph(report: &miette::Report) -> String {
    let mut out = String::new();
    for cause in report.chain() {
        let msg = cause.to_string();
        if out.contains(&msg) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&msg);
    }
    out
}
