//! `singularis-tui attach URL… [--token-file F]`: the dashboard of an agent that runs
//! elsewhere, fed by its control endpoint's stream (ARCHITECTURE.md, "Attach"). The same
//! [`App`], [`update`] and view as the local dashboard: the stream's events become the same
//! actions, and the keys' commands become `POST /v1/commands`. Two or more URLs (or
//! `[fleet] agents`) open the fleet table first.

pub mod commands;
pub mod convert;
pub mod feed;
pub mod fleet;

use crate::config::Config;
use crate::control_token::{self, ViewerToken};
use crate::gameplay::stats::ActionRecord;
use crate::logging::LogLine;
use crate::session::report::Reason;
use crate::session::summary;
use crate::tui::app::{Connection, StepKind};
use crate::tui::terminal::Screen;
use crate::tui::{Action, App, Command, action, update};
use anyhow::{Result, anyhow};
use convert::FromProtocol;
use crossterm::event::EventStream;
use feed::FeedMsg;
use fleet::{Agent, Fleet};
use futures::StreamExt;
use ratatui::layout::Rect;
use singularis_protocol::Event;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// What the command line asks.
#[derive(Debug, Clone)]
pub struct AttachOptions {
    /// The agents' control endpoints (`http://HOST:PORT`), with a name each.
    pub agents: Vec<(String, String)>,
    pub token_file: Option<PathBuf>,
}

/// How the viewer ended.
enum Exit {
    /// `d` (or leaving the fleet): no agent is stopped.
    Detached,
    /// The agent exited after a shutdown; `clean`: every step in its account was.
    AgentExited { clean: bool },
    /// The agent speaks a protocol this viewer does not read: the words say which.
    Incompatible(String),
}

/// Run the viewer; the exit status.
pub async fn run(config: &Config, opts: AttachOptions) -> Result<i32> {
    if opts.agents.is_empty() {
        return Err(anyhow!(
            "attach needs at least one URL (or [fleet] agents in the config)"
        ));
    }
    let token = control_token::for_viewer(opts.token_file.as_deref())?;
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(3))
        .build()
        .map_err(|e| anyhow!("cannot make an HTTP client: {e}"))?;
    let settings = crate::tui::settings(
        config,
        "remote".to_string(),
        config.gameplay.mode,
        Duration::from_millis(config.shutdown.grace_ms),
    );
    let theme = settings.theme;
    let frame = crate::tui::frame_interval(config);
    let mut screen = Screen::take().map_err(|e| anyhow!("cannot take the terminal: {e}"))?;
    let area = screen
        .terminal()
        .and_then(|t| t.size())
        .map(|s| Rect::new(0, 0, s.width, s.height))
        .unwrap_or(Rect::new(0, 0, 80, 24));
    let single = opts.agents.len() == 1;
    let fleet = Fleet {
        agents: opts
            .agents
            .iter()
            .map(|(name, url)| Agent {
                name: name.clone(),
                url: url.clone(),
                app: App::remote(settings.clone(), area, url.clone(), token.is_some()),
            })
            .collect(),
        selected: 0,
        open: single.then_some(0),
        theme,
    };
    let stop = CancellationToken::new();
    let (tx, rx) = mpsc::channel(feed::QUEUE * opts.agents.len());
    for (i, (_, url)) in opts.agents.iter().enumerate() {
        tokio::spawn(feed::follow(
            client.clone(),
            url.clone(),
            token.clone(),
            i,
            tx.clone(),
            stop.clone(),
        ));
    }
    drop(tx);
    let (answers_tx, answers) = mpsc::unbounded_channel();
    let mut viewer = Viewer {
        fleet,
        single,
        screen: Some(screen),
        client,
        token,
        started: Instant::now(),
        frame,
        answers_tx,
        exit: None,
    };
    let outcome = viewer.run(rx, answers).await;
    stop.cancel();
    // The terminal is given back before anything is printed.
    viewer.screen = None;
    for p in crate::tui::terminal::take_deferred_panics() {
        let _ = writeln!(
            std::io::stderr(),
            "singularis-tui: a task panicked while the viewer was open: {p}"
        );
    }
    let exit = outcome?;
    let mut out = std::io::stdout().lock();
    match exit {
        Exit::Detached => {
            for line in fleet::farewell(&viewer.fleet.agents) {
                let _ = writeln!(out, "{line}");
            }
            Ok(0)
        }
        Exit::AgentExited { clean } => {
            if let Some(agent) = viewer.fleet.agents.first() {
                for line in account_lines(&agent.app) {
                    let _ = writeln!(out, "{line}");
                }
                let _ = writeln!(out, "agent exited ({})", agent.url);
            }
            Ok(if clean { 0 } else { 1 })
        }
        Exit::Incompatible(why) => {
            let _ = writeln!(std::io::stderr(), "singularis-tui: {why}");
            Ok(1)
        }
    }
}

