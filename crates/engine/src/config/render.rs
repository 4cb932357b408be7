//! What `check-config` prints: the resolved settings as TOML, each section serialized from
//! its own type (so a key is defined once, in its struct), with a note beside what a line
//! alone would not say: an unset optional key, whether a key variable is set. API keys are
//! reported as set or not set, never shown.

use super::types::{Config, SystemConfig};
use crate::systems::Protocol;
use serde::Serialize;
use std::ffi::OsString;
use std::fmt::Write;

/// `[name]` and its keys from `value`'s `Serialize` (its sub-tables as `[name.sub]`), then a
/// `# key: not set (note)` line for each of `unset` the value leaves out.
pub fn render_section<T: Serialize>(
    out: &mut String,
    name: &str,
    value: &T,
    unset: &[(&str, &str)],
) {
    let body = toml_of(value);
    let _ = writeln!(out, "\n[{name}]");
    // The value's own keys come first, then its sub-tables, each under a header.
    let first_header = match body.starts_with('[') {
        true => Some(0),
        false => body.find("\n[").map(|i| i + 1),
    };
    let (keys, tables) = body.split_at(first_header.unwrap_or(body.len()));
    for line in keys.lines().filter(|l| !l.is_empty()) {
        let _ = writeln!(out, "{line}");
    }
    for (key, note) in unset {
        if !keys.lines().any(|l| l.starts_with(&format!("{key} ="))) {
            let _ = writeln!(out, "# {key}: not set ({note})");
        }
    }
    for line in tables.lines().filter(|l| !l.is_empty()) {
        match line.strip_prefix('[') {
            Some(sub) => {
                let _ = writeln!(out, "\n[{name}.{sub}");
            }
            None => {
                let _ = writeln!(out, "{line}");
            }
        }
    }
}

fn toml_of<T: Serialize>(value: &T) -> String {
    toml::to_string(value).unwrap_or_else(|e| format!("# cannot be shown: {e}\n"))
}

/// The engine's sections: `[shutdown]`, `[resilience]`, each `[systems.NAME]`, `[pricing]`
/// and `[budget]`, reading key variables through `env` (only whether each is set).
pub fn render_engine(out: &mut String, cfg: &Config, env: &dyn Fn(&str) -> Option<OsString>) {
    render_section(out, "shutdown", &cfg.shutdown, &[]);
    let initial = "1000 on the instant sandbox; the ceiling on a live service or the live sandbox";
    render_section(
        out,
        "resilience",
        &cfg.resilience,
        &[("deadline_initial_ms", initial)],
    );
    for (id, s) in &cfg.systems {
        let _ = writeln!(out, "\n[systems.{id}]  # {}", id.display_name());
        if !id.is_seed() {
            let name = toml::Value::from(id.display_name());
            let _ = writeln!(out, "display_name = {name}");
        }
        system_lines(out, s, env);
    }
    let _ = write!(out, "\n# [pricing]: USD per million tokens");
    render_section(out, "pricing", &cfg.pricing, &[]);
    render_section(
        out,
        "budget",
        &cfg.budget,
        &[("max_usd", "no limit"), ("max_usd_per_hour", "no limit")],
    );
}

/// One system's keys, as its type serializes them, but: the cap's field name only where
/// it is a choice (`openai_chat`); an effort left to the model written out as `""` (left
/// out, another model would take its family's default); the key variable's state beside it.
fn system_lines(out: &mut String, s: &SystemConfig, env: &dyn Fn(&str) -> Option<OsString>) {
    let openai = matches!(s.protocol, Protocol::OpenaiChat | Protocol::OpenaiResponses);
    for line in toml_of(s).lines() {
        let key = line.split(" =").next().unwrap_or("");
        match key {
            "token_field" if s.protocol != Protocol::OpenaiChat => continue,
            "api_key_env" => {
                let state = match &s.api_key_env {
                    None => "no key needed",
                    // Only whether it is set: no length, no prefix, nothing derived from it.
                    Some(name) => match env(name) {
                        Some(v) if !v.is_empty() => "set, ****",
                        Some(_) => "set but empty",
                        None => "not set",
                    },
                };
                let _ = writeln!(out, "{line} ({state})");
                continue;
            }
            _ => {}
        }
        let _ = writeln!(out, "{line}");
    }
    if openai && s.params.reasoning_effort.is_none() {
        let _ = writeln!(out, "reasoning_effort = \"\"");
    }
}
