//! `compose push`, and the push step of `compose build --push`.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Mutex;

use composer::Digest;
use composer::graph::human_bytes;
use composer::registry::{
    self, BlobOutcome, PushImage, PushOptions, PushReport, PushReporter, Reference,
};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use miette::{IntoDiagnostic, Result, WrapErr};

use crate::args::{PushArgs, RegistryArgs};

pub(crate) fn run(a: PushArgs) -> Result<ExitCode> {
    let reference = Reference::parse(&a.reference).into_diagnostic()?;
    let image = registry::source::from_path(&a.image, a.tag.as_deref()).into_diagnostic()?;
    let report = push(&image, &reference, &a.registry)?;
    print(&report, a.json);
    Ok(ExitCode::SUCCESS)
}

/// Pushes with the options from the command line; progress lines on stderr.
pub(crate) fn push(
    image: &PushImage,
    reference: &Reference,
    args: &RegistryArgs,
) -> Result<PushReport> {
    let mut options = PushOptions::default();
    options.client.insecure.clone_from(&args.insecure);
    options.client.login =
        registry::credentials::from_environment(&reference.registry).into_diagnostic()?;
    if let Some(n) = args.attempts {
        options.client.attempts = n;
    }
    if let Some(c) = args.chunk_size {
        options.chunk_size = c.max(1);
    }
    options.mount_from.clone_from(&args.mount_from);
    if let Some(n) = args.push_jobs {
        options.jobs = usize::from(n);
    }
    registry::push(image, reference, &options, &Lines::default())
        .into_diagnostic()
        .wrap_err_with(|| format!("cannot push to {reference}"))
}

/// Prints the digest (and with `--json` the counts) on stdout, a summary on stderr.
pub(crate) fn print(report: &PushReport, json: bool) {
    if json {
        let doc = serde_json::json!({
            "reference": report.reference, "digest": report.digest,
            "uploaded": report.uploaded, "skipped": report.skipped, "mounted": report.mounted,
            "uploaded_bytes": report.uploaded_bytes, "manifests": report.manifests,
            "referrers": report.referrers,
        });
        println!("{doc:#}");
    } else {
        eprintln!("{}", summary(report));
        println!("{}", report.digest);
    }
}

pub(crate) fn summary(report: &PushReport) -> String {
    let mut s = format!(
        "pushed {}: {} blobs uploaded ({}), {} skipped, {} mounted",
        report.reference,
        report.uploaded,
        human_bytes(report.uploaded_bytes),
        report.skipped,
        report.mounted
    );
    if report.manifests > 0 {
        s.push_str(&format!(", {} platform manifests", report.manifests));
    }
    if report.referrers > 0 {
        s.push_str(&format!(", {} attached artifacts", report.referrers));
    }
    s
}

/// One progress bar per blob being sent (several at once; hidden when stderr is not a
/// terminal) and one stderr line per blob.
struct Lines {
    bars: MultiProgress,
    by_blob: Mutex<BTreeMap<Digest, ProgressBar>>,
}

impl Default for Lines {
    fn default() -> Self {
        Self {
            bars: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            by_blob: Mutex::new(BTreeMap::new()),
        }
    }
}

impl PushReporter for Lines {
    fn blob_started(&self, digest: &Digest, size: u64) {
        let bar = self.bars.add(ProgressBar::new(size));
        let style = ProgressStyle::with_template(
            "{prefix:>19} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        bar.set_prefix(digest.as_str().chars().take(19).collect::<String>());
        if let Ok(mut b) = self.by_blob.lock() {
            b.insert(digest.clone(), bar);
        }
    }

    fn blob_progress(&self, digest: &Digest, done: u64) {
        if let Ok(b) = self.by_blob.lock()
            && let Some(bar) = b.get(digest)
        {
            bar.set_position(done);
        }
    }

    fn blob_finished(&self, digest: &Digest, outcome: BlobOutcome) {
        if let Ok(mut b) = self.by_blob.lock()
            && let Some(bar) = b.remove(digest)
        {
            bar.finish_and_clear();
            self.bars.remove(&bar);
        }
        let how = match outcome {
            BlobOutcome::Uploaded => "uploaded",
            BlobOutcome::Skipped => "exists",
            BlobOutcome::Mounted => "mounted",
        };
        let line = format!("blob {digest}: {how}");
        if self.bars.is_hidden() {
            eprintln!("{line}");
        } else {
            let _ = self.bars.println(line);
        }
    }
}