/// The agent's account as it streamed it, in the `--headless` lines, then its calls that
/// did not simply answer, per system, as its last figures told them (the stream ends before
/// the report's statistics).
fn account_lines(app: &App) -> Vec<String> {
    let Some(sd) = &app.shutdown else {
        return Vec::new();
    };
    let grace_ms = sd.grace.as_millis() as u64;
    let mut lines = vec![summary::BEGIN_LINE.to_string()];
    for step in &sd.steps {
        match &step.kind {
            StepKind::Closing(_) => {}
            StepKind::Closed {
                report,
                forced_by_user,
            } => lines.push(summary::step_line(report, grace_ms, *forced_by_user)),
            StepKind::Endpoint(r) => lines.push(summary::endpoint_line(r)),
        }
    }
    lines.extend(summary::streamed_call_lines(&app.game, &app.systems));
    lines
}

/// Whether every step of the account the agent streamed is clean.
fn account_clean(app: &App) -> bool {
    use crate::lifecycle::CloseOutcome::{Closed, Forced, Skipped};
    app.shutdown.as_ref().is_none_or(|sd| {
        sd.steps.iter().all(|s| match &s.kind {
            StepKind::Closing(_) => true,
            StepKind::Closed { report, .. } => matches!(report.outcome, Closed | Forced | Skipped),
            StepKind::Endpoint(r) => matches!(r.outcome, Closed | Forced | Skipped),
        })
    })
}

struct Viewer {
    fleet: Fleet,
    /// One agent: its dashboard is the whole viewer (no table to go back to).
    single: bool,
    screen: Option<Screen>,
    client: reqwest::Client,
    token: Option<ViewerToken>,
    started: Instant,
    frame: Duration,
    answers_tx: mpsc::UnboundedSender<(usize, Vec<Action>)>,
    exit: Option<Exit>,
}

impl Viewer {
    async fn run(
        &mut self,
        mut feeds: mpsc::Receiver<(usize, FeedMsg)>,
        mut answers: mpsc::UnboundedReceiver<(usize, Vec<Action>)>,
    ) -> Result<Exit> {
        let mut input = EventStream::new();
        let mut dirty = true;
        let mut next_frame = Instant::now();
        loop {
            let now = Instant::now();
            if dirty && now >= next_frame {
                self.tick_all();
                self.draw()?;
                dirty = false;
                next_frame = now + self.frame;
            }
            if let Some(exit) = self.exit.take() {
                return Ok(exit);
            }
            // Uptime, countdowns and the account's pacing move by time alone.
            let wake = if dirty {
                next_frame
            } else {
                now + self.frame.max(Duration::from_millis(100))
            };
            tokio::select! {
                event = input.next() => match event {
                    Some(Ok(event)) => {
                        if let Some(action) = action::from_event(&event) {
                            self.on_input(action);
                        }
                        dirty = true;
                    }
                    Some(Err(e)) => return Err(anyhow!("terminal input failed: {e}")),
                    None => return Ok(Exit::Detached),
                },
                Some((i, msg)) = feeds.recv() => {
                    self.on_feed(i, msg);
                    dirty = true;
                }
                Some((i, actions)) = answers.recv() => {
                    for a in actions {
                        self.dispatch(i, a);
                    }
                    dirty = true;
                }
                _ = tokio::time::sleep_until(wake.into()) => dirty = true,
            }
        }
    }

