//! Provenance carried inside the image: for every layer, a small JSON file that maps each
//! path the layer holds to what placed it (a locked `.deb` or wheel with its sha256, a
//! recipe item, composer's synthesized system files, or the parent directories), plus the
//! config labels that name the recipe, the lock and composer's version.
//!
//! The map lives in the layer it describes, at [`path_for`] (`usr/share/composer/provenance/
//! <layer>.json`), so it travels with the image through every transport (registry, oci-archive,
//! docker-archive) and `compose audit`, `diff` and `sbom` work on any copy. The file lists
//! itself under the `provenance` origin. Pure: built from a [`LayerPlan`], parsed from bytes.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::layer::plan::{Content, ItemEntries, LayerPlan, PlannedEntry};
use crate::layer::tar::EntryKind;
use crate::lock::{LockedDeb, LockedWheel};

/// Directory (image path, relative) holding one provenance file per layer.
pub const DIR: &str = "usr/share/composer/provenance";
/// Version of the provenance document format.
pub const VERSION: u32 = 1;
/// Label: `sha256:…` of the recipe files (the recipe and its includes, in include order).
pub const LABEL_RECIPE: &str = "org.composer.recipe.digest";
/// Label: `sha256:…` of the lockfile's text.
pub const LABEL_LOCK: &str = "org.composer.lock.digest";
/// Label: the composer version that built the image.
pub const LABEL_VERSION: &str = "org.composer.version";
/// Fragment label of the provenance file itself.
pub const ITEM_LABEL: &str = "composer provenance";

/// The provenance file's path for layer `layer`.
#[must_use]
pub fn path_for(layer: &str) -> String {
    format!("{DIR}/{layer}.json")
}

/// One layer's provenance document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerProvenance {
    /// Format version ([`VERSION`]).
    pub composer_provenance: u32,
    /// The recipe's layer name.
    pub layer: String,
    /// What placed the layer's paths, in fragment order.
    pub origins: Vec<Origin>,
}

/// What kind of thing placed some paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OriginKind {
    /// A locked Debian package.
    Deb,
    /// A locked wheel.
    Wheel,
    /// A recipe `files` item (copy, write, dir, symlink).
    Recipe,
    /// Files composer writes in place of maintainer scripts (passwd, dpkg status, …).
    Synthesized,
    /// Parent directories no item declared.
    Parents,
    /// This provenance file.
    Provenance,
}

/// One origin and the paths it placed in this layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    /// Kind.
    pub kind: OriginKind,
    /// Package name (deb, wheel) or the recipe item's label.
    pub name: String,
    /// Package version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Debian architecture.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub architecture: Option<String>,
    /// sha256 (hex) of the `.deb` or wheel, as locked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Where the lock fetches it from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Debian suite (`trixie`), for the purl's `distro`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suite: Option<String>,
    /// Paths (image-relative, no leading `/`) in the order they are written.
    pub paths: Vec<String>,
}

impl Origin {
    /// `deb NAME VERSION`, `wheel NAME VERSION`, or the item label: how messages name it.
    #[must_use]
    pub fn label(&self) -> String {
        match (&self.kind, &self.version) {
            (OriginKind::Deb, Some(v)) => format!("deb {} {v}", self.name),
            (OriginKind::Wheel, Some(v)) => format!("wheel {} {v}", self.name),
            _ => self.name.clone(),
        }
    }
}

/// What each fragment label of a build stands for: its locked package, if any.
#[derive(Debug, Clone, Default)]
pub struct Origins {
    by_label: BTreeMap<String, Origin>,
}

impl Origins {
    /// Origins for the locked packages of a build, keyed by their fragment labels.
    #[must_use]
    pub fn new(debs: &[LockedDeb], wheels: &[LockedWheel]) -> Self {
        let mut by_label = BTreeMap::new();
        for d in debs {
            by_label.insert(
                format!("deb {}", crate::debian::install::label(d)),
                Origin {
                    kind: OriginKind::Deb,
                    name: d.name.clone(),
                    version: Some(d.version.clone()),
                    architecture: Some(d.architecture.clone()),
                    sha256: Some(d.sha256.clone()),
                    url: Some(d.url.clone()),
                    suite: Some(d.suite.clone()),
                    paths: Vec::new(),
                },
            );
        }
        for w in wheels {
            by_label.insert(
                format!("wheel {} {}", w.name, w.version),
                Origin {
                    kind: OriginKind::Wheel,
                    name: w.name.clone(),
                    version: Some(w.version.clone()),
                    architecture: None,
                    sha256: Some(w.sha256.clone()),
                    url: Some(w.url.clone()),
                    suite: None,
                    paths: Vec::new(),
                },
            );
        }
        Self { by_label }
    }

