//! Debian package versions, parsed and ordered exactly as dpkg does (`deb-version(7)`).
//!
//! A version is `[epoch:]upstream[-revision]`. The epoch is a decimal number (0 when
//! absent) and is compared first. The revision is everything after the **last** hyphen
//! (empty when there is none, so `1.0` and `1.0-0` are equal, as in dpkg). Upstream and
//! revision are compared with dpkg's `verrevcmp`: alternating runs of non-digits and
//! digits; in non-digit runs letters sort before non-letters and `~` sorts before
//! everything, even the end of the string (`1.0~rc1 < 1.0`); digit runs compare as
//! numbers (leading zeros do not count).
//!
//! Parsing follows dpkg's `parseversion`, except that what dpkg only warns about (an
//! upstream part that does not start with a digit, characters outside the allowed sets)
//! is an error here: every version in the Debian archive passes, and a version that does
//! not is more likely a typo in a recipe than a real package.

use std::cmp::Ordering;
use std::fmt;

/// Why a version string is not a valid Debian version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid Debian version `{version}`: {reason}")]
pub struct VersionError {
    /// The text as given.
    pub version: String,
    /// What is wrong with it.
    pub reason: String,
}

/// A parsed Debian version. Ordering and equality are dpkg's (`1.0 == 1.0-0`,
/// `0:1 == 1`); [`fmt::Display`] writes the original text.
#[derive(Debug, Clone)]
pub struct DebVersion {
    original: String,
    epoch: u32,
    upstream: String,
    revision: String,
}

impl DebVersion {
    /// Parses `[epoch:]upstream[-revision]`. Surrounding whitespace is ignored, as dpkg does.
    ///
    /// # Errors
    /// A [`VersionError`] naming the version and what is wrong: empty, embedded space,
    /// empty or non-numeric or too large epoch, nothing after the colon, empty upstream or
    /// revision, upstream not starting with a digit, or a character outside
    /// `[A-Za-z0-9.+~-:]` (upstream) / `[A-Za-z0-9.+~]` (revision).
    pub fn parse(text: &str) -> Result<DebVersion, VersionError> {
        let err = |reason: &str| VersionError {
            version: text.to_string(),
            reason: reason.to_string(),
        };
        let s = text.trim();
        if s.is_empty() {
            return Err(err("version string is empty"));
        }
        if s.chars().any(char::is_whitespace) {
            return Err(err("version string has embedded spaces"));
        }
        let (epoch, rest) = match s.split_once(':') {
            Some((e, rest)) => {
                if e.is_empty() {
                    return Err(err("epoch in version is empty"));
                }
                if !e.bytes().all(|c| c.is_ascii_digit()) {
                    return Err(err("epoch in version is not number"));
                }
                // dpkg limits the epoch to INT_MAX.
                let epoch = e
                    .parse::<u32>()
                    .ok()
                    .filter(|&n| i32::try_from(n).is_ok())
                    .ok_or_else(|| err("epoch in version is too big"))?;
                if rest.is_empty() {
                    return Err(err("nothing after colon in version number"));
                }
                (epoch, rest)
            }
            None => (0, s),
        };
        let (upstream, revision) = match rest.rsplit_once('-') {
            Some((u, r)) => {
                if r.is_empty() {
                    return Err(err("revision number is empty"));
                }
                (u, r)
            }
            None => (rest, ""),
        };
        if upstream.is_empty() {
            return Err(err("version number is empty"));
        }
        if !upstream.as_bytes()[0].is_ascii_digit() {
            return Err(err("version number does not start with digit"));
        }
        if let Some(c) = upstream
            .chars()
            .find(|&c| !(c.is_ascii_alphanumeric() || ".-+~:".contains(c)))
        {
            return Err(err(&format!("invalid character `{c}` in version number")));
        }
        if let Some(c) = revision
            .chars()
            .find(|&c| !(c.is_ascii_alphanumeric() || ".+~".contains(c)))
        {
            return Err(err(&format!("invalid character `{c}` in revision number")));
        }
        Ok(DebVersion {
            original: s.to_string(),
            epoch,
            upstream: upstream.to_string(),
            revision: revision.to_string(),
        })
    }

    /// The epoch (0 when absent).
    #[must_use]
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// The upstream part (between the epoch colon and the last hyphen).
    #[must_use]
    pub fn upstream(&self) -> &str {
        &self.upstream
    }

