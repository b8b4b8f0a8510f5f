//! `compose graph`.

use std::path::PathBuf;
use std::process::ExitCode;

use composer::Inputs;
use composer::pin::LockMode;

use miette::{IntoDiagnostic, Result};

use super::{build_options, fetcher, load_recipe, obtain_lock, open_store, with_platforms};
use crate::args::GraphArgs;

pub(crate) fn run(store: Option<PathBuf>, a: GraphArgs) -> Result<ExitCode> {
    let spec = with_platforms(load_recipe(&a.recipe)?, a.platform.as_slice())?;
    if spec.is_multi_platform() {
        miette::bail!(
            help = "pass --platform with one of them",
            "{} names several platforms ({}); the graph is one platform's",
            a.recipe.display(),
            spec.platforms()
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let opts = build_options(&a.jobs, a.compression)?;
    let store = open_store(store)?;
    let fetcher = fetcher();
    let lock = obtain_lock(&a.recipe, &spec, &LockMode::Auto, &store, &fetcher)?;
    let inputs = Inputs {
        lock: Some(&lock),
        fetcher: &fetcher,
        cache: None,
    };
    let _shared = store.lock_shared().into_diagnostic()?;
    let plan =
        composer::plan(&store, &spec, inputs, &opts, &composer::NoReporter).into_diagnostic()?;
    if a.dot {
        print!("{}", plan.graph.render_dot());
    } else {
        print!(
            "{}",
            plan.graph
                .render_text(&plan.layers, plan.compression, plan.mtime)
        );
    }
    Ok(ExitCode::SUCCESS)
}
