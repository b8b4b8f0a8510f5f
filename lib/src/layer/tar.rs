//! A minimal, deterministic tar writer: ustar headers written field by field, PAX records
//! only where ustar cannot hold a value (long names, long link targets, large ids/sizes).
//!
//! We do not use the `tar` crate's `Builder` for writing: its defaults follow symlinks, detect
//! sparse files from on-disk holes and walk directories unsorted (see
//! `shared/reference/crates.md`). Every byte written here is a function of the [`Entry`]
//! values and the epoch alone: no user/group names, no atime/ctime, no device numbers.

use std::io::{self, Write};

/// Size of one tar block.
pub const BLOCK: usize = 512;

/// What an archive entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// A directory.
    Dir,
    /// A regular file of `size` bytes; the content is supplied by the caller when writing.
    File {
        /// Content length in bytes.
        size: u64,
    },
    /// A symbolic link.
    Symlink {
        /// Link target, verbatim.
        target: String,
    },
    /// A hard link to an earlier entry of the same layer (relative path, no leading `/`).
    HardLink {
        /// Path of the earlier entry.
        target: String,
    },
}

/// The metadata of one entry. `path` is relative to the image root, without a leading `/`
/// and without a trailing `/` (directories get their `/` when written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Image path, relative (`usr/bin/python3`).
    pub path: String,
    /// Permission bits including setuid/setgid/sticky (`0o7777` mask).
    pub mode: u32,
    /// Owner uid.
    pub uid: u32,
    /// Owner gid.
    pub gid: u32,
    /// Entry kind.
    pub kind: EntryKind,
}

const USTAR_ID_MAX: u64 = 0o7_777_777;
const USTAR_SIZE_MAX: u64 = 0o77_777_777_777;

/// Writes the header block(s) of `h` with modification time `mtime`. For a file, the caller
/// then writes exactly `size` bytes followed by [`padding`] of that size.
///
/// # Errors
/// I/O errors of `w`, or an entry that cannot be represented (empty path, NUL in a name).
pub fn write_header<W: Write>(w: &mut W, h: &Header, mtime: u64) -> io::Result<()> {
    if h.path.is_empty() || h.path.contains('\0') || h.path.starts_with('/') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("invalid tar entry path {:?}", h.path),
        ));
    }
    let mut name = h.path.clone();
    if h.kind == EntryKind::Dir {
        name.push('/');
    }
    let (typeflag, size, link) = match &h.kind {
        EntryKind::Dir => (b'5', 0, ""),
        EntryKind::File { size } => (b'0', *size, ""),
        EntryKind::Symlink { target } => (b'2', 0, target.as_str()),
        EntryKind::HardLink { target } => (b'1', 0, target.as_str()),
    };
    if link.contains('\0') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("invalid link target {link:?} for {:?}", h.path),
        ));
    }

    let mut pax: Vec<(&str, String)> = Vec::new();
    let split = split_ustar_name(name.as_bytes());
    if split.is_none() {
        pax.push(("path", name.clone()));
    }
    if link.len() > 100 {
        pax.push(("linkpath", link.to_string()));
    }
    if u64::from(h.uid) > USTAR_ID_MAX {
        pax.push(("uid", h.uid.to_string()));
    }
    if u64::from(h.gid) > USTAR_ID_MAX {
        pax.push(("gid", h.gid.to_string()));
    }
    if size > USTAR_SIZE_MAX {
        pax.push(("size", size.to_string()));
    }
    if !pax.is_empty() {
        pax.sort_by(|a, b| a.0.cmp(b.0));
        let mut body = Vec::new();
        for (k, v) in &pax {
            body.extend_from_slice(&pax_record(k, v));
        }
        let pax_name = pax_header_name(&name);
        let mut block = header_block(
            pax_name.as_bytes(),
            b"",
            0o644,
            0,
            0,
            body.len() as u64,
            mtime,
            b'x',
            b"",
        );
        set_checksum(&mut block);
        w.write_all(&block)?;
        w.write_all(&body)?;
        w.write_all(&vec![0u8; padding(body.len() as u64)])?;
    }

    let (prefix, short) = match split {
        Some((p, n)) => (p, n),
        // The PAX `path` record carries the real name; ustar gets a truncated stand-in.
        None => (&b""[..], truncate_bytes(name.as_bytes(), 100)),
    };
    let link_field = truncate_bytes(link.as_bytes(), 100);
    let mut block = header_block(
        short,
        prefix,
        h.mode & 0o7777,
        u64::from(h.uid).min(USTAR_ID_MAX),
        u64::from(h.gid).min(USTAR_ID_MAX),
        size.min(USTAR_SIZE_MAX),
        mtime,
        typeflag,
        link_field,
    );
    set_checksum(&mut block);
    w.write_all(&block)
}

