//! `.deb` archives to normalized entries, in one streaming pass and without dpkg.
//!
//! A `.deb` is read strictly per `deb(5)` (dpkg 1.21): an `ar` archive whose members are, in
//! order, `debian-binary` (format 2.x), `control.tar[.gz|.xz|.zst]` and
//! `data.tar[.gz|.xz|.zst]`. Members named `_…` before control or data are skipped, members
//! after data are ignored, anything else is an error. The tar streams are parsed here (v7,
//! ustar, GNU long names and links, PAX `path`/`linkpath`/`size`/`uid`/`gid`) with bounded
//! buffers: long names are capped, file contents stream through blake3 (and, for packages
//! without an `md5sums` member, MD5) and, for [`extract_deb`], into files on disk. Nothing the
//! size of a member is ever held in memory.
//!
//! Paths are normalized (`./usr/bin/x` → `usr/bin/x`; absolute paths, `..`, `.`, empty
//! components and NUL are errors) and, with [`PathMap::merged_usr`], mapped into merged /usr:
//! `bin/x` → `usr/bin/x`, and likewise `sbin`, `lib`, `lib32`, `lib64`, `libx32`. The
//! top-level directories themselves (or base-files' `bin -> usr/bin` links) are dropped: the
//! links are synthesized once per image by [`super::synth::merged_usr_links`]. The dpkg
//! database keeps the paths as shipped, so [`DebListing::md5sums`] is never remapped.
//!
//! Only regular files, hard links, symlinks and directories are accepted. A symlink may point
//! anywhere (absolute targets such as `/etc/alternatives/x` are normal), but no later entry of
//! the same package may pass through it (`evil -> /etc`, then `evil/passwd`), and a hard link
//! must name an earlier regular file of the same package.
//!
//! [`DebListing::entries`] are sorted bytewise by image path (the order the layer planner
//! writes them). In each hard-link group the first path in that order carries the content and
//! the others link to it, so a link never precedes its target in a layer.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::OpenOptions;
use std::io::{self, BufReader, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use md5::Digest as _;

use crate::layer::plan::{Content, PlannedEntry};
use crate::layer::tar::{EntryKind, Header};

/// How shipped paths map into the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PathMap {
    /// Rewrite `bin/`, `sbin/`, `lib/`, `lib32/`, `lib64/`, `libx32/` under `usr/` and drop
    /// those top-level directories (default `true`).
    pub merged_usr: bool,
}

impl Default for PathMap {
    fn default() -> Self {
        Self { merged_usr: true }
    }
}

/// What one `.deb` contains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebListing {
    /// The `control` file, verbatim.
    pub control: String,
    /// The `md5sums` control member verbatim; when the package has none, generated like
    /// `dh_md5sums` (`<md5>  <path>` for every regular file and hard link except conffiles,
    /// paths as shipped without `./`, bytewise sorted). `None` only for a package without
    /// an `md5sums` member and without regular files.
    pub md5sums: Option<String>,
    /// The `conffiles` control member, verbatim.
    pub conffiles: Option<String>,
    /// Maintainer scripts and triggers present in control.tar (`preinst`, `postinst`,
    /// `prerm`, `postrm`, `config`, `triggers`), by name, for auditing; they are never run.
    pub scripts: BTreeMap<String, Vec<u8>>,
    /// data.tar entries, mapped and sorted bytewise by image path.
    pub entries: Vec<DebEntry>,
}

/// One data.tar entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebEntry {
    /// Header with the path mapped into the image (relative, no leading `/`), mode
    /// `& 0o7777`, uid/gid as shipped.
    pub header: Header,
    /// blake3 of the file content; zeros for everything but regular files.
    pub content_hash: [u8; 32],
    /// The data.tar member name (`./usr/bin/x`); for a regular file, the member that holds
    /// its bytes.
    pub data_path: String,
}

/// Why a `.deb` was refused. Every variant names the package label.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DebError {
    /// Reading or decompressing failed.
    #[error("{label}: reading {member}: {source}")]
    Read {
        /// Package label.
        label: String,
        /// ar member (or `ar header`).
        member: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The archive ends before a member or entry does.
    #[error("{label}: the archive is truncated (in {member})")]
    Truncated {
        /// Package label.
        label: String,
        /// Where it ended.
        member: String,
    },
    /// Not an ar archive, or a malformed ar header.
    #[error("{label}: not a Debian package: {reason}")]
    NotDeb {
        /// Package label.
        label: String,
        /// What is wrong.
        reason: String,
    },
    /// A member out of place.
    #[error("{label}: unexpected member `{member}` where {expected} was expected")]
    UnexpectedMember {
        /// Package label.
        label: String,
        /// The member found (or `end of archive`).
        member: String,
        /// What deb(5) requires there.
        expected: &'static str,
    },
    /// `debian-binary` is not 2.x.
    #[error("{label}: unsupported package format version {version:?} (only 2.x is understood)")]
    Version {
        /// Package label.
        label: String,
        /// The first line of `debian-binary`.
        version: String,
    },
    /// A valid but unsupported compression (`data.tar.bz2`, `data.tar.lzma`).
    #[error("{label}: member `{member}` uses an unsupported compression (use gz, xz or zst)")]
    Unsupported {
        /// Package label.
        label: String,
        /// The member.
        member: String,
    },
    /// A malformed tar stream.
    #[error("{label}: {member}: malformed tar: {reason}")]
    Tar {
        /// Package label.
        label: String,
        /// The member.
        member: String,
        /// What is wrong.
        reason: String,
    },
    /// A path that cannot be placed (absolute, `..`, NUL, empty, not UTF-8, …).
    #[error("{label}: {member}: entry {path:?} {reason}")]
    BadPath {
        /// Package label.
        label: String,
        /// The member.
        member: String,
        /// The raw path (lossy UTF-8).
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A device node, FIFO or unknown entry type.
    #[error(
        "{label}: {path} is {kind}; only files, directories, symlinks and hard links are allowed"
    )]
    SpecialFile {
        /// Package label.
        label: String,
        /// The data.tar path.
        path: String,
        /// What it is.
        kind: String,
    },
    /// An entry below a symlink of the same package.
    #[error("{label}: {path} writes through symlink /{symlink} placed earlier by the package")]
    WritesThroughSymlink {
        /// Package label.
        label: String,
        /// The data.tar path.
        path: String,
        /// The symlink (image path).
        symlink: String,
    },
    /// An entry below a regular file or hard link of the same package, or a non-directory
    /// placed where earlier entries implied a directory.
    #[error("{label}: {path} conflicts with /{parent}, which is not a directory in the package")]
    NotADirectory {
        /// Package label.
        label: String,
        /// The data.tar path.
        path: String,
        /// The image path that is not a directory.
        parent: String,
    },
    /// A hard link whose target is not an earlier regular file of the package.
    #[error(
        "{label}: hard link {path} points to {target:?}, which is not an earlier regular file of the package"
    )]
    HardLink {
        /// Package label.
        label: String,
        /// The data.tar path.
        path: String,
        /// The link target as shipped.
        target: String,
    },
    /// The same image path twice (after merged-/usr mapping), other than two directories.
    #[error("{label}: /{path} appears twice in the package (after path mapping)")]
    Duplicate {
        /// Package label.
        label: String,
        /// The image path.
        path: String,
    },
    /// control.tar problems: no `control`, a member too large or not UTF-8.
    #[error("{label}: {member}: {reason}")]
    Control {
        /// Package label.
        label: String,
        /// The control.tar member (`control`, `md5sums`, …).
        member: String,
        /// What is wrong.
        reason: String,
    },
    /// Writing an extracted file failed.
    #[error("{label}: writing {}: {source}", path.display())]
    Extract {
        /// Package label.
        label: String,
        /// The local path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

/// Lists a `.deb` in one streaming pass: decompresses, validates and hashes every entry.
///
/// # Errors
/// [`DebError`] naming `label` and the member or path at fault.
pub fn list_deb<R: Read>(deb: R, label: &str, map: &PathMap) -> Result<DebListing, DebError> {
    read_deb(deb, label, map, None)
}

/// Like [`list_deb`], and writes every regular file's content to `dir/<image path>` in the
/// same pass (directories created as needed, files 0644 whatever the shipped mode; no
/// symlink is created or followed below `dir`). `dir` is created if missing; a file that
/// already exists there is an error. [`DebListing::planned_entries`] then turns the listing
/// into layer entries that read those files.
///
/// # Errors
/// [`DebError`] naming `label` and the member or path at fault.
pub fn extract_deb<R: Read>(
    deb: R,
    label: &str,
    map: &PathMap,
    dir: &Path,
) -> Result<DebListing, DebError> {
    std::fs::create_dir_all(dir).map_err(|source| DebError::Extract {
        label: label.into(),
        path: dir.to_path_buf(),
        source,
    })?;
    read_deb(deb, label, map, Some(dir))
}

impl DebListing {
    /// The entries as layer entries: regular files read from `dir` (where [`extract_deb`]
    /// wrote them), everything else without content.
    ///
    /// # Errors
    /// [`DebError::Extract`] when a file is missing or its size differs from the listing.
    pub fn planned_entries(&self, label: &str, dir: &Path) -> Result<Vec<PlannedEntry>, DebError> {
        self.entries
            .iter()
            .map(|e| {
                let content = match e.header.kind {
                    EntryKind::File { size } => {
                        let path = dir.join(&e.header.path);
                        let err = |source| DebError::Extract {
                            label: label.into(),
                            path: path.clone(),
                            source,
                        };
                        let meta = std::fs::symlink_metadata(&path).map_err(err)?;
                        if !meta.is_file() || meta.len() != size {
                            return Err(err(io::Error::other(
                                "the extracted file is not the one listed",
                            )));
                        }
                        Content::Local {
                            path: path.clone(),
                            size,
                            mtime_ns: crate::layer::files::mtime_ns(&meta),
                        }
                    }
                    _ => Content::None,
                };
                Ok(PlannedEntry {
                    header: e.header.clone(),
                    content,
                    content_hash: e.content_hash,
                })
            })
            .collect()
    }
}

/// The value of field `name` (case-insensitive) in the first stanza of `control`: the first
/// line trimmed, then each continuation line trimmed, joined with `\n`.
#[must_use]
pub fn control_field(control: &str, name: &str) -> Option<String> {
    let mut lines = control.lines();
    while let Some(line) = lines.next() {
        if line.trim().is_empty() {
            return None; // end of the first stanza
        }
        if line.starts_with([' ', '\t']) || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        if !key.eq_ignore_ascii_case(name) {
            continue;
        }
        let mut out = value.trim().to_string();
        for cont in lines.by_ref() {
            if !cont.starts_with([' ', '\t']) || cont.trim().is_empty() {
                break;
            }
            out.push('\n');
            out.push_str(cont.trim());
        }
        return Some(out);
    }
    None
}

// ---------------------------------------------------------------------------------------
// Limits

/// Largest `debian-binary`.
const MAX_DEBIAN_BINARY: u64 = 1024;
/// Largest `control`, `conffiles` and maintainer script.
const MAX_CONTROL_MEMBER: u64 = 1 << 20;
/// Largest `md5sums` (big packages list tens of thousands of files).
const MAX_MD5SUMS: u64 = 64 << 20;
/// Largest GNU long name / long link record.
const MAX_LONG_NAME: u64 = 64 << 10;
/// Largest PAX extended header.
const MAX_PAX: u64 = 1 << 20;
/// Copy buffer.
const BUF: usize = 64 << 10;

const SCRIPTS: [&str; 6] = [
    "preinst", "postinst", "prerm", "postrm", "config", "triggers",
];
const MERGED_DIRS: [&str; 6] = ["bin", "sbin", "lib", "lib32", "lib64", "libx32"];

// ---------------------------------------------------------------------------------------
// ar

struct Ar<'r, R: Read> {
    r: &'r mut R,
    label: &'r str,
    /// A member of odd size is followed by one `\n`.
    pad: bool,
}

