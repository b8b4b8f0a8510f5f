//! `compose audit`: declared equals shipped.
//!
//! Over an image's [`Inventory`], every layer must carry its provenance map, every entry of
//! every layer must be declared by it (a locked package, a recipe item, a synthesized file or
//! a parent directory), every declared path must be in the layer, every file of a `.deb`
//! must match its dpkg `md5sums` and every file of a wheel its `RECORD` sha256, and, given
//! the lock, the packages the image declares must be exactly the locked ones (name, version,
//! archive sha256). Pure over the inventory and the lock.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde::Serialize;

use crate::inventory::{FileMeta, Inventory, LayerInventory};
use crate::lock::Lock;
use crate::provenance::{Origin, OriginKind};

/// One problem found.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Finding {
    /// `undeclared`, `missing`, `no-provenance`, `content`, `unlocked`, `not-shipped`,
    /// `no-record`.
    pub check: String,
    /// Layer name (or `#index`).
    pub layer: String,
    /// Image path, when the finding is about a file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The package or item concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// What is wrong.
    pub detail: String,
}

/// The audit's result.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AuditReport {
    /// Entries examined.
    pub entries: usize,
    /// Packages (debs and wheels) the image declares.
    pub packages: usize,
    /// Files whose content was checked against md5sums or RECORD.
    pub verified_files: usize,
    /// Problems, sorted.
    pub findings: Vec<Finding>,
}

impl AuditReport {
    /// True when nothing was found.
    #[must_use]
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty()
    }
}

/// Audits `inv`, and against `lock` when given.
#[must_use]
pub fn audit(inv: &Inventory, lock: Option<&Lock>) -> AuditReport {
    let mut r = AuditReport::default();
    for (i, l) in inv.layers.iter().enumerate() {
        r.entries += l.files.len();
        let Some(p) = &l.provenance else {
            r.findings.push(Finding {
                check: "no-provenance".into(),
                layer: format!("#{i}"),
                path: None,
                owner: None,
                detail: l.provenance_error.clone().unwrap_or_else(|| {
                    "the layer carries no composer provenance map, so nothing in it can be traced"
                        .into()
                }),
            });
            continue;
        };
        let layer = p.layer.clone();
        let owners = l.owners();
        for path in l.files.keys() {
            if !owners.contains_key(path.as_str()) && path != "." {
                r.findings.push(Finding {
                    check: "undeclared".into(),
                    layer: layer.clone(),
                    path: Some(format!("/{path}")),
                    owner: None,
                    detail: "in the layer but placed by no locked package, recipe item or synthesized file".into(),
                });
            }
        }
        for o in &p.origins {
            for path in &o.paths {
                if !l.files.contains_key(path) {
                    r.findings.push(Finding {
                        check: "missing".into(),
                        layer: layer.clone(),
                        path: Some(format!("/{path}")),
                        owner: Some(o.label()),
                        detail: "declared by the provenance map but not in the layer".into(),
                    });
                }
            }
            match o.kind {
                OriginKind::Deb => {
                    r.packages += 1;
                    check_deb(inv, l, &layer, o, &mut r);
                }
                OriginKind::Wheel => {
                    r.packages += 1;
                    check_wheel(inv, l, &layer, o, &mut r);
                }
                _ => {}
            }
        }
    }
    if let Some(lock) = lock {
        let declared: BTreeMap<(String, String), (String, Option<String>, String)> = inv
            .packages()
            .map(|p| {
                let o = p.origin;
                let key = match (&o.kind, &o.architecture) {
                    (OriginKind::Deb, Some(a)) => ("deb".to_string(), format!("{}:{a}", o.name)),
                    (OriginKind::Deb, None) => ("deb".to_string(), o.name.clone()),
                    _ => ("wheel".to_string(), o.name.clone()),
                };
                (
                    key,
                    (p.version.to_string(), o.sha256.clone(), p.layer.to_string()),
                )
            })
            .collect();
        let mut locked: BTreeMap<(String, String), (String, String, String)> = BTreeMap::new();
        for d in &lock.debian {
            locked.insert(
                ("deb".into(), format!("{}:{}", d.name, d.architecture)),
                (d.version.clone(), d.sha256.clone(), d.layer.clone()),
            );
        }
        for w in &lock.pypi {
            locked.insert(
                ("wheel".into(), w.name.clone()),
                (w.version.clone(), w.sha256.clone(), w.layer.clone()),
            );
        }
        let keys: BTreeSet<_> = locked.keys().chain(declared.keys()).cloned().collect();
        for k in keys {
            let label = format!("{} {}", k.0, k.1);
            match (locked.get(&k), declared.get(&k)) {
                (Some((v, _, layer)), None) => r.findings.push(Finding {
                    check: "not-shipped".into(),
                    layer: layer.clone(),
                    path: None,
                    owner: Some(format!("{label} {v}")),
                    detail: "locked but not in the image".into(),
                }),
                (None, Some((v, _, layer))) => r.findings.push(Finding {
                    check: "unlocked".into(),
                    layer: layer.clone(),
                    path: None,
                    owner: Some(format!("{label} {v}")),
                    detail: "in the image but not in the lock".into(),
                }),
                (Some((lv, ls, _)), Some((dv, ds, layer)))
                    if lv != dv || ds.as_deref() != Some(ls.as_str()) =>
                {
                    r.findings.push(Finding {
                        check: "unlocked".into(),
                        layer: layer.clone(),
                        path: None,
                        owner: Some(label),
                        detail: format!(
                            "the image has {dv} (sha256 {}), the lock pins {lv} (sha256 {ls})",
                            ds.as_deref().unwrap_or("unknown")
                        ),
                    });
                }
                _ => {}
            }
        }
    }
    r.findings.sort();
    r.findings.dedup();
    r
}

