//! deb822 control data: stanzas (`Packages`, `Release`, a `.deb`'s `control`, dpkg
//! `status`) and relation fields (`Depends`, `Provides`, `Conflicts`, …).
//!
//! Stanzas are separated by blank lines (lines of only spaces and tabs count as blank, as
//! Policy 5.1 allows parsers to accept). A field is `Name: value`; lines that start with a
//! space or tab continue the previous field. Lines that start with `#` are comments and are
//! skipped. Field names compare case-insensitively but keep their spelling, and fields keep
//! their order, so a stanza parsed from a `control` file can be written back
//! ([`Stanza::to_text`]) for `var/lib/dpkg/status.d/`.

use std::cmp::Ordering;
use std::fmt;

use super::index::IndexPackage;
use super::version::DebVersion;

/// What is wrong with control data. Every variant names where: a line number (1-based) or
/// the package.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    /// Not deb822.
    #[error("line {line}: {message}")]
    Syntax {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A `Packages` stanza without `Package`.
    #[error("stanza at line {line} has no `Package` field")]
    MissingPackage {
        /// Line where the stanza starts.
        line: usize,
    },
    /// A `Packages` stanza lacks a field composer needs.
    #[error("package `{package}` (stanza at line {line}) has no `{field}` field")]
    MissingField {
        /// `Package`.
        package: String,
        /// Line where the stanza starts.
        line: usize,
        /// The missing field.
        field: &'static str,
    },
    /// A field whose value does not parse.
    #[error("package `{package}` (stanza at line {line}): bad `{field}` value `{value}`: {reason}")]
    BadField {
        /// `Package`.
        package: String,
        /// Line where the stanza starts.
        line: usize,
        /// The field.
        field: &'static str,
        /// Its value.
        value: String,
        /// Why it is wrong.
        reason: String,
    },
    /// A relation field (`Depends`, …) that does not parse.
    #[error("bad relation `{relation}` in `{field}`: {reason}")]
    Relation {
        /// The whole field value.
        field: String,
        /// The offending relation.
        relation: String,
        /// Why it is wrong.
        reason: String,
    },
}

/// One paragraph of deb822 data.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stanza {
    /// `(name, value)` in file order. The name is spelled as written. The value is the
    /// first line's text after the colon, trimmed, then for each continuation line a `\n`
    /// and the line exactly as written (leading space included).
    pub fields: Vec<(String, String)>,
}

impl Stanza {
    /// The value of field `name` (case-insensitive).
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The stanza as deb822 text: `Name: value` lines (one space after the colon; no space
    /// when the first line of the value is empty, as in `Description` or `SHA256` lists),
    /// without the blank separator line.
    #[must_use]
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for (name, value) in &self.fields {
            out.push_str(name);
            out.push(':');
            if !value.starts_with('\n') && !value.is_empty() {
                out.push(' ');
            }
            out.push_str(value);
            out.push('\n');
        }
        out
    }
}

/// Parses deb822 text into stanzas.
///
/// # Errors
/// [`ControlError::Syntax`] with the line number for a line that is neither a field, a
/// continuation nor blank, a continuation line with no field before it, a field name with
/// spaces or empty, or a field given twice in one stanza.
pub fn parse_stanzas(text: &str) -> Result<Vec<Stanza>, ControlError> {
    Ok(parse_with_lines(text)?
        .into_iter()
        .map(|(_, s)| s)
        .collect())
}

