//! Real wheels, sdists and simple-index trees for the offline PyPI tests.
//!
//! - [`WheelSpec`] + [`build_wheel`]: a valid wheel (METADATA 2.1, WHEEL, entry points,
//!   `.data` files, a correct RECORD) built with the `zip` crate, or a deliberately broken
//!   one (`bad_record`, `raw_extra` members such as `../evil`).
//! - [`metadata_text`]: the METADATA a PEP 658 `.metadata` file serves.
//! - [`build_sdist`]: a minimal `.tar.gz` source distribution.
//! - [`write_simple_index`]: `files/`, `simple/<project>/index.html` (PEP 503) and
//!   `simple-json/<project>/index.json` (PEP 691) below a directory the
//!   [`crate::debrepo::FixtureServer`] serves.
//!
//! Everything is deterministic: the same specs give byte-identical files (fixed zip and tar
//! timestamps, gzip MTIME 0, sorted JSON keys).
#![allow(clippy::missing_panics_doc)]

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io::{Cursor, Read, Write};
use std::path::Path;

use sha2::{Digest as _, Sha256};

/// What goes into one wheel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WheelSpec {
    /// Project name as METADATA spells it (`My-Pkg`).
    pub name: String,
    /// Version.
    pub version: String,
    /// Compressed tag set: `py3-none-any` or `cp313-cp313-manylinux_2_17_x86_64`.
    pub tag: String,
    /// Files below the root: (path, content, unix mode).
    pub files: Vec<(String, Vec<u8>, u32)>,
    /// `Requires-Dist` lines (PEP 508).
    pub requires_dist: Vec<String>,
    /// `Requires-Python`.
    pub requires_python: Option<String>,
    /// `Provides-Extra` lines.
    pub provides_extra: Vec<String>,
    /// `entry_points.txt` content.
    pub entry_points: Option<String>,
    /// Files below `{name}-{version}.data/`: (`scripts/x`, content); `scripts/` ones get
    /// mode 0755, the rest 0644.
    pub data_files: Vec<(String, Vec<u8>)>,
    /// Write a wrong hash for the first file in RECORD.
    pub bad_record: bool,
    /// Members added verbatim (listed in RECORD with correct hashes), e.g. `../evil`.
    pub raw_extra: Vec<(String, Vec<u8>)>,
    /// Members (archive paths) written without compression; the rest are deflated.
    pub stored: Vec<String>,
}

impl WheelSpec {
    /// A pure-Python wheel (`py3-none-any`) holding `<module>/__init__.py` with
    /// `__version__`, where `<module>` is the escaped name.
    #[must_use]
    pub fn new(name: &str, version: &str) -> Self {
        let module = escape_name(name);
        Self {
            name: name.into(),
            version: version.into(),
            tag: "py3-none-any".into(),
            files: vec![(
                format!("{module}/__init__.py"),
                format!("__version__ = \"{version}\"\n").into_bytes(),
                0o644,
            )],
            requires_dist: Vec::new(),
            requires_python: None,
            provides_extra: Vec::new(),
            entry_points: None,
            data_files: Vec::new(),
            bad_record: false,
            raw_extra: Vec::new(),
            stored: Vec::new(),
        }
    }

    /// Sets the tag set.
    #[must_use]
    pub fn tag(mut self, tag: &str) -> Self {
        self.tag = tag.into();
        self
    }

    /// Adds a file (mode 0644).
    #[must_use]
    pub fn file(self, path: &str, content: impl AsRef<[u8]>) -> Self {
        self.file_mode(path, content, 0o644)
    }

    /// Adds a file with a unix mode.
    #[must_use]
    pub fn file_mode(mut self, path: &str, content: impl AsRef<[u8]>, mode: u32) -> Self {
        self.files
            .push((path.into(), content.as_ref().to_vec(), mode));
        self
    }

    /// Replaces all files (including the default `__init__.py`).
    #[must_use]
    pub fn files(mut self, files: Vec<(String, Vec<u8>, u32)>) -> Self {
        self.files = files;
        self
    }

    /// Adds a `Requires-Dist` line.
    #[must_use]
    pub fn requires(mut self, requirement: &str) -> Self {
        self.requires_dist.push(requirement.into());
        self
    }

    /// Sets `Requires-Python`.
    #[must_use]
    pub fn requires_python(mut self, specifier: &str) -> Self {
        self.requires_python = Some(specifier.into());
        self
    }

    /// Adds a `Provides-Extra` line.
    #[must_use]
    pub fn extra(mut self, extra: &str) -> Self {
        self.provides_extra.push(extra.into());
        self
    }

    /// Sets `entry_points.txt`.
    #[must_use]
    pub fn entry_points(mut self, text: &str) -> Self {
        self.entry_points = Some(text.into());
        self
    }

