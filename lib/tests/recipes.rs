//! Recipes on disk: every real recipe and example loads and validates, and every
//! bad-recipe fixture fails with the diagnostic recorded in `tests/snapshots/`.
//!
//! Snapshots are rendered with miette's graphical handler (unicode, no colour, 100
//! columns) and name files relative to the workspace root, so they are the same on
//! every machine. To update them after a deliberate change:
//! `INSTA_UPDATE=always cargo test -p composer --test recipes`, then read the diff.

use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};

use composer::recipe::{self, ErrorKind, LayerItem, RecipeError, SourceLoader};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn render(err: &RecipeError) -> String {
    let handler =
        miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
            .with_width(100);
    let mut out = String::new();
    match handler.render_report(&mut out, err) {
        Ok(()) => out,
        Err(e) => format!("rendering failed: {e}; {err:?}"),
    }
}

/// Every `*.kdl` under `dir`, recursively, sorted.
fn kdl_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            kdl_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "kdl") {
            out.push(path);
        }
    }
    out.sort();
}

/// Include fragments: under a `common/` directory (below `root`), or first line
/// `// fragment…`.
fn is_fragment(root: &Path, path: &Path) -> bool {
    let relative = path.strip_prefix(root).unwrap_or(path);
    let under_common = relative.components().any(|c| c.as_os_str() == "common");
    let first_line_says_so = std::fs::read_to_string(path)
        .map(|t| {
            t.lines()
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with("// fragment")
        })
        .unwrap_or(false);
    under_common || first_line_says_so
}

