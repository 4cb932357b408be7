//! The clients, the sandbox and sound, in process: every wire shape, every fault, every
//! refusal, with the request asserted on the server side.

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
