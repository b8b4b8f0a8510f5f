//! Recipe errors: one spanned [`RecipeDiagnostic`] per problem, gathered in a [`RecipeError`].
//!
//! Every diagnostic points into the file it is about (an included file's error shows
//! the included file), carries a `recipe::…` code, a label on the offending span and a
//! help line. [`RecipeError`] renders as the single diagnostic when there is one, and as
//! a summary with every diagnostic attached (`related`) when there are several.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use miette::{Diagnostic, LabeledSpan, NamedSource, SourceCode, SourceSpan};

/// What a [`RecipeDiagnostic`] is about. Each kind has its own diagnostic code,
/// `recipe::<snake_case name>` (see [`ErrorKind::code`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The file is not valid KDL v2 (forwarded from the `kdl` parser).
    Syntax,
    /// A node name that is not allowed where it appears.
    UnknownNode,
    /// A property that the node does not take.
    UnknownProperty,
    /// The same property given twice on one node.
    DuplicateProperty,
    /// A required positional argument is missing.
    MissingArgument,
    /// More positional arguments than the node takes.
    TooManyArguments,
    /// A value of the wrong KDL type (a number where a string is needed, …).
    WrongType,
    /// A `{ … }` block on a node that takes none.
    UnexpectedChildren,
    /// A KDL type annotation (`(u8)1`); recipes do not use them.
    TypeAnnotation,
    /// The recipe has no `image` node.
    MissingImage,
    /// More than one `image` node.
    DuplicateImage,
    /// A single-valued setting (`workdir`, `platform`, …) given twice.
    DuplicateSetting,
    /// Two layers with the same name.
    DuplicateLayer,
    /// `after="x"` names no layer.
    UnknownLayer,
    /// Layers whose `after` properties form a cycle.
    LayerCycle,
    /// A layer without items.
    EmptyLayer,
    /// Two items of one layer with the same destination.
    DuplicateDestination,
    /// A destination or path that is not absolute and normalized.
    InvalidPath,
    /// `symlink` with an empty target.
    EmptySymlinkTarget,
    /// A mode string that is not 3–4 octal digits.
    InvalidMode,
    /// A tag outside the OCI tag grammar.
    InvalidTag,
    /// A platform that is not `linux/<supported arch>[/variant]`.
    InvalidPlatform,
    /// The same platform named twice in `platform`.
    DuplicatePlatform,
    /// An epoch that is not an RFC 3339 timestamp or non-negative integer.
    InvalidEpoch,
    /// An `expose` value that is not `PORT[/tcp|udp|sctp]`.
    InvalidPort,
    /// An image, layer, user or Python project name outside the allowed characters.
    InvalidName,
    /// Any other value out of range or malformed (uid, env key, signal, …).
    InvalidValue,
    /// A file includes itself, directly or through other includes.
    IncludeLoop,
    /// An included file could not be read.
    IncludeRead,
    /// Includes nested deeper than the limit.
    IncludeDepth,
    /// More than one `debian` block.
    DuplicateDebian,
    /// A `debian` block without an `archive`.
    MissingArchive,
    /// A layer installs Debian packages but the recipe has no `debian` block.
    MissingDebian,
    /// An archive or package index URL that is not `http(s)://host/…`, or has credentials.
    InvalidUrl,
    /// A suite or component name outside `[a-z0-9.+-]`.
    InvalidSuite,
    /// A snapshot time that is not `YYYYMMDDTHHMMSSZ`.
    InvalidSnapshot,
    /// A Debian package request or name that does not parse.
    InvalidPackage,
    /// The same Debian package requested twice in one layer.
    DuplicatePackage,
    /// A requested or included Debian package that is also excluded.
    ExcludedPackage,
    /// Two `user` accounts with the same name or uid.
    DuplicateUser,
    /// More than one `pypi` block.
    DuplicatePypi,
    /// Package indexes that conflict: the same URL twice, two default indexes, or a
    /// project pinned to two indexes with `only`.
    DuplicateIndex,
    /// A Python requirement that is not PEP 508, or a direct URL requirement.
    InvalidRequirement,
    /// The same Python project requested twice in one layer.
    DuplicateRequirement,
    /// A layer installs Python packages, but no layer at or below it installs Debian
    /// packages (where the interpreter comes from).
    MissingPython,
    /// A `check` block names a check that does not exist.
    UnknownCheck,
}

