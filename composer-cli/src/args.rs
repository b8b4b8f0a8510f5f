//! Command-line arguments (clap derive only; no behaviour).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Reproducible OCI images for deep-learning environments, from KDL recipes.
#[derive(Debug, Parser)]
#[command(name = "compose", version, about = "Reproducible OCI images for deep-learning environments, from KDL recipes", long_about = None)]
pub(crate) struct Cli {
    /// Store directory (default: $COMPOSE_STORE, else $XDG_CACHE_HOME/compose, else ~/.cache/compose)
    #[arg(long, global = true, value_name = "DIR")]
    pub(crate) store: Option<PathBuf>,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Build an image from a recipe into the store and write it out
    Build(BuildArgs),
    /// Show the build graph of a recipe: layers, fragments, node ids
    Graph(GraphArgs),
    /// Resolve the recipe's packages and write RECIPE.lock
    Lock(LockArgs),
    /// Re-resolve the lock (only the named packages move when names are given) and show what changed
    Update(UpdateArgs),
    /// Show an image's layers, sizes, digests and config (layout dir, oci-archive or docker-archive)
    Inspect(InspectArgs),
    /// Push an image (OCI layout dir or oci-archive) to a registry
    Push(PushArgs),
    /// Compare two images at every level: manifest, config, layers, packages, files
    Diff(DiffArgs),
    /// Check that every file of every layer traces to a locked package (declared equals shipped)
    Audit(AuditArgs),
    /// Write an SBOM (SPDX 2.3 JSON, or CycloneDX 1.6 JSON) of an image's packages
    Sbom(SbomArgs),
    /// Rebuild a recipe from its lock in a fresh store and compare every digest with an image
    Verify(VerifyArgs),
    /// Check an image (or build a recipe and check it): ELF closure, ABI, wheel tags, CUDA coherence
    Check(CheckArgs),
    /// Maintain the content-addressed store
    #[command(subcommand)]
    Store(StoreCommand),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum FormatArg {
    /// OCI image layout directory
    Oci,
    /// OCI image layout in a tar file
    OciArchive,
    /// `docker save` format, for `docker load` / `podman load`
    DockerArchive,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum CompressionArg {
    Zstd,
    Gzip,
}

#[derive(Debug, Args)]
pub(crate) struct JobsArg {
    /// Parallel jobs (default: number of CPUs)
    #[arg(short = 'j', long = "jobs", value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub(crate) jobs: Option<u16>,
}

#[derive(Debug, Args)]
pub(crate) struct BuildArgs {
    /// Recipe file (.kdl)
    pub(crate) recipe: PathBuf,
    /// Output path (default: out/NAME, or out/NAME-oci.tar / out/NAME-docker.tar for archives)
    #[arg(short, long, value_name = "PATH")]
    pub(crate) output: Option<PathBuf>,
    /// Output format
    #[arg(long, value_enum, default_value = "oci")]
    pub(crate) format: FormatArg,
    /// Layer compression
    #[arg(long, value_enum, default_value = "zstd")]
    pub(crate) compression: CompressionArg,
    #[command(flatten)]
    pub(crate) jobs: JobsArg,
    /// Print the result as JSON on stdout
    #[arg(long)]
    pub(crate) json: bool,
    /// Fail instead of creating or changing RECIPE.lock
    #[arg(long)]
    pub(crate) locked: bool,
    /// Attach an SPDX SBOM to the image as an OCI 1.1 artifact (layout output only)
    #[arg(long)]
    pub(crate) sbom: bool,
    /// Do not check the image before writing it (see `compose check`)
    #[arg(long)]
    pub(crate) no_check: bool,
    /// After building, push the image from the store to this reference (host[:port]/repo[:tag])
    #[arg(long, value_name = "REF")]
    pub(crate) push: Option<String>,
    /// Share built nodes through this registry repository (host[:port]/repo): pull what the
    /// store lacks from it, upload what was built; failures are warnings (default: $COMPOSE_CACHE)
    #[arg(long, value_name = "REF")]
    pub(crate) cache: Option<String>,
    #[command(flatten)]
    pub(crate) registry: RegistryArgs,
    /// Build for these platforms instead of the recipe's (`linux/amd64,linux/arm64`;
    /// repeatable). Several platforms give one multi-platform image (an OCI image index)
    #[arg(
        long = "platform",
        value_name = "OS/ARCH[/VARIANT]",
        value_delimiter = ','
    )]
    pub(crate) platforms: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    /// An image (OCI layout directory, oci-archive or docker-archive), or a recipe (.kdl),
    /// which is built first (into the store and a temporary directory) and then checked
    pub(crate) target: PathBuf,
    /// Take the `check { … }` settings from this recipe when checking an image
    #[arg(long, value_name = "RECIPE")]
    pub(crate) recipe: Option<PathBuf>,
    /// Print the report as JSON
    #[arg(long)]
    pub(crate) json: bool,
    /// Fail instead of creating or changing RECIPE.lock (when checking a recipe)
    #[arg(long)]
    pub(crate) locked: bool,
    /// Layer compression (when checking a recipe)
    #[arg(long, value_enum, default_value = "zstd")]
    pub(crate) compression: CompressionArg,
    #[command(flatten)]
    pub(crate) jobs: JobsArg,
    /// Check only these platforms of a multi-platform image, or build the recipe for these
    /// platforms (`linux/amd64,linux/arm64`; repeatable). Default: every platform
    #[arg(
        long = "platform",
        value_name = "OS/ARCH[/VARIANT]",
        value_delimiter = ','
    )]
    pub(crate) platforms: Vec<String>,
}

