//! The dashboard's state and the one function that changes it. `update` is pure (no
//! terminal, no engine): it returns a [`Command`] for the runtime to carry out.

use super::action::{Action, Command};
use super::theme::Theme;
use super::view::layout;
use crate::config::Mode;
use crate::gameplay::GameStats;
use crate::lifecycle::{CloseReport, StepReport, SystemSnapshot, SystemState};
use crate::logging::LogLine;
use crate::session::report::{Reason, SessionReport};
use crate::session::summary;
use crate::systems::SystemId;
use ratatui::layout::{Position, Rect};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

/// How long a notice (the answer to `x`, `c`, `r`...) stays on screen.
pub(crate) const NOTICE_FOR: Duration = Duration::from_secs(6);
/// The window over which requests per second is measured.
const RATE_WINDOW: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    Table,
    Gameplay,
    Log,
}

impl Pane {
    fn next(self) -> Pane {
        match self {
            Pane::Table => Pane::Gameplay,
            Pane::Gameplay => Pane::Log,
            Pane::Log => Pane::Table,
        }
    }
    fn prev(self) -> Pane {
        self.next().next()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The live dashboard.
    Running,
    /// The table is the shutdown account.
    ShuttingDown,
    /// The final statistics panel, until a key or the linger time.
    Final,
}

/// Where the dashboard's news comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A session in this process.
    Local,
    /// An agent's control endpoint (`attach URL`); `can_command`: a control token is known.
    Remote { url: String, can_command: bool },
}

/// The link to a remote agent (always `Live` for a local session).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Connection {
    Live,
    /// Lost; the next attempt is `next_in` after `since` (uptime).
    Reconnecting {
        attempt: u32,
        next_in: Duration,
        since: Duration,
        why: String,
    },
    /// The agent's stream ended after its shutdown: the agent exited.
    Ended,
}

/// What does not change during a session.
#[derive(Debug, Clone)]
pub struct Settings {
    pub backend: String,
    pub mode: Mode,
    pub grace: Duration,
    /// Pace at which shutdown steps are revealed.
    pub step: Duration,
    pub linger: Duration,
    pub theme: Theme,
    /// Where `/metrics` is served, when it is (shown in the header).
    pub metrics: Option<String>,
    /// Where the control endpoint is served, when it is (shown in the header).
    pub serve: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub text: String,
    pub bad: bool,
    pub at: Duration,
}

/// One event of the shutdown account, as it arrived.
#[derive(Debug, Clone)]
pub struct Step {
    pub arrived: Duration,
    pub kind: StepKind,
}

#[derive(Debug, Clone)]
pub enum StepKind {
    Closing(SystemId),
    Closed {
        report: CloseReport,
        forced_by_user: bool,
    },
    /// A closing step after the systems (the metrics endpoint).
    Endpoint(StepReport),
}

/// A row of the shutdown account as it should look now.
#[derive(Debug, Clone)]
pub enum AccountRow {
    Waiting(SystemId),
    Closing(SystemId),
    Done {
        report: CloseReport,
        forced_by_user: bool,
    },
    Endpoint(StepReport),
}

#[derive(Debug, Clone)]
pub struct ShutdownState {
    pub reason: Reason,
    pub started_at: Duration,
    pub grace: Duration,
    /// When stragglers get force-closed (uptime), once the engine said so.
    pub deadline_at: Option<Duration>,
    /// Every event in arrival order; the first `revealed` are on screen.
    pub steps: Vec<Step>,
    pub revealed: usize,
    next_reveal_at: Duration,
    /// Sockets left open and when the check ended.
    pub verified: Option<(crate::lifecycle::Verification, Duration)>,
    pub report: Option<Box<SessionReport>>,
    pub report_path: Option<String>,
    pub report_error: Option<String>,
    /// Since when the final panel shows.
    pub final_since: Option<Duration>,
    pub force_requested: bool,
    /// The session's systems, in its order: those not yet heard of wait in the account.
    pub systems: Vec<SystemId>,
}

