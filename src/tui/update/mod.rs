//! The one function that changes the dashboard's state, [`update`]: pure (no terminal, no
//! engine), it returns a [`Command`] for the runtime to carry out. It hands each action to
//! the handler of its concern:
//! - `news`: what the session reports (time, the systems, the game, the log pane, the
//!   answers to the user's closes and reopens, notices);
//! - `shutdown`: the shutdown account as it arrives, to the final panel;
//! - `remote`: a remote agent's link and state (attach);
//! - `input`: keys, navigation and the mouse.

mod input;
mod news;
mod remote;
mod shutdown;

use super::action::{Action, Command};
use super::app::{App, StepKind};
use ratatui::layout::Rect;

/// Apply one action; what the runtime must do about it, if anything.
pub fn update(app: &mut App, action: Action) -> Option<Command> {
    match action {
        Action::Tick(now) => news::tick(app, now),
        Action::Systems(systems) => news::systems(app, systems),
        Action::Game(game) => news::game(app, *game),
        Action::Logs(lines) => news::logs(app, lines),
        Action::TracesFailing(why) => {
            app.traces_failing = why;
            None
        }
        Action::Resize { width, height } => {
            app.area = Rect::new(0, 0, width, height);
            None
        }
        Action::UserCloseStarted { id, forced } => news::user_close_started(app, id, forced),
        Action::UserCloseDone { report, forced } => news::user_close_done(app, report, forced),
        Action::Reopened { id } => news::reopened(app, id),
        Action::Notice(text) => news::notice(app, text, false),
        Action::Problem(text) => news::notice(app, text, true),
        Action::Hurry => {
            app.hurry = true;
            if let Some(sd) = app.shutdown.as_mut() {
                sd.skip(app.uptime);
            }
            None
        }
        Action::ShutdownStarted(reason) => shutdown::started(app, reason),
        Action::ShutdownBegin { grace, deadline_in } => shutdown::begin(app, grace, deadline_in),
        Action::SystemClosing(id) => shutdown::step(app, StepKind::Closing(id)),
        Action::SystemClosed {
            report,
            forced_by_user,
        } => shutdown::step(
            app,
            StepKind::Closed {
                report,
                forced_by_user,
            },
        ),
        Action::EndpointClosed(report) => shutdown::step(app, StepKind::Endpoint(report)),
        Action::Verified(check) => shutdown::verified(app, check),
        Action::Finished {
            report,
            report_path,
            report_error,
        } => shutdown::finished(app, report, report_path, report_error),
        Action::Resync { shutting_down } => remote::resync(app, shutting_down),
        Action::Paused(paused) => remote::paused(app, paused),
        Action::AgentClock(session) => remote::agent_clock(app, session),
        Action::Log(line) => news::log(app, line),
        Action::Connection(connection) => remote::connection(app, connection),
        input @ (Action::Quit
        | Action::Up
        | Action::Down
        | Action::PageUp
        | Action::PageDown
        | Action::Home
        | Action::End
        | Action::FocusNext
        | Action::FocusPrev
        | Action::ForceClose
        | Action::Close
        | Action::Reopen
        | Action::TogglePause
        | Action::ToggleHelp
        | Action::ToggleMouse
        | Action::Escape
        | Action::Detach
        | Action::Confirm
        | Action::OtherKey
        | Action::Click { .. }
        | Action::Wheel { .. }) => input::input(app, input),
    }
}
