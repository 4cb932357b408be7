//! singularis-tui: an autonomous game-playing agent and the life of every connection it opens.

pub mod clients;
pub mod config;
pub mod gameplay;
pub mod lifecycle;
pub mod sandbox;
pub mod session;
pub mod systems;
pub mod cli;
pub mod headless;
pub mod logging;
pub mod probe;
pub mod tui;
pub mod audio;
pub mod telemetry;
