//! The control token a viewer sends with its commands: `--token-file`, else
//! `SINGULARIS_CONTROL_TOKEN`, else the agent's default token file when it exists (an agent
//! of this user on this host). Never logged or shown: only where it came from is said.

use crate::serve::token::TOKEN_ENV;
use std::path::{Path, PathBuf};

#[derive(Clone)]
pub struct Token {
    secret: String,
    pub source: String,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Token(****, {})", self.source)
    }
}

impl Token {
    pub(crate) fn secret(&self) -> &str {
        &self.secret
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TokenFileError {
    #[error("cannot read the token file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the token file {} is empty or holds more than one word", path.display())]
    Malformed { path: PathBuf },
}

/// The token, if one is known; a `--token-file` that cannot be read is an error.
pub fn resolve(token_file: Option<&Path>) -> Result<Option<Token>, TokenFileError> {
    if let Some(path) = token_file {
        return read(path).map(Some);
    }
    if let Some(v) = std::env::var_os(TOKEN_ENV).filter(|v| !v.is_empty())
        && let Some(v) = v.to_str()
    {
        return Ok(Some(Token {
            secret: v.trim().to_string(),
            source: TOKEN_ENV.to_string(),
        }));
    }
    let default = crate::config::paths::state_dir().join("control-token");
    if default.is_file() {
        return read(&default).map(Some);
    }
    Ok(None)
}

fn read(path: &Path) -> Result<Token, TokenFileError> {
    let bytes =
        crate::config::paths::read_regular(path, 4096).map_err(|source| TokenFileError::Read {
            path: path.to_path_buf(),
            source,
        })?;
    let text = String::from_utf8_lossy(&bytes);
    let text = text.trim();
    if text.is_empty() || text.split_whitespace().count() != 1 {
        return Err(TokenFileError::Malformed {
            path: path.to_path_buf(),
        });
    }
    Ok(Token {
        secret: text.to_string(),
        source: format!("token file {}", path.display()),
    })
}
