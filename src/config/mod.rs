//! The config file, whole: the engine reads its sections (`singularis_engine::config`),
//! the app reads its own from the same parse (`types`, `roles`), one loader (`load`), one
//! rendering (`render`). ARCHITECTURE.md, "Configuration".

mod load;
mod render;
mod roles;
#[cfg(test)]
mod tests;
mod types;

// The engine's config items, under the app's config (its `Config` is the app's, below).
pub use singularis_engine::config::*;
pub use singularis_sandbox::{Fault, Timing};

pub use load::{load, parse, resolve_path, sections};
pub use render::render_resolved;
pub use roles::{Role, Roles};
pub use types::{
    AudioConfig, Config, FleetConfig, GameplayConfig, MAX_CYCLES, MetricsConfig, Mode,
    SandboxConfig, ServeConfig, UiConfig, sandbox_listen_ip,
};

/// The engine's part of the config, by its own name.
pub type EngineConfig = singularis_engine::config::Config;
