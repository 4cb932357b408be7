//! The game the agent plays and the cycle that plays it: the world (`world`), the actions
//! and reading them out of replies (`action`), loop guards (`guard`), learned preferences
//! (`learning`), one cycle through the eleven systems (`cycle`), and what it all counts
//! (`stats`).

mod action;
pub mod cycle;
pub mod guard;
pub mod learning;
pub mod moe;
pub mod stats;
pub mod world;

pub use action::Action;
pub use stats::GameStats;
pub use world::World;
