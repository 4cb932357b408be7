//! The shutdown account as it arrives: its start, each step, the process-wide check and the
//! report, which the final panel shows.

use super::super::action::Command;
use super::super::app::{App, ShutdownState, Step, StepKind};
use crate::lifecycle::Verification;
use crate::session::report::{Reason, SessionReport};
use std::time::Duration;

/// The session was asked to end (a key, a signal, `--cycles`).
pub(super) fn started(app: &mut App, reason: Reason) -> Option<Command> {
    if app.shutdown.is_none() {
        let ids = app.system_ids();
        app.shutdown = Some(ShutdownState::new(
            reason,
            app.uptime,
            app.settings.grace,
            ids,
        ));
        app.quit_requested = true;
        app.help_open = false;
        // The account says what is going on now; a notice from here on answers a key.
        app.notice = None;
    }
    None
}

/// The closing began: the grace deadline is `deadline_in` from now.
pub(super) fn begin(app: &mut App, grace: Duration, deadline_in: Duration) -> Option<Command> {
    let now = app.uptime;
    let ids = app.system_ids();
    let sd = app
        .shutdown
        .get_or_insert_with(|| ShutdownState::new(Reason::Quit, now, grace, ids));
    sd.grace = grace;
    sd.deadline_at = Some(now + deadline_in);
    None
}

/// A system closing or closed, or a step after the systems, in arrival order.
pub(super) fn step(app: &mut App, kind: StepKind) -> Option<Command> {
    let now = app.uptime;
    if let Some(sd) = app.shutdown.as_mut() {
        sd.steps.push(Step { arrived: now, kind });
    }
    None
}

pub(super) fn verified(app: &mut App, check: Verification) -> Option<Command> {
    let now = app.uptime;
    if let Some(sd) = app.shutdown.as_mut() {
        sd.verified = Some((check, now));
    }
    None
}

pub(super) fn finished(
    app: &mut App,
    report: Box<SessionReport>,
    report_path: Option<String>,
    report_error: Option<String>,
) -> Option<Command> {
    if let Some(sd) = app.shutdown.as_mut() {
        sd.report = Some(report);
        sd.report_path = report_path;
        sd.report_error = report_error;
    }
    None
}