impl ErrorKind {
    /// Every kind, in declaration order.
    pub const ALL: &'static [ErrorKind] = &[
        Self::Syntax,
        Self::UnknownNode,
        Self::UnknownProperty,
        Self::DuplicateProperty,
        Self::MissingArgument,
        Self::TooManyArguments,
        Self::WrongType,
        Self::UnexpectedChildren,
        Self::TypeAnnotation,
        Self::MissingImage,
        Self::DuplicateImage,
        Self::DuplicateSetting,
        Self::DuplicateLayer,
        Self::UnknownLayer,
        Self::LayerCycle,
        Self::EmptyLayer,
        Self::DuplicateDestination,
        Self::InvalidPath,
        Self::EmptySymlinkTarget,
        Self::InvalidMode,
        Self::InvalidTag,
        Self::InvalidPlatform,
        Self::DuplicatePlatform,
        Self::InvalidEpoch,
        Self::InvalidPort,
        Self::InvalidName,
        Self::InvalidValue,
        Self::IncludeLoop,
        Self::IncludeRead,
        Self::IncludeDepth,
        Self::DuplicateDebian,
        Self::MissingArchive,
        Self::MissingDebian,
        Self::InvalidUrl,
        Self::InvalidSuite,
        Self::InvalidSnapshot,
        Self::InvalidPackage,
        Self::DuplicatePackage,
        Self::ExcludedPackage,
        Self::DuplicateUser,
        Self::DuplicatePypi,
        Self::DuplicateIndex,
        Self::InvalidRequirement,
        Self::DuplicateRequirement,
        Self::MissingPython,
        Self::UnknownCheck,
    ];

    /// The diagnostic code, e.g. `recipe::unknown_node`.
    #[must_use]
    pub fn code(self) -> &'static str {
        match self {
            Self::Syntax => "recipe::syntax",
            Self::UnknownNode => "recipe::unknown_node",
            Self::UnknownProperty => "recipe::unknown_property",
            Self::DuplicateProperty => "recipe::duplicate_property",
            Self::MissingArgument => "recipe::missing_argument",
            Self::TooManyArguments => "recipe::too_many_arguments",
            Self::WrongType => "recipe::wrong_type",
            Self::UnexpectedChildren => "recipe::unexpected_children",
            Self::TypeAnnotation => "recipe::type_annotation",
            Self::MissingImage => "recipe::missing_image",
            Self::DuplicateImage => "recipe::duplicate_image",
            Self::DuplicateSetting => "recipe::duplicate_setting",
            Self::DuplicateLayer => "recipe::duplicate_layer",
            Self::UnknownLayer => "recipe::unknown_layer",
            Self::LayerCycle => "recipe::layer_cycle",
            Self::EmptyLayer => "recipe::empty_layer",
            Self::DuplicateDestination => "recipe::duplicate_destination",
            Self::InvalidPath => "recipe::invalid_path",
            Self::EmptySymlinkTarget => "recipe::empty_symlink_target",
            Self::InvalidMode => "recipe::invalid_mode",
            Self::InvalidTag => "recipe::invalid_tag",
            Self::InvalidPlatform => "recipe::invalid_platform",
            Self::DuplicatePlatform => "recipe::duplicate_platform",
            Self::InvalidEpoch => "recipe::invalid_epoch",
            Self::InvalidPort => "recipe::invalid_port",
            Self::InvalidName => "recipe::invalid_name",
            Self::InvalidValue => "recipe::invalid_value",
            Self::IncludeLoop => "recipe::include_loop",
            Self::IncludeRead => "recipe::include_read",
            Self::IncludeDepth => "recipe::include_depth",
            Self::DuplicateDebian => "recipe::duplicate_debian",
            Self::MissingArchive => "recipe::missing_archive",
            Self::MissingDebian => "recipe::missing_debian",
            Self::InvalidUrl => "recipe::invalid_url",
            Self::InvalidSuite => "recipe::invalid_suite",
            Self::InvalidSnapshot => "recipe::invalid_snapshot",
            Self::InvalidPackage => "recipe::invalid_package",
            Self::DuplicatePackage => "recipe::duplicate_package",
            Self::ExcludedPackage => "recipe::excluded_package",
            Self::DuplicateUser => "recipe::duplicate_user",
            Self::DuplicatePypi => "recipe::duplicate_pypi",
            Self::DuplicateIndex => "recipe::duplicate_index",
            Self::InvalidRequirement => "recipe::invalid_requirement",
            Self::DuplicateRequirement => "recipe::duplicate_requirement",
            Self::MissingPython => "recipe::missing_python",
            Self::UnknownCheck => "recipe::unknown_check",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// One problem in one recipe file, with its span.
#[derive(Debug)]
pub struct RecipeDiagnostic {
    kind: ErrorKind,
    message: String,
    source_code: NamedSource<Arc<str>>,
    labels: Vec<LabeledSpan>,
    help: String,
    cause: Option<io::Error>,
}

impl RecipeDiagnostic {
    /// A diagnostic of `kind` in `source_code`, with `label` on `span`.
    pub(crate) fn new(
        kind: ErrorKind,
        source_code: &NamedSource<Arc<str>>,
        span: SourceSpan,
        label: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            kind,
            message: message.into(),
            source_code: source_code.clone(),
            labels: vec![LabeledSpan::new_primary_with_span(Some(label.into()), span)],
            help: String::new(),
            cause: None,
        }
    }

    /// Sets the help line.
    #[must_use]
    pub(crate) fn help(mut self, help: impl Into<String>) -> Self {
        self.help = help.into();
        self
    }

    /// Adds a secondary label (same file).
    #[must_use]
    pub(crate) fn secondary(mut self, span: SourceSpan, label: impl Into<String>) -> Self {
        self.labels
            .push(LabeledSpan::new_with_span(Some(label.into()), span));
        self
    }

    /// Attaches the I/O error behind this diagnostic.
    #[must_use]
    pub(crate) fn cause(mut self, cause: io::Error) -> Self {
        self.cause = Some(cause);
        self
    }

    /// What kind of problem this is.
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The file the diagnostic points into, as the recipe was named (includes relative
    /// to it).
    #[must_use]
    pub fn file(&self) -> &str {
        self.source_code.name()
    }

    /// The primary span (byte offsets into [`Self::file`]).
    #[must_use]
    pub fn span(&self) -> SourceSpan {
        self.labels
            .first()
            .map_or_else(|| SourceSpan::from(0..0), |l| *l.inner())
    }

    /// The help line.
    #[must_use]
    pub fn help_text(&self) -> &str {
        &self.help
    }
}

impl fmt::Display for RecipeDiagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for RecipeDiagnostic {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause
            .as_ref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl Diagnostic for RecipeDiagnostic {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.kind.code()))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        (!self.help.is_empty()).then(|| Box::new(&self.help) as Box<dyn fmt::Display + 'a>)
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        Some(&self.source_code)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        Some(Box::new(self.labels.iter().cloned()))
    }
}

