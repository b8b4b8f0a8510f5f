//! `Release` files: the signed payload of `dists/<suite>/InRelease` (the signature is checked
//! by [`super::pgp`] before this module sees the text). It names the suite and lists every
//! index file with its size and SHA-256, which is how a `Packages.xz` is trusted.

use sha2::{Digest, Sha256};

use super::control::{ControlError, parse_stanzas};

/// What is wrong with a Release file, or with an index checked against it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReleaseError {
    /// Not deb822.
    #[error("Release file: {0}")]
    Control(#[from] ControlError),
    /// Empty, or more than one stanza.
    #[error("Release file has {0} stanzas, expected 1")]
    Stanzas(usize),
    /// Neither `Suite` nor `Codename`, or no `SHA256` list.
    #[error("Release file has no `{0}` field")]
    MissingField(&'static str),
    /// A `Date` or `Valid-Until` that is not an RFC 2822 date.
    #[error("Release file: bad `{field}` date `{value}`: {reason}")]
    BadDate {
        /// `Date` or `Valid-Until`.
        field: &'static str,
        /// The text.
        value: String,
        /// Why.
        reason: String,
    },
    /// A line of the `SHA256` list that is not `<hash> <size> <path>`.
    #[error("Release file: bad `SHA256` line `{0}`, expected `<64 hex digits> <size> <path>`")]
    BadHashLine(String),
    /// `Valid-Until` is in the past.
    #[error(
        "Release file for `{suite}` expired on {valid_until} (Valid-Until); fetch a fresh one, \
         or for a pinned snapshot ignore Valid-Until"
    )]
    Expired {
        /// Suite (or codename).
        suite: String,
        /// `Valid-Until` as written.
        valid_until: String,
    },
    /// The index is not listed in the Release file.
    #[error("`{path}` is not listed in the Release file of `{suite}`")]
    NotListed {
        /// Suite (or codename).
        suite: String,
        /// Index path relative to `dists/<suite>/`.
        path: String,
    },
    /// Size differs from the Release file's.
    #[error("`{path}`: size mismatch: Release file says {expected} bytes, got {actual}")]
    SizeMismatch {
        /// Index path.
        path: String,
        /// Size in the Release file.
        expected: u64,
        /// Size of the bytes.
        actual: u64,
    },
    /// SHA-256 differs from the Release file's.
    #[error("`{path}`: sha256 mismatch: Release file says {expected}, got {actual}")]
    HashMismatch {
        /// Index path.
        path: String,
        /// Digest in the Release file.
        expected: String,
        /// Digest of the bytes.
        actual: String,
    },
}

/// One `SHA256` entry: ` <hash> <size> <path>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexFile {
    /// Relative to `dists/<suite>/` (`main/binary-amd64/Packages.xz`).
    pub path: String,
    /// Bytes.
    pub size: u64,
    /// 64 lowercase hex digits.
    pub sha256: String,
}

/// A parsed Release file. Fields that are absent are empty (or `None`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Release {
    /// `Origin` (`Debian`).
    pub origin: String,
    /// `Label` (`Debian-Security`).
    pub label: String,
    /// `Suite` (`stable`, `trixie-security`).
    pub suite: String,
    /// `Codename` (`trixie`).
    pub codename: String,
    /// `Date`, Unix seconds.
    pub date: Option<i64>,
    /// `Valid-Until`, Unix seconds.
    pub valid_until: Option<i64>,
    /// `Valid-Until` as written, for messages.
    pub valid_until_text: Option<String>,
    /// `Architectures`.
    pub architectures: Vec<String>,
    /// `Components`.
    pub components: Vec<String>,
    /// The `SHA256` list, in file order.
    pub sha256: Vec<IndexFile>,
    /// `Acquire-By-Hash: yes`: indices can be fetched by digest (see [`by_hash_path`]).
    pub acquire_by_hash: bool,
}

