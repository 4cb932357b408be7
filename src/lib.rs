//! singularis-tui: an autonomous game-playing agent and the life of every connection it opens.

pub mod config;
pub mod sandbox;
pub mod systems;