/// Why a recipe could not be loaded.
#[derive(Debug)]
#[non_exhaustive]
pub enum RecipeError {
    /// The recipe file itself could not be read.
    Read {
        /// The path as given to [`crate::recipe::load`].
        path: PathBuf,
        /// The underlying error (it names the path too).
        source: io::Error,
    },
    /// The recipe (or a file it includes) has problems: all that were found, never empty.
    Invalid {
        /// The recipe file as named by the caller.
        file: String,
        /// Every problem found, in the order found.
        diagnostics: Vec<RecipeDiagnostic>,
    },
}

impl RecipeError {
    /// Every diagnostic (empty for [`RecipeError::Read`]).
    #[must_use]
    pub fn diagnostics(&self) -> &[RecipeDiagnostic] {
        match self {
            Self::Read { .. } => &[],
            Self::Invalid { diagnostics, .. } => diagnostics,
        }
    }

    /// The single diagnostic when there is exactly one: the error then renders as it.
    fn single(&self) -> Option<&RecipeDiagnostic> {
        match self {
            Self::Invalid { diagnostics, .. } if diagnostics.len() == 1 => diagnostics.first(),
            _ => None,
        }
    }
}

impl fmt::Display for RecipeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Read { path, .. } => write!(f, "cannot read recipe `{}`", path.display()),
            Self::Invalid { file, diagnostics } => match diagnostics.as_slice() {
                [one] => write!(f, "{one}"),
                many => write!(f, "recipe `{file}` has {} errors", many.len()),
            },
        }
    }
}

impl std::error::Error for RecipeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Read { source, .. } => Some(source),
            Self::Invalid { .. } => self.single().and_then(std::error::Error::source),
        }
    }
}

impl Diagnostic for RecipeError {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        match self {
            Self::Read { .. } => Some(Box::new("recipe::read")),
            Self::Invalid { .. } => match self.single() {
                Some(one) => one.code(),
                None => Some(Box::new("recipe::invalid")),
            },
        }
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        match self {
            Self::Read { .. } => Some(Box::new("check the path; recipes are read as UTF-8 text")),
            Self::Invalid { .. } => self.single().and_then(Diagnostic::help),
        }
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.single().and_then(Diagnostic::source_code)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        self.single().and_then(Diagnostic::labels)
    }

    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn Diagnostic> + 'a>> {
        match self {
            Self::Invalid { diagnostics, .. } if diagnostics.len() > 1 => {
                Some(Box::new(diagnostics.iter().map(|d| d as &dyn Diagnostic)))
            }
            _ => None,
        }
    }
}
