//! Where files go by default: the XDG base directories (`$XDG_CONFIG_HOME`, `$XDG_STATE_HOME`,
//! else `~/.config`, `~/.local/state`), each under `singularis-tui/`. By the spec: a variable
//! that is unset, empty or not an absolute path is ignored.

use std::path::PathBuf;

const APP: &str = "singularis-tui";

/// `$XDG_CONFIG_HOME/singularis-tui`; `None` without a home directory.
pub fn config_dir() -> Option<PathBuf> {
    base_dir("XDG_CONFIG_HOME", ".config").map(|d| d.join(APP))
}

/// `$XDG_STATE_HOME/singularis-tui` (logs, session reports); the temp directory's
/// `singularis-tui` without a home directory.
pub fn state_dir() -> PathBuf {
    base_dir("XDG_STATE_HOME", ".local/state")
        .unwrap_or_else(std::env::temp_dir)
        .join(APP)
}

/// `$var` if it is an absolute path, else `home/default`.
fn base_dir(var: &str, default: &str) -> Option<PathBuf> {
    xdg_base(std::env::var_os(var), std::env::home_dir(), default)
}

fn xdg_base(
    var: Option<std::ffi::OsString>,
    home: Option<PathBuf>,
    default: &str,
) -> Option<PathBuf> {
    var.map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| home.map(|h| h.join(default)))
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

#[cfg(test)]
mod tests {
    use super::xdg_base;
    use std::path::PathBuf;

    #[test]
    fn an_absolute_xdg_variable_wins_a_relative_or_empty_one_is_ignored() {
        let home = || Some(PathBuf::from("/home/u"));
        let base = |var: Option<&str>| xdg_base(var.map(Into::into), home(), ".local/state");
        assert_eq!(base(Some("/x/state")), Some(PathBuf::from("/x/state")));
        assert_eq!(
            base(Some("rel/state")),
            Some(PathBuf::from("/home/u/.local/state"))
        );
        assert_eq!(base(Some("")), Some(PathBuf::from("/home/u/.local/state")));
        assert_eq!(base(None), Some(PathBuf::from("/home/u/.local/state")));
        assert_eq!(xdg_base(None, None, ".config"), None);
        assert_eq!(
            xdg_base(Some("/c".into()), None, ".config"),
            Some(PathBuf::from("/c"))
        );
    }
}