/// How to reach a registry (credentials: $COMPOSE_REGISTRY_USER/$COMPOSE_REGISTRY_PASSWORD,
/// else ~/.docker/config.json).
#[derive(Debug, Args)]
pub(crate) struct RegistryArgs {
    /// Allow plain http and unverified TLS for this registry host (host or host:port); repeatable
    #[arg(long, value_name = "HOST")]
    pub(crate) insecure: Vec<String>,
    /// Try mounting blobs from this repository of the same registry before uploading; repeatable
    #[arg(long, value_name = "REPO")]
    pub(crate) mount_from: Vec<String>,
    /// Blobs larger than this many bytes are uploaded in chunks of this size
    #[arg(long, value_name = "BYTES", hide = true)]
    pub(crate) chunk_size: Option<u64>,
    /// Attempts per request on connection failures and 5xx answers
    #[arg(long, value_name = "N", hide = true, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub(crate) attempts: Option<u32>,
    /// Blobs uploaded at once, each on its own connection [default: 4]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    pub(crate) push_jobs: Option<u16>,
}

#[derive(Debug, Args)]
pub(crate) struct PushArgs {
    /// Image: an OCI layout directory or an oci-archive
    pub(crate) image: PathBuf,
    /// Destination: host[:port]/repo[:tag|@digest] (no tag: the --tag picked, else latest)
    pub(crate) reference: String,
    /// Which image of a layout holding several (its org.opencontainers.image.ref.name)
    #[arg(long, value_name = "TAG")]
    pub(crate) tag: Option<String>,
    #[command(flatten)]
    pub(crate) registry: RegistryArgs,
    /// Print the result as JSON on stdout
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct LockArgs {
    /// Recipe file (.kdl)
    pub(crate) recipe: PathBuf,
    /// Lock for these platforms instead of the recipe's (`linux/amd64,linux/arm64`;
    /// repeatable)
    #[arg(
        long = "platform",
        value_name = "OS/ARCH[/VARIANT]",
        value_delimiter = ','
    )]
    pub(crate) platforms: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct UpdateArgs {
    #[command(flatten)]
    pub(crate) lock: LockArgs,
    /// Packages allowed to change (default: all)
    pub(crate) packages: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct GraphArgs {
    /// Recipe file (.kdl)
    pub(crate) recipe: PathBuf,
    /// Print Graphviz DOT instead of a tree
    #[arg(long)]
    pub(crate) dot: bool,
    /// Layer compression (node ids depend on it)
    #[arg(long, value_enum, default_value = "zstd")]
    pub(crate) compression: CompressionArg,
    #[command(flatten)]
    pub(crate) jobs: JobsArg,
    /// The platform whose graph to show (default: the recipe's; required for a
    /// multi-platform recipe)
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub(crate) platform: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct InspectArgs {
    /// Image: an OCI layout directory, an oci-archive or a docker-archive
    pub(crate) image: PathBuf,
    /// Of a multi-platform image, show this platform's image in full (`linux/arm64`)
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub(crate) platform: Option<String>,
    /// Print JSON
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct DiffArgs {
    /// First image: an OCI layout directory, an oci-archive or a docker-archive
    pub(crate) a: PathBuf,
    /// Second image
    pub(crate) b: PathBuf,
    /// Ignore timestamps and the order of entries in a layer
    #[arg(long)]
    pub(crate) semantic: bool,
    /// Print JSON
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct AuditArgs {
    /// Image: an OCI layout directory, an oci-archive or a docker-archive
    pub(crate) image: PathBuf,
    /// Also check the image's packages against this lockfile (exactly the locked ones)
    #[arg(long, value_name = "LOCKFILE")]
    pub(crate) lock: Option<PathBuf>,
    /// Print JSON
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum SbomFormat {
    /// SPDX 2.3 JSON
    Spdx,
    /// CycloneDX 1.6 JSON
    Cyclonedx,
}

#[derive(Debug, Args)]
pub(crate) struct SbomArgs {
    /// Image: an OCI layout directory, an oci-archive or a docker-archive
    pub(crate) image: PathBuf,
    /// Document format
    #[arg(long, value_enum, default_value = "spdx")]
    pub(crate) format: SbomFormat,
    /// Write to this file instead of stdout
    #[arg(short, long, value_name = "FILE")]
    pub(crate) output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// Recipe file (.kdl); its lock (RECIPE.lock) must exist
    pub(crate) recipe: PathBuf,
    /// The image to compare with (default: the recipe's default output, out/NAME)
    #[arg(long, value_name = "IMAGE")]
    pub(crate) against: Option<PathBuf>,
    /// Take downloaded inputs from this store (re-verified against the lock) instead of the network
    #[arg(long, value_name = "STORE")]
    pub(crate) inputs_from: Option<PathBuf>,
    /// Layer compression of the rebuild (default: the image's own)
    #[arg(long, value_enum)]
    pub(crate) compression: Option<CompressionArg>,
    #[command(flatten)]
    pub(crate) jobs: JobsArg,
    /// Print JSON
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum StoreCommand {
    /// Re-hash every object; move corrupt ones to quarantine
    Verify {
        /// Report only; do not quarantine
        #[arg(long)]
        no_quarantine: bool,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Remove everything no kept image references
    Gc {
        /// Report what would be removed
        #[arg(long)]
        dry_run: bool,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Show disk usage
    Du {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
}
