//! `compose diff`: what differs between two images, at every level, and why.
//!
//! Levels, top down: the manifest and config digests, manifest and config fields (as JSON
//! pointers), the layer list, the packages each image's provenance declares, and then every
//! file of every layer (content, size, kind, mode, uid/gid, mtime, link target, xattrs,
//! presence, and, unless `--semantic`, the order of entries in the layer). Files placed by a
//! package that was added, removed or changed version are folded into that package's line;
//! every other differing file is named with the package or recipe item that placed it on each
//! side. Pure over two [`Inventory`]s: reading them ([`crate::inventory::read`]) streams the
//! layers with memory bounded by the number of entries, not their size.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde::Serialize;

use crate::inventory::{FileMeta, Inventory, LayerInventory};
use crate::provenance::OriginKind;

/// (kind, name) of a package.
type PackageKey = (String, String);
/// (version in A, version in B, layer).
type VersionChange = (Option<String>, Option<String>, String);

/// What to compare.
#[derive(Debug, Clone, Copy, Default)]
pub struct DiffOptions {
    /// Ignore timestamps (entry mtimes, config `created`, history dates) and entry order.
    pub semantic: bool,
}

/// One differing field: a JSON pointer with the value on each side (`None`: absent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldChange {
    /// Where (`/config/Env/0`, `manifest digest`).
    pub field: String,
    /// Value in A.
    pub a: Option<String>,
    /// Value in B.
    pub b: Option<String>,
}

/// A layer that differs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LayerChange {
    /// Layer name (from provenance) or `#index`.
    pub layer: String,
    /// What differs: `digest`, `diff_id`, `size`, `media type`, `entry order`, or `only in A/B`.
    pub what: Vec<String>,
    /// A's blob digest / diff_id.
    pub a: Option<String>,
    /// B's blob digest / diff_id.
    pub b: Option<String>,
}

/// A package added, removed or at another version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PackageChange {
    /// `deb` or `wheel`.
    pub kind: String,
    /// Name (with `:arch` for a foreign-architecture deb).
    pub name: String,
    /// Version in A.
    pub a: Option<String>,
    /// Version in B.
    pub b: Option<String>,
    /// Layer (B's, else A's).
    pub layer: String,
    /// Files that differ because of it.
    pub files: usize,
}

/// A file that differs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileChange {
    /// Layer name.
    pub layer: String,
    /// Image path (absolute).
    pub path: String,
    /// `added`, `removed` or the differing fields (`content`, `mode`, …).
    pub what: Vec<String>,
    /// Entry in A.
    pub a: Option<FileMeta>,
    /// Entry in B.
    pub b: Option<FileMeta>,
    /// What placed it in A.
    pub owner_a: Option<String>,
    /// What placed it in B.
    pub owner_b: Option<String>,
}

/// Everything that differs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DiffReport {
    /// Digest-level and field-level changes of the manifest.
    pub manifest: Vec<FieldChange>,
    /// Field-level changes of the config.
    pub config: Vec<FieldChange>,
    /// Layers that differ.
    pub layers: Vec<LayerChange>,
    /// Packages that differ.
    pub packages: Vec<PackageChange>,
    /// Files that differ (outside changed packages).
    pub files: Vec<FileChange>,
}

impl DiffReport {
    /// No difference at any level.
    #[must_use]
    pub fn is_identical(&self) -> bool {
        self.manifest.is_empty()
            && self.config.is_empty()
            && self.layers.is_empty()
            && self.packages.is_empty()
            && self.files.is_empty()
    }
}

