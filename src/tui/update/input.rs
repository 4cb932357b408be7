//! Keys, navigation and the mouse: what the person at the dashboard asks, judged against
//! the moment (the final panel, a remote agent's question, a popup, the shutdown).

use super::super::action::{Action, Command};
use super::super::app::{App, Connection, Pane, Phase};

pub(super) fn input(app: &mut App, action: Action) -> Option<Command> {
    let phase = app.phase();
    // The final panel, and a remote agent that has exited, end on any key.
    if action.is_key()
        && (phase == Phase::Final || (app.is_remote() && app.connection == Connection::Ended))
    {
        return Some(Command::Exit);
    }
    // Any key during the paced account shows it whole at once (then does what it does).
    if action.is_key()
        && phase == Phase::ShuttingDown
        && let Some(sd) = app.shutdown.as_mut()
    {
        sd.skip(app.uptime);
    }
    match action {
        Action::Detach if phase != Phase::Final => app.is_remote().then_some(Command::Detach),
        // The remote quit's question: yes (q again, y, Enter) or no (anything else).
        Action::Quit | Action::Confirm if app.confirm_quit => {
            app.confirm_quit = false;
            app.quit_requested = true;
            app.notify("asking the agent to quit…", false);
            Some(Command::Quit)
        }
        // Quit, Confirm and Detach are taken above.
        action if app.confirm_quit && action.is_key() => {
            app.confirm_quit = false;
            app.notify("quit cancelled: the agent goes on", false);
            None
        }
        Action::Quit
        | Action::ForceClose
        | Action::Close
        | Action::Reopen
        | Action::TogglePause
            if app.watch_only() && phase != Phase::Final =>
        {
            app.notify(
                "watching only: no control token (--token-file, SINGULARIS_CONTROL_TOKEN or the token file)",
                true,
            );
            None
        }
        Action::Quit => quit(app, phase),
        Action::ToggleHelp => {
            app.help_open = !app.help_open;
            app.help_scroll = 0;
            None
        }
        Action::Escape => {
            app.help_open = false;
            None
        }
        Action::ToggleMouse => toggle_mouse(app),
        // A popup is modal: the arrows and pages scroll it, other keys just close it.
        Action::Up
        | Action::Down
        | Action::PageUp
        | Action::PageDown
        | Action::Home
        | Action::End
            if app.help_open =>
        {
            scroll_help(app, &action);
            None
        }
        _ if app.help_open && !matches!(action, Action::Click { .. } | Action::Wheel { .. }) => {
            app.help_open = false;
            None
        }
        Action::ForceClose | Action::Close | Action::Reopen => act_on_selected(app, &action),
        Action::TogglePause => toggle_pause(app),
        action => {
            navigate(app, action);
            None
        }
    }
}

/// `q`: a remote agent asks first; the first quit closes gracefully, the second forces.
fn quit(app: &mut App, phase: Phase) -> Option<Command> {
    app.help_open = false;
    if app.is_remote() && !app.quit_requested && phase == Phase::Running {
        app.confirm_quit = true;
        return None;
    }
    if !app.quit_requested {
        app.quit_requested = true;
        app.notify(
            "closing every connection… (q again forces and exits)",
            false,
        );
        return Some(Command::Quit);
    }
    // Again: cut what is left and leave as soon as it is done, as a second signal does
    // (the account is printed on the restored terminal).
    app.hurry = true;
    if let Some(sd) = app.shutdown.as_mut() {
        sd.skip(app.uptime);
    }
    let already = app.shutdown.as_ref().is_some_and(|s| s.force_requested);
    if already {
        return None;
    }
    if let Some(sd) = app.shutdown.as_mut() {
        sd.force_requested = true;
    }
    app.notify("forcing what is left closed; exiting once it is", true);
    Some(Command::ForceAll)
}

/// The help popup's arrows and pages; the popup keeps the position within what it holds.
fn scroll_help(app: &mut App, action: &Action) {
    let page = crate::tui::view::help::page(app.area).max(1);
    let max = crate::tui::view::help::max_scroll(app.area);
    let at = app.help_scroll.min(max);
    app.help_scroll = match action {
        Action::Up => at.saturating_sub(1),
        Action::Down => at + 1,
        Action::PageUp => at.saturating_sub(page),
        Action::PageDown => at + page,
        Action::Home => 0,
        Action::End => max,
        _ => at,
    }
    .min(max);
}

fn toggle_mouse(app: &mut App) -> Option<Command> {
    app.mouse_capture = !app.mouse_capture;
    app.notify(
        if app.mouse_capture {
            "mouse on: click a row to select it (m turns it off to copy text)"
        } else {
            "mouse off: the terminal selects text again"
        },
        false,
    );
    Some(Command::SetMouseCapture(app.mouse_capture))
}

fn toggle_pause(app: &mut App) -> Option<Command> {
    if app.shutdown.is_some() || app.quit_requested {
        return None;
    }
    app.paused = !app.paused;
    app.notify(
        if app.paused {
            "gameplay paused (p resumes)"
        } else {
            "gameplay resumed"
        },
        false,
    );
    Some(Command::SetPaused(app.paused))
}

/// The user's `x` / `c` / `r` on the selected system (during the shutdown, the one selected
/// in the account). The session judges it against the system's real state (this table may
/// be a refresh behind), answers and records it: during the shutdown `x` cuts that system's
/// close now, and `c` and `r` are refused.
fn act_on_selected(app: &mut App, action: &Action) -> Option<Command> {
    let id = app.selected_system()?.id;
    match action {
        Action::ForceClose => Some(Command::ForceClose(id)),
        Action::Close => Some(Command::Close(id)),
        Action::Reopen => Some(Command::Reopen(id)),
        _ => None,
    }
}

/// Moving within and between the panes, by key, click or wheel.
fn navigate(app: &mut App, action: Action) {
    match action {
        Action::Up => app.scroll(app.focus, -1),
        Action::Down => app.scroll(app.focus, 1),
        Action::PageUp => {
            let page = app.page(app.focus) as isize;
            app.scroll(app.focus, -page);
        }
        Action::PageDown => {
            let page = app.page(app.focus) as isize;
            app.scroll(app.focus, page);
        }
        Action::Home => app.scroll(app.focus, -(u16::MAX as isize)),
        Action::End => {
            app.scroll(app.focus, u16::MAX as isize);
            if app.focus == Pane::Log {
                app.log_scroll = 0;
            }
        }
        Action::FocusNext => app.focus = app.focus.next(),
        Action::FocusPrev => app.focus = app.focus.prev(),
        Action::Click { column, row } => app.click(column, row),
        Action::Wheel { up, column, row } => {
            if let Some(pane) = app.pane_at(column, row) {
                app.scroll(pane, if up { -1 } else { 1 });
            }
        }
        // Detach (local), Confirm (no question), any other key; the rest are not input.
        _ => {}
    }
}
