//! `?`: every key, in a popup over the dashboard; it scrolls (↑/↓, PgUp/PgDn, Home/End)
//! when the terminal is too short for all of it, and says where it is.

use crate::tui::action::KEY_HELP;
use crate::tui::app::App;
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Clear, Paragraph};

/// The popup's shape on a terminal of `area`: its width, the width of the keys column, and
/// its lines (key, text), wrapped to that width.
struct Help {
    width: usize,
    key_width: usize,
    lines: Vec<(&'static str, String)>,
}

fn help(area: Rect) -> Help {
    let key_width = KEY_HELP
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0)
        + 2;
    let text_width = KEY_HELP
        .iter()
        .map(|(_, d)| d.chars().count())
        .max()
        .unwrap_or(0);
    // Borders, the space before the keys and one after the text.
    let width = (key_width + text_width + 4).min(area.width as usize);
    // On a narrow terminal the descriptions wrap under themselves rather than being cut.
    let room = width.saturating_sub(key_width + 4).max(1);
    let mut lines = Vec::new();
    for (key, what) in KEY_HELP {
        // A note that continues the entry above keeps its indent.
        let indent = what.len() - what.trim_start().len();
        let room = room.saturating_sub(indent);
        for (i, piece) in super::wrap_words(what, room, room).into_iter().enumerate() {
            let key = if i == 0 { key } else { "" };
            lines.push((key, format!("{:indent$}{piece}", "")));
        }
    }
    Help {
        width,
        key_width,
        lines,
    }
}

/// Lines the popup shows at once on a terminal of `area`.
pub(crate) fn page(area: Rect) -> usize {
    let lines = help(area).lines.len();
    (lines + 2).min(area.height as usize).saturating_sub(2)
}

/// The furthest the popup scrolls on a terminal of `area` (0: it shows everything).
pub(crate) fn max_scroll(area: Rect) -> usize {
    help(area).lines.len().saturating_sub(page(area))
}

pub fn render(app: &App, frame: &mut Frame, area: Rect) {
    let t = app.settings.theme;
    let Help {
        width,
        key_width,
        lines,
    } = help(area);
    let total = lines.len();
    let shown = page(area);
    let from = app.help_scroll.min(max_scroll(area));
    let visible: Vec<Line> = lines
        .into_iter()
        .skip(from)
        .take(shown)
        .map(|(key, text)| {
            Line::from(vec![
                Span::styled(format!(" {key:<key_width$}"), t.key()),
                Span::raw(text),
            ])
        })
        .collect();
    let popup = area.centered(
        Constraint::Length(width as u16),
        Constraint::Length((shown + 2) as u16),
    );
    // Too short for every line: where the view is, and how to move it, where the eye ends.
    let bottom = if shown < total {
        let mark = match (from > 0, from + shown < total) {
            (true, true) => "↑↓",
            (true, false) => "↑",
            _ => "↓",
        };
        format!(
            " {mark} {}–{} of {total} · ↑↓ PgUp PgDn scroll · Esc closes ",
            from + 1,
            from + shown
        )
    } else {
        " Esc or ? closes ".to_string()
    };
    // As narrow as the popup, the indicator keeps its figures.
    let bottom = if bottom.chars().count() + 2 > width && shown < total {
        format!(" {}–{} of {total} ", from + 1, from + shown)
    } else {
        bottom
    };
    let block = Block::bordered()
        .border_type(BorderType::Double)
        .border_style(t.accent())
        .title(Line::from(Span::styled(" Keys ", t.title())))
        .title_bottom(Line::from(Span::styled(bottom, t.dim())).right_aligned());
    frame.render_widget(Clear, popup);
    frame.render_widget(Paragraph::new(visible).block(block), popup);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_terminal_scrolls_the_help_as_far_as_its_last_line() {
        let short = Rect::new(0, 0, 80, 10);
        assert_eq!(page(short), 8);
        assert_eq!(max_scroll(short), help(short).lines.len() - 8);
        let tall = Rect::new(0, 0, 80, 60);
        assert_eq!(max_scroll(tall), 0, "everything shows: nothing to scroll");
    }
}
