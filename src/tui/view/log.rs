//! Recent `tracing` events, newest at the bottom, levels coloured, scrollable.

use super::{pane, pane_title};
use crate::tui::app::App;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

pub fn render(app: &App, frame: &mut Frame, area: Rect, focused: bool) {
    let t = app.settings.theme;
    let visible = area.height.saturating_sub(2) as usize;
    let total = app.logs.len();
    // `log_scroll` counts back from the newest line; never past the oldest page.
    let back = app.log_scroll.min(total.saturating_sub(visible));
    let end = total - back;
    let start = end.saturating_sub(visible);
    let lines: Vec<Line> = app.logs[start..end]
        .iter()
        .map(|l| {
            Line::from(vec![
                Span::styled(format!("{} ", l.time), t.dim()),
                Span::styled(format!("{:<5} ", l.level.as_str()), t.level(l.level)),
                Span::raw(l.text.clone()),
            ])
        })
        .collect();
    let mut title = pane_title(t, "Log", focused);
    if back > 0 {
        title
            .spans
            .push(Span::styled(format!("↑{back} (End: newest) "), t.warn()));
    }
    frame.render_widget(Paragraph::new(lines).block(pane(t, title, focused)), area);
}
