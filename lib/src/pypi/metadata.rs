//! Core metadata: the `METADATA` file of a wheel's `.dist-info` (also served alone by
//! PEP 658 indexes), an RFC 822-style header block followed by an optional body.
//!
//! Only what resolution needs is read: `Name`, `Version`, `Requires-Dist`,
//! `Requires-Python` and `Provides-Extra`. Headers are read as Python's `email` parser
//! reads them (which is what `importlib.metadata` and `packaging.metadata` use): field
//! names are case-insensitive, a line starting with a space or tab continues the previous
//! field, the first blank line ends the headers, and so does a line that is not a header
//! (`Name: value`) at all — the rest is the body (the long description), which is skipped.
//! For a field used once, the first occurrence counts.

use std::str::FromStr;

use pep440_rs::{Version, VersionSpecifiers};
use pep508_rs::Requirement;

use super::filename::normalize_name;

/// Why a `METADATA` file cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    /// A required field is absent.
    #[error("core metadata has no `{0}` field")]
    Missing(&'static str),
    /// `Metadata-Version` has a major version this parser does not know (the core metadata
    /// spec says consumers MUST fail then).
    #[error("core metadata version `{0}` is not supported (only 1.x and 2.x)")]
    UnsupportedVersion(String),
    /// A continuation line with no field before it.
    #[error("core metadata line {line} continues a field, but no field precedes it")]
    Continuation {
        /// 1-based line number.
        line: usize,
    },
    /// A field's value does not parse.
    #[error("invalid `{field}: {value}` in core metadata: {reason}")]
    Invalid {
        /// The field name as spelled in the file.
        field: String,
        /// The value as given.
        value: String,
        /// The parser's message.
        reason: String,
    },
}

/// The parts of a distribution's core metadata that resolution needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreMetadata {
    /// `Name`, as written (not normalized).
    pub name: String,
    /// `Version`.
    pub version: Version,
    /// Every `Requires-Dist`, in file order, markers included (`extra == "socks"` as well).
    pub requires_dist: Vec<Requirement>,
    /// `Requires-Python`, when present and not empty.
    pub requires_python: Option<VersionSpecifiers>,
    /// Every `Provides-Extra`, normalized per PEP 685 (as [`normalize_name`]), in file
    /// order, duplicates removed.
    pub provides_extra: Vec<String>,
}