impl ShutdownState {
    pub fn new(
        reason: Reason,
        now: Duration,
        grace: Duration,
        systems: Vec<SystemId>,
    ) -> ShutdownState {
        ShutdownState {
            systems,
            reason,
            started_at: now,
            grace,
            deadline_at: None,
            steps: Vec::new(),
            revealed: 0,
            next_reveal_at: now,
            verified: None,
            report: None,
            report_path: None,
            report_error: None,
            final_since: None,
            force_requested: false,
        }
    }

    /// Reveal steps at the watchable pace: one per `step`, never before it arrived.
    fn advance(&mut self, now: Duration, step: Duration) {
        while self.revealed < self.steps.len() {
            let at = self.next_reveal_at.max(self.steps[self.revealed].arrived);
            if now < at {
                break;
            }
            self.revealed += 1;
            self.next_reveal_at = at + step;
        }
        // The last step stays in view for one step before the final panel appears.
        if self.final_since.is_none()
            && self.report.is_some()
            && self.revealed == self.steps.len()
            && now >= self.next_reveal_at
        {
            self.final_since = Some(now);
        }
    }

    /// The account: revealed systems in the order their steps came, then those still waiting.
    pub fn rows(&self) -> Vec<AccountRow> {
        let mut order: Vec<SystemId> = Vec::new();
        let mut rows: BTreeMap<SystemId, AccountRow> = BTreeMap::new();
        let mut endpoints = Vec::new();
        for step in &self.steps[..self.revealed] {
            let (id, row) = match &step.kind {
                StepKind::Endpoint(r) => {
                    endpoints.push(AccountRow::Endpoint(r.clone()));
                    continue;
                }
                StepKind::Closing(id) => (*id, AccountRow::Closing(*id)),
                StepKind::Closed {
                    report,
                    forced_by_user,
                } => (
                    report.name,
                    AccountRow::Done {
                        report: report.clone(),
                        forced_by_user: *forced_by_user,
                    },
                ),
            };
            if !order.contains(&id) {
                order.push(id);
            }
            rows.insert(id, row);
        }
        let mut out: Vec<AccountRow> = order.iter().filter_map(|id| rows.remove(id)).collect();
        out.extend(
            self.systems
                .iter()
                .copied()
                .filter(|id| !order.contains(id))
                .map(AccountRow::Waiting),
        );
        out.extend(endpoints);
        out
    }

    /// Systems whose close has ended, on screen.
    pub(crate) fn done_count(&self) -> usize {
        self.steps[..self.revealed]
            .iter()
            .filter(|s| matches!(s.kind, StepKind::Closed { .. }))
            .count()
    }
}

pub struct App {
    pub settings: Settings,
    /// Time since the session started.
    pub uptime: Duration,
    /// The terminal's size, for mouse hits and page sizes.
    pub area: Rect,
    pub systems: Vec<SystemSnapshot>,
    pub game: GameStats,
    /// The call the current cycle has waited on longest, and for how long.
    pub waiting: Option<(crate::systems::SystemId, Duration)>,
    pub logs: Vec<LogLine>,
    request_samples: VecDeque<(Duration, u64)>,
    pub requests_per_s: f64,
    pub selected: usize,
    pub focus: Pane,
    pub gameplay_scroll: u16,
    /// Lines scrolled back from the newest log line (0: following the tail).
    pub log_scroll: usize,
    pub help_open: bool,
    pub mouse_capture: bool,
    pub paused: bool,
    pub notice: Option<Notice>,
    /// Systems the user closed (`true`: the close ended forced, by `x` or at the grace
    /// deadline of a `c`) and that are still closed.
    pub closed_by_user: BTreeMap<SystemId, bool>,
    /// A process signal came: no pacing, no linger (ARCHITECTURE.md, "Signals").
    pub hurry: bool,
    /// Closes the user asked for that have not ended yet.
    pub closing_by_user: BTreeSet<SystemId>,
    pub quit_requested: bool,
    pub shutdown: Option<ShutdownState>,
    audio_notice_shown: bool,
    pub source: Source,
    pub connection: Connection,
    /// A remote quit waits for a yes.
    pub confirm_quit: bool,
}

