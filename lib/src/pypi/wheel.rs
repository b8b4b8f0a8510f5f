//! Installing a wheel's files per the binary distribution format (PEP 427/491,
//! <https://packaging.python.org/specifications/binary-distribution-format/>), without pip or
//! any Python: the result is a list of [`PlannedEntry`] for one layer fragment.
//!
//! What it does, in the spec's order (`shared/reference/image-content.md` §2):
//! - reads the zip's central directory only for names, sizes and the unix mode's x bits
//!   (never timestamps or other attributes); a file is 0755 when any x bit is set, else 0644;
//! - finds the one `{name}-{version}.dist-info` directory (names compared normalized, as pip
//!   does), checks `WHEEL` (`Wheel-Version` major 1, or the ancient 0.x uv tolerates) and reads
//!   `Root-Is-Purelib`, and checks that `METADATA` names the same project and version as the
//!   file name;
//! - verifies every file against `RECORD` (sha256, sha384 or sha512, urlsafe base64 without
//!   padding, and the size when given); `RECORD` itself and its signatures are unhashed and
//!   are not installed (the signatures sign the `RECORD` we replace);
//! - rejects member paths that are absolute or contain `..`, `.`, empty components,
//!   backslashes or NUL, so that no file can leave its scheme directory;
//! - spreads `{name}-{version}.data/{purelib,platlib,scripts,headers,data}/…` onto the
//!   [`Scheme`]; `headers` go to `<headers>/<normalized project name>` as pip does;
//! - rewrites a first line starting with `#!python` (so `#!pythonw` too) of every `scripts`
//!   file to `#!<interpreter>`, like pip's `fix_script` and installer's `fix_shebang` (the
//!   whole first line is replaced), and makes every `scripts` file 0755 (uv does the same);
//! - generates `[console_scripts]` and `[gui_scripts]` launchers from one frozen template
//!   (installer's: [`launcher`]), 0755;
//! - writes `INSTALLER` (`composer\n`), `REQUESTED` (empty) when asked, and a new `RECORD`:
//!   every installed file with its sha256 and size, paths relative to the root scheme
//!   directory (`../../../bin/x` for a script), rows sorted by path bytes, LF line endings
//!   (as `installer` and `wheel` write them; pip writes CRLF), `RECORD,,` for itself.
//! - writes no `.pyc` and no `direct_url.json`.
//!
//! Everything is byte-deterministic: members are processed in name order, and nothing of the
//! zip but names, content and x bits reaches the output.
//!
//! Two ways to run it, with the same entries, hashes and `RECORD`:
//! - [`install_wheel`] holds every file's bytes in memory ([`Content::Inline`]; a file over
//!   [`INLINE_MAX`] is [`WheelError::TooLarge`]): for tests and small tools.
//! - [`index_wheel`] keeps no file's bytes: it verifies and hashes every member in one
//!   streaming pass and returns, for each installed file copied from a member, a
//!   [`MemberRef`] (offset, sizes, compression, shebang rewrite) from which
//!   [`MemberRef::open`] reads the installed bytes again straight out of the wheel; such
//!   files are [`Content::Extracted`] from the wheel's digest. Generated files (launchers,
//!   `INSTALLER`, `REQUESTED`, `RECORD`) stay inline. Memory is one copy buffer, whatever
//!   the wheel's size (torch's 1 GB `libtorch_cuda.so` included), and nothing is written to
//!   disk.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read, Seek, Write};
use std::str::FromStr as _;
use std::sync::Arc;

use sha2::{Digest as _, Sha256, Sha384, Sha512};

use crate::layer::plan::{Content, PlannedEntry};
use crate::layer::tar::{EntryKind, Header};

/// The largest file [`install_wheel`] holds in memory (and the largest metadata file read).
pub const INLINE_MAX: u64 = 64 << 20;

/// The content of the `INSTALLER` file written into every `.dist-info`.
pub const INSTALLER: &[u8] = b"composer\n";

/// Where a wheel's files go in the image (paths relative to the image root, no leading `/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scheme {
    /// Pure-Python root (`usr/local/lib/python3.13/dist-packages`).
    pub purelib: String,
    /// Platform-specific root: the same directory as `purelib` (torch and the `nvidia-*`
    /// wheels find each other through `$ORIGIN/../../nvidia/…`).
    pub platlib: String,
    /// Scripts (`usr/local/bin`).
    pub scripts: String,
    /// Headers: the directory *above* the per-project one; a wheel's headers go to
    /// `<headers>/<normalized name>` (`usr/local/include/python3.13/demo-tool`), as pip
    /// does for a wheel file.
    pub headers: String,
    /// Data (`usr/local`).
    pub data: String,
    /// Absolute in-image interpreter written into shebangs (`/usr/bin/python3.13`).
    pub interpreter: String,
}

impl Scheme {
    /// Debian's `posix_local` scheme for the system interpreter `python3.X`: everything under
    /// `/usr/local`, `dist-packages` for both lib directories.
    #[must_use]
    pub fn debian_system(python: (u32, u32)) -> Scheme {
        let (major, minor) = python;
        let lib = format!("usr/local/lib/python{major}.{minor}/dist-packages");
        Scheme {
            purelib: lib.clone(),
            platlib: lib,
            scripts: "usr/local/bin".into(),
            headers: format!("usr/local/include/python{major}.{minor}"),
            data: "usr/local".into(),
            interpreter: format!("/usr/bin/python{major}.{minor}"),
        }
    }

    /// A static virtual environment at `prefix` (`/opt/venv`): `lib/python3.X/site-packages`,
    /// `bin`, `include/site/python3.X/<name>`, and `<prefix>/bin/python` in shebangs.
    #[must_use]
    pub fn venv(prefix: &str, python: (u32, u32)) -> Scheme {
        let (major, minor) = python;
        let p = prefix.trim_matches('/');
        let lib = format!("{p}/lib/python{major}.{minor}/site-packages");
        Scheme {
            purelib: lib.clone(),
            platlib: lib,
            scripts: format!("{p}/bin"),
            headers: format!("{p}/include/site/python{major}.{minor}"),
            data: p.to_string(),
            interpreter: format!("/{p}/bin/python"),
        }
    }
}

/// One installed wheel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledWheel {
    /// Project name as `METADATA` spells it.
    pub name: String,
    /// Version as `METADATA` spells it.
    pub version: String,
    /// Image path of the installed `.dist-info` directory.
    pub dist_info: String,
    /// Regular files only (parent directories are left to the layer planner), sorted by path
    /// bytes; uid/gid 0; modes 0644 or 0755.
    pub entries: Vec<PlannedEntry>,
    /// Where each installed file that is a member's bytes (a script's with its shebang
    /// rewritten) lies in the wheel, by image path; generated files are not here.
    pub members: BTreeMap<String, MemberRef>,
    /// Files whose bytes were not read yet ([`survey_wheel`]), by image path, with the
    /// sha256 `RECORD` gives them: their entry's blake3 is all zeros until they are read, and
    /// they are not verified until then. Empty for every other function here.
    pub pending: BTreeMap<String, [u8; 32]>,
}

/// Where one member's bytes lie in the wheel file, and how they become the installed file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRef {
    /// Offset of the member's stored (compressed) data in the wheel file.
    pub data_start: u64,
    /// Length of the stored data.
    pub compressed_size: u64,
    /// Whether the data is deflated (else stored).
    pub deflated: bool,
    /// Size of the member (before any shebang rewrite).
    pub size: u64,
    /// A first line starting with `#!python` is replaced by this line (scripts).
    pub shebang: Option<String>,
}

impl MemberRef {
    /// The installed bytes, read from `stored`: a reader of exactly this member's stored
    /// data (`compressed_size` bytes from `data_start`). The caller checks what it reads
    /// against the entry's size and hash; this only bounds it.
    ///
    /// # Errors
    /// Reading the first line of a script fails.
    pub fn open<'r, R: Read + 'r>(&self, stored: R) -> io::Result<Box<dyn Read + 'r>> {
        let member = Box::new(self.open_whole(stored).take(self.size));
        match &self.shebang {
            Some(line) => with_shebang(member, line),
            None => Ok(member),
        }
    }

    /// The member's bytes as they inflate, not cut at its size: for a reader that checks a
    /// member it has not verified yet, so that one longer than its header says shows. A
    /// script's shebang is not rewritten here.
    pub fn open_whole<'r, R: Read + 'r>(&self, stored: R) -> Box<dyn Read + 'r> {
        let stored = stored.take(self.compressed_size);
        if self.deflated {
            Box::new(flate2::read::DeflateDecoder::new(stored))
        } else {
            Box::new(stored)
        }
    }
}

