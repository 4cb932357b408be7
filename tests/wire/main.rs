//! The clients, the sandbox and sound, in process: every wire shape, every fault, every
//! refusal, with the request asserted on the server side.

// The 120-line limit on functions (clippy.toml) is for the code, not for test scenarios.
#![allow(clippy::too_many_lines)]

// One test binary for several files: each links the whole app, so fewer binaries build
// and link faster. The shared helpers are in tests/common.
#[path = "../common/mod.rs"]
mod common;

mod audio;
mod clients;
mod gaps;
mod reliability;
mod sandbox_wire;
mod sdk_answers;
