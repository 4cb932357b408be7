//! The game the agent plays and the cycle that plays it.

mod action;

pub use action::Action;
