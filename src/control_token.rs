//! The control token (ARCHITECTURE.md, "The control endpoint"), both sides of it.
//! - The agent's ([`ControlToken`], [`resolve`]): from `SINGULARIS_CONTROL_TOKEN`, or
//!   generated into a file of mode 0600 under the state directory; compared in constant time.
//! - A viewer's ([`ViewerToken`], [`for_viewer`]): `--token-file`, else the variable, else
//!   the agent's default file when it exists (an agent of this user on this host).
//!
//! Never logged, shown or reported: what is said is where it comes from.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub const TOKEN_ENV: &str = "SINGULARIS_CONTROL_TOKEN";
/// A shorter token chosen by a person is guessable.
pub const MIN_TOKEN_LEN: usize = 16;
/// Random bytes in a generated token (hex in the file: 64 characters).
const GENERATED_BYTES: usize = 32;
const FILE_NAME: &str = "control-token";

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error(
        "the control endpoint {addr} is not on loopback: set {TOKEN_ENV} (at least {MIN_TOKEN_LEN} characters) to the token viewers must give; a generated token is for loopback only"
    )]
    OffLoopbackWithoutToken { addr: SocketAddr },
    #[error(
        "{TOKEN_ENV} is too short ({len} characters): a control token takes at least {MIN_TOKEN_LEN}"
    )]
    TooShort { len: usize },
    #[error(
        "{TOKEN_ENV} holds whitespace or control characters: a token is sent in an HTTP header"
    )]
    NotPrintable,
    #[error("cannot make a control token: no random numbers from the OS: {0}")]
    Random(String),
    #[error("cannot write the control token file {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl TokenError {
    /// A mistake in how the agent was started (exit 2), not a failure of the machine.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            TokenError::OffLoopbackWithoutToken { .. }
                | TokenError::TooShort { .. }
                | TokenError::NotPrintable
        )
    }
}

/// Where the token came from, the only thing about it ever said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    Env,
    File(PathBuf),
}

impl std::fmt::Display for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenSource::Env => write!(f, "token from {TOKEN_ENV}"),
            TokenSource::File(p) => write!(f, "token in {}", p.display()),
        }
    }
}

#[derive(Clone)]
pub struct ControlToken {
    secret: Vec<u8>,
    pub source: TokenSource,
}

/// Never the token, even in a debug print.
impl std::fmt::Debug for ControlToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ControlToken(****, {})", self.source)
    }
}

impl ControlToken {
    /// Whether `given` is the token, in time that does not depend on where they differ.
    pub fn matches(&self, given: &[u8]) -> bool {
        use subtle::ConstantTimeEq;
        // Unequal lengths answer at once: the length is no secret (a generated one is 64).
        bool::from(self.secret.as_slice().ct_eq(given))
    }
}

/// The environment's token, checked; `None` when the variable is unset or empty.
fn from_env() -> Result<Option<ControlToken>, TokenError> {
    let Some(value) = std::env::var_os(TOKEN_ENV).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let value = value.into_encoded_bytes();
    if value.iter().any(|b| !b.is_ascii_graphic()) {
        return Err(TokenError::NotPrintable);
    }
    if value.len() < MIN_TOKEN_LEN {
        return Err(TokenError::TooShort { len: value.len() });
    }
    Ok(Some(ControlToken {
        secret: value,
        source: TokenSource::Env,
    }))
}

/// What can be told before anything starts: a non-loopback address needs the environment's
/// token, and a token given must be usable.
pub fn check(listen: SocketAddr) -> Result<(), TokenError> {
    let env = from_env()?;
    if env.is_none() && !listen.ip().is_loopback() {
        return Err(TokenError::OffLoopbackWithoutToken { addr: listen });
    }
    Ok(())
}

/// The token for serving on `listen`: the environment's, else (on loopback only) the one in
/// `$XDG_STATE_HOME/singularis-tui/control-token`, made at first use.
pub fn resolve(listen: SocketAddr) -> Result<ControlToken, TokenError> {
    check(listen)?;
    if let Some(t) = from_env()? {
        return Ok(t);
    }
    let path = crate::config::paths::state_dir().join(FILE_NAME);
    file_token(&path)
}

