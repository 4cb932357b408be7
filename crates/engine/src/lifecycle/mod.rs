//! The life of every connection: systems and their pools (`system`), measuring sockets
//! (`sockets`), and closing everything in order (`shutdown`).

pub mod registry;
pub mod shutdown;
pub mod system;

pub use crate::clients::{ApiKey, RequestCtx};
pub use crate::net::sockets;
pub use crate::net::{Settled, settle};
pub use registry::Registry;
pub use shutdown::{
    ClosingStep, ShutdownEvent, ShutdownReport, StepReport, SystemsClosed, Verification,
    shutdown_all,
};
pub use system::{CloseOutcome, CloseReport, StateChange, System, SystemSnapshot, SystemState};
