//! `compose build`.

use std::path::PathBuf;
use std::process::ExitCode;

use composer::layer::build::Provenance;
use composer::pin::LockMode;
use composer::{Format, Inputs, build, export};
use miette::{IntoDiagnostic, Result, WrapErr};

use super::{build_options, fetcher, load_recipe, obtain_lock, open_store};
use crate::args::{BuildArgs, FormatArg};
use crate::progress::Bars;

pub(crate) fn run(store: Option<PathBuf>, a: BuildArgs) -> Result<ExitCode> {
    let spec = load_recipe(&a.recipe)?;
    let opts = build_options(&a.jobs, a.compression)?;
    let store = open_store(store)?;
    let fetcher = fetcher();
    let mode = if a.locked {
        LockMode::Locked
    } else {
        LockMode::Auto
    };
    let lock = obtain_lock(&a.recipe, &spec, &mode, &store, &fetcher)?;
    let bars = Bars::new();
    let inputs = Inputs {
        lock: Some(&lock),
        fetcher: &fetcher,
    };
    let image = build(&store, &spec, inputs, &opts, &bars)
        .into_diagnostic()
        .wrap_err_with(|| format!("cannot build {}", a.recipe.display()))?;
    let (format, default_out) = match a.format {
        FormatArg::Oci => (Format::Layout, format!("out/{}", spec.name)),
        FormatArg::OciArchive => (Format::OciArchive, format!("out/{}-oci.tar", spec.name)),
        FormatArg::DockerArchive => (
            Format::DockerArchive,
            format!("out/{}-docker.tar", spec.name),
        ),
    };
    let out = a.output.unwrap_or_else(|| PathBuf::from(default_out));
    bars.finish();
    export(&store, &image, format, &out)
        .into_diagnostic()
        .wrap_err("cannot write the image")?;
    let sbom = if a.sbom {
        Some(attach_sbom(&out, format, &image.manifest_digest)?)
    } else {
        None
    };
    let pushed = match &a.push {
        Some(r) => {
            let reference = composer::registry::Reference::parse(r).into_diagnostic()?;
            let source = composer::registry::source::from_built(&store, &image)
                .into_diagnostic()
                .wrap_err("cannot read the built image from the store")?;
            Some(super::push::push(&source, &reference, &a.registry)?)
        }
        None => None,
    };

    if a.json {
        let layers: Vec<_> = image
            .layers
            .iter()
            .map(|l| {
                serde_json::json!({
                    "name": l.name, "digest": l.output.digest, "diff_id": l.output.diff_id,
                    "size": l.output.size, "uncompressed_size": l.output.tar_size,
                    "cached": l.provenance == Provenance::Cached,
                })
            })
            .collect();
        let mut doc = serde_json::json!({
            "name": image.name, "tags": image.tags, "manifest": image.manifest_digest,
            "config": image.config_digest, "output": out, "layers": layers, "sbom": sbom,
        });
        if let (Some(p), Some(map)) = (&pushed, doc.as_object_mut()) {
            map.insert("push".into(), serde_json::json!(p));
        }
        println!("{doc:#}");
    } else {
        for l in &image.layers {
            let how = match l.provenance {
                Provenance::Cached => "cached".to_string(),
                Provenance::Built { compressed, reused } => {
                    format!("built: {compressed} fragments compressed, {reused} reused")
                }
            };
            eprintln!(
                "layer {:<16} {}  {:>10}  ({how})",
                l.name,
                l.output.digest,
                composer::graph::human_bytes(l.output.size)
            );
        }
        eprintln!(
            "wrote {} to {}",
            image
                .tags
                .iter()
                .map(|t| format!("{}:{t}", image.name))
                .collect::<Vec<_>>()
                .join(", "),
            out.display()
        );
        if let Some(p) = &pushed {
            eprintln!("{}", super::push::summary(p));
        }
        println!("{}", image.manifest_digest);
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes the image's SPDX SBOM into the layout as an OCI 1.1 artifact whose subject is
/// the image manifest; returns the artifact manifest's digest.
fn attach_sbom(
    out: &std::path::Path,
    format: Format,
    manifest: &composer::Digest,
) -> Result<composer::Digest> {
    if !matches!(format, Format::Layout) {
        miette::bail!(
            "--sbom attaches the SBOM inside an OCI layout; use --format oci (or `compose sbom` on the archive)"
        );
    }
    let inv = composer::inventory::read(out)
        .into_diagnostic()
        .wrap_err_with(|| format!("cannot read back {}", out.display()))?;
    let mut doc = serde_json::to_vec_pretty(&composer::sbom::spdx(&inv)).into_diagnostic()?;
    doc.push(b'\n');
    let created = inv.view.config.created.clone();
    let digest = composer::oci::artifact::attach(
        out,
        manifest,
        "application/spdx+json",
        &doc,
        &[("org.opencontainers.image.created", created.as_str())],
    )
    .into_diagnostic()
    .wrap_err("cannot attach the SBOM")?;
    eprintln!("attached SPDX SBOM {digest} (subject {manifest})");
    Ok(digest)
}
