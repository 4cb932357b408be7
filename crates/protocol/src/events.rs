//! The event stream: one [`Line`] per event.

use crate::commands::CommandRecord;
use crate::game::{CycleEvent, GameStats, GameView, ReportStats};
use crate::systems::{
    BreakerChange, CloseReport, StateChange, SystemSnapshot, SystemState, Verification,
};
use crate::version::Version;
#[cfg(feature = "schema")]
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One line of the stream (a line of `--json`, a `data:` of `/v1/events`): `ts`, `event`
/// and the event's fields, so an event that is a report's entry is exactly that entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
pub struct Line {
    /// When the event was written: RFC 3339, UTC.
    pub ts: String,
    #[serde(flatten)]
    pub event: Event,
}

/// The version of agents older than the `protocol` field.
fn v1() -> Version {
    Version { major: 1, minor: 0 }
}

impl Line {
    /// A line as a reader of this version takes it. The events that open a stream
    /// (`session_started`, `snapshot`) say its version (`protocol`): one of another major
    /// version is refused before its event is read (it may mean something else). An event
    /// this version does not know is [`Event::Unknown`].
    pub fn read(json: &str) -> Result<Line, ReadError> {
        #[derive(Deserialize)]
        struct Head {
            #[serde(default)]
            protocol: Option<Version>,
        }
        let head: Head = serde_json::from_str(json).map_err(ReadError::Json)?;
        if let Some(v) = head.protocol {
            v.check().map_err(ReadError::Version)?;
        }
        serde_json::from_str(json).map_err(ReadError::Json)
    }
}

impl Event {
    /// This event as one line of the stream, written at `ts`, without a newline: [`Line`]'s
    /// JSON, without taking the event.
    pub fn to_line(&self, ts: &str) -> serde_json::Result<Vec<u8>> {
        #[derive(Serialize)]
        struct LineRef<'a> {
            ts: &'a str,
            #[serde(flatten)]
            event: &'a Event,
        }
        serde_json::to_vec(&LineRef { ts, event: self })
    }

    /// The version an event that opens a stream says; `None` for the others.
    pub fn protocol(&self) -> Option<Version> {
        match self {
            Event::SessionStarted { protocol, .. } => Some(*protocol),
            Event::Snapshot(s) => Some(s.protocol),
            _ => None,
        }
    }
}

/// Why a line could not be read.
#[derive(Debug)]
pub enum ReadError {
    /// It is of a major version this reader does not read.
    Version(crate::VersionError),
    /// It is not a line of the stream.
    Json(serde_json::Error),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Version(e) => e.fmt(f),
            ReadError::Json(e) => write!(f, "not an event of the stream: {e}"),
        }
    }
}

impl std::error::Error for ReadError {}

/// What a session is, as `session_started` and a viewer's `snapshot` say it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
pub struct SessionInfo {
    /// The agent's own version (singularis-tui's).
    pub version: String,
    /// `parallel` or `sequential`.
    pub mode: String,
    /// `sandbox`, `live` or `mixed`.
    pub backend: String,
    /// Quit after this many cycles; 0: until asked.
    pub cycles: u64,
    pub grace_ms: u64,
    /// The metrics endpoint's URL, when serving.
    pub metrics: Option<String>,
    /// The control endpoint's URL, when serving.
    pub serve: Option<String>,
}

