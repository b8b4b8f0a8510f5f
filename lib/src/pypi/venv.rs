//! The skeleton of a static virtual environment at a `pypi { prefix "…" }`, as
//! `python -m venv` would leave it (nothing is run to make it): `pyvenv.cfg` naming the
//! image's interpreter, `bin/python`, `bin/python3` and `bin/python3.X` links to it, and the
//! `lib64 → lib` link. Wheels installed into the prefix then have a `bin/python` for their
//! launchers' shebangs, and running `PREFIX/bin/python` gives `sys.prefix == PREFIX`. Pure.

use std::sync::Arc;

use crate::layer::plan::{Content, ItemEntries, PlannedEntry};
use crate::layer::tar::{EntryKind, Header};
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
    let link = |path: String, target: &str| PlannedEntry {
        header: Header {
            path,
            mode: 0o777,
            uid: 0,
            gid: 0,
            kind: EntryKind::Symlink {
                target: target.to_string(),
            },
        },
        content: Content::None,
        content_hash: [0; 32],
    };
    let dir = |path: String| PlannedEntry {
        header: Header {
            path,
            mode: 0o755,
            uid: 0,
            gid: 0,
            kind: EntryKind::Dir,
        },
        content: Content::None,
        content_hash: [0; 32],
    };
    let bytes: Arc<[u8]> = Arc::from(cfg.into_bytes().into_boxed_slice());
    let entries = vec![
        PlannedEntry {
            header: Header {
                path: format!("{p}/pyvenv.cfg"),
                mode: 0o644,
                uid: 0,
                gid: 0,
                kind: EntryKind::File {
                    size: bytes.len() as u64,
                },
            },
            content_hash: *blake3::hash(&bytes).as_bytes(),
            content: Content::Inline(bytes),
        },
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