/// Why a wheel cannot be installed. Every variant names the wheel file and the member (a
/// path inside the archive, or a placeholder in parentheses for the archive as a whole).
#[derive(Debug, thiserror::Error)]
pub enum WheelError {
    /// The file name is not `{name}-{version}(-{build})?-{py}-{abi}-{platform}.whl`.
    #[error("{wheel}: not a wheel file name ({member}): {reason}")]
    Filename {
        /// Wheel file name.
        wheel: String,
        /// `(file name)`.
        member: String,
        /// What is wrong.
        reason: String,
    },
    /// The zip archive or one member cannot be read.
    #[error("{wheel}: cannot read {member} from the archive: {source}")]
    Zip {
        /// Wheel file name.
        wheel: String,
        /// Member path, or `(central directory)`.
        member: String,
        /// Cause.
        source: zip::result::ZipError,
    },
    /// Reading a member or writing its scratch copy failed.
    #[error("{wheel}: {member}: {source}")]
    Io {
        /// Wheel file name.
        wheel: String,
        /// Member path.
        member: String,
        /// Cause.
        source: io::Error,
    },
    /// A member path that could land outside its scheme directory.
    #[error("{wheel}: unsafe member path {member:?}: {reason}")]
    UnsafePath {
        /// Wheel file name.
        wheel: String,
        /// Member path as stored.
        member: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// The `.dist-info` directory is missing, ambiguous, misnamed or incomplete.
    #[error("{wheel}: {member}: {reason}")]
    DistInfo {
        /// Wheel file name.
        wheel: String,
        /// The `.dist-info` directory or file concerned.
        member: String,
        /// What is wrong.
        reason: String,
    },
    /// `WHEEL` declares a format this installer does not know.
    #[error("{wheel}: {member} declares Wheel-Version {version}; only 1.x is supported")]
    WheelVersion {
        /// Wheel file name.
        wheel: String,
        /// The `WHEEL` file.
        member: String,
        /// Declared version.
        version: String,
    },
    /// A metadata file (`WHEEL`, `METADATA`, `RECORD`) that cannot be parsed.
    #[error("{wheel}: {member}: {reason}")]
    Metadata {
        /// Wheel file name.
        wheel: String,
        /// The file.
        member: String,
        /// What is wrong.
        reason: String,
    },
    /// A file that `RECORD` does not list, or lists without a hash.
    #[error("{wheel}: {member} is not listed with a hash in RECORD")]
    NotInRecord {
        /// Wheel file name.
        wheel: String,
        /// Member path.
        member: String,
    },
    /// A file whose hash differs from `RECORD`.
    #[error(
        "{wheel}: {member} does not match RECORD: {algorithm} is {actual}, RECORD says {expected}"
    )]
    HashMismatch {
        /// Wheel file name.
        wheel: String,
        /// Member path.
        member: String,
        /// Hash algorithm.
        algorithm: &'static str,
        /// Digest in RECORD (urlsafe base64).
        expected: String,
        /// Digest of the content (urlsafe base64).
        actual: String,
    },
    /// A file whose size differs from `RECORD` (or from the zip's own header).
    #[error("{wheel}: {member} is {actual} bytes, but {origin} says {expected}")]
    SizeMismatch {
        /// Wheel file name.
        wheel: String,
        /// Member path.
        member: String,
        /// Which record gave the expected size (`RECORD` or `the zip header`).
        origin: &'static str,
        /// Expected size.
        expected: u64,
        /// Actual size (at least; reading stops at the first excess byte).
        actual: u64,
    },
    /// A `RECORD` hash algorithm weaker than sha256, or unknown.
    #[error(
        "{wheel}: {member} is hashed with {algorithm} in RECORD; sha256 or stronger is required"
    )]
    UnsupportedHash {
        /// Wheel file name.
        wheel: String,
        /// Member path.
        member: String,
        /// The algorithm named in RECORD.
        algorithm: String,
    },
    /// A `.data` subdirectory other than purelib, platlib, scripts, headers and data, a file
    /// directly in `.data/<key>`, or a `.data` directory of another name.
    #[error("{wheel}: {member}: {reason}")]
    DataDir {
        /// Wheel file name.
        wheel: String,
        /// Member path.
        member: String,
        /// What is wrong.
        reason: String,
    },
    /// Two members (or a member and a generated file) install to the same image path.
    #[error("{wheel}: {member} and {other} both install /{path}")]
    Duplicate {
        /// Wheel file name.
        wheel: String,
        /// Member path (or generated file).
        member: String,
        /// The earlier member.
        other: String,
        /// Image path.
        path: String,
    },
    /// A `[console_scripts]` or `[gui_scripts]` entry that cannot become a launcher.
    #[error("{wheel}: {member}: entry point {name:?}: {reason}")]
    EntryPoint {
        /// Wheel file name.
        wheel: String,
        /// `…dist-info/entry_points.txt`.
        member: String,
        /// Script name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// A file too large to hold in memory, and no scratch directory to write it to.
    #[error(
        "{wheel}: {member} is {size} bytes, over the {INLINE_MAX}-byte in-memory limit, and no scratch directory was given"
    )]
    TooLarge {
        /// Wheel file name.
        wheel: String,
        /// Member path.
        member: String,
        /// Declared size.
        size: u64,
    },
    /// The scheme's interpreter cannot be written as a plain shebang.
    #[error(
        "{wheel}: {member}: interpreter {interpreter:?} must be an absolute path without whitespace, with a shebang line under 128 bytes"
    )]
    Interpreter {
        /// Wheel file name.
        wheel: String,
        /// The script needing the shebang.
        member: String,
        /// The interpreter.
        interpreter: String,
    },
}

impl WheelError {
    /// The wheel file name.
    #[must_use]
    pub fn wheel(&self) -> &str {
        match self {
            Self::Filename { wheel, .. }
            | Self::Zip { wheel, .. }
            | Self::Io { wheel, .. }
            | Self::UnsafePath { wheel, .. }
            | Self::DistInfo { wheel, .. }
            | Self::WheelVersion { wheel, .. }
            | Self::Metadata { wheel, .. }
            | Self::NotInRecord { wheel, .. }
            | Self::HashMismatch { wheel, .. }
            | Self::SizeMismatch { wheel, .. }
            | Self::UnsupportedHash { wheel, .. }
            | Self::DataDir { wheel, .. }
            | Self::Duplicate { wheel, .. }
            | Self::EntryPoint { wheel, .. }
            | Self::TooLarge { wheel, .. }
            | Self::Interpreter { wheel, .. } => wheel,
        }
    }

    /// The member path (or placeholder) the error is about.
    #[must_use]
    pub fn member(&self) -> &str {
        match self {
            Self::Filename { member, .. }
            | Self::Zip { member, .. }
            | Self::Io { member, .. }
            | Self::UnsafePath { member, .. }
            | Self::DistInfo { member, .. }
            | Self::WheelVersion { member, .. }
            | Self::Metadata { member, .. }
            | Self::NotInRecord { member, .. }
            | Self::HashMismatch { member, .. }
            | Self::SizeMismatch { member, .. }
            | Self::UnsupportedHash { member, .. }
            | Self::DataDir { member, .. }
            | Self::Duplicate { member, .. }
            | Self::EntryPoint { member, .. }
            | Self::TooLarge { member, .. }
            | Self::Interpreter { member, .. } => member,
        }
    }
}

/// Installs `wheel` (named `filename`) into `scheme`, holding every file in memory; a file
/// over [`INLINE_MAX`] is an error. See [`install_wheel_to`].
///
/// # Errors
/// [`WheelError`], naming the wheel and the member.
pub fn install_wheel<R: Read + Seek>(
    wheel: R,
    filename: &str,
    scheme: &Scheme,
    requested: bool,
) -> Result<InstalledWheel, WheelError> {
    Installer::new(filename, scheme, None, INLINE_MAX).run(wheel, requested, false)
}

/// Installs `wheel` (named `filename`, whose name and version must match its `.dist-info`,
/// stored in the store as `archive`) into `scheme` without keeping any file's bytes: every
/// member is verified against `RECORD` and hashed as [`install_wheel`] does, and the files
/// copied from members become [`Content::Extracted`] from `archive`, read back with the
/// [`InstalledWheel::members`] refs. `requested` writes `REQUESTED` (the user asked for this
/// project, not a dependency).
///
/// # Errors
/// [`WheelError`], naming the wheel and the member.
pub fn index_wheel<R: Read + Seek>(
    wheel: R,
    filename: &str,
    scheme: &Scheme,
    requested: bool,
    archive: &composer_store::Digest,
) -> Result<InstalledWheel, WheelError> {
    Installer::new(filename, scheme, Some(archive), INLINE_MAX).run(wheel, requested, false)
}

/// [`index_wheel`] without reading the members it can check later: a member copied
/// unchanged whose `RECORD` row has a sha256 and the zip header's size is listed
/// [`InstalledWheel::pending`], with RECORD's sha256 and an all-zero blake3, instead of being
/// read now. Scripts (rewritten) and members with any other hash are read and verified as
/// [`index_wheel`] does; `WHEEL`, `METADATA` and `entry_points.txt` are parsed before they are
/// verified (as there), and verified with the other pending files. Once a caller has read
/// every pending file (checking its size and sha256, learning its blake3), the listing is
/// the one [`index_wheel`] gives. This lets one pass over the members both verify them and
/// write them into a fragment.
///
/// # Errors
/// [`WheelError`], naming the wheel and the member; a pending member's own errors (bad hash,
/// size) show only when it is read.
pub fn survey_wheel<R: Read + Seek>(
    wheel: R,
    filename: &str,
    scheme: &Scheme,
    requested: bool,
    archive: &composer_store::Digest,
) -> Result<InstalledWheel, WheelError> {
    Installer::new(filename, scheme, Some(archive), INLINE_MAX).run(wheel, requested, true)
}

/// Where each file copied from a member of `wheel` (named `filename`) lies in it, by image
/// path, as [`index_wheel`] reports it, without reading any member's data: the names, the
/// `.dist-info` and the scheme are checked, but nothing is verified against `RECORD`. For a
/// wheel indexed before, whose listing (with each file's blake3) is what its reads are
/// checked against.
///
/// # Errors
/// [`WheelError`], naming the wheel and the member.
pub fn locate_wheel<R: Read + Seek>(
    wheel: R,
    filename: &str,
    scheme: &Scheme,
) -> Result<BTreeMap<String, MemberRef>, WheelError> {
    Installer::new(filename, scheme, None, INLINE_MAX).locate(wheel)
}

/// The launcher for `module:attr` with shebang `interpreter` (installer's template; pip's
/// differs only in quotes).
#[must_use]
pub fn launcher(interpreter: &str, module: &str, attr: &str) -> String {
    let import_name = attr.split('.').next().unwrap_or(attr);
    format!(
        "#!{interpreter}\n# -*- coding: utf-8 -*-\nimport re\nimport sys\nfrom {module} import {import_name}\nif __name__ == \"__main__\":\n    sys.argv[0] = re.sub(r\"(-script\\.pyw|\\.exe)?$\", \"\", sys.argv[0])\n    sys.exit({attr}())\n"
    )
}

/// A project name normalized per PEP 503 (`[-_.]+` → `-`, lowercase).
#[must_use]
pub fn normalize_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut sep = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            sep = true;
        } else {
            if sep && !out.is_empty() {
                out.push('-');
            }
            sep = false;
            out.extend(c.to_lowercase());
        }
    }
    out
}

// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Algo {
    Sha256,
    Sha384,
    Sha512,
}

impl Algo {
    fn parse(name: &str) -> Option<Algo> {
        match name {
            "sha256" => Some(Algo::Sha256),
            "sha384" => Some(Algo::Sha384),
            "sha512" => Some(Algo::Sha512),
            _ => None,
        }
    }
    fn name(self) -> &'static str {
        match self {
            Algo::Sha256 => "sha256",
            Algo::Sha384 => "sha384",
            Algo::Sha512 => "sha512",
        }
    }
}

enum AnyHasher {
    Sha256(Sha256),
    Sha384(Sha384),
    Sha512(Sha512),
}

impl AnyHasher {
    fn new(algo: Algo) -> Self {
        match algo {
            Algo::Sha256 => Self::Sha256(Sha256::new()),
            Algo::Sha384 => Self::Sha384(Sha384::new()),
            Algo::Sha512 => Self::Sha512(Sha512::new()),
        }
    }
    fn update(&mut self, b: &[u8]) {
        match self {
            Self::Sha256(h) => h.update(b),
            Self::Sha384(h) => h.update(b),
            Self::Sha512(h) => h.update(b),
        }
    }
    fn finish(self) -> Vec<u8> {
        match self {
            Self::Sha256(h) => h.finalize().to_vec(),
            Self::Sha384(h) => h.finalize().to_vec(),
            Self::Sha512(h) => h.finalize().to_vec(),
        }
    }
}

/// One RECORD row of the wheel as shipped.
struct RecordRow {
    hash: Option<(String, String)>,
    size: Option<u64>,
}

/// What [`Installer::layout`] finds.
struct Layout {
    members: BTreeMap<String, Member>,
    dist_info: String,
    name: String,
    version: String,
    /// The scheme directory the wheel's root goes to.
    root: String,
    data_dir: String,
    /// `.dist-info` files that are not installed (RECORD and its signatures, ours).
    skipped: BTreeSet<String>,
    headers_name: String,
}

/// A member of the archive, from the central directory.
struct Member {
    index: usize,
    exec: bool,
    size: u64,
}

impl Member {
    /// The installed file's mode: 0755 where any x bit is set (or for a script), else 0644.
    fn mode(&self, is_script: bool) -> u32 {
        if self.exec || is_script { 0o755 } else { 0o644 }
    }
}

/// An installed regular file before it becomes a [`PlannedEntry`].
struct Installed {
    /// Member path that produced it, or `(generated)`.
    source: String,
    mode: u32,
    content: Content,
    size: u64,
    sha256: [u8; 32],
    blake3: [u8; 32],
    /// Where it lies in the wheel, for a file copied from a member.
    member: Option<MemberRef>,
}

