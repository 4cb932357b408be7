//! Loading and validating `config.toml`. (Being written; see the helper brief.)

use super::types::Config;
use std::path::{Path, PathBuf};

/// A config problem, located: `FILE:LINE:COL: KEY: MESSAGE`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{file}:{line}:{column}: {key}: {message}")]
pub struct ConfigError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub key: String,
    pub message: String,
}

/// `--config` if given, else `./config.toml` if present, else
/// `$XDG_CONFIG_HOME/singularis-tui/config.toml` if present, else `None` (built-in default).
pub fn resolve_path(cli: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = cli {
        return Some(p.to_path_buf());
    }
    let local = PathBuf::from("config.toml");
    if local.is_file() {
        return Some(local);
    }
    let xdg = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    let p = xdg.join("singularis-tui").join("config.toml");
    p.is_file().then_some(p)
}

/// Load `path` (or the built-in default when `None`).
pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
    let _ = path;
    Ok(Config::default())
}

/// TEMPORARY: replaced by the config module's real renderer.
pub fn render_resolved(cfg: &Config) -> String {
    format!("{cfg:#?}\n")
}
