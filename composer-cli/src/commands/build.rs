//! `compose build`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use composer::cache::Cache;
use composer::check::{CheckConfig, Report, check_image_cached};
use composer::layer::build::Provenance;
use composer::oci::export_index;
use composer::pin::LockMode;
use composer::registry::{self, ClientOptions, Reference};
use composer::{
    BuiltImage, BuiltIndex, Format, ImageSpec, Inputs, Store, build, build_platforms, export,
};
use miette::{IntoDiagnostic, Result, WrapErr};

use super::{
    build_options, fetcher, load_recipe, obtain_lock, obtain_locks, open_store, with_platforms,
};
use crate::args::{BuildArgs, CompressionArg, FormatArg, JobsArg, RegistryArgs};
use crate::progress::Bars;

/// A recipe built into the store.
pub(crate) struct Built {
    pub(crate) spec: ImageSpec,
    pub(crate) store: Store,
    pub(crate) image: BuiltImage,
    /// Files downloaded from their mirrors.
    pub(crate) downloads: usize,
}

/// Locks (as `locked` allows) and builds `spec`, loaded from `recipe`, into the store;
/// `check`: the image will be checked next.
#[allow(clippy::too_many_arguments)]
pub(crate) fn build_spec(
    store: Option<PathBuf>,
    recipe: &Path,
    spec: ImageSpec,
    locked: bool,
    jobs: &JobsArg,
    compression: CompressionArg,
    cache: Option<&Cache>,
    check: bool,
) -> Result<Built> {
    let (store, opts, fetcher) = prepare(store, &spec, jobs, compression, cache, check)?;
    let mode = if locked {
        LockMode::Locked
    } else {
        LockMode::Auto
    };
    let lock = obtain_lock(recipe, &spec, &mode, &store, &fetcher)?;
    let bars = Bars::new();
    let inputs = Inputs {
        lock: Some(&lock),
        fetcher: &fetcher,
        cache,
    };
    let image = build(&store, &spec, inputs, &opts, &bars)
        .into_diagnostic()
        .wrap_err_with(|| format!("cannot build {}", recipe.display()))?;
    bars.finish();
    let downloads = bars.downloads();
    Ok(Built {
        spec,
        store,
        image,
        downloads,
    })
}

/// The store, build options and fetcher of a build of `spec`. `check`: the image will be
/// checked next.
fn prepare(
    store: Option<PathBuf>,
    spec: &ImageSpec,
    jobs: &JobsArg,
    compression: CompressionArg,
    cache: Option<&Cache>,
    check: bool,
) -> Result<(Store, composer::BuildOptions, composer::fetch::Fetcher)> {
    let mut opts = build_options(jobs, compression)?;
    let store = open_store(store)?;
    if check {
        // The check that follows finds each newly assembled layer's index stored.
        opts.layer_tap = Some(std::sync::Arc::new(composer::check::IndexTap::new(
            store.clone(),
        )));
    }
    let mut fetcher = fetcher();
    // A build needs every wheel a fresh resolution picks: start downloading while resolving,
    // and list each downloaded wheel and write its fragment while the resolver waits on the
    // network (unless a cache may hold the layers). Listings and fragments do not depend on
    // the platform they were resolved for, so one prebuilder serves every platform.
    fetcher.eager = true;
    if cache.is_none() {
        let mtime = opts.epoch(spec).into_diagnostic()?;
        fetcher.prebuild = Some(std::sync::Arc::new(
            composer::pypi::prebuild::FragmentPrebuilder::new(
                store.clone(),
                opts.compression,
                mtime,
                opts.jobs,
            ),
        ));
    }
    Ok((store, opts, fetcher))
}

/// The cache named by `--cache`, else `$COMPOSE_CACHE`; credentials and `--insecure` as for
/// `--push`. A malformed reference is an error; a registry that cannot be used is a warning.
fn open_cache(flag: Option<&str>, args: &RegistryArgs) -> Result<Option<Cache>> {
    let from_env = std::env::var("COMPOSE_CACHE").ok();
    let Some(text) = flag
        .or(from_env.as_deref())
        .map(str::trim)
        .filter(|s| !s.is_empty())
    else {
        return Ok(None);
    };
    let reference = Reference::parse(text)
        .into_diagnostic()
        .wrap_err("--cache (or COMPOSE_CACHE)")?;
    let mut options = ClientOptions::default();
    options.insecure.clone_from(&args.insecure);
    if let Some(n) = args.attempts {
        options.attempts = n;
    }
    match registry::credentials::from_environment(&reference.registry) {
        Ok(login) => options.login = login,
        Err(e) => {
            return Ok(Some(Cache::unavailable(
                format!("{}/{}", reference.registry, reference.repository),
                &e.to_string(),
            )));
        }
    }
    Ok(Some(Cache::connect(&reference, options)))
}

