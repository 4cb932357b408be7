//! `--headless --json`: one JSON object per line on stdout, so scripts and log shippers can
//! follow a session as it happens. Every line has `ts` (RFC 3339, UTC) and `event`; the
//! shutdown events carry exactly the session report's shapes, so the two can be matched.

use super::CycleEvent;
use super::report::{ReportStats, SessionReport};
use crate::gameplay::GameStats;
use crate::lifecycle::{
    CloseReport, ShutdownEvent, StateChange, StepReport, SystemSnapshot, SystemState,
};
use crate::systems::SystemId;
use serde::Serialize;
use std::io::Write;

#[derive(Debug, Clone, Serialize)]
pub struct SystemLine {
    pub name: SystemId,
    pub state: SystemState,
    /// Why a disabled system is disabled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// What a session is, as `session_started` and a viewer's `snapshot` say it.
#[derive(Debug, Clone, Serialize)]
pub struct SessionInfo {
    pub version: &'static str,
    pub mode: String,
    pub backend: String,
    /// Quit after this many cycles; 0: until asked.
    pub cycles: u64,
    pub grace_ms: u64,
    /// The metrics endpoint's URL, when serving.
    pub metrics: Option<String>,
    /// The control endpoint's URL, when serving.
    pub serve: Option<String>,
}

/// Everything a viewer needs to draw the session from nothing: the first event of the
/// control endpoint's stream, and again whenever a viewer fell behind.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    pub session: SessionInfo,
    /// Seconds since the session started.
    pub session_s: f64,
    /// `running`, or `shutting_down` once a quit was asked for.
    pub phase: &'static str,
    pub paused: bool,
    /// Every system, as the dashboard shows it.
    pub systems: Vec<SystemSnapshot>,
    pub stats: GameStats,
    /// Every command so far (the report's `commands`).
    pub commands: Vec<super::control::CommandRecord>,
}

/// The counters a state change does not carry: every system and the game's statistics, sent
/// to each viewer every second so its table stays live between changes.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Refresh {
    /// Seconds since the session started.
    pub session_s: f64,
    pub paused: bool,
    pub systems: Vec<SystemSnapshot>,
    pub stats: GameStats,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    SessionStarted {
        version: &'static str,
        mode: String,
        backend: String,
        /// Quit after this many cycles; 0: until asked.
        cycles: u64,
        grace_ms: u64,
        /// The metrics endpoint's URL, when serving.
        metrics: Option<String>,
        /// The control endpoint's URL, when serving.
        serve: Option<String>,
        systems: Vec<SystemLine>,
    },
    /// The whole session as it is now (the control endpoint's stream only).
    Snapshot(Box<Snapshot>),
    /// The systems' counters and the game's statistics (the control endpoint's stream only,
    /// every second).
    Refresh(Box<Refresh>),
    /// A system moved from one state to another.
    State(StateChange),
    /// A system's circuit breaker opened, turned half-open (a probe) or closed, and why.
    Breaker(crate::lifecycle::BreakerChange),
    /// A gameplay cycle ended.
    Cycle(CycleEvent),
    /// A command (close, force-close, reopen, pause, resume, quit) and its outcome: the
    /// report's `commands` entry.
    Command(super::control::CommandRecord),
    ShutdownStarted {
        reason: String,
        grace_ms: u64,
    },
    /// A system began closing (the systems that use it are closed).
    Closing {
        name: SystemId,
    },
    /// A system's close ended: the report's `shutdown.systems` entry.
    Closed(CloseReport),
    /// A closing step after the systems: the report's `shutdown.endpoints` entry.
    EndpointClosed(StepReport),
    /// What the process-wide socket check found (`sockets_open_after` null when it could not
    /// be measured, with `unverified_reason`).
    Verified(crate::lifecycle::Verification),
    ShutdownComplete {
        reason: String,
        grace_ms: u64,
        total_ms: f64,
        closed: usize,
        forced: usize,
        errors: usize,
        skipped: usize,
        unverified: usize,
        /// Requests in flight cancelled at the grace deadline (or by a force).
        cancelled: u32,
        sockets_open_after: Option<usize>,
        verified: bool,
        unverified_reason: Option<String>,
    },
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
    /// The control endpoint's stream ends here (the endpoint is closing at shutdown): its
    /// last event, so a viewer can tell an end from a broken connection.
    StreamClosed {
        why: String,
    },
}

impl Event {
    /// A shutdown step as its event; `reason` is why the session is shutting down.
    pub fn from_shutdown(ev: ShutdownEvent, reason: &str) -> Event {
        match ev {
            ShutdownEvent::Begin { grace, .. } => Event::ShutdownStarted {
                reason: reason.to_string(),
                grace_ms: grace.as_millis() as u64,
            },
            ShutdownEvent::Closing(id) => Event::Closing { name: id },
            ShutdownEvent::Closed(r) => Event::Closed(r),
            ShutdownEvent::StepClosed(r) => Event::EndpointClosed(r),
            ShutdownEvent::Verified(check) => Event::Verified(check),
        }
    }

    /// The event as one JSON object with `ts` (RFC 3339, UTC) and `event`, without a newline.
    pub fn to_json(&self) -> serde_json::Result<Vec<u8>> {
        serde_json::to_vec(&Line {
            ts: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            event: self,
        })
    }

    pub fn shutdown_complete(r: &SessionReport) -> Event {
        let s = &r.shutdown.report;
        Event::ShutdownComplete {
            reason: r.shutdown.reason.name().to_string(),
            grace_ms: s.grace_ms,
            total_ms: s.total_ms,
            closed: s.closed,
            forced: s.forced,
            errors: s.errors,
            skipped: s.skipped,
            unverified: s.unverified,
            cancelled: s.cancelled,
            sockets_open_after: s.sockets_open_after,
            verified: s.verified,
            unverified_reason: s.unverified_reason.clone(),
        }
    }
}

#[derive(Serialize)]
struct Line<'a> {
    ts: String,
    #[serde(flatten)]
    event: &'a Event,
}

/// Writes events as JSON lines, flushing each so a follower sees it at once.
pub(crate) struct EventWriter<W: Write> {
    out: W,
}

impl<W: Write> EventWriter<W> {
    pub fn new(out: W) -> EventWriter<W> {
        EventWriter { out }
    }

    /// A closed pipe (the reader went away) is not an error worth stopping the session for.
    pub(crate) fn emit(&mut self, event: &Event) {
        match event.to_json() {
            Ok(mut bytes) => {
                bytes.push(b'\n');
                if let Err(e) = self.out.write_all(&bytes).and_then(|()| self.out.flush()) {
                    tracing::debug!(error = %e, "event stream not written");
                }
            }
            Err(e) => tracing::error!(error = %e, "event not serialisable"),
        }
    }
}