    fn draw(&mut self) -> Result<()> {
        let Some(screen) = self.screen.as_mut() else {
            return Ok(());
        };
        let fleet = &self.fleet;
        screen
            .terminal()
            .and_then(|t| t.draw(|f| fleet::view(fleet, f)).map(|_| ()))
            .map_err(|e| anyhow!("cannot draw: {e}"))
    }

    fn tick_all(&mut self) {
        let now = self.started.elapsed();
        for i in 0..self.fleet.agents.len() {
            self.dispatch(i, Action::Tick(now));
        }
    }

    fn on_input(&mut self, action: Action) {
        if let Action::Resize { width, height } = action {
            for i in 0..self.fleet.agents.len() {
                self.dispatch(i, Action::Resize { width, height });
            }
            return;
        }
        let Some(open) = self.fleet.open else {
            // The fleet table's own keys.
            let last = self.fleet.agents.len().saturating_sub(1);
            match action {
                Action::Up => self.fleet.selected = self.fleet.selected.saturating_sub(1),
                Action::Down => self.fleet.selected = (self.fleet.selected + 1).min(last),
                Action::Home => self.fleet.selected = 0,
                Action::End => self.fleet.selected = last,
                Action::Confirm => self.fleet.open = Some(self.fleet.selected),
                Action::Quit | Action::Detach => self.exit = Some(Exit::Detached),
                _ => {}
            }
            return;
        };
        let app = &self.fleet.agents[open].app;
        if !self.single && matches!(action, Action::Escape) && !app.help_open && !app.confirm_quit {
            self.fleet.open = None;
            return;
        }
        self.dispatch(open, action);
    }

    /// The action, then the time, for agent `i`; carry out what they ask.
    fn dispatch(&mut self, i: usize, action: Action) {
        let now = self.started.elapsed();
        let mut pending = vec![action, Action::Tick(now)];
        while let Some(action) = pending.pop() {
            let Some(agent) = self.fleet.agents.get_mut(i) else {
                return;
            };
            if let Some(command) = update(&mut agent.app, action)
                && let Some(follow_up) = self.execute(i, command)
            {
                pending.push(follow_up);
            }
        }
    }

    fn execute(&mut self, i: usize, command: Command) -> Option<Action> {
        let agent = self.fleet.agents.get(i)?;
        match command {
            Command::Detach => {
                if self.single {
                    self.exit = Some(Exit::Detached);
                } else {
                    self.fleet.open = None;
                }
                None
            }
            Command::Exit => {
                if self.single {
                    let clean = account_clean(&agent.app);
                    self.exit = Some(Exit::AgentExited { clean });
                } else {
                    self.fleet.open = None;
                }
                None
            }
            Command::SetMouseCapture(on) => {
                let screen = self.screen.as_mut()?;
                screen
                    .set_mouse_capture(on)
                    .err()
                    .map(|e| Action::Problem(format!("cannot switch mouse capture: {e}")))
            }
            Command::ForceAll => Some(Action::Notice(
                "the agent is closing; its grace deadline cuts what is left (forcing is not a remote command)"
                    .to_string(),
            )),
            Command::Quit
            | Command::ForceClose(_)
            | Command::Close(_)
            | Command::Reopen(_)
            | Command::SetPaused(_) => {
                let Some(token) = self.token.clone() else {
                    return Some(Action::Problem(
                        "watching only: no control token".to_string(),
                    ));
                };
                let notice = match command {
                    Command::ForceClose(id) => {
                        Some(format!("force-closing {} on the agent…", id.display_name()))
                    }
                    Command::Close(id) => {
                        Some(format!("closing {} on the agent…", id.display_name()))
                    }
                    _ => None,
                };
                let wait = agent.app.settings.grace * 2 + Duration::from_secs(5);
                let (client, url, tx) = (self.client.clone(), agent.url.clone(), self.answers_tx.clone());
                tokio::spawn(async move {
                    let actions = commands::send(client, url, token, command, wait).await;
                    let _ = tx.send((i, actions));
                });
                notice.map(Action::Notice)
            }
        }
    }

