//! The `pypi { … }` block (which package indexes Python projects come from, and an
//! optional virtual-environment prefix) and the `pypi "requirement" …` layer item.
//!
//! A recipe without a block that has `pypi` items gets the default index,
//! [`DEFAULT_INDEX`], so the [`PypiSource`] of a loaded recipe always names exactly one
//! default index (without `only`). Python needs an interpreter from Debian: [`check`]
//! runs once the layers are ordered and requires a `debian` item at or below the lowest
//! layer with `pypi` items.

use std::collections::HashMap;
use std::str::FromStr as _;

use kdl::{KdlEntry, KdlNode};
use miette::SourceSpan;
use pep508_rs::{Requirement, VersionOrUrl};

use super::error::{ErrorKind, RecipeDiagnostic};
use super::model::{LayerItem, PypiIndex, PypiSource};
use super::parse::{Site, duplicate};
use super::shape::{Cx, Shape, shape};
use super::source::SourceFile;
use super::validate::{self, Problem};

/// The index used when a recipe names no default index: the Python Package Index.
pub const DEFAULT_INDEX: &str = "https://pypi.org/simple";

/// Nodes of the `pypi` block.
const BLOCK_NODES: &[&str] = &["index", "prefix"];

/// The shortest useful block, shown in help.
const BLOCK_EXAMPLE: &str = r#"pypi { index "https://pypi.org/simple"; }"#;

/// How requirements are written, shown in help.
const EXAMPLES: &str = r#"write PEP 508 requirements such as "numpy", "requests[socks]>=2.31" or "pywin32; sys_platform == 'win32'""#;

const BLOCK: Shape = shape("pypi", &[], false, &[], true, BLOCK_EXAMPLE);
const INDEX: Shape = shape(
    "index",
    &["URL"],
    false,
    &["only"],
    false,
    r#"index "https://download.pytorch.org/whl/cu126" only="torch torchvision""#,
);
const PREFIX: Shape = shape(
    "prefix",
    &["PATH"],
    false,
    &[],
    false,
    r#"prefix "/opt/venv""#,
);
const ITEM: Shape = shape(
    "pypi",
    &["REQUIREMENT"],
    true,
    &[],
    false,
    r#"pypi "numpy" "requests[socks]>=2.31" "tensorflow[and-cuda]==2.21.0""#,
);

/// A `pypi` block as read.
pub(super) struct PypiDraft {
    /// The block's node name.
    site: Site,
    /// What the block says, the default index added when it names none.
    source: PypiSource,
}

/// Where an index's URL and `only` list were written (same file as the block).
struct IndexSites {
    url: SourceSpan,
    only: Option<SourceSpan>,
}

