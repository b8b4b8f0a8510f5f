//! `compose inspect`.

use std::process::ExitCode;

use composer::graph::human_bytes;
use miette::{IntoDiagnostic, Result};

use crate::args::InspectArgs;

/// A multi-platform image without `--platform`: the index and each platform's summary.
fn platforms(a: &InspectArgs, platforms: &[String]) -> Result<ExitCode> {
    let views = platforms
        .iter()
        .map(|p| composer::oci::read_image_for(&a.image, Some(p)).into_diagnostic())
        .collect::<Result<Vec<_>>>()?;
    let Some(first) = views.first() else {
        miette::bail!("{} lists no platform", a.image.display());
    };
    let index = first.platforms.as_ref().map(|p| p.index_digest.clone());
    if a.json {
        let doc = serde_json::json!({
            "format": first.format, "tags": first.tags, "index": index,
            "platforms": platforms.iter().zip(&views).map(|(p, v)| serde_json::json!({
                "platform": p, "image": v,
            })).collect::<Vec<_>>(),
        });
        println!("{doc:#}");
        return Ok(ExitCode::SUCCESS);
    }
    println!("format:    {}", first.format);
    println!("tags:      {}", first.tags.join(", "));
    if let Some(i) = &index {
        println!("index:     {i}");
    }
    println!("platforms: {}", platforms.len());
    for (p, v) in platforms.iter().zip(&views) {
        let total: u64 = v.layers.iter().map(|l| l.size).sum();
        println!(
            "  {p:<14} manifest {}  config {}  {} layers ({})",
            v.manifest_digest
                .as_ref()
                .map_or_else(String::new, ToString::to_string),
            v.config_digest,
            v.layers.len(),
            human_bytes(total)
        );
    }
    println!("(`compose inspect --platform P` shows one platform's layers and config)");
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn run(a: InspectArgs) -> Result<ExitCode> {
    let view = match composer::oci::read_image_for(&a.image, a.platform.as_deref()) {
        Ok(v) => v,
        Err(composer::oci::read::ReadError::MultiPlatform {
            platforms: p,
            wanted: None,
            ..
        }) => return platforms(&a, &p),
        Err(e) => return Err(e).into_diagnostic(),
    };
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
    if let Some(p) = &view.platforms {
        println!(
            "index:    {} ({})",
            p.index_digest,
            p.all
                .iter()
                .map(|(name, _)| name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
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