struct Member {
    name: String,
    size: u64,
}

impl<'r, R: Read> Ar<'r, R> {
    fn open(r: &'r mut R, label: &'r str) -> Result<Self, DebError> {
        let mut magic = [0u8; 8];
        let n = read_full(r, &mut magic).map_err(|e| read_err(label, "ar header", e))?;
        if n < magic.len() || &magic != b"!<arch>\n" {
            return Err(DebError::NotDeb {
                label: label.into(),
                reason: "missing the `!<arch>` magic".into(),
            });
        }
        Ok(Self {
            r,
            label,
            pad: false,
        })
    }

    fn not_deb(&self, reason: String) -> DebError {
        DebError::NotDeb {
            label: self.label.into(),
            reason,
        }
    }

    /// The next member header, or `None` at the end of the archive.
    fn next(&mut self) -> Result<Option<Member>, DebError> {
        let label = self.label;
        if self.pad {
            self.pad = false;
            let mut b = [0u8; 1];
            let n = read_full(self.r, &mut b).map_err(|e| read_err(label, "ar header", e))?;
            if n == 0 {
                return Ok(None);
            }
            if b[0] != b'\n' {
                return Err(self.not_deb("bad padding after an odd-sized member".into()));
            }
        }
        let mut h = [0u8; 60];
        let n = read_full(self.r, &mut h).map_err(|e| read_err(label, "ar header", e))?;
        if n == 0 {
            return Ok(None);
        }
        if n < h.len() {
            return Err(truncated(label, "ar header"));
        }
        if &h[58..60] != b"`\n" {
            return Err(self.not_deb("bad ar member header".into()));
        }
        let raw = std::str::from_utf8(&h[..16])
            .ok()
            .map(|s| s.trim_end_matches(' '))
            .filter(|s| s.bytes().all(|b| b.is_ascii_graphic()))
            .ok_or_else(|| self.not_deb("member name is not printable ASCII".into()))?;
        let name = raw.strip_suffix('/').unwrap_or(raw).to_string();
        let size = std::str::from_utf8(&h[48..58])
            .ok()
            .map(|s| s.trim_end_matches(' '))
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or_else(|| self.not_deb(format!("member `{name}` has a bad size field")))?;
        self.pad = size % 2 == 1;
        Ok(Some(Member { name, size }))
    }

    /// Runs `f` on the member's bytes, then checks that all of them were there. Any error
    /// after the file ended early is reported as truncation.
    fn with_member<T>(
        &mut self,
        m: &Member,
        f: impl FnOnce(&mut MemberReader<'_, R>) -> Result<T, DebError>,
    ) -> Result<T, DebError> {
        let mut mr = MemberReader {
            inner: (&mut *self.r).take(m.size),
            short: false,
        };
        let out = f(&mut mr);
        let out = match out {
            Err(_) if mr.short => return Err(truncated(self.label, &m.name)),
            o => o?,
        };
        io::copy(&mut mr, &mut io::sink()).map_err(|e| read_err(self.label, &m.name, e))?;
        if mr.short || mr.inner.limit() != 0 {
            return Err(truncated(self.label, &m.name));
        }
        Ok(out)
    }

    fn skip(&mut self, m: &Member) -> Result<(), DebError> {
        self.with_member(m, |_| Ok(()))
    }

    /// The next member that is not `_…`-prefixed.
    fn next_significant(&mut self, expected: &'static str) -> Result<Member, DebError> {
        loop {
            let Some(m) = self.next()? else {
                return Err(DebError::UnexpectedMember {
                    label: self.label.into(),
                    member: "end of archive".into(),
                    expected,
                });
            };
            if m.name.starts_with('_') {
                self.skip(&m)?;
                continue;
            }
            return Ok(m);
        }
    }
}

/// One ar member's bytes; remembers whether the archive ended before the member did.
struct MemberReader<'a, R: Read> {
    inner: io::Take<&'a mut R>,
    short: bool,
}

impl<R: Read> Read for MemberReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() && self.inner.limit() > 0 {
            self.short = true;
        }
        Ok(n)
    }
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

fn truncated(label: &str, member: &str) -> DebError {
    DebError::Truncated {
        label: label.into(),
        member: member.into(),
    }
}

fn read_err(label: &str, member: &str, e: io::Error) -> DebError {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        truncated(label, member)
    } else {
        DebError::Read {
            label: label.into(),
            member: member.into(),
            source: e,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Compression

#[derive(Clone, Copy, PartialEq, Eq)]
enum Compression {
    None,
    Gz,
    Xz,
    Zst,
}

/// `Some(Ok(c))` when `name` is `base` with a supported suffix, `Some(Err(()))` for a known
/// but unsupported one, `None` when it is not `base` at all.
fn compression_of(name: &str, base: &str, unsupported: &[&str]) -> Option<Result<Compression, ()>> {
    let rest = name.strip_prefix(base)?;
    Some(match rest {
        "" => Ok(Compression::None),
        ".gz" => Ok(Compression::Gz),
        ".xz" => Ok(Compression::Xz),
        ".zst" => Ok(Compression::Zst),
        r if unsupported.contains(&r) => Err(()),
        _ => return None,
    })
}

fn decoder<'a>(c: Compression, r: impl Read + 'a) -> io::Result<Box<dyn Read + 'a>> {
    Ok(match c {
        Compression::None => Box::new(r),
        Compression::Gz => Box::new(flate2::read::MultiGzDecoder::new(r)),
        Compression::Xz => Box::new(liblzma::read::XzDecoder::new_multi_decoder(r)),
        Compression::Zst => Box::new(zstd::stream::read::Decoder::new(r)?),
    })
}

// ---------------------------------------------------------------------------------------
// tar

const TAR_BLOCK: u64 = 512;

enum TarError {
    Io(io::Error),
    Format(String),
}

impl From<io::Error> for TarError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

fn format_err<T>(msg: impl Into<String>) -> Result<T, TarError> {
    Err(TarError::Format(msg.into()))
}

/// One logical tar entry, extension headers applied.
struct TarEntry {
    path: Vec<u8>,
    link: Vec<u8>,
    typeflag: u8,
    mode: u32,
    uid: u64,
    gid: u64,
    size: u64,
}

/// A strict streaming tar reader; after [`TarReader::next`], `Read` yields the entry's data.
struct TarReader<'a> {
    r: &'a mut dyn Read,
    /// Unread data bytes of the current entry.
    left: u64,
    /// Padding after them.
    pad: u64,
}

impl Read for TarReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let want = usize::try_from(self.left)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let n = self.r.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.left -= n as u64;
        Ok(n)
    }
}

impl<'a> TarReader<'a> {
    fn new(r: &'a mut dyn Read) -> Self {
        Self { r, left: 0, pad: 0 }
    }