    fn on_feed(&mut self, i: usize, msg: FeedMsg) {
        let Some(agent) = self.fleet.agents.get_mut(i) else {
            return;
        };
        let actions = match msg {
            FeedMsg::Lost {
                attempt,
                next_in,
                why,
            } => vec![Action::Connection(Connection::Reconnecting {
                attempt,
                next_in,
                since: self.started.elapsed(),
                why,
            })],
            FeedMsg::Ended => vec![Action::Connection(Connection::Ended)],
            FeedMsg::Incompatible(why) => {
                if self.single {
                    self.exit = Some(Exit::Incompatible(why));
                    Vec::new()
                } else {
                    vec![Action::Problem(why), Action::Connection(Connection::Ended)]
                }
            }
            FeedMsg::Event(event) => event_actions(&mut agent.app, *event),
        };
        for a in actions {
            self.dispatch(i, a);
        }
    }
}

/// What an event of the agent's stream means to its dashboard: the actions the local
/// session's own events would be.
fn event_actions(app: &mut App, event: Event) -> Vec<Action> {
    match event {
        Event::Snapshot(s) => {
            let s = *s;
            app.settings.backend = s.session.backend;
            if let Ok(mode) = serde_json::from_value(serde_json::Value::String(s.session.mode)) {
                app.settings.mode = mode;
            }
            app.settings.grace = Duration::from_millis(s.session.grace_ms);
            let logs = s
                .logs
                .into_iter()
                .filter_map(LogLine::from_protocol)
                .collect();
            let mut actions = vec![
                Action::Connection(Connection::Live),
                Action::Resync {
                    shutting_down: s.phase == "shutting_down",
                },
                Action::Systems(convert::systems(s.systems)),
                Action::Game(Box::new(convert::game(s.stats, s.game))),
                Action::Logs(logs),
                Action::Paused(s.paused),
            ];
            actions.extend(agent_clock(s.session_s));
            actions
        }
        Event::Refresh(r) => {
            let r = *r;
            let mut actions = vec![
                Action::Systems(convert::systems(r.systems)),
                Action::Game(Box::new(convert::game(r.stats, r.game))),
                Action::Paused(r.paused),
            ];
            actions.extend(agent_clock(r.session_s));
            actions
        }
        Event::State(change) => {
            let Some(change) = crate::lifecycle::StateChange::from_protocol(change) else {
                return Vec::new();
            };
            let mut systems = app.systems.clone();
            if let Some(s) = systems.iter_mut().find(|s| s.id == change.system) {
                s.state = change.to;
                if change.error.is_some() {
                    s.last_error = change.error;
                }
            }
            vec![Action::Systems(systems)]
        }
        Event::Cycle(c) => {
            let mut game = app.game.clone();
            game.cycles = game.cycles.max(c.cycle);
            // Its action on the game pane at once (the next refresh brings the rest).
            if let Some(rec) = ActionRecord::from_protocol(&c)
                && game.recent.back().is_none_or(|last| last.cycle < rec.cycle)
            {
                game.remember(rec);
            }
            vec![Action::Game(Box::new(game))]
        }
        Event::Log(line) => LogLine::from_protocol(line)
            .map(Action::Log)
            .into_iter()
            .collect(),
        Event::Command(rec) => {
            let what = match rec.system {
                Some(name) => format!("{} {name}", rec.command.name()),
                None => rec.command.name().to_string(),
            };
            let mut text = format!("{}: {what} → {}", rec.by, rec.outcome);
            if let Some(d) = rec.detail {
                text.push_str(&format!(" ({d})"));
            }
            vec![Action::Notice(text)]
        }
        Event::ShutdownStarted { reason, grace_ms } => {
            let grace = Duration::from_millis(grace_ms);
            vec![
                Action::ShutdownStarted(reason_of(&reason)),
                Action::ShutdownBegin {
                    grace,
                    deadline_in: grace,
                },
            ]
        }
        Event::Closing { name } => crate::systems::SystemId::from_name(&name)
            .map(Action::SystemClosing)
            .into_iter()
            .collect(),
        Event::Closed(report) => crate::lifecycle::CloseReport::from_protocol(report)
            .map(|report| Action::SystemClosed {
                report,
                forced_by_user: false,
            })
            .into_iter()
            .collect(),
        Event::EndpointClosed(r) => crate::lifecycle::StepReport::from_protocol(r)
            .map(Action::EndpointClosed)
            .into_iter()
            .collect(),
        Event::Verified(v) => crate::lifecycle::Verification::from_protocol(v)
            .map(Action::Verified)
            .into_iter()
            .collect(),
        // Not drawn by a viewer: breaker changes (the refresh carries the breakers), what
        // only `--json` writes, the end of the stream (the feed's), later additions.
        Event::SessionStarted { .. }
        | Event::Breaker(_)
        | Event::ShutdownComplete(_)
        | Event::SessionEnded { .. }
        | Event::Lagged { .. }
        | Event::StreamClosed { .. }
        | Event::Unknown => Vec::new(),
    }
}