/// Parses the text of a Release file (or the signed payload of an InRelease).
///
/// # Errors
/// A [`ReleaseError`] for bad deb822, not exactly one stanza, neither `Suite` nor
/// `Codename`, no `SHA256` list, a bad `SHA256` line, or a `Date`/`Valid-Until` that is
/// not an RFC 2822 date.
pub fn parse_release(text: &str) -> Result<Release, ReleaseError> {
    let stanzas = parse_stanzas(text)?;
    let [st] = stanzas.as_slice() else {
        return Err(ReleaseError::Stanzas(stanzas.len()));
    };
    let text_of = |f: &str| st.get(f).unwrap_or("").to_string();
    let words = |f: &str| {
        st.get(f)
            .unwrap_or("")
            .split_whitespace()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let date = |field: &'static str| -> Result<Option<i64>, ReleaseError> {
        st.get(field)
            .map(|v| {
                parse_rfc2822(v).map_err(|reason| ReleaseError::BadDate {
                    field,
                    value: v.to_string(),
                    reason,
                })
            })
            .transpose()
    };
    let suite = text_of("Suite");
    let codename = text_of("Codename");
    if suite.is_empty() && codename.is_empty() {
        return Err(ReleaseError::MissingField("Suite"));
    }
    let Some(list) = st.get("SHA256") else {
        return Err(ReleaseError::MissingField("SHA256"));
    };
    let mut sha256 = Vec::new();
    for line in list.lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let bad = || ReleaseError::BadHashLine(line.to_string());
        let mut parts = line.split_whitespace();
        let (Some(hash), Some(size), Some(path), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        if hash.len() != 64 || !hash.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err(bad());
        }
        sha256.push(IndexFile {
            path: path.to_string(),
            size: size.parse().map_err(|_| bad())?,
            sha256: hash.to_ascii_lowercase(),
        });
    }
    Ok(Release {
        origin: text_of("Origin"),
        label: text_of("Label"),
        suite,
        codename,
        date: date("Date")?,
        valid_until: date("Valid-Until")?,
        valid_until_text: st.get("Valid-Until").map(str::to_string),
        architectures: words("Architectures"),
        components: words("Components"),
        sha256,
        acquire_by_hash: st
            .get("Acquire-By-Hash")
            .is_some_and(|v| v.eq_ignore_ascii_case("yes")),
    })
}

impl Release {
    /// The suite's name for messages: `Suite`, else `Codename`.
    #[must_use]
    pub fn name(&self) -> &str {
        if self.suite.is_empty() {
            &self.codename
        } else {
            &self.suite
        }
    }

    /// Checks `Valid-Until` against `now` (Unix seconds); without `Valid-Until` the file
    /// never expires. The caller decides `now` (and skips this for pinned snapshots).
    ///
    /// # Errors
    /// [`ReleaseError::Expired`] naming the suite and the date when `now` is past it.
    pub fn check_valid_at(&self, now: i64) -> Result<(), ReleaseError> {
        match self.valid_until {
            Some(until) if now > until => Err(ReleaseError::Expired {
                suite: self.name().to_string(),
                valid_until: self
                    .valid_until_text
                    .clone()
                    .unwrap_or_else(|| crate::time::format_rfc3339(until)),
            }),
            _ => Ok(()),
        }
    }

    /// The `SHA256` entry for `path` (relative to `dists/<suite>/`).
    #[must_use]
    pub fn index_entry(&self, path: &str) -> Option<&IndexFile> {
        self.sha256.iter().find(|f| f.path == path)
    }

    /// Checks downloaded index bytes against the Release file: listed, same size, same
    /// SHA-256.
    ///
    /// # Errors
    /// [`ReleaseError::NotListed`], [`ReleaseError::SizeMismatch`] or
    /// [`ReleaseError::HashMismatch`], naming the path, expected and actual values.
    pub fn verify_index(&self, path: &str, bytes: &[u8]) -> Result<(), ReleaseError> {
        let Some(entry) = self.index_entry(path) else {
            return Err(ReleaseError::NotListed {
                suite: self.name().to_string(),
                path: path.to_string(),
            });
        };
        let actual_size = bytes.len() as u64;
        if actual_size != entry.size {
            return Err(ReleaseError::SizeMismatch {
                path: path.to_string(),
                expected: entry.size,
                actual: actual_size,
            });
        }
        let actual = hex::encode(Sha256::digest(bytes));
        if actual != entry.sha256 {
            return Err(ReleaseError::HashMismatch {
                path: path.to_string(),
                expected: entry.sha256.clone(),
                actual,
            });
        }
        Ok(())
    }
}

/// The path of a `Packages` index relative to `dists/<suite>/`: `main/binary-amd64/Packages.xz`.
/// `ext` may be given with or without its dot; an empty `ext` names the uncompressed file.
#[must_use]
pub fn packages_path(component: &str, arch: &str, ext: &str) -> String {
    let ext = ext.trim_start_matches('.');
    if ext.is_empty() {
        format!("{component}/binary-{arch}/Packages")
    } else {
        format!("{component}/binary-{arch}/Packages.{ext}")
    }
}

/// Where `Acquire-By-Hash` serves an index: `main/binary-amd64/Packages.xz` with digest `h`
/// → `main/binary-amd64/by-hash/SHA256/h`.
#[must_use]
pub fn by_hash_path(path: &str, sha256: &str) -> String {
    match path.rsplit_once('/') {
        Some((dir, _)) => format!("{dir}/by-hash/SHA256/{sha256}"),
        None => format!("by-hash/SHA256/{sha256}"),
    }
}