/// [`parse_stanzas`], with the line where each stanza starts.
fn parse_with_lines(text: &str) -> Result<Vec<(usize, Stanza)>, ControlError> {
    let mut out = Vec::new();
    let mut current = Stanza::default();
    let mut start = 0;
    for (i, raw) in text.split('\n').enumerate() {
        let line_no = i + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let syntax = |message: String| ControlError::Syntax {
            line: line_no,
            message,
        };
        if line.trim_matches([' ', '\t']).is_empty() {
            if !current.fields.is_empty() {
                out.push((start, std::mem::take(&mut current)));
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            let Some((_, value)) = current.fields.last_mut() else {
                return Err(syntax(
                    "continuation line (starts with a space) with no field before it".into(),
                ));
            };
            value.push('\n');
            value.push_str(line);
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(syntax(format!("expected `Field: value`, found `{line}`")));
        };
        if name.is_empty() {
            return Err(syntax("empty field name".into()));
        }
        if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(syntax(format!("field name `{name}` contains spaces")));
        }
        if name.starts_with('-') {
            return Err(syntax(format!("field name `{name}` starts with `-`")));
        }
        if current.get(name).is_some() {
            return Err(syntax(format!("duplicate field `{name}` in one stanza")));
        }
        if current.fields.is_empty() {
            start = line_no;
        }
        current.fields.push((
            name.to_string(),
            value.trim_matches([' ', '\t']).to_string(),
        ));
    }
    if !current.fields.is_empty() {
        out.push((start, current));
    }
    Ok(out)
}

/// A version relation operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Op {
    /// `<<`
    Lt,
    /// `<=` (also the obsolete `<`)
    Le,
    /// `=`
    Eq,
    /// `>=` (also the obsolete `>`)
    Ge,
    /// `>>`
    Gt,
}

impl Op {
    /// The operator as Debian writes it (`<<`, `<=`, `=`, `>=`, `>>`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Lt => "<<",
            Op::Le => "<=",
            Op::Eq => "=",
            Op::Ge => ">=",
            Op::Gt => ">>",
        }
    }

    /// Whether `candidate OP wanted` holds, given `candidate.cmp(wanted)`.
    #[must_use]
    pub fn holds(self, candidate_vs_wanted: Ordering) -> bool {
        use Ordering::{Equal, Greater, Less};
        matches!(
            (self, candidate_vs_wanted),
            (Op::Lt, Less)
                | (Op::Le, Less | Equal)
                | (Op::Eq, Equal)
                | (Op::Ge, Greater | Equal)
                | (Op::Gt, Greater)
        )
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One package relation: `name[:arch] [(op version)]`. Architecture restrictions
/// (`[amd64]`) and build profiles (`<!nocheck>`) are accepted and dropped: they never
/// appear in binary package stanzas.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Relation {
    /// Package (or virtual package) name.
    pub name: String,
    /// Architecture qualifier after `:` (`any`, `native`, `amd64`).
    pub arch: Option<String>,
    /// Version constraint; the version is syntactically valid.
    pub constraint: Option<(Op, String)>,
}

impl Relation {
    /// Whether `version` meets the constraint (always true without one).
    #[must_use]
    pub fn accepts(&self, version: &DebVersion) -> bool {
        match &self.constraint {
            None => true,
            // The constraint version was validated when parsed; an unparsable one (only
            // possible for a hand-built Relation) accepts nothing.
            Some((op, wanted)) => DebVersion::parse(wanted)
                .map(|w| op.holds(version.cmp(&w)))
                .unwrap_or(false),
        }
    }
}

impl fmt::Display for Relation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if let Some(arch) = &self.arch {
            write!(f, ":{arch}")?;
        }
        if let Some((op, v)) = &self.constraint {
            write!(f, " ({op} {v})")?;
        }
        Ok(())
    }
}

/// Writes an alternatives group as Debian does: `a (>= 1) | b`.
#[must_use]
pub fn format_group(group: &[Relation]) -> String {
    group
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" | ")
}

/// Parses a relation field: groups separated by `,` (AND) of alternatives separated by
/// `|` (OR). An empty (or all-whitespace) value gives no groups. Whitespace, including
/// the newlines of a folded field, may appear between tokens.
///
/// # Errors
/// [`ControlError::Relation`] for an empty alternative (`a, , b`, `a |`), a bad package
/// name, architecture qualifier, operator or version, an unclosed `(`, `[` or `<`, or
/// trailing text.
pub fn parse_relations(s: &str) -> Result<Vec<Vec<Relation>>, ControlError> {
    if s.trim().is_empty() {
        return Ok(Vec::new());
    }
    s.split(',')
        .map(|group| group.split('|').map(|alt| parse_relation(alt, s)).collect())
        .collect()
}

