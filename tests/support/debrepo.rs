//! Real Debian repositories for offline tests.
//!
//! - [`build_deb`]: `.deb` archives as `dpkg-deb --build` makes them (ar with `debian-binary`,
//!   `control.tar.xz`, `data.tar.<ext>`; GNU tar, `./`-prefixed names, root/root, a fixed
//!   mtime), plus raw tar entries for malicious cases ([`DebFile::Raw`]).
//! - [`build_repo`]: the `pool/` + `dists/` layout with `Packages` (plain, `.xz`, `.gz`),
//!   `Release`, `InRelease` and `Release.gpg`, signed by a [`TestKey`].
//! - [`TestKey`]: a deterministic OpenPGP key made with rPGP (Ed25519, a certification-only
//!   primary and a signing subkey, like Debian's archive keys), which `gpgv` accepts.
//! - [`FixtureServer`]: a loopback HTTP/1.1 static file server that counts requests and
//!   injects failures.
//!
//! Everything is deterministic: the same specs and key seed give byte-identical files.
#![allow(clippy::missing_panics_doc)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use pgp::composed::{
    ArmorOptions, CleartextSignedMessage, DetachedSignature, KeyType, SignedKeyDetails,
    SignedPublicKey, SignedPublicSubKey,
};
use pgp::crypto::hash::HashAlgorithm;
use pgp::packet::{
    KeyFlags, PubKeyInner, PublicKey, PublicSubkey, SecretKey, SecretSubkey, Signature,
    SignatureConfig, SignatureType, Subpacket, SubpacketData, UserId,
};
use pgp::ser::Serialize as _;
use pgp::types::{KeyDetails as _, KeyVersion, Password, SignedUser, Tag, Timestamp};
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng as _;

use crate::sha256_hex;

/// The mtime of every tar entry and ar member unless a spec says otherwise (2023-11-14).
pub const DEFAULT_MTIME: u64 = 1_700_000_000;
/// Default Release `Date` and signature time: 2024-01-01T00:00:00Z.
pub const DEFAULT_DATE: i64 = 1_704_067_200;

// ---------------------------------------------------------------------------------------------
// .deb

/// How `data.tar` is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DataCompression {
    /// `data.tar.xz` (what Debian uses).
    #[default]
    Xz,
    /// `data.tar.gz`.
    Gz,
    /// `data.tar.zst` (Ubuntu).
    Zst,
    /// `data.tar`.
    None,
}

impl DataCompression {
    /// The ar member name.
    #[must_use]
    pub fn member_name(self) -> &'static str {
        match self {
            Self::Xz => "data.tar.xz",
            Self::Gz => "data.tar.gz",
            Self::Zst => "data.tar.zst",
            Self::None => "data.tar",
        }
    }

    fn compress(self, data: &[u8]) -> Vec<u8> {
        match self {
            Self::Xz => xz(data),
            Self::Gz => gz(data),
            Self::Zst => zstd::encode_all(data, 3).unwrap(),
            Self::None => data.to_vec(),
        }
    }
}

/// One entry of `data.tar`. Paths may be given as `/usr/bin/x`, `usr/bin/x` or `./usr/bin/x`;
/// they are written `./usr/bin/x` (directories with a trailing `/`). Missing parent
/// directories are added (mode 0755) before their first child. Entries keep the given order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DebFile {
    /// A regular file.
    File {
        /// Path in the image.
        path: String,
        /// Content.
        content: Vec<u8>,
        /// Permission bits (e.g. 0o644).
        mode: u32,
    },
    /// A directory.
    Dir {
        /// Path in the image.
        path: String,
        /// Permission bits.
        mode: u32,
    },
    /// A symbolic link; `target` is written as given.
    Symlink {
        /// Path in the image.
        path: String,
        /// Link target, verbatim.
        target: String,
    },
    /// A hard link to an earlier entry (`target` is normalized like `path`).
    HardLink {
        /// Path in the image.
        path: String,
        /// The earlier entry's path.
        target: String,
    },
    /// A raw tar entry, written exactly: no normalization, no parent directories. For
    /// malicious cases: `../escape`, `/abs`, a symlink pointing outside followed by a file
    /// written through it. Names and links must fit the 100-byte header fields.
    Raw {
        /// The header's name field, verbatim.
        header_path: String,
        /// Entry type.
        kind: tar::EntryType,
        /// Data (its length is the header's size).
        content: Vec<u8>,
        /// The header's link name field, verbatim (empty for none).
        link: String,
    },
}

impl DebFile {
    /// A regular file, mode 0644.
    #[must_use]
    pub fn file(path: &str, content: impl Into<Vec<u8>>) -> Self {
        Self::File {
            path: path.into(),
            content: content.into(),
            mode: 0o644,
        }
    }

    /// An executable file, mode 0755.
    #[must_use]
    pub fn exec(path: &str, content: impl Into<Vec<u8>>) -> Self {
        Self::File {
            path: path.into(),
            content: content.into(),
            mode: 0o755,
        }
    }

    /// A directory, mode 0755.
    #[must_use]
    pub fn dir(path: &str) -> Self {
        Self::Dir {
            path: path.into(),
            mode: 0o755,
        }
    }

    /// A symlink.
    #[must_use]
    pub fn symlink(path: &str, target: &str) -> Self {
        Self::Symlink {
            path: path.into(),
            target: target.into(),
        }
    }

    /// A hard link to an earlier entry.
    #[must_use]
    pub fn hardlink(path: &str, target: &str) -> Self {
        Self::HardLink {
            path: path.into(),
            target: target.into(),
        }
    }

    /// A raw entry (see [`DebFile::Raw`]).
    #[must_use]
    pub fn raw(header_path: &str, kind: tar::EntryType, content: &[u8], link: &str) -> Self {
        Self::Raw {
            header_path: header_path.into(),
            kind,
            content: content.to_vec(),
            link: link.into(),
        }
    }
}