/// The token in `path` when it is one of ours (64 hex characters, readable by its owner
/// alone), else a new one written there atomically with mode 0600. Kept across sessions, so
/// scripts and several agents of one user on one host share it; delete the file to change it.
fn file_token(path: &Path) -> Result<ControlToken, TokenError> {
    if let Some(secret) = read_ours(path) {
        return Ok(ControlToken {
            secret,
            source: TokenSource::File(path.to_path_buf()),
        });
    }
    let mut raw = [0u8; GENERATED_BYTES];
    getrandom::fill(&mut raw).map_err(|e| TokenError::Random(e.to_string()))?;
    let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    write_private(path, hex.as_bytes()).map_err(|source| TokenError::Write {
        path: path.to_path_buf(),
        source,
    })?;
    tracing::info!(path = %path.display(), "control token generated");
    Ok(ControlToken {
        secret: hex.into_bytes(),
        source: TokenSource::File(path.to_path_buf()),
    })
}

fn read_ours(path: &Path) -> Option<Vec<u8>> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::symlink_metadata(path).ok()?;
    if !meta.is_file() || meta.mode() & 0o077 != 0 {
        return None;
    }
    let bytes = crate::config::paths::read_regular(path, 4096).ok()?;
    let text = std::str::from_utf8(&bytes).ok()?.trim();
    (text.len() == GENERATED_BYTES * 2 && text.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| text.as_bytes().to_vec())
}

/// Write `bytes` to `path` through a file of mode 0600 beside it, renamed over it.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let tmp = dir.join(format!(".{FILE_NAME}.{}.tmp", std::process::id()));
    let written = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// The token a viewer sends with its commands.
#[derive(Clone)]
pub struct ViewerToken {
    secret: String,
    pub source: String,
}

impl std::fmt::Debug for ViewerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ViewerToken(****, {})", self.source)
    }
}

impl ViewerToken {
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

/// A viewer's token, if one is known: `--token-file` (an error when it cannot be read),
/// else the environment's, else the agent's default file when it exists.
pub fn for_viewer(token_file: Option<&Path>) -> Result<Option<ViewerToken>, TokenFileError> {
    if let Some(path) = token_file {
        return read_viewer(path).map(Some);
    }
    if let Some(v) = std::env::var_os(TOKEN_ENV).filter(|v| !v.is_empty())
        && let Some(v) = v.to_str()
    {
        return Ok(Some(ViewerToken {
            secret: v.trim().to_string(),
            source: TOKEN_ENV.to_string(),
        }));
    }
    let default = crate::config::paths::state_dir().join(FILE_NAME);
    if default.is_file() {
        return read_viewer(&default).map(Some);
    }
    Ok(None)
}

fn read_viewer(path: &Path) -> Result<ViewerToken, TokenFileError> {
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
    Ok(ViewerToken {
        secret: text.to_string(),
        source: format!("token file {}", path.display()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_token_is_private_and_kept() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state").join(FILE_NAME);
        let first = file_token(&path).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        let again = file_token(&path).unwrap();
        assert_eq!(first.secret, again.secret);
        assert_eq!(first.secret.len(), 64);
        // Readable by others: not trusted, replaced.
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .unwrap();
        let replaced = file_token(&path).unwrap();
        assert_ne!(replaced.secret, first.secret);
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
    }

    #[test]
    fn matching_is_exact_and_debug_never_shows_it() {
        let t = ControlToken {
            secret: b"0123456789abcdef".to_vec(),
            source: TokenSource::Env,
        };
        assert!(t.matches(b"0123456789abcdef"));
        assert!(!t.matches(b"0123456789abcdeX"));
        assert!(!t.matches(b"0123456789abcdef0"));
        assert!(!t.matches(b""));
        assert!(!format!("{t:?}").contains("0123"));
    }
}
