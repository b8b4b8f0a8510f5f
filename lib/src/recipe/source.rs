//! Recipe source files: how they are read ([`SourceLoader`]), and one loaded, parsed
//! file ([`SourceFile`]) with the span helpers that diagnostics need.

use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use kdl::{KdlDocument, KdlEntry};
use miette::{NamedSource, SourceSpan};

use super::error::{ErrorKind, RecipeDiagnostic};

/// Reads recipe files (the top-level recipe and every `include`).
///
/// Implement it to load recipes from somewhere other than the file system, or to
/// root relative paths elsewhere. Errors should name the path.
pub trait SourceLoader {
    /// The UTF-8 text of the file at `path`.
    ///
    /// # Errors
    /// Any I/O error; it is shown to the user under the recipe's own message.
    fn read(&self, path: &Path) -> io::Result<String>;
}

/// Reads recipes from the file system; errors name the path.
#[derive(Debug, Clone, Copy, Default)]
pub struct FsLoader;

impl SourceLoader for FsLoader {
    fn read(&self, path: &Path) -> io::Result<String> {
        fs_err::read_to_string(path)
    }
}

/// One recipe file, parsed.
#[derive(Debug)]
pub(crate) struct SourceFile {
    /// Name for display (relative to how the top recipe was named) plus the text.
    pub(crate) source: NamedSource<Arc<str>>,
    /// The path the file was read from (lexically normalized).
    pub(crate) path: PathBuf,
    /// The parsed document.
    pub(crate) doc: KdlDocument,
}

impl SourceFile {
    /// The display name.
    pub(crate) fn name(&self) -> &str {
        self.source.name()
    }

    /// The directory that relative paths in this file resolve against.
    pub(crate) fn dir(&self) -> &Path {
        self.path.parent().unwrap_or_else(|| Path::new(""))
    }

    /// The display name's directory, for naming included files.
    pub(crate) fn display_dir(&self) -> PathBuf {
        Path::new(self.name())
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default()
    }

    fn text(&self) -> &str {
        self.source.inner()
    }

    /// A diagnostic pointing into this file.
    pub(crate) fn diag(
        &self,
        kind: ErrorKind,
        span: SourceSpan,
        label: impl Into<String>,
        message: impl Into<String>,
    ) -> RecipeDiagnostic {
        RecipeDiagnostic::new(kind, &self.source, span, label, message)
    }

    /// `name:line:column` of a byte offset, for pointing at another file in a message.
    pub(crate) fn location(&self, span: SourceSpan) -> String {
        let text = self.text();
        let offset = span.offset().min(text.len());
        let before = text.get(..offset).unwrap_or("");
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        format!("{}:{line}:{column}", self.name())
    }

    /// The source text of a span (empty when out of range).
    pub(crate) fn slice(&self, span: SourceSpan) -> &str {
        self.text()
            .get(span.offset()..span.offset() + span.len())
            .unwrap_or("")
    }

    /// The value of an entry as written (`3.10`, `#true`, `"x"`), without `key=`.
    pub(crate) fn value_text(&self, entry: &KdlEntry) -> String {
        let whole = self.slice(entry.span());
        let value = match entry.name() {
            Some(name) => {
                let skip = (name.span().offset() + name.span().len())
                    .saturating_sub(entry.span().offset());
                let rest = whole.get(skip..).unwrap_or("");
                rest.trim_start()
                    .strip_prefix('=')
                    .unwrap_or(rest)
                    .trim_start()
            }
            None => whole,
        };
        if value.is_empty() {
            entry.value().to_string()
        } else {
            value.to_owned()
        }
    }

    /// The span of a node's `{ … }` block, braces included when they can be found.
    pub(crate) fn block_span(&self, children: &KdlDocument) -> SourceSpan {
        let inner = children.span();
        let text = self.text();
        let start = text
            .get(..inner.offset())
            .and_then(|b| b.rfind('{'))
            .unwrap_or(inner.offset());
        let end_inner = inner.offset() + inner.len();
        let end = text
            .get(end_inner..)
            .and_then(|a| a.find('}'))
            .map_or(end_inner, |i| end_inner + i + 1);
        SourceSpan::from(start..end)
    }
}

/// Removes `.` components and resolves `..` against preceding normal components,
/// without touching the file system.
pub(crate) fn normalize_lexically(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => match out.components().next_back() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                Some(Component::RootDir | Component::Prefix(_)) => {}
                _ => out.push(".."),
            },
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes() {
        let n = |p: &str| normalize_lexically(Path::new(p)).display().to_string();
        assert_eq!(n("a/./b/../c.kdl"), "a/c.kdl");
        assert_eq!(n("../x/../y"), "../y");
        assert_eq!(n("/../a"), "/a");
        assert_eq!(n("./a"), "a");
        assert_eq!(n("a/../.."), "..");
    }

    #[test]
    fn fs_loader_names_the_path() {
        let err = FsLoader.read(Path::new("/nonexistent/recipe.kdl")).err();
        let msg = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(msg.contains("/nonexistent/recipe.kdl"), "{msg}");
    }
}
