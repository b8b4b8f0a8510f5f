//! sha256 content digests: the validated [`Digest`] newtype and hashing adapters.
//!
//! A [`Digest`] is always `sha256:` followed by 64 lowercase hex characters. Every way of
//! making one from text ([`FromStr`], [`TryFrom<String>`], serde) goes through the same
//! validation, so a `Digest` in hand is always well formed and safe to use as a file name.
//!
//! [`Sha256Writer`] and [`Sha256Reader`] hash and count the bytes that pass through them, so a
//! stream is hashed while it is copied, never read twice.

use std::fmt;
use std::io::{self, Read, Write};
use std::str::FromStr;

use sha2::Digest as _;
use sha2::Sha256;

/// The only algorithm the store knows.
pub const SHA256_PREFIX: &str = "sha256:";

/// Number of hex characters in a sha256 digest.
const HEX_LEN: usize = 64;

/// A sha256 digest, written `sha256:<64 lowercase hex>`.
///
/// Ordering is the ordering of the hex text (equal to the ordering of the raw bytes).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Digest {
    /// The full text, `sha256:<hex>`; validated on construction.
    text: String,
}

impl Digest {
    /// The 64 lowercase hex characters, without the `sha256:` prefix.
    pub fn hex(&self) -> &str {
        &self.text[SHA256_PREFIX.len()..]
    }

    /// The full text, `sha256:<hex>` (same as `Display`).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The sha256 digest of `b`.
    pub fn of_bytes(b: &[u8]) -> Digest {
        Digest::from_sha256_bytes(Sha256::digest(b).into())
    }

    /// The digest whose raw sha256 value is `b`.
    pub fn from_sha256_bytes(b: [u8; 32]) -> Digest {
        Digest {
            text: format!("{SHA256_PREFIX}{}", hex::encode(b)),
        }
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.text)
    }
}

/// Why a text is not a valid [`Digest`].
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DigestParseError {
    /// No `algorithm:` prefix at all.
    #[error("digest {input:?} has no algorithm prefix; expected \"sha256:<64 lowercase hex>\"")]
    MissingAlgorithm {
        /// The rejected text (shortened if very long).
        input: String,
    },
    /// An algorithm other than sha256.
    #[error("digest {input:?} uses algorithm {algorithm:?}; only sha256 is supported")]
    UnsupportedAlgorithm {
        /// The rejected text (shortened if very long).
        input: String,
        /// The algorithm it names.
        algorithm: String,
    },
    /// The hex part has the wrong length.
    #[error("digest {input:?} has {len} characters after \"sha256:\"; expected 64 lowercase hex")]
    BadLength {
        /// The rejected text (shortened if very long).
        input: String,
        /// Length of the part after `sha256:`.
        len: usize,
    },
    /// The hex part has a character that is not lowercase hex.
    #[error(
        "digest {input:?} has {ch:?} at position {pos} after \"sha256:\"; expected lowercase hex (0-9, a-f)"
    )]
    BadChar {
        /// The rejected text (shortened if very long).
        input: String,
        /// Position of the bad character, counted in characters after `sha256:`.
        pos: usize,
        /// The bad character.
        ch: char,
    },
}

/// Keeps error messages readable when someone feeds a megabyte of junk to the parser.
pub(crate) fn shorten(s: &str) -> String {
    const MAX: usize = 100;
    match s.char_indices().nth(MAX) {
        None => s.to_owned(),
        Some((i, _)) => format!("{}…", &s[..i]),
    }
}

impl FromStr for Digest {
    type Err = DigestParseError;

    fn from_str(s: &str) -> Result<Digest, DigestParseError> {
        let Some((algorithm, hex_part)) = s.split_once(':') else {
            return Err(DigestParseError::MissingAlgorithm { input: shorten(s) });
        };
        if algorithm != "sha256" {
            return Err(DigestParseError::UnsupportedAlgorithm {
                input: shorten(s),
                algorithm: shorten(algorithm),
            });
        }
        if let Some((pos, ch)) = hex_part
            .chars()
            .enumerate()
            .find(|(_, c)| !matches!(c, '0'..='9' | 'a'..='f'))
        {
            return Err(DigestParseError::BadChar {
                input: shorten(s),
                pos,
                ch,
            });
        }
        if hex_part.len() != HEX_LEN {
            return Err(DigestParseError::BadLength {
                input: shorten(s),
                len: hex_part.len(),
            });
        }
        Ok(Digest { text: s.to_owned() })
    }
}

impl TryFrom<String> for Digest {
    type Error = DigestParseError;

    fn try_from(s: String) -> Result<Digest, DigestParseError> {
        s.parse()
    }
}

impl TryFrom<&str> for Digest {
    type Error = DigestParseError;

    fn try_from(s: &str) -> Result<Digest, DigestParseError> {
        s.parse()
    }
}

impl From<Digest> for String {
    fn from(d: Digest) -> String {
        d.text
    }
}

