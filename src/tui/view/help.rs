//! `?`: every key, in a popup over the dashboard.

use crate::tui::action::KEY_HELP;
use crate::tui::app::App;
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Clear, Paragraph};

pub fn render(app: &App, frame: &mut Frame, area: Rect) {
    let t = app.settings.theme;
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
    let mut lines: Vec<Line> = Vec::new();
    for (key, what) in KEY_HELP {
        // A note that continues the entry above keeps its indent.
        let indent = what.len() - what.trim_start().len();
        let room = room.saturating_sub(indent);
        for (i, piece) in super::wrap_words(what, room, room).into_iter().enumerate() {
            let key = if i == 0 { key } else { "" };
            lines.push(Line::from(vec![
                Span::styled(format!(" {key:<key_width$}"), t.key()),
                Span::raw(format!("{:indent$}{piece}", "")),
            ]));
        }
    }
    let height = (lines.len() + 2).min(area.height as usize);
    let popup = area.centered(
        Constraint::Length(width as u16),
        Constraint::Length(height as u16),
    );
    // Too short for every line: say how many are left out, where the eye ends.
    let shown = height.saturating_sub(2);
    let bottom = if shown < lines.len() {
        format!(
            " {} more: a taller terminal shows all ",
            lines.len() - shown
        )
    } else {
        " Esc or ? closes ".to_string()
    };
    let block = Block::bordered()
        .border_type(BorderType::Double)
        .border_style(t.accent())
        .title(Line::from(Span::styled(" Keys ", t.title())))
        .title_bottom(Line::from(Span::styled(bottom, t.dim())).right_aligned());
    frame.render_widget(Clear, popup);
    frame.render_widget(Paragraph::new(lines).block(block), popup);
}
