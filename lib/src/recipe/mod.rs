//! Recipes: KDL v2 text to a validated [`ImageSpec`].
pub mod model;
pub use model::*;
