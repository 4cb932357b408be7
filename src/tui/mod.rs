//! The terminal dashboard (Elm style): one [`App`] state; terminal input and engine news
//! become [`Action`]s; [`update`] changes the state and may return a [`Command`], which this
//! runtime carries out against the engine; [`view::view`] draws the state.
//!
//! The runtime sleeps until something happens — input, a registry change, a log line, a
//! shutdown event, a timer the screen needs (uptime, animation, linger) — and draws at most
//! once per `ui.refresh_ms`. The engine knows nothing of the terminal.

use crate::sync::LockExt;
pub mod action;
pub mod app;

pub(crate) mod terminal;
pub mod theme;
mod update;
pub mod view;

pub use action::{Action, Command};
pub use app::{App, Settings};
pub use update::update;

use crate::config::Config;
use crate::gameplay::GameStats;
use crate::lifecycle::{CloseOutcome, CloseReport, Registry, ShutdownEvent};
use crate::logging::LogBuffer;
use crate::logging::Redactor;
use crate::session::RunOptions;
use crate::session::control::{Control, Reply};
use crate::session::report::Reason;
use crate::session::summary::Account;
use crate::session::{QuitSignal, Session, SessionEnd, spawn_signal_listener};
use anyhow::{Result, anyhow};
use crossterm::event::EventStream;
use futures::StreamExt;
use ratatui::layout::Rect;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use terminal::Screen;
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

/// The fastest frame rate allowed, whatever the config says.
const MIN_FRAME: Duration = Duration::from_millis(16);

/// The time between two frames: `ui.refresh_ms`, never under [`MIN_FRAME`]. The local
/// dashboard's and every attached one's.
pub fn frame_interval(config: &Config) -> Duration {
    Duration::from_millis(config.ui.refresh_ms).max(MIN_FRAME)
}

/// A dashboard's settings from the config: the session's `backend`, `mode` and `grace` (the
/// local one's, or an attached agent's until its snapshot says), the config's pacing, and
/// the terminal's theme.
pub fn settings(
    config: &Config,
    backend: String,
    mode: crate::config::Mode,
    grace: Duration,
) -> Settings {
    Settings {
        backend,
        mode,
        grace,
        step: Duration::from_millis(config.ui.shutdown_step_ms),
        linger: Duration::from_secs(config.ui.linger_s),
        theme: theme::Theme::from_env(),
        metrics: None,
        serve: None,
    }
}

/// Run a session with the dashboard; after it, print the headless summary to stdout.
pub async fn run(config: Config, opts: RunOptions) -> Result<SessionEnd> {
    let mut settings = settings(&config, config.backend().to_string(), opts.mode, opts.grace);
    let frame = frame_interval(&config);
    let redactor = Redactor::from_config(&config);

    // Signals first: a quit that arrives while the session starts is not lost. Then the
    // session: its start-up (sound: ALSA writes to stderr) may print or fail before the
    // screen is taken.
    let (quit, force) = (QuitSignal::default(), CancellationToken::new());
    let signals = spawn_signal_listener(quit.clone(), force.clone())?;
    let mut session = match Session::start_with(config, quit, force, opts.record.as_deref()).await {
        Ok(s) => s,
        Err(e) => {
            signals.abort();
            return Err(e);
        }
    };
    let served = match crate::serve::serve(&session).await {
        Ok(served) => served,
        Err(e) => {
            signals.abort();
            session.abandon().await;
            return Err(crate::session::BadSetting(e).into());
        }
    };
    session.apply_test_hooks(&opts);
    settings.metrics = session.metrics_addr().map(|a| a.to_string());
    settings.serve = served.map(|(a, _)| a.to_string());
    session.spawn_gameplay(opts.mode, opts.cycles);

    let screen = match Screen::take() {
        Ok(s) => s,
        Err(e) => {
            // No dashboard: still close everything and write the report.
            session.quit.quit(Reason::Error);
            let _ = session
                .shutdown(opts.grace, opts.mode, opts.report.clone(), None)
                .await;
            signals.abort();
            return Err(anyhow!("cannot take the terminal: {e}"));
        }
    };
    let mut dashboard = Dashboard::new(session, screen, settings, frame, redactor, opts);
    let outcome = dashboard.run().await;
    signals.abort();
    // The terminal is given back before anything is printed.
    dashboard.screen = None;
    // Not `eprintln!`: it panics when the terminal is gone (hangup).
    for p in terminal::take_deferred_panics() {
        let _ = writeln!(
            std::io::stderr(),
            "singularis-tui: a task panicked while the dashboard was open: {p}"
        );
    }
    let end = outcome?;
    dashboard.print_summary(&end);
    Ok(end)
}

