//! singularis-tui: an autonomous game-playing agent and the life of every connection it opens.
//! The app layer: the game, the session, telemetry, the dashboard and sound, over the engine
//! (`singularis-engine`) and the service emulator (`singularis-sandbox`). See ARCHITECTURE.md.

// The engine's and the sandbox's modules under their familiar paths.
pub use singularis_engine::{backoff, clients, error, lifecycle, net, sync, systems};
pub use singularis_sandbox as sandbox;

/// The version `--version` prints: the package's, with the commit when built from a git
/// checkout (`0.1.0 (1a2b3c4d5e)`; build.rs).
pub const VERSION: &str = env!("SINGULARIS_VERSION");

pub mod attach;
pub mod audio;
pub mod cli;
pub mod config;
pub mod control_token;
pub mod gameplay;
pub mod headless;
pub mod logging;
pub mod probe;
pub mod serve;
pub mod session;
pub mod telemetry;
pub mod tui;