/// A [`Write`] adapter that hashes (sha256) and counts every byte written through it.
///
/// Only the bytes the inner writer accepted are hashed, so a short write cannot make the
/// digest disagree with what was actually written.
#[derive(Debug)]
pub struct Sha256Writer<W> {
    inner: W,
    hasher: Sha256,
    len: u64,
}

impl<W> Sha256Writer<W> {
    /// Wraps `w`; nothing has been hashed yet.
    pub fn new(w: W) -> Sha256Writer<W> {
        Sha256Writer {
            inner: w,
            hasher: Sha256::new(),
            len: 0,
        }
    }

    /// Number of bytes written so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing has been written yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The inner writer, for inspection.
    pub fn get_ref(&self) -> &W {
        &self.inner
    }

    /// Returns the inner writer, the digest of everything written, and its length.
    ///
    /// Does not flush: flush first if the inner writer buffers.
    pub fn finish(self) -> (W, Digest, u64) {
        let digest = Digest::from_sha256_bytes(self.hasher.finalize().into());
        (self.inner, digest, self.len)
    }
}

impl<W: Write> Write for Sha256Writer<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A [`Read`] adapter that hashes (sha256) and counts every byte read through it.
#[derive(Debug)]
pub struct Sha256Reader<R> {
    inner: R,
    hasher: Sha256,
    len: u64,
}

impl<R> Sha256Reader<R> {
    /// Wraps `r`; nothing has been hashed yet.
    pub fn new(r: R) -> Sha256Reader<R> {
        Sha256Reader {
            inner: r,
            hasher: Sha256::new(),
            len: 0,
        }
    }

    /// Returns the inner reader, the digest of everything read, and its length.
    pub fn finish(self) -> (R, Digest, u64) {
        let digest = Digest::from_sha256_bytes(self.hasher.finalize().into());
        (self.inner, digest, self.len)
    }
}

impl<R: Read> Read for Sha256Reader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn of_bytes_matches_known_value() {
        assert_eq!(Digest::of_bytes(b"").to_string(), EMPTY);
        assert_eq!(
            Digest::of_bytes(b"abc").hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn parse_roundtrip() {
        let d: Digest = EMPTY.parse().unwrap();
        assert_eq!(d.to_string(), EMPTY);
        assert_eq!(d, Digest::of_bytes(b""));
        assert_eq!(d.as_str(), EMPTY);
    }

    #[test]
    fn parse_rejects_bad_text() {
        assert!(matches!(
            "e3b0".parse::<Digest>(),
            Err(DigestParseError::MissingAlgorithm { .. })
        ));
        assert!(matches!(
            format!("sha512:{}", &EMPTY[7..]).parse::<Digest>(),
            Err(DigestParseError::UnsupportedAlgorithm { .. })
        ));
        assert!(matches!(
            "sha256:abc".parse::<Digest>(),
            Err(DigestParseError::BadLength { len: 3, .. })
        ));
        let upper = EMPTY.to_uppercase().replace("SHA256", "sha256");
        assert!(matches!(
            upper.parse::<Digest>(),
            Err(DigestParseError::BadChar {
                pos: 0,
                ch: 'E',
                ..
            })
        ));
        let slash = format!("sha256:../{}", &EMPTY[10..]);
        assert!(matches!(
            slash.parse::<Digest>(),
            Err(DigestParseError::BadChar { ch: '.', .. })
        ));
        // A multi-byte character must not panic or be miscounted.
        assert!("sha256:é".parse::<Digest>().is_err());
        let msg = "sha256:abc".parse::<Digest>().unwrap_err().to_string();
        assert!(msg.contains("sha256:abc") && msg.contains("64"), "{msg}");
    }

    #[test]
    fn serde_goes_through_validation() {
        let d = Digest::of_bytes(b"x");
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(json, format!("\"{d}\""));
        assert_eq!(serde_json::from_str::<Digest>(&json).unwrap(), d);
        let err = serde_json::from_str::<Digest>("\"sha256:zz\"").unwrap_err();
        assert!(err.to_string().contains("sha256:zz"), "{err}");
    }

    #[test]
    fn ordering_follows_text() {
        let a: Digest = format!("sha256:{}", "0".repeat(64)).parse().unwrap();
        let b: Digest = format!("sha256:{}", "f".repeat(64)).parse().unwrap();
        assert!(a < b);
    }

    #[test]
    fn writer_and_reader_hash_what_passes() {
        let mut w = Sha256Writer::new(Vec::new());
        w.write_all(b"ab").unwrap();
        w.write_all(b"c").unwrap();
        let (inner, d, n) = w.finish();
        assert_eq!(inner, b"abc");
        assert_eq!(d, Digest::of_bytes(b"abc"));
        assert_eq!(n, 3);

        let mut r = Sha256Reader::new(&b"abc"[..]);
        io::copy(&mut r, &mut io::sink()).unwrap();
        let (_, d, n) = r.finish();
        assert_eq!(d, Digest::of_bytes(b"abc"));
        assert_eq!(n, 3);
    }
}
