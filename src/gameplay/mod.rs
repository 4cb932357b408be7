//! The game the agent plays and the cycle that plays it.

mod action;
pub mod cycle;
pub mod stats;
pub mod world;

pub use action::Action;
pub use stats::GameStats;
pub use world::World;
