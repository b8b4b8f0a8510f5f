//! `compose sbom`: SPDX 2.3 JSON and CycloneDX 1.6 JSON from an image's own provenance.
//!
//! Every Debian package and wheel the image's provenance maps declare becomes one package /
//! component with its purl (`pkg:deb/debian/NAME@VERSION?arch=…&distro=…`,
//! `pkg:pypi/NAME@VERSION`), the sha256 of the `.deb` or wheel, the URL it was fetched from,
//! the layer it is in, and its license where the image says so (a wheel's
//! `License-Expression`, a Debian DEP-5 `copyright` file's `Files: *` license mapped to
//! SPDX). Nothing else is listed: recipe files and synthesized files are not packages.
//! Deterministic: creation time is the image's `created`, ids and the namespace derive from
//! the manifest digest. Pure over an [`Inventory`].

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::inventory::Inventory;
use crate::provenance::OriginKind;

/// One package as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SbomPackage {
    /// `deb` or `pypi`.
    pub ecosystem: &'static str,
    /// Name.
    pub name: String,
    /// Version.
    pub version: String,
    /// Debian architecture.
    pub architecture: Option<String>,
    /// sha256 (hex) of the archive.
    pub sha256: Option<String>,
    /// Download URL.
    pub url: Option<String>,
    /// Layer name.
    pub layer: String,
    /// Package URL.
    pub purl: String,
    /// SPDX license expression, when known.
    pub license: Option<String>,
}

/// The packages of an image, sorted by ecosystem, name, architecture.
#[must_use]
pub fn packages(inv: &Inventory) -> Vec<SbomPackage> {
    let mut out = BTreeMap::new();
    for declared in inv.packages() {
        let (o, version, layer) = (
            declared.origin,
            declared.version.to_string(),
            declared.layer.to_string(),
        );
        let pkg = match o.kind {
            OriginKind::Deb => {
                let arch = o.architecture.clone().unwrap_or_else(|| "all".into());
                let distro = o
                    .suite
                    .as_deref()
                    .map(|s| s.split('-').next().unwrap_or(s).to_string());
                let mut purl = format!(
                    "pkg:deb/debian/{}@{}?arch={}",
                    pct(&o.name),
                    pct(&version),
                    pct(&arch)
                );
                if let Some(d) = &distro {
                    purl.push_str(&format!("&distro={}", pct(d)));
                }
                SbomPackage {
                    ecosystem: "deb",
                    name: o.name.clone(),
                    license: deb_license(inv, &o.name),
                    version,
                    architecture: Some(arch),
                    sha256: o.sha256.clone(),
                    url: o.url.clone(),
                    layer,
                    purl,
                }
            }
            OriginKind::Wheel => SbomPackage {
                ecosystem: "pypi",
                purl: format!("pkg:pypi/{}@{}", pct(&o.name), pct(&version)),
                license: wheel_license(inv, &o.paths),
                name: o.name.clone(),
                version,
                architecture: None,
                sha256: o.sha256.clone(),
                url: o.url.clone(),
                layer,
            },
            _ => continue,
        };
        out.insert(
            (pkg.ecosystem, pkg.name.clone(), pkg.architecture.clone()),
            pkg,
        );
    }
    out.into_values().collect()
}

/// Percent-encodes everything but purl's unreserved characters.
fn pct(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            o.push(char::from(b));
        } else {
            o.push_str(&format!("%{b:02X}"));
        }
    }
    o
}

/// A wheel's `License-Expression` (PEP 639), else a `License` field that is a single SPDX-like
/// identifier.
fn wheel_license(inv: &Inventory, paths: &[String]) -> Option<String> {
    let meta = paths.iter().find(|p| p.ends_with(".dist-info/METADATA"))?;
    let text = String::from_utf8_lossy(inv.meta_files.get(meta)?).into_owned();
    let mut license = None;
    for line in text.lines() {
        if line.is_empty() {
            break; // the body (description) starts
        }
        if let Some(v) = line.strip_prefix("License-Expression:") {
            return Some(v.trim().to_string()).filter(|v| !v.is_empty());
        }
        if let Some(v) = line.strip_prefix("License:") {
            let v = v.trim();
            if !v.is_empty() && spdx_id(v).is_some() {
                license = spdx_id(v);
            }
        }
    }
    license
}