/// Where the image is written before the check passes: beside `out`, hidden.
fn staging_path(out: &Path) -> PathBuf {
    let name = out
        .file_name()
        .map_or_else(|| "image".into(), |n| n.to_string_lossy().into_owned());
    out.with_file_name(format!(".{name}.compose-check-{}", std::process::id()))
}

fn remove_any(p: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(p),
        Ok(_) => std::fs::remove_file(p),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// What `export_checked` writes: one image, or a multi-platform image.
#[derive(Clone, Copy)]
enum Output<'a> {
    Image(&'a BuiltImage),
    Index(&'a BuiltIndex),
}

impl Output<'_> {
    fn export(self, store: &Store, format: Format, path: &Path) -> Result<()> {
        match self {
            Output::Image(i) => export(store, i, format, path),
            Output::Index(i) => export_index(store, i, format, path),
        }
        .into_diagnostic()
        .wrap_err("cannot write the image")
    }

    /// Checks the image written at `path`: each platform's of a multi-platform image. Layers
    /// checked before are read from the store's index cache.
    fn check(self, store: &Store, path: &Path, cfg: &CheckConfig) -> Result<Vec<Report>> {
        match self {
            Output::Image(_) => Ok(vec![
                check_image_cached(path, None, cfg, Some(store)).into_diagnostic()?,
            ]),
            Output::Index(i) => i
                .images
                .iter()
                .map(|(p, _)| {
                    check_image_cached(path, Some(&p.to_string()), cfg, Some(store))
                        .into_diagnostic()
                })
                .collect(),
        }
    }
}

/// Exports to a staging path, checks it, and moves it to `out` only when the check passes.
/// Returns the reports (one per platform); on failure nothing is left at the staging path
/// and `out` is untouched.
fn export_checked(
    store: &Store,
    output: Output<'_>,
    format: Format,
    out: &Path,
    cfg: &CheckConfig,
) -> Result<Vec<Report>> {
    if format == Format::Layout
        && out.is_dir()
        && !out.join("oci-layout").is_file()
        && std::fs::read_dir(out).into_diagnostic()?.next().is_some()
    {
        miette::bail!(
            "{} exists and is not an OCI image layout (no oci-layout file); choose an empty or new directory",
            out.display()
        );
    }
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .into_diagnostic()
            .wrap_err_with(|| format!("cannot create {}", parent.display()))?;
    }
    let staging = staging_path(out);
    remove_any(&staging)
        .into_diagnostic()
        .wrap_err_with(|| format!("cannot remove {}", staging.display()))?;
    let result = output
        .export(store, format, &staging)
        .and_then(|()| output.check(store, &staging, cfg));
    let reports = match result {
        Ok(r) if r.iter().all(Report::passed) => r,
        other => {
            let _ = remove_any(&staging);
            return other;
        }
    };
    // The check passed: replace `out` (an older layout or archive) with the staged image.
    remove_any(out)
        .into_diagnostic()
        .wrap_err_with(|| format!("cannot replace {}", out.display()))?;
    std::fs::rename(&staging, out)
        .into_diagnostic()
        .wrap_err_with(|| format!("cannot move {} to {}", staging.display(), out.display()))?;
    Ok(reports)
}

/// The output format and path `a` asks for.
fn destination(a: &BuildArgs, spec: &ImageSpec) -> (Format, PathBuf) {
    let (format, default_out) = match a.format {
        FormatArg::Oci => (Format::Layout, format!("out/{}", spec.name)),
        FormatArg::OciArchive => (Format::OciArchive, format!("out/{}-oci.tar", spec.name)),
        FormatArg::DockerArchive => (
            Format::DockerArchive,
            format!("out/{}-docker.tar", spec.name),
        ),
    };
    (
        format,
        a.output
            .clone()
            .unwrap_or_else(|| PathBuf::from(default_out)),
    )
}

