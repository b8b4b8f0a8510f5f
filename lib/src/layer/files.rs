//! `files` layer items to planned entries: walks local trees (sorted, symlinks kept),
//! hashes file contents in parallel, and normalizes metadata so nothing of the host leaks:
//! modes come from the recipe or from the rule "0644, or 0755 when any x bit is set"
//! (directories 0755), owners from the recipe, times from the image epoch.

use std::collections::HashMap;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rayon::prelude::*;

use super::LayerError;
use super::plan::{Content, ItemEntries, PlannedEntry};
use super::tar::{EntryKind, Header};
use crate::recipe::{LayerItem, Ownership};

/// Turns one recipe item into its entries (reading the local file system for `copy`).
///
/// # Errors
/// [`LayerError`] naming the offending local path.
pub fn item_entries(item: &LayerItem) -> Result<ItemEntries, LayerError> {
    match item {
        LayerItem::Copy {
            src,
            dest,
            mode,
            dir_mode,
            owner,
        } => {
            let label = format!("copy {} → {dest}", src.display());
            let entries = copy_entries(src, rel(dest), *mode, dir_mode.unwrap_or(0o755), *owner)?;
            Ok(ItemEntries { label, entries })
        }
        LayerItem::Write {
            dest,
            content,
            mode,
            owner,
        } => {
            let bytes: Arc<[u8]> = content.as_bytes().into();
            Ok(ItemEntries {
                label: format!("write {dest}"),
                entries: vec![PlannedEntry {
                    header: header(
                        rel(dest),
                        *mode,
                        *owner,
                        EntryKind::File {
                            size: bytes.len() as u64,
                        },
                    ),
                    content_hash: *blake3::hash(&bytes).as_bytes(),
                    content: Content::Inline(bytes),
                }],
            })
        }
        LayerItem::Dir { dest, mode, owner } => Ok(ItemEntries {
            label: format!("dir {dest}"),
            entries: vec![plain(header(rel(dest), *mode, *owner, EntryKind::Dir))],
        }),
        LayerItem::Debian { .. } | LayerItem::Pypi { .. } => Err(LayerError::NotAFilesItem),
        LayerItem::Symlink { dest, target } => Ok(ItemEntries {
            label: format!("symlink {dest} → {target}"),
            entries: vec![plain(header(
                rel(dest),
                0o777,
                Ownership::default(),
                EntryKind::Symlink {
                    target: target.clone(),
                },
            ))],
        }),
    }
}

/// `/opt/app` → `opt/app` (recipe validation guarantees an absolute, normalized path).
fn rel(dest: &str) -> String {
    dest.trim_start_matches('/').to_string()
}

fn header(path: String, mode: u32, owner: Ownership, kind: EntryKind) -> Header {
    Header {
        path,
        mode,
        uid: owner.uid,
        gid: owner.gid,
        kind,
    }
}

fn plain(header: Header) -> PlannedEntry {
    PlannedEntry {
        header,
        content: Content::None,
        content_hash: [0; 32],
    }
}