/// Where the bytes of one file go while they are copied: kept, or only hashed.
enum Sink {
    Memory(Vec<u8>),
    Discard,
}

struct Installer<'a> {
    wheel: String,
    scheme: &'a Scheme,
    /// With an archive digest, files are indexed ([`index_wheel`]), not kept.
    archive: Option<&'a composer_store::Digest>,
    inline_max: u64,
}

const CENTRAL: &str = "(central directory)";
const SCHEME_KEYS: [&str; 5] = ["purelib", "platlib", "scripts", "headers", "data"];

impl<'a> Installer<'a> {
    fn new(
        filename: &str,
        scheme: &'a Scheme,
        archive: Option<&'a composer_store::Digest>,
        inline_max: u64,
    ) -> Self {
        Self {
            wheel: filename.to_string(),
            scheme,
            archive,
            inline_max,
        }
    }

    fn zip_err(&self, member: &str) -> impl FnOnce(zip::result::ZipError) -> WheelError {
        let (wheel, member) = (self.wheel.clone(), member.to_string());
        move |source| WheelError::Zip {
            wheel,
            member,
            source,
        }
    }
    fn io_err(&self, member: &str) -> impl FnOnce(io::Error) -> WheelError {
        let (wheel, member) = (self.wheel.clone(), member.to_string());
        move |source| WheelError::Io {
            wheel,
            member,
            source,
        }
    }
    fn dist_info_err(&self, member: &str, reason: impl Into<String>) -> WheelError {
        WheelError::DistInfo {
            wheel: self.wheel.clone(),
            member: member.to_string(),
            reason: reason.into(),
        }
    }
    fn metadata_err(&self, member: &str, reason: impl Into<String>) -> WheelError {
        WheelError::Metadata {
            wheel: self.wheel.clone(),
            member: member.to_string(),
            reason: reason.into(),
        }
    }

    /// The checks and facts every use of the wheel needs: member names (checked), the one
    /// `.dist-info`, `WHEEL` and `METADATA` (matching the file name), and where files go.
    fn layout<R: Read + Seek>(&self, zip: &mut zip::ZipArchive<R>) -> Result<Layout, WheelError> {
        let (file_name, file_version) = self.parse_filename()?;
        if zip.has_duplicate_names() {
            return Err(self.zip_err(CENTRAL)(
                zip::result::ZipError::InvalidArchive("duplicate member names".into()),
            ));
        }

        // Member names, checked, in name order; directories only checked.
        let mut members: BTreeMap<String, Member> = BTreeMap::new();
        for index in 0..zip.len() {
            let entry = zip.by_index_data(index).map_err(self.zip_err(CENTRAL))?;
            let raw = String::from_utf8_lossy(entry.name_raw()).into_owned();
            let name = entry.name().map_err(self.zip_err(&raw))?.into_owned();
            let is_dir = name.ends_with('/');
            self.check_path(
                if is_dir {
                    &name[..name.len() - 1]
                } else {
                    &name
                },
                &name,
            )?;
            if is_dir {
                continue;
            }
            let mode = entry.unix_mode().unwrap_or(0);
            members.insert(
                name,
                Member {
                    index,
                    exec: mode & 0o111 != 0,
                    size: entry.size(),
                },
            );
        }

        // The one .dist-info directory.
        let dist_infos: BTreeSet<&str> = members
            .keys()
            .filter_map(|n| n.split_once('/').map(|(top, _)| top))
            .filter(|top| top.ends_with(".dist-info"))
            .collect();
        let dist_info = match dist_infos.len() {
            0 => return Err(self.dist_info_err("(archive root)", "no .dist-info directory")),
            1 => dist_infos
                .iter()
                .next()
                .copied()
                .unwrap_or_default()
                .to_string(),
            _ => {
                let list: Vec<&str> = dist_infos.into_iter().collect();
                return Err(self.dist_info_err(
                    "(archive root)",
                    format!("several .dist-info directories: {}", list.join(", ")),
                ));
            }
        };
        let stem = dist_info.trim_end_matches(".dist-info").to_string();
        if !normalize_name(&stem).starts_with(&format!("{}-", normalize_name(&file_name))) {
            return Err(self.dist_info_err(
                &dist_info,
                format!("does not belong to project {file_name:?} of the file name"),
            ));
        }

        // WHEEL, METADATA (verified again with every file when installing).
        let wheel_path = format!("{dist_info}/WHEEL");
        let wheel_text = self.read_text(zip, &members, &wheel_path)?;
        let root_is_purelib = self.parse_wheel_file(&wheel_path, &wheel_text)?;
        let metadata_path = format!("{dist_info}/METADATA");
        let metadata_text = self.read_text(zip, &members, &metadata_path)?;
        let (name, version) = self.parse_metadata(&metadata_path, &metadata_text)?;
        if normalize_name(&name) != normalize_name(&file_name) {
            return Err(self.dist_info_err(
                &metadata_path,
                format!("names project {name:?}, the file name {file_name:?}"),
            ));
        }
        if !same_version(&version, &file_version) {
            return Err(self.dist_info_err(
                &metadata_path,
                format!("has version {version:?}, the file name {file_version:?}"),
            ));
        }
        let root = if root_is_purelib {
            self.scheme.purelib.clone()
        } else {
            self.scheme.platlib.clone()
        };
        let data_dir = format!("{stem}.data");
        let skipped: BTreeSet<String> = [
            "RECORD",
            "RECORD.jws",
            "RECORD.p7s",
            "INSTALLER",
            "REQUESTED",
        ]
        .iter()
        .map(|f| format!("{dist_info}/{f}"))
        .collect();

        // pip installs a wheel file's headers below the name from its file name, `_` read as
        // `-` (`demo-tool`); the normalized name gives that for every spec-conforming name.
        let headers_name = normalize_name(&name);
        Ok(Layout {
            members,
            dist_info,
            name,
            version,
            root,
            data_dir,
            skipped,
            headers_name,
        })
    }

    /// Where each installed member file lies in the wheel, without reading any member.
    fn locate<R: Read + Seek>(&self, wheel: R) -> Result<BTreeMap<String, MemberRef>, WheelError> {
        let mut zip = zip::ZipArchive::new(wheel).map_err(self.zip_err(CENTRAL))?;
        let l = self.layout(&mut zip)?;
        let mut out: BTreeMap<String, (MemberRef, &str)> = BTreeMap::new();
        for placed in self.placed(&l) {
            let (path, member, dest, is_script) = placed?;
            if let Some((_, other)) = out.get(&dest) {
                return Err(WheelError::Duplicate {
                    wheel: self.wheel.clone(),
                    member: path.clone(),
                    other: (*other).to_string(),
                    path: dest,
                });
            }
            let file = zip.by_index_raw(member.index).map_err(self.zip_err(path))?;
            let m = self.member_ref(&file, path, member, is_script)?;
            out.insert(dest, (m, path));
        }
        Ok(out.into_iter().map(|(dest, (m, _))| (dest, m)).collect())
    }

