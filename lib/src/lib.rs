//! composer: reproducible OCI images for deep-learning environments from KDL recipes.
#![allow(missing_docs)]

pub mod recipe;
pub mod time;
