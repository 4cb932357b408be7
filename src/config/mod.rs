//! Configuration: the resolved settings (`types`) and how a `config.toml` becomes them (`load`).

mod load;
mod types;

pub use load::{load, render_resolved, resolve_path, ConfigError};
pub use types::*;
