//! The fleet: several agents, one row each; Enter opens one's dashboard (the same `App` and
//! view as a single attach), Esc comes back. Each agent keeps its own `App`, fed by its own
//! connection, whether it is open or not.

use crate::lifecycle::{CloseOutcome, SystemState, counted};
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
            rate: rate(app),
            usage,
            last_shutdown: last_shutdown(app),
        }
    }
}

/// Requests per second while the agent is heard; "—" while it is not (reconnecting,
/// exited, not reached yet): its last rate would be stale.
fn rate(app: &App) -> String {
    match app.connection {
        Connection::Live if !app.systems.is_empty() => format!("{:.1}", app.requests_per_s),
        _ => "—".to_string(),
    }
}

/// The agent's shutdown as far as it streamed: how many systems ended each way, in the
/// local account's words (`9 closed, 1 forced, 1 skipped`), and the slowest close.
fn last_shutdown(app: &App) -> String {
    let Some(sd) = &app.shutdown else {
        return "—".to_string();
    };
    let (mut closed, mut forced, mut errors, mut unverified, mut skipped) = (0, 0, 0, 0, 0);
    let mut slowest: Option<f64> = None;
    for step in &sd.steps {
        let StepKind::Closed { report, .. } = &step.kind else {
            continue;
        };
        match report.outcome {
            CloseOutcome::Closed => closed += 1,
            CloseOutcome::Forced => forced += 1,
            CloseOutcome::Error => errors += 1,
            CloseOutcome::Unverified => unverified += 1,
            CloseOutcome::Skipped => {
                skipped += 1;
                continue;
            }
        }
        slowest = Some(slowest.unwrap_or(0.0).max(report.close_ms));
    }
    let mut out = format!("{} · {closed} closed", sd.reason.name());
    for (n, words) in [
        (forced, format!("{forced} forced")),
        (errors, counted(errors, "error")),
        (unverified, format!("{unverified} unverified")),
        (skipped, format!("{skipped} skipped")),
    ] {
        if n > 0 {
            out.push_str(", ");
            out.push_str(&words);
        }
    }
    if let Some(ms) = slowest {
        out.push_str(&format!(", slowest {} ms", crate::tui::view::ms(ms)));
    }
    out
}

/// What an agent is when the viewer leaves, unless it simply keeps running.
fn not_running(app: &App) -> Option<String> {
    match &app.connection {
        Connection::Ended => Some("exited".to_string()),
        Connection::Reconnecting { attempt, why, .. } => Some(format!(
            "unreachable ({why}; {}): it may be gone",
            counted(*attempt, "attempt")
        )),
        Connection::Live if app.systems.is_empty() => {
            Some("not reached yet: it may not be running".to_string())
        }
        Connection::Live if app.shutdown.is_some() => Some("shutting down".to_string()),
        Connection::Live => None,
    }
}