/// Compares two images.
#[must_use]
pub fn diff(a: &Inventory, b: &Inventory, opts: DiffOptions) -> DiffReport {
    let mut r = DiffReport::default();
    let show = |d: &Option<composer_store::Digest>| d.as_ref().map(ToString::to_string);
    if a.view.manifest_digest != b.view.manifest_digest {
        r.manifest.push(FieldChange {
            field: "manifest digest".into(),
            a: show(&a.view.manifest_digest),
            b: show(&b.view.manifest_digest),
        });
    }
    if a.view.config_digest != b.view.config_digest {
        r.manifest.push(FieldChange {
            field: "config digest".into(),
            a: Some(a.view.config_digest.to_string()),
            b: Some(b.view.config_digest.to_string()),
        });
    }
    if let (Some(ma), Some(mb)) = (&a.view.manifest, &b.view.manifest) {
        let (mut fa, mut fb) = (flat(ma), flat(mb));
        for f in [&mut fa, &mut fb] {
            // Layers and the config descriptor are compared at their own level.
            f.retain(|k, _| !k.starts_with("/layers/") && !k.starts_with("/config/"));
        }
        r.manifest.extend(fields(&fa, &fb));
    }
    let (mut ca, mut cb) = (flat(&a.view.config), flat(&b.view.config));
    for f in [&mut ca, &mut cb] {
        f.retain(|k, _| {
            !k.starts_with("/rootfs/diff_ids/")
                && !(opts.semantic && (k == "/created" || k.ends_with("/created")))
        });
    }
    r.config = fields(&ca, &cb);

    // Pair layers by provenance name when both images carry it, else by position.
    let names = |inv: &Inventory| -> Vec<String> {
        inv.layers
            .iter()
            .enumerate()
            .map(|(i, l)| {
                l.provenance
                    .as_ref()
                    .map_or_else(|| format!("#{i}"), |p| p.layer.clone())
            })
            .collect()
    };
    let (na, nb) = (names(a), names(b));
    let mut pairs: Vec<(String, Option<usize>, Option<usize>)> = Vec::new();
    for (i, n) in na.iter().enumerate() {
        pairs.push((n.clone(), Some(i), nb.iter().position(|x| x == n)));
    }
    for (j, n) in nb.iter().enumerate() {
        if !na.contains(n) {
            pairs.push((n.clone(), None, Some(j)));
        }
    }

    // Packages per side: (kind, name) → (version, layer).
    let (pa, pb) = (packages(a), packages(b));
    let changed: BTreeMap<PackageKey, VersionChange> = pa
        .keys()
        .chain(pb.keys())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .filter_map(|k| {
            let (va, vb) = (pa.get(k), pb.get(k));
            if va.map(|v| &v.0) == vb.map(|v| &v.0) {
                return None;
            }
            let layer = vb.or(va).map(|v| v.1.clone()).unwrap_or_default();
            Some((
                k.clone(),
                (va.map(|v| v.0.clone()), vb.map(|v| v.0.clone()), layer),
            ))
        })
        .collect();
    let changed_labels: BTreeMap<String, (String, String)> = changed
        .iter()
        .flat_map(|((kind, name), (va, vb, _))| {
            [va, vb]
                .into_iter()
                .flatten()
                .map(|v| (format!("{kind} {name} {v}"), (kind.clone(), name.clone())))
                .collect::<Vec<_>>()
        })
        .collect();
    let mut folded: BTreeMap<(String, String), usize> = BTreeMap::new();

    for (name, ia, ib) in pairs {
        let la = ia.map(|i| &a.layers[i]);
        let lb = ib.map(|i| &b.layers[i]);
        let mut what = Vec::new();
        let (va, vb) = (
            ia.and_then(|i| a.view.layers.get(i)),
            ib.and_then(|i| b.view.layers.get(i)),
        );
        match (va, vb) {
            (Some(x), Some(y)) => {
                if x.digest != y.digest {
                    what.push("digest".to_string());
                }
                if x.diff_id != y.diff_id {
                    what.push("diff_id".into());
                }
                if x.size != y.size {
                    what.push("size".into());
                }
                if x.media_type != y.media_type {
                    what.push("media type".into());
                }
            }
            (Some(_), None) => what.push("only in A".into()),
            (None, Some(_)) => what.push("only in B".into()),
            (None, None) => {}
        }
        if !opts.semantic
            && let (Some(x), Some(y)) = (la, lb)
            && x.order != y.order
            && x.files.keys().eq(y.files.keys())
        {
            what.push("entry order".into());
        }
        if !what.is_empty() {
            r.layers.push(LayerChange {
                layer: name.clone(),
                what,
                a: va.map(|v| v.diff_id.to_string()),
                b: vb.map(|v| v.diff_id.to_string()),
            });
        }
        let empty = LayerInventory::default();
        let (la, lb) = (la.unwrap_or(&empty), lb.unwrap_or(&empty));
        let (oa, ob) = (la.owners(), lb.owners());
        let paths: BTreeSet<&String> = la.files.keys().chain(lb.files.keys()).collect();
        for path in paths {
            if is_provenance_file(path) {
                // The maps themselves: what they record is reported above and below.
                continue;
            }
            let (fa, fb) = (la.files.get(path), lb.files.get(path));
            let what = file_fields(fa, fb, opts);
            if what.is_empty() {
                continue;
            }
            let (owner_a, owner_b) = (
                oa.get(path.as_str()).cloned(),
                ob.get(path.as_str()).cloned(),
            );
            let pkg = [&owner_a, &owner_b]
                .into_iter()
                .flatten()
                .find_map(|o| changed_labels.get(o));
            if let Some(k) = pkg {
                *folded.entry(k.clone()).or_default() += 1;
                continue;
            }
            r.files.push(FileChange {
                layer: name.clone(),
                path: format!("/{path}"),
                what,
                a: fa.cloned(),
                b: fb.cloned(),
                owner_a,
                owner_b,
            });
        }
    }
    r.packages = changed
        .into_iter()
        .map(|((kind, name), (va, vb, layer))| PackageChange {
            files: folded
                .get(&(kind.clone(), name.clone()))
                .copied()
                .unwrap_or(0),
            kind,
            name,
            a: va,
            b: vb,
            layer,
        })
        .collect();
    r
}

