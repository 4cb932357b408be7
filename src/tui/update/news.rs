//! What the session reports: time, the systems, the game, the log pane, and its answers to
//! the user's closes and reopens.

use super::super::action::Command;
use super::super::app::App;
use crate::gameplay::GameStats;
use crate::lifecycle::{CloseOutcome, CloseReport, SystemSnapshot, SystemState};
use crate::logging::LogLine;
use crate::session::summary;
use crate::systems::SystemId;
use std::time::Duration;

/// Time moves: uptime, the wait the game is on, the shutdown account's pace, and the end
/// of the final panel's linger.
pub(super) fn tick(app: &mut App, now: Duration) -> Option<Command> {
    app.uptime = now;
    app.waiting = waited(&app.game);
    let (hurry, pace) = (app.hurry, app.settings.step);
    let linger = app.linger();
    let sd = app.shutdown.as_mut()?;
    // A signal, a second quit or a key asked for the account at once.
    let step = if hurry || sd.skipped {
        Duration::ZERO
    } else {
        pace
    };
    sd.advance(now, step);
    match sd.final_since {
        Some(since) if now >= since + linger => Some(Command::Exit),
        _ => None,
    }
}

pub(super) fn systems(app: &mut App, systems: Vec<SystemSnapshot>) -> Option<Command> {
    app.systems = systems;
    app.select(app.selected);
    // A system the user closed that is open again (reopened) is no longer theirs.
    let open: Vec<SystemId> = app
        .systems
        .iter()
        .filter(|s| !matches!(s.state, SystemState::Closed | SystemState::Closing))
        .map(|s| s.id)
        .collect();
    app.closed_by_user.retain(|id, _| !open.contains(id));
    app.sample_requests();
    None
}

pub(super) fn game(app: &mut App, game: GameStats) -> Option<Command> {
    // The one notice about sound (no device...), once.
    if !app.audio_notice_shown
        && let Some(text) = game.audio_notice.clone()
    {
        app.audio_notice_shown = true;
        app.notify(text, false);
    }
    app.game = game;
    app.waiting = waited(&app.game);
    None
}

/// The log pane's lines; a scroll back stays within them.
pub(super) fn logs(app: &mut App, lines: Vec<LogLine>) -> Option<Command> {
    app.logs = lines;
    app.log_scroll = app.log_scroll.min(app.logs.len().saturating_sub(1));
    None
}

/// One more line (a remote agent's): the pane keeps the last [`LOG_KEEP`]; a scroll back
/// stays on the line it shows.
pub(super) fn log(app: &mut App, line: LogLine) -> Option<Command> {
    if app.logs.len() >= LOG_KEEP {
        let extra = app.logs.len() + 1 - LOG_KEEP;
        app.logs.drain(..extra);
    }
    app.logs.push(line);
    if app.log_scroll > 0 {
        app.log_scroll += 1;
    }
    app.log_scroll = app.log_scroll.min(app.logs.len().saturating_sub(1));
    None
}

/// The most lines the log pane holds (as many as the local log's ring).
pub const LOG_KEEP: usize = crate::logging::LOG_CAPACITY;

pub(super) fn user_close_started(app: &mut App, id: SystemId, forced: bool) -> Option<Command> {
    app.closing_by_user.insert(id);
    let name = id.display_name();
    if forced {
        app.notify(format!("force-closing {name}…"), false);
    } else {
        app.notify(format!("closing {name}…"), false);
    }
    None
}

pub(super) fn user_close_done(app: &mut App, report: CloseReport, forced: bool) -> Option<Command> {
    app.closing_by_user.remove(&report.name);
    // A graceful close cut at its deadline was forced too, though not by a key: the row must
    // not say "closed by you" over a forced close.
    let ended_forced = forced || report.outcome == CloseOutcome::Forced;
    app.closed_by_user.insert(report.name, ended_forced);
    let line = summary::step_line(&report, app.settings.grace.as_millis() as u64, forced);
    let bad = report.outcome == CloseOutcome::Error;
    app.notify(line.trim_start_matches("[CLEANUP] ").to_string(), bad);
    None
}

pub(super) fn reopened(app: &mut App, id: SystemId) -> Option<Command> {
    app.closed_by_user.remove(&id);
    app.notify(format!("{} reopened", id.display_name()), false);
    None
}

/// The session's answer that is not an error, or (`bad`) a problem the user should know of.
pub(super) fn notice(app: &mut App, text: String, bad: bool) -> Option<Command> {
    app.notify(text, bad);
    None
}

/// The longest wait of the cycle in progress, measured now.
fn waited(game: &GameStats) -> Option<(SystemId, Duration)> {
    game.longest_wait().map(|(id, since)| (id, since.elapsed()))
}
