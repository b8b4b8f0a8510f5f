//! Distribution file names: wheels (`{name}-{version}(-{build})?-{python}-{abi}-{platform}.whl`,
//! PEP 427 and the binary distribution format spec) and source distributions.
//!
//! Parsing follows `packaging.utils.parse_wheel_filename`: exactly four or five dashes, the
//! name made of `[A-Za-z0-9._]`, a PEP 440 version, an optional build tag that starts with
//! a digit, and three tag fields that may each be a dot-separated *compressed tag set*
//! (`manylinux_2_17_x86_64.manylinux2014_x86_64`). Tags are lower-cased, as
//! `packaging.tags.Tag` does.

use std::fmt;
use std::str::FromStr;

use pep440_rs::Version;

use super::target::WheelTag;

/// Why a file name is not a valid wheel file name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid wheel file name `{filename}`: {reason}")]
pub struct FilenameError {
    /// The file name as given.
    pub filename: String,
    /// What is wrong with it.
    pub reason: String,
}

/// A wheel's optional build tag: a number, then any text. Ordered as pip orders it
/// (number first, then the text), so a higher build tag is a later build.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BuildTag {
    /// The leading digits, as a number.
    pub number: u64,
    /// Whatever follows the digits (often empty).
    pub suffix: String,
}

impl fmt::Display for BuildTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.number, self.suffix)
    }
}

/// A parsed wheel file name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WheelFilename {
    /// The distribution name, normalized per PEP 503 ([`normalize_name`]).
    pub name: String,
    /// The version.
    pub version: Version,
    /// The build tag, when there is one.
    pub build: Option<BuildTag>,
    /// Python tags, the compressed set expanded (`py2.py3` → `["py2", "py3"]`).
    pub python_tags: Vec<String>,
    /// ABI tags, the compressed set expanded.
    pub abi_tags: Vec<String>,
    /// Platform tags, the compressed set expanded.
    pub platform_tags: Vec<String>,
}

impl WheelFilename {
    /// Parses a wheel file name (just the name, no directory or URL).
    ///
    /// # Errors
    /// A [`FilenameError`] naming the file when it does not end in `.whl`, does not have
    /// four or five dash-separated fields after the name, has a name with characters
    /// outside `[A-Za-z0-9._]`, an invalid PEP 440 version, a build tag that does not
    /// start with a digit, or an empty tag.
    pub fn parse(filename: &str) -> Result<WheelFilename, FilenameError> {
        let err = |reason: String| FilenameError {
            filename: filename.to_string(),
            reason,
        };
        let stem = filename
            .strip_suffix(".whl")
            .ok_or_else(|| err("it does not end in `.whl`".to_string()))?;
        let parts: Vec<&str> = stem.split('-').collect();
        let (name, version, build, tags) = match parts.as_slice() {
            [name, version, py, abi, plat] => (*name, *version, None, [*py, *abi, *plat]),
            [name, version, build, py, abi, plat] => {
                (*name, *version, Some(*build), [*py, *abi, *plat])
            }
            _ => {
                return Err(err(format!(
                    "expected 5 or 6 dash-separated fields, found {}",
                    parts.len()
                )));
            }
        };
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_')
        {
            return Err(err(format!("invalid distribution name `{name}`")));
        }
        let version = Version::from_str(version)
            .map_err(|e| err(format!("invalid version `{version}`: {e}")))?;
        let build = match build {
            None => None,
            Some(build) => {
                let digits = build.bytes().take_while(u8::is_ascii_digit).count();
                let number = build[..digits].parse::<u64>().map_err(|_| {
                    err(format!("build tag `{build}` does not start with a number"))
                })?;
                Some(BuildTag {
                    number,
                    suffix: build[digits..].to_string(),
                })
            }
        };
        let [python_tags, abi_tags, platform_tags] = tags.map(|set| {
            set.split('.')
                .map(str::to_ascii_lowercase)
                .collect::<Vec<String>>()
        });
        for (what, set) in [
            ("python", &python_tags),
            ("ABI", &abi_tags),
            ("platform", &platform_tags),
        ] {
            if set.iter().any(String::is_empty) {
                return Err(err(format!("empty {what} tag")));
            }
        }
        Ok(WheelFilename {
            name: normalize_name(name),
            version,
            build,
            python_tags,
            abi_tags,
            platform_tags,
        })
    }

    /// Every tag the wheel claims: the product of its python, ABI and platform tag sets,
    /// in file-name order.
    pub fn tags(&self) -> impl Iterator<Item = WheelTag> + '_ {
        self.python_tags.iter().flat_map(move |python| {
            self.abi_tags.iter().flat_map(move |abi| {
                self.platform_tags.iter().map(move |platform| WheelTag {
                    python: python.clone(),
                    abi: abi.clone(),
                    platform: platform.clone(),
                })
            })
        })
    }
}