    /// Every member that is installed (not RECORD, its signatures or our own files), with
    /// its destination and whether it is a script, in name order.
    fn placed<'l>(
        &'l self,
        l: &'l Layout,
    ) -> impl Iterator<Item = Result<(&'l String, &'l Member, String, bool), WheelError>> + 'l {
        l.members
            .iter()
            .filter(|(path, _)| !l.skipped.contains(*path))
            .map(move |(path, member)| {
                let (dest, is_script) =
                    self.destination(path, &l.root, &l.data_dir, &l.headers_name)?;
                Ok((path, member, dest, is_script))
            })
    }

    /// Where `member`'s data is, from its open zip entry.
    fn member_ref<R: Read>(
        &self,
        file: &zip::read::ZipFile<'_, R>,
        path: &str,
        member: &Member,
        is_script: bool,
    ) -> Result<MemberRef, WheelError> {
        let deflated = match file.compression() {
            zip::CompressionMethod::Stored => false,
            zip::CompressionMethod::Deflated => true,
            _ => {
                return Err(self.zip_err(path)(
                    zip::result::ZipError::UnsupportedArchive(
                        "compression other than stored or deflate",
                    ),
                ));
            }
        };
        Ok(MemberRef {
            data_start: file.data_start().ok_or_else(|| {
                self.zip_err(path)(zip::result::ZipError::InvalidArchive(
                    "no data offset".into(),
                ))
            })?,
            compressed_size: file.compressed_size(),
            deflated,
            size: member.size,
            shebang: is_script.then(|| format!("#!{}\n", self.scheme.interpreter)),
        })
    }

    /// Installs (or indexes) every file; with `survey`, members that can be checked when
    /// they are read are left [`InstalledWheel::pending`].
    fn run<R: Read + Seek>(
        &self,
        wheel: R,
        requested: bool,
        survey: bool,
    ) -> Result<InstalledWheel, WheelError> {
        let mut zip = zip::ZipArchive::new(wheel).map_err(self.zip_err(CENTRAL))?;
        let l = self.layout(&mut zip)?;
        let (dist_info, root) = (&l.dist_info, &l.root);
        let record_path = format!("{dist_info}/RECORD");
        let record_text = self.read_text(&mut zip, &l.members, &record_path)?;
        let record = self.parse_record(&record_path, &record_text)?;
        let entry_points_path = format!("{dist_info}/entry_points.txt");
        let entry_points = if l.members.contains_key(&entry_points_path) {
            Some(self.read_text(&mut zip, &l.members, &entry_points_path)?)
        } else {
            None
        };

        // Every file: destination, verification, copy.
        let mut out: BTreeMap<String, Installed> = BTreeMap::new();
        let mut pending = BTreeMap::new();
        for placed in self.placed(&l) {
            let (path, member, dest, is_script) = placed?;
            let row = record
                .get(path.as_str())
                .ok_or_else(|| WheelError::NotInRecord {
                    wheel: self.wheel.clone(),
                    member: path.clone(),
                })?;
            let Some((algo_name, expected)) = &row.hash else {
                return Err(WheelError::NotInRecord {
                    wheel: self.wheel.clone(),
                    member: path.clone(),
                });
            };
            let algo = Algo::parse(algo_name).ok_or_else(|| WheelError::UnsupportedHash {
                wheel: self.wheel.clone(),
                member: path.clone(),
                algorithm: algo_name.clone(),
            })?;
            if is_script {
                self.check_interpreter(path)?;
            }
            // Surveying: a member copied unchanged is checked when it is read, against
            // RECORD's sha256 (and the zip header's size, which RECORD must agree with).
            let deferred = self
                .archive
                .filter(|_| {
                    survey
                        && !is_script
                        && algo == Algo::Sha256
                        && row.size.is_none_or(|s| s == member.size)
                })
                .and_then(|archive| {
                    let d = crate::base64::decode(expected)?;
                    Some((archive, <[u8; 32]>::try_from(d.as_slice()).ok()?))
                });
            let installed = match deferred {
                Some((archive, sha256)) => {
                    let file = zip.by_index_raw(member.index).map_err(self.zip_err(path))?;
                    let member_ref = self.member_ref(&file, path, member, false)?;
                    pending.insert(dest.clone(), sha256);
                    Installed {
                        source: path.clone(),
                        mode: member.mode(false),
                        content: Content::Extracted {
                            archive: archive.clone(),
                            path: dest.clone(),
                        },
                        size: member.size,
                        sha256,
                        blake3: [0; 32],
                        member: Some(member_ref),
                    }
                }
                None => self.copy_member(
                    &mut zip, path, member, &dest, algo, expected, row.size, is_script,
                )?,
            };
            self.insert(&mut out, dest, installed)?;
        }

        // Launchers.
        if let Some(text) = &entry_points {
            for (script, module, attr) in self.parse_entry_points(&entry_points_path, text)? {
                self.check_interpreter(&entry_points_path)?;
                let body = launcher(&self.scheme.interpreter, &module, &attr);
                let dest = format!("{}/{script}", self.scheme.scripts);
                let source = format!("{entry_points_path} [{script}]");
                self.insert(&mut out, dest, generated(&source, body.into_bytes(), 0o755))?;
            }
        }

        // INSTALLER, REQUESTED, RECORD.
        let dist_info_dest = format!("{root}/{dist_info}");
        self.insert(
            &mut out,
            format!("{dist_info_dest}/INSTALLER"),
            generated("(generated INSTALLER)", INSTALLER.to_vec(), 0o644),
        )?;
        if requested {
            self.insert(
                &mut out,
                format!("{dist_info_dest}/REQUESTED"),
                generated("(generated REQUESTED)", Vec::new(), 0o644),
            )?;
        }
        let record_dest = format!("{dist_info_dest}/RECORD");
        let mut rows: Vec<(String, String, String)> = out
            .iter()
            .map(|(dest, f)| {
                (
                    relative(root, dest),
                    format!("sha256={}", crate::base64::encode_url_safe_nopad(&f.sha256)),
                    f.size.to_string(),
                )
            })
            .collect();
        rows.push((relative(root, &record_dest), String::new(), String::new()));
        rows.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        let mut new_record = String::new();
        for (p, h, s) in &rows {
            new_record.push_str(&csv_field(p));
            new_record.push(',');
            new_record.push_str(h);
            new_record.push(',');
            new_record.push_str(s);
            new_record.push('\n');
        }
        self.insert(
            &mut out,
            record_dest,
            generated("(generated RECORD)", new_record.into_bytes(), 0o644),
        )?;

        let members = out
            .iter()
            .filter_map(|(path, f)| Some((path.clone(), f.member.clone()?)))
            .collect();
        let entries = out
            .into_iter()
            .map(|(path, f)| PlannedEntry {
                header: Header {
                    path,
                    mode: f.mode,
                    uid: 0,
                    gid: 0,
                    kind: EntryKind::File { size: f.size },
                },
                content: f.content,
                content_hash: f.blake3,
            })
            .collect();
        Ok(InstalledWheel {
            name: l.name,
            version: l.version,
            dist_info: dist_info_dest,
            entries,
            members,
            pending,
        })
    }

    fn parse_filename(&self) -> Result<(String, String), WheelError> {
        let err = |reason: &str| WheelError::Filename {
            wheel: self.wheel.clone(),
            member: "(file name)".into(),
            reason: reason.into(),
        };
        let base = self.wheel.rsplit('/').next().unwrap_or(&self.wheel);
        let stem = base
            .strip_suffix(".whl")
            .ok_or_else(|| err("does not end in .whl"))?;
        let parts: Vec<&str> = stem.split('-').collect();
        if !(parts.len() == 5 || parts.len() == 6) || parts.iter().any(|p| p.is_empty()) {
            return Err(err(
                "expected {name}-{version}(-{build})?-{python}-{abi}-{platform}.whl",
            ));
        }
        Ok((parts[0].to_string(), parts[1].to_string()))
    }

    /// Rejects member paths that could escape: absolute, `..`, `.`, empty components,
    /// backslashes, NUL.
    fn check_path(&self, path: &str, member: &str) -> Result<(), WheelError> {
        let reason = if path.is_empty() {
            Some("empty path")
        } else if path.starts_with('/') {
            Some("absolute path")
        } else if path.contains('\\') {
            Some("backslash in path")
        } else if path.contains('\0') {
            Some("NUL in path")
        } else if path.split('/').any(|c| c == "..") {
            Some("`..` component")
        } else if path.split('/').any(|c| c.is_empty() || c == ".") {
            Some("empty or `.` component")
        } else if path
            .split('/')
            .next()
            .is_some_and(|c| c.len() == 2 && c.ends_with(':'))
        {
            Some("drive letter")
        } else {
            None
        };
        match reason {
            Some(reason) => Err(WheelError::UnsafePath {
                wheel: self.wheel.clone(),
                member: member.to_string(),
                reason,
            }),
            None => Ok(()),
        }
    }

    /// Where `path` goes in the image, and whether it is a script.
    fn destination(
        &self,
        path: &str,
        root: &str,
        data_dir: &str,
        name: &str,
    ) -> Result<(String, bool), WheelError> {
        let err = |reason: String| WheelError::DataDir {
            wheel: self.wheel.clone(),
            member: path.to_string(),
            reason,
        };
        let (top, rest) = path.split_once('/').unwrap_or((path, ""));
        if top == data_dir {
            let (key, sub) = rest.split_once('/').unwrap_or((rest, ""));
            if sub.is_empty() {
                return Err(err(format!(
                    "a file directly in {data_dir}/ (expected {data_dir}/<scheme key>/…)"
                )));
            }
            let dest = match key {
                "purelib" => format!("{}/{sub}", self.scheme.purelib),
                "platlib" => format!("{}/{sub}", self.scheme.platlib),
                "scripts" => format!("{}/{sub}", self.scheme.scripts),
                "headers" => format!("{}/{name}/{sub}", self.scheme.headers),
                "data" => format!("{}/{sub}", self.scheme.data),
                _ => {
                    return Err(err(format!(
                        "unknown .data directory {key:?} (expected one of {})",
                        SCHEME_KEYS.join(", ")
                    )));
                }
            };
            return Ok((dest, key == "scripts"));
        }
        if top.ends_with(".data") && !rest.is_empty() {
            return Err(err(format!(
                "a .data directory that does not match {data_dir}"
            )));
        }
        Ok((format!("{root}/{path}"), false))
    }

    fn check_interpreter(&self, member: &str) -> Result<(), WheelError> {
        let i = &self.scheme.interpreter;
        if i.starts_with('/') && !i.chars().any(char::is_whitespace) && i.len() + 3 <= 127 {
            Ok(())
        } else {
            Err(WheelError::Interpreter {
                wheel: self.wheel.clone(),
                member: member.to_string(),
                interpreter: i.clone(),
            })
        }
    }

    fn insert(
        &self,
        out: &mut BTreeMap<String, Installed>,
        dest: String,
        file: Installed,
    ) -> Result<(), WheelError> {
        if let Some(prev) = out.get(&dest) {
            return Err(WheelError::Duplicate {
                wheel: self.wheel.clone(),
                member: file.source,
                other: prev.source.clone(),
                path: dest,
            });
        }
        out.insert(dest, file);
        Ok(())
    }

    /// Reads a small metadata member as UTF-8 (unverified here; verified with every file).
    fn read_text<R: Read + Seek>(
        &self,
        zip: &mut zip::ZipArchive<R>,
        members: &BTreeMap<String, Member>,
        path: &str,
    ) -> Result<String, WheelError> {
        let member = members
            .get(path)
            .ok_or_else(|| self.dist_info_err(path, "missing"))?;
        if member.size > INLINE_MAX {
            return Err(self.metadata_err(path, format!("{} bytes is too large", member.size)));
        }
        let mut f = zip.by_index(member.index).map_err(self.zip_err(path))?;
        let mut buf = Vec::new();
        (&mut f)
            .take(member.size.saturating_add(1))
            .read_to_end(&mut buf)
            .map_err(self.io_err(path))?;
        if buf.len() as u64 != member.size {
            return Err(WheelError::SizeMismatch {
                wheel: self.wheel.clone(),
                member: path.to_string(),
                origin: "the zip header",
                expected: member.size,
                actual: buf.len() as u64,
            });
        }
        String::from_utf8(buf).map_err(|_| self.metadata_err(path, "not UTF-8"))
    }

    /// `Root-Is-Purelib` after checking `Wheel-Version`.
    fn parse_wheel_file(&self, path: &str, text: &str) -> Result<bool, WheelError> {
        let fields = headers(text);
        let version = fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("Wheel-Version"))
            .map(|(_, v)| v.as_str())
            .ok_or_else(|| self.metadata_err(path, "no Wheel-Version"))?;
        let major = version
            .split('.')
            .next()
            .and_then(|m| m.parse::<u32>().ok())
            .ok_or_else(|| self.metadata_err(path, format!("bad Wheel-Version {version:?}")))?;
        if major > 1 {
            return Err(WheelError::WheelVersion {
                wheel: self.wheel.clone(),
                member: path.to_string(),
                version: version.to_string(),
            });
        }
        // pip: anything but "true" (case-insensitive) means platlib.
        Ok(fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("Root-Is-Purelib"))
            .is_some_and(|(_, v)| v.eq_ignore_ascii_case("true")))
    }

    fn parse_metadata(&self, path: &str, text: &str) -> Result<(String, String), WheelError> {
        let fields = headers(text);
        let get = |key: &str| {
            fields
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v.clone())
                .filter(|v| !v.is_empty())
                .ok_or_else(|| self.metadata_err(path, format!("no {key} field")))
        };
        Ok((get("Name")?, get("Version")?))
    }

    fn parse_record(
        &self,
        path: &str,
        text: &str,
    ) -> Result<BTreeMap<String, RecordRow>, WheelError> {
        let mut rows = BTreeMap::new();
        for (n, row) in parse_csv(text)
            .map_err(|e| self.metadata_err(path, e))?
            .into_iter()
            .enumerate()
        {
            if row.len() != 3 {
                return Err(self.metadata_err(
                    path,
                    format!("row {} has {} fields, expected 3", n + 1, row.len()),
                ));
            }
            let [file, hash, size] = <[String; 3]>::try_from(row).unwrap_or_default();
            let hash = if hash.is_empty() {
                None
            } else {
                let (algo, digest) = hash.split_once('=').ok_or_else(|| {
                    self.metadata_err(path, format!("row {}: bad hash {hash:?}", n + 1))
                })?;
                Some((algo.to_string(), digest.to_string()))
            };
            let size = if size.is_empty() {
                None
            } else {
                Some(size.parse::<u64>().map_err(|_| {
                    self.metadata_err(path, format!("row {}: bad size {size:?}", n + 1))
                })?)
            };
            if rows
                .insert(file.clone(), RecordRow { hash, size })
                .is_some()
            {
                return Err(self.metadata_err(path, format!("{file} is listed twice")));
            }
        }
        Ok(rows)
    }

    /// `(script name, module, attr)` of every console and GUI script, in file order.
    fn parse_entry_points(
        &self,
        path: &str,
        text: &str,
    ) -> Result<Vec<(String, String, String)>, WheelError> {
        let err = |name: &str, reason: String| WheelError::EntryPoint {
            wheel: self.wheel.clone(),
            member: path.to_string(),
            name: name.to_string(),
            reason,
        };
        let mut out = Vec::new();
        let mut in_scripts = false;
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                in_scripts = matches!(section.trim(), "console_scripts" | "gui_scripts");
                continue;
            }
            if !in_scripts {
                continue;
            }
            let (name, value) = line
                .split_once('=')
                .ok_or_else(|| err(line, "expected `name = module:attr`".into()))?;
            let name = name.trim();
            // Extras (`[extra]`) do not change the launcher.
            let value = value.split('[').next().unwrap_or(value).trim();
            if name.is_empty()
                || name == "."
                || name == ".."
                || name.contains(['/', '\\', '\0'])
                || name.chars().any(char::is_whitespace)
            {
                return Err(err(name, "not a usable file name".into()));
            }
            if is_reserved_script(name) {
                return Err(err(
                    name,
                    "would shadow the interpreter in the scripts directory".into(),
                ));
            }
            let Some((module, attr)) = value.split_once(':') else {
                return Err(err(
                    name,
                    format!("{value:?} has no callable (`module:attr`)"),
                ));
            };
            let (module, attr) = (module.trim(), attr.trim());
            if !dotted_identifier(module) || !dotted_identifier(attr) {
                return Err(err(name, format!("{value:?} is not `module:attr`")));
            }
            if out.iter().any(|(n, _, _)| n == name) {
                return Err(err(name, "listed twice".into()));
            }
            out.push((name.to_string(), module.to_string(), attr.to_string()));
        }
        Ok(out)
    }

    /// Copies one member to memory (or only hashes it, when indexing), verifying it against
    /// RECORD and rewriting a `#!python` shebang for scripts.
    #[allow(clippy::too_many_arguments)]
    fn copy_member<R: Read + Seek>(
        &self,
        zip: &mut zip::ZipArchive<R>,
        path: &str,
        member: &Member,
        dest: &str,
        algo: Algo,
        expected: &str,
        expected_size: Option<u64>,
        is_script: bool,
    ) -> Result<Installed, WheelError> {
        let mut sink = if self.archive.is_some() {
            Sink::Discard
        } else if member.size <= self.inline_max {
            Sink::Memory(Vec::with_capacity(
                usize::try_from(member.size).unwrap_or(0),
            ))
        } else {
            return Err(WheelError::TooLarge {
                wheel: self.wheel.clone(),
                member: path.to_string(),
                size: member.size,
            });
        };

        let file = zip.by_index(member.index).map_err(self.zip_err(path))?;
        let member_ref = self.member_ref(&file, path, member, is_script)?;
        let shebang = member_ref.shebang.clone();
        let mut reader = HashingReader {
            inner: file,
            hasher: AnyHasher::new(algo),
            count: 0,
            limit: member.size,
            over: false,
        };
        // The new RECORD's sha256 is the old one's for a file copied unchanged.
        let same_bytes = shebang.is_none() && algo == Algo::Sha256;
        let mut writer = HashingWriter {
            inner: &mut sink,
            sha256: (!same_bytes).then(Sha256::new),
            blake3: blake3::Hasher::new(),
            count: 0,
        };
        // A buffer the member's size, up to 256 KiB: most members are small.
        let buf_len = usize::try_from(member.size.clamp(1, 256 << 10)).unwrap_or(256 << 10);
        let copied = copy_rewriting(&mut reader, &mut writer, shebang.as_deref(), buf_len);
        if reader.over {
            return Err(WheelError::SizeMismatch {
                wheel: self.wheel.clone(),
                member: path.to_string(),
                origin: "the zip header",
                expected: member.size,
                actual: reader.count,
            });
        }
        copied.map_err(self.io_err(path))?;
        let (orig_size, digest) = (reader.count, reader.hasher.finish());
        let sha256 = match writer.sha256 {
            Some(h) => <[u8; 32]>::from(h.finalize()),
            None => <[u8; 32]>::try_from(digest.as_slice()).unwrap_or_default(),
        };
        let (size, blake3) = (writer.count, *writer.blake3.finalize().as_bytes());
        if orig_size != member.size || expected_size.is_some_and(|s| s != orig_size) {
            let (origin, expected) = match expected_size {
                Some(s) if s != orig_size => ("RECORD", s),
                _ => ("the zip header", member.size),
            };
            return Err(WheelError::SizeMismatch {
                wheel: self.wheel.clone(),
                member: path.to_string(),
                origin,
                expected,
                actual: orig_size,
            });
        }
        if crate::base64::decode(expected).as_deref() != Some(digest.as_slice()) {
            return Err(WheelError::HashMismatch {
                wheel: self.wheel.clone(),
                member: path.to_string(),
                algorithm: algo.name(),
                expected: expected.to_string(),
                actual: crate::base64::encode_url_safe_nopad(&digest),
            });
        }
        let content = match (sink, self.archive) {
            (Sink::Memory(bytes), _) => Content::Inline(Arc::from(bytes)),
            (Sink::Discard, Some(archive)) => Content::Extracted {
                archive: archive.clone(),
                path: dest.to_string(),
            },
            (Sink::Discard, None) => Content::None,
        };
        Ok(Installed {
            source: path.to_string(),
            mode: member.mode(is_script),
            content,
            size,
            sha256,
            blake3,
            member: Some(member_ref),
        })
    }
}