    fn origin(&self, label: &str) -> Origin {
        if let Some(o) = self.by_label.get(label) {
            return o.clone();
        }
        let kind = match label {
            "parent directories" => OriginKind::Parents,
            "synthesized system files" => OriginKind::Synthesized,
            ITEM_LABEL => OriginKind::Provenance,
            _ => OriginKind::Recipe,
        };
        Origin {
            kind,
            name: host_free(label),
            version: None,
            architecture: None,
            sha256: None,
            url: None,
            suite: None,
            paths: Vec::new(),
        }
    }
}

/// A recipe item's label without host paths: `copy /home/u/app → /opt/app` names its
/// source by the last component only (`copy app → /opt/app`), so the image does not depend
/// on where the recipe was checked out.
fn host_free(label: &str) -> String {
    match label
        .strip_prefix("copy ")
        .and_then(|rest| rest.rsplit_once(" → "))
    {
        Some((src, dest)) => {
            let base = src.trim_end_matches('/').rsplit('/').next().unwrap_or(src);
            format!("copy {base} → {dest}")
        }
        None => label.to_string(),
    }
}

/// The placeholder item for layer `layer`'s provenance file; add it to the layer's items
/// before [`crate::layer::plan::plan_layer`], then call [`fill`] on the plan.
#[must_use]
pub fn placeholder(layer: &str) -> ItemEntries {
    ItemEntries {
        label: ITEM_LABEL.into(),
        entries: vec![PlannedEntry::inline_file(
            path_for(layer),
            0o644,
            Arc::from(&b""[..]),
        )],
    }
}

/// The provenance document of a planned layer. A package's dpkg records
/// (`var/lib/dpkg/status.d/NAME`, `NAME.md5sums`, with or without `:ARCH`), which composer
/// synthesizes, are attributed to the package they describe, so adding a package shows up
/// as that package and nothing else.
#[must_use]
pub fn document(plan: &LayerPlan, origins: &Origins) -> LayerProvenance {
    let mut list: Vec<Origin> = plan
        .fragments
        .iter()
        .map(|f| {
            let mut o = origins.origin(&f.label);
            o.paths = f.entries.iter().map(|e| e.header.path.clone()).collect();
            o
        })
        .collect();
    let debs: BTreeMap<String, usize> = list
        .iter()
        .enumerate()
        .filter(|(_, o)| o.kind == OriginKind::Deb)
        .flat_map(|(i, o)| {
            let arch = o.architecture.clone().unwrap_or_default();
            [o.name.clone(), format!("{}:{arch}", o.name)].map(|n| (n, i))
        })
        .collect();
    let mut moved: Vec<(usize, String)> = Vec::new();
    for o in list
        .iter_mut()
        .filter(|o| o.kind == OriginKind::Synthesized)
    {
        o.paths.retain(|p| {
            let owner = p
                .strip_prefix("var/lib/dpkg/status.d/")
                .map(|n| n.strip_suffix(".md5sums").unwrap_or(n))
                .and_then(|n| debs.get(n));
            match owner {
                Some(&i) => {
                    moved.push((i, p.clone()));
                    false
                }
                None => true,
            }
        });
    }
    for (i, p) in moved {
        list[i].paths.push(p);
    }
    list.retain(|o| !o.paths.is_empty());
    LayerProvenance {
        composer_provenance: VERSION,
        layer: plan.name.clone(),
        origins: list,
    }
}

/// Replaces the placeholder in `plan` with the real provenance document.
///
/// # Errors
/// The placeholder is missing (the layer was planned without [`placeholder`]).
pub fn fill(plan: &mut LayerPlan, origins: &Origins) -> Result<(), String> {
    let bytes = to_bytes(&document(plan, origins));
    let path = path_for(&plan.name);
    let frag = plan
        .fragments
        .iter_mut()
        .find(|f| f.label == ITEM_LABEL)
        .ok_or_else(|| format!("layer `{}` has no provenance placeholder", plan.name))?;
    let entry = frag
        .entries
        .iter_mut()
        .find(|e| e.header.path == path)
        .ok_or_else(|| format!("layer `{}`: {path} is not planned", plan.name))?;
    entry.header.kind = EntryKind::File {
        size: bytes.len() as u64,
    };
    entry.content_hash = *blake3::hash(&bytes).as_bytes();
    entry.content = Content::Inline(Arc::from(bytes.into_boxed_slice()));
    frag.tar_len = frag
        .entries
        .iter()
        .map(|e| crate::layer::tar::entry_len(&e.header))
        .sum();
    Ok(())
}

