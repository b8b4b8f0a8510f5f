//! Node shapes: which arguments, properties and block a recipe node takes, and typed
//! reading of KDL values. Every mistake becomes a spanned diagnostic; readers return
//! `None` after reporting so that checking can go on and find the next problem.

use kdl::{KdlEntry, KdlNode, KdlValue};
use miette::SourceSpan;

use super::error::{ErrorKind, RecipeDiagnostic};
use super::source::SourceFile;
use super::suggest;
use super::validate::{self, Problem};

/// The shape of one kind of node.
#[derive(Debug)]
pub(crate) struct Shape {
    /// Node name.
    pub(crate) name: &'static str,
    /// Required positional arguments, by placeholder name (`DEST`, `CONTENT`).
    pub(crate) args: &'static [&'static str],
    /// Whether more arguments like the last one may follow.
    pub(crate) variadic: bool,
    /// Allowed properties.
    pub(crate) props: &'static [&'static str],
    /// Whether a `{ … }` block is allowed.
    pub(crate) children: bool,
    /// An example line, shown in help.
    pub(crate) usage: &'static str,
}

/// A [`Shape`] in one line, for the `const` tables of each block's nodes.
pub(crate) const fn shape(
    name: &'static str,
    args: &'static [&'static str],
    variadic: bool,
    props: &'static [&'static str],
    children: bool,
    usage: &'static str,
) -> Shape {
    Shape {
        name,
        args,
        variadic,
        props,
        children,
        usage,
    }
}

/// A node's entries once its shape is checked.
#[derive(Debug)]
pub(crate) struct Entries<'d> {
    /// Positional arguments (at most the allowed number).
    pub(crate) args: Vec<&'d KdlEntry>,
    props: Vec<(&'d str, &'d KdlEntry)>,
}

impl<'d> Entries<'d> {
    /// The property `name`, if given.
    pub(crate) fn prop(&self, name: &str) -> Option<&'d KdlEntry> {
        self.props.iter().find(|(n, _)| *n == name).map(|(_, e)| *e)
    }

    /// Positional argument `i`.
    pub(crate) fn arg(&self, i: usize) -> Option<&'d KdlEntry> {
        self.args.get(i).copied()
    }
}

/// Where diagnostics go while checking one file.
pub(crate) struct Cx<'a> {
    /// The file being checked.
    pub(crate) file: &'a SourceFile,
    /// Collected diagnostics.
    pub(crate) out: &'a mut Vec<RecipeDiagnostic>,
}

/// `how many` placeholder names: "1 argument (DEST)".
fn arity(shape: &Shape) -> String {
    let n = shape.args.len();
    let names = shape.args.join(" ");
    match (n, shape.variadic) {
        (0, _) => "no arguments".to_owned(),
        (1, false) => format!("1 argument ({names})"),
        (_, false) => format!("{n} arguments ({names})"),
        (_, true) => format!("{n} or more arguments ({names} …)"),
    }
}

impl<'a> Cx<'a> {
    /// Reports a diagnostic.
    pub(crate) fn push(&mut self, diagnostic: RecipeDiagnostic) {
        self.out.push(diagnostic);
    }

    /// Reports a [`Problem`] found in a value.
    pub(crate) fn problem(&mut self, kind: ErrorKind, span: SourceSpan, label: &str, p: Problem) {
        let d = self.file.diag(kind, span, label, p.message).help(p.help);
        self.push(d);
    }