/// Who the report says asked, for the dashboard's keys.
const YOU: &str = "you";

/// The runtime: the app state plus handles on the engine and the terminal.
struct Dashboard {
    app: App,
    screen: Option<Screen>,
    session: Option<Session>,
    registry: Arc<Registry>,
    stats: Arc<Mutex<GameStats>>,
    quit: QuitSignal,
    force: CancellationToken,
    started: Instant,
    frame: Duration,
    redactor: Redactor,
    opts: RunOptions,
    /// What the keys ask of the session.
    control: Control,
    /// Closes the user asked for (`x`, `c`), each ending in its report.
    user_closes: JoinSet<CloseReport>,
    shutdown_task: Option<JoinHandle<SessionEnd>>,
    shutdown_events: Option<mpsc::UnboundedReceiver<ShutdownEvent>>,
    /// Each system's close as it arrived, with "everything was being forced" at that moment:
    /// what the headless printer prints.
    steps: Vec<(CloseReport, bool)>,
    end: Option<SessionEnd>,
    exit: bool,
}

impl Dashboard {
    fn new(
        session: Session,
        mut screen: Screen,
        settings: Settings,
        frame: Duration,
        redactor: Redactor,
        opts: RunOptions,
    ) -> Dashboard {
        let area = screen
            .terminal()
            .and_then(|t| t.size())
            .map(|s| Rect::new(0, 0, s.width, s.height))
            .unwrap_or(Rect::new(0, 0, 80, 24));
        Dashboard {
            app: App::new(settings, area),
            registry: session.registry.clone(),
            stats: session.stats.clone(),
            quit: session.quit.clone(),
            force: session.force.clone(),
            control: session.control.clone(),
            started: session.started,
            session: Some(session),
            screen: Some(screen),
            frame,
            redactor,
            opts,
            user_closes: JoinSet::new(),
            shutdown_task: None,
            shutdown_events: None,
            steps: Vec::new(),
            end: None,
            exit: false,
        }
    }

