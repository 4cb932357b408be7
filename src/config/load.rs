//! Reading `config.toml` whole: one parse, then the engine's sections (the engine reads and
//! checks them), then the app's, then the rules between the two (roles, faults, the
//! dependency graph with the vote's edges).

use super::types::{Config, File};
use singularis_engine::config::{self as engine, ConfigError, Document};
use std::path::Path;

pub use engine::resolve_path;

/// Load `path` (or the built-in default when `None`).
pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
    let Some(path) = path else {
        return Ok(Config::default());
    };
    let bytes = engine::read(path)?;
    let mut cfg = parse(&bytes, &path.display().to_string())?;
    cfg.source = Some(path.to_path_buf());
    Ok(cfg)
}

/// The top-level sections of the whole file: the engine's, then the app's.
pub fn sections() -> Vec<&'static str> {
    let mut all = engine::Config::sections().to_vec();
    all.extend(engine::de::fields_of::<File>());
    all
}

/// Parse and validate a config file's bytes; `file` is only used to label errors.
pub fn parse(bytes: &[u8], file: &str) -> Result<Config, ConfigError> {
    let doc = Document::parse(bytes, file)?;
    doc.check_root(&sections())?;
    let mut resolved = engine::Config::from_document(&doc)?;
    let mut app: File = doc.part()?;
    let known = resolved.config.ids();
    for (name, fault) in std::mem::take(&mut app.sandbox.named_faults) {
        let id = engine::system(&doc, &name, "sandbox.faults", &known)?;
        app.sandbox.faults.insert(id, fault);
    }
    let named = std::mem::take(&mut app.gameplay.named_roles);
    let (roles, derived) = super::roles::apply(&doc, &mut resolved, &named)?;
    app.gameplay.roles = roles;
    resolved.check_graph(&doc, derived.as_ref())?;
    Ok(Config {
        engine: resolved.config,
        gameplay: app.gameplay,
        sandbox: app.sandbox,
        audio: app.audio,
        ui: app.ui,
        metrics: app.metrics,
        serve: app.serve,
        fleet: app.fleet,
    })
}
