//! What can happen to the dashboard (`Action`) and what it asks of the engine (`Command`).
//! Terminal input becomes actions here, without looking at state: `tui::update` decides
//! what an action means in the current moment. Actions carry the state's types
//! (`app::Connection`); the state knows nothing of actions.

use crate::gameplay::GameStats;
use crate::lifecycle::{CloseReport, SystemSnapshot};
use crate::session::report::{Reason, SessionReport};
use crate::systems::SystemId;
use crossterm::event::{
    Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEventKind,
};
use std::time::Duration;

use crate::logging::LogLine;

#[derive(Debug, Clone)]
pub enum Action {
    // Keys.
    /// `q`, Ctrl+C: quit gracefully; again during shutdown: force what is left and exit.
    Quit,
    Up,
    Down,
    PageUp,
    PageDown,
    Home,
    End,
    FocusNext,
    FocusPrev,
    /// `x`: force-close the selected system.
    ForceClose,
    /// `c`: close the selected system gracefully.
    Close,
    /// `r`: reopen the selected system.
    Reopen,
    TogglePause,
    ToggleHelp,
    ToggleMouse,
    /// `Esc`: close a popup.
    Escape,
    /// `d`: leave a remote agent running and exit the viewer (attach only).
    Detach,
    /// `y`, `Enter`: yes to a question (the remote quit's confirmation); in the fleet
    /// table, open the selected agent.
    Confirm,
    /// Any other key (it shows the whole shutdown account, and ends the final panel).
    OtherKey,
    // Mouse (only with capture on).
    Click {
        column: u16,
        row: u16,
    },
    Wheel {
        up: bool,
        column: u16,
        row: u16,
    },
    Resize {
        width: u16,
        height: u16,
    },

    // Time and the engine.
    /// Time since the session started; drives uptime, animation and linger.
    Tick(Duration),
    Systems(Vec<SystemSnapshot>),
    Game(Box<GameStats>),
    Logs(Vec<LogLine>),
    /// Why trace export is failing ("connection refused"), or `None` while it works or is off.
    TracesFailing(Option<String>),
    /// A close or force-close the user asked for was accepted and is under way.
    UserCloseStarted {
        id: SystemId,
        forced: bool,
    },
    /// A close or force-close the user asked for has ended.
    UserCloseDone {
        report: CloseReport,
        forced: bool,
    },
    Reopened {
        id: SystemId,
    },
    /// The session's answer to a command that is not an error: refused (already closed,
    /// disabled…) or done at once.
    Notice(String),
    /// The session was asked to end (by a key, a signal, `--cycles`); shutdown is starting.
    ShutdownStarted(Reason),
    /// Shutdown began; the grace deadline is `deadline_in` from now.
    ShutdownBegin {
        grace: Duration,
        deadline_in: Duration,
    },
    SystemClosing(SystemId),
    /// `forced_by_user`: everything was being forced (second quit) when this closed, or
    /// this system was cut alone (`x` during the shutdown).
    SystemClosed {
        report: CloseReport,
        forced_by_user: bool,
    },
    /// A closing step after the systems (the metrics endpoint) ended.
    EndpointClosed(crate::lifecycle::StepReport),
    /// What the process-wide socket check found.
    Verified(crate::lifecycle::Verification),
    /// The session is over; `report_path`: where the report was written, if it was, else
    /// `report_error`: why not.
    Finished {
        report: Box<SessionReport>,
        report_path: Option<String>,
        report_error: Option<String>,
    },
    /// A process signal: show the account at once, no pacing, no linger, then exit.
    Hurry,
    /// Something went wrong that the user should know about, but the dashboard goes on.
    Problem(String),

    // A remote agent (attach).
    /// A snapshot arrived: the agent as it is now (`shutting_down`: a quit was asked for).
    /// Followed by `Systems`, `Game` and `Paused`.
    Resync {
        shutting_down: bool,
    },
    /// Whether the agent's gameplay is paused.
    Paused(bool),
    /// The agent's own uptime, as its snapshot or refresh said it now (the header's `up`).
    AgentClock(Duration),
    /// A line the agent logged, after those of `Logs`.
    Log(LogLine),
    /// The connection to the agent changed.
    Connection(super::app::Connection),
}

impl Action {
    /// A key the person at the dashboard pressed (not a click, an engine event or a timer).
    pub fn is_key(&self) -> bool {
        matches!(
            self,
            Action::Quit
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
        )
    }
}

/// Work for the runtime, against the engine or the terminal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Quit,
    ForceAll,
    ForceClose(SystemId),
    Close(SystemId),
    Reopen(SystemId),
    SetPaused(bool),
    SetMouseCapture(bool),
    /// Leave a remote agent running and exit the viewer.
    Detach,
    /// Leave: restore the terminal and print the summary.
    Exit,
}

/// The action for one terminal event, if it means anything.
pub(crate) fn from_event(event: &Event) -> Option<Action> {
    match event {
        Event::Key(key) => from_key(key),
        Event::Mouse(m) => match m.kind {
            MouseEventKind::Down(MouseButton::Left) => Some(Action::Click {
                column: m.column,
                row: m.row,
            }),
            MouseEventKind::ScrollUp => Some(Action::Wheel {
                up: true,
                column: m.column,
                row: m.row,
            }),
            MouseEventKind::ScrollDown => Some(Action::Wheel {
                up: false,
                column: m.column,
                row: m.row,
            }),
            _ => None,
        },
        Event::Resize(width, height) => Some(Action::Resize {
            width: *width,
            height: *height,
        }),
        _ => None,
    }
}