/// Reads a top-level `pypi` block into `slot`, or reports it as a second one.
pub(super) fn block(
    cx: &mut Cx<'_>,
    file_index: usize,
    node: &KdlNode,
    slot: &mut Option<PypiDraft>,
    seen: &mut HashMap<&'static str, Site>,
    files: &[SourceFile],
) {
    let here = (file_index, node.name().span());
    if let Some(first) = slot {
        let mut d = cx.file.diag(
            ErrorKind::DuplicatePypi,
            here.1,
            "second `pypi` block",
            "a recipe has at most one `pypi` block",
        );
        let mut help =
            "merge the two `pypi` blocks into one (`index` may repeat inside it)".to_owned();
        if first.site.0 == file_index {
            d = d.secondary(first.site.1, "first `pypi` block");
        } else if let Some(f) = files.get(first.site.0) {
            help = format!("{help}; the first is at {}", f.location(first.site.1));
        }
        cx.push(d.help(help));
        return;
    }

    let args: Vec<&KdlEntry> = node
        .entries()
        .iter()
        .filter(|e| e.name().is_none())
        .collect();
    if let (Some(first), Some(last)) = (args.first(), args.last()) {
        // `pypi "numpy"` at the top level: a layer item in the wrong place.
        let span =
            SourceSpan::from(first.span().offset()..last.span().offset() + last.span().len());
        let d = cx
            .file
            .diag(
                ErrorKind::TooManyArguments,
                span,
                "requirements here",
                "the top-level `pypi` block takes no arguments",
            )
            .help(format!(
                r#"Python packages are installed by layers: layer "python" after="system" {{ pypi "numpy"; }}; the top-level block says where they come from: {BLOCK_EXAMPLE}"#
            ));
        cx.push(d);
    } else {
        let _ = cx.check(node, &BLOCK);
    }

    let mut source = PypiSource::default();
    let mut sites: Vec<IndexSites> = Vec::new();
    for child in node.children().map(|c| c.nodes()).unwrap_or_default() {
        let site = (file_index, child.name().span());
        match child.name().value() {
            "index" => {
                let Some((index, at)) = index(cx, child) else {
                    continue;
                };
                if conflicts(cx, &source.indexes, &sites, &index, &at) {
                    continue;
                }
                source.indexes.push(index);
                sites.push(at);
            }
            "prefix" => {
                let Some(e) = cx.check(child, &PREFIX).and_then(|en| en.arg(0)) else {
                    continue;
                };
                if duplicate(
                    cx,
                    files,
                    seen,
                    "pypi.prefix",
                    site,
                    ErrorKind::DuplicateSetting,
                    "`prefix`",
                ) {
                    continue;
                }
                source.prefix = cx.image_path(e, "the prefix", false);
            }
            _ => cx.unknown_node(child, BLOCK_NODES, "`pypi`"),
        }
    }
    if !source.indexes.iter().any(|i| i.only.is_empty()) {
        source.indexes.push(default_index());
    }
    *slot = Some(PypiDraft { site: here, source });
}

fn default_index() -> PypiIndex {
    PypiIndex {
        url: DEFAULT_INDEX.to_owned(),
        only: Vec::new(),
    }
}

/// `index "URL" [only="a b"]`, with where its parts were written.
fn index(cx: &mut Cx<'_>, node: &KdlNode) -> Option<(PypiIndex, IndexSites)> {
    let entries = cx.check(node, &INDEX)?;
    let url_e = entries.arg(0)?;
    let url = cx
        .string(url_e, "the index URL")
        .and_then(|u| match validate::index_url(&u) {
            Ok(url) => Some(url),
            Err(p) => {
                cx.problem(ErrorKind::InvalidUrl, url_e.span(), "not an index URL", p);
                None
            }
        });
    let only_e = entries.prop("only");
    let only = match only_e {
        Some(e) => only_names(cx, e),
        None => Some(Vec::new()),
    };
    let sites = IndexSites {
        url: url_e.span(),
        only: only_e.map(KdlEntry::span),
    };
    Some((
        PypiIndex {
            url: url?,
            only: only?,
        },
        sites,
    ))
}

/// The `only="…"` list: project names separated by spaces, normalized, each kept once.
fn only_names(cx: &mut Cx<'_>, e: &KdlEntry) -> Option<Vec<String>> {
    let text = cx.string(e, "`only`")?;
    let mut out: Vec<String> = Vec::new();
    let mut ok = true;
    for word in text.split_whitespace() {
        match validate::project_name(word) {
            Ok(name) if !out.contains(&name) => out.push(name),
            Ok(_) => {}
            Err(p) => {
                cx.problem(ErrorKind::InvalidName, e.span(), "invalid project name", p);
                ok = false;
            }
        }
    }
    if out.is_empty() && ok {
        let d = cx
            .file
            .diag(
                ErrorKind::InvalidValue,
                e.span(),
                "empty list",
                "`only` is empty",
            )
            .help(format!(
                "name the projects that come from this index, separated by spaces, or leave \
                 `only` out to make it the default index; usage: {}",
                INDEX.usage
            ));
        cx.push(d);
        return None;
    }
    ok.then_some(out)
}