/// Parses a `METADATA` (or `PKG-INFO`) file.
///
/// # Errors
/// [`MetadataError`] when `Name` or `Version` is missing, `Metadata-Version` has a major
/// version above 2, the text starts with a continuation line, or `Version`,
/// `Requires-Python` or any `Requires-Dist` does not parse (the error quotes the line).
pub fn parse_metadata(text: &str) -> Result<CoreMetadata, MetadataError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let headers = headers(text)?;

    let first = |field: &str| {
        headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(field))
            .map(|(name, value)| (name.as_str(), value.as_str()))
    };
    let all = |field: &'static str| {
        headers
            .iter()
            .filter(move |(name, _)| name.eq_ignore_ascii_case(field))
            .map(|(name, value)| (name.as_str(), value.as_str()))
    };
    let invalid = |field: &str, value: &str, reason: String| MetadataError::Invalid {
        field: field.to_string(),
        value: value.to_string(),
        reason,
    };

    if let Some((_, version)) = first("Metadata-Version") {
        let major = version.split('.').next().unwrap_or_default().trim();
        if !matches!(major, "1" | "2") {
            return Err(MetadataError::UnsupportedVersion(version.to_string()));
        }
    }
    let name = match first("Name") {
        Some((_, name)) if !name.is_empty() => name.to_string(),
        _ => return Err(MetadataError::Missing("Name")),
    };
    let (field, value) = first("Version").ok_or(MetadataError::Missing("Version"))?;
    let version = Version::from_str(value).map_err(|e| invalid(field, value, e.to_string()))?;
    let requires_python = match first("Requires-Python") {
        Some((_, "")) => None,
        Some((field, value)) => Some(
            VersionSpecifiers::from_str(value).map_err(|e| invalid(field, value, e.to_string()))?,
        ),
        None => None,
    };
    let requires_dist = all("Requires-Dist")
        .map(|(field, value)| {
            Requirement::from_str(value).map_err(|e| invalid(field, value, e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut provides_extra: Vec<String> = Vec::new();
    for (_, value) in all("Provides-Extra") {
        let extra = normalize_name(value);
        if !extra.is_empty() && !provides_extra.contains(&extra) {
            provides_extra.push(extra);
        }
    }
    Ok(CoreMetadata {
        name,
        version,
        requires_dist,
        requires_python,
        provides_extra,
    })
}

/// The header block as `(name, value)` pairs in file order, continuation lines unfolded
/// (joined with one space), values trimmed.
fn headers(text: &str) -> Result<Vec<(String, String)>, MetadataError> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (index, line) in text.split('\n').enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            let Some((_, value)) = out.last_mut() else {
                return Err(MetadataError::Continuation { line: index + 1 });
            };
            let more = line.trim();
            if !more.is_empty() {
                if !value.is_empty() {
                    value.push(' ');
                }
                value.push_str(more);
            }
            continue;
        }
        // Python's email parser: a header name is printable ASCII other than `:`; a line
        // that is not a header starts the body.
        let Some((name, value)) = line.split_once(':') else {
            break;
        };
        if name.is_empty() || !name.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
            break;
        }
        out.push((name.to_string(), value.trim().to_string()));
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use pep508_rs::{ExtraName, MarkerEnvironment, MarkerEnvironmentBuilder};

    const REQUESTS: &str = "Metadata-Version: 2.1
Name: requests
Version: 2.32.3
Summary: Python HTTP for Humans.
Home-page: https://requests.readthedocs.io
Author: Kenneth Reitz
Author-email: me@kennethreitz.org
License: Apache-2.0
Project-URL: Documentation, https://requests.readthedocs.io
Project-URL: Source, https://github.com/psf/requests
Classifier: Development Status :: 5 - Production/Stable
Classifier: Programming Language :: Python :: 3.8
Requires-Python: >=3.8
Description-Content-Type: text/markdown
License-File: LICENSE
Requires-Dist: charset-normalizer <4,>=2
Requires-Dist: idna <4,>=2.5
Requires-Dist: urllib3 <3,>=1.21.1
Requires-Dist: certifi >=2017.4.17
Provides-Extra: security
Provides-Extra: socks
Requires-Dist: PySocks !=1.5.7,>=1.5.6 ; extra == 'socks'
Provides-Extra: use_chardet_on_py3
Requires-Dist: chardet <6,>=3.0.2 ; extra == 'use_chardet_on_py3'

# Requests

**Requests** is a simple, yet elegant, HTTP library.

Requires-Dist: not-a-header-this-is-the-body
";

    const NUMPY: &str = "Metadata-Version: 2.4\r
Name: numpy\r
Version: 2.3.2\r
Summary: Fundamental package for array computing in Python\r
Author: Travis E. Oliphant et al.\r
Maintainer-Email: NumPy Developers <numpy-discussion@python.org>\r
License: Copyright (c) 2005-2025, NumPy Developers.\r
         All rights reserved.\r
         \r
         Redistribution and use in source and binary forms, with or without\r
License-File: LICENSE.txt\r
Classifier: Programming Language :: Python :: 3.13\r
Project-URL: homepage, https://numpy.org\r
requires-python: >=3.11\r
Description-Content-Type: text/markdown\r
\r
<h1 align=\"center\">\r
";

    fn env() -> MarkerEnvironment {
        MarkerEnvironment::try_from(MarkerEnvironmentBuilder {
            implementation_name: "cpython",
            implementation_version: "3.13.5",
            os_name: "posix",
            platform_machine: "x86_64",
            platform_python_implementation: "CPython",
            platform_release: "",
            platform_system: "Linux",
            platform_version: "",
            python_full_version: "3.13.5",
            python_version: "3.13",
            sys_platform: "linux",
        })
        .unwrap()
    }

    #[test]
    fn reads_requests() {
        let m = parse_metadata(REQUESTS).unwrap();
        assert_eq!(m.name, "requests");
        assert_eq!(m.version.to_string(), "2.32.3");
        assert_eq!(m.requires_python.unwrap().to_string(), ">=3.8");
        assert_eq!(
            m.provides_extra,
            ["security", "socks", "use-chardet-on-py3"]
        );
        let names: Vec<&str> = m.requires_dist.iter().map(|r| r.name.as_ref()).collect();
        assert_eq!(
            names,
            [
                "charset-normalizer",
                "idna",
                "urllib3",
                "certifi",
                "pysocks",
                "chardet"
            ]
        );
        let pysocks = &m.requires_dist[4];
        let env = env();
        assert!(!pysocks.evaluate_markers(&env, &[]));
        let socks: ExtraName = "socks".parse().unwrap();
        assert!(pysocks.evaluate_markers(&env, &[socks]));
        // The marker names the extra the way the file spells it; it still matches the
        // normalized name.
        let chardet = &m.requires_dist[5];
        let extra: ExtraName = "use-chardet-on-py3".parse().unwrap();
        assert!(chardet.evaluate_markers(&env, &[extra]));
        assert!(m.requires_dist[0].evaluate_markers(&env, &[]));
    }

    #[test]
    fn reads_numpy_with_crlf_and_folded_license() {
        let m = parse_metadata(NUMPY).unwrap();
        assert_eq!(m.name, "numpy");
        assert_eq!(m.version.to_string(), "2.3.2");
        assert_eq!(m.requires_python.unwrap().to_string(), ">=3.11");
        assert!(m.requires_dist.is_empty());
        assert!(m.provides_extra.is_empty());
    }

    #[test]
    fn unfolds_continuation_lines() {
        let m = parse_metadata(
            "Name: x\nVersion: 1\nRequires-Dist: foo>=1;\n  python_version < \"3.9\"\n",
        )
        .unwrap();
        assert_eq!(m.requires_dist.len(), 1);
        assert!(!m.requires_dist[0].evaluate_markers(&env(), &[]));
        assert_eq!(
            parse_metadata(" Name: x\n"),
            Err(MetadataError::Continuation { line: 1 })
        );
    }

    #[test]
    fn a_bad_requires_dist_is_an_error_naming_it() {
        let e = parse_metadata("Name: x\nVersion: 1\nRequires-Dist: foo >=>= 1\n").unwrap_err();
        let MetadataError::Invalid { field, value, .. } = &e else {
            panic!("{e:?}")
        };
        assert_eq!(
            (field.as_str(), value.as_str()),
            ("Requires-Dist", "foo >=>= 1")
        );
        assert!(e.to_string().contains("Requires-Dist: foo >=>= 1"), "{e}");
    }

    #[test]
    fn other_errors() {
        assert_eq!(
            parse_metadata("Version: 1\n"),
            Err(MetadataError::Missing("Name"))
        );
        assert_eq!(
            parse_metadata("Name: x\n\nVersion: 1\n"),
            Err(MetadataError::Missing("Version"))
        );
        assert!(matches!(
            parse_metadata("Name: x\nVersion: one\n"),
            Err(MetadataError::Invalid { .. })
        ));
        assert!(matches!(
            parse_metadata("Name: x\nVersion: 1\nRequires-Python: >=>3\n"),
            Err(MetadataError::Invalid { .. })
        ));
        assert_eq!(
            parse_metadata("Metadata-Version: 3.0\nName: x\nVersion: 1\n"),
            Err(MetadataError::UnsupportedVersion("3.0".into()))
        );
        let m = parse_metadata("Name: x\nVersion: 1\nRequires-Python:\n").unwrap();
        assert_eq!(m.requires_python, None);
    }
}