/// Parses one alternative; `field` is the whole value, for errors.
fn parse_relation(alt: &str, field: &str) -> Result<Relation, ControlError> {
    let text = alt.trim();
    let err = |reason: String| ControlError::Relation {
        field: field.trim().to_string(),
        relation: text.to_string(),
        reason,
    };
    if text.is_empty() {
        return Err(err("empty relation".into()));
    }
    let name_end = text
        .find(|c: char| c.is_whitespace() || ":([<".contains(c))
        .unwrap_or(text.len());
    let name = &text[..name_end];
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(err(format!(
            "package name `{name}` must start with a letter or digit"
        )));
    }
    if let Some(c) = name
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || "+-._".contains(c)))
    {
        return Err(err(format!(
            "character `{c}` not allowed in package name `{name}`"
        )));
    }
    let mut rest = &text[name_end..];
    let mut arch = None;
    if let Some(r) = rest.strip_prefix(':') {
        let end = r
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
            .unwrap_or(r.len());
        if end == 0 {
            return Err(err("empty architecture qualifier after `:`".into()));
        }
        arch = Some(r[..end].to_string());
        rest = &r[end..];
    }
    rest = rest.trim_start();
    let mut constraint = None;
    if let Some(r) = rest.strip_prefix('(') {
        let Some(close) = r.find(')') else {
            return Err(err("`(` without `)`".into()));
        };
        let inner = r[..close].trim();
        let (op, version) = if let Some(v) = inner.strip_prefix("<<") {
            (Op::Lt, v)
        } else if let Some(v) = inner.strip_prefix("<=") {
            (Op::Le, v)
        } else if let Some(v) = inner.strip_prefix(">>") {
            (Op::Gt, v)
        } else if let Some(v) = inner.strip_prefix(">=") {
            (Op::Ge, v)
        } else if let Some(v) = inner.strip_prefix('=') {
            (Op::Eq, v)
        } else if let Some(v) = inner.strip_prefix('<') {
            // Obsolete forms; dpkg reads them as `<=` and `>=`.
            (Op::Le, v)
        } else if let Some(v) = inner.strip_prefix('>') {
            (Op::Ge, v)
        } else {
            return Err(err(format!(
                "expected `<<`, `<=`, `=`, `>=` or `>>` in `({inner})`"
            )));
        };
        let version = version.trim();
        if let Err(e) = DebVersion::parse(version) {
            return Err(err(e.to_string()));
        }
        constraint = Some((op, version.to_string()));
        rest = r[close + 1..].trim_start();
    }
    // Architecture restriction lists, then build-profile formulas: ignored.
    while let Some(r) = rest.strip_prefix('[') {
        let Some(close) = r.find(']') else {
            return Err(err("`[` without `]`".into()));
        };
        rest = r[close + 1..].trim_start();
    }
    while let Some(r) = rest.strip_prefix('<') {
        let Some(close) = r.find('>') else {
            return Err(err("`<` without `>`".into()));
        };
        rest = r[close + 1..].trim_start();
    }
    if !rest.is_empty() {
        return Err(err(format!("unexpected `{rest}`")));
    }
    Ok(Relation {
        name: name.to_string(),
        arch,
        constraint,
    })
}