/// Number of zero bytes that pad `len` bytes of content to a whole block.
#[must_use]
pub fn padding(len: u64) -> usize {
    let rem = (len % BLOCK as u64) as usize;
    if rem == 0 { 0 } else { BLOCK - rem }
}

/// Bytes that [`write_header`] + content + padding will produce for `h` (used to pledge the
/// uncompressed size to the compressor and to show progress).
#[must_use]
pub fn entry_len(h: &Header) -> u64 {
    let mut c = CountingWriter(0);
    // Writing to a counter cannot fail for valid headers; an invalid header is reported
    // later by the real write, so count only the content here.
    let _ = write_header(&mut c, h, 0);
    let content = match h.kind {
        EntryKind::File { size } => size + padding(size) as u64,
        _ => 0,
    };
    c.0 + content
}

/// The tar end-of-archive marker: two zero blocks.
pub const END_MARKER: [u8; 2 * BLOCK] = [0u8; 2 * BLOCK];

struct CountingWriter(u64);
impl Write for CountingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn truncate_bytes(b: &[u8], n: usize) -> &[u8] {
    &b[..b.len().min(n)]
}

/// Splits a name into ustar `prefix` (≤155) and `name` (≤100) at a `/`, if possible.
fn split_ustar_name(name: &[u8]) -> Option<(&[u8], &[u8])> {
    if name.len() <= 100 {
        return Some((b"", name));
    }
    if name.len() > 256 {
        return None;
    }
    // A trailing '/' (directories) must stay in the name part.
    let search_end = name.len().saturating_sub(1);
    for i in (0..search_end).rev() {
        if name[i] == b'/' {
            let (p, n) = (&name[..i], &name[i + 1..]);
            if p.len() <= 155 && n.len() <= 100 && !n.is_empty() {
                return Some((p, n));
            }
            if p.len() <= 155 {
                // Any earlier split only makes the name part longer.
                return None;
            }
        }
    }
    None
}

/// Deterministic name for a PAX extended header (`dir/PaxHeaders.0/base`, as Go's archive/tar).
fn pax_header_name(name: &str) -> String {
    let trimmed = name.trim_end_matches('/');
    let (dir, base) = match trimmed.rfind('/') {
        Some(i) => (&trimmed[..i], &trimmed[i + 1..]),
        None => ("", trimmed),
    };
    let mut out = if dir.is_empty() {
        format!("PaxHeaders.0/{base}")
    } else {
        format!("{dir}/PaxHeaders.0/{base}")
    };
    if out.len() > 100 {
        let mut cut = 100;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
    }
    out
}

/// One PAX record: `"<len> <key>=<value>\n"` where `len` counts the whole record.
fn pax_record(key: &str, value: &str) -> Vec<u8> {
    let rest = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = rest + 1;
    loop {
        let total = rest + len.to_string().len();
        if total == len {
            break;
        }
        len = total;
    }
    format!("{len} {key}={value}\n").into_bytes()
}

#[allow(clippy::too_many_arguments)]
fn header_block(
    name: &[u8],
    prefix: &[u8],
    mode: u32,
    uid: u64,
    gid: u64,
    size: u64,
    mtime: u64,
    typeflag: u8,
    link: &[u8],
) -> [u8; BLOCK] {
    let mut b = [0u8; BLOCK];
    b[..name.len()].copy_from_slice(name);
    octal(&mut b[100..108], u64::from(mode));
    octal(&mut b[108..116], uid);
    octal(&mut b[116..124], gid);
    octal(&mut b[124..136], size);
    octal(&mut b[136..148], mtime.min(USTAR_SIZE_MAX));
    b[156] = typeflag;
    b[157..157 + link.len()].copy_from_slice(link);
    b[257..263].copy_from_slice(b"ustar\0");
    b[263..265].copy_from_slice(b"00");
    // uname/gname stay empty; devmajor/devminor are zero numbers.
    octal(&mut b[329..337], 0);
    octal(&mut b[337..345], 0);
    b[345..345 + prefix.len()].copy_from_slice(prefix);
    b
}

/// Zero-padded octal with a trailing NUL, filling the field.
fn octal(field: &mut [u8], v: u64) {
    let digits = field.len() - 1;
    let s = format!("{v:0digits$o}");
    let bytes = s.as_bytes();
    let start = bytes.len().saturating_sub(digits);
    field[..digits].copy_from_slice(&bytes[start..]);
    field[digits] = 0;
}

