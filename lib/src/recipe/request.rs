//! Debian package requests as recipes write them: `python3`, `ca-certificates=20250419`,
//! `libc6 (>= 2.36)`.
//!
//! The loader stores every request in the canonical form that [`PackageRequest`]'s
//! `Display` gives, which is also a Debian relation (`name` or `name (OP VERSION)`; a
//! `name=VERSION` pin becomes `name (= VERSION)`), so resolvers can read
//! [`super::LayerItem::Debian`] packages with [`PackageRequest::parse`] or with a
//! `Depends` parser.

use std::fmt;

use super::validate::{self, Problem};

/// A version relation of a Debian dependency (deb-control(5)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Relation {
    /// `<<`: strictly earlier.
    Earlier,
    /// `<=`: earlier or equal.
    EarlierOrEqual,
    /// `=`: exactly.
    Equal,
    /// `>=`: later or equal.
    LaterOrEqual,
    /// `>>`: strictly later.
    Later,
}

impl Relation {
    /// Every relation, as written: `<<`, `<=`, `=`, `>=`, `>>`.
    pub const ALL: [Relation; 5] = [
        Self::Earlier,
        Self::EarlierOrEqual,
        Self::Equal,
        Self::LaterOrEqual,
        Self::Later,
    ];

    /// The operator as Debian writes it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Earlier => "<<",
            Self::EarlierOrEqual => "<=",
            Self::Equal => "=",
            Self::LaterOrEqual => ">=",
            Self::Later => ">>",
        }
    }

    /// The relation written `op`, if it is one.
    #[must_use]
    pub fn from_op(op: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == op)
    }
}

impl fmt::Display for Relation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One requested Debian package, optionally with a version constraint.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PackageRequest {
    /// Package name (`[a-z0-9][a-z0-9+.-]+`).
    pub name: String,
    /// Version constraint, if any.
    pub version: Option<(Relation, String)>,
}

/// Why a package request was rejected: what is wrong and how to write it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InvalidRequest {
    /// What is wrong.
    pub message: String,
    /// How to write it instead.
    pub help: String,
}

impl PackageRequest {
    /// Parses `name`, `name=VERSION` or `name (OP VERSION)` with OP one of `<<`, `<=`, `=`,
    /// `>=`, `>>` (white space around the parts is ignored).
    ///
    /// # Errors
    /// An [`InvalidRequest`] naming the mistake (pip-style `==`/`>=`, an architecture
    /// qualifier, alternatives, an invalid name or version, …).
    pub fn parse(text: &str) -> Result<Self, InvalidRequest> {
        parse(text).map_err(|p| InvalidRequest {
            message: p.message,
            help: p.help,
        })
    }
}

impl fmt::Display for PackageRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if let Some((relation, version)) = &self.version {
            write!(f, " ({relation} {version})")?;
        }
        Ok(())
    }
}

fn problem(message: String, help: String) -> Problem {
    Problem { message, help }
}

const EXAMPLES: &str = r#"request a package as "python3", pin it as "ca-certificates=20250419", or constrain it as "libc6 (>= 2.36)""#;

/// [`PackageRequest::parse`], with the recipe's [`Problem`].
pub(crate) fn parse(text: &str) -> Result<PackageRequest, Problem> {
    let t = text.trim();
    if t.is_empty() {
        return Err(problem(
            "package request is empty".to_owned(),
            EXAMPLES.to_owned(),
        ));
    }
    if t.contains(',') {
        let each: Vec<String> = t.split(',').map(|p| format!("\"{}\"", p.trim())).collect();
        return Err(problem(
            format!("`{t}` lists several packages in one string"),
            format!(
                "write each package as its own argument: debian {}",
                each.join(" ")
            ),
        ));
    }
    if t.contains('|') {
        return Err(problem(
            format!("`{t}` has alternatives (`|`)"),
            "a recipe requests packages, not alternatives; name the one to install".to_owned(),
        ));
    }
    let end = t
        .find(|c: char| c.is_whitespace() || "=()<>!~:".contains(c))
        .unwrap_or(t.len());
    let (name, rest) = t.split_at(end);
    validate::package_name(name)?;
    let rest = rest.trim_start();
    let with = |relation: Relation, version: &str| -> Result<PackageRequest, Problem> {
        let version = version.trim();
        validate::debian_version(version)?;
        Ok(PackageRequest {
            name: name.to_owned(),
            version: Some((relation, version.to_owned())),
        })
    };
    if rest.is_empty() {
        return Ok(PackageRequest {
            name: name.to_owned(),
            version: None,
        });
    }
    if let Some(arch) = rest.strip_prefix(':') {
        return Err(problem(
            format!("`{t}` has an architecture qualifier (`:{arch}`)"),
            format!("packages are installed for the image's platform; write \"{name}\""),
        ));
    }
    if let Some(version) = rest.strip_prefix("==") {
        return Err(problem(
            format!("`{t}` uses `==`"),
            format!(
                "a Debian pin has one `=`: \"{name}={}\"",
                version.trim_start_matches('=').trim()
            ),
        ));
    }
    if let Some(version) = rest.strip_prefix('=') {
        return with(Relation::Equal, version);
    }
    if let Some(inner) = rest.strip_prefix('(') {
        let Some((inner, after)) = inner.split_once(')') else {
            return Err(problem(
                format!("`{t}` has an unclosed `(`"),
                format!("write the constraint as \"{name} (>= VERSION)\"; {EXAMPLES}"),
            ));
        };
        if !after.trim().is_empty() {
            return Err(problem(
                format!("`{t}` has text after the `)`"),
                format!("one package per argument; {EXAMPLES}"),
            ));
        }
        let inner = inner.trim_start();
        let op_len = inner
            .find(|c: char| !"<>=!~".contains(c))
            .unwrap_or(inner.len());
        let (op, version) = inner.split_at(op_len);
        return match Relation::from_op(op) {
            Some(relation) => with(relation, version),
            None => Err(relation_problem(t, name, op, version.trim())),
        };
    }
    let op_len = rest
        .find(|c: char| !"<>=!~".contains(c))
        .unwrap_or(rest.len());
    if op_len > 0 {
        let (op, version) = rest.split_at(op_len);
        let version = version.trim();
        let help = match op {
            ">=" | "<=" | ">>" | "<<" => {
                format!("write version constraints in parentheses: \"{name} ({op} {version})\"")
            }
            ">" => format!("write version constraints in parentheses: \"{name} (>> {version})\""),
            "<" => format!("write version constraints in parentheses: \"{name} (<< {version})\""),
            "~=" => format!(
                "Debian has no compatible-release operator; write \"{name} (>= {version})\""
            ),
            _ => format!("Debian relations are <<, <=, =, >= and >>; {EXAMPLES}"),
        };
        return Err(problem(
            format!("`{t}` is not a Debian package request"),
            help,
        ));
    }
    Err(problem(
        format!("`{t}` is not a Debian package request"),
        EXAMPLES.to_owned(),
    ))
}