    /// Checks a node against its shape: type annotations, properties (unknown,
    /// duplicate), argument count and block. `None` when required arguments are
    /// missing (already reported); otherwise the usable entries, even if other
    /// problems were reported.
    pub(crate) fn check<'d>(&mut self, node: &'d KdlNode, shape: &Shape) -> Option<Entries<'d>> {
        let file = self.file;
        if let Some(ty) = node.ty() {
            self.annotation(ty.span());
        }
        let mut args = Vec::new();
        let mut props: Vec<(&'d str, &'d KdlEntry)> = Vec::new();
        for entry in node.entries() {
            if let Some(ty) = entry.ty() {
                self.annotation(ty.span());
            }
            let Some(key) = entry.name() else {
                args.push(entry);
                continue;
            };
            let name = key.value();
            if !shape.props.contains(&name) {
                let help = match suggest::closest(name, shape.props) {
                    Some(c) => format!("did you mean `{c}`?"),
                    None if shape.props.is_empty() => {
                        format!(
                            "`{}` takes no properties; usage: {}",
                            shape.name, shape.usage
                        )
                    }
                    None => format!(
                        "`{}` takes the properties {}; usage: {}",
                        shape.name,
                        suggest::list(shape.props),
                        shape.usage
                    ),
                };
                let d = file
                    .diag(
                        ErrorKind::UnknownProperty,
                        entry.span(),
                        "unknown property",
                        format!("`{}` has no property `{name}`", shape.name),
                    )
                    .help(help);
                self.push(d);
            } else if let Some((_, first)) = props.iter().find(|(n, _)| *n == name) {
                let d = file
                    .diag(
                        ErrorKind::DuplicateProperty,
                        entry.span(),
                        "given again here",
                        format!("property `{name}` is given twice"),
                    )
                    .secondary(first.span(), "first given here")
                    .help(format!("keep one `{name}=…`"));
                self.push(d);
            } else {
                props.push((name, entry));
            }
        }

        if !shape.children
            && let Some(children) = node.children()
        {
            let d = file
                .diag(
                    ErrorKind::UnexpectedChildren,
                    file.block_span(children),
                    "unexpected block",
                    format!("`{}` does not take a `{{ … }}` block", shape.name),
                )
                .help(format!("remove the block; usage: {}", shape.usage));
            self.push(d);
        }

        let want = shape.args.len();
        if args.len() < want {
            let missing = shape.args[args.len()..].join(" and ");
            let span = args.last().map_or(node.name().span(), |e| e.span());
            let d = file
                .diag(
                    ErrorKind::MissingArgument,
                    span,
                    format!("{missing} expected after this"),
                    format!("`{}` is missing {missing}", shape.name),
                )
                .help(format!(
                    "`{}` takes {}; usage: {}",
                    shape.name,
                    arity(shape),
                    shape.usage
                ));
            self.push(d);
            return None;
        }
        if !shape.variadic && args.len() > want {
            let extra = &args[want..];
            let span = match (extra.first(), extra.last()) {
                (Some(f), Some(l)) => {
                    SourceSpan::from(f.span().offset()..l.span().offset() + l.span().len())
                }
                _ => node.name().span(),
            };
            let d = file
                .diag(
                    ErrorKind::TooManyArguments,
                    span,
                    if extra.len() == 1 {
                        "extra argument"
                    } else {
                        "extra arguments"
                    },
                    format!(
                        "`{}` takes {}, found {}",
                        shape.name,
                        arity(shape),
                        args.len()
                    ),
                )
                .help(format!("usage: {}", shape.usage));
            self.push(d);
            args.truncate(want);
        }
        Some(Entries { args, props })
    }

    fn annotation(&mut self, span: SourceSpan) {
        let d = self
            .file
            .diag(
                ErrorKind::TypeAnnotation,
                span,
                "type annotation",
                "recipes do not use KDL type annotations",
            )
            .help("remove the `(…)` annotation");
        self.push(d);
    }

    /// Reports a value of the wrong type.
    fn wrong_type(&mut self, entry: &KdlEntry, expected: &str, what: &str, help: String) {
        let raw = self.file.value_text(entry);
        let found = match entry.value() {
            KdlValue::String(_) => "a string",
            KdlValue::Integer(_) => "an integer",
            KdlValue::Float(_) => "a float",
            KdlValue::Bool(_) => "a boolean",
            KdlValue::Null => "null",
        };
        let d = self
            .file
            .diag(
                ErrorKind::WrongType,
                entry.span(),
                format!("expected {expected}"),
                format!("{what} must be {expected}, found {found} `{raw}`"),
            )
            .help(help);
        self.push(d);
    }

    /// A string value; `what` names it in messages (`the destination`, `mode`).
    pub(crate) fn string(&mut self, entry: &KdlEntry, what: &str) -> Option<String> {
        match entry.value() {
            KdlValue::String(s) => Some(s.clone()),
            other => {
                let raw = self.file.value_text(entry);
                let help = match other {
                    KdlValue::Float(f) => format!(
                        "KDL reads unquoted `{raw}` as the number {f}; quote it to keep it as written: \"{raw}\""
                    ),
                    KdlValue::Bool(_) | KdlValue::Null => format!(
                        "quote it if you mean the text: \"{}\"",
                        raw.trim_start_matches('#')
                    ),
                    _ => format!("quote it: \"{raw}\""),
                };
                self.wrong_type(entry, "a string", what, help);
                None
            }
        }
    }

    /// A uid or gid: an integer in `0..=u32::MAX`.
    pub(crate) fn id(&mut self, entry: &KdlEntry, what: &str) -> Option<u32> {
        match entry.value() {
            KdlValue::Integer(i) => match u32::try_from(*i) {
                Ok(v) => Some(v),
                Err(_) => {
                    let d = self
                        .file
                        .diag(
                            ErrorKind::InvalidValue,
                            entry.span(),
                            "out of range",
                            format!("{what} {i} is out of range"),
                        )
                        .help(format!("{what} is a number from 0 to {}", u32::MAX));
                    self.push(d);
                    None
                }
            },
            _ => {
                self.wrong_type(
                    entry,
                    "an integer",
                    what,
                    format!("write numeric ids without quotes, e.g. {what}=1000"),
                );
                None
            }
        }
    }

    /// A mode: a quoted octal string.
    pub(crate) fn mode(&mut self, entry: &KdlEntry, what: &str) -> Option<u32> {
        let help = r#"write modes as quoted octal strings, e.g. mode="0755""#;
        match entry.value() {
            KdlValue::String(s) => match validate::mode(s) {
                Ok(m) => Some(m),
                Err(p) => {
                    self.problem(ErrorKind::InvalidMode, entry.span(), "not an octal mode", p);
                    None
                }
            },
            _ => {
                self.wrong_type(entry, "a quoted octal string", what, help.to_owned());
                None
            }
        }
    }

    /// Optional uid/gid properties.
    pub(crate) fn ownership(&mut self, entries: &Entries<'_>) -> super::model::Ownership {
        let mut owner = super::model::Ownership::default();
        if let Some(e) = entries.prop("uid") {
            owner.uid = self.id(e, "uid").unwrap_or(0);
        }
        if let Some(e) = entries.prop("gid") {
            owner.gid = self.id(e, "gid").unwrap_or(0);
        }
        owner
    }

    /// A string that must also be a valid image path (see [`validate::image_path`]).
    pub(crate) fn image_path(
        &mut self,
        entry: &KdlEntry,
        what: &str,
        allow_root: bool,
    ) -> Option<String> {
        let path = self.string(entry, what)?;
        match validate::image_path(&path, allow_root) {
            Ok(()) => Some(path),
            Err(p) => {
                self.problem(
                    ErrorKind::InvalidPath,
                    entry.span(),
                    "not an absolute, normalized path",
                    p,
                );
                None
            }
        }
    }

    /// An `unknown node` diagnostic with suggestions among `known`; `scope` is
    /// "the top level" or "`layer`".
    pub(crate) fn unknown_node(&mut self, node: &KdlNode, known: &[&str], scope: &str) {
        let name = node.name().value();
        let help = if name == "include" {
            "`include` is only allowed at the top level of a file".to_owned()
        } else {
            suggest::help(name, known, scope)
        };
        let d = self
            .file
            .diag(
                ErrorKind::UnknownNode,
                node.name().span(),
                "unknown node",
                format!("unknown node `{name}` in {scope}"),
            )
            .help(help);
        self.push(d);
    }
}