fn is_provenance_file(path: &str) -> bool {
    path.strip_prefix(crate::provenance::DIR)
        .is_some_and(|rest| rest.starts_with('/') && rest.ends_with(".json"))
}

/// The fields that differ between two entries of the same path.
fn file_fields(a: Option<&FileMeta>, b: Option<&FileMeta>, opts: DiffOptions) -> Vec<String> {
    let (a, b) = match (a, b) {
        (Some(a), Some(b)) => (a, b),
        (Some(_), None) => return vec!["removed".into()],
        (None, Some(_)) => return vec!["added".into()],
        (None, None) => return Vec::new(),
    };
    let mut w = Vec::new();
    if a.kind != b.kind {
        w.push("kind");
    }
    if a.sha256 != b.sha256 {
        w.push("content");
    } else if a.size != b.size {
        w.push("size");
    }
    if a.mode != b.mode {
        w.push("mode");
    }
    if a.uid != b.uid {
        w.push("uid");
    }
    if a.gid != b.gid {
        w.push("gid");
    }
    if a.mtime != b.mtime && !opts.semantic {
        w.push("mtime");
    }
    if a.link != b.link {
        w.push("link");
    }
    if a.xattrs != b.xattrs {
        w.push("xattrs");
    }
    w.into_iter().map(String::from).collect()
}

/// (kind, name[:arch]) → (version, layer) for every package the image's provenance declares.
fn packages(inv: &Inventory) -> BTreeMap<(String, String), (String, String)> {
    inv.packages()
        .map(|p| {
            let kind = if p.origin.kind == OriginKind::Deb {
                "deb"
            } else {
                "wheel"
            };
            (
                (kind.to_string(), p.origin.name.clone()),
                (p.version.to_string(), p.layer.to_string()),
            )
        })
        .collect()
}

