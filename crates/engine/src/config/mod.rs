//! Configuration: the engine's resolved settings (`types`), how its sections of a
//! `config.toml` become them (`document`: one parse, located errors; `resolve`: the
//! sections read by serde, then the rules across keys), and how they are shown back
//! (`render`). A program that adopts the engine reads its own sections from the same
//! [`Document`] (ARCHITECTURE.md, "Configuration").

pub mod de;
mod document;
pub mod paths;
mod render;
mod resolve;
mod source;
#[cfg(test)]
mod tests;
mod types;

pub use document::{Document, read, resolve_path};
pub use render::{render_engine, render_section};
pub use resolve::{Derived, Given, Resolved, system, system_value};
pub use source::{ConfigError, join_key};
pub use types::*;

/// Load `path` (or the built-in default when `None`) for a program that reads only the
/// engine's sections: any other top-level key is an unknown key.
pub fn load(path: Option<&std::path::Path>) -> Result<Config, ConfigError> {
    let Some(path) = path else {
        return Ok(Config::default());
    };
    let bytes = read(path)?;
    let mut cfg = parse(&bytes, &path.display().to_string())?;
    cfg.source = Some(path.to_path_buf());
    Ok(cfg)
}

/// Parse and check a file of only the engine's sections; `file` labels errors.
pub fn parse(bytes: &[u8], file: &str) -> Result<Config, ConfigError> {
    let doc = Document::parse(bytes, file)?;
    doc.check_root(Config::sections())?;
    let resolved = Config::from_document(&doc)?;
    resolved.check_graph(&doc, None)?;
    Ok(resolved.config)
}
