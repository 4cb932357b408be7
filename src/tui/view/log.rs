//! Recent `tracing` events, newest at the bottom, levels coloured, scrollable.

use super::{pane, pane_title};
use crate::tui::app::App;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

/// Continuation lines of a wrapped entry are indented this much, under its text.
const INDENT: usize = 2;

pub fn render(app: &App, frame: &mut Frame, area: Rect, focused: bool) {
    let t = app.settings.theme;
    let visible = area.height.saturating_sub(2) as usize;
    let width = area.width.saturating_sub(2) as usize;
    let total = app.logs.len();
    // `log_scroll` counts entries back from the newest; never past the oldest.
    let back = app.log_scroll.min(total.saturating_sub(1));
    let end = total - back;
    // Entries wrap (a cut line reads `request failed syste`), so fill the pane from the
    // newest entry up; the oldest one shown may lose its first lines.
    let mut lines: Vec<Line> = Vec::new();
    for l in app.logs[..end].iter().rev() {
        if lines.len() >= visible {
            break;
        }
        let head = format!("{} {:<5} ", l.time, l.level.as_str());
        let first = width.saturating_sub(head.chars().count());
        let rest = width.saturating_sub(INDENT);
        let mut text = super::wrap_words(&l.text, first, rest).into_iter();
        let mut entry = vec![Line::from(vec![
            Span::styled(format!("{} ", l.time), t.dim()),
            Span::styled(format!("{:<5} ", l.level.as_str()), t.level(l.level)),
            Span::raw(text.next().unwrap_or_default()),
        ])];
        entry.extend(text.map(|piece| Line::from(format!("{:INDENT$}{piece}", ""))));
        // An entry that does not fit whole keeps its beginning (time, level, what
        // happened), marked as cut.
        let room = visible - lines.len();
        if entry.len() > room {
            entry.truncate(room);
            if let Some(last) = entry.last_mut() {
                last.spans.push(Span::styled("…", t.dim()));
            }
        }
        lines.extend(entry.into_iter().rev());
    }
    lines.reverse();
    let mut title = pane_title(t, "Log", focused);
    if back > 0 {
        title
            .spans
            .push(Span::styled(format!("↑{back} (End: newest) "), t.warn()));
    }
    frame.render_widget(Paragraph::new(lines).block(pane(t, title, focused)), area);
}