/// A binary package. Relation fields are written only when not empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebSpec {
    /// `Package`.
    pub name: String,
    /// `Version` (an epoch is kept here and dropped from the file name, like Debian).
    pub version: String,
    /// `Architecture` (default `amd64`; `all` is listed under every `binary-<arch>`).
    pub arch: String,
    /// `Source` (empty: same as `name`). Also names the pool directory.
    pub source: String,
    /// `Depends`.
    pub depends: String,
    /// `Pre-Depends`.
    pub pre_depends: String,
    /// `Provides`.
    pub provides: String,
    /// `Conflicts`.
    pub conflicts: String,
    /// `Breaks`.
    pub breaks: String,
    /// `Replaces`.
    pub replaces: String,
    /// `Essential: yes`.
    pub essential: bool,
    /// `Priority` (default `optional`).
    pub priority: String,
    /// `Multi-Arch` (empty: absent).
    pub multi_arch: String,
    /// `Section` (default `misc`).
    pub section: String,
    /// Further control fields, appended in order (also to the Packages stanza).
    pub extra_control: Vec<(String, String)>,
    /// Maintainer scripts and other control members (`postinst`, `conffiles`…): name,
    /// content; scripts (no `.` in the name and not `conffiles`/`triggers`) get mode 0755.
    pub control_members: Vec<(String, Vec<u8>)>,
    /// `data.tar` entries.
    pub files: Vec<DebFile>,
    /// `data.tar` compression.
    pub data_compression: DataCompression,
    /// mtime of every entry and member.
    pub mtime: u64,
}

impl DebSpec {
    /// An `amd64` package with no files and no relations.
    #[must_use]
    pub fn new(name: &str, version: &str) -> Self {
        Self {
            name: name.into(),
            version: version.into(),
            arch: "amd64".into(),
            source: String::new(),
            depends: String::new(),
            pre_depends: String::new(),
            provides: String::new(),
            conflicts: String::new(),
            breaks: String::new(),
            replaces: String::new(),
            essential: false,
            priority: "optional".into(),
            multi_arch: String::new(),
            section: "misc".into(),
            extra_control: Vec::new(),
            control_members: Vec::new(),
            files: Vec::new(),
            data_compression: DataCompression::Xz,
            mtime: DEFAULT_MTIME,
        }
    }

    /// Sets `Architecture`.
    #[must_use]
    pub fn arch(mut self, arch: &str) -> Self {
        self.arch = arch.into();
        self
    }

    /// Sets `Source`.
    #[must_use]
    pub fn source(mut self, source: &str) -> Self {
        self.source = source.into();
        self
    }

    /// Sets `Depends`.
    #[must_use]
    pub fn depends(mut self, v: &str) -> Self {
        self.depends = v.into();
        self
    }

    /// Sets `Pre-Depends`.
    #[must_use]
    pub fn pre_depends(mut self, v: &str) -> Self {
        self.pre_depends = v.into();
        self
    }

    /// Sets `Provides`.
    #[must_use]
    pub fn provides(mut self, v: &str) -> Self {
        self.provides = v.into();
        self
    }

    /// Sets `Conflicts`.
    #[must_use]
    pub fn conflicts(mut self, v: &str) -> Self {
        self.conflicts = v.into();
        self
    }

    /// Sets `Breaks`.
    #[must_use]
    pub fn breaks(mut self, v: &str) -> Self {
        self.breaks = v.into();
        self
    }

    /// Sets `Replaces`.
    #[must_use]
    pub fn replaces(mut self, v: &str) -> Self {
        self.replaces = v.into();
        self
    }

    /// Sets `Essential: yes`.
    #[must_use]
    pub fn essential(mut self) -> Self {
        self.essential = true;
        self
    }

    /// Sets `Priority`.
    #[must_use]
    pub fn priority(mut self, v: &str) -> Self {
        self.priority = v.into();
        self
    }

    /// Sets `Multi-Arch`.
    #[must_use]
    pub fn multi_arch(mut self, v: &str) -> Self {
        self.multi_arch = v.into();
        self
    }

    /// Appends a control field.
    #[must_use]
    pub fn field(mut self, name: &str, value: &str) -> Self {
        self.extra_control.push((name.into(), value.into()));
        self
    }

    /// Adds a control member (a maintainer script, `conffiles`…).
    #[must_use]
    pub fn control_member(mut self, name: &str, content: impl Into<Vec<u8>>) -> Self {
        self.control_members.push((name.into(), content.into()));
        self
    }

    /// Adds any `data.tar` entry.
    #[must_use]
    pub fn entry(mut self, f: DebFile) -> Self {
        self.files.push(f);
        self
    }

    /// Adds a regular file (0644).
    #[must_use]
    pub fn file(self, path: &str, content: impl Into<Vec<u8>>) -> Self {
        self.entry(DebFile::file(path, content))
    }

    /// Adds an executable (0755).
    #[must_use]
    pub fn exec(self, path: &str, content: impl Into<Vec<u8>>) -> Self {
        self.entry(DebFile::exec(path, content))
    }

    /// Adds a directory (0755).
    #[must_use]
    pub fn dir(self, path: &str) -> Self {
        self.entry(DebFile::dir(path))
    }

    /// Adds a symlink.
    #[must_use]
    pub fn symlink(self, path: &str, target: &str) -> Self {
        self.entry(DebFile::symlink(path, target))
    }

    /// Adds a hard link to an earlier entry.
    #[must_use]
    pub fn hardlink(self, path: &str, target: &str) -> Self {
        self.entry(DebFile::hardlink(path, target))
    }

    /// Sets the `data.tar` compression.
    #[must_use]
    pub fn compression(mut self, c: DataCompression) -> Self {
        self.data_compression = c;
        self
    }

    /// The source package name (`Source`, else the package name).
    #[must_use]
    pub fn source_name(&self) -> &str {
        if self.source.is_empty() {
            &self.name
        } else {
            // `Source: foo (1.2-3)` names the source version too.
            self.source.split(' ').next().unwrap_or(&self.source)
        }
    }

    /// `<name>_<version without epoch>_<arch>.deb`.
    #[must_use]
    pub fn file_name(&self) -> String {
        let version = self
            .version
            .split_once(':')
            .map_or(self.version.as_str(), |(_, v)| v);
        format!("{}_{version}_{}.deb", self.name, self.arch)
    }