/// A system as the session starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
pub struct SystemLine {
    pub name: String,
    pub state: SystemState,
    /// Why a disabled system is disabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Everything a viewer needs to draw the session from nothing: the first event of the
/// control endpoint's stream, and again whenever a viewer fell behind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
pub struct Snapshot {
    /// The protocol's version (this is the first event of the control endpoint's stream).
    /// Agents older than the field have none: 1.0.
    #[serde(default = "v1")]
    pub protocol: Version,
    pub session: SessionInfo,
    /// Seconds since the session started.
    pub session_s: f64,
    /// `running`, or `shutting_down` once a quit was asked for.
    pub phase: String,
    pub paused: bool,
    /// Every system, as the dashboard shows it.
    pub systems: Vec<SystemSnapshot>,
    pub stats: GameStats,
    /// Every command so far (the report's `commands`).
    #[serde(default)]
    pub commands: Vec<CommandRecord>,
    /// What the game pane shows. Since 1.3.
    #[serde(default)]
    pub game: GameView,
    /// The agent's most recent log lines, oldest first (at most [`LOG_TAIL`]), its keys
    /// masked; the lines after it come as `log` events. Since 1.3.
    #[serde(default)]
    pub logs: Vec<LogLine>,
}

/// The most log lines a `snapshot` carries.
pub const LOG_TAIL: usize = 200;

/// One line of the agent's log, as its dashboard's log pane shows it (keys masked).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
pub struct LogLine {
    /// The agent's local wall-clock time, `HH:MM:SS`.
    pub time: String,
    /// `ERROR`, `WARN`, `INFO`, `DEBUG` or `TRACE`.
    pub level: String,
    /// The message, then the event's other fields as `name=value`, on one line.
    pub text: String,
}

/// The counters a state change does not carry: every system and the game's statistics,
/// sent to each viewer every second so its table stays live between changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
pub struct Refresh {
    /// Seconds since the session started.
    pub session_s: f64,
    pub paused: bool,
    pub systems: Vec<SystemSnapshot>,
    pub stats: GameStats,
    /// What the game pane shows. Since 1.3.
    #[serde(default)]
    pub game: GameView,
}

/// The shutdown's totals (the report's `shutdown`, without its lists).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
pub struct ShutdownComplete {
    pub reason: String,
    pub grace_ms: u64,
    pub total_ms: f64,
    pub closed: u64,
    pub forced: u64,
    pub errors: u64,
    pub skipped: u64,
    pub unverified: u64,
    /// Requests in flight cancelled at the grace deadline (or by a force).
    pub cancelled: u32,
    pub sockets_open_after: Option<u64>,
    pub verified: bool,
    pub unverified_reason: Option<String>,
}

/// One event; `event` names its kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The session started (`--json`'s first line).
    SessionStarted {
        /// The protocol's version (this is `--json`'s first line). Agents older than the
        /// field have none: 1.0.
        #[serde(default = "v1")]
        protocol: Version,
        #[serde(flatten)]
        session: SessionInfo,
        systems: Vec<SystemLine>,
    },
    /// The whole session as it is now (the control endpoint's stream only: its first event).
    Snapshot(Box<Snapshot>),
    /// The systems' counters and the game's statistics (the control endpoint's stream only,
    /// every second).
    Refresh(Box<Refresh>),
    /// A system moved from one state to another.
    State(StateChange),
    /// A system's circuit breaker opened, turned half-open (a probe) or closed, and why.
    Breaker(BreakerChange),
    /// A gameplay cycle ended.
    Cycle(CycleEvent),
    /// A command and its outcome: the report's `commands` entry.
    Command(CommandRecord),
    ShutdownStarted {
        reason: String,
        grace_ms: u64,
    },
    /// A system began closing (the systems that use it are closed).
    Closing {
        name: String,
    },
    /// A system's close ended: the report's `shutdown.systems` entry.
    Closed(CloseReport),
    /// A closing step after the systems: the report's `shutdown.endpoints` entry.
    EndpointClosed(CloseReport),
    /// What the process-wide socket check found.
    Verified(Verification),
    ShutdownComplete(ShutdownComplete),
    SessionEnded {
        exit_code: i32,
        report: Option<String>,
        /// Why the report could not be written (then `report` is null and the exit code 1).
        report_error: Option<String>,
        stats: Box<ReportStats>,
    },
    /// The follower fell behind and this many events of a kind were dropped.
    Lagged {
        missed: u64,
    },
    /// A line the agent logged (the control endpoint's stream only; keys masked). Since 1.3.
    Log(LogLine),
    /// The control endpoint's stream ends here (the endpoint is closing at shutdown).
    StreamClosed {
        why: String,
    },
    /// An event of a newer minor version that this reader does not know; never written.
    #[serde(other, skip_serializing)]
    #[cfg_attr(feature = "schema", schemars(skip))]
    Unknown,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_line_reads_back_and_another_major_is_refused() {
        let ev = Event::StreamClosed { why: "bye".into() };
        let json = String::from_utf8(ev.to_line("2026-01-01T00:00:00Z").unwrap()).unwrap();
        assert_eq!(
            json,
            r#"{"ts":"2026-01-01T00:00:00Z","event":"stream_closed","why":"bye"}"#
        );
        let line = Line::read(&json).unwrap();
        assert_eq!(line.event, ev);
        // An agent older than the version field: its first event reads as 1.0.
        let old = r#"{"ts":"t","event":"session_started","version":"0.1.0","mode":"parallel","backend":"sandbox","cycles":0,"grace_ms":500,"metrics":null,"serve":null,"systems":[]}"#;
        assert_eq!(
            Line::read(old).unwrap().event.protocol(),
            Some(Version { major: 1, minor: 0 })
        );
        // A later minor's event is not misread, nor an error.
        let newer = r#"{"ts":"t","protocol":"1.4","event":"weather","rain":true}"#;
        assert_eq!(Line::read(newer).unwrap().event, Event::Unknown);
        // Another major is refused before its event is read, whatever it holds.
        let two = r#"{"ts":"t","protocol":"2.0","event":"snapshot","systems":"all"}"#;
        match Line::read(two) {
            Err(ReadError::Version(e)) => assert_eq!(e.theirs.major, 2),
            other => panic!("refused as version 2, not {other:?}"),
        }
    }

    /// 1.3 added the game pane and the log: a 1.2 agent's snapshot and refresh (without
    /// them) still read, with an empty pane and no lines; a `log` line reads back.
    #[test]
    fn a_1_2_snapshot_reads_without_the_game_pane_and_the_log() {
        let old = r#"{"ts":"t","protocol":"1.2","event":"snapshot","session":{"version":"0.1.0","mode":"parallel","backend":"sandbox","cycles":0,"grace_ms":500,"metrics":null,"serve":null},"session_s":12.5,"phase":"running","paused":false,"systems":[],"stats":{}}"#;
        match Line::read(old).unwrap().event {
            Event::Snapshot(s) => {
                assert_eq!(s.game, crate::GameView::default());
                assert!(s.logs.is_empty());
                assert_eq!(s.session_s, 12.5);
            }
            other => panic!("a snapshot, not {other:?}"),
        }
        let old = r#"{"ts":"t","event":"refresh","session_s":1.0,"paused":false,"systems":[],"stats":{}}"#;
        assert!(
            matches!(Line::read(old).unwrap().event, Event::Refresh(r) if r.game.world.is_none())
        );
        let log = Event::Log(LogLine {
            time: "12:00:01".into(),
            level: "WARN".into(),
            text: "late system=claude_client".into(),
        });
        let json = String::from_utf8(log.to_line("t").unwrap()).unwrap();
        assert_eq!(
            json,
            r#"{"ts":"t","event":"log","time":"12:00:01","level":"WARN","text":"late system=claude_client"}"#
        );
        assert_eq!(Line::read(&json).unwrap().event, log);
    }
}