    /// The Debian revision (after the last hyphen), empty when absent.
    #[must_use]
    pub fn revision(&self) -> &str {
        &self.revision
    }

    /// The version as written (surrounding whitespace removed).
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.original
    }
}

impl std::str::FromStr for DebVersion {
    type Err = VersionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DebVersion::parse(s)
    }
}

impl fmt::Display for DebVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.original)
    }
}

impl Ord for DebVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| verrevcmp(&self.upstream, &other.upstream))
            .then_with(|| verrevcmp(&self.revision, &other.revision))
    }
}

impl PartialOrd for DebVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for DebVersion {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for DebVersion {}

/// Compares two version strings with dpkg's ordering.
///
/// # Errors
/// A [`VersionError`] for the first of `a`, `b` that does not parse.
pub fn compare(a: &str, b: &str) -> Result<Ordering, VersionError> {
    Ok(DebVersion::parse(a)?.cmp(&DebVersion::parse(b)?))
}

/// dpkg's `order()`: the weight of one character in a non-digit run; 0 stands for a
/// digit or the end of the string.
fn order(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(b'~') => -1,
        Some(c) => i32::from(c) + 256,
    }
}

/// dpkg's `verrevcmp`, on bytes.
fn verrevcmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    let is_digit = |s: &[u8], k: usize| s.get(k).is_some_and(u8::is_ascii_digit);
    while i < a.len() || j < b.len() {
        // Non-digit run.
        while (i < a.len() && !is_digit(a, i)) || (j < b.len() && !is_digit(b, j)) {
            let ac = order(a.get(i).copied());
            let bc = order(b.get(j).copied());
            if ac != bc {
                return ac.cmp(&bc);
            }
            i += 1;
            j += 1;
        }
        // Digit run: skip leading zeros, then the longer run is larger, else the first
        // differing digit decides.
        while a.get(i) == Some(&b'0') {
            i += 1;
        }
        while b.get(j) == Some(&b'0') {
            j += 1;
        }
        let mut first_diff = Ordering::Equal;
        while is_digit(a, i) && is_digit(b, j) {
            if first_diff == Ordering::Equal {
                first_diff = a[i].cmp(&b[j]);
            }
            i += 1;
            j += 1;
        }
        if is_digit(a, i) {
            return Ordering::Greater;
        }
        if is_digit(b, j) {
            return Ordering::Less;
        }
        if first_diff != Ordering::Equal {
            return first_diff;
        }
    }
    Ordering::Equal
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use Ordering::{Equal, Greater, Less};

    /// `(a, b, a.cmp(b))`.
    const PAIRS: &[(&str, &str, Ordering)] = &[
        // plain numbers and leading zeros
        ("1.0", "1.0", Equal),
        ("1.0", "1.1", Less),
        ("1.10", "1.9", Greater),
        ("1.01", "1.1", Equal),
        ("1.001", "1.0001", Equal),
        ("1.0", "1.00", Equal),
        ("007", "7", Equal),
        ("1.2.3", "1.2.10", Less),
        ("10", "9", Greater),
        ("1.0", "1.0.0", Less),
        // epochs
        ("1:1.0", "1.0", Greater),
        ("0:1.0", "1.0", Equal),
        ("1:0.1", "2.0", Greater),
        ("2:1.0", "10:0.1", Less),
        ("1:1.0-1", "1:1.0-2", Less),
        ("00:1.0", "0:1.0", Equal),
        // tildes
        ("1.0~rc1", "1.0", Less),
        ("1.0~rc1", "1.0~rc2", Less),
        ("1.0~~", "1.0~", Less),
        ("1.0~~a", "1.0~", Less),
        ("1.0~", "1.0", Less),
        ("1.0~beta", "1.0~rc", Less),
        ("2.36-9+deb12u1~bpo", "2.36-9+deb12u1", Less),
        ("1.0~rc1-1", "1.0-1", Less),
        // letters before non-letters
        ("1.0a", "1.0+", Less),
        ("1.0a", "1.0.", Less),
        ("1.0+", "1.0.", Less),
        ("1.0a", "1.0", Greater),
        ("1.0+dfsg", "1.0", Greater),
        ("1.0A", "1.0a", Less),
        ("1.0z", "1.0+", Less),
        ("1a", "1b", Less),
        // revisions
        ("1.0-1", "1.0", Greater),
        ("1.0-0", "1.0", Equal),
        ("1.0-1", "1.0-1.1", Less),
        ("1.0-1+b1", "1.0-1", Greater),
        ("1.0-1+b1", "1.0-1.1", Less),
        ("1.0-1+deb12u1", "1.0-1+deb12u2", Less),
        ("1.0-1+deb12u10", "1.0-1+deb12u9", Greater),
        ("3.11.2-6+deb12u8", "3.11.2-6+deb12u9", Less),
        ("1.0-10", "1.0-9", Greater),
        ("1-2-3", "1-2-4", Less),
        ("1-2-3", "1-2", Greater),
        ("1.0-1ubuntu1", "1.0-1", Greater),
        ("1.0-1~bpo1", "1.0-1", Less),
        ("2.41-12", "2.41-12+deb13u1", Less),
        // upstream with colons (allowed after an epoch) and hyphens
        ("1:1:2", "1:1:10", Less),
        ("1:2.0-rc1-1", "1:2.0-1", Greater),
        ("20230311+deb12u1", "20230311", Greater),
    ];

    #[test]
    fn table() {
        for &(a, b, want) in PAIRS {
            assert_eq!(compare(a, b).unwrap(), want, "{a} vs {b}");
            assert_eq!(compare(b, a).unwrap(), want.reverse(), "{b} vs {a}");
        }
        assert!(PAIRS.len() >= 40);
    }

    #[test]
    fn matches_dpkg_when_present() {
        let dpkg = std::path::Path::new("/usr/bin/dpkg");
        if !dpkg.exists() {
            return;
        }
        let holds = |a: &str, op: &str, b: &str| {
            std::process::Command::new(dpkg)
                .args(["--compare-versions", a, op, b])
                .status()
                .unwrap()
                .success()
        };
        for &(a, b, want) in PAIRS {
            assert_eq!(holds(a, "lt", b), want == Less, "dpkg: {a} lt {b}");
            assert_eq!(holds(a, "eq", b), want == Equal, "dpkg: {a} eq {b}");
            assert_eq!(holds(a, "gt", b), want == Greater, "dpkg: {a} gt {b}");
        }
    }

    #[test]
    fn parts_and_display() {
        let v = DebVersion::parse(" 1:2.0-rc1-3+b1 ").unwrap();
        assert_eq!(v.epoch(), 1);
        assert_eq!(v.upstream(), "2.0-rc1");
        assert_eq!(v.revision(), "3+b1");
        assert_eq!(v.to_string(), "1:2.0-rc1-3+b1");
        let v: DebVersion = "0:1.0".parse().unwrap();
        assert_eq!(v.to_string(), "0:1.0");
        assert_eq!(v, DebVersion::parse("1.0-0").unwrap());
        assert_eq!(v.revision(), "");
    }

    #[test]
    fn errors() {
        for (bad, why) in [
            ("", "empty"),
            ("   ", "empty"),
            ("1 .0", "embedded spaces"),
            (":1.0", "epoch in version is empty"),
            ("a:1.0", "not number"),
            ("1:", "nothing after colon"),
            ("99999999999:1", "too big"),
            ("1.0-", "revision number is empty"),
            ("-1", "version number is empty"),
            ("a1.0", "does not start with digit"),
            ("1.0_1", "invalid character `_` in version number"),
            ("1:1.0-1:2", "invalid character `:` in revision"),
            ("1.0-1_2", "invalid character `_` in revision"),
        ] {
            let e = DebVersion::parse(bad).unwrap_err();
            assert!(e.to_string().contains(why), "{bad:?}: {e}");
            assert_eq!(e.version, bad);
        }
        assert!(compare("1.0", "x").is_err());
    }

    #[test]
    fn sorting() {
        let mut v: Vec<DebVersion> = ["1.0", "1.0~rc1", "1:0.1", "1.0-1", "0.9", "1.0+b1"]
            .iter()
            .map(|s| DebVersion::parse(s).unwrap())
            .collect();
        v.sort();
        let got: Vec<String> = v.iter().map(ToString::to_string).collect();
        assert_eq!(got, ["0.9", "1.0~rc1", "1.0", "1.0-1", "1.0+b1", "1:0.1"]);
    }
}