fn relation_problem(text: &str, name: &str, op: &str, version: &str) -> Problem {
    let (message, help) = match op {
        ">" => (
            format!("`{text}`: `>` is not a Debian relation"),
            format!("write `>>` for later than, or `>=`: \"{name} (>> {version})\""),
        ),
        "<" => (
            format!("`{text}`: `<` is not a Debian relation"),
            format!("write `<<` for earlier than, or `<=`: \"{name} (<< {version})\""),
        ),
        "==" => (
            format!("`{text}` uses `==`"),
            format!("a Debian relation has one `=`: \"{name} (= {version})\""),
        ),
        "" => (
            format!("`{text}` has no relation in its parentheses"),
            format!("write one of <<, <=, =, >=, >> before the version: \"{name} (>= {version})\""),
        ),
        _ => (
            format!("`{text}`: `{op}` is not a Debian relation"),
            format!("Debian relations are <<, <=, =, >= and >>, e.g. \"{name} (>= {version})\""),
        ),
    };
    problem(message, help)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> String {
        match PackageRequest::parse(text) {
            Ok(r) => r.to_string(),
            Err(e) => panic!("{text}: {e}; {}", e.help),
        }
    }

    fn err(text: &str) -> InvalidRequest {
        match PackageRequest::parse(text) {
            Ok(r) => panic!("{text} parsed as {r:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn canonical_forms() {
        assert_eq!(ok("python3"), "python3");
        assert_eq!(ok("  python3 "), "python3");
        assert_eq!(ok("libstdc++6"), "libstdc++6");
        assert_eq!(
            ok("ca-certificates=20250419"),
            "ca-certificates (= 20250419)"
        );
        assert_eq!(
            ok("ca-certificates = 20250419"),
            "ca-certificates (= 20250419)"
        );
        assert_eq!(ok("libc6 (>= 2.36)"), "libc6 (>= 2.36)");
        assert_eq!(ok("libc6(>=2.36)"), "libc6 (>= 2.36)");
        assert_eq!(ok("libc6 ( << 1:2.41-12~b1 )"), "libc6 (<< 1:2.41-12~b1)");
        for op in ["<<", "<=", "=", ">=", ">>"] {
            assert_eq!(ok(&format!("a0 ({op} 1)")), format!("a0 ({op} 1)"));
        }
        let r = PackageRequest::parse("python3.13 (>> 3.13.5-2)");
        assert_eq!(
            r,
            Ok(PackageRequest {
                name: "python3.13".into(),
                version: Some((Relation::Later, "3.13.5-2".into())),
            })
        );
        // The canonical form parses to the same request.
        for text in ["libc6=2.41-12", "libc6 (<= 2.41)", "dash"] {
            let once = ok(text);
            assert_eq!(ok(&once), once);
        }
    }

    #[test]
    fn mistakes_get_specific_help() {
        let cases = [
            ("python3==3.13", "one `=`"),
            ("python3>=3.13", "\"python3 (>= 3.13)\""),
            ("python3>3.13", "\"python3 (>> 3.13)\""),
            ("python3 (> 3.13)", "`>>`"),
            ("python3 (< 3.13)", "`<<`"),
            ("python3 (3.13)", "before the version"),
            ("python3 (>= 3.13", "unclosed"),
            ("python3:amd64", "platform"),
            ("python3, dash", r#"debian "python3" "dash""#),
            ("python3 | python3.13", "alternatives"),
            ("Python3", "`python3`"),
            ("python3~=3.13", "compatible-release"),
        ];
        for (text, help) in cases {
            let e = err(text);
            assert!(
                e.help.contains(help) || e.message.contains(help),
                "{text}: {e} / {}",
                e.help
            );
        }
    }

    #[test]
    fn invalid_names_and_versions() {
        for bad in [
            "",
            "a",
            "-x",
            "py_3",
            "x y",
            "x=",
            "x=abc",
            "x=1:",
            "x=a:1",
            "x=1-",
            "x=1_0",
            "x (>= )",
            "x (= 1) y",
            "é",
        ] {
            assert!(PackageRequest::parse(bad).is_err(), "{bad:?}");
        }
    }
}
