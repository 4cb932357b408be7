//! What only a remote agent's dashboard shows (attach): the connection banner in the header
//! row, and the question before a remote quit.

use crate::tui::app::{App, Connection, Source};
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Clear, Paragraph, Wrap};

/// The banner that takes the header's place while the link is down or after the agent
/// exited; `false`: none (the header is drawn).
pub fn banner(app: &App, frame: &mut Frame, area: Rect) -> bool {
    let t = app.settings.theme;
    let Source::Remote { url, .. } = &app.source else {
        return false;
    };
    let line = match &app.connection {
        Connection::Live => return false,
        Connection::Reconnecting {
            attempt,
            next_in,
            since,
            why,
        } => {
            let left = (*since + *next_in).saturating_sub(app.uptime);
            Line::from(vec![
                Span::styled(format!("⟳ reconnecting to {url}"), t.bad()),
                Span::styled(
                    format!(
                        " · attempt {attempt}, next in {:.1} s · {}",
                        left.as_secs_f64(),
                        super::shorten(why, 60)
                    ),
                    t.warn(),
                ),
            ])
        }
        Connection::Ended => Line::from(vec![
            Span::styled(format!("agent exited ({url})"), t.accent()),
            Span::styled(" · its account as it streamed it · any key leaves", t.dim()),
        ]),
    };
    frame.render_widget(Paragraph::new(line), area);
    true
}

/// "Quit the agent?" over the dashboard.
pub fn confirm_quit(app: &App, frame: &mut Frame, area: Rect) {
    let t = app.settings.theme;
    let url = match &app.source {
        Source::Remote { url, .. } => url.as_str(),
        Source::Local => "this session",
    };
    let lines = vec![
        Line::from(Span::styled(format!("Quit the agent at {url}?"), t.title())),
        Line::from("It closes every connection and exits; you see its account."),
        Line::from(""),
        Line::from(vec![
            Span::styled("y", t.key()),
            Span::raw(" / "),
            Span::styled("q", t.key()),
            Span::raw(" / "),
            Span::styled("Enter", t.key()),
            Span::raw(" quit the agent    "),
            Span::styled("any other key", t.key()),
            Span::raw(" no"),
        ]),
        Line::from(vec![
            Span::styled("d", t.key()),
            Span::raw(" leaves the agent running and detaches"),
        ]),
    ];
    let width = 64.min(area.width);
    let height = (lines.len() as u16 + 2).min(area.height);
    let popup = area.centered(Constraint::Length(width), Constraint::Length(height));
    let block = Block::bordered()
        .border_type(BorderType::Double)
        .border_style(t.warn())
        .title(Line::from(Span::styled(" Quit the agent ", t.title())));
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(block),
        popup,
    );
}
