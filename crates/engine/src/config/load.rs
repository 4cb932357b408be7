//! Loading `config.toml`: read, parse (with spans), then validate in `schema`. Every error is
//! located (file, 1-based line and column) and names the dotted key it is about.

use super::source::{ConfigError, Src, line_col};
use super::types::Config;
use std::path::{Path, PathBuf};
use toml::de::DeTable;

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
    let p = super::paths::config_dir()?.join("config.toml");
    p.is_file().then_some(p)
}

/// Load `path` (or the built-in default when `None`).
pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
    let Some(path) = path else {
        return Ok(Config::default());
    };
    let file = path.display().to_string();
    let bytes = super::paths::read_regular(path, super::paths::CONFIG_MAX_BYTES).map_err(|e| {
        ConfigError {
            file: file.clone(),
            line: 0,
            column: 0,
            key: String::new(),
            message: format!("cannot read the config: {e}"),
        }
    })?;
    let mut cfg = parse(&bytes, &file)?;
    cfg.source = Some(path.to_path_buf());
    Ok(cfg)
}

/// Parse and validate a config file's bytes; `file` is only used to label errors.
pub fn parse(bytes: &[u8], file: &str) -> Result<Config, ConfigError> {
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            // Locate the first bad byte within the valid prefix, which is all we can index.
            let valid = String::from_utf8_lossy(&bytes[..e.valid_up_to()]);
            let at = Src { file, text: &valid };
            return Err(at.err(
                valid.len()..valid.len(),
                "",
                format!(
                    "not valid UTF-8 (bad byte at offset {}); a config file must be UTF-8 text",
                    e.valid_up_to()
                ),
            ));
        }
    };
    let src = Src { file, text };
    let doc = DeTable::parse(text).map_err(|e| {
        let at = e.span().map_or(0, |s| s.start);
        let key = key_near(text, at);
        let message = match e.message() {
            "duplicate key" if header_on_line(text, at) => "table defined twice".to_string(),
            "duplicate key" => "key defined twice".to_string(),
            m => format!("TOML syntax error: {m}"),
        };
        src.err(at..at, &key, message)
    })?;
    super::schema::build(&src, doc.get_ref())
}

fn line_at(text: &str, offset: usize) -> usize {
    line_col(text, offset).0 - 1
}

fn header_on_line(text: &str, offset: usize) -> bool {
    text.split('\n')
        .nth(line_at(text, offset))
        .is_some_and(|l| l.trim_start().starts_with('['))
}

/// Best-effort dotted key for a syntax error: the table header in force at the error's line,
/// plus the key that line assigns, if any. The parser's error carries no key, and a broken
/// file has no tree to walk, so this reads the lines themselves.
fn key_near(text: &str, offset: usize) -> String {
    let target = line_at(text, offset);
    let mut table: Vec<String> = Vec::new();
    let mut in_multiline: Option<&str> = None;
    for (i, line) in text.split('\n').enumerate() {
        let inside = in_multiline.is_some();
        let t = line.trim();
        if !inside {
            if let Some(h) = t.strip_prefix('[') {
                let h = h.strip_prefix('[').unwrap_or(h);
                let name = h.split(']').next().unwrap_or("");
                if let Some(path) = split_key(name) {
                    table = path;
                }
                if i == target {
                    return dotted(&table);
                }
                continue;
            }
        }
        if i == target {
            let mut path = table.clone();
            if !inside {
                if let Some(k) = t.split_once('=').and_then(|(k, _)| split_key(k)) {
                    path.extend(k);
                }
            }
            return dotted(&path);
        }
        // Track multi-line strings so their contents are not read as headers or keys.
        for delim in ["\"\"\"", "'''"] {
            for _ in line.matches(delim) {
                in_multiline = match in_multiline {
                    None => Some(delim),
                    Some(d) if d == delim => None,
                    other => other,
                };
            }
        }
    }
    dotted(&table)
}

/// `a."b.c".d` → `["a", "b.c", "d"]`; `None` unless it is a plausible key.
fn split_key(s: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    for part in s.split('.') {
        let p = part.trim();
        let p = p
            .strip_prefix('"')
            .and_then(|p| p.strip_suffix('"'))
            .or_else(|| p.strip_prefix('\'').and_then(|p| p.strip_suffix('\'')))
            .unwrap_or(p);
        if p.is_empty()
            || !p
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return None;
        }
        out.push(p.to_string());
    }
    Some(out)
}

fn dotted(path: &[String]) -> String {
    path.join(".")
}