    fn skip(&mut self, n: u64) -> Result<(), TarError> {
        let copied = io::copy(&mut (&mut *self.r).take(n), &mut io::sink())?;
        if copied != n {
            return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into());
        }
        Ok(())
    }

    /// Reads `size` bytes of an extension record (capped at `max`) and its padding.
    fn record(&mut self, size: u64, max: u64, what: &str) -> Result<Vec<u8>, TarError> {
        if size > max {
            return format_err(format!("{what} record of {size} bytes is too large"));
        }
        let mut v = vec![0u8; usize::try_from(size).unwrap_or(0)];
        self.r.read_exact(&mut v)?;
        self.skip(padding(size))?;
        Ok(v)
    }

    /// The next entry, or `None` at the end-of-archive marker (or a clean end of stream).
    fn next(&mut self) -> Result<Option<TarEntry>, TarError> {
        let rest = self.left + self.pad;
        self.skip(rest)?;
        self.left = 0;
        self.pad = 0;
        let mut long_name: Option<Vec<u8>> = None;
        let mut long_link: Option<Vec<u8>> = None;
        let mut pax: Option<Pax> = None;
        loop {
            let mut h = [0u8; TAR_BLOCK as usize];
            let n = read_full(&mut self.r, &mut h)?;
            let pending = long_name.is_some() || long_link.is_some() || pax.is_some();
            if n == 0 {
                if pending {
                    return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into());
                }
                return Ok(None);
            }
            if n < h.len() {
                return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into());
            }
            if h.iter().all(|&b| b == 0) {
                if pending {
                    return format_err("extension header without an entry");
                }
                return Ok(None);
            }
            check_sum(&h)?;
            let typeflag = h[156];
            let size = number(&h[124..136], "size")?;
            match typeflag {
                b'L' | b'K' => {
                    let slot = if typeflag == b'L' {
                        &mut long_name
                    } else {
                        &mut long_link
                    };
                    if slot.is_some() {
                        return format_err("two GNU long-name records for one entry");
                    }
                    let mut v = self.record(size, MAX_LONG_NAME, "GNU long-name")?;
                    while v.last() == Some(&0) {
                        v.pop();
                    }
                    *slot = Some(v);
                }
                b'x' => {
                    if pax.is_some() {
                        return format_err("two PAX headers for one entry");
                    }
                    let body = self.record(size, MAX_PAX, "PAX")?;
                    pax = Some(parse_pax(&body)?);
                }
                b'g' => {
                    // Global PAX headers carry nothing we use.
                    self.record(size, MAX_PAX, "PAX global")?;
                }
                _ => {
                    let pax = pax.unwrap_or_default();
                    let posix = &h[257..263] == b"ustar\0";
                    let name = cstr(&h[..100]);
                    let path = if let Some(p) = long_name {
                        p
                    } else if let Some(p) = pax.path {
                        p
                    } else if posix && h[345] != 0 {
                        let mut p = cstr(&h[345..500]).to_vec();
                        p.push(b'/');
                        p.extend_from_slice(name);
                        p
                    } else {
                        name.to_vec()
                    };
                    let link = long_link
                        .or(pax.linkpath)
                        .unwrap_or_else(|| cstr(&h[157..257]).to_vec());
                    let mode = number(&h[100..108], "mode")?;
                    let size = pax.size.unwrap_or(size);
                    let entry = TarEntry {
                        path,
                        link,
                        typeflag,
                        mode: u32::try_from(mode & 0o7777).unwrap_or(0),
                        uid: pax.uid.map_or_else(|| number(&h[108..116], "uid"), Ok)?,
                        gid: pax.gid.map_or_else(|| number(&h[116..124], "gid"), Ok)?,
                        size,
                    };
                    self.left = size;
                    self.pad = padding(size);
                    return Ok(Some(entry));
                }
            }
        }
    }
}

fn padding(size: u64) -> u64 {
    (TAR_BLOCK - size % TAR_BLOCK) % TAR_BLOCK
}

fn cstr(b: &[u8]) -> &[u8] {
    b.iter().position(|&c| c == 0).map_or(b, |i| &b[..i])
}

fn check_sum(h: &[u8; 512]) -> Result<(), TarError> {
    let stored = number(&h[148..156], "checksum")?;
    let mut unsigned: u64 = 0;
    let mut signed: i64 = 0;
    for (i, &b) in h.iter().enumerate() {
        let b = if (148..156).contains(&i) { b' ' } else { b };
        unsigned += u64::from(b);
        signed += i64::from(b as i8);
    }
    if stored == unsigned || i64::try_from(stored).is_ok_and(|s| s == signed) {
        Ok(())
    } else {
        format_err("header checksum mismatch")
    }
}

/// A numeric header field: octal (space/NUL padded) or GNU base-256.
fn number(field: &[u8], what: &str) -> Result<u64, TarError> {
    if field[0] & 0x80 != 0 {
        if field[0] == 0xff {
            return format_err(format!("negative {what}"));
        }
        let mut v: u64 = u64::from(field[0] & 0x7f);
        for &b in &field[1..] {
            v = v
                .checked_mul(256)
                .and_then(|v| v.checked_add(u64::from(b)))
                .ok_or_else(|| TarError::Format(format!("{what} overflows")))?;
        }
        return Ok(v);
    }
    let mut v: u64 = 0;
    let mut digits = field.iter().skip_while(|&&b| b == b' ').peekable();
    while let Some(&b) = digits.next() {
        match b {
            b'0'..=b'7' => {
                v = v
                    .checked_mul(8)
                    .and_then(|v| v.checked_add(u64::from(b - b'0')))
                    .ok_or_else(|| TarError::Format(format!("{what} overflows")))?;
            }
            b' ' | 0 => {
                if digits.any(|&b| b != b' ' && b != 0) {
                    return format_err(format!("bad {what} field"));
                }
                break;
            }
            _ => return format_err(format!("bad {what} field")),
        }
    }
    Ok(v)
}

#[derive(Default)]
struct Pax {
    path: Option<Vec<u8>>,
    linkpath: Option<Vec<u8>>,
    size: Option<u64>,
    uid: Option<u64>,
    gid: Option<u64>,
}

fn parse_pax(mut body: &[u8]) -> Result<Pax, TarError> {
    let mut pax = Pax::default();
    while !body.is_empty() {
        let sp = body
            .iter()
            .position(|&b| b == b' ')
            .ok_or_else(|| TarError::Format("bad PAX record".into()))?;
        let len: usize = std::str::from_utf8(&body[..sp])
            .ok()
            .and_then(|s| s.parse().ok())
            .filter(|&l| l > sp + 1 && l <= body.len())
            .ok_or_else(|| TarError::Format("bad PAX record length".into()))?;
        let rec = &body[sp + 1..len];
        body = &body[len..];
        let Some(rec) = rec.strip_suffix(b"\n") else {
            return format_err("PAX record without a newline");
        };
        let eq = rec
            .iter()
            .position(|&b| b == b'=')
            .ok_or_else(|| TarError::Format("PAX record without `=`".into()))?;
        let (key, value) = (&rec[..eq], &rec[eq + 1..]);
        let num = || -> Result<u64, TarError> {
            std::str::from_utf8(value)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| TarError::Format("bad numeric PAX value".into()))
        };
        match key {
            b"path" => pax.path = Some(value.to_vec()),
            b"linkpath" => pax.linkpath = Some(value.to_vec()),
            b"size" => pax.size = Some(num()?),
            b"uid" => pax.uid = Some(num()?),
            b"gid" => pax.gid = Some(num()?),
            k if k.starts_with(b"GNU.sparse.") => {
                return format_err("sparse files are not supported");
            }
            _ => {} // mtime, atime, uname, xattrs, …: not carried into the image
        }
    }
    Ok(pax)
}

// ---------------------------------------------------------------------------------------
// paths

/// `./usr/bin/x` → `Some("usr/bin/x")`; the root (`./`, `.`) → `None`.
fn normalize(raw: &[u8]) -> Result<Option<String>, &'static str> {
    let s = std::str::from_utf8(raw).map_err(|_| "is not valid UTF-8")?;
    if s.contains('\0') {
        return Err("contains NUL");
    }
    if s.is_empty() {
        return Err("is empty");
    }
    if s.starts_with('/') {
        return Err("is absolute");
    }
    if s == "." || s == "./" {
        return Ok(None);
    }
    let s = s.strip_prefix("./").unwrap_or(s);
    let s = s.strip_suffix('/').unwrap_or(s);
    if s.is_empty() {
        return Err("is empty");
    }
    for c in s.split('/') {
        match c {
            "" => return Err("has an empty path component"),
            "." => return Err("has a `.` path component"),
            ".." => return Err("has a `..` path component"),
            _ => {}
        }
    }
    Ok(Some(s.to_string()))
}

