//! Colours and marks. With `NO_COLOR` set every style is plain, so nothing on screen may
//! depend on colour alone: states carry a symbol and a word, the selected row a `>` marker,
//! the focused pane a thick border.

use crate::lifecycle::{CloseOutcome, SystemState};
use ratatui::style::{Color, Modifier, Style};
use tracing::Level;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Theme {
    pub color: bool,
}

impl Theme {
    pub const COLOR: Theme = Theme { color: true };
    pub const PLAIN: Theme = Theme { color: false };

    /// no-color.org: colour is off when `NO_COLOR` is present and not empty.
    pub(crate) fn from_env() -> Theme {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        if no_color { Theme::PLAIN } else { Theme::COLOR }
    }

    fn fg(self, c: Color) -> Style {
        if self.color {
            Style::new().fg(c)
        } else {
            Style::new()
        }
    }

    fn modifier(self, m: Modifier) -> Style {
        if self.color {
            Style::new().add_modifier(m)
        } else {
            Style::new()
        }
    }

    pub fn plain(self) -> Style {
        Style::new()
    }

    pub(crate) fn dim(self) -> Style {
        self.fg(Color::DarkGray)
    }

    pub(crate) fn title(self) -> Style {
        self.modifier(Modifier::BOLD)
    }

    pub(crate) fn accent(self) -> Style {
        self.fg(Color::Cyan)
    }

    pub fn key(self) -> Style {
        self.fg(Color::Yellow).patch(self.modifier(Modifier::BOLD))
    }

    pub fn good(self) -> Style {
        self.fg(Color::Green)
    }

    pub(crate) fn warn(self) -> Style {
        self.fg(Color::Yellow)
    }

    pub fn bad(self) -> Style {
        self.fg(Color::Red)
    }

    pub(crate) fn selected_row(self) -> Style {
        if self.color {
            Style::new()
                .bg(Color::Rgb(40, 44, 52))
                .add_modifier(Modifier::BOLD)
        } else {
            Style::new()
        }
    }

    pub fn border(self, focused: bool) -> Style {
        if focused {
            self.fg(Color::Cyan)
        } else {
            self.dim()
        }
    }

    pub fn state(self, s: SystemState) -> Style {
        match s {
            SystemState::Open => self.fg(Color::Green),
            SystemState::Idle => self.fg(Color::Cyan),
            SystemState::Closing => self.fg(Color::Yellow),
            SystemState::Closed => self.fg(Color::Gray),
            SystemState::Error => self.fg(Color::Red),
            SystemState::Disabled => self.dim(),
        }
    }

    pub fn outcome(self, o: CloseOutcome) -> Style {
        match o {
            CloseOutcome::Closed => self.good(),
            CloseOutcome::Forced => self.fg(Color::Magenta),
            CloseOutcome::Error => self.bad(),
            CloseOutcome::Skipped => self.dim(),
            CloseOutcome::Unverified => self.fg(Color::Yellow),
        }
    }

    pub fn level(self, l: Level) -> Style {
        match l {
            Level::ERROR => self.fg(Color::Red).patch(self.modifier(Modifier::BOLD)),
            Level::WARN => self.fg(Color::Yellow),
            Level::INFO => self.fg(Color::Green),
            Level::DEBUG => self.fg(Color::Blue),
            Level::TRACE => self.dim(),
        }
    }
}

/// The symbol before a state's word.
pub(crate) fn state_symbol(s: SystemState) -> &'static str {
    match s {
        SystemState::Open => "●",
        SystemState::Idle => "○",
        SystemState::Closing => "◐",
        SystemState::Closed => "■",
        SystemState::Error => "⚠",
        SystemState::Disabled => "–",
    }
}

/// The symbol of a close outcome, as in the headless lines.
pub(crate) fn outcome_symbol(o: CloseOutcome) -> &'static str {
    match o {
        CloseOutcome::Closed => "✓",
        CloseOutcome::Forced => "✗",
        CloseOutcome::Error => "⚠",
        CloseOutcome::Skipped => "–",
        CloseOutcome::Unverified => "?",
    }
}

pub(crate) const SPINNER: [&str; 10] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];
