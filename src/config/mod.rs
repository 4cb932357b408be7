//! Configuration: the resolved settings (`types`), how a `config.toml` becomes them (`load`,
//! `schema`), and how they are shown back (`render`).

mod load;
mod render;
mod schema;
#[cfg(test)]
mod tests;
mod types;

pub use load::{ConfigError, load, parse, resolve_path};
pub use render::render_resolved;
pub use types::*;
