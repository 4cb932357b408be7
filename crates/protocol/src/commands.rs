//! `POST /v1/commands`: what a viewer asks, what the agent answers, and the record every
//! command leaves (the report's `commands`, the `command` event).

use crate::systems::CloseReport;
#[cfg(feature = "schema")]
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What a person may ask of a running session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum CommandKind {
    Close,
    ForceClose,
    Reopen,
    Pause,
    Resume,
    Quit,
}

impl CommandKind {
    pub const ALL: [CommandKind; 6] = [
        CommandKind::Close,
        CommandKind::ForceClose,
        CommandKind::Reopen,
        CommandKind::Pause,
        CommandKind::Resume,
        CommandKind::Quit,
    ];

    pub fn name(self) -> &'static str {
        match self {
            CommandKind::Close => "close",
            CommandKind::ForceClose => "force_close",
            CommandKind::Reopen => "reopen",
            CommandKind::Pause => "pause",
            CommandKind::Resume => "resume",
            CommandKind::Quit => "quit",
        }
    }

    /// Whether it names a system (close, force_close, reopen).
    pub fn needs_system(self) -> bool {
        matches!(
            self,
            CommandKind::Close | CommandKind::ForceClose | CommandKind::Reopen
        )
    }
}

impl From<CommandKind> for &'static str {
    fn from(kind: CommandKind) -> &'static str {
        kind.name()
    }
}

/// One command and what became of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
pub struct CommandRecord {
    /// Seconds since the session started.
    pub at_s: f64,
    /// Who asked: "you" at the dashboard, "viewer IP:PORT".
    pub by: String,
    pub command: CommandKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// `closed`, `forced`, `error`, `unverified` (a close); `reopened`, `paused`, `resumed`,
    /// `quit`; `refused`; `unauthorized`.
    pub outcome: String,
    /// Why it was refused, or the close's error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub close_ms: Option<f64>,
}

/// The body of `POST /v1/commands`: `{"command": "force_close", "system": "claude_client"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct CommandRequest {
    pub command: CommandKind,
    /// The system of a close, force_close or reopen; no other command takes one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
}

/// The agent's answer to a command (any status), or to a request it did not take (`error`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
pub struct Answer {
    /// Done as asked (a close: closed or forced).
    #[serde(default)]
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<CommandKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// `done`, `refused`, or a close's outcome (`closed`, `forced`, `error`, `unverified`);
    /// `closing` when the close outlasted the wait (its outcome comes as a `command` event).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// What was done, or why not, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// A close's report, as the report's `shutdown.systems` entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<CloseReport>,
    /// Why the request was not taken (malformed, unknown system, no or wrong token): then
    /// the fields above are absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Answer {
    /// A request not taken, and why.
    pub fn error(why: impl Into<String>) -> Answer {
        Answer {
            error: Some(why.into()),
            ..Answer::default()
        }
    }
}
