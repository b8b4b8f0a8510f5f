//! `compose inspect`.

use std::process::ExitCode;

use composer::graph::human_bytes;
use miette::{IntoDiagnostic, Result};

use crate::args::InspectArgs;

pub(crate) fn run(a: InspectArgs) -> Result<ExitCode> {
    let view = composer::read_image(&a.image).into_diagnostic()?;
    // What each layer holds, from the provenance map at its start (unreadable → none).
    let held: Vec<Vec<String>> = composer::inventory::read_provenance(&a.image)
        .map(|(_, docs)| {
            docs.iter()
                .map(|d| {
                    d.as_ref().map_or_else(Vec::new, |d| {
                        d.origins
                            .iter()
                            .filter(|o| o.version.is_some())
                            .map(composer::provenance::Origin::label)
                            .collect()
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    if a.json {
        let mut v = serde_json::to_value(&view).into_diagnostic()?;
        if let Some(layers) = v.get_mut("layers").and_then(|l| l.as_array_mut()) {
            for (l, pkgs) in layers.iter_mut().zip(&held) {
                if let Some(m) = l.as_object_mut() {
                    m.insert("packages".into(), serde_json::json!(pkgs));
                }
            }
        }
        println!("{v:#}");
        return Ok(ExitCode::SUCCESS);
    }
    println!("format:   {}", view.format);
    println!("tags:     {}", view.tags.join(", "));
    if let Some(m) = &view.manifest_digest {
        println!("manifest: {m}");
    }
    println!("config:   {}", view.config_digest);
    println!("platform: {}/{}", view.config.os, view.config.architecture);
    println!("created:  {}", view.config.created);
    let total: u64 = view.layers.iter().map(|l| l.size).sum();
    println!("layers:   {} ({})", view.layers.len(), human_bytes(total));
    for (i, l) in view.layers.iter().enumerate() {
        let what = l.created_by.as_deref().unwrap_or("");
        match &l.digest {
            Some(d) => println!("  {i:>2}  {d}  {:>10}  {what}", human_bytes(l.size)),
            None => println!(
                "  {i:>2}  {}  {:>10}  {what}",
                l.diff_id,
                human_bytes(l.size)
            ),
        }
        if let Some(pkgs) = held.get(i).filter(|p| !p.is_empty()) {
            println!("      {} package(s): {}", pkgs.len(), pkgs.join(", "));
        }
    }
    let c = &view.config.config;
    println!("config:");
    for e in &c.env {
        println!("  env        {e}");
    }
    if let Some(v) = &c.entrypoint {
        println!("  entrypoint {v:?}");
    }
    if let Some(v) = &c.cmd {
        println!("  cmd        {v:?}");
    }
    if let Some(v) = &c.working_dir {
        println!("  workdir    {v}");
    }
    if let Some(v) = &c.user {
        println!("  user       {v}");
    }
    for (k, v) in &c.labels {
        println!("  label      {k}={v}");
    }
    for p in c.exposed_ports.keys() {
        println!("  expose     {p}");
    }
    for v in c.volumes.keys() {
        println!("  volume     {v}");
    }
    if let Some(v) = &c.stop_signal {
        println!("  stop       {v}");
    }
    Ok(ExitCode::SUCCESS)
}