/// The document's bytes: compact JSON with a trailing newline (fields in declaration order,
/// origins in fragment order, paths in write order; nothing depends on the host).
#[must_use]
pub fn to_bytes(doc: &LayerProvenance) -> Vec<u8> {
    let mut b = serde_json::to_vec(doc).unwrap_or_default();
    b.push(b'\n');
    b
}

/// Parses a provenance file read from an image.
///
/// # Errors
/// Malformed JSON or an unknown format version.
pub fn parse(bytes: &[u8]) -> Result<LayerProvenance, String> {
    let doc: LayerProvenance =
        serde_json::from_slice(bytes).map_err(|e| format!("malformed provenance: {e}"))?;
    if doc.composer_provenance != VERSION {
        return Err(format!(
            "provenance format {} is not supported (this composer reads {VERSION})",
            doc.composer_provenance
        ));
    }
    Ok(doc)
}

/// `sha256:<hex>` of recipe source texts, in include order (each length-prefixed, so
/// moving text between files changes the digest).
#[must_use]
pub fn recipe_digest<'a>(texts: impl IntoIterator<Item = &'a str>) -> String {
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    for t in texts {
        h.update((t.len() as u64).to_le_bytes());
        h.update(t.as_bytes());
    }
    format!("sha256:{}", hex::encode(h.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::plan::plan_layer;
    use crate::layer::tar::Header;

    fn file(path: &str, body: &[u8]) -> PlannedEntry {
        PlannedEntry {
            header: Header {
                path: path.into(),
                mode: 0o644,
                uid: 0,
                gid: 0,
                kind: EntryKind::File {
                    size: body.len() as u64,
                },
            },
            content: Content::Inline(Arc::from(body)),
            content_hash: *blake3::hash(body).as_bytes(),
        }
    }

    #[test]
    fn every_path_of_the_layer_has_exactly_one_origin() {
        let wheel = LockedWheel {
            name: "demo".into(),
            version: "1.0".into(),
            filename: "demo-1.0-py3-none-any.whl".into(),
            url: "https://example.org/demo.whl".into(),
            index: "https://example.org/simple".into(),
            sha256: "ab".repeat(32),
            size: 1,
            layer: "app".into(),
            extras: vec![],
            reason: "requested".into(),
        };
        let origins = Origins::new(&[], std::slice::from_ref(&wheel));
        let items = vec![
            ItemEntries {
                label: "wheel demo 1.0".into(),
                entries: vec![file("usr/lib/demo/__init__.py", b"x")],
            },
            ItemEntries {
                label: "write /etc/motd".into(),
                entries: vec![file("etc/motd", b"hi\n")],
            },
            placeholder("app"),
        ];
        let mut plan = plan_layer("app", items).expect("plan");
        fill(&mut plan, &origins).expect("fill");
        let planned: Vec<String> = plan
            .fragments
            .iter()
            .flat_map(|f| f.entries.iter().map(|e| e.header.path.clone()))
            .collect();
        let Content::Inline(bytes) = &plan.fragments.last().expect("frag").entries[0].content
        else {
            panic!("inline content expected");
        };
        let doc = parse(bytes).expect("parse");
        let mut mapped: Vec<String> = doc
            .origins
            .iter()
            .flat_map(|o| o.paths.iter().cloned())
            .collect();
        let mut want = planned.clone();
        mapped.sort();
        want.sort();
        assert_eq!(
            mapped, want,
            "the map covers every path once, itself included"
        );
        let w = doc
            .origins
            .iter()
            .find(|o| o.kind == OriginKind::Wheel)
            .expect("wheel origin");
        assert_eq!(w.sha256.as_deref(), Some(wheel.sha256.as_str()));
        assert_eq!(w.label(), "wheel demo 1.0");
        assert!(
            doc.origins
                .iter()
                .any(|o| o.kind == OriginKind::Parents && o.paths.contains(&DIR.to_string()))
        );
        // Deterministic: the same plan gives the same bytes.
        let mut again = plan.clone();
        fill(&mut again, &origins).expect("fill");
        assert_eq!(
            format!("{:?}", again.fragments),
            format!("{:?}", plan.fragments)
        );
    }

    #[test]
    fn copy_labels_lose_their_host_directory() {
        assert_eq!(
            host_free("copy /work/main/examples/hello → /opt/hello"),
            "copy hello → /opt/hello"
        );
        assert_eq!(host_free("write /etc/motd"), "write /etc/motd");
    }

    #[test]
    fn recipe_digest_depends_on_the_split_between_files() {
        assert_ne!(recipe_digest(["ab", "c"]), recipe_digest(["a", "bc"]));
        assert_eq!(recipe_digest(["x"]), recipe_digest(["x"]));
    }
}