/// Reads a `Packages` index into records tagged with `suite`, `component` and `archive`.
///
/// # Errors
/// A [`ControlError`] for bad deb822, or naming the package for a missing `Package`,
/// `Version`, `Architecture`, `Filename`, `Size` or `SHA256`, an invalid `Version`, a
/// `Size` that is not a number, or a `SHA256` that is not 64 hex digits.
pub fn packages_from_index(
    text: &str,
    suite: &str,
    component: &str,
    archive: &str,
) -> Result<Vec<IndexPackage>, ControlError> {
    let stanzas = parse_with_lines(text)?;
    let mut out = Vec::with_capacity(stanzas.len());
    for (line, st) in stanzas {
        let Some(name) = st.get("Package") else {
            return Err(ControlError::MissingPackage { line });
        };
        let required = |field: &'static str| {
            st.get(field).ok_or_else(|| ControlError::MissingField {
                package: name.to_string(),
                line,
                field,
            })
        };
        let bad = |field: &'static str, value: &str, reason: String| ControlError::BadField {
            package: name.to_string(),
            line,
            field,
            value: value.to_string(),
            reason,
        };
        let version = required("Version")?;
        if let Err(e) = DebVersion::parse(version) {
            return Err(bad("Version", version, e.reason));
        }
        let architecture = required("Architecture")?;
        let filename = required("Filename")?;
        let size_text = required("Size")?;
        let size = size_text
            .parse::<u64>()
            .map_err(|e| bad("Size", size_text, e.to_string()))?;
        let sha256 = required("SHA256")?;
        if sha256.len() != 64 || !sha256.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err(bad("SHA256", sha256, "expected 64 hex digits".into()));
        }
        let raw = |field: &str| st.get(field).unwrap_or("").to_string();
        out.push(IndexPackage {
            name: name.to_string(),
            version: version.to_string(),
            architecture: architecture.to_string(),
            depends: raw("Depends"),
            pre_depends: raw("Pre-Depends"),
            provides: raw("Provides"),
            conflicts: raw("Conflicts"),
            breaks: raw("Breaks"),
            replaces: raw("Replaces"),
            source: st.get("Source").map(str::to_string),
            essential: st
                .get("Essential")
                .is_some_and(|v| v.eq_ignore_ascii_case("yes")),
            priority: st.get("Priority").map(str::to_string),
            multi_arch: st.get("Multi-Arch").map(str::to_string),
            filename: filename.to_string(),
            size,
            sha256: sha256.to_ascii_lowercase(),
            suite: suite.to_string(),
            component: component.to_string(),
            archive: archive.to_string(),
        });
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const CONTROL: &str = "\
Package: libc6
Version: 2.41-12
Architecture: amd64
Multi-Arch: same
Depends: libgcc-s1
Description: GNU C Library: Shared libraries
 Contains the standard libraries that are used by nearly all programs on
 the system.
 .
 This package includes shared versions.
