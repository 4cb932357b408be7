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