/// The normalized mode of a copied regular file.
#[must_use]
pub fn normalized_file_mode(host_mode: u32) -> u32 {
    if host_mode & 0o111 != 0 { 0o755 } else { 0o644 }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> LayerError + '_ {
    move |source| LayerError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn copy_entries(
    src: &Path,
    dest: String,
    file_mode: Option<u32>,
    dir_mode: u32,
    owner: Ownership,
) -> Result<Vec<PlannedEntry>, LayerError> {
    // The named source itself is followed (like `cp -r SRC`); links inside it are kept.
    let meta = std::fs::metadata(src).map_err(io_err(src))?;
    let mut out = Vec::new();
    let opts = WalkOpts {
        file_mode,
        dir_mode,
        owner,
    };
    if meta.is_dir() {
        walk(src, &dest, opts, &mut out)?;
    } else {
        push_node(src, &meta, dest, opts, &mut out)?;
    }
    // Write order is bytewise path order (as the layer plan sorts); in that order the first
    // path of a hard-linked inode carries the content and later ones link to it.
    out.sort_by(|a, b| a.0.header.path.as_bytes().cmp(b.0.header.path.as_bytes()));
    let mut first_path: HashMap<(u64, u64), String> = HashMap::new();
    for (entry, inode) in &mut out {
        let Some(key) = inode else { continue };
        if let Some(target) = first_path.get(key) {
            entry.header.kind = EntryKind::HardLink {
                target: target.clone(),
            };
            entry.content = Content::None;
        } else {
            first_path.insert(*key, entry.header.path.clone());
        }
    }
    let mut out: Vec<PlannedEntry> = out.into_iter().map(|(e, _)| e).collect();
    // Hash file contents in parallel (on the caller's rayon pool).
    let files: Vec<(usize, &Path)> = out
        .iter()
        .enumerate()
        .filter_map(|(i, e)| match &e.content {
            Content::Local { path, .. } => Some((i, path.as_path())),
            _ => None,
        })
        .collect();
    let hashes: Vec<(usize, Result<[u8; 32], LayerError>)> =
        files.par_iter().map(|(i, p)| (*i, hash_file(p))).collect();
    for (i, h) in hashes {
        out[i].content_hash = h?;
    }
    Ok(out)
}

/// Normalization settings of one `copy` item.
#[derive(Clone, Copy)]
struct WalkOpts {
    file_mode: Option<u32>,
    dir_mode: u32,
    owner: Ownership,
}

/// An entry with the (device, inode) of a multiply-linked regular file.
type Walked = (PlannedEntry, Option<(u64, u64)>);

fn walk(dir: &Path, dest: &str, opts: WalkOpts, out: &mut Vec<Walked>) -> Result<(), LayerError> {
    out.push((
        plain(header(
            dest.to_string(),
            opts.dir_mode,
            opts.owner,
            EntryKind::Dir,
        )),
        None,
    ));
    let mut children: Vec<(String, PathBuf)> = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let path = entry.path();
        let name = entry
            .file_name()
            .into_string()
            .map_err(|_| LayerError::NotUtf8 { path: path.clone() })?;
        children.push((name, path));
    }
    children.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    for (name, path) in children {
        let child_dest = if dest.is_empty() {
            name
        } else {
            format!("{dest}/{name}")
        };
        let meta = std::fs::symlink_metadata(&path).map_err(io_err(&path))?;
        if meta.is_dir() {
            walk(&path, &child_dest, opts, out)?;
        } else {
            push_node(&path, &meta, child_dest, opts, out)?;
        }
    }
    Ok(())
}

fn push_node(
    path: &Path,
    meta: &std::fs::Metadata,
    dest: String,
    opts: WalkOpts,
    out: &mut Vec<Walked>,
) -> Result<(), LayerError> {
    let ft = meta.file_type();
    let owner = opts.owner;
    if ft.is_file() {
        let mode = opts
            .file_mode
            .unwrap_or_else(|| normalized_file_mode(meta.mode()));
        let inode = (meta.nlink() > 1).then(|| (meta.dev(), meta.ino()));
        out.push((
            PlannedEntry {
                header: header(dest, mode, owner, EntryKind::File { size: meta.len() }),
                content: Content::Local {
                    path: path.to_path_buf(),
                    size: meta.len(),
                    mtime_ns: mtime_ns(meta),
                },
                content_hash: [0; 32],
            },
            inode,
        ));
    } else if ft.is_symlink() {
        let target = std::fs::read_link(path).map_err(io_err(path))?;
        let target = target
            .into_os_string()
            .into_string()
            .map_err(|_| LayerError::NotUtf8 {
                path: path.to_path_buf(),
            })?;
        out.push((
            plain(header(dest, 0o777, owner, EntryKind::Symlink { target })),
            None,
        ));
    } else if ft.is_dir() {
        out.push((
            plain(header(dest, opts.dir_mode, owner, EntryKind::Dir)),
            None,
        ));
    } else {
        let kind = if ft.is_fifo() {
            "a FIFO"
        } else if ft.is_socket() {
            "a socket"
        } else {
            "a device node"
        };
        return Err(LayerError::SpecialFile {
            path: path.to_path_buf(),
            kind,
        });
    }
    Ok(())
}

/// Modification time in nanoseconds, to detect a file changing between plan and build.
#[must_use]
pub fn mtime_ns(meta: &std::fs::Metadata) -> i128 {
    i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec())
}