impl App {
    pub fn new(settings: Settings, area: Rect) -> App {
        App {
            settings,
            uptime: Duration::ZERO,
            area,
            systems: Vec::new(),
            game: GameStats::default(),
            waiting: None,
            logs: Vec::new(),
            request_samples: VecDeque::new(),
            requests_per_s: 0.0,
            selected: 0,
            focus: Pane::Table,
            gameplay_scroll: 0,
            log_scroll: 0,
            help_open: false,
            mouse_capture: false,
            paused: false,
            notice: None,
            closed_by_user: BTreeMap::new(),
            hurry: false,
            closing_by_user: BTreeSet::new(),
            quit_requested: false,
            shutdown: None,
            audio_notice_shown: false,
            source: Source::Local,
            connection: Connection::Live,
            confirm_quit: false,
        }
    }

    /// The systems on the table, in the session's order.
    pub fn system_ids(&self) -> Vec<SystemId> {
        self.systems.iter().map(|s| s.id).collect()
    }

    /// The same dashboard, fed by a remote agent's stream.
    pub fn remote(settings: Settings, area: Rect, url: String, can_command: bool) -> App {
        App {
            source: Source::Remote { url, can_command },
            ..App::new(settings, area)
        }
    }

    pub fn is_remote(&self) -> bool {
        matches!(self.source, Source::Remote { .. })
    }

    /// A remote agent without the control token: watch only.
    fn watch_only(&self) -> bool {
        matches!(
            self.source,
            Source::Remote {
                can_command: false,
                ..
            }
        )
    }

    pub fn phase(&self) -> Phase {
        match &self.shutdown {
            None => Phase::Running,
            Some(s) if s.final_since.is_some() => Phase::Final,
            Some(_) => Phase::ShuttingDown,
        }
    }

    pub fn selected_system(&self) -> Option<&SystemSnapshot> {
        self.systems.get(self.selected)
    }

    /// The notice, while it is fresh.
    /// How long the final panel stays without a key.
    pub fn linger(&self) -> Duration {
        if self.hurry {
            Duration::ZERO
        } else {
            self.settings.linger
        }
    }

    pub fn visible_notice(&self) -> Option<&Notice> {
        self.notice
            .as_ref()
            .filter(|n| self.uptime < n.at + NOTICE_FOR)
    }

    /// The next moment (uptime) at which the screen changes by time alone, given the
    /// fastest useful animation interval; `None`: only events change it.
    pub fn next_wake(&self, frame: Duration) -> Option<Duration> {
        let next_second = Duration::from_secs(self.uptime.as_secs() + 1);
        match self.phase() {
            Phase::Running => Some(next_second),
            Phase::ShuttingDown => Some(self.uptime + frame),
            Phase::Final => {
                let end = self
                    .shutdown
                    .as_ref()
                    .and_then(|s| s.final_since)
                    .map(|f| f + self.linger());
                Some(end.map_or(next_second, |e| e.min(next_second)))
            }
        }
    }

    fn notify(&mut self, text: impl Into<String>, bad: bool) {
        self.notice = Some(Notice {
            text: text.into(),
            bad,
            at: self.uptime,
        });
    }

    fn sample_requests(&mut self) {
        let total: u64 = self.systems.iter().map(|s| s.done + s.errors).sum();
        let now = self.uptime;
        if self.request_samples.back().is_some_and(|(t, _)| *t == now) {
            self.request_samples.pop_back();
        }
        self.request_samples.push_back((now, total));
        while self.request_samples.len() > 2
            && self
                .request_samples
                .front()
                .is_some_and(|(t, _)| *t + RATE_WINDOW < now)
        {
            self.request_samples.pop_front();
        }
        self.requests_per_s = match (self.request_samples.front(), self.request_samples.back()) {
            (Some((t0, n0)), Some((t1, n1))) if t1 > t0 => {
                n1.saturating_sub(*n0) as f64 / (*t1 - *t0).as_secs_f64()
            }
            _ => 0.0,
        };
    }

    fn select(&mut self, index: usize) {
        let last = self.systems.len().saturating_sub(1);
        self.selected = index.min(last);
    }

    fn page(&self, pane: Pane) -> usize {
        let areas = layout::dashboard(self.area, self.systems.len());
        let rect = match pane {
            Pane::Table => areas.table,
            Pane::Gameplay => areas.gameplay,
            Pane::Log => areas.log,
        };
        (rect.height.saturating_sub(2) as usize).max(1)
    }

