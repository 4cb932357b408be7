//! `--headless --json`, and the control endpoint's stream: the session's events in the
//! protocol crate's types (`singularis_protocol`, ARCHITECTURE.md "The control endpoint"),
//! one JSON object per line. Every line has `ts` (RFC 3339, UTC) and `event`; the first
//! (`session_started`, a viewer's `snapshot`) has the protocol's version, `protocol`; the
//! shutdown events carry exactly the session report's shapes, so the two can be matched.
//!
//! The engine's and the game's own types stay theirs: `ToProtocol` is how each is told on
//! the stream (the viewer's way back is `attach::convert`).

use super::report::SessionReport;
use super::to_protocol::ToProtocol;
use crate::lifecycle::{BreakerChange, ShutdownEvent, StateChange, SystemSnapshot};
use singularis_protocol as p;
pub use singularis_protocol::{Event, Line, Refresh, SessionInfo, Snapshot, SystemLine};
use std::io::Write;

/// A shutdown step as its event; `reason` is why the session is shutting down.
pub fn from_shutdown(ev: ShutdownEvent, reason: &str) -> Event {
    match ev {
        ShutdownEvent::Begin { grace, .. } => Event::ShutdownStarted {
            reason: reason.to_string(),
            grace_ms: grace.as_millis() as u64,
        },
        // Not relayed to the stream (session/shutdown.rs); told as its system's `closing`.
        ShutdownEvent::Closing(id) | ShutdownEvent::Released(id) => Event::Closing {
            name: id.name().to_string(),
        },
        ShutdownEvent::Closed(r) => Event::Closed(r.to_protocol()),
        ShutdownEvent::StepClosed(r) => Event::EndpointClosed(r.to_protocol()),
        ShutdownEvent::Verified(check) => Event::Verified(check.to_protocol()),
    }
}

/// A system's state change as its event.
pub fn state(change: StateChange) -> Event {
    Event::State(change.to_protocol())
}

/// A breaker's change as its event.
pub fn breaker(change: BreakerChange) -> Event {
    Event::Breaker(change.to_protocol())
}

/// The session as it starts: what it is, and each system's first state.
pub fn session_started(session: SessionInfo, systems: &[SystemSnapshot]) -> Event {
    Event::SessionStarted {
        protocol: p::PROTOCOL,
        session,
        systems: systems
            .iter()
            .map(|s| SystemLine {
                name: s.id.name().to_string(),
                state: s.state.to_protocol(),
                reason: s.disabled_reason.clone(),
            })
            .collect(),
    }
}

/// The shutdown's totals, from the report.
pub fn shutdown_complete(r: &SessionReport) -> Event {
    let s = &r.shutdown.report;
    Event::ShutdownComplete(p::ShutdownComplete {
        reason: r.shutdown.reason.name().to_string(),
        grace_ms: s.grace_ms,
        total_ms: s.total_ms,
        closed: s.closed as u64,
        forced: s.forced as u64,
        errors: s.errors as u64,
        skipped: s.skipped as u64,
        unverified: s.unverified as u64,
        cancelled: s.cancelled,
        sockets_open_after: s.sockets_open_after.map(|n| n as u64),
        verified: s.verified,
        unverified_reason: s.unverified_reason.clone(),
    })
}

/// The session's end: its exit code, where its report is (or why it is not), its figures.
pub fn session_ended(end: &super::SessionEnd) -> Event {
    Event::SessionEnded {
        exit_code: end.exit_code(),
        report: end.report_path.as_ref().map(|p| p.display().to_string()),
        report_error: end.report_error.clone(),
        stats: Box::new(end.report.stats.to_protocol()),
    }
}

/// The event as one line of the stream (`ts` now), without a newline.
pub fn to_json(event: &Event) -> serde_json::Result<Vec<u8>> {
    let ts = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    event.to_line(&ts)
}

/// Writes events as JSON lines, flushing each so a follower sees it at once.
pub(crate) struct EventWriter<W: Write> {
    out: W,
    output: super::summary::Output,
}

impl<W: Write> EventWriter<W> {
    pub fn new(out: W) -> EventWriter<W> {
        EventWriter {
            out,
            output: Default::default(),
        }
    }

    /// A closed pipe (the reader went away) is not an error worth stopping the session for;
    /// another failure is kept for [`failure`](Self::failure). After either, nothing more
    /// is written.
    pub(crate) fn emit(&mut self, event: &Event) {
        if !self.output.open() {
            return;
        }
        match to_json(event) {
            Ok(mut bytes) => {
                bytes.push(b'\n');
                let written = self.out.write_all(&bytes).and_then(|()| self.out.flush());
                self.output.note(written);
            }
            Err(e) => tracing::error!(error = %e, "event not serialisable"),
        }
    }

    /// Why the stream did not reach its reader, if it did not (a reader that went away is
    /// not a failure).
    pub(crate) fn failure(&self) -> Option<&std::io::Error> {
        self.output.failure()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Failing(i32);

    impl Write for Failing {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::from_raw_os_error(self.0))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Err(std::io::Error::from_raw_os_error(self.0))
        }
    }

    /// `--json > /dev/full` loses the stream: the failure is kept (said, exit status 1); a
    /// reader that went away is not a failure.
    #[test]
    fn a_full_disk_fails_the_stream_and_a_closed_pipe_does_not() {
        let event = Event::Lagged { missed: 1 };
        let mut full = EventWriter::new(Failing(libc::ENOSPC));
        full.emit(&event);
        full.emit(&event);
        assert_eq!(
            full.failure().and_then(|e| e.raw_os_error()),
            Some(libc::ENOSPC)
        );
        let mut closed = EventWriter::new(Failing(libc::EPIPE));
        closed.emit(&event);
        assert!(closed.failure().is_none());
        let mut fine = EventWriter::new(Vec::new());
        fine.emit(&event);
        assert!(fine.failure().is_none());
        assert!(fine.out.ends_with(b"\n"));
    }
}
