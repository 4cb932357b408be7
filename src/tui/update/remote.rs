//! A remote agent (attach): a fresh snapshot of it, its pause, the link to it.

use super::super::action::Command;
use super::super::app::{App, Connection, ShutdownState};
use crate::session::report::Reason;

/// A snapshot arrived: the agent as it is now (`shutting_down`: a quit was asked for).
pub(super) fn resync(app: &mut App, shutting_down: bool) -> Option<Command> {
    if !shutting_down && app.shutdown.is_some() {
        // A new agent on the same address: its life starts from nothing here too.
        app.shutdown = None;
        app.quit_requested = false;
        app.closed_by_user.clear();
        app.closing_by_user.clear();
    } else if shutting_down && app.shutdown.is_none() {
        app.shutdown = Some(ShutdownState::new(
            Reason::Quit,
            app.uptime,
            app.settings.grace,
            app.system_ids(),
        ));
        app.quit_requested = true;
    }
    None
}

pub(super) fn paused(app: &mut App, paused: bool) -> Option<Command> {
    app.paused = paused;
    None
}

/// The agent's uptime is `session` now: the header counts on from it.
pub(super) fn agent_clock(app: &mut App, session: std::time::Duration) -> Option<Command> {
    app.agent_clock = Some((session, app.uptime));
    None
}

pub(super) fn connection(app: &mut App, connection: Connection) -> Option<Command> {
    if connection == Connection::Ended {
        app.confirm_quit = false;
    }
    app.connection = connection;
    None
}
