//! A custom build tool on top of the composer library, with no recipe file: it describes an
//! image in code, builds it into a store, writes an OCI layout, and prints the digest.
//!
//! ```sh
//! cargo run -p composer --example custom_build -- out/custom
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use composer::fetch::Fetcher;
use composer::recipe::{ImageSpec, LayerItem, LayerSpec, Ownership, Platform, RuntimeConfig};
use composer::{BuildOptions, Format, Inputs, NoReporter, Store};

fn main() -> ExitCode {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "out/custom".into()),
    );
    match run(&out) {
        Ok(digest) => {
            println!("{digest}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            let mut source = e.source();
            while let Some(s) = source {
                eprintln!("  caused by: {s}");
                source = s.source();
            }
            ExitCode::FAILURE
        }
    }
}

fn run(out: &std::path::Path) -> Result<String, Box<dyn std::error::Error>> {
    let spec = ImageSpec {
        name: "custom".into(),
        tags: vec!["0.1".into()],
        platform: Platform::linux_amd64(),
        other_platforms: Vec::new(),
        epoch: Some(1_767_225_600), // 2026-01-01T00:00:00Z
        version: Some("0.1".into()),
        source: None,
        revision: None,
        recipe_digest: None,
        layers: vec![LayerSpec {
            name: "config-files".into(),
            after: None,
            items: vec![
                LayerItem::Write {
                    dest: "/etc/custom/settings.toml".into(),
                    content: "threads = 4\n".into(),
                    mode: 0o644,
                    owner: Ownership::default(),
                },
                LayerItem::Dir {
                    dest: "/workspace".into(),
                    mode: 0o775,
                    owner: Ownership {
                        uid: 1000,
                        gid: 1000,
                    },
                },
            ],
        }],
        config: RuntimeConfig {
            workdir: Some("/workspace".into()),
            user: Some("1000:1000".into()),
            ..RuntimeConfig::default()
        },
        debian: None,
        pypi: None,
        check: Default::default(),
    };
    let store = Store::open(Store::default_root()?)?;
    // No packages, so no lock; the fetcher is never used.
    let fetcher = Fetcher::default();
    let inputs = Inputs {
        lock: None,
        fetcher: &fetcher,
        cache: None,
    };
    let image = composer::build(&store, &spec, inputs, &BuildOptions::default(), &NoReporter)?;
    composer::export(&store, &image, Format::Layout, out)?;
    Ok(image.manifest_digest.to_string())
}
