//! Text from the engine (errors, log lines) is shown only after anything that looks like a
//! credential is masked: the known key values from the environment, and the usual shapes
//! (`Bearer …`, `key=…`, `sk-…`).

use crate::config::Config;
use crate::lifecycle::registry::process_env;

const MASK: &str = "****";
/// Text right after one of these is a secret, up to a delimiter.
const MARKERS: [&str; 7] = [
    "bearer ",
    "key=",
    "appid=",
    "token=",
    "x-api-key: ",
    "x-goog-api-key: ",
    "api-key: ",
];
/// Shorter "secrets" would mask ordinary words.
const MIN_SECRET: usize = 8;

#[derive(Debug, Clone, Default)]
pub(crate) struct Redactor {
    secrets: Vec<String>,
}

impl Redactor {
    /// The values of every key variable the config names.
    pub fn from_config(config: &Config) -> Redactor {
        let mut secrets: Vec<String> = config
            .systems
            .values()
            .filter_map(|s| s.api_key_env.as_deref())
            .filter_map(process_env)
            // The control token, when it is the environment's (a generated one is never
            // read outside the control endpoint).
            .chain(process_env(crate::control_token::TOKEN_ENV))
            .filter(|v| v.len() >= MIN_SECRET)
            .collect();
        secrets.sort();
        secrets.dedup();
        Redactor { secrets }
    }

    #[cfg(test)]
    pub(crate) fn with_secrets(secrets: Vec<String>) -> Redactor {
        Redactor {
            secrets: secrets
                .into_iter()
                .filter(|s| s.len() >= MIN_SECRET)
                .collect(),
        }
    }

    pub(crate) fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in &self.secrets {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), MASK);
            }
        }
        for marker in MARKERS {
            out = mask_after(&out, marker);
        }
        mask_prefixed_words(&out, "sk-")
    }
}

fn is_delimiter(c: char) -> bool {
    c.is_whitespace() || matches!(c, '&' | '"' | '\'' | ',' | ';' | ')' | ']' | '}' | '>')
}

/// Replace what follows each (ASCII case-insensitive) `marker` up to a delimiter.
fn mask_after(text: &str, marker: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut rest = 0;
    let mut search = 0;
    while let Some(found) = lower[search..].find(marker) {
        let start = search + found + marker.len();
        let end = text[start..]
            .find(is_delimiter)
            .map_or(text.len(), |e| start + e);
        out.push_str(&text[rest..start]);
        if end > start {
            out.push_str(MASK);
        }
        rest = end;
        search = end.max(start);
        if search >= text.len() {
            break;
        }
    }
    out.push_str(&text[rest..]);
    out
}

/// Mask words that start with `prefix` and are long enough to be a key.
fn mask_prefixed_words(text: &str, prefix: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut word_start = true;
    let mut i = 0;
    while i < text.len() {
        let rest = &text[i..];
        if word_start && rest.starts_with(prefix) {
            let len = rest.find(is_delimiter).unwrap_or(rest.len());
            if len >= prefix.len() + MIN_SECRET {
                out.push_str(prefix);
                out.push_str(MASK);
                i += len;
                word_start = false;
                continue;
            }
        }
        let c = rest.chars().next().unwrap_or(' ');
        out.push(c);
        word_start = is_delimiter(c) || c == '=' || c == ':';
        i += c.len_utf8();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_known_keys_and_key_shapes() {
        let r = Redactor::with_secrets(vec!["hunter2-secret-value".into()]);
        assert_eq!(
            r.scrub("auth failed for hunter2-secret-value"),
            "auth failed for ****"
        );
        assert_eq!(
            r.scrub("GET /api?input=x&appid=ABC123 failed"),
            "GET /api?input=x&appid=**** failed"
        );
        assert_eq!(
            r.scrub("Authorization: Bearer abc.def"),
            "Authorization: Bearer ****"
        );
        assert_eq!(
            r.scrub("bad key sk-proj-1234567890abcdef here"),
            "bad key sk-**** here"
        );
        assert_eq!(r.scrub("HTTP 429 rate limited"), "HTTP 429 rate limited");
        assert_eq!(
            r.scrub("a task-runner and sk-short"),
            "a task-runner and sk-short"
        );
        assert_eq!(r.scrub("key="), "key=");
    }
}