/// Parses an RFC 2822 date as Release files write it, `Sat, 08 Nov 2025 09:38:52 UTC`,
/// into Unix seconds. The weekday is optional (and not checked against the date); the
/// zone is `UTC`, `GMT`, `UT`, `Z` or `±hhmm`; seconds are required.
///
/// # Errors
/// A message saying which part is wrong.
pub fn parse_rfc2822(s: &str) -> Result<i64, String> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    let mut rest = s.trim();
    if let Some((day, after)) = rest.split_once(',') {
        if !DAYS.iter().any(|d| d.eq_ignore_ascii_case(day.trim())) {
            return Err(format!("`{}` is not a weekday", day.trim()));
        }
        rest = after;
    }
    let parts: Vec<&str> = rest.split_whitespace().collect();
    let [day, month, year, time, zone] = parts.as_slice() else {
        return Err("expected `[Day, ]DD Mon YYYY HH:MM:SS ZONE`".into());
    };
    let digits = |t: &str, what: &str, len: std::ops::RangeInclusive<usize>| {
        if len.contains(&t.len()) && t.bytes().all(|c| c.is_ascii_digit()) {
            Ok(t.to_string())
        } else {
            Err(format!("bad {what} `{t}`"))
        }
    };
    let day = digits(day, "day", 1..=2)?;
    let month = MONTHS
        .iter()
        .position(|m| m.eq_ignore_ascii_case(month))
        .ok_or_else(|| format!("bad month `{month}`"))?
        + 1;
    let year = digits(year, "year", 4..=4)?;
    let hms: Vec<&str> = time.split(':').collect();
    let [h, m, sec] = hms.as_slice() else {
        return Err(format!("bad time `{time}`, expected HH:MM:SS"));
    };
    let (h, m, sec) = (
        digits(h, "hour", 1..=2)?,
        digits(m, "minute", 2..=2)?,
        digits(sec, "second", 2..=2)?,
    );
    let offset = match zone.to_ascii_uppercase().as_str() {
        "UTC" | "GMT" | "UT" | "Z" => "Z".to_string(),
        z if z.len() == 5
            && (z.starts_with('+') || z.starts_with('-'))
            && z[1..].bytes().all(|c| c.is_ascii_digit()) =>
        {
            format!("{}:{}", &z[..3], &z[3..])
        }
        _ => return Err(format!("bad time zone `{zone}`")),
    };
    let rfc3339 = format!("{year}-{month:02}-{day:0>2}T{h:0>2}:{m}:{sec}{offset}");
    crate::time::parse_rfc3339(&rfc3339)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const PACKAGES_XZ: &[u8] = b"not really xz";

    fn release_text() -> String {
        let digest = hex::encode(Sha256::digest(PACKAGES_XZ));
        format!(
            "Origin: Debian
Label: Debian-Security
Suite: stable-security
Codename: trixie-security
Date: Sat, 08 Nov 2025 09:38:52 UTC
Valid-Until: Sat, 15 Nov 2025 09:38:52 UTC
Acquire-By-Hash: yes
Architectures: amd64 arm64 i386
Components: updates/main updates/contrib
Description: Debian 13 - Security Updates
MD5Sum:
 0123456789abcdef0123456789abcdef 13 updates/main/binary-amd64/Packages.xz
SHA256:
 0be3d7d96aaf3a0e3d0e8c0f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d  9679304 updates/main/binary-amd64/Packages
 {digest} {len} updates/main/binary-amd64/Packages.xz
",
            len = PACKAGES_XZ.len()
        )
    }

    #[test]
    fn parses_fields() {
        let r = parse_release(&release_text()).unwrap();
        assert_eq!(r.origin, "Debian");
        assert_eq!(r.label, "Debian-Security");
        assert_eq!(r.suite, "stable-security");
        assert_eq!(r.codename, "trixie-security");
        assert_eq!(r.date, Some(1_762_594_732));
        assert_eq!(r.valid_until, Some(1_762_594_732 + 7 * 86_400));
        assert!(r.acquire_by_hash);
        assert_eq!(r.architectures, ["amd64", "arm64", "i386"]);
        assert_eq!(r.components, ["updates/main", "updates/contrib"]);
        assert_eq!(r.sha256.len(), 2);
        assert_eq!(
            r.index_entry("updates/main/binary-amd64/Packages"),
            Some(&IndexFile {
                path: "updates/main/binary-amd64/Packages".into(),
                size: 9_679_304,
                sha256: "0be3d7d96aaf3a0e3d0e8c0f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d".into()
            })
        );
        assert_eq!(r.index_entry("main/binary-amd64/Packages"), None);
    }

    #[test]
    fn valid_until() {
        let r = parse_release(&release_text()).unwrap();
        let until = r.valid_until.unwrap();
        r.check_valid_at(until).unwrap();
        r.check_valid_at(until - 1000).unwrap();
        let e = r.check_valid_at(until + 1).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Release file for `stable-security` expired on Sat, 15 Nov 2025 09:38:52 UTC \
             (Valid-Until); fetch a fresh one, or for a pinned snapshot ignore Valid-Until"
        );
        let no_valid_until =
            release_text().replace("Valid-Until: Sat, 15 Nov 2025 09:38:52 UTC\n", "");
        let r = parse_release(&no_valid_until).unwrap();
        assert_eq!(r.valid_until, None);
        r.check_valid_at(i64::MAX).unwrap();
    }

    #[test]
    fn verify_index() {
        let r = parse_release(&release_text()).unwrap();
        let path = packages_path("updates/main", "amd64", "xz");
        r.verify_index(&path, PACKAGES_XZ).unwrap();
        let e = r.verify_index(&path, b"not really xy").unwrap_err();
        let ReleaseError::HashMismatch {
            path: p,
            expected,
            actual,
        } = &e
        else {
            panic!("{e:?}")
        };
        assert_eq!(p, &path);
        assert_eq!(expected, &hex::encode(Sha256::digest(PACKAGES_XZ)));
        assert_eq!(actual, &hex::encode(Sha256::digest(b"not really xy")));
        assert!(e.to_string().contains(&path) && e.to_string().contains(expected));
        let e = r.verify_index(&path, b"short").unwrap_err();
        assert_eq!(
            e.to_string(),
            "`updates/main/binary-amd64/Packages.xz`: size mismatch: Release file says 13 bytes, got 5"
        );
        let e = r
            .verify_index("main/binary-arm64/Packages.xz", PACKAGES_XZ)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "`main/binary-arm64/Packages.xz` is not listed in the Release file of `stable-security`"
        );
    }

    #[test]
    fn paths() {
        assert_eq!(
            packages_path("main", "amd64", "xz"),
            "main/binary-amd64/Packages.xz"
        );
        assert_eq!(
            packages_path("main", "arm64", ".gz"),
            "main/binary-arm64/Packages.gz"
        );
        assert_eq!(
            packages_path("main", "amd64", ""),
            "main/binary-amd64/Packages"
        );
        assert_eq!(
            by_hash_path("main/binary-amd64/Packages.xz", "abc"),
            "main/binary-amd64/by-hash/SHA256/abc"
        );
    }

    #[test]
    fn rfc2822() {
        assert_eq!(
            parse_rfc2822("Sat, 08 Nov 2025 09:38:52 UTC"),
            Ok(1_762_594_732)
        );
        assert_eq!(parse_rfc2822("8 Nov 2025 09:38:52 GMT"), Ok(1_762_594_732));
        assert_eq!(
            parse_rfc2822("Sat, 08 Nov 2025 10:38:52 +0100"),
            Ok(1_762_594_732)
        );
        assert_eq!(
            parse_rfc2822("Sat, 08 Nov 2025 04:38:52 -0500"),
            Ok(1_762_594_732)
        );
        assert_eq!(parse_rfc2822("Thu, 01 Jan 1970 00:00:00 UTC"), Ok(0));
        assert_eq!(
            parse_rfc2822("Thu, 29 Feb 2024 12:00:00 UTC"),
            Ok(1_709_208_000)
        );
        for bad in [
            "Sat, 08 Nov 2025 09:38 UTC",
            "Sat, 08 Foo 2025 09:38:52 UTC",
            "Sat, 31 Nov 2025 09:38:52 UTC",
            "Sat, 08 Nov 2025 09:38:52 CET",
            "Xyz, 08 Nov 2025 09:38:52 UTC",
            "Sat, 08 Nov 25 09:38:52 UTC",
            "Sat, 08 Nov 2025 25:38:52 UTC",
            "",
        ] {
            assert!(parse_rfc2822(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn errors() {
        let e = parse_release("Suite: x\nSHA256:\n nothex 12 main/Packages\n").unwrap_err();
        assert_eq!(
            e,
            ReleaseError::BadHashLine("nothex 12 main/Packages".into())
        );
        let e = parse_release("Origin: Debian\nSHA256:\n").unwrap_err();
        assert_eq!(e, ReleaseError::MissingField("Suite"));
        let e = parse_release("Suite: x\n").unwrap_err();
        assert_eq!(e, ReleaseError::MissingField("SHA256"));
        let e = parse_release("Suite: x\nSHA256:\n\nSuite: y\n").unwrap_err();
        assert_eq!(e, ReleaseError::Stanzas(2));
        let e = parse_release("Suite: x\nDate: yesterday\nSHA256:\n").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("Release file: bad `Date` date `yesterday`"),
            "{e}"
        );
        let e = parse_release("Suite x\n").unwrap_err();
        assert!(matches!(e, ReleaseError::Control(_)));
    }
}
