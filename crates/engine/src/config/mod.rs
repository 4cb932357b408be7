//! Configuration: the resolved settings (`types`), how a `config.toml` becomes them (`load`,
//! `schema`), and how they are shown back (`render`).

pub mod fault;
mod load;
pub mod paths;
mod render;
mod schema;
mod source;
#[cfg(test)]
mod tests;
pub mod timing;
mod types;

pub use fault::Fault;
pub use load::{load, parse, resolve_path};
pub use render::render_resolved;
pub use source::ConfigError;
pub use timing::Timing;
pub use types::*;
