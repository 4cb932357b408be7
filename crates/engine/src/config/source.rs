//! Where a config error is: the file being read and the located error, shared by `load`
//! (syntax) and `schema` (meaning).

use std::ops::Range;

/// A config problem, located: `FILE:LINE:COL: KEY: MESSAGE`; a problem with the file as a
/// whole (it cannot be read) is `FILE: MESSAGE`, with no made-up position.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", self.located())]
pub struct ConfigError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub key: String,
    pub message: String,
}

impl ConfigError {
    fn located(&self) -> String {
        match (self.line, self.key.is_empty()) {
            (0, true) => format!("{}: {}", self.file, self.message),
            (0, false) => format!("{}: {}: {}", self.file, self.key, self.message),
            (_, true) => format!(
                "{}:{}:{}: {}",
                self.file, self.line, self.column, self.message
            ),
            _ => format!(
                "{}:{}:{}: {}: {}",
                self.file, self.line, self.column, self.key, self.message
            ),
        }
    }
}

/// The file being read, for locating errors.
pub(crate) struct Src<'a> {
    pub file: &'a str,
    pub text: &'a str,
}

impl Src<'_> {
    /// An error at byte `span.start` of the text.
    pub fn err(&self, span: Range<usize>, key: &str, message: impl Into<String>) -> ConfigError {
        let (line, column) = line_col(self.text, span.start);
        ConfigError {
            file: self.file.to_string(),
            line,
            column,
            key: key.to_string(),
            message: message.into(),
        }
    }
}

/// 1-based line and column (in characters) of byte `offset`, clamped to the text.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let before = &text[..end];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (
        before.matches('\n').count() + 1,
        before[line_start..].chars().count() + 1,
    )
}

/// `prefix.name`, quoting `name` when it is not a bare TOML key.
pub fn join_key(prefix: &str, name: &str) -> String {
    let bare = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    let name = if bare {
        name.to_string()
    } else {
        format!("{name:?}")
    };
    if prefix.is_empty() {
        name
    } else {
        format!("{prefix}.{name}")
    }
}