/// Reports an index that conflicts with one read before: the same URL, a second default
/// index, or a project pinned to both. Returns whether it did.
fn conflicts(
    cx: &mut Cx<'_>,
    indexes: &[PypiIndex],
    sites: &[IndexSites],
    index: &PypiIndex,
    at: &IndexSites,
) -> bool {
    let earlier = || indexes.iter().zip(sites);
    if let Some((_, first)) = earlier().find(|(i, _)| i.url == index.url) {
        let d = cx
            .file
            .diag(
                ErrorKind::DuplicateIndex,
                at.url,
                "named again here",
                format!("index `{}` is named twice", index.url),
            )
            .secondary(first.url, "first named here")
            .help("name each index once; put every project it serves in one `only` list");
        cx.push(d);
        return true;
    }
    if index.only.is_empty() {
        let Some((first, first_at)) = earlier().find(|(i, _)| i.only.is_empty()) else {
            return false;
        };
        let d = cx
            .file
            .diag(
                ErrorKind::DuplicateIndex,
                at.url,
                "second default index",
                "a `pypi` block has at most one default index (an `index` without `only`)",
            )
            .secondary(first_at.url, "default index")
            .help(format!(
                r#"a project comes from exactly one index, so that no index can shadow another's names; keep `{}` as the default and name what this one serves: index "{}" only="…""#,
                first.url, index.url
            ));
        cx.push(d);
        return true;
    }
    for name in &index.only {
        let Some((first, first_at)) = earlier().find(|(i, _)| i.only.contains(name)) else {
            continue;
        };
        let span = at.only.unwrap_or(at.url);
        let mut d = cx.file.diag(
            ErrorKind::DuplicateIndex,
            span,
            format!("`{name}` pinned again here"),
            format!(
                "`{name}` is pinned to two indexes, `{}` and `{}`",
                first.url, index.url
            ),
        );
        if let Some(first_span) = first_at.only {
            d = d.secondary(first_span, "first pinned here");
        }
        cx.push(d.help(format!(
            "a project comes from exactly one index; remove `{name}` from one of the `only` lists"
        )));
        return true;
    }
    false
}

/// A layer's `pypi "req" …` item (`None` when an argument is not a valid requirement,
/// which is reported), and the normalized project name and span of each valid one.
///
/// Requirements are kept in the canonical form of [`Requirement`]'s `Display`
/// (`requests[socks]>=2.31`, names normalized), so spacing never matters.
pub(super) fn item(
    cx: &mut Cx<'_>,
    node: &KdlNode,
) -> (Option<LayerItem>, Vec<(String, SourceSpan)>) {
    let Some(entries) = cx.check(node, &ITEM) else {
        return (None, Vec::new());
    };
    let mut requirements = Vec::with_capacity(entries.args.len());
    let mut names = Vec::with_capacity(entries.args.len());
    let mut ok = true;
    for e in &entries.args {
        let Some(text) = cx.string(e, "a requirement") else {
            ok = false;
            continue;
        };
        match requirement(&text) {
            Ok(r) => {
                requirements.push(r.to_string());
                names.push((r.name.to_string(), e.span()));
            }
            Err(p) => {
                cx.problem(
                    ErrorKind::InvalidRequirement,
                    e.span(),
                    "not a requirement",
                    p,
                );
                ok = false;
            }
        }
    }
    (ok.then_some(LayerItem::Pypi { requirements }), names)
}

