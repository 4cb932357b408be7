//! In-process sessions against the embedded sandbox. A session counts every TCP socket of this
//! process, so every test here that opens sockets takes `common::one_at_a_time()`.

// The 120-line limit on functions (clippy.toml) is for the code, not for test scenarios.
#![allow(clippy::too_many_lines)]

// One test binary for several files: each links the whole app, so fewer binaries build
// and link faster. The shared helpers are in tests/common.
#[path = "../common/mod.rs"]
mod common;

mod gameplay;
mod metrics;
mod shutdown;
