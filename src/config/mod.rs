//! Configuration: the resolved settings (`types`) and how a `config.toml` becomes them (`load`).

mod load;
mod types;

pub use load::{load, resolve_path, ConfigError};
pub use types::*;