/// Parses one requirement of a `pypi` item: PEP 508, not a direct URL.
pub(crate) fn requirement(text: &str) -> Result<Requirement, Problem> {
    let t = text.trim();
    match Requirement::from_str(t) {
        Ok(r) => match &r.version_or_url {
            Some(VersionOrUrl::Url(url)) => Err(Problem {
                message: format!("`{}` is requested by direct URL (`@ {url}`)", r.name),
                help: format!(
                    "composer takes wheels from package indexes only, so that each is locked \
                     by name, version and hash; pin it through an index: request \"{}\" (with \
                     a version, e.g. \"{}==VERSION\") and serve it from an index: \
                     pypi {{ index \"https://…/simple\" only=\"{}\"; }}",
                    r.name, r.name, r.name
                ),
            }),
            _ => Ok(r),
        },
        Err(e) => {
            let swapped = t.replace("=>", ">=").replace("=<", "<=");
            let help = if let Some(fixed) = single_equals(t) {
                format!("PEP 440 pins a version with `==`: \"{fixed}\"")
            } else if swapped != t
                && Requirement::<pep508_rs::VerbatimUrl>::from_str(&swapped).is_ok()
            {
                format!("the operators are `>=` and `<=`: \"{swapped}\"")
            } else if t.contains(',') && !t.contains(['<', '>', '=', '!', '~']) {
                let each: Vec<String> = t.split(',').map(|p| format!("\"{}\"", p.trim())).collect();
                format!(
                    "write each requirement as its own argument: pypi {}",
                    each.join(" ")
                )
            } else {
                EXAMPLES.to_owned()
            };
            let message = e.message.to_string();
            Err(Problem {
                message: if t.is_empty() {
                    "requirement is empty".to_owned()
                } else {
                    format!("`{t}` is not a valid requirement: {message}")
                },
                help,
            })
        }
    }
}

/// `numpy=2.3.1` (a Debian-style pin) as `numpy==2.3.1`, when that is the mistake.
fn single_equals(text: &str) -> Option<String> {
    let i = text.find('=')?;
    let before = text[..i].chars().last()?;
    let after = text[i + 1..].chars().next();
    if "=<>!~".contains(before) || after == Some('=') {
        return None;
    }
    let fixed = format!("{}=={}", text[..i].trim_end(), text[i + 1..].trim_start());
    Requirement::<pep508_rs::VerbatimUrl>::from_str(&fixed)
        .is_ok()
        .then_some(fixed)
}

/// Reports a project requested twice in one layer; `seen` holds the layer's requests so far.
pub(super) fn duplicate_request(
    cx: &mut Cx<'_>,
    seen: &HashMap<String, SourceSpan>,
    name: &str,
    span: SourceSpan,
) -> bool {
    let Some(first) = seen.get(name) else {
        return false;
    };
    let d = cx
        .file
        .diag(
            ErrorKind::DuplicateRequirement,
            span,
            "requested again here",
            format!("Python project `{name}` is requested twice in this layer"),
        )
        .secondary(*first, "first requested here")
        .help(
            "request each project once per layer; put every version constraint, extra and \
             marker on the one that stays",
        );
    cx.push(d);
    true
}

/// What a layer installs, for [`check`].
pub(super) struct LayerUse {
    /// Layer name.
    pub(super) name: String,
    /// Whether the layer has `debian` items.
    pub(super) debian: bool,
    /// The layer's first `pypi` item, if any.
    pub(super) pypi: Option<Site>,
}

/// Python packages need an interpreter, which comes from Debian: the lowest layer (in
/// image `order`) with `pypi` items must have `debian` items itself or below it. Higher
/// layers then have it too.
pub(super) fn check(
    uses: &[LayerUse],
    order: &[&str],
    files: &[SourceFile],
    diags: &mut Vec<RecipeDiagnostic>,
) {
    let mut python = false;
    for name in order {
        let Some(layer) = uses.iter().find(|u| u.name == *name) else {
            continue;
        };
        python |= layer.debian;
        let Some(site) = layer.pypi else {
            continue;
        };
        if python {
            return;
        }
        let Some(file) = files.get(site.0) else {
            return;
        };
        let d = file
            .diag(
                ErrorKind::MissingPython,
                site.1,
                "Python packages requested here",
                format!(
                    "layer `{name}` installs Python packages, but no layer at or below it installs Debian packages"
                ),
            )
            .help(format!(
                r#"the Python interpreter comes from Debian's python3 package: add it in this layer or one below, e.g. layer "system" {{ debian "python3"; }} and layer "{name}" after="system""#
            ));
        diags.push(d);
        return;
    }
}