fn set_checksum(b: &mut [u8; BLOCK]) {
    b[148..156].copy_from_slice(b"        ");
    let sum: u64 = b.iter().map(|&x| u64::from(x)).sum();
    let s = format!("{sum:06o}\0 ");
    b[148..156].copy_from_slice(s.as_bytes());
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn file(path: &str, size: u64) -> Header {
        Header {
            path: path.into(),
            mode: 0o644,
            uid: 0,
            gid: 0,
            kind: EntryKind::File { size },
        }
    }

    #[test]
    fn pax_record_length_includes_itself() {
        let r = pax_record("path", "a");
        assert_eq!(r, b"9 path=a\n");
        let long = "x".repeat(95);
        let r = pax_record("path", &long);
        let s = String::from_utf8(r).unwrap();
        let (n, _) = s.split_once(' ').unwrap();
        assert_eq!(n.parse::<usize>().unwrap(), s.len());
    }

    #[test]
    fn short_header_is_one_block_with_valid_checksum() {
        let mut out = Vec::new();
        write_header(&mut out, &file("etc/motd", 5), 1_700_000_000).unwrap();
        assert_eq!(out.len(), BLOCK);
        let stored = std::str::from_utf8(&out[148..154]).unwrap();
        let mut copy = out.clone();
        copy[148..156].copy_from_slice(b"        ");
        let sum: u64 = copy.iter().map(|&x| u64::from(x)).sum();
        assert_eq!(u64::from_str_radix(stored, 8).unwrap(), sum);
        assert_eq!(&out[257..263], b"ustar\0");
        assert_eq!(&out[124..136], b"00000000005\0");
    }

    #[test]
    fn long_names_split_or_use_pax() {
        let mid = format!("{}/{}", "d".repeat(120), "f".repeat(50));
        let mut out = Vec::new();
        write_header(&mut out, &file(&mid, 0), 0).unwrap();
        assert_eq!(out.len(), BLOCK, "splittable name needs no PAX header");
        let long = format!("{}/{}", "d".repeat(200), "f".repeat(120));
        let mut out = Vec::new();
        write_header(&mut out, &file(&long, 0), 0).unwrap();
        assert_eq!(
            out.len(),
            3 * BLOCK,
            "PAX header + its record block + ustar header"
        );
        assert_eq!(out[156], b'x');
    }

    #[test]
    fn round_trips_through_the_tar_crate() {
        let long = format!("{}/{}", "d".repeat(200), "ü".repeat(70));
        let target = "t".repeat(150);
        let entries = vec![
            Header {
                path: "a".into(),
                mode: 0o755,
                uid: 0,
                gid: 0,
                kind: EntryKind::Dir,
            },
            Header {
                path: "a/s".into(),
                mode: 0o4755,
                uid: 3_000_000,
                gid: 7,
                kind: EntryKind::File { size: 3 },
            },
            Header {
                path: long.clone(),
                mode: 0o777,
                uid: 0,
                gid: 0,
                kind: EntryKind::Symlink {
                    target: target.clone(),
                },
            },
            Header {
                path: "a/h".into(),
                mode: 0o4755,
                uid: 0,
                gid: 0,
                kind: EntryKind::HardLink {
                    target: "a/s".into(),
                },
            },
        ];
        let mut out = Vec::new();
        for h in &entries {
            write_header(&mut out, h, 42).unwrap();
            if let EntryKind::File { size } = h.kind {
                out.extend_from_slice(&b"abc"[..size as usize]);
                out.extend(std::iter::repeat_n(0u8, padding(size)));
            }
            assert_eq!(out.len() % BLOCK, 0);
        }
        let expected_len: u64 = entries.iter().map(entry_len).sum();
        assert_eq!(out.len() as u64, expected_len);
        out.extend_from_slice(&END_MARKER);
        let mut ar = ::tar::Archive::new(&out[..]);
        let got: Vec<(String, u32, u64, u8, Option<String>)> = ar
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    e.path().unwrap().to_string_lossy().into_owned(),
                    h.mode().unwrap(),
                    h.uid().unwrap(),
                    h.entry_type().as_byte(),
                    e.link_name()
                        .unwrap()
                        .map(|l| l.to_string_lossy().into_owned()),
                )
            })
            .collect();
        assert_eq!(got[0], ("a/".into(), 0o755, 0, b'5', None));
        assert_eq!(got[1].1, 0o4755);
        assert_eq!(
            got[1].2, 3_000_000,
            "uid above the ustar range survives via PAX"
        );
        assert_eq!(got[2].0, long);
        assert_eq!(got[2].4.as_deref(), Some(target.as_str()));
        assert_eq!(got[3].3, b'1');
    }
}