    /// Writes the member at archive path `path` without compression.
    #[must_use]
    pub fn stored(mut self, path: &str) -> Self {
        self.stored.push(path.into());
        self
    }

    /// Adds a file below `.data/` (`scripts/tool`, `data/share/x`, `headers/x.h`).
    #[must_use]
    pub fn data_file(mut self, path: &str, content: impl AsRef<[u8]>) -> Self {
        self.data_files
            .push((path.into(), content.as_ref().to_vec()));
        self
    }

    /// Makes RECORD lie about the first file's hash.
    #[must_use]
    pub fn bad_record(mut self) -> Self {
        self.bad_record = true;
        self
    }

    /// Adds a member verbatim (any name, even `../evil`).
    #[must_use]
    pub fn raw(mut self, path: &str, content: impl AsRef<[u8]>) -> Self {
        self.raw_extra
            .push((path.into(), content.as_ref().to_vec()));
        self
    }

    /// The escaped name used in file and directory names (`my_pkg`).
    #[must_use]
    pub fn escaped(&self) -> String {
        escape_name(&self.name)
    }

    /// `{escaped}-{version}.dist-info`.
    #[must_use]
    pub fn dist_info(&self) -> String {
        format!("{}-{}.dist-info", self.escaped(), self.version)
    }

    /// The wheel's file name.
    #[must_use]
    pub fn filename(&self) -> String {
        format!("{}-{}-{}.whl", self.escaped(), self.version, self.tag)
    }
}

/// The wheel-filename escaping of a project name: runs of `-_.` become `_`, lowercase.
#[must_use]
pub fn escape_name(name: &str) -> String {
    let mut out = String::new();
    let mut sep = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            sep = true;
        } else {
            if sep && !out.is_empty() {
                out.push('_');
            }
            sep = false;
            out.extend(c.to_lowercase());
        }
    }
    out
}

/// A project name normalized per PEP 503 (`my-pkg`): the simple index's directory names.
#[must_use]
pub fn normalize_name(name: &str) -> String {
    escape_name(name).replace('_', "-")
}