";

    #[test]
    fn stanza_roundtrip_and_case_insensitive_get() {
        let st = parse_stanzas(CONTROL).unwrap();
        assert_eq!(st.len(), 1);
        let s = &st[0];
        assert_eq!(s.get("package"), Some("libc6"));
        assert_eq!(s.get("MULTI-ARCH"), Some("same"));
        assert_eq!(s.get("Missing"), None);
        let names: Vec<&str> = s.fields.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "Package",
                "Version",
                "Architecture",
                "Multi-Arch",
                "Depends",
                "Description"
            ]
        );
        assert!(
            s.get("Description")
                .unwrap()
                .starts_with("GNU C Library: Shared libraries\n Contains")
        );
        assert_eq!(s.to_text(), CONTROL);
    }

    #[test]
    fn several_stanzas_blank_lines_comments_crlf() {
        let text = "\n\n# comment\nA: 1\r\nB:2\n\n \t\n\nA: 3\nList:\n x 1\n y 2\n\n\n";
        let st = parse_stanzas(text).unwrap();
        assert_eq!(st.len(), 2);
        assert_eq!(st[0].get("a"), Some("1"));
        assert_eq!(st[0].get("b"), Some("2"));
        assert_eq!(st[1].get("List"), Some("\n x 1\n y 2"));
        assert_eq!(st[1].to_text(), "A: 3\nList:\n x 1\n y 2\n");
        assert!(parse_stanzas("").unwrap().is_empty());
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let cases = [
            (
                "A: 1\n continued\nno colon here\n",
                3,
                "expected `Field: value`",
            ),
            (" leading\n", 1, "continuation"),
            ("A: 1\n\n cont\n", 3, "continuation"),
            ("A: 1\na: 2\n", 2, "duplicate field"),
            ("A: 1\nMy Field: 2\n", 2, "contains spaces"),
            ("A: 1\n: 2\n", 2, "empty field name"),
        ];
        for (text, line, msg) in cases {
            let e = parse_stanzas(text).unwrap_err();
            match &e {
                ControlError::Syntax { line: l, message } => {
                    assert_eq!(*l, line, "{text:?}: {e}");
                    assert!(message.contains(msg), "{text:?}: {e}");
                }
                other => panic!("{other:?}"),
            }
            assert!(e.to_string().starts_with(&format!("line {line}: ")));
        }
    }

    fn rel(name: &str, arch: Option<&str>, c: Option<(Op, &str)>) -> Relation {
        Relation {
            name: name.into(),
            arch: arch.map(Into::into),
            constraint: c.map(|(o, v)| (o, v.into())),
        }
    }

    #[test]
    fn relations() {
        let r = parse_relations(
            "libc6 (>= 2.34), debconf (>= 0.5) | debconf-2.0, python3:any (<< 3.14~),\n perl:native, foo (= 1:2.0-1), bar (>>1), baz (<1), qux (> 2), zed(<=3)",
        )
        .unwrap();
        assert_eq!(
            r,
            vec![
                vec![rel("libc6", None, Some((Op::Ge, "2.34")))],
                vec![
                    rel("debconf", None, Some((Op::Ge, "0.5"))),
                    rel("debconf-2.0", None, None)
                ],
                vec![rel("python3", Some("any"), Some((Op::Lt, "3.14~")))],
                vec![rel("perl", Some("native"), None)],
                vec![rel("foo", None, Some((Op::Eq, "1:2.0-1")))],
                vec![rel("bar", None, Some((Op::Gt, "1")))],
                vec![rel("baz", None, Some((Op::Le, "1")))],
                vec![rel("qux", None, Some((Op::Ge, "2")))],
                vec![rel("zed", None, Some((Op::Le, "3")))],
            ]
        );
        assert_eq!(format_group(&r[1]), "debconf (>= 0.5) | debconf-2.0");
        assert_eq!(r[2][0].to_string(), "python3:any (<< 3.14~)");
        assert!(parse_relations("  \n ").unwrap().is_empty());
    }

    #[test]
    fn restrictions_are_ignored() {
        let r = parse_relations(
            "gcc [amd64 !i386] <!nocheck> <cross>, libfoo-dev (>= 1) [linux-any] <!stage1>",
        )
        .unwrap();
        assert_eq!(
            r,
            vec![
                vec![rel("gcc", None, None)],
                vec![rel("libfoo-dev", None, Some((Op::Ge, "1")))]
            ]
        );
    }

    #[test]
    fn relation_errors() {
        for (text, why) in [
            ("a, , b", "empty relation"),
            ("a |", "empty relation"),
            ("a (>= 1", "without `)`"),
            ("a (~ 1)", "expected `<<`"),
            ("a (>= )", "version string is empty"),
            ("a (>= x1)", "does not start with digit"),
            ("a b", "unexpected `b`"),
            ("-a", "must start with"),
            ("a$b", "not allowed"),
            ("a:", "empty architecture"),
            ("a [amd64", "without `]`"),
            ("a <x", "without `>`"),
        ] {
            let e = parse_relations(text).unwrap_err();
            assert!(e.to_string().contains(why), "{text:?}: {e}");
        }
    }

    #[test]
    fn op_holds_and_accepts() {
        use Ordering::{Equal, Greater, Less};
        assert!(Op::Lt.holds(Less) && !Op::Lt.holds(Equal));
        assert!(Op::Le.holds(Equal) && !Op::Le.holds(Greater));
        assert!(Op::Eq.holds(Equal) && !Op::Eq.holds(Less));
        assert!(Op::Ge.holds(Greater) && !Op::Ge.holds(Less));
        assert!(Op::Gt.holds(Greater) && !Op::Gt.holds(Equal));
        let r = &parse_relations("a (>= 1.0~rc1)").unwrap()[0][0];
        assert!(r.accepts(&DebVersion::parse("1.0~rc1").unwrap()));
        assert!(r.accepts(&DebVersion::parse("1.0").unwrap()));
        assert!(!r.accepts(&DebVersion::parse("1.0~beta").unwrap()));
    }

    const PACKAGES: &str = "\
Package: python3.13-minimal
Source: python3.13
Version: 3.13.5-2
Installed-Size: 6000
Maintainer: Matthias Klose <doko@debian.org>
Architecture: amd64
Multi-Arch: allowed
Replaces: python3.13 (<< 3.13.0-1)
Depends: libpython3.13-minimal (= 3.13.5-2), libexpat1 (>= 2.1~beta3), zlib1g (>= 1:1.2.0)
Pre-Depends: libc6 (>= 2.38)
Recommends: python3.13
Breaks: python3-all (<< 3.6.5~rc1-1)
Priority: optional
Section: python
Filename: pool/main/p/python3.13/python3.13-minimal_3.13.5-2_amd64.deb
Size: 2235240
SHA256: 0BE3D7D96AAF3A0E3D0E8C0F2A3B4C5D6E7F8091A2B3C4D5E6F708192A3B4C5D

