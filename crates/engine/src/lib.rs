//! singularis-engine: systems that each own an HTTP connection pool to a real API, and close
//! them verified, in dependency order, within a deadline. No terminal, no game, no sandbox:
//! a Rust program with reqwest-built requests can adopt it alone. See ARCHITECTURE.md.
//!
//! Layers, lowest first (each uses only those before it):
//! - `systems`: the eleven systems' names, protocols and model settings;
//! - `config`: `config.toml`, validated, with located errors;
//! - `error`, `net`: what a request can fail with; connections we own, and their witnesses
//!   (the in-process ledger and the OS socket table);
//! - `clients`: each service's wire protocol over a system's pool;
//! - `lifecycle`: systems, their registry, and the ordered, verified shutdown.
//!
//! `backoff` (the one doubling wait) and `sync` are helpers any layer uses.

pub mod backoff;
pub mod clients;
pub mod config;
pub mod error;
pub mod lifecycle;
pub mod net;
pub mod sync;
pub mod systems;
