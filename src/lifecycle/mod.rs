//! The life of every connection: systems and their pools (`system`), measuring sockets
//! (`sockets`), and closing everything in order (`shutdown`).

mod closing;
pub mod registry;
pub mod shutdown;
pub mod sockets;
pub mod system;
pub mod transport;

pub use closing::{Settled, settle};
pub use registry::Registry;
pub use shutdown::{
    ClosingStep, ShutdownEvent, ShutdownReport, StepReport, SystemsClosed, Verification,
    shutdown_all,
};
pub use system::{
    ApiKey, CloseOutcome, CloseReport, RequestCtx, StateChange, System, SystemSnapshot, SystemState,
};
