//! The real binary: exit codes, signals, bad configs, secrets, the fleet interfaces, and the
//! dashboard driven in tmux.

// The 120-line limit on functions (clippy.toml) is for the code, not for test scenarios.
#![allow(clippy::too_many_lines)]

// One test binary for several files: each links the whole app, so fewer binaries build
// and link faster. The shared helpers are in tests/common.
#[path = "../common/mod.rs"]
mod common;

mod accounts;
mod attach;
mod cli;
mod leak;
mod recording;
mod resilience;
mod secrets;
mod serve;
mod systems;
mod traces;
mod tui_e2e;