/// The license of the `Files: *` paragraph of a DEP-5 copyright file, mapped to SPDX.
fn deb_license(inv: &Inventory, name: &str) -> Option<String> {
    let text = inv
        .meta_files
        .get(&format!("usr/share/doc/{name}/copyright"))?;
    let text = String::from_utf8_lossy(text);
    if !text.starts_with("Format:") {
        return None;
    }
    for para in text.split("\n\n") {
        let mut files_star = false;
        for line in para.lines() {
            if line.strip_prefix("Files:").is_some_and(|f| f.trim() == "*") {
                files_star = true;
            }
            if files_star && let Some(l) = line.strip_prefix("License:") {
                let short = l.trim();
                let parts: Vec<Option<String>> =
                    short.split(" or ").map(|p| spdx_id(p.trim())).collect();
                if parts.iter().all(Option::is_some) && !parts.is_empty() {
                    return Some(parts.into_iter().flatten().collect::<Vec<_>>().join(" OR "));
                }
                return None;
            }
        }
    }
    None
}

/// Debian / PyPI short license names → SPDX identifiers (the common ones; others are
/// reported as unknown rather than guessed).
fn spdx_id(s: &str) -> Option<String> {
    let id = match s {
        "Expat" | "MIT" | "MIT License" => "MIT",
        "BSD-3-clause" | "BSD-3-Clause" | "BSD 3-Clause" | "BSD" => "BSD-3-Clause",
        "BSD-2-clause" | "BSD-2-Clause" => "BSD-2-Clause",
        "Apache-2.0" | "Apache 2.0" | "Apache-2" | "Apache License 2.0" => "Apache-2.0",
        "GPL-2" | "GPL-2.0" | "GPL-2.0-only" => "GPL-2.0-only",
        "GPL-2+" | "GPL-2.0+" | "GPL-2.0-or-later" => "GPL-2.0-or-later",
        "GPL-3" | "GPL-3.0" | "GPL-3.0-only" => "GPL-3.0-only",
        "GPL-3+" | "GPL-3.0+" | "GPL-3.0-or-later" => "GPL-3.0-or-later",
        "LGPL-2.1" | "LGPL-2.1-only" => "LGPL-2.1-only",
        "LGPL-2.1+" | "LGPL-2.1-or-later" => "LGPL-2.1-or-later",
        "LGPL-3" | "LGPL-3.0" => "LGPL-3.0-only",
        "LGPL-3+" | "LGPL-3.0+" => "LGPL-3.0-or-later",
        "PSF-2.0" | "PSF-2" | "Python-2.0" => "Python-2.0",
        "ISC" => "ISC",
        "Zlib" | "zlib" => "Zlib",
        "MPL-2.0" => "MPL-2.0",
        "public-domain" => return None,
        _ => return None,
    };
    Some(id.into())
}

fn spdx_ref(p: &SbomPackage) -> String {
    let raw = match &p.architecture {
        Some(a) => format!("{}-{}-{a}", p.ecosystem, p.name),
        None => format!("{}-{}", p.ecosystem, p.name),
    };
    let safe: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("SPDXRef-Package-{safe}")
}

fn image_name(inv: &Inventory) -> String {
    inv.view
        .config
        .config
        .labels
        .get("org.opencontainers.image.title")
        .cloned()
        .or_else(|| inv.view.tags.first().cloned())
        .unwrap_or_else(|| "image".into())
}

fn subject(inv: &Inventory) -> String {
    inv.view
        .manifest_digest
        .as_ref()
        .unwrap_or(&inv.view.config_digest)
        .to_string()
}

