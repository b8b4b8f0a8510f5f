//! Recipes: KDL v2 text to a validated [`ImageSpec`].
//!
//! [`load`] reads a recipe file, splices its `include`s, checks every node and value,
//! orders the layers, and returns the [`ImageSpec`] or a [`RecipeError`] holding every
//! problem found, each a miette diagnostic pointing into the file it is about. The
//! language is documented in `docs/recipes.md`.
//!
//! ```no_run
//! let spec = composer::recipe::load(std::path::Path::new("examples/hello.kdl"))?;
//! println!("{} has {} layers", spec.name, spec.layers.len());
//! # Ok::<(), composer::recipe::RecipeError>(())
//! ```

mod check;
mod debian;
mod error;
mod include;
pub mod model;
mod order;
mod parse;
mod pypi;
mod request;
mod shape;
mod source;
mod suggest;
mod validate;

use std::path::Path;

pub use error::{ErrorKind, RecipeDiagnostic, RecipeError};
pub use model::*;
pub use pypi::DEFAULT_INDEX as DEFAULT_PYPI_INDEX;
pub use request::{InvalidRequest, PackageRequest, Relation};
pub use source::{FsLoader, SourceLoader};

/// A platform that is not `linux/<supported arch>[/variant]` (from `--platform`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}; {help}")]
pub struct InvalidPlatform {
    /// What is wrong.
    pub message: String,
    /// How to write it.
    pub help: String,
}

/// Parses `os/arch[/variant]` as the recipe's `platform` node does (`linux/arm64`).
///
/// # Errors
/// [`InvalidPlatform`] with the same message and help a recipe gets.
pub fn parse_platform(text: &str) -> Result<Platform, InvalidPlatform> {
    validate::platform(text.trim()).map_err(|p| InvalidPlatform {
        message: p.message,
        help: p.help,
    })
}

/// Loads the recipe at `path` from the file system.
///
/// Diagnostics name files as `path` was given (includes relative to it); relative
/// `copy` sources are made absolute against the current directory.
///
/// # Errors
/// [`RecipeError::Read`] when `path` cannot be read, [`RecipeError::Invalid`] with
/// every problem found otherwise.
pub fn load(path: &Path) -> Result<ImageSpec, RecipeError> {
    let resolved = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    load_from(&resolved, path, &FsLoader)
}

/// Loads the recipe at `path` through `loader` (which also reads every include).
///
/// Paths are used as given: includes and `copy` sources are joined to the declaring
/// file's directory, so they are absolute when `path` is.
///
/// # Errors
/// As [`load`].
pub fn load_with(path: &Path, loader: &dyn SourceLoader) -> Result<ImageSpec, RecipeError> {
    load_from(path, path, loader)
}

/// Parses recipe `text`, shown in diagnostics as `file_name`. Includes and relative
/// `copy` sources resolve against `base_dir`, and includes are read from the file
/// system.
///
/// # Errors
/// [`RecipeError::Invalid`] with every problem found.
pub fn parse_str(file_name: &str, text: &str, base_dir: &Path) -> Result<ImageSpec, RecipeError> {
    let base_name = Path::new(file_name).file_name().unwrap_or_default();
    parse_text(
        &base_dir.join(base_name),
        file_name,
        text.to_owned(),
        &FsLoader,
    )
}

fn load_from(
    read_path: &Path,
    shown: &Path,
    loader: &dyn SourceLoader,
) -> Result<ImageSpec, RecipeError> {
    let text = loader.read(read_path).map_err(|source| RecipeError::Read {
        path: shown.to_path_buf(),
        source,
    })?;
    parse_text(read_path, &shown.display().to_string(), text, loader)
}

fn parse_text(
    path: &Path,
    name: &str,
    text: String,
    loader: &dyn SourceLoader,
) -> Result<ImageSpec, RecipeError> {
    let invalid = |diagnostics| RecipeError::Invalid {
        file: name.to_owned(),
        diagnostics,
    };
    let spliced = include::splice(path, name, text, loader).map_err(invalid)?;
    let mut spec = parse::build(&spliced).map_err(invalid)?;
    spec.recipe_digest = Some(crate::provenance::recipe_digest(
        spliced.files.iter().map(|f| f.source.inner().as_ref()),
    ));
    Ok(spec)
}

#[cfg(test)]
mod tests;