    /// Move within the focused pane: `delta` rows down (negative: up).
    fn scroll(&mut self, pane: Pane, delta: isize) {
        match pane {
            Pane::Table => {
                if self.shutdown.is_none() {
                    let to = self.selected.saturating_add_signed(delta);
                    self.select(to);
                }
            }
            Pane::Gameplay => {
                self.gameplay_scroll =
                    (self.gameplay_scroll as isize + delta).clamp(0, u16::MAX as isize) as u16;
            }
            // Log lines count back from the newest: down moves toward it.
            Pane::Log => {
                let max = self.logs.len().saturating_sub(1);
                self.log_scroll = self.log_scroll.saturating_add_signed(-delta).min(max);
            }
        }
    }

    fn pane_at(&self, column: u16, row: u16) -> Option<Pane> {
        let areas = layout::dashboard(self.area, self.systems.len());
        let at = Position::new(column, row);
        if areas.table.contains(at) {
            Some(Pane::Table)
        } else if areas.gameplay.contains(at) {
            Some(Pane::Gameplay)
        } else if areas.log.contains(at) {
            Some(Pane::Log)
        } else {
            None
        }
    }

    fn click(&mut self, column: u16, row: u16) {
        let Some(pane) = self.pane_at(column, row) else {
            return;
        };
        self.focus = pane;
        if pane == Pane::Table && self.shutdown.is_none() {
            let table = layout::dashboard(self.area, self.systems.len()).table;
            let visible = layout::table_rows_visible(table);
            let offset = layout::table_offset(self.selected, visible);
            // Rows start below the top border and the header row.
            let first_row = table.y + 2;
            if row >= first_row {
                let index = offset + (row - first_row) as usize;
                if index < self.systems.len() && index < offset + visible {
                    self.selected = index;
                }
            }
        }
    }

    /// The user's `x` / `c` / `r` on the selected system. The session judges it against the
    /// system's real state (this table may be a refresh behind) and answers.
    fn act_on_selected(&mut self, action: &Action) -> Option<Command> {
        if self.shutdown.is_some() || self.quit_requested {
            self.notify("shutting down: every system is being closed", false);
            return None;
        }
        let id = self.selected_system()?.id;
        match action {
            Action::ForceClose => Some(Command::ForceClose(id)),
            Action::Close => Some(Command::Close(id)),
            Action::Reopen => Some(Command::Reopen(id)),
            _ => None,
        }
    }
}

