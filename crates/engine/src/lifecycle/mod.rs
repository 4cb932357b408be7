//! The life of every system: its pool and state (`system`), all of them (`registry`), and
//! closing everything in order, verified (`shutdown`).

mod breaker;
pub mod budget;
pub mod registry;
mod shutdown;
mod system;

pub use crate::clients::{ApiKey, RequestCtx};
pub use crate::net::sockets;
pub use breaker::{BreakerSettings, BreakerState};
pub use budget::{Budget, BudgetSnapshot};
pub use registry::{Registry, SandboxUrls};
pub use shutdown::{
    ClosingStep, EventSink, ShutdownEvent, ShutdownReport, StepReport, SystemsClosed, Verification,
    counted, log_ms, shutdown_all, to_channel, verify,
};
pub use system::{
    Bounded, BreakerChange, CloseOutcome, CloseReport, CloseStep, CloseStepKind, Deadlines,
    EarlierClose, LatencyObserver, StateChange, System, SystemSnapshot, SystemState,
};