fn flat<T: Serialize>(v: &T) -> BTreeMap<String, String> {
    fn walk(v: &serde_json::Value, at: &str, out: &mut BTreeMap<String, String>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, x) in m {
                    let key = k.replace('~', "~0").replace('/', "~1");
                    walk(x, &format!("{at}/{key}"), out);
                }
            }
            serde_json::Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    walk(x, &format!("{at}/{i}"), out);
                }
            }
            other => {
                out.insert(at.to_string(), other.to_string());
            }
        }
    }
    let mut out = BTreeMap::new();
    if let Ok(v) = serde_json::to_value(v) {
        walk(&v, "", &mut out);
    }
    out
}

fn fields(a: &BTreeMap<String, String>, b: &BTreeMap<String, String>) -> Vec<FieldChange> {
    a.keys()
        .chain(b.keys())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| FieldChange {
            field: k.clone(),
            a: a.get(k).cloned(),
            b: b.get(k).cloned(),
        })
        .collect()
}

/// The report for people.
#[must_use]
pub fn to_text(r: &DiffReport) -> String {
    let mut s = String::new();
    let v = |x: &Option<String>| x.clone().unwrap_or_else(|| "(absent)".into());
    if r.is_identical() {
        return "identical: no difference in manifest, config, layers or files\n".into();
    }
    for (title, list) in [("manifest", &r.manifest), ("config", &r.config)] {
        if !list.is_empty() {
            let _ = writeln!(s, "{title}:");
            for f in list {
                let _ = writeln!(s, "  {}: {} → {}", f.field, v(&f.a), v(&f.b));
            }
        }
    }
    if !r.layers.is_empty() {
        let _ = writeln!(s, "layers:");
        for l in &r.layers {
            let _ = writeln!(s, "  {}: {}", l.layer, l.what.join(", "));
        }
    }
    if !r.packages.is_empty() {
        let _ = writeln!(s, "packages:");
        for p in &r.packages {
            let change = match (&p.a, &p.b) {
                (None, Some(b)) => format!("+ {} {} {b}", p.kind, p.name),
                (Some(a), None) => format!("- {} {} {a}", p.kind, p.name),
                (Some(a), Some(b)) => format!("~ {} {} {a} → {b}", p.kind, p.name),
                (None, None) => continue,
            };
            let _ = writeln!(
                s,
                "  {change} (layer {}, {} file{})",
                p.layer,
                p.files,
                if p.files == 1 { "" } else { "s" }
            );
        }
    }
    if !r.files.is_empty() {
        let _ = writeln!(s, "files:");
        for f in &r.files {
            let detail = f
                .what
                .iter()
                .map(|w| match (w.as_str(), &f.a, &f.b) {
                    ("mode", Some(a), Some(b)) => format!("mode {:04o} → {:04o}", a.mode, b.mode),
                    ("mtime", Some(a), Some(b)) => format!("mtime {} → {}", a.mtime, b.mtime),
                    ("uid", Some(a), Some(b)) => format!("uid {} → {}", a.uid, b.uid),
                    ("gid", Some(a), Some(b)) => format!("gid {} → {}", a.gid, b.gid),
                    ("size", Some(a), Some(b)) => format!("size {} → {}", a.size, b.size),
                    ("link", Some(a), Some(b)) => format!(
                        "link {} → {}",
                        a.link.as_deref().unwrap_or("-"),
                        b.link.as_deref().unwrap_or("-")
                    ),
                    _ => w.clone(),
                })
                .collect::<Vec<_>>()
                .join(", ");
            let owner = match (&f.owner_a, &f.owner_b) {
                (Some(x), Some(y)) if x == y => format!(" [{x}]"),
                (Some(x), Some(y)) => format!(" [{x} → {y}]"),
                (Some(x), None) | (None, Some(x)) => format!(" [{x}]"),
                (None, None) => " [no provenance]".into(),
            };
            let _ = writeln!(s, "  {} {}: {detail}{owner}", f.layer, f.path);
        }
    }
    let _ = writeln!(
        s,
        "{} package(s) and {} file(s) differ",
        r.packages.len(),
        r.files.len()
    );
    s
}
