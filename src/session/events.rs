//! `--headless --json`: one JSON object per line on stdout, so scripts and log shippers can
//! follow a session as it happens. Every line has `ts` (RFC 3339, UTC) and `event`; the
//! shutdown events carry exactly the session report's shapes, so the two can be matched.

use super::CycleEvent;
use super::report::{ReportStats, SessionReport};
use crate::lifecycle::{CloseReport, StateChange, StepReport, SystemState};
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
        systems: Vec<SystemLine>,
    },
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
}

impl Event {
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
        let line = Line {
            ts: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            event,
        };
        match serde_json::to_vec(&line) {
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
