//! The protocol of singularis-tui's event stream and commands (ARCHITECTURE.md, "The control
//! endpoint"): what `--headless --json` writes, what the control endpoint's `GET /v1/events`
//! streams and `POST /v1/commands` takes and answers, and what `attach` reads. Typed once
//! here, with owned data, both ways (`Serialize` and `Deserialize`), so the agent and its
//! viewers, and programs in other languages, read one definition.
//!
//! - **Lines.** Each event is one JSON object, a [`Line`]: `ts` (RFC 3339, UTC) and `event`
//!   (its kind), then the event's fields (an event that is a session report's entry is
//!   exactly that entry).
//! - **Versions.** The events that open a stream, `session_started` (`--json`) and `snapshot`
//!   (`/v1/events`, also after a resync), carry `protocol`: `"MAJOR.MINOR"`, [`PROTOCOL`]. A
//!   minor version only adds (events, fields): a reader ignores what it does not know. A new
//!   major version may change anything: a reader of another major stops and says so
//!   ([`Line::read`], [`Version::check`]) instead of misreading.
//! - **Schema.** `schema/events.schema.json` (a line of the stream) and
//!   `schema/commands.schema.json` (a command and its answer) are the published JSON Schemas
//!   ([`events_schema`], [`commands_schema`]). The crate's tests fail when the types and the
//!   checked-in files differ; after a deliberate change, regenerate them with
//!   `UPDATE_SCHEMA=1 cargo test -p singularis-protocol --test schema` (and bump [`PROTOCOL`]).
//!
//! Systems are named by their snake_case names (`claude_client`), actions by theirs
//! (`explore`): strings, so a new system or action is not a new protocol.

mod commands;
mod events;
mod game;
mod systems;
mod version;

pub use commands::{Answer, CommandKind, CommandRecord, CommandRequest};
pub use events::{
    Event, LOG_TAIL, Line, LogLine, ReadError, Refresh, SessionInfo, ShutdownComplete, Snapshot,
    SystemLine,
};
pub use game::{
    ActionLine, BudgetSnapshot, CallAccount, CycleEvent, CycleTiming, GameStats, GameView,
    ReportStats, UsageLine, UsageSection, WorldView,
};
pub use systems::{
    BreakerChange, BreakerState, CloseOutcome, CloseReport, CloseStep, EarlierClose, Headroom,
    StateChange, SystemSnapshot, SystemState, Usage, Verification,
};
pub use version::{PROTOCOL, Version, VersionError};

/// The JSON Schema of one line of the event stream.
#[cfg(feature = "schema")]
pub fn events_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(Line)).expect("a schema is JSON")
}

/// The JSON Schema of `POST /v1/commands`: the request (`$defs.CommandRequest`) and the
/// answer (the root).
#[cfg(feature = "schema")]
pub fn commands_schema() -> serde_json::Value {
    #[derive(schemars::JsonSchema)]
    #[allow(dead_code)]
    struct Commands {
        request: CommandRequest,
        answer: Answer,
    }
    serde_json::to_value(schemars::schema_for!(Commands)).expect("a schema is JSON")
}