    async fn run(&mut self) -> Result<SessionEnd> {
        let mut input = EventStream::new();
        let mut input_open = true;
        let mut systems_changed = self.registry.subscribe();
        let mut systems_open = true;
        let mut logs_changed = LogBuffer::global().subscribe();
        let mut logs_open = true;
        let mut logs_dirty = true;
        let mut dirty = true;
        let mut next_frame = Instant::now();
        let far = Duration::from_secs(3600);

        loop {
            let now = Instant::now();
            if dirty && now >= next_frame {
                self.refresh(std::mem::take(&mut logs_dirty));
                self.draw();
                dirty = false;
                next_frame = now + self.frame;
            }
            if self.exit || (self.end.is_some() && self.screen.is_none()) {
                break;
            }
            let wake = if dirty {
                next_frame
            } else {
                self.started
                    + self
                        .app
                        .next_wake(self.frame)
                        .unwrap_or(self.app.uptime + far)
            };
            let shutting = self.shutdown_task.is_some();
            tokio::select! {
                event = input.next(), if input_open => match event {
                    Some(Ok(event)) => {
                        if let Some(action) = action::from_event(&event) {
                            self.dispatch(action);
                            dirty = true;
                        }
                    }
                    Some(Err(e)) => {
                        input_open = false;
                        tracing::error!(error = %e, "terminal input failed; shutting down");
                        self.quit.terminal_lost();
                    }
                    None => {
                        input_open = false;
                        tracing::warn!("terminal input closed; shutting down");
                        self.quit.terminal_lost();
                    }
                },
                changed = systems_changed.changed(), if systems_open => {
                    systems_open = changed.is_ok();
                    dirty = true;
                }
                changed = logs_changed.changed(), if logs_open => {
                    logs_open = changed.is_ok();
                    logs_dirty = true;
                    dirty = true;
                    // A failing log file pushes its line here, so this is when to say it.
                    if let Some(text) = crate::logging::unsaid_write_failure() {
                        self.dispatch(Action::Problem(text));
                    }
                }
                _ = self.quit.wait(), if self.session.is_some() => {
                    self.begin_shutdown();
                    dirty = true;
                }
                _ = self.quit.signalled(), if !self.app.hurry => {
                    self.dispatch(Action::Hurry);
                    dirty = true;
                }
                event = recv(&mut self.shutdown_events), if self.shutdown_events.is_some() => {
                    match event {
                        Some(event) => self.on_shutdown_event(event),
                        None => self.shutdown_events = None,
                    }
                    dirty = true;
                }
                joined = join(&mut self.shutdown_task), if shutting => {
                    self.shutdown_task = None;
                    let end = joined.map_err(|e| anyhow!("the shutdown task failed: {e}"))?;
                    self.on_session_end(end);
                    dirty = true;
                }
                Some(joined) = self.user_closes.join_next(), if !self.user_closes.is_empty() => {
                    match joined {
                        Ok(report) => {
                            let forced = report.earlier.as_ref().is_some_and(|e| e.forced_on_request)
                                || report.outcome == CloseOutcome::Forced;
                            self.dispatch(Action::UserCloseDone { report: self.scrubbed(report), forced });
                        }
                        Err(e) => self.dispatch(Action::Problem(format!("a close task failed: {e}"))),
                    }
                    dirty = true;
                }
                _ = tokio::time::sleep_until(wake.into()) => dirty = true,
            }
        }
        self.end
            .take()
            .ok_or_else(|| anyhow!("the dashboard ended before the session"))
    }

    /// Bring the state up to date with the engine before a frame.
    fn refresh(&mut self, logs: bool) {
        let systems = self
            .registry
            .snapshots()
            .into_iter()
            .map(|mut s| {
                s.last_error = s.last_error.map(|e| self.redactor.scrub(&e));
                s.disabled_reason = s.disabled_reason.map(|e| self.redactor.scrub(&e));
                s
            })
            .collect();
        self.dispatch(Action::Systems(systems));
        let game = self.stats.locked().clone();
        self.dispatch(Action::Game(Box::new(game)));
        let traces = crate::telemetry::otlp::state().and_then(|t| t.failing);
        if traces != self.app.traces_failing {
            self.dispatch(Action::TracesFailing(traces));
        }
        if logs {
            let lines = LogBuffer::global()
                .lines()
                .into_iter()
                .map(|mut l| {
                    l.text = self.redactor.scrub(&l.text);
                    l
                })
                .collect();
            self.dispatch(Action::Logs(lines));
        }
    }

    fn draw(&mut self) {
        let Some(screen) = self.screen.as_mut() else {
            return;
        };
        let app = &self.app;
        if let Err(e) = screen
            .terminal()
            .and_then(|t| t.draw(|f| view::view(app, f)).map(|_| ()))
        {
            // The terminal is gone (hangup, closed pty): finish the shutdown without it.
            tracing::error!(error = %e, "cannot draw; going on without the dashboard");
            self.screen = None;
            self.quit.terminal_lost();
        }
    }

    /// Time first (uptime, animation, linger), then the action; carry out what they ask.
    fn dispatch(&mut self, action: Action) {
        let now = self.started.elapsed();
        let mut pending = vec![action, Action::Tick(now)];
        while let Some(action) = pending.pop() {
            if let Some(command) = update(&mut self.app, action)
                && let Some(follow_up) = self.execute(command)
            {
                pending.push(follow_up);
            }
        }
    }

