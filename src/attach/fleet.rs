//! The fleet: several agents, one row each; Enter opens one's dashboard (the same `App` and
//! view as a single attach), Esc comes back. Each agent keeps its own `App`, fed by its own
//! connection, whether it is open or not.

use crate::lifecycle::{CloseOutcome, SystemState};
use crate::tui::app::{App, Connection, Phase, StepKind};
use crate::tui::theme::Theme;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Cell, Paragraph, Row, Table};

pub struct Agent {
    /// A config name, else the URL's host:port.
    pub name: String,
    pub url: String,
    pub app: App,
}

pub struct Fleet {
    pub agents: Vec<Agent>,
    pub selected: usize,
    /// The agent whose dashboard is open.
    pub open: Option<usize>,
    pub theme: Theme,
}

/// The name an agent is shown by: its URL's host:port.
pub fn name_of(url: &str) -> String {
    url.split_once("://")
        .map_or(url, |(_, rest)| rest)
        .trim_end_matches('/')
        .to_string()
}

/// One row of the table, as words.
#[derive(Debug, Clone, PartialEq)]
pub struct RowText {
    pub name: String,
    pub host: String,
    pub state: String,
    pub cycles: String,
    pub systems: String,
    pub rate: String,
    pub usage: String,
    pub last_shutdown: String,
}

impl Agent {
    pub fn row(&self) -> RowText {
        let app = &self.app;
        let state = match (&app.connection, app.phase()) {
            (Connection::Ended, _) => "exited".to_string(),
            (Connection::Reconnecting { attempt, .. }, _) => format!("reconnecting ({attempt})"),
            (Connection::Live, _) if app.systems.is_empty() => "connecting".to_string(),
            (Connection::Live, Phase::Running) if app.paused => "paused".to_string(),
            (Connection::Live, Phase::Running) => "playing".to_string(),
            (Connection::Live, _) => "shutting down".to_string(),
        };
        let count =
            |f: &dyn Fn(SystemState) -> bool| app.systems.iter().filter(|s| f(s.state)).count();
        let up = count(&|s| matches!(s, SystemState::Open | SystemState::Idle));
        let closed = count(&|s| matches!(s, SystemState::Closed | SystemState::Closing));
        let error = count(&|s| s == SystemState::Error);
        let tokens: u64 = app
            .systems
            .iter()
            .filter_map(|s| s.usage.map(|u| u.total()))
            .sum();
        let cost: Option<f64> = app
            .systems
            .iter()
            .filter_map(|s| s.cost_usd)
            .reduce(|a, b| a + b);
        let usage = match (tokens, cost) {
            (0, None) => "—".to_string(),
            (t, None) => format!("{} tok", crate::tui::view::count(t)),
            (t, Some(c)) => format!("{} tok ${c:.4}", crate::tui::view::count(t)),
        };
        RowText {
            name: self.name.clone(),
            host: name_of(&self.url),
            state,
            cycles: app.game.cycles.to_string(),
            systems: format!("{up}/{closed}/{error}"),
            rate: format!("{:.1}", app.requests_per_s),
            usage,
            last_shutdown: last_shutdown(app),
        }
    }
}

/// The agent's shutdown as far as it streamed: how many steps ended, how, the slowest.
fn last_shutdown(app: &App) -> String {
    let Some(sd) = &app.shutdown else {
        return "—".to_string();
    };
    let mut closed = 0;
    let mut bad = 0;
    let mut slowest: f64 = 0.0;
    for step in &sd.steps {
        if let StepKind::Closed { report, .. } = &step.kind {
            closed += 1;
            slowest = slowest.max(report.close_ms);
            if !matches!(
                report.outcome,
                CloseOutcome::Closed | CloseOutcome::Forced | CloseOutcome::Skipped
            ) {
                bad += 1;
            }
        }
    }
    let mut out = format!("{} · {closed} closed", sd.reason.name());
    if bad > 0 {
        out.push_str(&format!(", {bad} not clean"));
    }
    if closed > 0 {
        out.push_str(&format!(", slowest {} ms", crate::tui::view::ms(slowest)));
    }
    out
}

/// The fleet's screen: the open agent's dashboard, or the table.
pub fn view(fleet: &Fleet, frame: &mut Frame) {
    if let Some(agent) = fleet.open.and_then(|i| fleet.agents.get(i)) {
        crate::tui::view::view(&agent.app, frame);
        return;
    }
    table(fleet, frame, frame.area());
}

fn table(fleet: &Fleet, frame: &mut Frame, area: Rect) {
    let t = fleet.theme;
    let [header, body, footer] = area.layout(&Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(0),
        Constraint::Length(1),
    ]));
    let playing = fleet
        .agents
        .iter()
        .filter(|a| a.app.connection == Connection::Live && a.app.phase() == Phase::Running)
        .count();
    frame.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled("singularis-tui  ", t.title()),
            Span::styled(format!("fleet of {}", fleet.agents.len()), t.accent()),
            Span::styled(" · ", t.dim()),
            Span::raw(format!("{playing} live")),
        ])),
        header,
    );
    let head = Row::new(
        [
            "agent",
            "host",
            "state",
            "cycles",
            "up/closed/err",
            "req/s",
            "tokens/cost",
            "last shutdown",
        ]
        .map(|h| Cell::from(Span::styled(h, t.dim()))),
    );
    let rows: Vec<Row> = fleet
        .agents
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let r = a.row();
            let state_style = match r.state.as_str() {
                "playing" => t.good(),
                "exited" | "connecting" => t.dim(),
                s if s.starts_with("reconnecting") => t.bad(),
                _ => t.warn(),
            };
            let marker = if i == fleet.selected { "▶ " } else { "  " };
            let row = Row::new(vec![
                Cell::from(format!("{marker}{}", r.name)),
                Cell::from(r.host),
                Cell::from(Span::styled(r.state, state_style)),
                Cell::from(r.cycles),
                Cell::from(r.systems),
                Cell::from(r.rate),
                Cell::from(r.usage),
                Cell::from(r.last_shutdown),
            ]);
            if i == fleet.selected {
                row.style(t.selected_row())
            } else {
                row
            }
        })
        .collect();
    let widths = [
        Constraint::Length(24),
        Constraint::Length(21),
        Constraint::Length(16),
        Constraint::Length(7),
        Constraint::Length(13),
        Constraint::Length(6),
        Constraint::Length(18),
        Constraint::Min(10),
    ];
    let block = Block::bordered()
        .border_type(BorderType::Rounded)
        .border_style(t.border(true))
        .title(Line::from(Span::styled(" Agents ", t.title())));
    frame.render_widget(
        Table::new(rows, widths)
            .header(head)
            .column_spacing(1)
            .block(block),
        body,
    );
    frame.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled("↑↓", t.key()),
            Span::raw(" select  "),
            Span::styled("Enter", t.key()),
            Span::raw(" open its dashboard (Esc back)  "),
            Span::styled("q d", t.key()),
            Span::raw(" leave (the agents keep running)"),
        ])),
        footer,
    );
}