enum Mapped {
    /// A top-level `bin`, `lib`, … itself.
    Top(&'static str),
    Path(String),
}

fn map_path(p: String, map: &PathMap) -> Mapped {
    if map.merged_usr {
        let first = p.split('/').next().unwrap_or("");
        if let Some(top) = MERGED_DIRS.iter().find(|d| **d == first) {
            if p.len() == top.len() {
                return Mapped::Top(top);
            }
            return Mapped::Path(format!("usr/{p}"));
        }
    }
    Mapped::Path(p)
}

// ---------------------------------------------------------------------------------------
// the pass

fn read_deb<R: Read>(
    deb: R,
    label: &str,
    map: &PathMap,
    dir: Option<&Path>,
) -> Result<DebListing, DebError> {
    let mut deb = BufReader::with_capacity(BUF, deb);
    let mut ar = Ar::open(&mut deb, label)?;

    let Some(first) = ar.next()? else {
        return Err(DebError::UnexpectedMember {
            label: label.into(),
            member: "end of archive".into(),
            expected: "`debian-binary`",
        });
    };
    if first.name != "debian-binary" {
        return Err(DebError::UnexpectedMember {
            label: label.into(),
            member: first.name,
            expected: "`debian-binary`",
        });
    }
    if first.size > MAX_DEBIAN_BINARY {
        return Err(DebError::Version {
            label: label.into(),
            version: format!("<{} bytes>", first.size),
        });
    }
    let text = ar.with_member(&first, |r| {
        let mut v = Vec::new();
        r.read_to_end(&mut v)
            .map_err(|e| read_err(label, "debian-binary", e))?;
        Ok(v)
    })?;
    check_version(label, &text)?;

    let m = ar.next_significant("`control.tar[.gz|.xz|.zst]`")?;
    let Some(Ok(comp)) = compression_of(&m.name, "control.tar", &[]) else {
        return Err(DebError::UnexpectedMember {
            label: label.into(),
            member: m.name,
            expected: "`control.tar[.gz|.xz|.zst]`",
        });
    };
    let control = ar.with_member(&m, |r| read_control(r, comp, label, &m.name))?;

    let m = ar.next_significant("`data.tar[.gz|.xz|.zst]`")?;
    let comp = match compression_of(&m.name, "data.tar", &[".bz2", ".lzma"]) {
        Some(Ok(c)) => c,
        Some(Err(())) => {
            return Err(DebError::Unsupported {
                label: label.into(),
                member: m.name,
            });
        }
        None => {
            return Err(DebError::UnexpectedMember {
                label: label.into(),
                member: m.name,
                expected: "`data.tar[.gz|.xz|.zst]`",
            });
        }
    };
    let mut data = Data {
        label,
        member: &m.name,
        map,
        entries: Vec::new(),
        index: HashMap::new(),
        implied_dirs: HashSet::new(),
        md5: control.md5sums.is_none().then(Vec::new),
        out: dir.map(|root| Extractor {
            root,
            made: HashSet::new(),
        }),
    };
    ar.with_member(&m, |r| data.read(r, comp))?;
    // Members after data.tar are ignored (deb(5)).

    let md5sums = match control.md5sums {
        Some(m) => Some(m),
        None => data.generated_md5sums(control.conffiles.as_deref()),
    };
    let entries = data.finish()?;
    Ok(DebListing {
        control: control.control,
        md5sums,
        conffiles: control.conffiles,
        scripts: control.scripts,
        entries,
    })
}

fn check_version(label: &str, text: &[u8]) -> Result<(), DebError> {
    let line = text.split(|&b| b == b'\n').next().unwrap_or(b"");
    let line = String::from_utf8_lossy(line).into_owned();
    let ok = line.split_once('.').is_some_and(|(major, minor)| {
        major == "2" && !minor.is_empty() && minor.bytes().all(|b| b.is_ascii_digit())
    });
    if ok {
        Ok(())
    } else {
        Err(DebError::Version {
            label: label.into(),
            version: line,
        })
    }
}

struct ControlParts {
    control: String,
    md5sums: Option<String>,
    conffiles: Option<String>,
    scripts: BTreeMap<String, Vec<u8>>,
}

fn tar_err(label: &str, member: &str, e: TarError) -> DebError {
    match e {
        TarError::Io(e) => read_err(label, member, e),
        TarError::Format(reason) => DebError::Tar {
            label: label.into(),
            member: member.into(),
            reason,
        },
    }
}

fn read_control(
    r: &mut impl Read,
    comp: Compression,
    label: &str,
    member: &str,
) -> Result<ControlParts, DebError> {
    let mut dec = decoder(comp, r).map_err(|e| read_err(label, member, e))?;
    let mut tar = TarReader::new(&mut dec);
    let mut control = None;
    let mut md5sums = None;
    let mut conffiles = None;
    let mut scripts = BTreeMap::new();
    let cerr = |name: &str, reason: &str| DebError::Control {
        label: label.into(),
        member: name.into(),
        reason: reason.into(),
    };
    while let Some(e) = tar.next().map_err(|e| tar_err(label, member, e))? {
        let name = match normalize(&e.path) {
            Ok(Some(n)) => n,
            Ok(None) => continue,
            Err(reason) => {
                return Err(DebError::BadPath {
                    label: label.into(),
                    member: member.into(),
                    path: String::from_utf8_lossy(&e.path).into_owned(),
                    reason: reason.into(),
                });
            }
        };
        let max = match name.as_str() {
            "control" | "conffiles" => MAX_CONTROL_MEMBER,
            "md5sums" => MAX_MD5SUMS,
            n if SCRIPTS.contains(&n) => MAX_CONTROL_MEMBER,
            _ => continue, // shlibs, symbols, templates, …
        };
        if !matches!(e.typeflag, b'0' | 0) {
            return Err(cerr(&name, "is not a regular file"));
        }
        if e.size > max {
            return Err(cerr(&name, "is too large"));
        }
        let mut body = Vec::with_capacity(usize::try_from(e.size).unwrap_or(0));
        tar.read_to_end(&mut body)
            .map_err(|e| read_err(label, member, e))?;
        if SCRIPTS.contains(&name.as_str()) {
            scripts.insert(name, body);
            continue;
        }
        let text = String::from_utf8(body).map_err(|_| cerr(&name, "is not valid UTF-8"))?;
        let slot = match name.as_str() {
            "control" => &mut control,
            "md5sums" => &mut md5sums,
            _ => &mut conffiles,
        };
        if slot.replace(text).is_some() {
            return Err(cerr(&name, "appears twice"));
        }
    }
    // Read to the end of the stream so the decompressor verifies its checksums.
    io::copy(&mut dec, &mut io::sink()).map_err(|e| read_err(label, member, e))?;
    let control = control.ok_or_else(|| cerr(member, "has no `control` file"))?;
    Ok(ControlParts {
        control,
        md5sums,
        conffiles,
        scripts,
    })
}

/// Writes extracted files below a directory this pass owns.
struct Extractor<'a> {
    root: &'a Path,
    /// Relative directories already created (or checked).
    made: HashSet<String>,
}

impl Extractor<'_> {
    fn ensure_parents(&mut self, rel: &str) -> Result<(), (PathBuf, io::Error)> {
        let mut end = 0;
        while let Some(i) = rel[end..].find('/') {
            end += i;
            let d = &rel[..end];
            end += 1;
            if self.made.contains(d) {
                continue;
            }
            let p = self.root.join(d);
            match std::fs::create_dir(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    let meta = std::fs::symlink_metadata(&p).map_err(|e| (p.clone(), e))?;
                    if !meta.is_dir() {
                        return Err((p, io::Error::other("exists and is not a directory")));
                    }
                }
                Err(e) => return Err((p, e)),
            }
            self.made.insert(d.to_string());
        }
        Ok(())
    }

    fn create(&mut self, rel: &str) -> Result<(std::fs::File, PathBuf), (PathBuf, io::Error)> {
        self.ensure_parents(rel)?;
        let p = self.root.join(rel);
        let f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&p)
            .map_err(|e| (p.clone(), e))?;
        Ok((f, p))
    }

    fn rename(&mut self, from: &str, to: &str) -> Result<(), (PathBuf, io::Error)> {
        self.ensure_parents(to)?;
        let (a, b) = (self.root.join(from), self.root.join(to));
        if std::fs::symlink_metadata(&b).is_ok() {
            return Err((b, io::ErrorKind::AlreadyExists.into()));
        }
        std::fs::rename(&a, &b).map_err(|e| (a, e))
    }
}

struct Data<'a> {
    label: &'a str,
    member: &'a str,
    map: &'a PathMap,
    entries: Vec<DebEntry>,
    /// Image path → index in `entries`.
    index: HashMap<String, usize>,
    /// Image paths that earlier entries placed something below.
    implied_dirs: HashSet<String>,
    /// MD5 per entry (regular files and hard links), when the package has no md5sums.
    md5: Option<Vec<Option<[u8; 16]>>>,
    out: Option<Extractor<'a>>,
}