    /// `pool/<component>/<prefix>/<source>/<file name>`, where the prefix is the source's
    /// first letter, or `lib` and one more letter for `lib*` sources (as Debian does).
    #[must_use]
    pub fn pool_path(&self, component: &str) -> String {
        let source = self.source_name();
        let prefix = if source.starts_with("lib") && source.len() > 3 {
            &source[..4]
        } else {
            &source[..1]
        };
        format!("pool/{component}/{prefix}/{source}/{}", self.file_name())
    }

    /// `Installed-Size`: KiB of file content, rounded up.
    fn installed_size(&self) -> u64 {
        let bytes: u64 = self
            .files
            .iter()
            .map(|f| match f {
                DebFile::File { content, .. } => content.len() as u64,
                _ => 0,
            })
            .sum();
        bytes.div_ceil(1024)
    }

    /// Control fields in dpkg's usual order, without `Description`.
    fn fields(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        let mut put = |k: &str, v: &str| {
            if !v.is_empty() {
                out.push((k.to_string(), v.to_string()));
            }
        };
        put("Package", &self.name);
        put("Source", &self.source);
        put("Version", &self.version);
        put("Architecture", &self.arch);
        put("Maintainer", "Composer Tests <tests@example.invalid>");
        put("Installed-Size", &self.installed_size().to_string());
        put("Pre-Depends", &self.pre_depends);
        put("Depends", &self.depends);
        put("Breaks", &self.breaks);
        put("Conflicts", &self.conflicts);
        put("Replaces", &self.replaces);
        put("Provides", &self.provides);
        put("Essential", if self.essential { "yes" } else { "" });
        put("Section", &self.section);
        put("Priority", &self.priority);
        put("Multi-Arch", &self.multi_arch);
        for (k, v) in &self.extra_control {
            put(k, v);
        }
        out
    }

    fn summary(&self) -> String {
        format!("test package {}", self.name)
    }

    /// The `control` file, as in the `.deb`.
    #[must_use]
    pub fn control(&self) -> String {
        let mut s = String::new();
        for (k, v) in self.fields() {
            s.push_str(&format!("{k}: {v}\n"));
        }
        s.push_str(&format!(
            "Description: {}\n Made by composer-tests' debrepo generator.\n",
            self.summary()
        ));
        s
    }

    /// The Packages stanza for this `.deb` (no trailing blank line).
    #[must_use]
    pub fn packages_stanza(&self, filename: &str, deb: &[u8]) -> String {
        let mut s = String::new();
        for (k, v) in self.fields() {
            s.push_str(&format!("{k}: {v}\n"));
        }
        s.push_str(&format!("Description: {}\n", self.summary()));
        s.push_str(&format!(
            "Filename: {filename}\nSize: {}\nMD5sum: {}\nSHA256: {}\n",
            deb.len(),
            md5_hex(deb),
            sha256_hex(deb)
        ));
        s
    }
}

/// Builds a `.deb`: ar archive of `debian-binary`, `control.tar.xz`, `data.tar.<ext>`.
#[must_use]
pub fn build_deb(spec: &DebSpec) -> Vec<u8> {
    let mtime = spec.mtime;
    // data.tar
    let mut data = TarWriter::new(mtime);
    let explicit_dirs: BTreeMap<String, u32> = spec
        .files
        .iter()
        .filter_map(|f| match f {
            DebFile::Dir { path, mode } => Some((norm(path, true), *mode)),
            _ => None,
        })
        .collect();
    let mut written_dirs: BTreeSet<String> = BTreeSet::new();
    let mut md5sums = String::new();
    let ensure_parents = |tar: &mut TarWriter, written: &mut BTreeSet<String>, path: &str| {
        // "./usr/bin/x" → "./", "./usr/", "./usr/bin/"
        let mut parents = vec!["./".to_string()];
        let inner = path.trim_start_matches("./").trim_end_matches('/');
        let parts: Vec<&str> = inner.split('/').collect();
        for i in 1..parts.len() {
            parents.push(format!("./{}/", parts[..i].join("/")));
        }
        for p in parents {
            if written.insert(p.clone()) {
                let mode = explicit_dirs.get(&p).copied().unwrap_or(0o755);
                tar.entry(p.as_bytes(), tar::EntryType::Directory, mode, b"", b"");
            }
        }
    };
    ensure_parents(&mut data, &mut written_dirs, "./");
    for f in &spec.files {
        match f {
            DebFile::File {
                path,
                content,
                mode,
            } => {
                let p = norm(path, false);
                ensure_parents(&mut data, &mut written_dirs, &p);
                data.entry(p.as_bytes(), tar::EntryType::Regular, *mode, b"", content);
                md5sums.push_str(&format!(
                    "{}  {}\n",
                    md5_hex(content),
                    p.trim_start_matches("./")
                ));
            }
            DebFile::Dir { path, .. } => {
                let p = norm(path, true);
                ensure_parents(&mut data, &mut written_dirs, &p);
                if written_dirs.insert(p.clone()) {
                    let mode = explicit_dirs[&p];
                    data.entry(p.as_bytes(), tar::EntryType::Directory, mode, b"", b"");
                }
            }
            DebFile::Symlink { path, target } => {
                let p = norm(path, false);
                ensure_parents(&mut data, &mut written_dirs, &p);
                data.entry(
                    p.as_bytes(),
                    tar::EntryType::Symlink,
                    0o777,
                    target.as_bytes(),
                    b"",
                );
            }
            DebFile::HardLink { path, target } => {
                let p = norm(path, false);
                ensure_parents(&mut data, &mut written_dirs, &p);
                data.entry(
                    p.as_bytes(),
                    tar::EntryType::Link,
                    0o644,
                    norm(target, false).as_bytes(),
                    b"",
                );
            }
            DebFile::Raw {
                header_path,
                kind,
                content,
                link,
            } => {
                let mode = match kind {
                    tar::EntryType::Directory => 0o755,
                    tar::EntryType::Symlink => 0o777,
                    _ => 0o644,
                };
                data.raw(
                    header_path.as_bytes(),
                    *kind,
                    mode,
                    link.as_bytes(),
                    content,
                );
            }
        }
    }
    let data_tar = data.finish();

    // control.tar
    let mut control = TarWriter::new(mtime);
    control.entry(b"./", tar::EntryType::Directory, 0o755, b"", b"");
    control.entry(
        b"./control",
        tar::EntryType::Regular,
        0o644,
        b"",
        spec.control().as_bytes(),
    );
    if !md5sums.is_empty() {
        control.entry(
            b"./md5sums",
            tar::EntryType::Regular,
            0o644,
            b"",
            md5sums.as_bytes(),
        );
    }
    for (name, content) in &spec.control_members {
        let script = !name.contains('.') && name != "conffiles" && name != "triggers";
        control.entry(
            format!("./{name}").as_bytes(),
            tar::EntryType::Regular,
            if script { 0o755 } else { 0o644 },
            b"",
            content,
        );
    }
    let control_tar = control.finish();

    let mut ar = b"!<arch>\n".to_vec();
    ar_member(&mut ar, "debian-binary", mtime, b"2.0\n");
    ar_member(&mut ar, "control.tar.xz", mtime, &xz(&control_tar));
    ar_member(
        &mut ar,
        spec.data_compression.member_name(),
        mtime,
        &spec.data_compression.compress(&data_tar),
    );
    ar
}

