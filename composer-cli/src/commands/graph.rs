//! `compose graph`.

use std::process::ExitCode;

use miette::{IntoDiagnostic, Result};

use super::{build_options, load_recipe};
use crate::args::GraphArgs;

pub(crate) fn run(a: GraphArgs) -> Result<ExitCode> {
    let spec = load_recipe(&a.recipe)?;
    let opts = build_options(&a.jobs, a.compression)?;
    let plan = composer::plan(&spec, &opts).into_diagnostic()?;
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
