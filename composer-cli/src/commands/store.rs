//! `compose store verify|gc|du`.

use std::path::PathBuf;
use std::process::ExitCode;

use composer::graph::human_bytes;
use miette::{IntoDiagnostic, Result};

use super::open_store;
use crate::args::StoreCommand;

pub(crate) fn run(store: Option<PathBuf>, c: StoreCommand) -> Result<ExitCode> {
    let store = open_store(store)?;
    match c {
        StoreCommand::Verify {
            no_quarantine,
            json,
        } => {
            let r = store.verify(!no_quarantine).into_diagnostic()?;
            if json {
                println!("{:#}", serde_json::to_value(&r).into_diagnostic()?);
            } else {
                println!(
                    "checked {} blobs ({}), {} nodes: {} problems",
                    r.blobs_checked,
                    human_bytes(r.bytes_checked),
                    r.nodes_checked,
                    r.problems.len()
                );
                for p in &r.problems {
                    let q = if p.quarantined { " (quarantined)" } else { "" };
                    println!("  {}: {}{q}", p.path.display(), p.what);
                }
            }
            Ok(if r.problems.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        StoreCommand::Gc { dry_run, json } => {
            let r = store.gc(dry_run).into_diagnostic()?;
            if json {
                println!("{:#}", serde_json::to_value(&r).into_diagnostic()?);
            } else {
                let verb = if dry_run { "would remove" } else { "removed" };
                println!(
                    "{verb} {} blobs and {} nodes, {} freed; {} temporary files",
                    r.blobs_removed,
                    r.nodes_removed,
                    human_bytes(r.bytes_freed),
                    r.tmp_removed
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        StoreCommand::Du { json } => {
            let r = store.du().into_diagnostic()?;
            if json {
                println!("{:#}", serde_json::to_value(&r).into_diagnostic()?);
            } else {
                println!("{}", serde_json::to_string_pretty(&r).into_diagnostic()?);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