/// The agent's uptime as it said it (`session_s`); nothing for a value that is no time.
fn agent_clock(session_s: f64) -> Option<Action> {
    Duration::try_from_secs_f64(session_s)
        .ok()
        .map(Action::AgentClock)
}

fn reason_of(name: &str) -> Reason {
    match name {
        "quit" => Reason::Quit,
        "signal" => Reason::Signal,
        "cycles" => Reason::Cycles,
        _ => Reason::Error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use singularis_protocol as p;

    fn remote_app() -> App {
        let config = Config::default();
        let settings = crate::tui::settings(
            &config,
            "remote".into(),
            config.gameplay.mode,
            Duration::from_millis(500),
        );
        App::remote(
            settings,
            Rect::new(0, 0, 120, 40),
            "http://127.0.0.1:7070".into(),
            true,
        )
    }

    /// The agent's stream as the dashboard takes it: the time, then each event's actions
    /// (as `Viewer::dispatch` does).
    fn apply(app: &mut App, event: Event, now: Duration) {
        update(app, Action::Tick(now));
        for a in event_actions(app, event) {
            update(app, a);
        }
    }

    fn screen(app: &App) -> String {
        let mut term = ratatui::Terminal::new(ratatui::backend::TestBackend::new(120, 40)).unwrap();
        term.draw(|f| crate::tui::view::view(app, f)).unwrap();
        let buf = term.backend().buffer();
        (0..buf.area.height)
            .map(|y| {
                (0..buf.area.width)
                    .map(|x| buf[(x, y)].symbol())
                    .collect::<String>()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn snapshot(session_s: f64) -> p::Snapshot {
        p::Snapshot {
            protocol: p::PROTOCOL,
            session: p::SessionInfo {
                version: "test".into(),
                mode: "parallel".into(),
                backend: "sandbox".into(),
                cycles: 0,
                grace_ms: 500,
                metrics: None,
                serve: Some("http://127.0.0.1:7070".into()),
            },
            session_s,
            phase: "running".into(),
            paused: false,
            systems: Vec::new(),
            stats: p::GameStats {
                cycles: 45,
                actions: 45,
                ..Default::default()
            },
            commands: Vec::new(),
            game: p::GameView {
                world: Some(p::WorldView {
                    place: "Bleak Falls Barrow".into(),
                    enemy: Some("a draugr".into()),
                    health: 72,
                    stamina: 45,
                    magicka: 90,
                    npc_here: None,
                    loot_here: true,
                }),
                scene: "Cold stone halls lined with burial niches.".into(),
                recent: vec![p::ActionLine {
                    cycle: 45,
                    action: "attack".into(),
                    why: "orchestrator (votes: attack=4)".into(),
                    reward: 1.0,
                }],
                waiting: [("claude_client".to_string(), 1500.0)].into(),
            },
            logs: vec![p::LogLine {
                time: "12:00:01".into(),
                level: "WARN".into(),
                text: "viewer connected peer=127.0.0.1:50000".into(),
            }],
        }
    }

    /// Issue #27 item 10: an agent 45 cycles in draws on the viewer as it does at home: the
    /// game pane has the place, the scene and the last action (not "waiting for the first
    /// cycle"), the log pane the agent's lines, and the header the agent's uptime (its
    /// `session_s`, counted on by the viewer's clock), not the viewer's.
    #[test]
    fn a_snapshot_draws_the_game_pane_the_log_and_the_agents_uptime() {
        let mut app = remote_app();
        // The viewer has been up 2 s; the agent 1 h 2 min 5 s.
        let viewer_up = Duration::from_secs(2);
        apply(
            &mut app,
            Event::Snapshot(Box::new(snapshot(3725.0))),
            viewer_up,
        );
        assert_eq!(app.session_uptime(), Some(Duration::from_secs(3725)));
        let s = screen(&app);
        assert!(!s.contains("waiting for the first cycle"), "{s}");
        assert!(s.contains("Bleak Falls Barrow · a draugr (hostile)"), "{s}");
        assert!(s.contains("scene: Cold stone halls"), "{s}");
        assert!(s.contains("#45 attack +1.0"), "{s}");
        assert!(s.contains("WARN  viewer connected"), "{s}");
        assert!(s.contains("up 1:02:05"), "the agent's uptime:\n{s}");
        assert!(s.contains("waiting on Claude client 1."), "{s}");

        // The viewer's clock moves it on; a refresh says it again.
        update(&mut app, Action::Tick(viewer_up + Duration::from_secs(10)));
        assert_eq!(app.session_uptime(), Some(Duration::from_secs(3735)));
        let refresh = p::Refresh {
            session_s: 4000.0,
            paused: false,
            systems: Vec::new(),
            stats: p::GameStats::default(),
            game: p::GameView::default(),
        };
        apply(
            &mut app,
            Event::Refresh(Box::new(refresh)),
            viewer_up + Duration::from_secs(10),
        );
        assert_eq!(app.session_uptime(), Some(Duration::from_secs(4000)));

        // A line logged after the snapshot comes after its lines; a cycle's action shows at
        // once.
        let line = p::LogLine {
            time: "12:00:02".into(),
            level: "INFO".into(),
            text: "cycle done".into(),
        };
        let later = viewer_up + Duration::from_secs(11);
        apply(&mut app, Event::Log(line), later);
        assert_eq!(app.logs.last().map(|l| l.text.as_str()), Some("cycle done"));
        let cycle = p::CycleEvent {
            cycle: 46,
            action: Some("loot".into()),
            why: Some("chest".into()),
            reward: Some(0.5),
            cycle_ms: 3.0,
            critical_path_ms: 2.0,
            usage: Default::default(),
        };
        apply(&mut app, Event::Cycle(cycle), later);
        let last = app.game.recent.back().expect("the cycle's action");
        assert_eq!((last.cycle, last.action.name()), (46, "loot"));
    }

    /// Before the agent said how long it has run, the header does not make it up from the
    /// viewer's clock.
    #[test]
    fn before_a_snapshot_the_agents_uptime_is_unknown() {
        let mut app = remote_app();
        update(&mut app, Action::Tick(Duration::from_secs(7)));
        assert_eq!(app.session_uptime(), None);
        assert!(screen(&app).contains("up —"));
    }

    /// The log pane of a remote agent holds a bounded tail however long it runs.
    #[test]
    fn the_remote_log_pane_is_bounded() {
        let mut app = remote_app();
        let keep = crate::logging::LOG_CAPACITY;
        for n in 0..keep + 10 {
            let line = p::LogLine {
                time: "12:00:00".into(),
                level: "INFO".into(),
                text: format!("line {n}"),
            };
            for a in event_actions(&mut app, Event::Log(line)) {
                update(&mut app, a);
            }
        }
        assert_eq!(app.logs.len(), keep);
        assert_eq!(app.logs[0].text, "line 10");
    }
}
