//! singularis-tui: an autonomous game-playing agent and the life of every connection it opens.

pub mod audio;
pub mod cli;
pub mod clients;
pub mod config;
pub mod gameplay;
pub mod headless;
pub mod lifecycle;
pub mod logging;
pub mod probe;
pub mod sandbox;
pub mod session;
pub mod sync;
pub mod systems;
pub mod telemetry;
pub mod tui;