    fn execute(&mut self, command: Command) -> Option<Action> {
        match command {
            Command::Quit => {
                self.control.quit(YOU);
            }
            Command::ForceAll => {
                tracing::warn!("second quit request: force-closing everything");
                self.force.cancel();
            }
            Command::ForceClose(id) | Command::Close(id) => {
                let forced = matches!(command, Command::ForceClose(_));
                return match self.control.close(id, YOU, forced) {
                    Reply::Closing(close) => {
                        self.user_closes.spawn(close);
                        Some(Action::UserCloseStarted { id, forced })
                    }
                    Reply::Done(text) | Reply::Refused(text) => Some(Action::Notice(text)),
                };
            }
            Command::Reopen(id) => {
                return match self.control.reopen(id, YOU) {
                    Reply::Done(_) => Some(Action::Reopened { id }),
                    Reply::Refused(text) => Some(Action::Notice(text)),
                    Reply::Closing(_) => None,
                };
            }
            Command::SetPaused(paused) => {
                self.control.set_paused(paused, YOU);
            }
            Command::SetMouseCapture(on) => {
                if let Some(screen) = self.screen.as_mut()
                    && let Err(e) = screen.set_mouse_capture(on)
                {
                    return Some(Action::Problem(format!("cannot switch mouse capture: {e}")));
                }
            }
            // Only a remote agent's viewer detaches.
            Command::Detach => {}
            Command::Exit => self.exit = self.end.is_some(),
        }
        None
    }

    /// The session was asked to end: run its shutdown in a task of its own, so the
    /// animation never holds it up, and render its events as they come.
    fn begin_shutdown(&mut self) {
        let Some(session) = self.session.take() else {
            return;
        };
        self.dispatch(Action::ShutdownStarted(session.quit.reason()));
        let (tx, rx) = mpsc::unbounded_channel();
        self.shutdown_events = Some(rx);
        let (grace, mode, report) = (self.opts.grace, self.opts.mode, self.opts.report.clone());
        self.shutdown_task = Some(tokio::spawn(session.shutdown(
            grace,
            mode,
            report,
            Some(tx),
        )));
    }

    fn on_shutdown_event(&mut self, event: ShutdownEvent) {
        let action = match event {
            ShutdownEvent::Begin { grace, deadline } => Action::ShutdownBegin {
                grace,
                deadline_in: deadline.saturating_duration_since(tokio::time::Instant::now()),
            },
            ShutdownEvent::Closing(id) => Action::SystemClosing(id),
            // The dashboard shows a close from its start to its end.
            ShutdownEvent::Released(_) => return,
            ShutdownEvent::Closed(report) => {
                // Forced on request: everything (a second quit) or this system alone (`x`).
                let forced_by_user =
                    self.force.is_cancelled() || self.control.cut_at_shutdown(report.name);
                self.steps.push((report.clone(), forced_by_user));
                Action::SystemClosed {
                    report: self.scrubbed(report),
                    forced_by_user,
                }
            }
            ShutdownEvent::StepClosed(report) => Action::EndpointClosed(report),
            ShutdownEvent::Verified(check) => Action::Verified(check),
        };
        self.dispatch(action);
    }

    fn on_session_end(&mut self, end: SessionEnd) {
        // Events sent before the task ended come first.
        if let Some(mut rx) = self.shutdown_events.take() {
            while let Ok(event) = rx.try_recv() {
                self.on_shutdown_event(event);
            }
        }
        self.dispatch(Action::Finished {
            report: Box::new(end.report.clone()),
            report_path: end.report_path.as_ref().map(|p| p.display().to_string()),
            report_error: end.report_error.clone(),
        });
        self.end = Some(end);
    }

    fn scrubbed(&self, mut report: CloseReport) -> CloseReport {
        report.error = report.error.map(|e| self.redactor.scrub(&e));
        report
    }

    /// Exactly the `--headless` lines.
    fn print_summary(&self, end: &SessionEnd) {
        let mut account =
            Account::new(std::io::stdout().lock(), self.opts.grace.as_millis() as u64);
        account.begin();
        for (report, forced_by_user) in &self.steps {
            account.system(report, *forced_by_user);
        }
        for report in &end.report.shutdown.report.endpoints {
            account.endpoint(report);
        }
        account.end(&end.report, end.report_path.as_deref());
    }
}

async fn recv<T>(rx: &mut Option<mpsc::UnboundedReceiver<T>>) -> Option<T> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

async fn join<T>(task: &mut Option<JoinHandle<T>>) -> Result<T, tokio::task::JoinError> {
    match task {
        Some(t) => t.await,
        None => std::future::pending().await,
    }
}