Package: base-files
Version: 13.8
Architecture: amd64
Essential: yes
Priority: required
Provides: base
Filename: pool/main/b/base-files/base-files_13.8_amd64.deb
Size: 73000
SHA256: 1111111111111111111111111111111111111111111111111111111111111111
";

    #[test]
    fn packages_index() {
        let pkgs = packages_from_index(PACKAGES, "trixie", "main", "https://deb.debian.org/debian")
            .unwrap();
        assert_eq!(pkgs.len(), 2);
        let p = &pkgs[0];
        assert_eq!(p.name, "python3.13-minimal");
        assert_eq!(p.version, "3.13.5-2");
        assert_eq!(p.architecture, "amd64");
        assert_eq!(p.source.as_deref(), Some("python3.13"));
        assert_eq!(p.pre_depends, "libc6 (>= 2.38)");
        assert_eq!(p.breaks, "python3-all (<< 3.6.5~rc1-1)");
        assert_eq!(p.replaces, "python3.13 (<< 3.13.0-1)");
        assert_eq!(p.multi_arch.as_deref(), Some("allowed"));
        assert_eq!(p.priority.as_deref(), Some("optional"));
        assert!(!p.essential);
        assert_eq!(p.size, 2_235_240);
        assert_eq!(
            p.sha256,
            "0be3d7d96aaf3a0e3d0e8c0f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d"
        );
        assert_eq!(parse_relations(&p.depends).unwrap().len(), 3);
        assert_eq!(
            (p.suite.as_str(), p.component.as_str(), p.archive.as_str()),
            ("trixie", "main", "https://deb.debian.org/debian")
        );
        let b = &pkgs[1];
        assert!(b.essential);
        assert_eq!(b.provides, "base");
        assert_eq!(b.source, None);
        assert_eq!(b.depends, "");
    }

    #[test]
    fn packages_index_errors_name_the_package() {
        let drop_line = |field: &str| {
            PACKAGES
                .lines()
                .filter(|l| !l.starts_with(&format!("{field}:")))
                .collect::<Vec<_>>()
                .join("\n")
        };
        for field in ["Filename", "Size", "SHA256", "Version", "Architecture"] {
            let e = packages_from_index(&drop_line(field), "s", "c", "a").unwrap_err();
            assert_eq!(
                e.to_string(),
                format!("package `python3.13-minimal` (stanza at line 1) has no `{field}` field")
            );
        }
        let e = packages_from_index(&drop_line("Package"), "s", "c", "a").unwrap_err();
        assert_eq!(e, ControlError::MissingPackage { line: 1 });
        let bad = PACKAGES.replace("Size: 73000", "Size: 7k");
        let e = packages_from_index(&bad, "s", "c", "a").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("package `base-files` (stanza at line 19): bad `Size` value `7k`"),
            "{e}"
        );
        let bad = PACKAGES.replace("Version: 13.8", "Version: x13");
        let e = packages_from_index(&bad, "s", "c", "a").unwrap_err();
        assert!(e.to_string().contains("bad `Version` value `x13`"), "{e}");
        let bad = PACKAGES.replace("SHA256: 1111", "SHA256: 11");
        let e = packages_from_index(&bad, "s", "c", "a").unwrap_err();
        assert!(e.to_string().contains("expected 64 hex digits"), "{e}");
    }
}