/// Top-level merged-/usr links (`bin` → `usr/bin`): md5sums name the `.deb`'s own paths.
fn usr_merged(path: &str) -> Option<String> {
    let (top, rest) = path.split_once('/')?;
    matches!(top, "bin" | "sbin" | "lib" | "lib32" | "lib64" | "libx32")
        .then(|| format!("usr/{top}/{rest}"))
}

fn check_deb(inv: &Inventory, l: &LayerInventory, layer: &str, o: &Origin, r: &mut AuditReport) {
    let base = format!("var/lib/dpkg/status.d/{}", o.name);
    let with_arch = o
        .architecture
        .as_ref()
        .map(|a| format!("var/lib/dpkg/status.d/{}:{a}.md5sums", o.name));
    let sums = inv.meta_files.get(&format!("{base}.md5sums")).or_else(|| {
        with_arch
            .as_ref()
            .and_then(|p| inv.meta_files.get(p.as_str()))
    });
    let Some(sums) = sums else {
        // A package without md5sums (rare: some ship none) is checked by path only.
        return;
    };
    for line in String::from_utf8_lossy(sums).lines() {
        let Some((md5, path)) = line.split_once("  ") else {
            continue;
        };
        let file = l
            .files
            .get(path)
            .map(|f| (path.to_string(), f))
            .or_else(|| usr_merged(path).and_then(|p| l.files.get(&p).map(|f| (p, f))));
        match file {
            None => r.findings.push(Finding {
                check: "missing".into(),
                layer: layer.into(),
                path: Some(format!("/{path}")),
                owner: Some(o.label()),
                detail: "listed in the package's md5sums but not in its layer".into(),
            }),
            Some((p, f)) => {
                r.verified_files += 1;
                if f.md5.as_deref().is_some_and(|m| m != md5) {
                    r.findings.push(Finding {
                        check: "content".into(),
                        layer: layer.into(),
                        path: Some(format!("/{p}")),
                        owner: Some(o.label()),
                        detail: format!(
                            "md5 {} differs from the package's md5sums ({md5})",
                            f.md5.as_deref().unwrap_or("?")
                        ),
                    });
                }
            }
        }
    }
}

