//! `compose lock` and `compose update`.

use std::path::PathBuf;
use std::process::ExitCode;

use composer::pin::{self, LockMode, LockOutcome};
use miette::{IntoDiagnostic, Result, WrapErr};

use super::{fetcher, load_recipe, now, open_store};
use crate::args::LockArgs;

pub(crate) fn run(
    store: Option<PathBuf>,
    a: LockArgs,
    update: Option<Vec<String>>,
) -> Result<ExitCode> {
    let spec = load_recipe(&a.recipe)?;
    let store = open_store(store)?;
    let mode = match update {
        Some(names) if !names.is_empty() => LockMode::Update(names),
        _ => LockMode::Refresh,
    };
    let (lock, outcome) = pin::obtain(&a.recipe, &spec, &mode, &store, &fetcher(), now())
        .into_diagnostic()
        .wrap_err_with(|| format!("cannot lock {}", a.recipe.display()))?;
    let path = pin::lock_path(&a.recipe);
    match outcome {
        LockOutcome::NotNeeded => println!(
            "{} installs no packages; nothing to lock",
            a.recipe.display()
        ),
        LockOutcome::Reused => println!("{} is up to date", path.display()),
        LockOutcome::Written(changes) if changes.is_empty() => {
            println!(
                "{} is up to date ({} packages)",
                path.display(),
                lock.debian.len()
            );
        }
        LockOutcome::Written(changes) => {
            println!(
                "wrote {} ({} packages); changes:",
                path.display(),
                lock.debian.len()
            );
            for c in changes {
                println!("  {c}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
