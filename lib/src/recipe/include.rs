//! Loading a recipe and its includes: every file is parsed as KDL v2, and each top-level
//! `include "path"` is replaced by the included file's top-level nodes, recursively.
//!
//! Paths are relative to the including file. Loops are reported with the chain of
//! files, as are unreadable includes and syntax errors (with kdl's own spans).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use kdl::KdlDocument;
use miette::{NamedSource, SourceSpan};

use super::error::{ErrorKind, RecipeDiagnostic};
use super::shape::{Cx, Shape};
use super::source::{SourceFile, SourceLoader, normalize_lexically};

/// Deepest include nesting accepted (a guard against loops through symlinks).
const MAX_DEPTH: usize = 32;

const INCLUDE: Shape = Shape {
    name: "include",
    args: &["PATH"],
    variadic: false,
    props: &[],
    children: false,
    usage: r#"include "common/base.kdl""#,
};

/// A top-level node after splicing: node `index` of file `file`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NodeRef {
    pub(crate) file: usize,
    pub(crate) index: usize,
}

/// Every file read, and the recipe's top-level nodes in spliced order.
#[derive(Debug)]
pub(crate) struct Spliced {
    /// Files in the order they were read; the recipe itself first.
    pub(crate) files: Vec<SourceFile>,
    /// Top-level nodes other than `include`, in order.
    pub(crate) nodes: Vec<NodeRef>,
}

struct Splicer<'l> {
    loader: &'l dyn SourceLoader,
    files: Vec<SourceFile>,
    nodes: Vec<NodeRef>,
    diags: Vec<RecipeDiagnostic>,
    /// Files being included, outermost first: (path read, display name).
    stack: Vec<(PathBuf, String)>,
}

/// Parses the recipe `text` (read from `path`, shown as `name`) and splices its includes.
///
/// # Errors
/// Syntax errors of every file, and every include that could not be followed.
pub(crate) fn splice(
    path: &Path,
    name: &str,
    text: String,
    loader: &dyn SourceLoader,
) -> Result<Spliced, Vec<RecipeDiagnostic>> {
    let mut s = Splicer {
        loader,
        files: Vec::new(),
        nodes: Vec::new(),
        diags: Vec::new(),
        stack: Vec::new(),
    };
    s.add_file(normalize_lexically(path), name.to_owned(), text);
    if s.diags.is_empty() {
        Ok(Spliced {
            files: s.files,
            nodes: s.nodes,
        })
    } else {
        Err(s.diags)
    }
}

/// The help shown for KDL syntax errors that come without one.
const SYNTAX_HELP: &str = "recipes are KDL v2: quote strings that are not plain words \
    (versions such as \"3.10\", paths, modes), write booleans as #true/#false";

/// Help for a KDL syntax error: the common recipe mistakes (unquoted versions, v1
/// booleans) get a specific hint; otherwise kdl's own help, else a general one.
fn syntax_help(text: &str, span: SourceSpan, kdl_help: Option<String>) -> String {
    let spanned = text
        .get(span.offset()..span.offset() + span.len())
        .unwrap_or("");
    let end = span.offset() + spanned.trim_end().len();
    let start = text
        .get(..end)
        .and_then(|before| before.rfind(|c: char| c.is_whitespace() || c == '='))
        .map_or(0, |i| i + 1)
        .max(span.offset().min(end));
    // The whole token: extend past the span to the next separator.
    let rest = text.get(start..).unwrap_or("");
    let token_len = rest
        .find(|c: char| c.is_whitespace() || ";{}()".contains(c))
        .unwrap_or(rest.len());
    let token = rest.get(..token_len).unwrap_or("");
    if token.starts_with(|c: char| c.is_ascii_digit()) {
        format!(
            "an unquoted value that starts with a digit is a number in KDL; quote versions \
             and similar text: \"{token}\""
        )
    } else if matches!(token, "true" | "false" | "null") {
        format!("KDL v2 writes #true, #false and #null; quote it if you mean the text: \"{token}\"")
    } else {
        kdl_help.unwrap_or_else(|| SYNTAX_HELP.to_owned())
    }
}