fn hash_file(path: &Path) -> Result<[u8; 32], LayerError> {
    let mut f = std::fs::File::open(path).map_err(io_err(path))?;
    let mut h = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(io_err(path))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(*h.finalize().as_bytes())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn modes_are_normalized_from_x_bits_only() {
        assert_eq!(normalized_file_mode(0o600), 0o644);
        assert_eq!(normalized_file_mode(0o700), 0o755);
        assert_eq!(normalized_file_mode(0o4711), 0o755);
        assert_eq!(normalized_file_mode(0o666), 0o644);
    }

    #[test]
    fn copy_walks_sorted_keeps_links_and_ignores_host_modes() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("src");
        std::fs::create_dir_all(root.join("b/c")).unwrap();
        std::fs::write(root.join("b/c/f"), b"f").unwrap();
        std::fs::write(root.join("a"), b"a").unwrap();
        std::fs::set_permissions(root.join("a"), std::fs::Permissions::from_mode(0o700)).unwrap();
        std::fs::set_permissions(root.join("b"), std::fs::Permissions::from_mode(0o700)).unwrap();
        std::os::unix::fs::symlink("a", root.join("l")).unwrap();
        let item = LayerItem::Copy {
            src: root.clone(),
            dest: "/opt/x".into(),
            mode: None,
            dir_mode: None,
            owner: Ownership { uid: 7, gid: 8 },
        };
        let got = item_entries(&item).unwrap();
        let paths: Vec<_> = got
            .entries
            .iter()
            .map(|e| (e.header.path.as_str(), e.header.mode))
            .collect();
        assert_eq!(
            paths,
            [
                ("opt/x", 0o755),
                ("opt/x/a", 0o755),
                ("opt/x/b", 0o755),
                ("opt/x/b/c", 0o755),
                ("opt/x/b/c/f", 0o644),
                ("opt/x/l", 0o777)
            ]
        );
        assert_eq!(got.entries[1].content_hash, *blake3::hash(b"a").as_bytes());
        assert!(
            got.entries
                .iter()
                .all(|e| e.header.uid == 7 && e.header.gid == 8)
        );
        assert_eq!(
            got.entries[5].header.kind,
            EntryKind::Symlink { target: "a".into() }
        );
    }

    #[test]
    fn hard_links_become_links_to_the_first_path_in_write_order() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("src");
        std::fs::create_dir_all(root.join("x")).unwrap();
        std::fs::write(root.join("x/z"), b"same inode").unwrap();
        std::fs::hard_link(root.join("x/z"), root.join("b")).unwrap();
        std::fs::hard_link(root.join("x/z"), root.join("x/a")).unwrap();
        let item = LayerItem::Copy {
            src: root,
            dest: "/d".into(),
            mode: None,
            dir_mode: None,
            owner: Ownership::default(),
        };
        let got = item_entries(&item).unwrap();
        let kinds: Vec<_> = got
            .entries
            .iter()
            .map(|e| (e.header.path.as_str(), e.header.kind.clone()))
            .collect();
        assert_eq!(
            kinds,
            [
                ("d", EntryKind::Dir),
                ("d/b", EntryKind::File { size: 10 }),
                ("d/x", EntryKind::Dir),
                (
                    "d/x/a",
                    EntryKind::HardLink {
                        target: "d/b".into()
                    }
                ),
                (
                    "d/x/z",
                    EntryKind::HardLink {
                        target: "d/b".into()
                    }
                ),
            ]
        );
    }

    #[test]
    fn missing_source_and_fifo_name_their_path() {
        let t = tempfile::tempdir().unwrap();
        let missing = t.path().join("nope");
        let item = LayerItem::Copy {
            src: missing.clone(),
            dest: "/x".into(),
            mode: None,
            dir_mode: None,
            owner: Ownership::default(),
        };
        let err = item_entries(&item).unwrap_err();
        assert!(
            err.to_string().contains(&missing.display().to_string()),
            "{err}"
        );
        let fifo = t.path().join("fifo");
        let ok = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if ok {
            let item = LayerItem::Copy {
                src: t.path().to_path_buf(),
                dest: "/x".into(),
                mode: None,
                dir_mode: None,
                owner: Ownership::default(),
            };
            let err = item_entries(&item).unwrap_err();
            assert!(matches!(err, LayerError::SpecialFile { .. }), "{err}");
            assert!(err.to_string().contains("fifo"), "{err}");
        }
    }
}