#[test]
fn recipes_and_examples_load() {
    let root = workspace_root();
    let mut files = Vec::new();
    kdl_files(&root.join("recipes"), &mut files);
    kdl_files(&root.join("examples"), &mut files);
    let recipes: Vec<PathBuf> = files
        .into_iter()
        .filter(|p| !is_fragment(&root, p))
        .collect();
    assert!(
        recipes.iter().any(|p| p.ends_with("examples/hello.kdl")),
        "examples/hello.kdl not found among {recipes:?}"
    );

    let mut failures = Vec::new();
    for path in &recipes {
        match recipe::load(path) {
            Ok(spec) => {
                // A recipe that loads but copies a missing file (or names a missing
                // keyring) would only fail at build.
                let keyring = spec.debian.as_ref().and_then(|d| d.keyring.as_ref());
                if let Some(k) = keyring
                    && !k.exists()
                {
                    failures.push(format!(
                        "{}: keyring {} does not exist",
                        path.display(),
                        k.display()
                    ));
                }
                for item in spec.layers.iter().flat_map(|l| &l.items) {
                    if let LayerItem::Copy { src, .. } = item
                        && !src.exists()
                    {
                        failures.push(format!(
                            "{}: copy source {} does not exist",
                            path.display(),
                            src.display()
                        ));
                    }
                }
            }
            Err(e) => failures.push(render(&e)),
        }
    }
    assert!(
        failures.is_empty(),
        "{} recipe(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn hello_example_has_what_the_docs_promise() {
    let spec = match recipe::load(&workspace_root().join("examples/hello.kdl")) {
        Ok(spec) => spec,
        Err(e) => panic!("{}", render(&e)),
    };
    assert_eq!(spec.name, "hello");
    assert_eq!(spec.tags, ["1.0", "latest"]);
    let layers: Vec<&str> = spec.layers.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(layers, ["base", "app"]);
    let os_release = spec.layers[0].items.iter().find_map(|i| match i {
        LayerItem::Write { dest, content, .. } if dest == "/etc/os-release" => {
            Some(content.as_str())
        }
        _ => None,
    });
    assert!(
        os_release.is_some_and(|c| c.starts_with("NAME=\"hello\"\n") && c.ends_with("\"\n")),
        "{os_release:?}"
    );
    assert_eq!(spec.config.cmd, Some(vec!["hello".to_owned()]));
}

#[test]
fn debian_python_recipe_uses_the_trixie_fragment() {
    let spec = match recipe::load(&workspace_root().join("recipes/debian-python.kdl")) {
        Ok(spec) => spec,
        Err(e) => panic!("{}", render(&e)),
    };
    assert_eq!(spec.name, "debian-python");
    assert!(
        spec.tags.iter().any(|t| t == "3.13-trixie"),
        "{:?}",
        spec.tags
    );
    let Some(debian) = &spec.debian else {
        panic!("no debian block: {spec:#?}")
    };
    let suites: Vec<&str> = debian
        .archives
        .iter()
        .flat_map(|a| a.suites.iter().map(String::as_str))
        .collect();
    assert_eq!(suites, ["trixie", "trixie-updates", "trixie-security"]);
    assert!(
        debian
            .archives
            .iter()
            .all(|a| a.url.starts_with("http://deb.debian.org/")),
        "{debian:#?}"
    );
    for essential in ["base-files", "base-passwd", "dash", "libc-bin"] {
        assert!(debian.include.iter().any(|p| p == essential), "{essential}");
    }
    for script_only in ["dpkg", "debconf"] {
        assert!(
            debian.exclude.iter().any(|p| p == script_only),
            "{script_only}"
        );
    }
    // Python and TLS need these at run time: never excluded.
    for needed in [
        "openssl",
        "libssl3t64",
        "tzdata",
        "netbase",
        "media-types",
        "libc6",
    ] {
        assert!(
            !debian.exclude.iter().any(|p| p == needed),
            "{needed} excluded"
        );
    }
    let system = spec.layers.iter().find(|l| l.name == "system");
    assert_eq!(
        system.map(|l| l.items.clone()),
        Some(vec![LayerItem::Debian {
            packages: vec!["python3".into(), "ca-certificates".into()]
        }])
    );
    assert_eq!(spec.config.cmd, Some(vec!["python3".to_owned()]));
    assert!(
        spec.config
            .env
            .iter()
            .any(|(k, v)| k == "LANG" && v == "C.UTF-8"),
        "{:?}",
        spec.config.env
    );
}

#[test]
fn python_numpy_recipe_installs_wheels_above_debian_python() {
    let spec = match recipe::load(&workspace_root().join("recipes/python-numpy.kdl")) {
        Ok(spec) => spec,
        Err(e) => panic!("{}", render(&e)),
    };
    assert_eq!(spec.name, "python-numpy");
    assert!(spec.debian.is_some(), "Python comes from Debian");
    let layers: Vec<&str> = spec.layers.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(layers, ["system", "python"]);
    assert_eq!(
        spec.layers[1].items,
        [LayerItem::Pypi {
            requirements: vec!["numpy".into(), "requests".into()]
        }]
    );
    // No `pypi` block: the default index, into the system site.
    let Some(pypi) = &spec.pypi else {
        panic!("no pypi source: {spec:#?}")
    };
    let urls: Vec<&str> = pypi.indexes.iter().map(|i| i.url.as_str()).collect();
    assert_eq!(urls, [recipe::DEFAULT_PYPI_INDEX]);
    assert_eq!(pypi.prefix, None);
    assert_eq!(spec.config.cmd, Some(vec!["python3".to_owned()]));
}

/// Reads paths relative to the workspace root and names them as given, so that
/// diagnostics (an unreadable include included) never show a machine's paths.
struct Rooted(PathBuf);

impl SourceLoader for Rooted {
    fn read(&self, path: &Path) -> io::Result<String> {
        std::fs::read_to_string(self.0.join(path))
            .map_err(|e| io::Error::new(e.kind(), format!("cannot read `{}`: {e}", path.display())))
    }
}

const BAD: &str = "tests/fixtures/bad-recipes";

#[test]
fn bad_recipes_fail_with_their_snapshot() {
    let root = workspace_root();
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/bad-recipes");
    let mut names: Vec<String> = std::fs::read_dir(fixtures)
        .map(|dir| {
            dir.flatten()
                .filter(|e| e.path().extension().is_some_and(|x| x == "kdl"))
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    assert!(
        names.len() >= 20,
        "too few fixtures in {fixtures}: {names:?}"
    );

    let loader = Rooted(root);
    let mut seen = BTreeSet::new();
    for name in &names {
        let path = PathBuf::from(BAD).join(name);
        let err = match recipe::load_with(&path, &loader) {
            Ok(spec) => panic!("{} loaded but must fail: {spec:#?}", path.display()),
            Err(e) => e,
        };
        seen.extend(err.diagnostics().iter().map(|d| d.kind()));
        let stem = name.trim_end_matches(".kdl");
        insta::assert_snapshot!(stem, render(&err));
    }

    // One fixture per kind at least; nesting 32 includes deep is a unit test instead.
    let missing: Vec<&ErrorKind> = ErrorKind::ALL
        .iter()
        .filter(|k| !seen.contains(k) && **k != ErrorKind::IncludeDepth)
        .collect();
    assert!(missing.is_empty(), "no bad-recipe fixture for {missing:?}");
}