/// `./`-prefixed archive name; directories end with `/`.
fn norm(path: &str, dir: bool) -> String {
    let inner = path
        .trim_start_matches("./")
        .trim_start_matches('/')
        .trim_end_matches('/');
    if inner.is_empty() {
        return "./".into();
    }
    if dir {
        format!("./{inner}/")
    } else {
        format!("./{inner}")
    }
}

fn ar_member(out: &mut Vec<u8>, name: &str, mtime: u64, data: &[u8]) {
    assert!(name.len() <= 16);
    let header = format!(
        "{name:<16}{mtime:<12}{:<6}{:<6}{:<8o}{:<10}`\n",
        0,
        0,
        0o100_644,
        data.len()
    );
    assert_eq!(header.len(), 60);
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    if data.len() % 2 == 1 {
        out.push(b'\n');
    }
}

/// A GNU-format tar writer that keeps names byte-exact (the `tar` crate would drop `./`).
struct TarWriter {
    out: Vec<u8>,
    mtime: u64,
}

impl TarWriter {
    fn new(mtime: u64) -> Self {
        Self {
            out: Vec::new(),
            mtime,
        }
    }

    fn header(&self, kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(self.mtime);
        h.set_size(size);
        h.set_username("root").unwrap();
        h.set_groupname("root").unwrap();
        h
    }

    fn push(&mut self, mut h: tar::Header, data: &[u8]) {
        h.set_cksum();
        self.out.extend_from_slice(h.as_bytes());
        self.out.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        self.out.extend(std::iter::repeat_n(0u8, pad));
    }

    /// A GNU long name (`L`) or long link (`K`) extension entry.
    fn long(&mut self, kind: u8, value: &[u8]) {
        let mut data = value.to_vec();
        data.push(0);
        let mut h = self.header(tar::EntryType::new(kind), 0o644, data.len() as u64);
        let name = b"././@LongLink";
        h.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name);
        self.push(h, &data);
    }

    fn entry(&mut self, name: &[u8], kind: tar::EntryType, mode: u32, link: &[u8], data: &[u8]) {
        if link.len() > 100 {
            self.long(b'K', link);
        }
        if name.len() > 100 {
            self.long(b'L', name);
        }
        self.raw(
            &name[..name.len().min(100)],
            kind,
            mode,
            &link[..link.len().min(100)],
            data,
        );
    }

    fn raw(&mut self, name: &[u8], kind: tar::EntryType, mode: u32, link: &[u8], data: &[u8]) {
        assert!(
            name.len() <= 100 && link.len() <= 100,
            "raw tar names fit 100 bytes"
        );
        let mut h = self.header(kind, mode, data.len() as u64);
        let gnu = h.as_gnu_mut().unwrap();
        gnu.name[..name.len()].copy_from_slice(name);
        gnu.linkname[..link.len()].copy_from_slice(link);
        self.push(h, data);
    }

    fn finish(mut self) -> Vec<u8> {
        self.out.extend(std::iter::repeat_n(0u8, 1024));
        self.out
    }
}

fn xz(data: &[u8]) -> Vec<u8> {
    let mut e = liblzma::write::XzEncoder::new(Vec::new(), 6);
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn gz(data: &[u8]) -> Vec<u8> {
    // No file name and mtime 0 in the gzip header: deterministic.
    let mut e = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// MD5 (RFC 1321), for `md5sums` and `MD5sum`/`MD5Sum` fields; hex.
#[must_use]
pub fn md5_hex(data: &[u8]) -> String {
    const S: [u32; 64] = [
        7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9, 14, 20, 5,
        9, 14, 20, 5, 9, 14, 20, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 6, 10,
        15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
    ];
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let k: Vec<u32> = (0..64)
        .map(|i| (f64::from(i + 1).sin().abs() * 4_294_967_296.0) as u32)
        .collect();
    let mut msg = data.to_vec();
    let bit_len = (data.len() as u64).wrapping_mul(8);
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bit_len.to_le_bytes());
    let mut st: [u32; 4] = [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476];
    for chunk in msg.chunks(64) {
        let m: Vec<u32> = chunk
            .chunks(4)
            .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
            .collect();
        let [mut a, mut b, mut c, mut d] = st;
        for i in 0..64 {
            let (f, g) = match i / 16 {
                0 => ((b & c) | (!b & d), i),
                1 => ((d & b) | (!d & c), (5 * i + 1) % 16),
                2 => (b ^ c ^ d, (3 * i + 5) % 16),
                _ => (c ^ (b | !d), (7 * i) % 16),
            };
            let f = f.wrapping_add(a).wrapping_add(k[i]).wrapping_add(m[g]);
            a = d;
            d = c;
            c = b;
            b = b.wrapping_add(f.rotate_left(S[i]));
        }
        st[0] = st[0].wrapping_add(a);
        st[1] = st[1].wrapping_add(b);
        st[2] = st[2].wrapping_add(c);
        st[3] = st[3].wrapping_add(d);
    }
    st.iter()
        .flat_map(|w| w.to_le_bytes())
        .fold(String::new(), |mut s, b| {
            s.push_str(&format!("{b:02x}"));
            s
        })
}

// ---------------------------------------------------------------------------------------------
// Repository

/// One suite (`dists/<name>/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuiteSpec {
    /// Directory under `dists/` and the `Suite` field.
    pub name: String,
    /// `Codename` (default: the name).
    pub codename: String,
    /// Components in order, each with its packages.
    pub components: Vec<(String, Vec<DebSpec>)>,
    /// `Valid-Until` (Unix seconds), if any.
    pub valid_until: Option<i64>,
    /// `Date` (Unix seconds); also the InRelease signature's creation time.
    pub date: i64,
    /// `Architectures` (empty: the packages' architectures other than `all`, else `amd64`).
    pub architectures: Vec<String>,
    /// Also write `by-hash/SHA256/<hash>` copies of every index and `Acquire-By-Hash: yes`.
    pub acquire_by_hash: bool,
    /// `Origin` and `Label`.
    pub origin: String,
}