pub(crate) fn from_key(key: &KeyEvent) -> Option<Action> {
    // Releases are only reported with keyboard enhancement, which is not enabled; be safe.
    if key.kind == KeyEventKind::Release {
        return None;
    }
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    Some(match key.code {
        KeyCode::Char('c') | KeyCode::Char('C') if ctrl => Action::Quit,
        KeyCode::Char('q') | KeyCode::Char('Q') => Action::Quit,
        KeyCode::Up | KeyCode::Char('k') => Action::Up,
        KeyCode::Down | KeyCode::Char('j') => Action::Down,
        KeyCode::PageUp => Action::PageUp,
        KeyCode::PageDown => Action::PageDown,
        KeyCode::Home | KeyCode::Char('g') => Action::Home,
        KeyCode::End | KeyCode::Char('G') => Action::End,
        KeyCode::Tab => Action::FocusNext,
        KeyCode::BackTab => Action::FocusPrev,
        KeyCode::Char('x') => Action::ForceClose,
        KeyCode::Char('c') => Action::Close,
        KeyCode::Char('r') => Action::Reopen,
        KeyCode::Char('p') | KeyCode::Char(' ') => Action::TogglePause,
        KeyCode::Char('?') | KeyCode::F(1) => Action::ToggleHelp,
        KeyCode::Char('m') => Action::ToggleMouse,
        KeyCode::Esc => Action::Escape,
        KeyCode::Char('d') => Action::Detach,
        KeyCode::Char('y') | KeyCode::Char('Y') | KeyCode::Enter => Action::Confirm,
        _ => Action::OtherKey,
    })
}

/// Every key, for the help popup: (keys, what they do).
pub(crate) const KEY_HELP: [(&str, &str); 16] = [
    ("q  Ctrl+C", "quit: close every connection gracefully"),
    ("q  (again)", "during shutdown: force the rest and exit"),
    ("↑ ↓  k j", "select a system / scroll the focused pane"),
    ("PgUp PgDn", "scroll a page; Home/End (g/G) jump"),
    ("x", "force-close the selected system now"),
    ("", "  during shutdown too: its close is cut now"),
    ("c", "close the selected system gracefully"),
    ("r", "reopen the selected system (when closed)"),
    ("p  Space", "pause / resume the gameplay"),
    ("Tab  ⇧Tab", "focus the next / previous pane"),
    ("m", "mouse on/off (click a row to select it)"),
    ("", "  mouse on blocks the terminal's text selection"),
    ("?  F1", "this help (↑↓ PgUp PgDn scroll it)"),
    ("Esc", "close this help"),
    ("any key", "during shutdown: the whole account now"),
    ("any key", "on the final panel: exit now"),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crossterm::event::{KeyEventState, MouseEvent};

    fn key(code: KeyCode, modifiers: KeyModifiers) -> Event {
        Event::Key(KeyEvent {
            code,
            modifiers,
            kind: KeyEventKind::Press,
            state: KeyEventState::NONE,
        })
    }

    #[test]
    fn keys_map_to_actions() {
        let none = KeyModifiers::NONE;
        assert!(matches!(
            from_event(&key(KeyCode::Char('q'), none)),
            Some(Action::Quit)
        ));
        assert!(matches!(
            from_event(&key(KeyCode::Char('c'), KeyModifiers::CONTROL)),
            Some(Action::Quit)
        ));
        assert!(matches!(
            from_event(&key(KeyCode::Char('c'), none)),
            Some(Action::Close)
        ));
        assert!(matches!(
            from_event(&key(KeyCode::Char('j'), none)),
            Some(Action::Down)
        ));
        assert!(matches!(
            from_event(&key(KeyCode::Up, none)),
            Some(Action::Up)
        ));
        assert!(matches!(
            from_event(&key(KeyCode::Char('x'), none)),
            Some(Action::ForceClose)
        ));
        assert!(matches!(
            from_event(&key(KeyCode::Char('?'), none)),
            Some(Action::ToggleHelp)
        ));
        assert!(matches!(
            from_event(&key(KeyCode::Tab, none)),
            Some(Action::FocusNext)
        ));
        assert!(matches!(
            from_event(&key(KeyCode::Char('z'), none)),
            Some(Action::OtherKey)
        ));
        let release = Event::Key(KeyEvent {
            code: KeyCode::Char('q'),
            modifiers: none,
            kind: KeyEventKind::Release,
            state: KeyEventState::NONE,
        });
        assert!(from_event(&release).is_none());
    }

    #[test]
    fn mouse_and_resize_map_to_actions() {
        let click = Event::Mouse(MouseEvent {
            kind: MouseEventKind::Down(MouseButton::Left),
            column: 3,
            row: 7,
            modifiers: KeyModifiers::NONE,
        });
        assert!(matches!(
            from_event(&click),
            Some(Action::Click { column: 3, row: 7 })
        ));
        assert!(matches!(
            from_event(&Event::Resize(100, 30)),
            Some(Action::Resize {
                width: 100,
                height: 30
            })
        ));
        assert!(from_event(&Event::FocusGained).is_none());
    }
}