/// How a layer came to be, for the summary line.
fn how(p: Provenance) -> String {
    match p {
        Provenance::Cached => "cached".to_string(),
        Provenance::Built { compressed, reused } => {
            format!("built: {compressed} fragments compressed, {reused} reused")
        }
    }
}

fn layers_json(image: &BuiltImage) -> Vec<serde_json::Value> {
    image
        .layers
        .iter()
        .map(|l| {
            serde_json::json!({
                "name": l.name, "digest": l.output.digest, "diff_id": l.output.diff_id,
                "size": l.output.size, "uncompressed_size": l.output.tar_size,
                "cached": l.provenance == Provenance::Cached,
                "fragments_compressed": match l.provenance {
                    Provenance::Cached => 0,
                    Provenance::Built { compressed, .. } => compressed,
                },
            })
        })
        .collect()
}

/// Locks (as `locked` allows) and builds the multi-platform `spec`, loaded from `recipe`,
/// into the store. `check`: the images will be checked next.
pub(crate) fn build_index(
    store: Option<PathBuf>,
    recipe: &Path,
    spec: &ImageSpec,
    locked: bool,
    jobs: &JobsArg,
    compression: CompressionArg,
    check: bool,
) -> Result<(Store, BuiltIndex)> {
    let (store, opts, fetcher) = prepare(store, spec, jobs, compression, None, check)?;
    let mode = if locked {
        LockMode::Locked
    } else {
        LockMode::Auto
    };
    let locks = obtain_locks(recipe, spec, &mode, &store, &fetcher)?;
    let bars = Bars::new();
    let index = build_platforms(&store, spec, &locks, &fetcher, &opts, &bars)
        .into_diagnostic()
        .wrap_err_with(|| format!("cannot build {}", recipe.display()))?;
    bars.finish();
    Ok((store, index))
}

