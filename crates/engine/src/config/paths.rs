//! Where files go by default: the XDG base directories (`$XDG_CONFIG_HOME`, `$XDG_STATE_HOME`,
//! else `~/.config`, `~/.local/state`), read by etcetera, each under `singularis-tui/`.

use etcetera::BaseStrategy;
use std::path::PathBuf;

const APP: &str = "singularis-tui";

/// `$XDG_CONFIG_HOME/singularis-tui`; `None` without a home directory.
pub fn config_dir() -> Option<PathBuf> {
    etcetera::choose_base_strategy()
        .ok()
        .map(|b| b.config_dir().join(APP))
}

/// `$XDG_STATE_HOME/singularis-tui` (logs, session reports); the temp directory's
/// `singularis-tui` without a home directory.
pub fn state_dir() -> PathBuf {
    etcetera::choose_base_strategy()
        .ok()
        .and_then(|b| b.state_dir())
        .unwrap_or_else(std::env::temp_dir)
        .join(APP)
}

/// What a file that is not a regular file is, in words ("a directory", "a FIFO", …), for
/// refusing it by name; `None` for a regular file.
pub fn not_regular(kind: std::fs::FileType) -> Option<&'static str> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return Some("a FIFO");
        }
        if kind.is_char_device() {
            return Some("a character device");
        }
        if kind.is_block_device() {
            return Some("a block device");
        }
        if kind.is_socket() {
            return Some("a socket");
        }
    }
    if kind.is_dir() {
        Some("a directory")
    } else if kind.is_file() {
        None
    } else {
        Some("not a regular file")
    }
}

/// The most a config file may hold; a real one is a few KiB. A bound, so that a file that
/// never ends (`/dev/zero` behind a symlink, a `/proc` entry) cannot hang the start.
pub const CONFIG_MAX_BYTES: u64 = 1 << 20;

/// Read a regular file of at most `limit` bytes. Opened without blocking, so a FIFO is refused
/// rather than waited on, and read no further than the bound.
pub fn read_regular(path: &std::path::Path, limit: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut opts = std::fs::OpenOptions::new();
    opts.read(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut opts, libc::O_NONBLOCK);
    let file = opts.open(path)?;
    if let Some(kind) = not_regular(file.metadata()?.file_type()) {
        return Err(std::io::Error::other(format!(
            "is {kind}, not a regular file"
        )));
    }
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(std::io::Error::other(format!(
            "is larger than {} KiB; a config file is a few KiB",
            limit / 1024
        )));
    }
    Ok(bytes)
}