/// The SPDX 2.3 JSON document.
#[must_use]
pub fn spdx(inv: &Inventory) -> Value {
    let pkgs = packages(inv);
    let digest = subject(inv);
    let name = image_name(inv);
    let mut packages = vec![json!({
        "SPDXID": "SPDXRef-Image",
        "name": name,
        "versionInfo": inv.view.tags.first().cloned().unwrap_or_default(),
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "primaryPackagePurpose": "CONTAINER",
        "checksums": [{"algorithm": "SHA256", "checksumValue": digest.trim_start_matches("sha256:")}],
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": "NOASSERTION",
        "copyrightText": "NOASSERTION",
    })];
    let mut relationships = vec![json!({
        "spdxElementId": "SPDXRef-DOCUMENT",
        "relationshipType": "DESCRIBES",
        "relatedSpdxElement": "SPDXRef-Image",
    })];
    for p in &pkgs {
        let id = spdx_ref(p);
        let mut v = json!({
            "SPDXID": id,
            "name": p.name,
            "versionInfo": p.version,
            "downloadLocation": p.url.clone().unwrap_or_else(|| "NOASSERTION".into()),
            "filesAnalyzed": false,
            "primaryPackagePurpose": if p.ecosystem == "deb" { "OPERATING-SYSTEM" } else { "LIBRARY" },
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": p.license.clone().unwrap_or_else(|| "NOASSERTION".into()),
            "copyrightText": "NOASSERTION",
            "comment": format!("layer: {}", p.layer),
            "externalRefs": [{
                "referenceCategory": "PACKAGE-MANAGER",
                "referenceType": "purl",
                "referenceLocator": p.purl,
            }],
        });
        if let (Some(sha), Some(m)) = (&p.sha256, v.as_object_mut()) {
            m.insert(
                "checksums".into(),
                json!([{"algorithm": "SHA256", "checksumValue": sha}]),
            );
        }
        packages.push(v);
        relationships.push(json!({
            "spdxElementId": "SPDXRef-Image",
            "relationshipType": "CONTAINS",
            "relatedSpdxElement": id,
        }));
    }
    json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": format!("{name}@{digest}"),
        "documentNamespace": format!("https://composer.invalid/spdx/{}", digest.trim_start_matches("sha256:")),
        "creationInfo": {
            "created": created(inv),
            "creators": [format!("Tool: composer-{}", env!("CARGO_PKG_VERSION"))],
        },
        "packages": packages,
        "relationships": relationships,
    })
}

/// The image's `created`, or the epoch when it has none (SPDX requires a date).
fn created(inv: &Inventory) -> String {
    let c = &inv.view.config.created;
    if c.is_empty() {
        "1970-01-01T00:00:00Z".into()
    } else {
        c.clone()
    }
}

/// The CycloneDX 1.6 JSON document.
#[must_use]
pub fn cyclonedx(inv: &Inventory) -> Value {
    let pkgs = packages(inv);
    let digest = subject(inv);
    let hex = digest.trim_start_matches("sha256:");
    let h = |r: std::ops::Range<usize>| hex.get(r).unwrap_or("0").to_string();
    // A deterministic name-based UUID (version 5 layout) from the manifest digest.
    let serial = format!(
        "urn:uuid:{}-{}-5{}-8{}-{}",
        h(0..8),
        h(8..12),
        h(13..16),
        h(17..20),
        h(20..32)
    );
    let components: Vec<Value> = pkgs
        .iter()
        .map(|p| {
            let mut c = json!({
                "type": "library",
                "bom-ref": p.purl,
                "name": p.name,
                "version": p.version,
                "purl": p.purl,
                "properties": [{"name": "composer:layer", "value": p.layer}],
            });
            let m = c.as_object_mut();
            if let Some(m) = m {
                if let Some(sha) = &p.sha256 {
                    m.insert("hashes".into(), json!([{"alg": "SHA-256", "content": sha}]));
                }
                if let Some(l) = &p.license {
                    m.insert("licenses".into(), json!([{"expression": l}]));
                }
                if let Some(u) = &p.url {
                    m.insert(
                        "externalReferences".into(),
                        json!([{"type": "distribution", "url": u}]),
                    );
                }
            }
            c
        })
        .collect();
    json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": serial,
        "version": 1,
        "metadata": {
            "timestamp": created(inv),
            "tools": {"components": [{"type": "application", "name": "composer", "version": env!("CARGO_PKG_VERSION")}]},
            "component": {
                "type": "container",
                "bom-ref": digest,
                "name": image_name(inv),
                "version": inv.view.tags.first().cloned().unwrap_or_default(),
                "hashes": [{"alg": "SHA-256", "content": hex}],
            },
        },
        "components": components,
        "dependencies": [{
            "ref": digest,
            "dependsOn": pkgs.iter().map(|p| p.purl.clone()).collect::<Vec<_>>(),
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purl_versions_are_percent_encoded() {
        assert_eq!(pct("1:2.3+dfsg-1~deb13u1"), "1%3A2.3%2Bdfsg-1~deb13u1");
        assert_eq!(pct("amd64"), "amd64");
    }

    #[test]
    fn debian_license_names_map_to_spdx() {
        assert_eq!(spdx_id("Expat").as_deref(), Some("MIT"));
        assert_eq!(spdx_id("GPL-2+").as_deref(), Some("GPL-2.0-or-later"));
        assert_eq!(spdx_id("Some-Custom"), None);
    }
}
