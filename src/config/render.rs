//! What `check-config` prints: the whole resolved config as TOML, each section serialized
//! from its own type (the engine's by the engine). API keys are reported as set or not set,
//! never shown.

use super::types::Config;
use singularis_engine::config::{render_engine, render_section};
use std::ffi::OsString;
use std::fmt::Write;

/// The resolved configuration, with whether each system's key variable is set in this process.
pub fn render_resolved(cfg: &Config) -> String {
    render_with_env(cfg, &|name| std::env::var_os(name))
}

/// As [`render_resolved`], reading variables through `env` (tests avoid touching the process env).
pub(super) fn render_with_env(cfg: &Config, env: &dyn Fn(&str) -> Option<OsString>) -> String {
    let mut out = String::new();
    let source = match &cfg.source {
        Some(p) => p.display().to_string(),
        None => "built-in default".to_string(),
    };
    // `write!` into a String cannot fail.
    let _ = writeln!(out, "# source: {source}");
    render_section(&mut out, "gameplay", &cfg.gameplay, &[]);
    render_section(&mut out, "ui", &cfg.ui, &[]);
    render_section(&mut out, "audio", &cfg.audio, &[]);
    let metrics = [("listen", "no metrics endpoint")];
    render_section(&mut out, "metrics", &cfg.metrics, &metrics);
    let serve = [("listen", "no control endpoint")];
    render_section(&mut out, "serve", &cfg.serve, &serve);
    render_section(&mut out, "fleet", &cfg.fleet, &[]);
    render_section(&mut out, "sandbox", &cfg.sandbox, &[]);
    render_engine(&mut out, &cfg.engine, env);
    out
}