impl SuiteSpec {
    /// A suite dated [`DEFAULT_DATE`] with no components.
    #[must_use]
    pub fn new(name: &str) -> Self {
        Self {
            name: name.into(),
            codename: name.into(),
            components: Vec::new(),
            valid_until: None,
            date: DEFAULT_DATE,
            architectures: Vec::new(),
            acquire_by_hash: false,
            origin: "Composer Test".into(),
        }
    }

    /// Sets `Codename`.
    #[must_use]
    pub fn codename(mut self, c: &str) -> Self {
        self.codename = c.into();
        self
    }

    /// Adds a component.
    #[must_use]
    pub fn component(mut self, name: &str, debs: Vec<DebSpec>) -> Self {
        self.components.push((name.into(), debs));
        self
    }

    /// Sets `Date`.
    #[must_use]
    pub fn date(mut self, t: i64) -> Self {
        self.date = t;
        self
    }

    /// Sets `Valid-Until`.
    #[must_use]
    pub fn valid_until(mut self, t: i64) -> Self {
        self.valid_until = Some(t);
        self
    }

    /// Sets `Architectures`.
    #[must_use]
    pub fn architectures(mut self, archs: &[&str]) -> Self {
        self.architectures = archs.iter().map(|a| (*a).to_string()).collect();
        self
    }

    /// Writes by-hash copies.
    #[must_use]
    pub fn acquire_by_hash(mut self) -> Self {
        self.acquire_by_hash = true;
        self
    }

    fn archs(&self) -> Vec<String> {
        if !self.architectures.is_empty() {
            return self.architectures.clone();
        }
        let set: BTreeSet<String> = self
            .components
            .iter()
            .flat_map(|(_, debs)| debs.iter().map(|d| d.arch.clone()))
            .filter(|a| a != "all")
            .collect();
        if set.is_empty() {
            vec!["amd64".into()]
        } else {
            set.into_iter().collect()
        }
    }
}

/// A repository: its suites.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RepoSpec {
    /// Suites.
    pub suites: Vec<SuiteSpec>,
}

/// What [`build_repo`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repo {
    /// The repository root (what a `deb` line's URL points at).
    pub root: PathBuf,
    /// Every `.deb`: file stem (`name_version_arch`, no epoch) → (path, sha256 hex).
    pub debs: BTreeMap<String, (PathBuf, String)>,
    /// Every file under `dists/`: path relative to the root → sha256 hex.
    pub dists: BTreeMap<String, String>,
}

impl Repo {
    /// The one `.deb` of package `name` (panics when there is none or several).
    #[must_use]
    pub fn deb(&self, name: &str) -> &(PathBuf, String) {
        let prefix = format!("{name}_");
        let found: Vec<_> = self
            .debs
            .iter()
            .filter(|(k, _)| k.starts_with(&prefix) && k[prefix.len()..].matches('_').count() == 1)
            .collect();
        assert_eq!(found.len(), 1, "debs of {name}: {found:?}");
        found[0].1
    }

    /// Absolute path of a file given relative to the root.
    #[must_use]
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }
}

/// RFC 2822 date as in Release files: `Mon, 01 Jan 2024 00:00:00 UTC`.
#[must_use]
pub fn release_date(secs: i64) -> String {
    let iso = composer::time::format_rfc3339(secs); // YYYY-MM-DDTHH:MM:SSZ
    let month: usize = iso[5..7].parse().unwrap();
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let weekdays = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let wd = weekdays[secs.div_euclid(86_400).rem_euclid(7) as usize];
    format!(
        "{wd}, {} {} {} {} UTC",
        &iso[8..10],
        months[month - 1],
        &iso[0..4],
        &iso[11..19]
    )
}

/// Writes the repository under `dir` and signs each suite's Release with `signer`.
#[must_use]
pub fn build_repo(dir: &Path, spec: &RepoSpec, signer: &TestKey) -> Repo {
    let mut repo = Repo {
        root: dir.to_path_buf(),
        debs: BTreeMap::new(),
        dists: BTreeMap::new(),
    };
    let write = |rel: &str, bytes: &[u8]| {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, bytes).unwrap();
    };
    for suite in &spec.suites {
        let archs = suite.archs();
        let dists = format!("dists/{}", suite.name);
        // (path relative to dists/<suite>, bytes)
        let mut indices: Vec<(String, Vec<u8>)> = Vec::new();
        for (component, debs) in &suite.components {
            let mut stanzas: Vec<(String, String, String, String)> = Vec::new();
            for deb in debs {
                let bytes = build_deb(deb);
                let pool = deb.pool_path(component);
                write(&pool, &bytes);
                let stem = deb.file_name().trim_end_matches(".deb").to_string();
                repo.debs
                    .insert(stem, (dir.join(&pool), sha256_hex(&bytes)));
                stanzas.push((
                    deb.name.clone(),
                    deb.version.clone(),
                    deb.arch.clone(),
                    deb.packages_stanza(&pool, &bytes),
                ));
            }
            stanzas.sort();
            for arch in &archs {
                let text = stanzas
                    .iter()
                    .filter(|(_, _, a, _)| a == arch || a == "all")
                    .map(|(_, _, _, s)| s.as_str())
                    .collect::<Vec<_>>()
                    .join("\n");
                let base = format!("{component}/binary-{arch}/Packages");
                indices.push((format!("{base}.gz"), gz(text.as_bytes())));
                indices.push((format!("{base}.xz"), xz(text.as_bytes())));
                indices.push((base, text.into_bytes()));
            }
        }
        indices.sort();
        for (rel, bytes) in &indices {
            write(&format!("{dists}/{rel}"), bytes);
            if suite.acquire_by_hash {
                let parent = Path::new(rel).parent().unwrap().display().to_string();
                write(
                    &format!("{dists}/{parent}/by-hash/SHA256/{}", sha256_hex(bytes)),
                    bytes,
                );
            }
        }
        let release = release_text(suite, &archs, &indices);
        write(&format!("{dists}/Release"), release.as_bytes());
        write(
            &format!("{dists}/InRelease"),
            &signer.clearsign_at(release.as_bytes(), suite.date),
        );
        write(
            &format!("{dists}/Release.gpg"),
            &signer.detached_sign_at(release.as_bytes(), suite.date),
        );
    }
    for entry in walk(&dir.join("dists")) {
        let rel = entry
            .strip_prefix(dir)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        repo.dists
            .insert(rel, sha256_hex(&std::fs::read(&entry).unwrap()));
    }
    repo
}

