//! One read of a config file: its bytes parsed once into a spanned TOML tree, from which
//! the engine and the program that adopts it each deserialize their own sections. Every
//! error is located (file, 1-based line and column) and names the dotted key it is about:
//! a syntax error by the lines around it, any other by the tree node its span falls in.

use super::de::fields_of;
use super::source::{ConfigError, Src, join_key, line_col};
use serde::de::DeserializeOwned;
use std::ops::Range;
use std::path::{Path, PathBuf};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

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

/// A config file's bytes (bounded, a regular file), or an error that names the file.
pub fn read(path: &Path) -> Result<Vec<u8>, ConfigError> {
    super::paths::read_regular(path, super::paths::CONFIG_MAX_BYTES).map_err(|e| ConfigError {
        file: path.display().to_string(),
        line: 0,
        column: 0,
        key: String::new(),
        message: format!("cannot read the config: {e}"),
    })
}

/// A parsed config file: its text and its spanned tree.
pub struct Document<'i> {
    src: Src<'i>,
    root: Spanned<DeTable<'i>>,
}

impl<'i> Document<'i> {
    /// Parse a config file's bytes; `file` only labels errors.
    pub fn parse(bytes: &'i [u8], file: &'i str) -> Result<Document<'i>, ConfigError> {
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
        let root = DeTable::parse(text).map_err(|e| {
            let at = e.span().map_or(0, |s| s.start);
            let key = key_near(text, at);
            let message = match e.message() {
                "duplicate key" if header_on_line(text, at) => "table defined twice".to_string(),
                "duplicate key" => "key defined twice".to_string(),
                m => format!("TOML syntax error: {m}"),
            };
            src.err(at..at, &key, message)
        })?;
        Ok(Document { src, root })
    }

    /// An error at byte `span.start`, about `key`.
    pub fn err(&self, span: Range<usize>, key: &str, message: impl Into<String>) -> ConfigError {
        self.src.err(span, key, message)
    }

    /// Every top-level key must be one of `known` (the sections of every part that reads
    /// the file); else a located "unknown key".
    pub fn check_root(&self, known: &[&str]) -> Result<(), ConfigError> {
        let mut keys: Vec<_> = self.root.get_ref().keys().collect();
        keys.sort_by_key(|k| k.span().start);
        match keys
            .into_iter()
            .find(|k| !known.contains(&k.get_ref().as_ref()))
        {
            Some(k) => Err(self.err(
                k.span(),
                &join_key("", k.get_ref()),
                format!("unknown key (expected one of: {})", known.join(", ")),
            )),
            None => Ok(()),
        }
    }

    /// The part of the file `T`'s fields name (top-level sections), deserialized; the other
    /// sections are some other part's.
    pub fn part<T: DeserializeOwned>(&self) -> Result<T, ConfigError> {
        let fields = fields_of::<T>();
        let mut table = DeTable::new();
        for (k, v) in self.root.get_ref() {
            if fields.contains(&k.get_ref().as_ref()) {
                table.insert(k.clone(), v.clone());
            }
        }
        let de = toml::de::Deserializer::from(Spanned::new(self.root.span(), table));
        T::deserialize(de).map_err(|e| self.de_error(&e))
    }

    /// Where the value at `path` is written, when the file gives it.
    pub fn span_of(&self, path: &[&str]) -> Option<Range<usize>> {
        let (last, parents) = path.split_last()?;
        let mut t = self.root.get_ref();
        for p in parents {
            match t.get(*p).map(Spanned::get_ref) {
                Some(DeValue::Table(sub)) => t = sub,
                _ => return None,
            }
        }
        t.get(*last).map(Spanned::span)
    }

    fn de_error(&self, e: &toml::de::Error) -> ConfigError {
        let span = e.span().unwrap_or(0..0);
        let key = key_at(self.root.get_ref(), "", span.start).unwrap_or_default();
        self.err(span, &key, plain(e.message()))
    }
}

/// The dotted key of the deepest entry whose name or value holds byte `at`.
fn key_at(t: &DeTable, prefix: &str, at: usize) -> Option<String> {
    let holds = |s: Range<usize>| s.start <= at && at < s.end.max(s.start + 1);
    for (k, v) in t {
        let key = join_key(prefix, k.get_ref());
        if let DeValue::Table(sub) = v.get_ref() {
            if let Some(deeper) = key_at(sub, &key, at) {
                return Some(deeper);
            }
        }
        if holds(k.span()) || holds(v.span()) {
            return Some(key);
        }
    }
    None
}

/// serde's words in the config's: "unknown key (expected one of: a, b)", "expected an
/// integer, found string", "missing key x".
fn plain(message: &str) -> String {
    let ticks = |s: &str| s.replace('`', "");
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let expected = match rest.split_once("`, ") {
            Some((_, "there are no fields")) => "none".to_string(),
            Some((_, e)) => ticks(
                e.trim_start_matches("expected one of ")
                    .trim_start_matches("expected "),
            ),
            None => String::new(),
        };
        return format!("unknown key (expected one of: {expected})");
    }
    if let Some(rest) = message.strip_prefix("missing field `") {
        return format!("missing key {}", rest.trim_end_matches('`'));
    }
    if let Some((found, expected)) = message
        .strip_prefix("invalid type: ")
        .and_then(|m| m.split_once(", expected "))
    {
        let found = match found.split([' ', '`']).next().unwrap_or(found) {
            "floating" => "float",
            "map" => "table",
            "sequence" => "array",
            "unit" => "nothing",
            other => other,
        };
        let expected = match expected {
            e if e.starts_with("struct ") || e.contains("map") => "a table",
            e if e.contains("sequence") => "an array",
            "u8" | "u16" | "u32" | "u64" | "i64" => "an integer",
            "f64" => "a number",
            "a borrowed string" => "a string",
            e => e,
        };
        return format!("expected {expected}, found {found}");
    }
    message.to_string()
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