/// `compose build` of a multi-platform recipe (or `--platform A,B`): one build per
/// platform, one image index, written as an OCI layout or oci-archive and checked per
/// platform.
fn run_multi(store: Option<PathBuf>, a: BuildArgs, spec: ImageSpec) -> Result<ExitCode> {
    let (format, out) = destination(&a, &spec);
    if format == Format::DockerArchive {
        miette::bail!(
            help = "write --format oci or oci-archive, or build one platform with --platform",
            "a docker-archive holds one platform's image, and {} builds {} platforms",
            a.recipe.display(),
            spec.platforms().len()
        );
    }
    if a.cache.is_some() || std::env::var_os("COMPOSE_CACHE").is_some_and(|v| !v.is_empty()) {
        miette::bail!(
            help = "build each platform with --platform to use the cache",
            "--cache (or COMPOSE_CACHE) does not handle multi-platform builds yet"
        );
    }
    if a.sbom {
        miette::bail!(
            "--sbom attaches one image's SBOM and does not handle multi-platform images yet; build each platform with --platform to attach its SBOM"
        );
    }
    let (store, index) = build_index(
        store,
        &a.recipe,
        &spec,
        a.locked,
        &a.jobs,
        a.compression,
        !a.no_check,
    )?;
    let ids: Vec<(composer::NodeId, &composer::Digest)> = index
        .images
        .iter()
        .map(|(_, i)| {
            (
                check_cache_id(&i.manifest_digest, &spec.check),
                &i.manifest_digest,
            )
        })
        .collect();
    let cached = !a.no_check && ids.iter().all(|(id, _)| checked_before(&store, id));
    let reports = if a.no_check || cached {
        Output::Index(&index).export(&store, format, &out)?;
        Vec::new()
    } else {
        let cfg = CheckConfig::from_spec(&spec.check);
        let r = export_checked(&store, Output::Index(&index), format, &out, &cfg)?;
        if r.iter().all(Report::passed) {
            for (id, manifest) in &ids {
                remember_pass(&store, id, manifest);
            }
        }
        r
    };
    let failed = reports.iter().any(|r| !r.passed());
    // The image index and every platform go up from what was written (a failed check
    // wrote, and pushes, nothing).
    let pushed = match &a.push {
        Some(r) if !failed => {
            let reference = composer::registry::Reference::parse(r).into_diagnostic()?;
            let source = composer::registry::source::from_path(&out, None)
                .into_diagnostic()
                .wrap_err_with(|| format!("cannot read back {}", out.display()))?;
            Some(super::push::push(&source, &reference, &a.registry)?)
        }
        _ => None,
    };
    if a.json {
        let platforms: Vec<serde_json::Value> = index
            .images
            .iter()
            .map(|(p, i)| {
                serde_json::json!({
                    "platform": p.to_string(), "manifest": i.manifest_digest,
                    "config": i.config_digest, "layers": layers_json(i),
                })
            })
            .collect();
        let mut doc = serde_json::json!({
            "name": index.name, "tags": index.tags, "index": index.index_digest,
            "output": if failed { serde_json::Value::Null } else { serde_json::json!(out) },
            "platforms": platforms,
        });
        if !reports.is_empty() {
            doc["check"] = serde_json::json!({
                "passed": !failed,
                "platforms": serde_json::to_value(&reports).into_diagnostic()?,
            });
        } else if cached {
            doc["check"] = serde_json::json!({ "passed": true, "cached": true });
        }
        if let Some(p) = &pushed {
            doc["push"] = serde_json::to_value(p).into_diagnostic()?;
        }
        println!("{doc:#}");
    } else {
        for (p, image) in &index.images {
            for l in &image.layers {
                eprintln!(
                    "{p:<12} layer {:<16} {}  {:>10}  ({})",
                    l.name,
                    l.output.digest,
                    composer::graph::human_bytes(l.output.size),
                    how(l.provenance)
                );
            }
        }
        for r in &reports {
            eprint!("{}", r.to_text());
        }
        if cached {
            eprintln!(
                "check: passed (every platform's image was checked before with the same settings)"
            );
        }
        if !failed {
            eprintln!(
                "wrote {} ({}) to {}",
                index
                    .tags
                    .iter()
                    .map(|t| format!("{}:{t}", index.name))
                    .collect::<Vec<_>>()
                    .join(", "),
                index
                    .images
                    .iter()
                    .map(|(p, _)| p.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                out.display()
            );
            finish_text(pushed.as_ref(), &index.index_digest);
        }
    }
    Ok(exit_status(failed, &a.recipe, &out))
}

/// The last lines of a text-mode build that wrote its output: the push summary on stderr,
/// the digest on stdout.
fn finish_text(pushed: Option<&registry::PushReport>, digest: &composer::Digest) {
    if let Some(p) = pushed {
        eprintln!("{}", super::push::summary(p));
    }
    println!("{digest}");
}

/// Success, or, when the check failed, a line saying nothing was written and failure.
fn exit_status(failed: bool, recipe: &Path, out: &Path) -> ExitCode {
    if failed {
        eprintln!(
            "error: {} failed its check; nothing was written to {} (fix the findings, allow them in the recipe's check block, or build with --no-check)",
            recipe.display(),
            out.display()
        );
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

pub(crate) fn run(store: Option<PathBuf>, a: BuildArgs) -> Result<ExitCode> {
    let spec = with_platforms(load_recipe(&a.recipe)?, &a.platforms)?;
    if spec.is_multi_platform() {
        return run_multi(store, a, spec);
    }
    let cache = open_cache(a.cache.as_deref(), &a.registry)?;
    let built = build_spec(
        store,
        &a.recipe,
        spec,
        a.locked,
        &a.jobs,
        a.compression,
        cache.as_ref(),
        !a.no_check,
    )?;
    let cache_report = cache.as_ref().map(Cache::report);
    if let Some(r) = &cache_report {
        for w in &r.warnings {
            eprintln!("warning: cache {}: {w}", r.reference);
        }
    }
    let (spec, image) = (&built.spec, &built.image);
    let (format, out) = destination(&a, spec);
    // The check is a pure function of the image's content (its manifest digest) and the
    // recipe's check block: a pass is remembered in the store, so a warm rebuild of the same
    // image does not read it back again.
    let cache_id = check_cache_id(&image.manifest_digest, &spec.check);
    let cached = !a.no_check && checked_before(&built.store, &cache_id);
    let report = if a.no_check || cached {
        export(&built.store, image, format, &out)
            .into_diagnostic()
            .wrap_err("cannot write the image")?;
        None
    } else {
        let cfg = CheckConfig::from_spec(&spec.check);
        let mut reports = export_checked(&built.store, Output::Image(image), format, &out, &cfg)?;
        let r = reports.pop().unwrap_or_default();
        if r.passed() {
            remember_pass(&built.store, &cache_id, &image.manifest_digest);
        }
        Some(r)
    };
    if cached && !a.json {
        eprintln!(
            "check: passed (this image, {}, was checked before with the same settings)",
            image.manifest_digest
        );
    }
    let failed = report.as_ref().is_some_and(|r| !r.passed());
    let sbom = if a.sbom && !failed {
        Some(attach_sbom(&out, format, &image.manifest_digest)?)
    } else {
        None
    };
    // A failed check pushes nothing, as it writes nothing.
    let pushed = match &a.push {
        Some(r) if !failed => {
            let reference = composer::registry::Reference::parse(r).into_diagnostic()?;
            let mut source = composer::registry::source::from_built(&built.store, image)
                .into_diagnostic()
                .wrap_err("cannot read the built image from the store")?;
            // The SBOM attached to the written layout goes up beside the image.
            if sbom.is_some() {
                composer::registry::source::add_referrers(&mut source, &out)
                    .into_diagnostic()
                    .wrap_err("cannot read the attached SBOM")?;
            }
            Some(super::push::push(&source, &reference, &a.registry)?)
        }
        _ => None,
    };

    if a.json {
        let layers = layers_json(image);
        let mut doc = serde_json::json!({
            "name": image.name, "tags": image.tags, "manifest": image.manifest_digest,
            "config": image.config_digest, "output": out, "layers": layers, "sbom": sbom,
            "downloads": built.downloads,
        });
        if let Some(r) = &cache_report {
            doc["cache"] = serde_json::to_value(r).into_diagnostic()?;
        }
        if let Some(r) = &report {
            doc["check"] = serde_json::to_value(r).into_diagnostic()?;
            doc["check"]["passed"] = r.passed().into();
        } else if cached {
            doc["check"] = serde_json::json!({ "passed": true, "cached": true });
        }
        if failed {
            doc["output"] = serde_json::Value::Null;
        }
        if let Some(p) = &pushed {
            doc["push"] = serde_json::to_value(p).into_diagnostic()?;
        }
        println!("{doc:#}");
    } else {
        for l in &image.layers {
            eprintln!(
                "layer {:<16} {}  {:>10}  ({})",
                l.name,
                l.output.digest,
                composer::graph::human_bytes(l.output.size),
                how(l.provenance)
            );
        }
        if let Some(r) = &report {
            eprint!("{}", r.to_text());
        }
        if let Some(r) = &cache_report {
            eprintln!(
                "cache {}: {} nodes pulled ({} blobs), {} uploaded ({} blobs), {} already there; {} files downloaded from mirrors",
                r.reference,
                r.pulled,
                r.blobs_pulled,
                r.pushed,
                r.blobs_pushed,
                r.present,
                built.downloads
            );
        }
        if !failed {
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
            finish_text(pushed.as_ref(), &image.manifest_digest);
        }
    }
    Ok(exit_status(failed, &a.recipe, &out))
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
    let inv = composer::inventory::read_with(out, composer::inventory::Hashes::None)
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

/// The store node naming "this image passed the check with these settings".
fn check_cache_id(
    manifest: &composer::Digest,
    check: &composer::recipe::CheckSpec,
) -> composer::NodeId {
    let mut k = composer_store::NodeKey::new("check-pass", 1);
    k.digest("manifest", manifest)
        .str("settings", &format!("{check:?}"))
        .str("composer", env!("CARGO_PKG_VERSION"));
    k.finish()
}

fn checked_before(store: &Store, id: &composer::NodeId) -> bool {
    matches!(store.get_node(id), Ok(Some(r)) if r.kind == "check-pass")
}

/// Best effort: a cache entry that cannot be written only costs a re-check next time.
fn remember_pass(store: &Store, id: &composer::NodeId, manifest: &composer::Digest) {
    let _ = store.put_node(
        id,
        &composer_store::NodeRecord {
            kind: "check-pass".into(),
            blobs: Vec::new(),
            children: Vec::new(),
            meta: serde_json::json!({ "manifest": manifest }),
        },
    );
}