/// urlsafe base64 without padding, as RECORD writes hashes.
#[must_use]
pub fn record_b64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(char::from(A[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

/// The METADATA file of `spec` (also the body of its PEP 658 `.metadata` file).
#[must_use]
pub fn metadata_text(spec: &WheelSpec) -> String {
    let mut m = format!(
        "Metadata-Version: 2.1\nName: {}\nVersion: {}\nSummary: Test package {}\n",
        spec.name, spec.version, spec.name
    );
    if let Some(rp) = &spec.requires_python {
        writeln!(m, "Requires-Python: {rp}").unwrap();
    }
    for extra in &spec.provides_extra {
        writeln!(m, "Provides-Extra: {extra}").unwrap();
    }
    for req in &spec.requires_dist {
        writeln!(m, "Requires-Dist: {req}").unwrap();
    }
    m.push_str("\nA package built by composer's tests.\n");
    m
}

/// The WHEEL file: `Root-Is-Purelib` is true for platform `any`; one `Tag` line per
/// expanded tag.
fn wheel_text(spec: &WheelSpec) -> String {
    let parts: Vec<&str> = spec.tag.splitn(3, '-').collect();
    assert_eq!(parts.len(), 3, "tag {:?} is not py-abi-platform", spec.tag);
    let purelib = parts[2] == "any";
    let mut w = format!(
        "Wheel-Version: 1.0\nGenerator: composer-tests (1.0)\nRoot-Is-Purelib: {purelib}\n"
    );
    for py in parts[0].split('.') {
        for abi in parts[1].split('.') {
            for plat in parts[2].split('.') {
                writeln!(w, "Tag: {py}-{abi}-{plat}").unwrap();
            }
        }
    }
    w
}

/// Builds `spec`: (file name, wheel bytes).
#[must_use]
pub fn build_wheel(spec: &WheelSpec) -> (String, Vec<u8>) {
    let dist_info = spec.dist_info();
    let data = format!("{}-{}.data", spec.escaped(), spec.version);
    // Members in the order the `wheel` tool writes them: files, .data, dist-info, RECORD.
    let mut members: Vec<(String, Vec<u8>, u32)> = spec.files.clone();
    for (path, content) in &spec.data_files {
        let mode = if path.starts_with("scripts/") {
            0o755
        } else {
            0o644
        };
        members.push((format!("{data}/{path}"), content.clone(), mode));
    }
    for (path, content) in &spec.raw_extra {
        members.push((path.clone(), content.clone(), 0o644));
    }
    members.push((
        format!("{dist_info}/METADATA"),
        metadata_text(spec).into_bytes(),
        0o644,
    ));
    members.push((
        format!("{dist_info}/WHEEL"),
        wheel_text(spec).into_bytes(),
        0o644,
    ));
    if let Some(ep) = &spec.entry_points {
        members.push((
            format!("{dist_info}/entry_points.txt"),
            ep.clone().into_bytes(),
            0o644,
        ));
    }
    let mut record = String::new();
    for (i, (path, content, _)) in members.iter().enumerate() {
        let hashed: &[u8] = if spec.bad_record && i == 0 {
            b"not the content"
        } else {
            content
        };
        let path = if path.contains([',', '"']) {
            format!("\"{}\"", path.replace('"', "\"\""))
        } else {
            path.clone()
        };
        writeln!(
            record,
            "{path},sha256={},{}",
            record_b64(&Sha256::digest(hashed)),
            content.len()
        )
        .unwrap();
    }
    writeln!(record, "{dist_info}/RECORD,,").unwrap();
    members.push((format!("{dist_info}/RECORD"), record.into_bytes(), 0o644));

    let mut z = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (path, content, mode) in &members {
        let method = if spec.stored.contains(path) {
            zip::CompressionMethod::Stored
        } else {
            zip::CompressionMethod::Deflated
        };
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(method)
            .last_modified_time(zip::DateTime::default())
            .unix_permissions(*mode);
        z.start_file(path.as_str(), opts).unwrap();
        z.write_all(content).unwrap();
    }
    (spec.filename(), z.finish().unwrap().into_inner())
}

/// A minimal sdist `{escaped}-{version}.tar.gz` (PKG-INFO and pyproject.toml).
#[must_use]
pub fn build_sdist(name: &str, version: &str) -> (String, Vec<u8>) {
    let base = format!("{}-{version}", escape_name(name));
    let pkg_info = format!("Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n");
    let pyproject = format!(
        "[build-system]\nrequires = [\"setuptools\"]\nbuild-backend = \"setuptools.build_meta\"\n\n[project]\nname = \"{name}\"\nversion = \"{version}\"\n"
    );
    let mut tar = tar::Builder::new(Vec::new());
    for (path, content) in [("PKG-INFO", pkg_info), ("pyproject.toml", pyproject)] {
        let mut h = tar::Header::new_ustar();
        h.set_path(format!("{base}/{path}")).unwrap();
        h.set_size(content.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        tar.append(&h, content.as_bytes()).unwrap();
    }
    let tar = tar.into_inner().unwrap();
    let mut gz = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar).unwrap();
    (format!("{base}.tar.gz"), gz.finish().unwrap())
}

/// One file of a project page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexFileSpec {
    /// File name (`.whl` or `.tar.gz`).
    pub filename: String,
    /// Its bytes.
    pub bytes: Vec<u8>,
    /// `data-requires-python` / `requires-python`.
    pub requires_python: Option<String>,
    /// Yanked, with a reason (`Some("")`: yanked without one).
    pub yanked: Option<String>,
}

impl IndexFileSpec {
    /// A file, not yanked, without Requires-Python.
    #[must_use]
    pub fn new(filename: &str, bytes: Vec<u8>) -> Self {
        Self {
            filename: filename.into(),
            bytes,
            requires_python: None,
            yanked: None,
        }
    }

    /// The built wheel of `spec`, with its Requires-Python.
    #[must_use]
    pub fn wheel(spec: &WheelSpec) -> Self {
        let (filename, bytes) = build_wheel(spec);
        Self {
            requires_python: spec.requires_python.clone(),
            ..Self::new(&filename, bytes)
        }
    }

    /// Marks it yanked.
    #[must_use]
    pub fn yanked(mut self, reason: &str) -> Self {
        self.yanked = Some(reason.into());
        self
    }
}

/// The METADATA member of a wheel's bytes, if it is a readable zip with one.
#[must_use]
pub fn wheel_metadata(wheel: &[u8]) -> Option<Vec<u8>> {
    let mut z = zip::ZipArchive::new(Cursor::new(wheel)).ok()?;
    let name = z
        .file_names()
        .filter_map(Result::ok)
        .find(|n| {
            n.split_once('/')
                .is_some_and(|(top, rest)| top.ends_with(".dist-info") && rest == "METADATA")
        })?
        .into_owned();
    let mut out = Vec::new();
    z.by_name(&name).ok()?.read_to_end(&mut out).ok()?;
    Some(out)
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The version in a wheel or sdist file name.
fn file_version(filename: &str) -> Option<String> {
    if let Some(stem) = filename.strip_suffix(".whl") {
        return stem.split('-').nth(1).map(str::to_string);
    }
    let stem = filename
        .strip_suffix(".tar.gz")
        .or_else(|| filename.strip_suffix(".zip"))?;
    stem.rsplit_once('-').map(|(_, v)| v.to_string())
}

/// Writes a simple index below `dir`:
/// - `files/<filename>` and, for each wheel, `files/<filename>.metadata` (PEP 658);
/// - `simple/index.html` and `simple/<project>/index.html` (PEP 503, with
///   `data-requires-python`, `data-yanked`, `data-core-metadata` and
///   `data-dist-info-metadata`);
/// - `simple-json/index.json` and `simple-json/<project>/index.json` (PEP 691, api 1.1:
///   `size`, `versions`).
///
/// `<project>` is the PEP 503-normalized name; file URLs are relative
/// (`../../files/<filename>`), so a page is read at `…/<project>/index.html` or
/// `…/<project>/index.json`.
pub fn write_simple_index(dir: &Path, projects: &[(&str, Vec<IndexFileSpec>)]) {
    let files_dir = dir.join("files");
    std::fs::create_dir_all(&files_dir).unwrap();
    let mut root_html = String::from(
        "<!DOCTYPE html>\n<html>\n  <head><meta name=\"pypi:repository-version\" content=\"1.1\"><title>Simple index</title></head>\n  <body>\n",
    );
    let mut root_json = Vec::new();
    for (project, files) in projects {
        let norm = normalize_name(project);
        writeln!(
            root_html,
            "    <a href=\"{norm}/index.html\">{}</a><br/>",
            html_escape(project)
        )
        .unwrap();
        root_json.push(serde_json::json!({ "name": project }));

        let mut html = format!(
            "<!DOCTYPE html>\n<html>\n  <head><meta name=\"pypi:repository-version\" content=\"1.1\"><title>Links for {0}</title></head>\n  <body>\n    <h1>Links for {0}</h1>\n",
            html_escape(project)
        );
        let mut json_files = Vec::new();
        let mut versions = BTreeSet::new();
        for f in files {
            std::fs::write(files_dir.join(&f.filename), &f.bytes).unwrap();
            let sha = crate::sha256_hex(&f.bytes);
            let metadata = if f.filename.ends_with(".whl") {
                wheel_metadata(&f.bytes)
            } else {
                None
            };
            let metadata_sha = metadata.as_ref().map(|m| {
                std::fs::write(files_dir.join(format!("{}.metadata", f.filename)), m).unwrap();
                crate::sha256_hex(m)
            });
            if let Some(v) = file_version(&f.filename) {
                versions.insert(v);
            }
            let url = format!("../../files/{}", f.filename);
            let mut attrs = String::new();
            if let Some(rp) = &f.requires_python {
                write!(attrs, " data-requires-python=\"{}\"", html_escape(rp)).unwrap();
            }
            if let Some(reason) = &f.yanked {
                write!(attrs, " data-yanked=\"{}\"", html_escape(reason)).unwrap();
            }
            if let Some(m) = &metadata_sha {
                write!(
                    attrs,
                    " data-dist-info-metadata=\"sha256={m}\" data-core-metadata=\"sha256={m}\""
                )
                .unwrap();
            }
            writeln!(
                html,
                "    <a href=\"{}#sha256={sha}\"{attrs}>{}</a><br/>",
                html_escape(&url),
                html_escape(&f.filename)
            )
            .unwrap();
            let core = metadata_sha.as_ref().map_or(
                serde_json::json!(false),
                |m| serde_json::json!({ "sha256": m }),
            );
            let yanked = match f.yanked.as_deref() {
                None => serde_json::json!(false),
                Some("") => serde_json::json!(true),
                Some(reason) => serde_json::json!(reason),
            };
            let mut entry = serde_json::json!({
                "filename": f.filename,
                "url": url,
                "hashes": { "sha256": sha },
                "yanked": yanked,
                "core-metadata": core,
                "dist-info-metadata": core,
                "size": f.bytes.len(),
            });
            if let Some(rp) = &f.requires_python {
                entry["requires-python"] = serde_json::json!(rp);
            }
            json_files.push(entry);
        }
        html.push_str("  </body>\n</html>\n");
        crate::write(&dir.join("simple").join(&norm).join("index.html"), html);
        let page = serde_json::json!({
            "meta": { "api-version": "1.1" },
            "name": norm,
            "files": json_files,
            "versions": versions.into_iter().collect::<Vec<_>>(),
        });
        crate::write(
            &dir.join("simple-json").join(&norm).join("index.json"),
            serde_json::to_vec_pretty(&page).unwrap(),
        );
    }
    root_html.push_str("  </body>\n</html>\n");
    crate::write(&dir.join("simple/index.html"), root_html);
    crate::write(
        &dir.join("simple-json/index.json"),
        serde_json::to_vec_pretty(&serde_json::json!({
            "meta": { "api-version": "1.1" },
            "projects": root_json,
        }))
        .unwrap(),
    );
}
