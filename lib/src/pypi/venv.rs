//! The skeleton of a static virtual environment at a `pypi { prefix "…" }`, as
//! `python -m venv` would leave it (nothing is run to make it): `pyvenv.cfg` naming the
//! image's interpreter, `bin/python`, `bin/python3` and `bin/python3.X` links to it, and the
//! `lib64 → lib` link. Wheels installed into the prefix then have a `bin/python` for their
//! launchers' shebangs, and running `PREFIX/bin/python` gives `sys.prefix == PREFIX`. Pure.

use std::sync::Arc;

use crate::layer::plan::{ItemEntries, PlannedEntry};
use crate::pypi::target::Target;

/// Label of the skeleton item (errors, `compose graph`, provenance).
pub const LABEL: &str = "python venv";

/// The entries of the venv at `prefix` (absolute, e.g. `/opt/venv`) for the image's Python.
#[must_use]
pub fn skeleton(prefix: &str, target: &Target) -> ItemEntries {
    let p = prefix.trim_matches('/');
    let (major, minor) = target.python;
    let exe = format!("/usr/bin/python{major}.{minor}");
    let cfg = format!(
        "home = /usr/bin\ninclude-system-site-packages = false\nversion = {}\nexecutable = {exe}\ncommand = {exe} -m venv {prefix}\n",
        target.python_full
    );
    let bytes: Arc<[u8]> = Arc::from(cfg.into_bytes().into_boxed_slice());
    let link = |path: String, target: &str| PlannedEntry::symlink(path, target);
    let dir = |path: String| PlannedEntry::dir(path, 0o755);
    let entries = vec![
        PlannedEntry::inline_file(format!("{p}/pyvenv.cfg"), 0o644, bytes),
        dir(format!("{p}/bin")),
        link(format!("{p}/bin/python"), &exe),
        link(format!("{p}/bin/python3"), "python"),
        link(format!("{p}/bin/python{major}.{minor}"), "python"),
        dir(format!("{p}/include")),
        dir(format!("{p}/lib")),
        dir(format!("{p}/lib/python{major}.{minor}")),
        dir(format!("{p}/lib/python{major}.{minor}/site-packages")),
        link(format!("{p}/lib64"), "lib"),
    ];
    ItemEntries {
        label: format!("{LABEL} {prefix}"),
        entries,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::plan::Content;
    use crate::layer::tar::EntryKind;

    #[test]
    fn the_skeleton_points_at_the_images_interpreter() {
        let t = Target {
            python: (3, 13),
            python_full: "3.13.5".into(),
            glibc: (2, 41),
            arch: "x86_64".into(),
            os: "linux".into(),
        };
        let item = skeleton("/opt/venv", &t);
        let cfg = item
            .entries
            .iter()
            .find(|e| e.header.path == "opt/venv/pyvenv.cfg")
            .expect("pyvenv.cfg");
        let Content::Inline(b) = &cfg.content else {
            panic!("inline");
        };
        let text = String::from_utf8_lossy(b);
        assert!(text.starts_with("home = /usr/bin\n"), "{text}");
        assert!(text.contains("version = 3.13.5\n"), "{text}");
        let python = item
            .entries
            .iter()
            .find(|e| e.header.path == "opt/venv/bin/python")
            .expect("bin/python");
        assert_eq!(
            python.header.kind,
            EntryKind::Symlink {
                target: "/usr/bin/python3.13".into()
            }
        );
    }
}
