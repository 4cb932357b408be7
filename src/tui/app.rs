//! The dashboard's state: [`App`] and what it holds, with the questions a view asks of it
//! and the small moves the handlers make (`tui::update` changes it; `tui::view` draws it).
//! It knows nothing of actions or commands, so the actions can carry its types
//! ([`Connection`]) without a circle.

use super::theme::Theme;
use super::view::layout;
use crate::config::Mode;
use crate::gameplay::GameStats;
use crate::lifecycle::{CloseReport, StepReport, SystemSnapshot};
use crate::logging::LogLine;
use crate::session::report::{Reason, SessionReport};
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
    pub(super) fn next(self) -> Pane {
        match self {
            Pane::Table => Pane::Gameplay,
            Pane::Gameplay => Pane::Log,
            Pane::Log => Pane::Table,
        }
    }
    pub(super) fn prev(self) -> Pane {
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
    /// A key asked for the whole account now: every step shows as it arrives, and the
    /// final panel as soon as the report is in.
    pub skipped: bool,
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
            skipped: false,
        }
    }

    /// Reveal steps at the watchable pace: one per `step`, never before it arrived.
    pub(super) fn advance(&mut self, now: Duration, step: Duration) {
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

    /// Show the whole account now, and from now on every step as it arrives.
    pub(super) fn skip(&mut self, now: Duration) {
        self.skipped = true;
        // The next step is not held for the pace any more.
        self.next_reveal_at = self.next_reveal_at.min(now);
        self.advance(now, Duration::ZERO);
    }

    /// The systems of the account, in its order (the steps after them left out).
    pub fn system_rows(&self) -> Vec<SystemId> {
        self.rows()
            .into_iter()
            .filter_map(|row| match row {
                AccountRow::Waiting(id) | AccountRow::Closing(id) => Some(id),
                AccountRow::Done { report, .. } => Some(report.name),
                AccountRow::Endpoint(_) => None,
            })
            .collect()
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
    /// Lines of the help scrolled past (the popup clamps it to what it holds).
    pub help_scroll: usize,
    pub mouse_capture: bool,
    pub paused: bool,
    pub notice: Option<Notice>,
    /// Systems the user closed (`true`: the close ended forced, by `x` or at the grace
    /// deadline of a `c`) and that are still closed.
    pub closed_by_user: BTreeMap<SystemId, bool>,
    /// A process signal came, or a second quit: no pacing, no linger; the dashboard exits
    /// as soon as the shutdown is done (ARCHITECTURE.md, "Signals").
    pub hurry: bool,
    /// Closes the user asked for that have not ended yet.
    pub closing_by_user: BTreeSet<SystemId>,
    pub quit_requested: bool,
    pub shutdown: Option<ShutdownState>,
    pub(super) audio_notice_shown: bool,
    pub source: Source,
    pub connection: Connection,
    /// A remote quit waits for a yes.
    pub confirm_quit: bool,
    /// A remote agent's uptime as it last said it, and this viewer's `uptime` then.
    pub agent_clock: Option<(Duration, Duration)>,
    /// Why trace export is failing, while it is (shown in the header).
    pub traces_failing: Option<String>,
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
            help_scroll: 0,
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
            agent_clock: None,
            traces_failing: None,
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

    /// How long the session has run: this one's uptime, or a remote agent's own (counted on
    /// from what it last said); `None` before a remote agent said it.
    pub fn session_uptime(&self) -> Option<Duration> {
        match (&self.source, self.agent_clock) {
            (Source::Local, _) => Some(self.uptime),
            (Source::Remote { .. }, Some((said, at))) => {
                Some(said + self.uptime.saturating_sub(at))
            }
            (Source::Remote { .. }, None) => None,
        }
    }

    pub fn is_remote(&self) -> bool {
        matches!(self.source, Source::Remote { .. })
    }

    /// A remote agent without the control token: watch only.
    pub(super) fn watch_only(&self) -> bool {
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

    pub(super) fn notify(&mut self, text: impl Into<String>, bad: bool) {
        self.notice = Some(Notice {
            text: text.into(),
            bad,
            at: self.uptime,
        });
    }

    pub(super) fn sample_requests(&mut self) {
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

    pub(super) fn select(&mut self, index: usize) {
        let last = self.systems.len().saturating_sub(1);
        self.selected = index.min(last);
    }

    pub(super) fn page(&self, pane: Pane) -> usize {
        let areas = layout::dashboard(self.area, self.systems.len());
        let rect = match pane {
            Pane::Table => areas.table,
            Pane::Gameplay => areas.gameplay,
            Pane::Log => areas.log,
        };
        (rect.height.saturating_sub(2) as usize).max(1)
    }

    /// Move within the focused pane: `delta` rows down (negative: up).
    pub(super) fn scroll(&mut self, pane: Pane, delta: isize) {
        match pane {
            Pane::Table => match &self.shutdown {
                None => {
                    let to = self.selected.saturating_add_signed(delta);
                    self.select(to);
                }
                // During the shutdown the selection moves in the account's order (what `x`
                // would cut).
                Some(sd) => {
                    let rows = sd.system_rows();
                    let current = self.selected_system().map(|s| s.id);
                    let at = rows.iter().position(|id| Some(*id) == current).unwrap_or(0);
                    let to = at
                        .saturating_add_signed(delta)
                        .min(rows.len().saturating_sub(1));
                    if let Some(index) = rows
                        .get(to)
                        .and_then(|id| self.systems.iter().position(|s| s.id == *id))
                    {
                        self.selected = index;
                    }
                }
            },
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

    pub(super) fn pane_at(&self, column: u16, row: u16) -> Option<Pane> {
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

    pub(super) fn click(&mut self, column: u16, row: u16) {
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
}