fn release_text(suite: &SuiteSpec, archs: &[String], indices: &[(String, Vec<u8>)]) -> String {
    let mut s = String::new();
    s.push_str(&format!(
        "Origin: {}\nLabel: {}\n",
        suite.origin, suite.origin
    ));
    s.push_str(&format!(
        "Suite: {}\nCodename: {}\n",
        suite.name, suite.codename
    ));
    s.push_str(&format!("Date: {}\n", release_date(suite.date)));
    if let Some(v) = suite.valid_until {
        s.push_str(&format!("Valid-Until: {}\n", release_date(v)));
    }
    if suite.acquire_by_hash {
        s.push_str("Acquire-By-Hash: yes\n");
    }
    s.push_str("No-Support-for-Architecture-all: Packages\n");
    s.push_str(&format!("Architectures: {}\n", archs.join(" ")));
    let comps: Vec<&str> = suite.components.iter().map(|(c, _)| c.as_str()).collect();
    s.push_str(&format!("Components: {}\n", comps.join(" ")));
    s.push_str("Description: composer test repository\n");
    s.push_str("MD5Sum:\n");
    for (rel, bytes) in indices {
        s.push_str(&format!(" {} {:>16} {rel}\n", md5_hex(bytes), bytes.len()));
    }
    s.push_str("SHA256:\n");
    for (rel, bytes) in indices {
        s.push_str(&format!(
            " {} {:>16} {rel}\n",
            sha256_hex(bytes),
            bytes.len()
        ));
    }
    s
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// OpenPGP test key

/// A deterministic OpenPGP key: an Ed25519 certification-only primary key and an Ed25519
/// signing subkey with a back-signature, like Debian's archive keys. The same seed gives the
/// same key, byte for byte (key and binding times are fixed at [`TestKey::CREATED`]).
pub struct TestKey {
    primary: SecretKey,
    subkey: SecretSubkey,
    public: SignedPublicKey,
}

impl std::fmt::Debug for TestKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TestKey({})", self.fingerprint())
    }
}

fn subpacket(d: SubpacketData) -> Subpacket {
    Subpacket::regular(d).unwrap()
}

#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn timestamp(secs: i64) -> Timestamp {
    Timestamp::from_secs(secs as u32)
}

impl TestKey {
    /// When the key and its self-signatures were made: 2020-01-01T00:00:00Z.
    pub const CREATED: i64 = 1_577_836_800;

    /// The key for `seed`, with the user id `Composer Test Archive <archive@example.invalid>`.
    #[must_use]
    pub fn new(seed: u64) -> Self {
        Self::with_user_id(seed, "Composer Test Archive <archive@example.invalid>")
    }

    /// The key for `seed` with a given user id.
    #[must_use]
    pub fn with_user_id(seed: u64, user_id: &str) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let created = timestamp(Self::CREATED);
        let kt = KeyType::Ed25519Legacy;
        let alg = kt.to_alg();
        let pw = Password::empty();

        let (pp, sp) = kt.generate(&mut rng).unwrap();
        let primary_pub = PublicKey::from_inner(
            PubKeyInner::new(KeyVersion::V4, alg, created, None, pp).unwrap(),
        )
        .unwrap();
        let primary = SecretKey::new(primary_pub.clone(), sp).unwrap();
        let (pp, sp) = kt.generate(&mut rng).unwrap();
        let sub_pub = PublicSubkey::from_inner(
            PubKeyInner::new(KeyVersion::V4, alg, created, None, pp).unwrap(),
        )
        .unwrap();
        let subkey = SecretSubkey::new(sub_pub.clone(), sp).unwrap();

        let config = |typ, issuer: &dyn pgp::types::KeyDetails, mut extra: Vec<Subpacket>| {
            let mut c = SignatureConfig::v4(typ, alg, HashAlgorithm::Sha256);
            let mut hashed = vec![
                subpacket(SubpacketData::SignatureCreationTime(created)),
                subpacket(SubpacketData::IssuerFingerprint(issuer.fingerprint())),
            ];
            hashed.append(&mut extra);
            c.hashed_subpackets = hashed;
            c.unhashed_subpackets = vec![subpacket(SubpacketData::IssuerKeyId(
                issuer.legacy_key_id(),
            ))];
            c
        };

        let uid = UserId::from_str(Default::default(), user_id).unwrap();
        let mut certify = KeyFlags::default();
        certify.set_certify(true);
        let cert = config(
            SignatureType::CertPositive,
            &primary_pub,
            vec![
                subpacket(SubpacketData::KeyFlags(certify)),
                subpacket(SubpacketData::IsPrimary(true)),
            ],
        )
        .sign_certification(&primary, &primary_pub, &pw, Tag::UserId, &uid)
        .unwrap();

        let backsig = config(SignatureType::KeyBinding, &sub_pub, vec![])
            .sign_primary_key_binding(&subkey, &sub_pub, &pw, &primary_pub)
            .unwrap();
        let mut sign = KeyFlags::default();
        sign.set_sign(true);
        let binding = config(
            SignatureType::SubkeyBinding,
            &primary_pub,
            vec![
                subpacket(SubpacketData::KeyFlags(sign)),
                subpacket(SubpacketData::EmbeddedSignature(Box::new(backsig))),
            ],
        )
        .sign_subkey_binding(&primary, &primary_pub, &pw, &sub_pub)
        .unwrap();

