//! Which package shipped a file, read from the image itself.
//!
//! Debian: `var/lib/dpkg/status.d/<pkg>[:<arch>].md5sums` (the distroless layout composer
//! synthesizes, `crate::debian::synth`), and dpkg's own `var/lib/dpkg/info/<pkg>[:<arch>].list`
//! and `.md5sums`; the version comes from `status.d/<pkg>` or `var/lib/dpkg/status`. Wheels:
//! every `*.dist-info/RECORD`, paths relative to the directory holding the `.dist-info`
//! (`../../../bin/x` included), the name and version from `METADATA`. Listed paths are
//! resolved through the image's symlinks (a package listing `lib/x86_64-linux-gnu/libc.so.6`
//! owns `usr/lib/x86_64-linux-gnu/libc.so.6` on a merged-/usr image). Pure over a [`Rootfs`].

use std::collections::BTreeMap;

use super::rootfs::Rootfs;

/// Resolved file path → package label (`libc6 2.41-12 (deb)`, `numpy 2.3.0 (wheel)`).
#[derive(Debug, Clone, Default)]
pub struct Owners {
    by_path: BTreeMap<String, String>,
}

impl Owners {
    /// The package that shipped the file at `path` (resolved), if the image says.
    #[must_use]
    pub fn of(&self, path: &str) -> Option<&str> {
        self.by_path.get(path).map(String::as_str)
    }

    /// Number of owned files.
    #[must_use]
    pub fn len(&self) -> usize {
        self.by_path.len()
    }

    /// Whether no file has a known owner.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.by_path.is_empty()
    }
}

/// `Version:` of a deb822 stanza for `pkg` in `text` (the first stanza naming it).
fn deb_version(text: &str, pkg: &str) -> Option<String> {
    for stanza in text.split("\n\n") {
        let field = |name: &str| {
            stanza
                .lines()
                .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()))
        };
        if field("Package:").as_deref() == Some(pkg) {
            return field("Version:");
        }
    }
    None
}

/// Normalizes `a/b/../c` (relative to the root; `..` stops at it).
#[must_use]
pub fn normalize(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out.join("/")
}

/// `Name` and `Version` of a `METADATA` text.
#[must_use]
pub fn name_version(metadata: &str) -> (Option<String>, Option<String>) {
    let mut name = None;
    let mut version = None;
    for line in metadata.lines() {
        if line.is_empty() {
            break;
        }
        if let Some(v) = line.strip_prefix("Name:") {
            name.get_or_insert_with(|| v.trim().to_string());
        } else if let Some(v) = line.strip_prefix("Version:") {
            version.get_or_insert_with(|| v.trim().to_string());
        }
    }
    (name, version)
}

/// Builds the owner index of `fs`.
#[must_use]
pub fn owners(fs: &Rootfs) -> Owners {
    let mut by_path = BTreeMap::new();
    let status = fs.text("var/lib/dpkg/status").unwrap_or("");
    let mut add = |listed: &str, label: &str| {
        if let Some((real, _)) = fs.file(listed) {
            by_path.entry(real).or_insert_with(|| label.to_string());
        }
    };
    for (path, info) in fs.files() {
        let Some(text) = info.text.as_deref() else {
            continue;
        };
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
        let deb = |stem: &str| {
            let pkg = stem.split(':').next().unwrap_or(stem);
            let control = fs.text(&format!("{dir}/{stem}")).unwrap_or("");
            let version = deb_version(control, pkg).or_else(|| deb_version(status, pkg));
            match version {
                Some(v) => format!("{pkg} {v} (deb)"),
                None => format!("{pkg} (deb)"),
            }
        };
        if dir == "var/lib/dpkg/status.d" || dir == "var/lib/dpkg/info" {
            if let Some(stem) = name.strip_suffix(".md5sums") {
                let label = deb(stem);
                for line in text.lines() {
                    if let Some((_, p)) = line.split_once("  ") {
                        add(p.trim_start_matches('/'), &label);
                    }
                }
            } else if let Some(stem) = name.strip_suffix(".list") {
                let label = deb(stem);
                for line in text.lines() {
                    let p = line.trim().trim_start_matches('/');
                    if !p.is_empty() && p != "." {
                        add(p, &label);
                    }
                }
            }
        } else if name == "RECORD" && dir.ends_with(".dist-info") {
            let site = dir.rsplit_once('/').map_or("", |(s, _)| s);
            let meta = fs.text(&format!("{dir}/METADATA")).unwrap_or("");
            let label = match name_version(meta) {
                (Some(n), Some(v)) => format!("{n} {v} (wheel)"),
                _ => {
                    let base = dir.rsplit('/').next().unwrap_or(dir);
                    format!(
                        "{} (wheel)",
                        base.trim_end_matches(".dist-info").replacen('-', " ", 1)
                    )
                }
            };
            for line in text.lines() {
                let p = line.split(',').next().unwrap_or("");
                if !p.is_empty() {
                    add(&normalize(&format!("{site}/{p}")), &label);
                }
            }
        }
    }
    Owners { by_path }
}

#[cfg(test)]
mod tests {
    use super::super::rootfs::{FileInfo, Node};
    use super::*;

    fn text(t: &str) -> Node {
        Node::File(FileInfo {
            text: Some(t.into()),
            ..FileInfo::default()
        })
    }

    #[test]
    fn debs_and_wheels_own_their_files() {
        let sp = "usr/local/lib/python3.13/dist-packages";
        let nodes: BTreeMap<String, Node> = [
            ("lib", Node::Symlink("usr/lib".into())),
            (
                "usr/lib/x86_64-linux-gnu/libc.so.6",
                Node::File(FileInfo::default()),
            ),
            (
                "var/lib/dpkg/status.d/libc6:amd64",
                text("Package: libc6\nStatus: install ok installed\nVersion: 2.41-12\n"),
            ),
            (
                "var/lib/dpkg/status.d/libc6:amd64.md5sums",
                text("0123  lib/x86_64-linux-gnu/libc.so.6\n"),
            ),
            (
                &format!("{sp}/nvidia/cudnn/lib/libcudnn.so.9"),
                Node::File(FileInfo::default()),
            ),
            ("usr/local/bin/tool", Node::File(FileInfo::default())),
            (
                &format!("{sp}/nvidia_cudnn_cu12-9.1.0.dist-info/METADATA"),
                text("Metadata-Version: 2.1\nName: nvidia-cudnn-cu12\nVersion: 9.1.0\n\nbody"),
            ),
            (
                &format!("{sp}/nvidia_cudnn_cu12-9.1.0.dist-info/RECORD"),
                text("nvidia/cudnn/lib/libcudnn.so.9,sha256=x,1\n../../../bin/tool,,\n"),
            ),
        ]
        .into_iter()
        .map(|(p, n)| (p.to_string(), n))
        .collect();
        let fs = Rootfs::from_nodes(nodes, "amd64");
        let o = owners(&fs);
        assert_eq!(
            o.of("usr/lib/x86_64-linux-gnu/libc.so.6"),
            Some("libc6 2.41-12 (deb)")
        );
        assert_eq!(
            o.of(&format!("{sp}/nvidia/cudnn/lib/libcudnn.so.9")),
            Some("nvidia-cudnn-cu12 9.1.0 (wheel)")
        );
        assert_eq!(
            o.of("usr/local/bin/tool"),
            Some("nvidia-cudnn-cu12 9.1.0 (wheel)")
        );
    }
}