fn check_wheel(inv: &Inventory, l: &LayerInventory, layer: &str, o: &Origin, r: &mut AuditReport) {
    let Some(record_path) = o.paths.iter().find(|p| {
        p.ends_with(".dist-info/RECORD")
            && p.rsplit('/').nth(1).is_some_and(|d| {
                crate::pypi::wheel::normalize_name(d.split('-').next().unwrap_or("")) == o.name
            })
    }) else {
        r.findings.push(Finding {
            check: "no-record".into(),
            layer: layer.into(),
            path: None,
            owner: Some(o.label()),
            detail: "the wheel's installed files have no RECORD to check them against".into(),
        });
        return;
    };
    let Some(record) = inv.meta_files.get(record_path) else {
        return;
    };
    // RECORD paths are relative to the site directory (the dist-info's parent).
    let site = record_path
        .rsplit_once('/')
        .and_then(|(d, _)| d.rsplit_once('/'))
        .map_or("", |(s, _)| s);
    for line in String::from_utf8_lossy(record).lines() {
        let mut cols = line.rsplitn(3, ',');
        let (_size, hash, path) = (cols.next(), cols.next(), cols.next());
        let (Some(hash), Some(path)) = (hash, path) else {
            continue;
        };
        let Some(b64) = hash.strip_prefix("sha256=") else {
            continue;
        };
        let full = normalize_join(site, path.trim_matches('"'));
        let Some(f): Option<&FileMeta> = l.files.get(&full) else {
            r.findings.push(Finding {
                check: "missing".into(),
                layer: layer.into(),
                path: Some(format!("/{full}")),
                owner: Some(o.label()),
                detail: "listed in the wheel's RECORD but not in its layer".into(),
            });
            continue;
        };
        r.verified_files += 1;
        let want = crate::base64::decode(b64)
            .map(hex::encode)
            .unwrap_or_default();
        let got = f.sha256.as_ref().map(|d| d.hex().to_string());
        if got.as_deref() != Some(want.as_str()) {
            r.findings.push(Finding {
                check: "content".into(),
                layer: layer.into(),
                path: Some(format!("/{full}")),
                owner: Some(o.label()),
                detail: format!(
                    "sha256 {} differs from the wheel's RECORD ({want})",
                    got.unwrap_or_else(|| "?".into())
                ),
            });
        }
    }
}

/// `site` joined with a RECORD path that may climb out of it (`../../../bin/x`).
fn normalize_join(site: &str, rel: &str) -> String {
    let mut parts: Vec<&str> = site.split('/').filter(|s| !s.is_empty()).collect();
    for c in rel.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    parts.join("/")
}

/// The report for people.
#[must_use]
pub fn to_text(r: &AuditReport) -> String {
    let mut s = String::new();
    for f in &r.findings {
        let _ = write!(s, "{}: layer {}", f.check, f.layer);
        if let Some(p) = &f.path {
            let _ = write!(s, ": {p}");
        }
        if let Some(o) = &f.owner {
            let _ = write!(s, " [{o}]");
        }
        let _ = writeln!(s, ": {}", f.detail);
    }
    let _ = writeln!(
        s,
        "{} entries, {} packages, {} files checked against md5sums/RECORD: {}",
        r.entries,
        r.packages,
        r.verified_files,
        if r.is_clean() {
            "every file traces to a locked package, a recipe item or a synthesized file".to_string()
        } else {
            format!("{} problem(s)", r.findings.len())
        }
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_paths_climb_out_of_the_site_directory() {
        assert_eq!(
            normalize_join(
                "usr/local/lib/python3.13/dist-packages",
                "../../../bin/tool"
            ),
            "usr/local/bin/tool"
        );
        assert_eq!(normalize_join("a/b", "c/./d"), "a/b/c/d");
    }

    #[test]
    fn merged_usr_paths() {
        assert_eq!(usr_merged("bin/sh").as_deref(), Some("usr/bin/sh"));
        assert_eq!(usr_merged("etc/x"), None);
    }
}