impl Splicer<'_> {
    fn add_file(&mut self, path: PathBuf, name: String, text: String) {
        let text: Arc<str> = Arc::from(text);
        let source = NamedSource::new(name.clone(), Arc::clone(&text));
        let doc = match KdlDocument::parse(&text) {
            Ok(doc) => doc,
            Err(err) => {
                for d in err.diagnostics {
                    let message = d.message.unwrap_or_else(|| "invalid KDL".to_owned());
                    let label = d.label.unwrap_or_else(|| "here".to_owned());
                    let help = syntax_help(&text, d.span, d.help);
                    let diag =
                        RecipeDiagnostic::new(ErrorKind::Syntax, &source, d.span, label, message)
                            .help(help);
                    self.diags.push(diag);
                }
                return;
            }
        };
        let file_index = self.files.len();
        self.files.push(SourceFile {
            source,
            path: path.clone(),
            doc,
        });
        self.stack.push((path, name));
        let count = self.files[file_index].doc.nodes().len();
        for index in 0..count {
            match self.include_target(file_index, index) {
                Target::NotInclude => self.nodes.push(NodeRef {
                    file: file_index,
                    index,
                }),
                Target::Invalid => {}
                Target::Path(arg, span) => self.follow(file_index, &arg, span),
            }
        }
        self.stack.pop();
    }

    /// Whether node `index` of the file is an `include`, and what it names.
    fn include_target(&mut self, file_index: usize, index: usize) -> Target {
        let file = &self.files[file_index];
        let Some(node) = file.doc.nodes().get(index) else {
            return Target::Invalid;
        };
        if node.name().value() != "include" {
            return Target::NotInclude;
        }
        let mut cx = Cx {
            file,
            out: &mut self.diags,
        };
        let Some(entries) = cx.check(node, &INCLUDE) else {
            return Target::Invalid;
        };
        let Some(entry) = entries.arg(0) else {
            return Target::Invalid;
        };
        match cx.string(entry, "the include path") {
            Some(p) if !p.is_empty() => Target::Path(p, entry.span()),
            Some(_) => {
                let d = file
                    .diag(
                        ErrorKind::IncludeRead,
                        entry.span(),
                        "empty path",
                        "include path is empty",
                    )
                    .help(INCLUDE.usage);
                cx.push(d);
                Target::Invalid
            }
            None => Target::Invalid,
        }
    }

    /// Reads and splices the file that `arg` (at `span` in file `from`) names.
    fn follow(&mut self, from: usize, arg: &str, span: SourceSpan) {
        let file = &self.files[from];
        let path = normalize_lexically(&file.dir().join(arg));
        let name = normalize_lexically(&file.display_dir().join(arg))
            .display()
            .to_string();
        if let Some(pos) = self.stack.iter().position(|(p, _)| *p == path) {
            let mut chain: Vec<&str> = self.stack.iter().map(|(_, n)| n.as_str()).collect();
            chain.push(self.stack[pos].1.as_str());
            let d = file
                .diag(
                    ErrorKind::IncludeLoop,
                    span,
                    "includes a file that is already being included",
                    format!("include loop: {}", chain.join(" → ")),
                )
                .help("remove one of these includes; a file cannot include itself, directly or indirectly");
            self.diags.push(d);
            return;
        }
        if self.stack.len() >= MAX_DEPTH {
            let d = file
                .diag(
                    ErrorKind::IncludeDepth,
                    span,
                    "one include too many",
                    format!("includes are nested more than {MAX_DEPTH} deep"),
                )
                .help("flatten the includes; deep nesting usually means a loop through symlinks");
            self.diags.push(d);
            return;
        }
        match self.loader.read(&path) {
            Ok(text) => self.add_file(path, name, text),
            Err(err) => {
                let d = file
                    .diag(
                        ErrorKind::IncludeRead,
                        span,
                        "cannot be read",
                        format!("cannot read included file `{name}`"),
                    )
                    .help("include paths are relative to the directory of the including file")
                    .cause(err);
                self.diags.push(d);
            }
        }
    }
}

enum Target {
    NotInclude,
    Invalid,
    Path(String, SourceSpan),
}