/// Apply one action; what the runtime must do about it, if anything.
pub fn update(app: &mut App, action: Action) -> Option<Command> {
    let phase = app.phase();
    match action {
        Action::Tick(now) => {
            app.uptime = now;
            app.waiting = waited(&app.game);
            let step = if app.hurry {
                Duration::ZERO
            } else {
                app.settings.step
            };
            let linger = app.linger();
            let sd = app.shutdown.as_mut()?;
            sd.advance(now, step);
            match sd.final_since {
                Some(since) if now >= since + linger => Some(Command::Exit),
                _ => None,
            }
        }
        Action::Systems(systems) => {
            app.systems = systems;
            app.select(app.selected);
            // A system the user closed that is open again (reopened) is no longer theirs.
            let open: Vec<SystemId> = app
                .systems
                .iter()
                .filter(|s| !matches!(s.state, SystemState::Closed | SystemState::Closing))
                .map(|s| s.id)
                .collect();
            app.closed_by_user.retain(|id, _| !open.contains(id));
            app.sample_requests();
            None
        }
        Action::Game(game) => {
            // The one notice about sound (no device...), once.
            if !app.audio_notice_shown
                && let Some(text) = game.audio_notice.clone()
            {
                app.audio_notice_shown = true;
                app.notify(text, false);
            }
            app.game = *game;
            app.waiting = waited(&app.game);
            None
        }
        Action::Logs(lines) => {
            app.logs = lines;
            app.log_scroll = app.log_scroll.min(app.logs.len().saturating_sub(1));
            None
        }
        Action::Resize { width, height } => {
            app.area = Rect::new(0, 0, width, height);
            None
        }
        Action::UserCloseDone { report, forced } => {
            app.closing_by_user.remove(&report.name);
            // A graceful close cut at its deadline was forced too, though not by a key: the
            // row must not say "closed by you" over a forced close.
            let ended_forced = forced || report.outcome == crate::lifecycle::CloseOutcome::Forced;
            app.closed_by_user.insert(report.name, ended_forced);
            let line = summary::step_line(&report, app.settings.grace.as_millis() as u64, forced);
            let bad = report.outcome == crate::lifecycle::CloseOutcome::Error;
            app.notify(line.trim_start_matches("[CLEANUP] ").to_string(), bad);
            None
        }
        Action::UserCloseStarted { id, forced } => {
            app.closing_by_user.insert(id);
            let name = id.display_name();
            if forced {
                app.notify(format!("force-closing {name}…"), false);
            } else {
                app.notify(format!("closing {name}…"), false);
            }
            None
        }
        Action::Reopened { id } => {
            app.closed_by_user.remove(&id);
            app.notify(format!("{} reopened", id.display_name()), false);
            None
        }
        Action::Notice(text) => {
            app.notify(text, false);
            None
        }
        Action::ShutdownStarted(reason) => {
            if app.shutdown.is_none() {
                let ids = app.system_ids();
                app.shutdown = Some(ShutdownState::new(
                    reason,
                    app.uptime,
                    app.settings.grace,
                    ids,
                ));
                app.quit_requested = true;
                app.help_open = false;
            }
            None
        }
        Action::ShutdownBegin { grace, deadline_in } => {
            let now = app.uptime;
            let ids = app.system_ids();
            let sd = app
                .shutdown
                .get_or_insert_with(|| ShutdownState::new(Reason::Quit, now, grace, ids));
            sd.grace = grace;
            sd.deadline_at = Some(now + deadline_in);
            None
        }
        Action::SystemClosing(id) => {
            let now = app.uptime;
            if let Some(sd) = app.shutdown.as_mut() {
                sd.steps.push(Step {
                    arrived: now,
                    kind: StepKind::Closing(id),
                });
            }
            None
        }
        Action::SystemClosed {
            report,
            forced_by_user,
        } => {
            let now = app.uptime;
            if let Some(sd) = app.shutdown.as_mut() {
                sd.steps.push(Step {
                    arrived: now,
                    kind: StepKind::Closed {
                        report,
                        forced_by_user,
                    },
                });
            }
            None
        }
        Action::EndpointClosed(report) => {
            let now = app.uptime;
            if let Some(sd) = app.shutdown.as_mut() {
                sd.steps.push(Step {
                    arrived: now,
                    kind: StepKind::Endpoint(report),
                });
            }
            None
        }
        Action::Verified(check) => {
            let now = app.uptime;
            if let Some(sd) = app.shutdown.as_mut() {
                sd.verified = Some((check, now));
            }
            None
        }
        Action::Finished {
            report,
            report_path,
            report_error,
        } => {
            if let Some(sd) = app.shutdown.as_mut() {
                sd.report = Some(report);
                sd.report_path = report_path;
                sd.report_error = report_error;
            }
            None
        }
        Action::Hurry => {
            app.hurry = true;
            None
        }
        Action::Problem(text) => {
            app.notify(text, true);
            None
        }

        Action::Resync { shutting_down } => {
            if !shutting_down && app.shutdown.is_some() {
                // A new agent on the same address: its life starts from nothing here too.
                app.shutdown = None;
                app.quit_requested = false;
                app.closed_by_user.clear();
                app.closing_by_user.clear();
            } else if shutting_down && app.shutdown.is_none() {
                app.shutdown = Some(ShutdownState::new(
                    Reason::Quit,
                    app.uptime,
                    app.settings.grace,
                    app.system_ids(),
                ));
                app.quit_requested = true;
            }
            None
        }
        Action::Paused(paused) => {
            app.paused = paused;
            None
        }
        Action::Connection(connection) => {
            if connection == Connection::Ended {
                app.confirm_quit = false;
            }
            app.connection = connection;
            None
        }

        // Input from here on. The final panel, and a remote agent that has exited, end on
        // any key.
        action
            if action.is_key()
                && (phase == Phase::Final
                    || (app.is_remote() && app.connection == Connection::Ended)) =>
        {
            Some(Command::Exit)
        }
        Action::Detach if phase != Phase::Final => {
            if app.is_remote() {
                Some(Command::Detach)
            } else {
                None
            }
        }
        // The remote quit's question: yes (q again, y, Enter) or no (anything else).
        Action::Quit | Action::Confirm if app.confirm_quit => {
            app.confirm_quit = false;
            app.quit_requested = true;
            app.notify("asking the agent to quit…", false);
            Some(Command::Quit)
        }
        // Quit, Confirm and Detach are taken above.
        action if app.confirm_quit && action.is_key() => {
            app.confirm_quit = false;
            app.notify("quit cancelled: the agent goes on", false);
            None
        }
        Action::Quit
        | Action::ForceClose
        | Action::Close
        | Action::Reopen
        | Action::TogglePause
            if app.watch_only() && phase != Phase::Final =>
        {
            app.notify(
                "watching only: no control token (--token-file, SINGULARIS_CONTROL_TOKEN or the token file)",
                true,
            );
            None
        }
        Action::Quit if app.is_remote() && !app.quit_requested && phase == Phase::Running => {
            app.help_open = false;
            app.confirm_quit = true;
            None
        }
        Action::Quit => {
            app.help_open = false;
            if !app.quit_requested {
                app.quit_requested = true;
                app.notify("closing every connection… (q again forces)", false);
                return Some(Command::Quit);
            }
            let already = app.shutdown.as_ref().is_some_and(|s| s.force_requested);
            if already {
                return None;
            }
            if let Some(sd) = app.shutdown.as_mut() {
                sd.force_requested = true;
            }
            app.notify("forcing every system closed now", true);
            Some(Command::ForceAll)
        }
        Action::ToggleHelp => {
            app.help_open = !app.help_open;
            None
        }
        Action::Escape => {
            app.help_open = false;
            None
        }
        Action::ToggleMouse => {
            app.mouse_capture = !app.mouse_capture;
            app.notify(
                if app.mouse_capture {
                    "mouse on: click a row to select it (m turns it off to copy text)"
                } else {
                    "mouse off: the terminal selects text again"
                },
                false,
            );
            Some(Command::SetMouseCapture(app.mouse_capture))
        }
        // A popup is modal: other keys just close it.
        _ if app.help_open && !matches!(action, Action::Click { .. } | Action::Wheel { .. }) => {
            app.help_open = false;
            None
        }
        Action::Up => {
            app.scroll(app.focus, -1);
            None
        }
        Action::Down => {
            app.scroll(app.focus, 1);
            None
        }
        Action::PageUp => {
            let page = app.page(app.focus) as isize;
            app.scroll(app.focus, -page);
            None
        }
        Action::PageDown => {
            let page = app.page(app.focus) as isize;
            app.scroll(app.focus, page);
            None
        }
        Action::Home => {
            app.scroll(app.focus, -(u16::MAX as isize));
            None
        }
        Action::End => {
            app.scroll(app.focus, u16::MAX as isize);
            if app.focus == Pane::Log {
                app.log_scroll = 0;
            }
            None
        }
        Action::FocusNext => {
            app.focus = app.focus.next();
            None
        }
        Action::FocusPrev => {
            app.focus = app.focus.prev();
            None
        }
        Action::ForceClose | Action::Close | Action::Reopen => app.act_on_selected(&action),
        Action::TogglePause => {
            if app.shutdown.is_some() || app.quit_requested {
                return None;
            }
            app.paused = !app.paused;
            app.notify(
                if app.paused {
                    "gameplay paused (p resumes)"
                } else {
                    "gameplay resumed"
                },
                false,
            );
            Some(Command::SetPaused(app.paused))
        }
        Action::Click { column, row } => {
            app.click(column, row);
            None
        }
        Action::Wheel { up, column, row } => {
            if let Some(pane) = app.pane_at(column, row) {
                app.scroll(pane, if up { -1 } else { 1 });
            }
            None
        }
        Action::Detach | Action::Confirm | Action::OtherKey => None,
    }
}

/// The longest wait of the cycle in progress, measured now.
fn waited(game: &GameStats) -> Option<(crate::systems::SystemId, Duration)> {
    game.longest_wait().map(|(id, since)| (id, since.elapsed()))
}