impl FromStr for WheelFilename {
    type Err = FilenameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        WheelFilename::parse(s)
    }
}

/// Normalizes a project name per PEP 503 (and PEP 685 for extras): lower case, and every
/// run of `-`, `_` and `.` becomes one `-`. `Foo.Bar__baz` → `foo-bar-baz`.
pub fn normalize_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut in_separator = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !in_separator {
                out.push('-');
            }
            in_separator = true;
        } else {
            out.extend(c.to_lowercase());
            in_separator = false;
        }
    }
    out
}

/// Whether a file name is a source distribution: `.tar.gz` or `.zip` (the two formats the
/// sdist spec has allowed), or one of the legacy archive formats old releases on PyPI
/// still carry (`.tar.bz2`, `.tar.xz`, `.tgz`, `.tar`). Case-insensitive.
pub fn is_sdist(filename: &str) -> bool {
    let lower = filename.to_ascii_lowercase();
    [".tar.gz", ".zip", ".tar.bz2", ".tar.xz", ".tgz", ".tar"]
        .iter()
        .any(|ext| lower.len() > ext.len() && lower.ends_with(ext))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_manylinux_wheel_with_compressed_platforms() {
        let w = WheelFilename::parse(
            "numpy-2.3.2-cp313-cp313-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl",
        )
        .unwrap();
        assert_eq!(w.name, "numpy");
        assert_eq!(w.version, Version::from_str("2.3.2").unwrap());
        assert_eq!(w.build, None);
        assert_eq!(w.python_tags, ["cp313"]);
        assert_eq!(w.abi_tags, ["cp313"]);
        assert_eq!(
            w.platform_tags,
            ["manylinux_2_27_x86_64", "manylinux_2_28_x86_64"]
        );
        let tags: Vec<String> = w.tags().map(|t| t.to_string()).collect();
        assert_eq!(
            tags,
            [
                "cp313-cp313-manylinux_2_27_x86_64",
                "cp313-cp313-manylinux_2_28_x86_64"
            ]
        );
    }

    #[test]
    fn parses_pure_and_build_tagged_wheels() {
        let w = WheelFilename::parse("Typing_Extensions-4.12.2-py2.py3-none-any.whl").unwrap();
        assert_eq!(w.name, "typing-extensions");
        assert_eq!(w.python_tags, ["py2", "py3"]);
        assert_eq!(w.tags().count(), 2);

        let w = WheelFilename::parse("pkg-1.0-12abc-py3-none-ANY.whl").unwrap();
        assert_eq!(
            w.build,
            Some(BuildTag {
                number: 12,
                suffix: "abc".into()
            })
        );
        assert_eq!(w.platform_tags, ["any"]);
        assert!(
            BuildTag {
                number: 2,
                suffix: String::new()
            } < BuildTag {
                number: 10,
                suffix: String::new()
            }
        );

        // A local version (PyTorch's own index) survives.
        let w = WheelFilename::parse("torch-2.8.0+cu128-cp313-cp313-manylinux_2_28_x86_64.whl")
            .unwrap();
        assert_eq!(w.version.to_string(), "2.8.0+cu128");
    }

    #[test]
    fn rejects_bad_names() {
        for bad in [
            "numpy-2.3.2.tar.gz",
            "numpy-2.3.2-cp313-manylinux_2_28_x86_64.whl",
            "numpy-2.3.2-1-2-cp313-cp313-any.whl",
            "num py-1.0-py3-none-any.whl",
            "-1.0-py3-none-any.whl",
            "numpy-notaversion!-py3-none-any.whl",
            "numpy-1.0-abc-py3-none-any.whl",
            "numpy-1.0-py3.-none-any.whl",
        ] {
            let e = WheelFilename::parse(bad).unwrap_err();
            assert_eq!(e.filename, bad);
            assert!(e.to_string().contains(bad), "{e}");
        }
    }

    #[test]
    fn normalizes_names() {
        assert_eq!(normalize_name("Foo.Bar__baz"), "foo-bar-baz");
        assert_eq!(
            normalize_name("nvidia_cuda_runtime_cu12"),
            "nvidia-cuda-runtime-cu12"
        );
        assert_eq!(normalize_name("zope.interface"), "zope-interface");
        assert_eq!(normalize_name("requests"), "requests");
        assert_eq!(normalize_name("A-_-.B"), "a-b");
    }

    #[test]
    fn recognizes_sdists() {
        assert!(is_sdist("numpy-2.3.2.tar.gz"));
        assert!(is_sdist("Foo-1.0.ZIP"));
        assert!(is_sdist("old-0.1.tar.bz2"));
        assert!(!is_sdist(
            "numpy-2.3.2-cp313-cp313-manylinux_2_28_x86_64.whl"
        ));
        assert!(!is_sdist("numpy-2.3.2.exe"));
        assert!(!is_sdist(".zip"));
    }
}