fn generated(source: &str, bytes: Vec<u8>, mode: u32) -> Installed {
    Installed {
        source: source.to_string(),
        mode,
        size: bytes.len() as u64,
        sha256: Sha256::digest(&bytes).into(),
        blake3: *blake3::hash(&bytes).as_bytes(),
        content: Content::Inline(Arc::from(bytes)),
        member: None,
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sink::Memory(v) => v.write(buf),
            Sink::Discard => Ok(buf.len()),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Hashes what is read, and stops with an error past `limit` bytes (the zip header's size),
/// so a lying header cannot make us hold more than it declared.
struct HashingReader<R> {
    inner: R,
    hasher: AnyHasher,
    count: u64,
    limit: u64,
    over: bool,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        if self.count > self.limit {
            self.over = true;
            return Err(io::Error::other("more bytes than the zip header declares"));
        }
        Ok(n)
    }
}

struct HashingWriter<W> {
    inner: W,
    /// None when the reader's sha256 is this one (nothing rewritten).
    sha256: Option<Sha256>,
    blake3: blake3::Hasher,
    count: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        if let Some(h) = &mut self.sha256 {
            h.update(&buf[..n]);
        }
        self.blake3.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// `r` with a first line starting with `#!python` replaced by `shebang` (the whole line, its
/// line ending included); any other first line is left alone.
fn with_shebang<'r>(mut r: Box<dyn Read + 'r>, shebang: &str) -> io::Result<Box<dyn Read + 'r>> {
    let mut head = Vec::with_capacity(8);
    let mut byte = [0u8; 1];
    while head.len() < 8 && read_byte(&mut r, &mut byte)? {
        head.push(byte[0]);
    }
    if head != b"#!python" {
        return Ok(Box::new(io::Cursor::new(head).chain(r)));
    }
    // Skip the rest of the first line.
    while read_byte(&mut r, &mut byte)? {
        if byte[0] == b'\n' {
            break;
        }
    }
    Ok(Box::new(
        io::Cursor::new(shebang.as_bytes().to_vec()).chain(r),
    ))
}

/// Reads one byte into `byte`; false at the end.
fn read_byte(r: &mut dyn Read, byte: &mut [u8; 1]) -> io::Result<bool> {
    loop {
        match r.read(byte) {
            Ok(n) => return Ok(n == 1),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Copies `r` to `w`; with `shebang`, a first line starting with `#!python` is replaced by
/// it (see [`with_shebang`]).
fn copy_rewriting<R: Read, W: Write>(
    r: &mut R,
    w: &mut W,
    shebang: Option<&str>,
    buf_len: usize,
) -> io::Result<()> {
    let mut r: Box<dyn Read + '_> = match shebang {
        Some(line) => with_shebang(Box::new(r), line)?,
        None => Box::new(r),
    };
    let mut buf = vec![0u8; buf_len];
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        w.write_all(&buf[..n])?;
    }
}

/// `Key: value` fields of an RFC 822-style header block (up to the first blank line);
/// continuation lines are appended to the previous value.
fn headers(text: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = out.last_mut() {
                v.push('\n');
                v.push_str(line.trim());
            }
            continue;
        }
        if let Some((k, v)) = line.split_once(':') {
            out.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    out
}

/// Versions equal per PEP 440 where both parse, else as strings.
fn same_version(a: &str, b: &str) -> bool {
    match (
        pep440_rs::Version::from_str(a),
        pep440_rs::Version::from_str(b),
    ) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

fn is_reserved_script(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("python") else {
        return false;
    };
    // python, python3, python3.13, pythonw
    rest.is_empty()
        || rest == "w"
        || rest
            .split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

fn dotted_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.split('.').all(|part| {
            let mut chars = part.chars();
            chars.next().is_some_and(|c| c == '_' || c.is_alphabetic())
                && chars.all(|c| c == '_' || c.is_alphanumeric())
        })
}

/// `to` relative to the directory `from` (both image paths): `../../../bin/x`.
fn relative(from: &str, to: &str) -> String {
    let f: Vec<&str> = from.split('/').filter(|c| !c.is_empty()).collect();
    let t: Vec<&str> = to.split('/').filter(|c| !c.is_empty()).collect();
    let common = f.iter().zip(&t).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<&str> = vec![".."; f.len() - common];
    parts.extend(&t[common..]);
    parts.join("/")
}

/// A CSV field as Python's `csv.writer` (QUOTE_MINIMAL) writes it.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Parses CSV as Python's `csv.reader` with the default dialect: quoted fields with `""`
/// escapes, LF or CRLF rows; blank lines skipped.
fn parse_csv(text: &str) -> Result<Vec<Vec<String>>, String> {
    let mut rows = Vec::new();
    let mut row: Vec<String> = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut in_quotes = false;
    let mut any = false; // the current row has content
    while let Some(c) = chars.next() {
        if in_quotes {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    field.push('"');
                } else {
                    in_quotes = false;
                }
            } else {
                field.push(c);
            }
            continue;
        }
        match c {
            '"' if field.is_empty() => {
                in_quotes = true;
                any = true;
            }
            ',' => {
                row.push(std::mem::take(&mut field));
                any = true;
            }
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' | '\r' => {
                if any || !field.is_empty() {
                    row.push(std::mem::take(&mut field));
                    rows.push(std::mem::take(&mut row));
                }
                any = false;
            }
            _ => {
                field.push(c);
                any = true;
            }
        }
    }
    if in_quotes {
        return Err("unterminated quoted field".into());
    }
    if any || !field.is_empty() {
        row.push(field);
        rows.push(row);
    }
    Ok(rows)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::io::Cursor;
    use zip::write::SimpleFileOptions;

    /// A wheel built in memory: (member, content, unix mode).
    struct TestWheel {
        files: Vec<(String, Vec<u8>, u32)>,
        /// Members added after RECORD is computed (not listed).
        unlisted: Vec<(String, Vec<u8>)>,
        /// Replace RECORD rows: (member, row text).
        record_override: Vec<(String, String)>,
        reverse: bool,
        /// Members written uncompressed.
        stored: Vec<String>,
        time: zip::DateTime,
        dist_info: String,
    }

    impl TestWheel {
        fn new(dist_info: &str, root_is_purelib: bool) -> Self {
            let mut w = Self {
                files: Vec::new(),
                unlisted: Vec::new(),
                record_override: Vec::new(),
                reverse: false,
                stored: Vec::new(),
                time: zip::DateTime::default(),
                dist_info: dist_info.into(),
            };
            let (name, version) = dist_info
                .trim_end_matches(".dist-info")
                .split_once('-')
                .unwrap();
            w.file(
                &format!("{dist_info}/METADATA"),
                format!(
                    "Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\nA description.\n"
                )
                .as_bytes(),
                0o644,
            );
            w.file(
                &format!("{dist_info}/WHEEL"),
                format!(
                    "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: {root_is_purelib}\nTag: py3-none-any\n"
                )
                .as_bytes(),
                0o644,
            );
            w
        }
        fn file(&mut self, name: &str, body: &[u8], mode: u32) -> &mut Self {
            self.files.push((name.into(), body.to_vec(), mode));
            self
        }
        fn bytes(&self) -> Vec<u8> {
            let mut record = String::new();
            for (name, body, _) in &self.files {
                let row = self
                    .record_override
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, r)| r.clone())
                    .unwrap_or_else(|| {
                        format!(
                            "{},sha256={},{}",
                            csv_field(name),
                            crate::base64::encode_url_safe_nopad(&Sha256::digest(body)),
                            body.len()
                        )
                    });
                record.push_str(&row);
                record.push_str("\r\n");
            }
            record.push_str(&format!("{}/RECORD,,\r\n", self.dist_info));
            let mut all: Vec<(String, Vec<u8>, u32)> = self.files.clone();
            all.extend(
                self.unlisted
                    .iter()
                    .map(|(n, b)| (n.clone(), b.clone(), 0o644)),
            );
            all.push((
                format!("{}/RECORD", self.dist_info),
                record.into_bytes(),
                0o644,
            ));
            if self.reverse {
                all.reverse();
            }
            let mut z = zip::ZipWriter::new(Cursor::new(Vec::new()));
            for (name, body, mode) in &all {
                let method = if self.stored.contains(name) {
                    zip::CompressionMethod::Stored
                } else {
                    zip::CompressionMethod::Deflated
                };
                let opts = SimpleFileOptions::default()
                    .compression_method(method)
                    .last_modified_time(self.time)
                    .unix_permissions(*mode);
                z.start_file(name.as_str(), opts).unwrap();
                z.write_all(body).unwrap();
            }
            z.finish().unwrap().into_inner()
        }
    }

    fn scheme() -> Scheme {
        Scheme::debian_system((3, 13))
    }
    const SP: &str = "usr/local/lib/python3.13/dist-packages";

    fn install(w: &TestWheel, filename: &str) -> Result<InstalledWheel, WheelError> {
        install_wheel(Cursor::new(w.bytes()), filename, &scheme(), true)
    }
    fn body(e: &PlannedEntry) -> &[u8] {
        match &e.content {
            Content::Inline(b) => b,
            other => panic!("not inline: {other:?}"),
        }
    }
    fn find<'a>(w: &'a InstalledWheel, path: &str) -> &'a PlannedEntry {
        w.entries
            .iter()
            .find(|e| e.header.path == path)
            .unwrap_or_else(|| panic!("no {path} in {:?}", paths(w)))
    }
    fn paths(w: &InstalledWheel) -> Vec<&str> {
        w.entries.iter().map(|e| e.header.path.as_str()).collect()
    }
    fn record(w: &InstalledWheel) -> String {
        String::from_utf8(body(find(w, &format!("{}/RECORD", w.dist_info))).to_vec()).unwrap()
    }

    fn pure() -> TestWheel {
        let mut w = TestWheel::new("demo_pkg-1.0.dist-info", true);
        w.file("demo_pkg/__init__.py", b"print('hi')\n", 0o644)
            .file("demo_pkg/tool.sh", b"#!/bin/sh\necho\n", 0o744)
            .file("demo_pkg/data/x,y.txt", b"comma\n", 0o600);
        w
    }

    #[test]
    fn pure_wheel_installs_into_purelib_with_new_record() {
        let w = install(&pure(), "demo_pkg-1.0-py3-none-any.whl").unwrap();
        assert_eq!(w.name, "demo_pkg");
        assert_eq!(w.version, "1.0");
        assert_eq!(w.dist_info, format!("{SP}/demo_pkg-1.0.dist-info"));
        assert_eq!(
            paths(&w),
            [
                format!("{SP}/demo_pkg-1.0.dist-info/INSTALLER"),
                format!("{SP}/demo_pkg-1.0.dist-info/METADATA"),
                format!("{SP}/demo_pkg-1.0.dist-info/RECORD"),
                format!("{SP}/demo_pkg-1.0.dist-info/REQUESTED"),
                format!("{SP}/demo_pkg-1.0.dist-info/WHEEL"),
                format!("{SP}/demo_pkg/__init__.py"),
                format!("{SP}/demo_pkg/data/x,y.txt"),
                format!("{SP}/demo_pkg/tool.sh"),
            ]
        );
        assert_eq!(
            body(find(&w, &format!("{SP}/demo_pkg/__init__.py"))),
            b"print('hi')\n"
        );
        assert_eq!(
            body(find(&w, &format!("{w_}/INSTALLER", w_ = w.dist_info))),
            b"composer\n"
        );
        let init = b"print('hi')\n";
        let expected = format!(
            "\"demo_pkg/data/x,y.txt\",sha256={},6\n",
            crate::base64::encode_url_safe_nopad(&Sha256::digest(b"comma\n"))
        );
        let rec = record(&w);
        assert!(rec.contains(&expected), "{rec}");
        assert!(rec.contains(&format!(
            "demo_pkg/__init__.py,sha256={},{}\n",
            crate::base64::encode_url_safe_nopad(&Sha256::digest(init)),
            init.len()
        )));
        assert!(rec.contains("demo_pkg-1.0.dist-info/RECORD,,\n"));
        assert!(rec.contains(&format!(
            "demo_pkg-1.0.dist-info/INSTALLER,sha256={},9\n",
            crate::base64::encode_url_safe_nopad(&Sha256::digest(b"composer\n"))
        )));
        assert!(rec.contains(&format!(
            "demo_pkg-1.0.dist-info/REQUESTED,sha256={},0\n",
            crate::base64::encode_url_safe_nopad(&Sha256::digest(b""))
        )));
        let rows: Vec<&str> = rec.lines().collect();
        let mut sorted = rows.clone();
        sorted.sort_by(|a, b| {
            let p = |r: &str| parse_csv(r).unwrap()[0][0].clone();
            p(a).cmp(&p(b))
        });
        assert_eq!(rows, sorted, "rows sorted by path");
        assert_eq!(rows.len(), 8);
        assert!(!rec.contains('\r'));
        for e in &w.entries {
            assert_eq!((e.header.uid, e.header.gid), (0, 0));
            let EntryKind::File { size } = e.header.kind else {
                panic!()
            };
            assert_eq!(size, body(e).len() as u64);
            assert_eq!(e.content_hash, *blake3::hash(body(e)).as_bytes());
        }
        // Not requested: no REQUESTED, and RECORD does not list it.
        let w2 = install_wheel(
            Cursor::new(pure().bytes()),
            "demo_pkg-1.0-py3-none-any.whl",
            &scheme(),
            false,
        )
        .unwrap();
        assert!(!paths(&w2).iter().any(|p| p.ends_with("REQUESTED")));
        assert!(!record(&w2).contains("REQUESTED"));
    }

    #[test]
    fn modes_follow_the_x_bits_only() {
        let w = install(&pure(), "demo_pkg-1.0-py3-none-any.whl").unwrap();
        assert_eq!(
            find(&w, &format!("{SP}/demo_pkg/tool.sh")).header.mode,
            0o755,
            "0744 → 0755"
        );
        assert_eq!(
            find(&w, &format!("{SP}/demo_pkg/data/x,y.txt")).header.mode,
            0o644,
            "0600 → 0644"
        );
        assert_eq!(
            find(&w, &format!("{SP}/demo_pkg/__init__.py")).header.mode,
            0o644
        );
        let mut t = TestWheel::new("m-1.dist-info", true);
        t.file("m/a", b"a", 0o100_010)
            .file("m/b", b"b", 0o100_666)
            .file("m/c", b"c", 0o4755);
        let w = install(&t, "m-1-py3-none-any.whl").unwrap();
        assert_eq!(find(&w, &format!("{SP}/m/a")).header.mode, 0o755);
        assert_eq!(find(&w, &format!("{SP}/m/b")).header.mode, 0o644);
        assert_eq!(
            find(&w, &format!("{SP}/m/c")).header.mode,
            0o755,
            "no setuid"
        );
    }

    #[test]
    fn platlib_wheel_with_extension_module() {
        let mut t = TestWheel::new("fast-2.0.dist-info", false);
        t.file(
            "fast/_speed.cpython-313-x86_64-linux-gnu.so",
            b"\x7fELF....",
            0o755,
        )
        .file("fast/__init__.py", b"", 0o644);
        let w = install(&t, "fast-2.0-cp313-cp313-manylinux_2_17_x86_64.whl").unwrap();
        let so = find(
            &w,
            &format!("{SP}/fast/_speed.cpython-313-x86_64-linux-gnu.so"),
        );
        assert_eq!(so.header.mode, 0o755);
        // With distinct lib directories, a platlib wheel lands in platlib.
        let mut s = scheme();
        s.platlib = "usr/lib/platlib".into();
        let w = install_wheel(
            Cursor::new(t.bytes()),
            "fast-2.0-cp313-cp313-linux_x86_64.whl",
            &s,
            false,
        )
        .unwrap();
        assert_eq!(w.dist_info, "usr/lib/platlib/fast-2.0.dist-info");
        assert!(paths(&w).contains(&"usr/lib/platlib/fast/__init__.py"));
        assert!(record(&w).contains("fast/__init__.py,"));
    }

    #[test]
    fn data_directories_are_spread() {
        let mut t = TestWheel::new("tool-0.1.dist-info", true);
        t.file("tool/__init__.py", b"", 0o644)
            .file(
                "tool-0.1.data/scripts/run",
                b"#!python -u\nimport tool\n",
                0o644,
            )
            .file(
                "tool-0.1.data/scripts/runw",
                b"#!pythonw\r\nimport tool\n",
                0o755,
            )
            .file("tool-0.1.data/scripts/sh", b"#!/bin/sh\necho\n", 0o644)
            .file("tool-0.1.data/scripts/short", b"#!py", 0o644)
            .file("tool-0.1.data/headers/tool.h", b"int x;\n", 0o644)
            .file("tool-0.1.data/data/share/man/man1/tool.1", b".TH\n", 0o644)
            .file("tool-0.1.data/purelib/tool_extra.py", b"x=1\n", 0o644)
            .file("tool-0.1.data/platlib/tool_plat.py", b"y=2\n", 0o644);
        let w = install(&t, "tool-0.1-py3-none-any.whl").unwrap();
        let run = find(&w, "usr/local/bin/run");
        assert_eq!(body(run), b"#!/usr/bin/python3.13\nimport tool\n");
        assert_eq!(run.header.mode, 0o755);
        assert_eq!(
            body(find(&w, "usr/local/bin/runw")),
            b"#!/usr/bin/python3.13\nimport tool\n"
        );
        let sh = find(&w, "usr/local/bin/sh");
        assert_eq!(body(sh), b"#!/bin/sh\necho\n");
        assert_eq!(sh.header.mode, 0o755, "every script is executable");
        assert_eq!(body(find(&w, "usr/local/bin/short")), b"#!py");
        assert_eq!(
            body(find(&w, "usr/local/include/python3.13/tool/tool.h")),
            b"int x;\n"
        );
        assert_eq!(body(find(&w, "usr/local/share/man/man1/tool.1")), b".TH\n");
        assert_eq!(body(find(&w, &format!("{SP}/tool_extra.py"))), b"x=1\n");
        assert_eq!(body(find(&w, &format!("{SP}/tool_plat.py"))), b"y=2\n");
        assert!(!paths(&w).iter().any(|p| p.contains(".data")));
        let rec = record(&w);
        assert!(
            rec.contains(&format!(
                "../../../bin/run,sha256={},{}\n",
                crate::base64::encode_url_safe_nopad(&Sha256::digest(
                    b"#!/usr/bin/python3.13\nimport tool\n"
                )),
                34
            )),
            "{rec}"
        );
        assert!(rec.contains("../../../include/python3.13/tool/tool.h,"));
        assert!(rec.contains("../../../share/man/man1/tool.1,"));
        assert!(rec.contains("tool_extra.py,"));

        // A venv scheme.
        let venv = Scheme::venv("/opt/venv", (3, 13));
        let w = install_wheel(
            Cursor::new(t.bytes()),
            "tool-0.1-py3-none-any.whl",
            &venv,
            false,
        )
        .unwrap();
        assert_eq!(
            body(find(&w, "opt/venv/bin/run")),
            b"#!/opt/venv/bin/python\nimport tool\n"
        );
        assert!(paths(&w).contains(&"opt/venv/include/site/python3.13/tool/tool.h"));
        assert!(paths(&w).contains(&"opt/venv/lib/python3.13/site-packages/tool_extra.py"));
        assert!(record(&w).contains("../../../bin/run,"));
    }

    #[test]
    fn unknown_data_directory_is_an_error() {
        let mut t = TestWheel::new("tool-0.1.dist-info", true);
        t.file("tool-0.1.data/lib/x", b"", 0o644);
        let err = install(&t, "tool-0.1-py3-none-any.whl").unwrap_err();
        assert!(matches!(err, WheelError::DataDir { .. }), "{err}");
        assert_eq!(err.member(), "tool-0.1.data/lib/x");
        let mut t = TestWheel::new("tool-0.1.dist-info", true);
        t.file("tool-0.1.data/scripts", b"", 0o644);
        assert!(matches!(
            install(&t, "tool-0.1-py3-none-any.whl").unwrap_err(),
            WheelError::DataDir { .. }
        ));
    }

    #[test]
    fn entry_points_become_launchers() {
        let mut t = TestWheel::new("cli-3.0.dist-info", true);
        t.file("cli/__init__.py", b"", 0o644).file(
            "cli-3.0.dist-info/entry_points.txt",
            b"[console_scripts]\ncli = cli.main:run\ncli-obj = cli.main:App.start [extra]\n\n# comment\n[gui_scripts]\ncli-gui=cli.gui:main\n\n[other.group]\nnot-a-script = x:y\n",
            0o644,
        );
        let w = install(&t, "cli-3.0-py3-none-any.whl").unwrap();
        let cli = find(&w, "usr/local/bin/cli");
        assert_eq!(cli.header.mode, 0o755);
        assert_eq!(
            std::str::from_utf8(body(cli)).unwrap(),
            "#!/usr/bin/python3.13\n# -*- coding: utf-8 -*-\nimport re\nimport sys\nfrom cli.main import run\nif __name__ == \"__main__\":\n    sys.argv[0] = re.sub(r\"(-script\\.pyw|\\.exe)?$\", \"\", sys.argv[0])\n    sys.exit(run())\n"
        );
        let obj = std::str::from_utf8(body(find(&w, "usr/local/bin/cli-obj"))).unwrap();
        assert!(obj.contains("from cli.main import App\n"), "{obj}");
        assert!(obj.contains("sys.exit(App.start())\n"), "{obj}");
        let gui = std::str::from_utf8(body(find(&w, "usr/local/bin/cli-gui"))).unwrap();
        assert!(gui.contains("from cli.gui import main\n"));
        assert!(!paths(&w).iter().any(|p| p.ends_with("not-a-script")));
        let rec = record(&w);
        assert!(rec.contains(&format!(
            "../../../bin/cli,sha256={},{}\n",
            crate::base64::encode_url_safe_nopad(&Sha256::digest(body(cli))),
            body(cli).len()
        )));
        assert!(rec.contains("../../../bin/cli-gui,"));
        // entry_points.txt itself is installed.
        find(&w, &format!("{}/entry_points.txt", w.dist_info));

        for (bad, what) in [
            ("x = mod\n", "no callable"),
            ("python3 = m:f\n", "shadow"),
            ("a/b = m:f\n", "file name"),
            ("x = m:1f\n", "module:attr"),
        ] {
            let mut t = TestWheel::new("cli-3.0.dist-info", true);
            t.file(
                "cli-3.0.dist-info/entry_points.txt",
                format!("[console_scripts]\n{bad}").as_bytes(),
                0o644,
            );
            let err = install(&t, "cli-3.0-py3-none-any.whl").unwrap_err();
            assert!(matches!(err, WheelError::EntryPoint { .. }), "{err}");
            assert!(err.to_string().contains(what), "{err}");
        }
        // A launcher that collides with a .data script.
        let mut t = TestWheel::new("cli-3.0.dist-info", true);
        t.file("cli-3.0.data/scripts/cli", b"#!python\n", 0o755)
            .file(
                "cli-3.0.dist-info/entry_points.txt",
                b"[console_scripts]\ncli = cli:main\n",
                0o644,
            );
        let err = install(&t, "cli-3.0-py3-none-any.whl").unwrap_err();
        assert!(matches!(err, WheelError::Duplicate { .. }), "{err}");
    }

    #[test]
    fn bad_record_hash_names_wheel_and_file() {
        let mut t = pure();
        t.record_override.push((
            "demo_pkg/__init__.py".into(),
            format!(
                "demo_pkg/__init__.py,sha256={},12",
                crate::base64::encode_url_safe_nopad(&Sha256::digest(b"something else"))
            ),
        ));
        let err = install(&t, "demo_pkg-1.0-py3-none-any.whl").unwrap_err();
        assert!(matches!(err, WheelError::HashMismatch { .. }), "{err}");
        let msg = err.to_string();
        assert!(msg.contains("demo_pkg-1.0-py3-none-any.whl"), "{msg}");
        assert!(msg.contains("demo_pkg/__init__.py"), "{msg}");

        let mut t = pure();
        t.record_override.push((
            "demo_pkg/__init__.py".into(),
            format!(
                "demo_pkg/__init__.py,sha256={},99",
                crate::base64::encode_url_safe_nopad(&Sha256::digest(b"print('hi')\n"))
            ),
        ));
        let err = install(&t, "demo_pkg-1.0-py3-none-any.whl").unwrap_err();
        assert!(
            matches!(
                err,
                WheelError::SizeMismatch {
                    origin: "RECORD",
                    expected: 99,
                    actual: 12,
                    ..
                }
            ),
            "{err}"
        );

        let mut t = pure();
        t.record_override.push((
            "demo_pkg/__init__.py".into(),
            format!(
                "demo_pkg/__init__.py,md5={},12",
                crate::base64::encode_url_safe_nopad(&[0; 16])
            ),
        ));
        let err = install(&t, "demo_pkg-1.0-py3-none-any.whl").unwrap_err();
        assert!(matches!(err, WheelError::UnsupportedHash { .. }), "{err}");

        // sha512 is accepted.
        let mut t = pure();
        t.record_override.push((
            "demo_pkg/__init__.py".into(),
            format!(
                "demo_pkg/__init__.py,sha512={},12",
                crate::base64::encode_url_safe_nopad(&Sha512::digest(b"print('hi')\n"))
            ),
        ));
        install(&t, "demo_pkg-1.0-py3-none-any.whl").unwrap();
    }

    #[test]
    fn file_missing_from_record_is_an_error() {
        let mut t = pure();
        t.unlisted
            .push(("demo_pkg/sneaky.py".into(), b"import os\n".to_vec()));
        let err = install(&t, "demo_pkg-1.0-py3-none-any.whl").unwrap_err();
        assert!(matches!(err, WheelError::NotInRecord { .. }), "{err}");
        assert_eq!(err.member(), "demo_pkg/sneaky.py");
        assert_eq!(err.wheel(), "demo_pkg-1.0-py3-none-any.whl");
        // Listed without a hash.
        let mut t = pure();
        t.record_override.push((
            "demo_pkg/__init__.py".into(),
            "demo_pkg/__init__.py,,".into(),
        ));
        assert!(matches!(
            install(&t, "demo_pkg-1.0-py3-none-any.whl").unwrap_err(),
            WheelError::NotInRecord { .. }
        ));
        // Signatures need no row and are not installed.
        let mut t = pure();
        t.unlisted
            .push(("demo_pkg-1.0.dist-info/RECORD.jws".into(), b"sig".to_vec()));
        let w = install(&t, "demo_pkg-1.0-py3-none-any.whl").unwrap();
        assert!(!paths(&w).iter().any(|p| p.ends_with("RECORD.jws")));
    }

    #[test]
    fn unsafe_paths_are_rejected() {
        for (member, reason) in [
            ("../evil.py", "`..`"),
            ("demo_pkg/../../evil.py", "`..`"),
            ("/etc/passwd", "absolute"),
            ("demo_pkg\\evil.py", "backslash"),
            ("demo_pkg//x.py", "empty"),
            ("./x.py", "`.`"),
            ("demo_pkg-1.0.data/data/../../../etc/x", "`..`"),
            ("C:/x.py", "drive"),
        ] {
            let mut t = pure();
            t.file(member, b"x", 0o644);
            let err = install(&t, "demo_pkg-1.0-py3-none-any.whl").unwrap_err();
            assert!(
                matches!(err, WheelError::UnsafePath { .. }),
                "{member}: {err}"
            );
            assert_eq!(err.member(), member);
            assert!(err.to_string().contains(reason), "{err}");
        }
    }

    #[test]
    fn dist_info_must_be_unique_and_match() {
        let mut t = pure();
        t.file(
            "other-2.0.dist-info/METADATA",
            b"Name: other\nVersion: 2.0\n",
            0o644,
        );
        let err = install(&t, "demo_pkg-1.0-py3-none-any.whl").unwrap_err();
        assert!(matches!(err, WheelError::DistInfo { .. }), "{err}");
        assert!(err.to_string().contains("several"), "{err}");

        let err = install(&pure(), "other-1.0-py3-none-any.whl").unwrap_err();
        assert!(matches!(err, WheelError::DistInfo { .. }), "{err}");

        let err = install(&pure(), "demo_pkg-1.1-py3-none-any.whl").unwrap_err();
        assert!(err.to_string().contains("version"), "{err}");

        // Normalized names and versions match: Demo.Pkg / demo-pkg, 1.0 / 1.0.0.
        install(&pure(), "Demo.Pkg-1.0.0-py3-none-any.whl").unwrap();

        let mut t = TestWheel::new("demo_pkg-1.0.dist-info", true);
        t.files.retain(|(n, _, _)| !n.ends_with("/WHEEL"));
        let err = install(&t, "demo_pkg-1.0-py3-none-any.whl").unwrap_err();
        assert_eq!(err.member(), "demo_pkg-1.0.dist-info/WHEEL");

        let mut t = TestWheel::new("demo_pkg-1.0.dist-info", true);
        t.files.clear();
        t.file("demo_pkg/x.py", b"", 0o644);
        t.dist_info = "elsewhere".into();
        let err = install(&t, "demo_pkg-1.0-py3-none-any.whl").unwrap_err();
        assert!(err.to_string().contains("no .dist-info"), "{err}");

        let err = install(&pure(), "demo_pkg-1.0.whl").unwrap_err();
        assert!(matches!(err, WheelError::Filename { .. }), "{err}");
    }

    #[test]
    fn wheel_version_two_is_refused() {
        let mut t = pure();
        for f in &mut t.files {
            if f.0.ends_with("/WHEEL") {
                f.1 = b"Wheel-Version: 2.0\nRoot-Is-Purelib: true\n".to_vec();
            }
        }
        let err = install(&t, "demo_pkg-1.0-py3-none-any.whl").unwrap_err();
        assert!(matches!(err, WheelError::WheelVersion { .. }), "{err}");
        assert_eq!(err.member(), "demo_pkg-1.0.dist-info/WHEEL");
        // 1.9 is fine (a newer minor only warrants a warning).
        let mut t = pure();
        for f in &mut t.files {
            if f.0.ends_with("/WHEEL") {
                f.1 = b"Wheel-Version: 1.9\nRoot-Is-Purelib: true\n".to_vec();
            }
        }
        install(&t, "demo_pkg-1.0-py3-none-any.whl").unwrap();
    }

    #[test]
    fn output_ignores_member_order_and_timestamps() {
        let mut a = pure();
        a.file("demo_pkg-1.0.data/scripts/s", b"#!python\nx\n", 0o644)
            .file(
                "demo_pkg-1.0.dist-info/entry_points.txt",
                b"[console_scripts]\nz = demo_pkg:main\na = demo_pkg:main\n",
                0o644,
            );
        let mut b = TestWheel {
            files: a.files.iter().rev().cloned().collect(),
            unlisted: Vec::new(),
            record_override: Vec::new(),
            reverse: true,
            stored: Vec::new(),
            time: zip::DateTime::from_date_and_time(2024, 5, 6, 7, 8, 10).unwrap(),
            dist_info: a.dist_info.clone(),
        };
        assert_ne!(a.bytes(), b.bytes());
        // Where members lie depends on the zip's layout; what is installed does not.
        let output = |t: &TestWheel| InstalledWheel {
            members: BTreeMap::new(),
            ..install(t, "demo_pkg-1.0-py3-none-any.whl").unwrap()
        };
        let (x, y) = (output(&a), output(&b));
        assert_eq!(x, y);
        assert_eq!(record(&x), record(&y));
        b.time = zip::DateTime::from_date_and_time(2001, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(output(&b), x);
        let mut sorted = paths(&x);
        sorted.sort_by(|p, q| p.as_bytes().cmp(q.as_bytes()));
        assert_eq!(paths(&x), sorted);
    }

    #[test]
    fn large_files_need_an_index() {
        let mut t = pure();
        t.file("demo_pkg/big.bin", b"0123456789abcdef0", 0o644);
        let s = scheme();
        let err = Installer::new("demo_pkg-1.0-py3-none-any.whl", &s, None, 16)
            .run(Cursor::new(t.bytes()), false, false)
            .unwrap_err();
        assert!(matches!(err, WheelError::TooLarge { .. }), "{err}");
        let archive = composer_store::Digest::of_bytes(b"wheel");
        assert!(
            Installer::new("demo_pkg-1.0-py3-none-any.whl", &s, Some(&archive), 16)
                .run(Cursor::new(t.bytes()), false, false)
                .is_ok()
        );
    }

    #[test]
    fn an_indexed_wheel_reads_back_what_install_holds() {
        let mut t = pure();
        t.file(
            "demo_pkg-1.0.data/scripts/tool",
            b"#!python -u\nprint('tool')\n",
            0o644,
        )
        .file(
            "demo_pkg-1.0.data/scripts/plain",
            b"#!/bin/sh\necho\n",
            0o644,
        )
        .file("demo_pkg-1.0.data/scripts/short", b"#!py", 0o644)
        .file("demo_pkg/empty.py", b"", 0o644)
        .file("demo_pkg/big.bin", &vec![7u8; 300 << 10], 0o755)
        .file(
            "demo_pkg-1.0.dist-info/entry_points.txt",
            b"[console_scripts]\ndemo = demo_pkg:main\n",
            0o644,
        );
        t.stored = vec![
            "demo_pkg/__init__.py".into(),
            "demo_pkg-1.0.data/scripts/plain".into(),
        ];
        let bytes = t.bytes();
        let filename = "demo_pkg-1.0-py3-none-any.whl";
        let held = install_wheel(Cursor::new(&bytes), filename, &scheme(), true).unwrap();
        let archive = composer_store::Digest::of_bytes(&bytes);
        let ix = index_wheel(Cursor::new(&bytes), filename, &scheme(), true, &archive).unwrap();
        assert_eq!(ix.members, held.members);
        assert_eq!(
            locate_wheel(Cursor::new(&bytes), filename, &scheme()).unwrap(),
            ix.members,
            "locating finds what indexing does, without reading members"
        );
        assert_eq!(ix.entries.len(), held.entries.len());
        let deflated: Vec<bool> = ix.members.values().map(|m| m.deflated).collect();
        assert!(deflated.contains(&true) && deflated.contains(&false));
        for (i, h) in ix.entries.iter().zip(&held.entries) {
            assert_eq!((&i.header, i.content_hash), (&h.header, h.content_hash));
            let path = &i.header.path;
            let got = match (&i.content, ix.members.get(path)) {
                (
                    Content::Extracted {
                        archive: a,
                        path: p,
                    },
                    Some(m),
                ) => {
                    assert_eq!((a, p), (&archive, path));
                    let mut stored = Cursor::new(&bytes);
                    stored.set_position(m.data_start);
                    let mut out = Vec::new();
                    m.open(stored).unwrap().read_to_end(&mut out).unwrap();
                    out
                }
                (Content::Inline(b), None) => b.to_vec(),
                other => panic!("{path}: {other:?}"),
            };
            assert_eq!(got, body(h), "{path}");
        }
        let tool = find(&ix, "usr/local/bin/tool");
        assert_eq!(
            ix.members[&tool.header.path].shebang.as_deref(),
            Some("#!/usr/bin/python3.13\n")
        );
        assert!(
            !ix.members.contains_key("usr/local/bin/demo"),
            "launchers are generated"
        );
    }

    #[test]
    fn a_surveyed_wheel_once_read_lists_what_indexing_does() {
        let mut t = pure();
        t.file(
            "demo_pkg-1.0.data/scripts/tool",
            b"#!python -u\nprint('tool')\n",
            0o644,
        )
        .file("demo_pkg/big.bin", &vec![7u8; 300 << 10], 0o755)
        .file(
            "demo_pkg-1.0.dist-info/entry_points.txt",
            b"[console_scripts]\ndemo = demo_pkg:main\n",
            0o644,
        );
        t.stored = vec!["demo_pkg/__init__.py".into()];
        let bytes = t.bytes();
        let filename = "demo_pkg-1.0-py3-none-any.whl";
        let archive = composer_store::Digest::of_bytes(&bytes);
        let ix = index_wheel(Cursor::new(&bytes), filename, &scheme(), true, &archive).unwrap();
        let mut sv =
            survey_wheel(Cursor::new(&bytes), filename, &scheme(), true, &archive).unwrap();
        assert!(ix.pending.is_empty());
        assert_eq!(sv.members, ix.members);
        let pending: Vec<&str> = sv.pending.keys().map(String::as_str).collect();
        assert!(pending.contains(&"usr/local/lib/python3.13/dist-packages/demo_pkg/big.bin"));
        assert!(
            !pending.contains(&"usr/local/bin/tool"),
            "scripts are rewritten, so read now: {pending:?}"
        );
        assert!(
            !pending.iter().any(|p| p.ends_with("/RECORD")),
            "generated files are not pending"
        );
        // Reading each pending file gives RECORD's sha256 and the blake3 indexing found.
        for e in &mut sv.entries {
            let Some(sha) = sv.pending.get(&e.header.path) else {
                continue;
            };
            assert_eq!(e.content_hash, [0; 32]);
            let m = &sv.members[&e.header.path];
            let mut stored = Cursor::new(&bytes);
            stored.set_position(m.data_start);
            let mut out = Vec::new();
            m.open(stored).unwrap().read_to_end(&mut out).unwrap();
            assert_eq!(<[u8; 32]>::from(Sha256::digest(&out)), *sha);
            e.content_hash = *blake3::hash(&out).as_bytes();
        }
        assert_eq!(sv.entries, ix.entries, "same listing, RECORD included");

        // A bad RECORD hash is not seen by the survey: its reader must check.
        let mut bad = pure();
        let size = bad
            .files
            .iter()
            .find(|f| f.0 == "demo_pkg/__init__.py")
            .map(|f| f.1.len())
            .unwrap();
        let wrong = Sha256::digest(b"something else");
        bad.record_override = vec![(
            "demo_pkg/__init__.py".into(),
            format!(
                "demo_pkg/__init__.py,sha256={},{size}",
                crate::base64::encode_url_safe_nopad(&wrong)
            ),
        )];
        let bytes = bad.bytes();
        assert!(index_wheel(Cursor::new(&bytes), filename, &scheme(), true, &archive).is_err());
        let sv = survey_wheel(Cursor::new(&bytes), filename, &scheme(), true, &archive).unwrap();
        assert_eq!(
            sv.pending["usr/local/lib/python3.13/dist-packages/demo_pkg/__init__.py"],
            <[u8; 32]>::from(wrong)
        );
    }

    #[test]
    fn helpers() {
        assert_eq!(crate::base64::encode_url_safe_nopad(b""), "");
        assert_eq!(crate::base64::encode_url_safe_nopad(b"f"), "Zg");
        assert_eq!(crate::base64::encode_url_safe_nopad(b"fo"), "Zm8");
        assert_eq!(crate::base64::encode_url_safe_nopad(b"foo"), "Zm9v");
        assert_eq!(crate::base64::encode_url_safe_nopad(&[0xfb, 0xff]), "-_8");
        for n in 0..70u8 {
            let v: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37)).collect();
            assert_eq!(
                crate::base64::decode(&crate::base64::encode_url_safe_nopad(&v)).unwrap(),
                v
            );
        }
        assert_eq!(crate::base64::decode("Zm8=").unwrap(), b"fo");
        // Either alphabet decodes to the same bytes (the digest is what is compared).
        assert_eq!(crate::base64::decode("Zm+v"), crate::base64::decode("Zm-v"));
        // sha256 of "" as pip writes it.
        assert_eq!(
            crate::base64::encode_url_safe_nopad(&Sha256::digest(b"")),
            "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"
        );
        assert_eq!(normalize_name("Foo.Bar__baz-"), "foo-bar-baz");
        assert_eq!(relative(SP, "usr/local/bin/x"), "../../../bin/x");
        assert_eq!(relative(SP, &format!("{SP}/a/b")), "a/b");
        assert_eq!(
            parse_csv("a,b,c\r\n\"x,\"\"y\",,\n\nlast,1,2").unwrap(),
            vec![
                vec!["a", "b", "c"],
                vec!["x,\"y", "", ""],
                vec!["last", "1", "2"]
            ]
        );
        assert!(is_reserved_script("python3.13"));
        assert!(!is_reserved_script("python-tool"));
    }
}