impl Data<'_> {
    fn bad_path(&self, raw: &[u8], reason: impl Into<String>) -> DebError {
        DebError::BadPath {
            label: self.label.into(),
            member: self.member.into(),
            path: String::from_utf8_lossy(raw).into_owned(),
            reason: reason.into(),
        }
    }

    fn read(&mut self, r: &mut impl Read, comp: Compression) -> Result<(), DebError> {
        let (label, member) = (self.label, self.member);
        let mut dec = decoder(comp, r).map_err(|e| read_err(label, member, e))?;
        let mut tar = TarReader::new(&mut dec);
        let mut buf = vec![0u8; BUF];
        while let Some(e) = tar.next().map_err(|e| tar_err(label, member, e))? {
            self.entry(&e, &mut tar, &mut buf)?;
        }
        io::copy(&mut dec, &mut io::sink()).map_err(|e| read_err(label, member, e))?;
        Ok(())
    }

    fn entry(
        &mut self,
        e: &TarEntry,
        data: &mut TarReader<'_>,
        buf: &mut [u8],
    ) -> Result<(), DebError> {
        let data_path = String::from_utf8(e.path.clone())
            .map_err(|_| self.bad_path(&e.path, "is not valid UTF-8"))?;
        let kind_name = match e.typeflag {
            b'0' | 0 | b'1' | b'2' | b'5' => None,
            b'3' => Some("a character device".to_string()),
            b'4' => Some("a block device".to_string()),
            b'6' => Some("a FIFO".to_string()),
            b'S' => Some("a sparse file".to_string()),
            t => Some(format!(
                "an unsupported tar entry (type {:?})",
                char::from(t)
            )),
        };
        if let Some(kind) = kind_name {
            return Err(DebError::SpecialFile {
                label: self.label.into(),
                path: data_path,
                kind,
            });
        }
        let is_dir = e.typeflag == b'5' || (e.typeflag == 0 && data_path.ends_with('/'));
        let normalized = normalize(&e.path).map_err(|r| self.bad_path(&e.path, r))?;
        let Some(shipped) = normalized else {
            if is_dir {
                return Ok(()); // the root directory entry `./`
            }
            return Err(self.bad_path(&e.path, "names the root but is not a directory"));
        };
        let path = match map_path(shipped, self.map) {
            Mapped::Path(p) => p,
            Mapped::Top(top) => {
                let link_ok = e.typeflag == b'2' && {
                    let t = String::from_utf8_lossy(&e.link);
                    let t = t.trim_end_matches('/');
                    t == format!("usr/{top}") || t == format!("/usr/{top}")
                };
                if is_dir || link_ok {
                    return Ok(()); // merged /usr: the link is synthesized per image
                }
                return Err(self.bad_path(
                    &e.path,
                    format!("conflicts with merged /usr (/{top} must be a directory or a link to usr/{top})"),
                ));
            }
        };

        // Ancestors: never through a symlink or below a non-directory of this package.
        let mut end = 0;
        while let Some(i) = path[end..].find('/') {
            end += i;
            let anc = &path[..end];
            end += 1;
            if let Some(&idx) = self.index.get(anc) {
                match self.entries[idx].header.kind {
                    EntryKind::Dir => {}
                    EntryKind::Symlink { .. } => {
                        return Err(DebError::WritesThroughSymlink {
                            label: self.label.into(),
                            path: data_path,
                            symlink: anc.to_string(),
                        });
                    }
                    _ => {
                        return Err(DebError::NotADirectory {
                            label: self.label.into(),
                            path: data_path,
                            parent: anc.to_string(),
                        });
                    }
                }
            }
        }
        if let Some(&idx) = self.index.get(&path) {
            if is_dir && self.entries[idx].header.kind == EntryKind::Dir {
                return Ok(()); // e.g. ./lib/x86_64-linux-gnu/ and ./usr/lib/x86_64-linux-gnu/
            }
            return Err(DebError::Duplicate {
                label: self.label.into(),
                path,
            });
        }
        if !is_dir && self.implied_dirs.contains(&path) {
            return Err(DebError::NotADirectory {
                label: self.label.into(),
                path: data_path,
                parent: path,
            });
        }

        let uid =
            u32::try_from(e.uid).map_err(|_| self.bad_path(&e.path, "has a uid above 2^32"))?;
        let gid =
            u32::try_from(e.gid).map_err(|_| self.bad_path(&e.path, "has a gid above 2^32"))?;
        let mut content_hash = [0u8; 32];
        let mut md5 = None;
        let kind = if is_dir {
            EntryKind::Dir
        } else {
            match e.typeflag {
                b'2' => {
                    let target = String::from_utf8(e.link.clone()).map_err(|_| {
                        self.bad_path(&e.path, "has a link target that is not UTF-8")
                    })?;
                    if target.is_empty() || target.contains('\0') {
                        return Err(self.bad_path(&e.path, "has an empty link target"));
                    }
                    EntryKind::Symlink { target }
                }
                b'1' => {
                    let (target, digest) = self.hard_link_target(&data_path, &e.link)?;
                    md5 = digest;
                    EntryKind::HardLink { target }
                }
                _ => {
                    let (hash, digest) = self.file_content(&path, e.size, data, buf)?;
                    content_hash = hash;
                    md5 = digest;
                    EntryKind::File { size: e.size }
                }
            }
        };

        let mut end = 0;
        while let Some(i) = path[end..].find('/') {
            end += i;
            if !self.implied_dirs.contains(&path[..end]) {
                self.implied_dirs.insert(path[..end].to_string());
            }
            end += 1;
        }
        self.index.insert(path.clone(), self.entries.len());
        if let Some(m) = &mut self.md5 {
            m.push(md5);
        }
        self.entries.push(DebEntry {
            header: Header {
                path,
                mode: e.mode & 0o7777,
                uid,
                gid,
                kind,
            },
            content_hash,
            data_path,
        });
        Ok(())
    }

    /// Resolves a hard link's target to the image path of an earlier regular file.
    fn hard_link_target(
        &self,
        data_path: &str,
        raw: &[u8],
    ) -> Result<(String, Option<[u8; 16]>), DebError> {
        let bad = || DebError::HardLink {
            label: self.label.into(),
            path: data_path.into(),
            target: String::from_utf8_lossy(raw).into_owned(),
        };
        let Ok(Some(t)) = normalize(raw) else {
            return Err(bad());
        };
        let Mapped::Path(t) = map_path(t, self.map) else {
            return Err(bad());
        };
        let idx = *self.index.get(&t).ok_or_else(bad)?;
        let digest = self.md5.as_ref().and_then(|m| m[idx]);
        match &self.entries[idx].header.kind {
            EntryKind::File { .. } => Ok((t, digest)),
            EntryKind::HardLink { target } => Ok((target.clone(), digest)),
            _ => Err(bad()),
        }
    }

    /// Streams a file's bytes through blake3 (and MD5, and to disk when extracting).
    fn file_content(
        &mut self,
        path: &str,
        size: u64,
        data: &mut TarReader<'_>,
        buf: &mut [u8],
    ) -> Result<([u8; 32], Option<[u8; 16]>), DebError> {
        let (label, member) = (self.label, self.member);
        let ext = |(path, source): (PathBuf, io::Error)| DebError::Extract {
            label: label.into(),
            path,
            source,
        };
        let mut file = match &mut self.out {
            Some(x) => Some(x.create(path).map_err(ext)?),
            None => None,
        };
        let mut h = blake3::Hasher::new();
        let mut md5 = self.md5.as_ref().map(|_| md5::Md5::new());
        let mut got = 0u64;
        loop {
            let n = data.read(buf).map_err(|e| read_err(label, member, e))?;
            if n == 0 {
                break;
            }
            got += n as u64;
            h.update(&buf[..n]);
            if let Some(m) = &mut md5 {
                m.update(&buf[..n]);
            }
            if let Some((f, p)) = &mut file {
                f.write_all(&buf[..n]).map_err(|e| ext((p.clone(), e)))?;
            }
        }
        debug_assert_eq!(got, size);
        Ok((*h.finalize().as_bytes(), md5.map(|m| m.finalize().into())))
    }

    /// `dh_md5sums` output for a package that shipped none.
    fn generated_md5sums(&self, conffiles: Option<&str>) -> Option<String> {
        let md5 = self.md5.as_ref()?;
        let conf: HashSet<&str> = conffiles
            .unwrap_or("")
            .lines()
            .filter_map(|l| l.split_whitespace().find(|w| w.starts_with('/')))
            .map(|p| p.trim_start_matches('/'))
            .collect();
        let mut rows: Vec<(&str, &[u8; 16])> = self
            .entries
            .iter()
            .zip(md5)
            .filter_map(|(e, m)| {
                let shipped = e.data_path.strip_prefix("./").unwrap_or(&e.data_path);
                Some((shipped, m.as_ref()?))
            })
            .filter(|(p, _)| !conf.contains(p))
            .collect();
        if rows.is_empty() {
            return None;
        }
        rows.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        let mut out = String::new();
        for (p, m) in rows {
            out.push_str(&hex::encode(m));
            out.push_str("  ");
            out.push_str(p);
            out.push('\n');
        }
        Some(out)
    }

    /// Sorts entries by image path and makes the first path of each hard-link group the one
    /// that carries the content.
    fn finish(mut self) -> Result<Vec<DebEntry>, DebError> {
        let mut entries = std::mem::take(&mut self.entries);
        entries.sort_by(|a, b| a.header.path.as_bytes().cmp(b.header.path.as_bytes()));
        // file path → first path (in sorted order) of its group
        let mut first: HashMap<String, String> = HashMap::new();
        for e in &entries {
            if let EntryKind::HardLink { target } = &e.header.kind
                && !first.contains_key(target)
                && e.header.path.as_bytes() < target.as_bytes()
            {
                first.insert(target.clone(), e.header.path.clone());
            }
        }
        if first.is_empty() {
            return Ok(entries);
        }
        let pos: HashMap<String, usize> = entries
            .iter()
            .enumerate()
            .map(|(i, e)| (e.header.path.clone(), i))
            .collect();
        for (file, root) in &first {
            let (fi, ri) = (pos[file], pos[root]);
            let (kind, hash, data_path) = (
                entries[fi].header.kind.clone(),
                entries[fi].content_hash,
                entries[fi].data_path.clone(),
            );
            entries[ri].header.kind = kind;
            entries[ri].content_hash = hash;
            entries[ri].data_path = data_path;
            entries[fi].header.kind = EntryKind::HardLink {
                target: root.clone(),
            };
            entries[fi].content_hash = [0; 32];
            if let Some(x) = &mut self.out {
                x.rename(file, root)
                    .map_err(|(path, source)| DebError::Extract {
                        label: self.label.into(),
                        path,
                        source,
                    })?;
            }
        }
        for e in &mut entries {
            if let EntryKind::HardLink { target } = &mut e.header.kind
                && let Some(root) = first.get(target.as_str())
                && *root != e.header.path
            {
                *target = root.clone();
            }
        }
        Ok(entries)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::process::Command;

    // ---- builders: a hand-written ar writer and a raw tar writer (full control of names)

    fn ar(members: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = b"!<arch>\n".to_vec();
        for (name, data) in members {
            let h = format!(
                "{:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`\n",
                name,
                0,
                0,
                0,
                100_644,
                data.len()
            );
            assert_eq!(h.len(), 60);
            out.extend_from_slice(h.as_bytes());
            out.extend_from_slice(data);
            if data.len() % 2 == 1 {
                out.push(b'\n');
            }
        }
        out
    }

    #[derive(Clone)]
    enum T<'a> {
        Dir(&'a str),
        File(&'a str, &'a [u8]),
        Mode(&'a str, &'a [u8], u32),
        Sym(&'a str, &'a str),
        Hard(&'a str, &'a str),
        Typed(&'a str, u8),
        Pax(&'a str, &'a [u8]),
    }

    fn octal(field: &mut [u8], v: u64) {
        let s = format!("{:0w$o}\0", v, w = field.len() - 1);
        field.copy_from_slice(s.as_bytes());
    }

    fn block(name: &[u8], link: &[u8], typeflag: u8, mode: u32, size: u64, gnu: bool) -> [u8; 512] {
        let mut h = [0u8; 512];
        let n = name.len().min(100);
        h[..n].copy_from_slice(&name[..n]);
        octal(&mut h[100..108], u64::from(mode));
        octal(&mut h[108..116], 0);
        octal(&mut h[116..124], 0);
        octal(&mut h[124..136], size);
        octal(&mut h[136..148], 1_700_000_000);
        h[156] = typeflag;
        let l = link.len().min(100);
        h[157..157 + l].copy_from_slice(&link[..l]);
        if gnu {
            h[257..265].copy_from_slice(b"ustar  \0");
        } else {
            h[257..263].copy_from_slice(b"ustar\0");
            h[263..265].copy_from_slice(b"00");
        }
        h[148..156].copy_from_slice(b"        ");
        let sum: u64 = h.iter().map(|&b| u64::from(b)).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        h
    }

    fn push_data(out: &mut Vec<u8>, data: &[u8]) {
        out.extend_from_slice(data);
        out.extend(std::iter::repeat_n(
            0u8,
            padding(data.len() as u64) as usize,
        ));
    }

    fn push_entry(out: &mut Vec<u8>, name: &str, link: &str, typeflag: u8, mode: u32, data: &[u8]) {
        for (rec, flag) in [(name, b'L'), (link, b'K')] {
            if rec.len() > 100 {
                let mut body = rec.as_bytes().to_vec();
                body.push(0);
                out.extend_from_slice(&block(
                    b"././@LongLink",
                    b"",
                    flag,
                    0,
                    body.len() as u64,
                    true,
                ));
                push_data(out, &body);
            }
        }
        out.extend_from_slice(&block(
            name.as_bytes(),
            link.as_bytes(),
            typeflag,
            mode,
            data.len() as u64,
            true,
        ));
        push_data(out, data);
    }

    fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
        let rest = key.len() + value.len() + 3;
        let mut len = rest + 1;
        while rest + len.to_string().len() != len {
            len = rest + len.to_string().len();
        }
        let mut r = format!("{len} {key}=").into_bytes();
        r.extend_from_slice(value);
        r.push(b'\n');
        r
    }

    fn tar(entries: &[T<'_>]) -> Vec<u8> {
        let mut out = Vec::new();
        for e in entries {
            match *e {
                T::Dir(p) => push_entry(&mut out, p, "", b'5', 0o755, b""),
                T::File(p, d) => push_entry(&mut out, p, "", b'0', 0o644, d),
                T::Mode(p, d, m) => push_entry(&mut out, p, "", b'0', m, d),
                T::Sym(p, t) => push_entry(&mut out, p, t, b'2', 0o777, b""),
                T::Hard(p, t) => push_entry(&mut out, p, t, b'1', 0o644, b""),
                T::Typed(p, f) => push_entry(&mut out, p, "", f, 0o644, b""),
                T::Pax(p, d) => {
                    let body = pax_record("path", p.as_bytes());
                    out.extend_from_slice(&block(
                        b"./PaxHeaders/x",
                        b"",
                        b'x',
                        0o644,
                        body.len() as u64,
                        false,
                    ));
                    push_data(&mut out, &body);
                    out.extend_from_slice(&block(
                        b"./short",
                        b"",
                        b'0',
                        0o644,
                        d.len() as u64,
                        false,
                    ));
                    push_data(&mut out, d);
                }
            }
        }
        out.extend_from_slice(&[0u8; 1024]);
        out
    }

    #[derive(Clone, Copy, Debug)]
    enum Z {
        None,
        Gz,
        Xz,
        Zst,
    }

    fn compress(z: Z, data: &[u8]) -> Vec<u8> {
        match z {
            Z::None => data.to_vec(),
            Z::Gz => {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                e.write_all(data).unwrap();
                e.finish().unwrap()
            }
            Z::Xz => {
                let mut e = liblzma::write::XzEncoder::new(Vec::new(), 1);
                e.write_all(data).unwrap();
                e.finish().unwrap()
            }
            Z::Zst => zstd::encode_all(data, 1).unwrap(),
        }
    }

    fn ext(z: Z) -> &'static str {
        match z {
            Z::None => "",
            Z::Gz => ".gz",
            Z::Xz => ".xz",
            Z::Zst => ".zst",
        }
    }

    const CONTROL: &str = "Package: hello\nVersion: 1.0-1\nArchitecture: amd64\nMaintainer: A <a@example.org>\nDescription: greets\n long text\n";

    fn control_tar(extra: &[(&str, &[u8])]) -> Vec<u8> {
        let mut e = vec![T::Dir("./"), T::File("./control", CONTROL.as_bytes())];
        e.extend(extra.iter().map(|(n, d)| T::File(n, d)));
        tar(&e)
    }

    fn deb_with(control: &[u8], data: &[T<'_>], z: Z) -> Vec<u8> {
        let c = compress(Z::Gz, control);
        let d = compress(z, &tar(data));
        ar(&[
            ("debian-binary", b"2.0\n"),
            ("control.tar.gz", &c),
            (&format!("data.tar{}", ext(z)), &d),
        ])
    }

    fn deb(data: &[T<'_>]) -> Vec<u8> {
        deb_with(&control_tar(&[]), data, Z::Xz)
    }

    fn list(bytes: &[u8]) -> Result<DebListing, DebError> {
        list_deb(bytes, "hello_1.0-1_amd64.deb", &PathMap::default())
    }

    fn paths(l: &DebListing) -> Vec<&str> {
        l.entries.iter().map(|e| e.header.path.as_str()).collect()
    }

    fn find<'a>(l: &'a DebListing, p: &str) -> &'a DebEntry {
        l.entries.iter().find(|e| e.header.path == p).unwrap()
    }

    // ---- tests

    #[test]
    fn normal_package() {
        let md5 = "0123456789abcdef0123456789abcdef  usr/bin/hello\n";
        let control = control_tar(&[
            ("./md5sums", md5.as_bytes()),
            ("./conffiles", b"/etc/hello.conf\n"),
            ("./postinst", b"#!/bin/sh\nexit 0\n"),
            ("./shlibs", b"ignored"),
        ]);
        let bytes = deb_with(
            &control,
            &[
                T::Dir("./"),
                T::Dir("./usr/"),
                T::Dir("./usr/bin/"),
                T::Mode("./usr/bin/hello", b"\x7fELF binary", 0o4755),
                T::Sym("./usr/bin/hi", "hello"),
                T::Dir("./etc/"),
                T::File("./etc/hello.conf", b"greeting=hi\n"),
            ],
            Z::Xz,
        );
        let l = list(&bytes).unwrap();
        assert_eq!(l.control, CONTROL);
        assert_eq!(l.md5sums.as_deref(), Some(md5));
        assert_eq!(l.conffiles.as_deref(), Some("/etc/hello.conf\n"));
        assert_eq!(l.scripts.keys().collect::<Vec<_>>(), ["postinst"]);
        assert_eq!(
            paths(&l),
            [
                "etc",
                "etc/hello.conf",
                "usr",
                "usr/bin",
                "usr/bin/hello",
                "usr/bin/hi"
            ]
        );
        let hello = find(&l, "usr/bin/hello");
        assert_eq!(hello.header.mode, 0o4755, "setuid survives");
        assert_eq!(hello.header.kind, EntryKind::File { size: 11 });
        assert_eq!(
            hello.content_hash,
            *blake3::hash(b"\x7fELF binary").as_bytes()
        );
        assert_eq!(hello.data_path, "./usr/bin/hello");
        let hi = find(&l, "usr/bin/hi");
        assert_eq!(
            hi.header.kind,
            EntryKind::Symlink {
                target: "hello".into()
            }
        );
        assert_eq!(hi.content_hash, [0; 32]);
        assert_eq!(find(&l, "usr").header.kind, EntryKind::Dir);
        assert_eq!(
            control_field(&l.control, "package").as_deref(),
            Some("hello")
        );
    }

    #[test]
    fn names_with_and_without_dot_slash() {
        let l = list(&deb(&[
            T::File("./a/x", b"1"),
            T::File("b/y", b"2"),
            T::Dir("c/"),
        ]))
        .unwrap();
        assert_eq!(paths(&l), ["a/x", "b/y", "c"]);
    }

    #[test]
    fn merged_usr_mapping() {
        let data = [
            T::Dir("./"),
            T::Dir("./bin/"),
            T::Sym("./bin/sh", "dash"),
            T::Dir("./lib/"),
            T::Dir("./lib/x86_64-linux-gnu/"),
            T::File("./lib/x86_64-linux-gnu/libc.so.6", b"libc"),
            T::Dir("./lib64/"),
            T::Sym(
                "./lib64/ld-linux-x86-64.so.2",
                "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
            ),
            T::Dir("./sbin/"),
            T::File("./sbin/ldconfig", b"ldconfig"),
            T::Dir("./usr/"),
            T::Dir("./usr/lib/"),
            T::Dir("./usr/lib/x86_64-linux-gnu/"),
            T::File("./usr/lib/x86_64-linux-gnu/libm.so.6", b"libm"),
        ];
        let l = list(&deb(&data)).unwrap();
        // ./bin/, ./lib64/, ./sbin/ are dropped: no usr/bin entry (the planner adds parents)
        assert_eq!(
            paths(&l),
            [
                "usr",
                "usr/bin/sh",
                "usr/lib",
                "usr/lib/x86_64-linux-gnu",
                "usr/lib/x86_64-linux-gnu/libc.so.6",
                "usr/lib/x86_64-linux-gnu/libm.so.6",
                "usr/lib64/ld-linux-x86-64.so.2",
                "usr/sbin/ldconfig",
            ]
        );
        assert_eq!(
            find(&l, "usr/lib/x86_64-linux-gnu/libc.so.6").data_path,
            "./lib/x86_64-linux-gnu/libc.so.6"
        );
        assert_eq!(
            find(&l, "usr/lib64/ld-linux-x86-64.so.2").header.kind,
            EntryKind::Symlink {
                target: "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2".into()
            },
            "targets are kept verbatim"
        );

        let unmerged = list_deb(&deb(&data)[..], "x", &PathMap { merged_usr: false }).unwrap();
        assert!(paths(&unmerged).contains(&"lib/x86_64-linux-gnu/libc.so.6"));
        assert!(paths(&unmerged).contains(&"bin"));

        // trixie base-files ships the links itself: dropped, synthesized per image instead
        let l = list(&deb(&[
            T::Sym("./bin", "usr/bin"),
            T::Sym("./lib64", "usr/lib64"),
            T::Dir("./usr/"),
        ]))
        .unwrap();
        assert_eq!(paths(&l), ["usr"]);
        let err = list(&deb(&[T::Sym("./lib", "elsewhere")])).unwrap_err();
        assert!(err.to_string().contains("merged /usr"), "{err}");
        let err = list(&deb(&[T::File("./sbin", b"x")])).unwrap_err();
        assert!(matches!(err, DebError::BadPath { .. }), "{err}");
        // the same file shipped under /lib and /usr/lib
        let err = list(&deb(&[
            T::File("./lib/a", b"1"),
            T::File("./usr/lib/a", b"1"),
        ]))
        .unwrap_err();
        assert!(
            matches!(err, DebError::Duplicate { ref path, .. } if path == "usr/lib/a"),
            "{err}"
        );
    }

    #[test]
    fn long_and_non_ascii_names() {
        let long_dir = format!("./usr/share/{}", "d".repeat(120));
        let long_file = format!("{long_dir}/{}.txt", "f".repeat(90));
        let long_target = format!("/opt/{}", "t".repeat(150));
        let cert =
            "./usr/share/ca-certificates/mozilla/NetLock_Arany_=Class_Gold=_Főtanúsítvány.crt";
        let pax_path = format!("./opt/pax/{}/ü", "p".repeat(200));
        let l = list(&deb(&[
            T::Dir(&long_dir),
            T::File(&long_file, b"long"),
            T::Sym("./usr/bin/far", &long_target),
            T::File(cert, b"cert"),
            T::Pax(&pax_path, b"pax"),
        ]))
        .unwrap();
        assert_eq!(
            find(&l, &long_file[2..]).header.kind,
            EntryKind::File { size: 4 }
        );
        assert_eq!(find(&l, &long_dir[2..]).header.kind, EntryKind::Dir);
        assert_eq!(
            find(&l, "usr/bin/far").header.kind,
            EntryKind::Symlink {
                target: long_target.clone()
            }
        );
        assert_eq!(
            find(&l, &cert[2..]).content_hash,
            *blake3::hash(b"cert").as_bytes()
        );
        assert_eq!(
            find(&l, &pax_path[2..]).content_hash,
            *blake3::hash(b"pax").as_bytes()
        );
    }

    #[test]
    fn ustar_prefix_field() {
        // POSIX ustar: prefix "usr/share/doc" (at 345) + name "x"
        let mut t = block(b"x", b"", b'0', 0o644, 1, false).to_vec();
        t[345..358].copy_from_slice(b"usr/share/doc");
        t[148..156].copy_from_slice(b"        ");
        let sum: u64 = t.iter().map(|&b| u64::from(b)).sum();
        t[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        push_data(&mut t, b"!");
        t.extend_from_slice(&[0u8; 1024]);
        let bytes = ar(&[
            ("debian-binary", b"2.0\n"),
            ("control.tar", &control_tar(&[])),
            ("data.tar", &t),
        ]);
        assert_eq!(paths(&list(&bytes).unwrap()), ["usr/share/doc/x"]);
    }

    #[test]
    fn hard_links_carry_content_on_the_first_path() {
        let data = [
            T::Dir("./usr/"),
            T::Dir("./usr/bin/"),
            T::File("./usr/bin/perl5.36", b"perl"),
            T::Hard("./usr/bin/perl", "./usr/bin/perl5.36"),
            T::Hard("./usr/bin/zz", "./usr/bin/perl"),
        ];
        let l = list(&deb(&data)).unwrap();
        let perl = find(&l, "usr/bin/perl");
        assert_eq!(perl.header.kind, EntryKind::File { size: 4 });
        assert_eq!(perl.content_hash, *blake3::hash(b"perl").as_bytes());
        assert_eq!(
            perl.data_path, "./usr/bin/perl5.36",
            "the member holding the bytes"
        );
        for p in ["usr/bin/perl5.36", "usr/bin/zz"] {
            assert_eq!(
                find(&l, p).header.kind,
                EntryKind::HardLink {
                    target: "usr/bin/perl".into()
                }
            );
            assert_eq!(find(&l, p).content_hash, [0; 32]);
        }
        // generated md5sums list every path of the group, as shipped
        let md5 = l.md5sums.unwrap();
        assert_eq!(md5.lines().count(), 3, "{md5}");
        let sums: Vec<(&str, &str)> = md5.lines().map(|l| l.split_once("  ").unwrap()).collect();
        assert_eq!(
            sums.iter().map(|s| s.1).collect::<Vec<_>>(),
            ["usr/bin/perl", "usr/bin/perl5.36", "usr/bin/zz"]
        );
        assert!(sums.iter().all(|s| s.0 == sums[0].0 && s.0.len() == 32));

        let t = tempfile::tempdir().unwrap();
        let l = extract_deb(&deb(&data)[..], "x", &PathMap::default(), t.path()).unwrap();
        assert_eq!(
            std::fs::read(t.path().join("usr/bin/perl")).unwrap(),
            b"perl"
        );
        assert!(!t.path().join("usr/bin/perl5.36").exists());
        let planned = l.planned_entries("x", t.path()).unwrap();
        assert!(matches!(
            planned
                .iter()
                .find(|e| e.header.path == "usr/bin/perl")
                .unwrap()
                .content,
            Content::Local { size: 4, .. }
        ));

        for bad in [
            vec![T::Hard("./a", "./missing")],
            vec![T::Hard("./a", "./b"), T::File("./b", b"later")],
            vec![T::Dir("./d/"), T::Hard("./a", "./d")],
            vec![T::Sym("./s", "x"), T::Hard("./a", "./s")],
            vec![T::File("./b", b"1"), T::Hard("./a", "../b")],
        ] {
            let err = list(&deb(&bad)).unwrap_err();
            assert!(matches!(err, DebError::HardLink { .. }), "{err}");
        }
    }

    #[test]
    fn every_compression() {
        for z in [Z::None, Z::Gz, Z::Xz, Z::Zst] {
            let c = compress(z, &control_tar(&[]));
            let d = compress(z, &tar(&[T::File("./usr/x", b"content")]));
            let bytes = ar(&[
                ("debian-binary", b"2.0\n"),
                (&format!("control.tar{}", ext(z)), &c),
                (&format!("data.tar{}", ext(z)), &d),
            ]);
            let l = list(&bytes).unwrap_or_else(|e| panic!("{z:?}: {e}"));
            assert_eq!(paths(&l), ["usr/x"], "{z:?}");
            assert_eq!(
                l.entries[0].content_hash,
                *blake3::hash(b"content").as_bytes()
            );
        }
        let bytes = ar(&[
            ("debian-binary", b"2.0\n"),
            ("control.tar.gz", &compress(Z::Gz, &control_tar(&[]))),
            ("data.tar.bz2", b"BZh9"),
        ]);
        let err = list(&bytes).unwrap_err();
        assert!(
            matches!(err, DebError::Unsupported { ref member, .. } if member == "data.tar.bz2"),
            "{err}"
        );
    }

    #[test]
    fn member_rules() {
        let c = compress(Z::Gz, &control_tar(&[]));
        let d = compress(Z::Xz, &tar(&[T::File("./x", b"1")]));
        // `_` members before control/data are ignored, anything after data too
        let ok = ar(&[
            ("debian-binary", b"2.0\n"),
            ("_gpgorigin", b"sig"),
            ("control.tar.gz", &c),
            ("_x", b""),
            ("data.tar.xz", &d),
            ("whatever", b"ignored"),
        ]);
        assert_eq!(paths(&list(&ok).unwrap()), ["x"]);
        // a higher minor version is fine
        let ok = ar(&[
            ("debian-binary", b"2.9\n"),
            ("control.tar.gz", &c),
            ("data.tar.xz", &d),
        ]);
        list(&ok).unwrap();

        let cases: Vec<(Vec<u8>, &str)> = vec![
            (
                ar(&[
                    ("debian-binary", b"2.0\n"),
                    ("data.tar.xz", &d),
                    ("control.tar.gz", &c),
                ]),
                "unexpected member `data.tar.xz`",
            ),
            (
                ar(&[
                    ("control.tar.gz", &c),
                    ("debian-binary", b"2.0\n"),
                    ("data.tar.xz", &d),
                ]),
                "unexpected member `control.tar.gz`",
            ),
            (
                ar(&[
                    ("debian-binary", b"2.0\n"),
                    ("extra", b""),
                    ("control.tar.gz", &c),
                    ("data.tar.xz", &d),
                ]),
                "unexpected member `extra`",
            ),
            (
                ar(&[("debian-binary", b"2.0\n"), ("control.tar.gz", &c)]),
                "`end of archive`",
            ),
            (
                ar(&[
                    ("debian-binary", b"3.0\n"),
                    ("control.tar.gz", &c),
                    ("data.tar.xz", &d),
                ]),
                "format version \"3.0\"",
            ),
            (
                ar(&[
                    ("debian-binary", b"2\n"),
                    ("control.tar.gz", &c),
                    ("data.tar.xz", &d),
                ]),
                "format version \"2\"",
            ),
            (b"PK\x03\x04 not an ar".to_vec(), "not a Debian package"),
            (
                ar(&[
                    ("debian-binary", b"2.0\n"),
                    (
                        "control.tar.gz",
                        &compress(Z::Gz, &tar(&[T::File("./md5sums", b"")])),
                    ),
                    ("data.tar.xz", &d),
                ]),
                "has no `control` file",
            ),
        ];
        for (bytes, want) in cases {
            let err = list(&bytes).unwrap_err().to_string();
            assert!(err.contains(want), "{err:?} should contain {want:?}");
            assert!(err.starts_with("hello_1.0-1_amd64.deb: "), "{err}");
        }
    }

    #[test]
    fn bad_paths_are_rejected() {
        for (name, want) in [
            ("../escape", "`..`"),
            ("./usr/../../etc/passwd", "`..`"),
            ("/etc/passwd", "absolute"),
            ("./a//b", "empty path component"),
            ("./a/./b", "`.`"),
            ("", "empty"),
        ] {
            let err = list(&deb(&[T::File(name, b"x")])).unwrap_err();
            assert!(matches!(err, DebError::BadPath { .. }), "{name}: {err}");
            assert!(err.to_string().contains(want), "{name}: {err}");
        }
        let err = list(&deb(&[T::Sym("./x", "")])).unwrap_err();
        assert!(matches!(err, DebError::BadPath { .. }), "{err}");
    }

    #[test]
    fn writing_through_a_symlink_is_rejected() {
        let ok = list(&deb(&[T::Sym("./usr/share/evil", "/etc")])).unwrap();
        assert_eq!(
            paths(&ok),
            ["usr/share/evil"],
            "an escaping link alone is fine"
        );
        let err = list(&deb(&[
            T::Sym("./evil", "/etc"),
            T::File("./evil/passwd", b"root::0:0::/:/bin/sh\n"),
        ]))
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "hello_1.0-1_amd64.deb: ./evil/passwd writes through symlink /evil placed earlier by the package"
        );
        // also through a relative link, and through a link reached after merged-/usr mapping
        let err = list(&deb(&[
            T::Sym("./usr/lib/d", "../.."),
            T::Dir("./usr/lib/d/etc/"),
        ]))
        .unwrap_err();
        assert!(
            matches!(err, DebError::WritesThroughSymlink { .. }),
            "{err}"
        );
        let err = list(&deb(&[
            T::Sym("./usr/lib/x", "/tmp"),
            T::File("./lib/x/y", b"1"),
        ]))
        .unwrap_err();
        assert!(
            matches!(err, DebError::WritesThroughSymlink { ref symlink, .. } if symlink == "usr/lib/x"),
            "{err}"
        );
        // below a regular file
        let err = list(&deb(&[T::File("./f", b"1"), T::File("./f/g", b"2")])).unwrap_err();
        assert!(matches!(err, DebError::NotADirectory { .. }), "{err}");
        let err = list(&deb(&[T::File("./f/g", b"2"), T::File("./f", b"1")])).unwrap_err();
        assert!(matches!(err, DebError::NotADirectory { .. }), "{err}");
        let err = list(&deb(&[T::File("./f", b"1"), T::Sym("./f", "x")])).unwrap_err();
        assert!(matches!(err, DebError::Duplicate { .. }), "{err}");
    }

    #[test]
    fn special_files_are_rejected() {
        for (flag, what) in [
            (b'3', "character device"),
            (b'4', "block device"),
            (b'6', "FIFO"),
            (b'7', "unsupported"),
        ] {
            let err = list(&deb(&[T::Dir("./dev/"), T::Typed("./dev/null", flag)])).unwrap_err();
            assert!(matches!(err, DebError::SpecialFile { .. }), "{err}");
            let msg = err.to_string();
            assert!(msg.contains("./dev/null") && msg.contains(what), "{msg}");
        }
    }

    #[test]
    fn truncated_archives_are_errors_at_every_cut() {
        let md5 = "0123456789abcdef0123456789abcdef  usr/x\n";
        for z in [Z::None, Z::Gz, Z::Xz, Z::Zst] {
            let big: Vec<u8> = (0..20_000u32).flat_map(u32::to_le_bytes).collect();
            let bytes = deb_with(
                &control_tar(&[("./md5sums", md5.as_bytes())]),
                &[T::File("./usr/x", &big), T::File("./usr/y", b"tail")],
                z,
            );
            list(&bytes).unwrap();
            let step = (bytes.len() / 97).max(1);
            for cut in (0..bytes.len()).step_by(step).chain([bytes.len() - 1]) {
                let err = list(&bytes[..cut]).expect_err(&format!("{z:?} cut at {cut}"));
                assert!(
                    matches!(
                        err,
                        DebError::Truncated { .. }
                            | DebError::NotDeb { .. }
                            | DebError::UnexpectedMember { .. }
                    ),
                    "{z:?} cut at {cut}: {err:?}"
                );
            }
        }
    }

    #[test]
    fn corrupt_tar_header_is_an_error() {
        let mut t = tar(&[T::File("./x", b"1")]);
        t[10] ^= 1; // name byte: checksum no longer matches
        let bytes = ar(&[
            ("debian-binary", b"2.0\n"),
            ("control.tar", &control_tar(&[])),
            ("data.tar", &t),
        ]);
        let err = list(&bytes).unwrap_err();
        assert!(err.to_string().contains("checksum"), "{err}");
    }

    #[test]
    fn md5sums_are_generated_when_missing() {
        let l = list(&deb_with(
            &control_tar(&[("./conffiles", b"/etc/c.conf\n")]),
            &[
                T::File("./usr/b", b"b"),
                T::File("./etc/c.conf", b"c"),
                T::File("./lib/a", b"a"),
                T::Sym("./s", "b"),
            ],
            Z::Xz,
        ))
        .unwrap();
        assert_eq!(
            l.md5sums.as_deref(),
            Some(
                "0cc175b9c0f1b6a831c399e269772661  lib/a\n\
                 92eb5ffee6ae2fec3ad71c777531578f  usr/b\n"
            ),
            "paths as shipped, sorted, conffiles and symlinks left out"
        );
        let empty = list(&deb(&[T::Dir("./usr/")])).unwrap();
        assert_eq!(empty.md5sums, None);
    }

    #[test]
    fn extraction_writes_files_and_never_follows_links() {
        let data = [
            T::Dir("./usr/"),
            T::Mode("./usr/bin/tool", b"#!/bin/sh\n", 0o4755),
            T::Sym("./usr/bin/alias", "tool"),
            T::File("./lib/x86_64-linux-gnu/libz.so.1", b"zlib"),
        ];
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("x");
        let l = extract_deb(&deb(&data)[..], "x", &PathMap::default(), &dir).unwrap();
        assert_eq!(
            std::fs::read(dir.join("usr/bin/tool")).unwrap(),
            b"#!/bin/sh\n"
        );
        assert_eq!(
            std::fs::read(dir.join("usr/lib/x86_64-linux-gnu/libz.so.1")).unwrap(),
            b"zlib"
        );
        assert!(
            std::fs::symlink_metadata(dir.join("usr/bin/alias")).is_err(),
            "no links on disk"
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("usr/bin/tool"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o7000, 0, "no setuid on the build host");
        let planned = l.planned_entries("x", &dir).unwrap();
        assert_eq!(planned.len(), l.entries.len());
        let tool = planned
            .iter()
            .find(|e| e.header.path == "usr/bin/tool")
            .unwrap();
        assert_eq!(tool.header.mode, 0o4755);
        assert!(
            matches!(&tool.content, Content::Local { path, size: 10, .. } if *path == dir.join("usr/bin/tool"))
        );

        // a link already in the directory is never followed
        let outside = t.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        let dir2 = t.path().join("y");
        std::fs::create_dir(&dir2).unwrap();
        std::os::unix::fs::symlink(&outside, dir2.join("usr")).unwrap();
        let err = extract_deb(&deb(&data)[..], "x", &PathMap::default(), &dir2).unwrap_err();
        assert!(matches!(err, DebError::Extract { .. }), "{err}");
        std::fs::remove_file(dir2.join("usr")).unwrap();
        std::fs::create_dir_all(dir2.join("usr/bin")).unwrap();
        std::os::unix::fs::symlink(outside.join("f"), dir2.join("usr/bin/tool")).unwrap();
        let err = extract_deb(&deb(&data)[..], "x", &PathMap::default(), &dir2).unwrap_err();
        assert!(matches!(err, DebError::Extract { .. }), "{err}");
        assert_eq!(
            std::fs::read_dir(&outside).unwrap().count(),
            0,
            "nothing written outside"
        );
    }

    #[test]
    fn control_field_reads_the_first_stanza() {
        let c = "Package: hello\nversion: 1.0\nDescription: short\n more\n .\n end\nDepends: a,\n b\n\nPackage: other\n";
        assert_eq!(control_field(c, "Package").as_deref(), Some("hello"));
        assert_eq!(control_field(c, "VERSION").as_deref(), Some("1.0"));
        assert_eq!(
            control_field(c, "Description").as_deref(),
            Some("short\nmore\n.\nend")
        );
        assert_eq!(control_field(c, "Depends").as_deref(), Some("a,\nb"));
        assert_eq!(control_field(c, "Source"), None);
    }

    // ---- against dpkg-deb, when the host has it

    fn dpkg_deb() -> bool {
        Command::new("dpkg-deb")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    }

    /// Paths of `dpkg-deb -c` (fields: mode owner size date time name [-> target | link to x]).
    fn dpkg_paths(deb: &Path) -> Vec<String> {
        let out = Command::new("dpkg-deb")
            .arg("-c")
            .arg(deb)
            .output()
            .unwrap();
        assert!(out.status.success());
        let text = String::from_utf8(out.stdout).unwrap();
        let mut v: Vec<String> = text
            .lines()
            .filter_map(|line| {
                let mut rest = line;
                for _ in 0..5 {
                    rest = rest.trim_start();
                    rest = &rest[rest.find(' ')?..];
                }
                let name = rest.trim_start();
                let name = name.split(" -> ").next()?.split(" link to ").next()?;
                normalize(name.as_bytes()).ok().flatten()
            })
            .collect();
        v.sort();
        v
    }

    #[test]
    fn agrees_with_dpkg_deb() {
        if !dpkg_deb() {
            eprintln!("dpkg-deb not found; skipped");
            return;
        }
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("pkg");
        let mk = |p: &str, body: &[u8]| {
            let p = root.join(p);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, body).unwrap();
        };
        mk(
            "DEBIAN/control",
            b"Package: t\nVersion: 1\nArchitecture: all\nMaintainer: t <t@t>\nDescription: t\n",
        );
        mk("usr/bin/tool", b"tool");
        mk("lib/x86_64-linux-gnu/libt.so.1", b"lib");
        let long = format!("usr/share/{}/{}", "d".repeat(110), "f".repeat(100));
        mk(&long, b"long");
        mk(
            "usr/share/ca-certificates/mozilla/Főtanúsítvány.crt",
            b"cert",
        );
        std::os::unix::fs::symlink("tool", root.join("usr/bin/alias")).unwrap();
        std::fs::hard_link(root.join("usr/bin/tool"), root.join("usr/bin/tool2")).unwrap();
        for z in ["xz", "gzip", "zstd", "none"] {
            let out = t.path().join(format!("t-{z}.deb"));
            let st = Command::new("dpkg-deb")
                .args(["--root-owner-group", "-Z", z, "--build"])
                .arg(&root)
                .arg(&out)
                .output()
                .unwrap();
            if !st.status.success() {
                eprintln!("dpkg-deb -Z{z}: {}", String::from_utf8_lossy(&st.stderr));
                assert_ne!(z, "xz");
                continue;
            }
            let f = std::fs::File::open(&out).unwrap();
            let l = list_deb(f, "t", &PathMap { merged_usr: false }).unwrap();
            let mut ours: Vec<String> = l.entries.iter().map(|e| e.header.path.clone()).collect();
            ours.sort();
            assert_eq!(ours, dpkg_paths(&out), "-Z{z}");
            assert!(l.control.starts_with("Package: t\n"));
            // dpkg-deb --build writes no md5sums: ours match md5sum(1)
            let md5 = l.md5sums.unwrap();
            let tool = Command::new("md5sum")
                .arg(root.join("usr/bin/tool"))
                .output()
                .unwrap();
            let tool = String::from_utf8(tool.stdout).unwrap();
            let tool_sum = tool.split_whitespace().next().unwrap();
            assert!(
                md5.contains(&format!("{tool_sum}  usr/bin/tool\n")),
                "{md5}"
            );
            assert!(
                md5.contains(&format!("{tool_sum}  usr/bin/tool2\n")),
                "{md5}"
            );
            let merged =
                list_deb(std::fs::File::open(&out).unwrap(), "t", &PathMap::default()).unwrap();
            assert!(
                merged
                    .entries
                    .iter()
                    .any(|e| e.header.path == "usr/lib/x86_64-linux-gnu/libt.so.1")
            );
            let tool2 = merged
                .entries
                .iter()
                .filter(|e| matches!(e.header.kind, EntryKind::HardLink { .. }))
                .count();
            assert_eq!(tool2, 1);
        }
    }

    #[test]
    fn lists_cached_debs_like_dpkg_deb() {
        if !dpkg_deb() {
            return;
        }
        let Ok(dir) = std::fs::read_dir("/var/cache/apt/archives") else {
            return;
        };
        let mut debs: Vec<PathBuf> = dir
            .filter_map(|e| Some(e.ok()?.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "deb"))
            .collect();
        debs.sort();
        for deb in debs.iter().take(5) {
            let l = list_deb(
                std::fs::File::open(deb).unwrap(),
                &deb.display().to_string(),
                &PathMap { merged_usr: false },
            )
            .unwrap();
            let mut ours: Vec<String> = l.entries.iter().map(|e| e.header.path.clone()).collect();
            ours.sort();
            assert_eq!(ours, dpkg_paths(deb), "{}", deb.display());
        }
    }
}
