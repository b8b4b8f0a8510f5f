//! `compose lock` and `compose update`.

use std::path::PathBuf;
use std::process::ExitCode;

use composer::pin::{self, LockMode, LockOutcome};
use miette::{IntoDiagnostic, Result, WrapErr};

use super::{fetcher, load_recipe, now, open_store, package_counts, with_platforms};
use crate::args::LockArgs;

pub(crate) fn run(
    store: Option<PathBuf>,
    a: LockArgs,
    update: Option<Vec<String>>,
) -> Result<ExitCode> {
    let spec = with_platforms(load_recipe(&a.recipe)?, &a.platforms)?;
    let store = open_store(store)?;
    let mode = match update {
        Some(names) if !names.is_empty() => LockMode::Update(names),
        _ => LockMode::Refresh,
    };
    let (locks, outcome) =
        pin::obtain_platforms(&a.recipe, &spec, &mode, &store, &fetcher(), now())
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
                "{} is up to date ({})",
                path.display(),
                package_counts(&locks)
            );
        }
        LockOutcome::Written(changes) => {
            println!(
                "wrote {} ({}); changes:",
                path.display(),
                package_counts(&locks)
            );
            for c in changes {
                println!("  {c}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
