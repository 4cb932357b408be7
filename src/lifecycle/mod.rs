//! The life of every connection: systems and their pools (`system`), measuring sockets
//! (`sockets`), and closing everything in order (`shutdown`).

mod connector;
pub mod registry;
pub mod shutdown;
pub mod sockets;
pub mod system;

pub use registry::Registry;
pub use shutdown::{
    ClosingStep, ShutdownEvent, ShutdownReport, StepReport, SystemsClosed, shutdown_all,
};
pub use system::{
    ApiKey, CloseOutcome, CloseReport, RequestCtx, StateChange, System, SystemSnapshot, SystemState,
};