/// The recipe's [`PypiSource`]: the block's, else the default index when a layer has
/// `pypi` items, else none.
pub(super) fn source(draft: Option<PypiDraft>, used: bool) -> Option<PypiSource> {
    match draft {
        Some(d) => Some(d.source),
        None if used => Some(PypiSource {
            indexes: vec![default_index()],
            prefix: None,
        }),
        None => None,
    }
}

impl PypiSource {
    /// The index that serves project `name` (any spelling; compared PEP 503-normalized):
    /// the index whose `only` lists it, else the default index (the first without `only`).
    #[must_use]
    pub fn index_for(&self, name: &str) -> Option<&PypiIndex> {
        let name = validate::project_name(name).unwrap_or_else(|_| name.to_ascii_lowercase());
        self.indexes
            .iter()
            .find(|i| i.only.contains(&name))
            .or_else(|| self.indexes.iter().find(|i| i.only.is_empty()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> String {
        match requirement(text) {
            Ok(r) => r.to_string(),
            Err(p) => panic!("{text}: {} / {}", p.message, p.help),
        }
    }

    fn err(text: &str) -> Problem {
        match requirement(text) {
            Ok(r) => panic!("{text} parsed as {r}"),
            Err(p) => p,
        }
    }

    #[test]
    fn requirements_take_a_canonical_form() {
        assert_eq!(ok("numpy"), "numpy");
        assert_eq!(ok("  numpy "), "numpy");
        assert_eq!(ok("requests [socks] >= 2.31"), "requests[socks]>=2.31");
        assert_eq!(ok("requests[socks]>=2.31"), "requests[socks]>=2.31");
        assert_eq!(
            ok("tensorflow[and-cuda]==2.21.0"),
            "tensorflow[and-cuda]==2.21.0"
        );
        assert_eq!(ok("PyYAML"), "pyyaml");
        assert_eq!(ok("numpy (>=2, <3)"), ok("numpy>=2,<3"));
        let marker = ok("pywin32; sys_platform == 'win32'");
        assert!(marker.starts_with("pywin32 ; "), "{marker}");
        assert_eq!(ok(&marker), marker);
        for text in ["numpy>=2,<3", "requests[socks,security]~=2.31", "x==1.*"] {
            let once = ok(text);
            assert_eq!(ok(&once), once, "{text}");
        }
    }

    #[test]
    fn mistakes_get_specific_help() {
        let cases = [
            ("", "empty"),
            ("numpy=2.3.1", "\"numpy==2.3.1\""),
            ("numpy >=> 2", "PEP 508"),
            ("numpy=>2", "\"numpy>=2\""),
            ("numpy =< 2", "\"numpy <= 2\""),
            ("numpy, scipy", r#"pypi "numpy" "scipy""#),
            (
                "numpy @ https://example.org/numpy-2.3.1-py3-none-any.whl",
                "pin it through an index",
            ),
            (
                "numpy @ https://example.org/numpy-2.3.1-py3-none-any.whl",
                "only=\"numpy\"",
            ),
            (
                "https://example.org/numpy-2.3.1-py3-none-any.whl",
                "PEP 508",
            ),
        ];
        for (text, expected) in cases {
            let p = err(text);
            assert!(
                p.message.contains(expected) || p.help.contains(expected),
                "{text}: {p:?}"
            );
        }
    }

    #[test]
    fn index_for_follows_only_then_the_default() {
        let source = PypiSource {
            indexes: vec![
                PypiIndex {
                    url: "https://download.pytorch.org/whl/cu126".into(),
                    only: vec!["torch".into(), "torchvision".into()],
                },
                default_index(),
            ],
            prefix: None,
        };
        let url = |n: &str| source.index_for(n).map(|i| i.url.as_str());
        assert_eq!(url("torch"), Some("https://download.pytorch.org/whl/cu126"));
        assert_eq!(
            url("TorchVision"),
            Some("https://download.pytorch.org/whl/cu126")
        );
        assert_eq!(url("numpy"), Some(DEFAULT_INDEX));
        assert_eq!(PypiSource::default().index_for("numpy"), None);
    }
}