        let public = SignedPublicKey::new(
            primary_pub,
            SignedKeyDetails::new(
                vec![],
                vec![],
                vec![SignedUser::new(uid, vec![cert])],
                vec![],
            ),
            vec![SignedPublicSubKey::new(sub_pub, vec![binding])],
        );
        Self {
            primary,
            subkey,
            public,
        }
    }

    /// The primary key's fingerprint (uppercase hex).
    #[must_use]
    pub fn fingerprint(&self) -> String {
        format!("{:X}", self.primary.fingerprint())
    }

    /// The signing subkey's fingerprint (uppercase hex): the issuer of every signature.
    #[must_use]
    pub fn signing_fingerprint(&self) -> String {
        format!("{:X}", self.subkey.fingerprint())
    }

    /// The public key as a binary keyring (what `gpg --export` writes).
    #[must_use]
    pub fn public_keyring(&self) -> Vec<u8> {
        self.public.to_bytes().unwrap()
    }

    /// The public key, ASCII-armored.
    #[must_use]
    pub fn public_keyring_armored(&self) -> Vec<u8> {
        self.public
            .to_armored_bytes(ArmorOptions::default())
            .unwrap()
    }

    /// Cleartext-signs `text` (UTF-8) as `gpg --clearsign` does, at [`DEFAULT_DATE`].
    #[must_use]
    pub fn clearsign(&self, text: &[u8]) -> Vec<u8> {
        self.clearsign_at(text, DEFAULT_DATE)
    }

    /// Cleartext-signs `text` with the signing subkey; the signature is made at `time`.
    ///
    /// Like GnuPG, the final line ending of `text` is not signed and the file's body is
    /// exactly `text`; trailing blanks are excluded from the hash as OpenPGP requires.
    #[must_use]
    pub fn clearsign_at(&self, text: &[u8], time: i64) -> Vec<u8> {
        let text = std::str::from_utf8(text).expect("clearsign: the text must be UTF-8");
        let body = text
            .strip_suffix("\r\n")
            .or_else(|| text.strip_suffix('\n'))
            .unwrap_or(text);
        let hashed: String = body
            .split('\n')
            .map(|l| l.trim_end_matches([' ', '\t', '\r']))
            .collect::<Vec<_>>()
            .join("\r\n");
        let sig = self.sign(SignatureType::Text, hashed.as_bytes(), time);
        let msg = CleartextSignedMessage::new_many(body, |_| Ok(vec![sig])).unwrap();
        msg.to_armored_bytes(ArmorOptions::default()).unwrap()
    }

    /// An armored detached signature over `data` (`Release.gpg`), made at [`DEFAULT_DATE`].
    #[must_use]
    pub fn detached_sign(&self, data: &[u8]) -> Vec<u8> {
        self.detached_sign_at(data, DEFAULT_DATE)
    }

    /// An armored detached binary signature over `data`, made at `time`.
    #[must_use]
    pub fn detached_sign_at(&self, data: &[u8], time: i64) -> Vec<u8> {
        let sig = self.sign(SignatureType::Binary, data, time);
        DetachedSignature::new(sig)
            .to_armored_bytes(ArmorOptions::default())
            .unwrap()
    }

    fn sign(&self, typ: SignatureType, data: &[u8], time: i64) -> Signature {
        let mut c = SignatureConfig::v4(typ, self.subkey.algorithm(), HashAlgorithm::Sha256);
        c.hashed_subpackets = vec![
            subpacket(SubpacketData::SignatureCreationTime(timestamp(time))),
            subpacket(SubpacketData::IssuerFingerprint(self.subkey.fingerprint())),
        ];
        c.unhashed_subpackets = vec![subpacket(SubpacketData::IssuerKeyId(
            self.subkey.legacy_key_id(),
        ))];
        c.sign(&self.subkey, &Password::empty(), data).unwrap()
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP

struct Fault {
    suffix: String,
    status: u16,
    remaining: usize,
}

struct ServerState {
    root: PathBuf,
    hits: Mutex<BTreeMap<String, usize>>,
    log: Mutex<Vec<String>>,
    faults: Mutex<Vec<Fault>>,
    /// `Authorization` header value every request must carry (401 otherwise).
    auth: Mutex<Option<String>>,
}

/// A static file server for a directory on `127.0.0.1:<random port>`: HTTP/1.1 GET and HEAD,
/// `Content-Length`, `Connection: close`, 404 for anything that is not a file under the root
/// (and for any path with `..`), 405 for other methods. Counts requests per path and can be
/// told to fail the next requests. Stops when dropped.
pub struct FixtureServer {
    addr: SocketAddr,
    state: Arc<ServerState>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FixtureServer {
    /// Serves `root`.
    #[must_use]
    pub fn start(root: &Path) -> Self {
        Self::start_with(root, plain_file)
    }

    /// Serves `root` through `resolve` on a fresh loopback port, one thread per connection.
    fn start_with(root: &Path, resolve: Resolve) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(ServerState {
            root: root.to_path_buf(),
            hits: Mutex::new(BTreeMap::new()),
            log: Mutex::new(Vec::new()),
            faults: Mutex::new(Vec::new()),
            auth: Mutex::new(None),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let state = Arc::clone(&state);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let state = Arc::clone(&state);
                    std::thread::spawn(move || {
                        let _ = serve(&state, conn, resolve);
                    });
                }
            })
        };
        Self {
            addr,
            state,
            stop,
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:<port>` (no trailing slash).
    #[must_use]
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests so far for `path` (`/dists/x/InRelease`; the leading `/` is optional).
    #[must_use]
    pub fn hits(&self, path: &str) -> usize {
        let key = if path.starts_with('/') {
            path.to_string()
        } else {
            format!("/{path}")
        };
        self.state
            .hits
            .lock()
            .unwrap()
            .get(&key)
            .copied()
            .unwrap_or(0)
    }

    /// Requests so far, all paths.
    #[must_use]
    pub fn total_hits(&self) -> usize {
        self.state.hits.lock().unwrap().values().sum()
    }

    /// Every request so far as `METHOD /path`, in arrival order.
    #[must_use]
    pub fn requests(&self) -> Vec<String> {
        self.state.log.lock().unwrap().clone()
    }

    /// Forgets the counts and the log.
    pub fn reset_hits(&self) {
        self.state.hits.lock().unwrap().clear();
        self.state.log.lock().unwrap().clear();
    }

    /// The next `times` requests whose path ends with `path_suffix` get `status` (e.g. 503)
    /// with a short body instead of the file. Earlier calls take precedence.
    pub fn require_basic_auth(&self, user: &str, password: &str) {
        let token = composer::base64::encode_standard(format!("{user}:{password}").as_bytes());
        *self.state.auth.lock().unwrap() = Some(format!("Basic {token}"));
    }

    /// Fails the next `times` requests whose path ends with `path_suffix` with `status`.
    pub fn fail_next(&self, path_suffix: &str, status: u16, times: usize) {
        self.state.faults.lock().unwrap().push(Fault {
            suffix: path_suffix.into(),
            status,
            remaining: times,
        });
    }
}

impl Drop for FixtureServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// How a server maps a request path to a file and its content type (`None`: 404).
type Resolve = fn(&Path, &str) -> Option<(PathBuf, &'static str)>;

/// A file under the root, as is (the Debian repository server).
fn plain_file(root: &Path, path: &str) -> Option<(PathBuf, &'static str)> {
    let file = safe_join(root, path)?;
    file.is_file().then_some((file, "application/octet-stream"))
}

/// `root` joined with a request path that starts with `/` and has no `..`.
fn safe_join(root: &Path, path: &str) -> Option<PathBuf> {
    let rel = Path::new(path.trim_start_matches('/'));
    let safe = path.starts_with('/')
        && rel
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    safe.then(|| root.join(rel))
}

/// Answers one request: counts and logs it, then 401 (auth required and missing), an
/// injected fault, 405, the file `resolve` finds, or 404. `Connection: close`.
fn serve(state: &ServerState, conn: TcpStream, resolve: Resolve) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let authorized = read_headers_authorized(state, &mut reader)?;
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("");
    let raw_path = target.split(['?', '#']).next().unwrap_or("");
    let path = percent_decode(raw_path).unwrap_or_else(|| raw_path.to_string());
    *state.hits.lock().unwrap().entry(path.clone()).or_default() += 1;
    state.log.lock().unwrap().push(format!("{method} {path}"));

    let injected = {
        let mut faults = state.faults.lock().unwrap();
        faults
            .iter_mut()
            .find(|f| f.remaining > 0 && path.ends_with(&f.suffix))
            .map(|f| {
                f.remaining -= 1;
                f.status
            })
    };
    let octet = "application/octet-stream";
    let (status, content_type, body): (u16, &str, Vec<u8>) = if !authorized {
        (401, octet, b"unauthorized\n".to_vec())
    } else if let Some(status) = injected {
        (
            status,
            octet,
            format!("injected fault {status}\n").into_bytes(),
        )
    } else if method != "GET" && method != "HEAD" {
        (405, octet, b"method not allowed\n".to_vec())
    } else if let Some((file, ct)) = resolve(&state.root, &path) {
        (200, ct, std::fs::read(&file)?)
    } else {
        (404, octet, b"not found\n".to_vec())
    };
    let mut conn = reader.into_inner();
    let challenge = if status == 401 {
        "WWW-Authenticate: Basic realm=\"fixture\"\r\n"
    } else {
        ""
    };
    let head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Length: {}\r\nContent-Type: {content_type}\r\n{challenge}Connection: close\r\n\r\n",
        reason(status),
        body.len()
    );
    conn.write_all(head.as_bytes())?;
    if method != "HEAD" {
        conn.write_all(&body)?;
    }
    conn.flush()?;
    let _ = conn.shutdown(Shutdown::Write);
    // Let the client read everything before the socket closes.
    let mut sink = [0u8; 512];
    while matches!(conn.read(&mut sink), Ok(n) if n > 0) {}
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// HTTP for package indexes

impl FixtureServer {
    /// Serves `root` like [`FixtureServer::start`], and also as a package index does: a
    /// request for a directory (`/simple/foo/`, with or without the slash) gets its
    /// `index.json`, else its `index.html`; `.json` files are sent as
    /// `application/vnd.pypi.simple.v1+json` (PEP 691), `.html` files as `text/html`
    /// (PEP 503), everything else as `application/octet-stream`. Hits count the path as
    /// requested (`/simple/foo/`), so a Debian repository and a simple index can share one
    /// server (`root/debian/…`, `root/simple/…`).
    #[must_use]
    pub fn start_index(root: &Path) -> Self {
        Self::start_with(root, index_file)
    }
}

/// The file a request names under `root`: the file itself, or a directory's `index.json`
/// or `index.html`; `None` for anything else or a path that leaves the root.
/// A package index's view of the root: a directory gets its `index.json`, else its
/// `index.html`, with the PEP 691 / PEP 503 content types.
fn index_file(root: &Path, path: &str) -> Option<(PathBuf, &'static str)> {
    let p = safe_join(root, path)?;
    let file = if p.is_file() {
        p
    } else if p.is_dir() {
        ["index.json", "index.html"]
            .iter()
            .map(|n| p.join(n))
            .find(|f| f.is_file())?
    } else {
        return None;
    };
    let ct = match file.extension().and_then(|e| e.to_str()) {
        Some("json") => "application/vnd.pypi.simple.v1+json",
        Some("html") => "text/html",
        _ => "application/octet-stream",
    };
    Some((file, ct))
}

/// Reads the request headers; whether they carry the `Authorization` the server requires
/// (always true when it requires none).
fn read_headers_authorized(
    state: &ServerState,
    reader: &mut BufReader<TcpStream>,
) -> std::io::Result<bool> {
    let mut authorization = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" || line == "\n" {
            break;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case("authorization")
        {
            authorization = Some(v.trim().to_string());
        }
    }
    let wanted = state.auth.lock().unwrap().clone();
    Ok(wanted.is_none() || wanted == authorization)
}