/// What the viewer says as it leaves (`d`, `q` on the table): the agents that keep running,
/// then each one that does not, and why.
pub fn farewell(agents: &[Agent]) -> Vec<String> {
    let mut running = Vec::new();
    let mut others = Vec::new();
    for a in agents {
        match not_running(&a.app) {
            None => running.push(a.url.as_str()),
            Some(why) => others.push(format!("{}: {why}", a.url)),
        }
    }
    let first = match running.len() {
        0 => {
            let all: Vec<&str> = agents.iter().map(|a| a.url.as_str()).collect();
            format!("detached from {}", all.join(", "))
        }
        1 => format!("detached from {}; the agent keeps running", running[0]),
        _ => format!(
            "detached from {}; the agents keep running",
            running.join(", ")
        ),
    };
    std::iter::once(first).chain(others).collect()
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
            Span::raw(" leave (no agent is stopped)"),
        ])),
        footer,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifecycle::CloseReport;
    use crate::session::report::Reason;
    use crate::systems::SystemId;
    use crate::tui::{Action, update};
    use std::time::Duration;

    fn agent(port: u16) -> Agent {
        let config = crate::config::Config::default();
        let settings = crate::tui::settings(
            &config,
            "remote".into(),
            config.gameplay.mode,
            Duration::from_millis(500),
        );
        let url = format!("http://127.0.0.1:{port}");
        let mut app = App::remote(settings, Rect::new(0, 0, 120, 40), url.clone(), true);
        let registry = crate::lifecycle::Registry::new(&config, &Default::default(), &|_| None);
        // Two looks a second apart, 40 requests between them.
        let mut systems = registry.snapshots();
        update(&mut app, Action::Tick(Duration::from_secs(1)));
        update(&mut app, Action::Systems(systems.clone()));
        systems[0].done += 40;
        update(&mut app, Action::Tick(Duration::from_secs(2)));
        update(&mut app, Action::Systems(systems));
        Agent {
            name: name_of(&url),
            url,
            app,
        }
    }

    fn lost(a: &mut Agent) {
        update(
            &mut a.app,
            Action::Connection(Connection::Reconnecting {
                attempt: 3,
                next_in: Duration::from_secs(1),
                since: Duration::from_secs(2),
                why: "connection refused".into(),
            }),
        );
    }

    fn closed(id: SystemId, outcome: CloseOutcome, close_ms: f64) -> Action {
        Action::SystemClosed {
            report: CloseReport {
                name: id,
                outcome,
                close_ms,
                sockets_before: 1,
                error: (outcome == CloseOutcome::Error).then(|| "reset".to_string()),
                cancelled: 0,
                verified: true,
                unverified_reason: None,
                earlier: None,
                steps: Vec::new(),
            },
            forced_by_user: false,
        }
    }

    /// Issue #27 item 12: each outcome counted in the local account's words, not all of
    /// them as "closed"; a skipped system's 0 ms is not a close time.
    #[test]
    fn the_last_shutdown_tells_each_outcome() {
        let mut a = agent(7070);
        update(&mut a.app, Action::ShutdownStarted(Reason::Quit));
        let ids = a.app.system_ids();
        for (i, id) in ids.iter().enumerate() {
            let (outcome, ms) = match i {
                0 => (CloseOutcome::Forced, 500.0),
                1 => (CloseOutcome::Skipped, 0.0),
                _ => (CloseOutcome::Closed, 2.0 + i as f64),
            };
            update(&mut a.app, closed(*id, outcome, ms));
        }
        assert_eq!(ids.len(), 11);
        assert_eq!(
            a.row().last_shutdown,
            "quit · 9 closed, 1 forced, 1 skipped, slowest 500 ms"
        );
        update(&mut a.app, closed(ids[2], CloseOutcome::Error, 1.0));
        update(&mut a.app, closed(ids[3], CloseOutcome::Error, 1.0));
        assert_eq!(
            a.row().last_shutdown,
            "quit · 9 closed, 1 forced, 2 errors, 1 skipped, slowest 500 ms"
        );
    }

    /// Issue #27 item 12: an agent not heard from shows no rate, not its last one.
    #[test]
    fn an_agent_not_heard_from_shows_no_rate() {
        let mut a = agent(7070);
        assert_eq!(a.row().rate, "40.0");
        lost(&mut a);
        assert_eq!(a.row().state, "reconnecting (3)");
        assert_eq!(a.row().rate, "—");
        update(&mut a.app, Action::Connection(Connection::Ended));
        assert_eq!(a.row().rate, "—");
    }

    /// Issue #27 item 12: leaving a fleet of three, one of them killed, says which keep
    /// running and which is gone; one agent alone keeps the single attach's words.
    #[test]
    fn leaving_says_which_agents_keep_running_and_which_are_gone() {
        let mut agents = vec![agent(7070), agent(7071), agent(7072)];
        lost(&mut agents[1]);
        assert_eq!(
            farewell(&agents),
            [
                "detached from http://127.0.0.1:7070, http://127.0.0.1:7072; the agents keep running",
                "http://127.0.0.1:7071: unreachable (connection refused; 3 attempts): it may be gone",
            ]
        );
        update(&mut agents[2].app, Action::Connection(Connection::Ended));
        assert_eq!(
            farewell(&agents),
            [
                "detached from http://127.0.0.1:7070; the agent keeps running",
                "http://127.0.0.1:7071: unreachable (connection refused; 3 attempts): it may be gone",
                "http://127.0.0.1:7072: exited",
            ]
        );
        assert_eq!(
            farewell(&agents[..1]),
            ["detached from http://127.0.0.1:7070; the agent keeps running"]
        );
        assert_eq!(
            farewell(&agents[1..2]),
            [
                "detached from http://127.0.0.1:7071",
                "http://127.0.0.1:7071: unreachable (connection refused; 3 attempts): it may be gone",
            ]
        );
    }
}
