//! One session: the sandbox (if any), the eleven systems, the game, and the way it ends.
//! The front ends (headless printer, dashboard) drive it and render what it reports.

pub mod control;
pub mod events;
mod game;
pub mod hub;
pub mod report;
mod shutdown;
mod signals;
pub mod summary;
pub mod to_protocol;

use crate::sync::LockExt;
use signals::AbortOnDrop;
pub use signals::{QuitSignal, spawn_signal_listener};

use crate::audio::{AudioOut, AudioSettings};
use crate::config::{Config, Mode};
use crate::gameplay::{GameStats, cycle::Agent};
use crate::lifecycle::{self, Registry, ShutdownEvent, ShutdownReport};
use crate::sandbox::{Sandbox, SandboxSystem};
use crate::systems::{Protocol, SystemId};
use crate::telemetry::{MetricsEndpoint, Phase, SessionMetrics};
use anyhow::{Context, Result};
use report::{Reason, ReportStats, SessionReport, ShutdownSection};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, mpsc, watch};
use tokio_util::sync::CancellationToken;

/// The embedded sandbox's clock, as the config sets it: its tail is seeded by the game's
/// seed, so a session and its replay by the same config draw the same latencies.
pub fn sandbox_clock(config: &Config) -> crate::sandbox::Clock {
    crate::sandbox::Clock {
        timing: config.sandbox.timing.clone(),
        seed: config.gameplay.seed,
    }
}

/// One gameplay cycle ended (the JSON event stream's `cycle` events): the protocol's type.
pub use singularis_protocol::CycleEvent;

pub struct Session {
    pub config: Config,
    pub registry: Arc<Registry>,
    pub stats: Arc<Mutex<GameStats>>,
    pub quit: QuitSignal,
    /// Fires on a second quit request: every system is cut at once.
    pub force: CancellationToken,
    pub paused: watch::Sender<bool>,
    /// What a person may ask of the session while it runs (keys, viewers).
    pub control: control::Control,
    pub started: Instant,
    started_at: chrono::DateTime<chrono::Utc>,
    sandbox: Option<Sandbox>,
    sandbox_ports: Vec<u16>,
    /// The process's TCP sockets before any system opened; `None` when the table could not
    /// be read (the shutdown is then unverified, never counted against zero).
    baseline: Option<usize>,
    stop_game: CancellationToken,
    background: Vec<tokio::task::JoinHandle<()>>,
    /// What ended the session, when a task failed (the report's `error`).
    fatal: Arc<Mutex<Option<String>>>,
    /// Test hook (`--crash-after-cycles`): the game task panics after this many cycles, to
    /// prove a crash still shuts everything down.
    pub crash_after: Option<u64>,
    /// The sound output (speech, the shutdown chime); closed as the last shutdown step.
    pub audio: AudioOut,
    /// Prometheus figures, when `metrics.listen` is set; the endpoint closes after the systems.
    pub metrics: Option<Arc<SessionMetrics>>,
    metrics_endpoint: Option<MetricsEndpoint>,
    /// What viewers read (the control endpoint's, when one serves it).
    hub: Arc<hub::Hub>,
    /// Closing steps after every other (the control endpoint, so its viewers see the others
    /// close), given by whoever started them.
    last_steps: Mutex<Vec<lifecycle::ClosingStep>>,
    cycles: broadcast::Sender<CycleEvent>,
    /// Each shutdown step, for the control endpoint's viewers (the front end gets its own
    /// channel as well).
    shutdown_events: broadcast::Sender<ShutdownEvent>,
}

/// How a session is run, whatever shows it (the dashboard or the headless account).
pub struct RunOptions {
    pub mode: Mode,
    pub cycles: u64,
    pub grace: Duration,
    pub report: Option<std::path::PathBuf>,
    pub crash_after: Option<u64>,
    /// Test hook (`--test-leak-socket`): this system's first connection is held open past
    /// its close (checked by [`check_leak_hook`] before the session starts).
    pub leak_socket: Option<SystemId>,
    /// JSON lines on stdout instead of text (headless only).
    pub json: bool,
    /// Record every system's exchanges here (`--record DIR`).
    pub record: Option<std::path::PathBuf>,
}

/// Whether `--test-leak-socket SYSTEM` may run with `config`: only for an enabled system
/// that connects to the embedded sandbox, so the socket it leaks is one to our own loopback
/// server, never a service's. The notice to print when it may.
pub fn check_leak_hook(config: &Config, id: SystemId) -> Result<String, String> {
    let c = config.system(id);
    if !c.enabled || c.protocol == Protocol::Moe || !c.base_url.is_sandbox() {
        return Err(format!(
            "--test-leak-socket is a test hook for a system that connects to the embedded \
             sandbox; {} does not ({})",
            id.name(),
            if !c.enabled {
                "disabled".to_string()
            } else if c.protocol == Protocol::Moe {
                "it makes no connection of its own".to_string()
            } else {
                format!("its base_url is {}", c.base_url)
            }
        ));
    }
    Ok(format!(
        "test hook --test-leak-socket: {}'s first connection will be held open past its \
         close; this session ends with a leak (exit status 3)",
        id.name()
    ))
}

/// Exit status of a session stopped by its spend limit (README.md, "Exit codes").
pub const EXIT_BUDGET: i32 = 5;

pub struct SessionEnd {
    pub report: SessionReport,
    pub report_path: Option<std::path::PathBuf>,
    pub report_error: Option<String>,
    /// Why the account (text or JSON) did not reach stdout, when it failed for another
    /// reason than its reader leaving (`> /dev/full`): said on stderr, exit status 1.
    pub output_error: Option<String>,
}

impl SessionEnd {
    /// ARCHITECTURE.md exit status: 0 clean, 3 sockets still open, 4 the shutdown could not be
    /// verified, 1 the session ended in error, a closing step failed, or its report or account
    /// could not be written, 5 stopped by the spend limit. The rule is [`report::exit_status`],
    /// which the report's own `exit_status` comes from too; the account on stdout is written
    /// after the report, so its failure is added here.
    pub fn exit_code(&self) -> i32 {
        match report::exit_status(&self.report.shutdown, self.report_error.is_none()) {
            0 | EXIT_BUDGET if self.output_error.is_some() => 1,
            code => code,
        }
    }
}

impl Session {
    /// Start the sandbox (when any system uses it) and build the systems. No connection is
    /// opened yet: the socket baseline is taken first.
    pub async fn start(config: Config) -> Result<Session> {
        Self::start_with(
            config,
            QuitSignal::default(),
            CancellationToken::new(),
            None,
        )
        .await
    }

    /// As [`Session::start`], with quit and force signals made earlier (so signal handlers
    /// can be in place before anything opens).
    pub(crate) async fn start_with(
        config: Config,
        quit: QuitSignal,
        force: CancellationToken,
        record: Option<&std::path::Path>,
    ) -> Result<Session> {
        let baseline = socket_baseline();
        // Sound first: ALSA may write to stderr while opening, before any screen is taken.
        let audio = AudioOut::open(AudioSettings::from_config(&config.audio)).await;
        let stats = GameStats {
            audio: audio.state().name().to_string(),
            audio_notice: audio.notice().map(str::to_string),
            ..GameStats::default()
        };
        let sandbox = start_sandbox(&config).await?;
        let sandbox_ports = sandbox.as_ref().map(|s| s.ports()).unwrap_or_default();
        let registry = build_registry(&config, &sandbox_urls(&config, sandbox.as_ref()));
        log_disabled(&registry);
        let stats = Arc::new(Mutex::new(stats));
        let (metrics, metrics_endpoint) =
            match start_outputs(&config, &registry, &stats, record).await {
                Ok(started) => started,
                Err(e) => {
                    if let Some(sb) = sandbox {
                        sb.stop().await;
                    }
                    return Err(e);
                }
            };
        let stop_game = CancellationToken::new();
        let background = background_tasks(&registry, &stats, &quit, &stop_game);
        let paused = watch::channel(false).0;
        let started = Instant::now();
        let control = control::Control::new(
            registry.clone(),
            paused.clone(),
            quit.clone(),
            force.clone(),
            Duration::from_millis(config.shutdown.grace_ms),
            started,
        );
        let cycles = broadcast::channel(1024).0;
        let shutdown_events = broadcast::channel(256).0;
        let metrics_url = metrics_endpoint
            .as_ref()
            .map(|ep| format!("http://{}/metrics", ep.addr()));
        let hub = Arc::new(hub::Hub {
            registry: registry.clone(),
            stats: stats.clone(),
            control: control.clone(),
            paused: paused.clone(),
            quit: quit.clone(),
            cycles: cycles.clone(),
            shutdown: shutdown_events.clone(),
            info: Mutex::new(session_info(&config, metrics_url)),
            started,
            logs: crate::logging::LogBuffer::global(),
            redactor: crate::logging::Redactor::from_config(&config),
        });
        Ok(Session {
            registry,
            stats,
            quit,
            force,
            paused,
            control,
            started,
            started_at: chrono::Utc::now(),
            sandbox,
            sandbox_ports,
            baseline,
            stop_game,
            background,
            fatal: Arc::new(Mutex::new(None)),
            crash_after: None,
            audio,
            metrics,
            metrics_endpoint,
            hub,
            last_steps: Mutex::new(Vec::new()),
            cycles,
            shutdown_events,
            config,
        })
    }

    /// Set the test hooks a front end was asked for (`--crash-after-cycles`,
    /// `--test-leak-socket`), before the game starts: no system has connected yet.
    pub fn apply_test_hooks(&mut self, opts: &RunOptions) {
        self.crash_after = opts.crash_after;
        if let Some(id) = opts.leak_socket {
            tracing::warn!(system = %id, "test hook --test-leak-socket: the first connection will be held open past the close");
            self.registry.get(id).leak_next_connection();
        }
    }

    /// Where `/metrics` is served, when it is.
    pub fn metrics_addr(&self) -> Option<std::net::SocketAddr> {
        self.metrics_endpoint.as_ref().map(|ep| ep.addr())
    }

    /// What a viewer reads of the session (to serve it: `serve::ControlEndpoint`).
    pub fn hub(&self) -> Arc<hub::Hub> {
        self.hub.clone()
    }

    /// A closing step to run after every other one, before the process-wide check (the
    /// control endpoint: its viewers see the others close).
    pub fn close_last(&self, step: lifecycle::ClosingStep) {
        self.last_steps.locked().push(step);
    }

    /// Let go of a session that never ran (something its front end needed could not
    /// start): its tasks stop and its sandbox closes. Nothing was opened, so nothing is
    /// reported.
    pub async fn abandon(mut self) {
        self.stop_game.cancel();
        for t in self.background.drain(..) {
            t.abort();
            let _ = t.await;
        }
        if let Some(sb) = self.sandbox.take() {
            sb.stop().await;
        }
    }

    /// Every gameplay cycle that ends from now on.
    pub(crate) fn subscribe_cycles(&self) -> broadcast::Receiver<CycleEvent> {
        self.cycles.subscribe()
    }

    pub fn sandbox(&self) -> Option<&Sandbox> {
        self.sandbox.as_ref()
    }

    /// A task whose failure ends the session: a panic in it is recorded and shuts
    /// everything down with reason `error`.
    pub(crate) fn watch_task(&mut self, name: &'static str, task: tokio::task::JoinHandle<()>) {
        let abort = task.abort_handle();
        let quit = self.quit.clone();
        let fatal = self.fatal.clone();
        let watcher = tokio::spawn(async move {
            if let Err(e) = task.await
                && e.is_panic()
            {
                let what = e.into_panic();
                let msg = what
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| what.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "panic".into());
                tracing::error!(task = name, panic = %msg, "task panicked; shutting down");
                {
                    let mut f = fatal.locked();
                    f.get_or_insert(format!("{name} task panicked: {msg}"));
                }
                quit.quit(Reason::Error);
            }
        });
        // Aborting the watcher alone would leave the task running: keep a handle that stops both.
        self.background.push(tokio::spawn(async move {
            let _guard = AbortOnDrop(abort);
            let _ = watcher.await;
        }));
    }

    /// Record a fatal error from a front end (e.g. the terminal failed) and shut down.
    pub fn fail(&self, cause: String) {
        tracing::error!(%cause, "fatal error; shutting down");
        {
            let mut f = self.fatal.locked();
            f.get_or_insert(cause);
        }
        self.quit.quit(Reason::Error);
    }
}

/// The process's open sockets before anything connects, which the shutdown's verification
/// compares against; none (said in the log) when the socket table cannot be read.
fn socket_baseline() -> Option<usize> {
    match lifecycle::sockets::count_process_sockets(&[]) {
        Ok(n) => Some(n),
        Err(e) => {
            tracing::warn!(error = %e, "no socket baseline: this session's shutdown cannot be verified");
            None
        }
    }
}

/// The embedded sandbox, serving every enabled system whose base URL is the sandbox; none
/// when no system uses it.
async fn start_sandbox(config: &Config) -> Result<Option<Sandbox>> {
    if !config.needs_sandbox() {
        return Ok(None);
    }
    let systems = config
        .ids()
        .into_iter()
        .filter(|id| {
            let c = config.system(*id);
            c.enabled && c.protocol != Protocol::Moe && c.base_url.is_sandbox()
        })
        .map(|id| SandboxSystem::from_config(config, id, config.sandbox.faults.get(&id).copied()))
        .collect();
    Ok(Some(
        Sandbox::start_apart(config.sandbox.listen, 0, systems, sandbox_clock(config))
            .await
            .context("starting the embedded sandbox")?,
    ))
}

/// Each system's address on `sandbox`, for the systems it serves.
pub(crate) fn sandbox_urls(
    config: &Config,
    sandbox: Option<&Sandbox>,
) -> BTreeMap<SystemId, url::Url> {
    config
        .ids()
        .into_iter()
        .filter_map(|id| Some((id, sandbox?.base_url(id)?)))
        .collect()
}

/// The systems, pointed at the sandbox's `urls` where they use it.
pub(crate) fn build_registry(
    config: &Config,
    urls: &BTreeMap<SystemId, url::Url>,
) -> Arc<Registry> {
    // The live sandbox takes seconds, as the services do: the first calls get the
    // same allowance as on a real service.
    let sandbox_urls = crate::lifecycle::SandboxUrls {
        urls,
        instant: config.sandbox.timing.is_instant(),
    };
    Arc::new(Registry::new(
        config,
        sandbox_urls,
        &crate::lifecycle::registry::process_env,
    ))
}

/// What the session writes out besides the screen: the recording (`--record DIR`) and the
/// metrics endpoint, in that order.
async fn start_outputs(
    config: &Config,
    registry: &Arc<Registry>,
    stats: &Arc<Mutex<GameStats>>,
    record: Option<&std::path::Path>,
) -> Result<(Option<Arc<SessionMetrics>>, Option<MetricsEndpoint>)> {
    record_to(registry, record)?;
    start_metrics(config, registry, stats).await
}

/// Every system records its exchanges in `dir` (`--record DIR`), when asked.
fn record_to(registry: &Registry, dir: Option<&std::path::Path>) -> Result<()> {
    match dir {
        Some(dir) => registry.record_to(dir).map_err(|e| {
            anyhow::anyhow!(
                "--record {}: cannot write the recording: {e}",
                dir.display()
            )
        }),
        None => Ok(()),
    }
}

fn log_disabled(registry: &Registry) {
    for s in registry.all() {
        if let Some(reason) = s.snapshot().disabled_reason {
            tracing::info!(system = %s.id, %reason, "disabled");
        }
    }
}

/// The tasks a session runs beside the game: the socket sampler, and the spend's watch when
/// a budget is set.
fn background_tasks(
    registry: &Arc<Registry>,
    stats: &Arc<Mutex<GameStats>>,
    quit: &QuitSignal,
    stop: &CancellationToken,
) -> Vec<tokio::task::JoinHandle<()>> {
    let sampler = registry.spawn_socket_sampler(Duration::from_millis(250), stop.clone());
    let mut background = vec![sampler];
    if let Some(budget) = registry.budget.clone() {
        background.push(watch_budget(
            budget,
            stats.clone(),
            quit.clone(),
            stop.clone(),
        ));
    }
    background
}

/// The metrics figures and their endpoint, when `metrics.listen` asks for them.
async fn start_metrics(
    config: &Config,
    registry: &Arc<Registry>,
    stats: &Arc<Mutex<GameStats>>,
) -> Result<(Option<Arc<SessionMetrics>>, Option<MetricsEndpoint>)> {
    let Some(listen) = config.metrics.listen else {
        return Ok((None, None));
    };
    let m = SessionMetrics::new(registry.clone(), stats.clone());
    let started = MetricsEndpoint::start(listen, m.clone())
        .await
        .map(|ep| (m, ep));
    match started {
        Ok((m, ep)) => Ok((Some(m), Some(ep))),
        Err(e) => Err(BadSetting(format!(
            "metrics.listen {listen}: cannot serve the metrics endpoint: {e}"
        ))
        .into()),
    }
}

/// A setting that cannot be honoured at start, named with its cause (a listen address
/// already in use): the user's to change, so the exit status is the one for bad usage or a
/// bad config (2, ARCHITECTURE.md), and the message is one line.
#[derive(Debug)]
pub struct BadSetting(pub String);

impl std::fmt::Display for BadSetting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadSetting {}

/// What the session is, as viewers are told (`serve` adds where it is served).
fn session_info(config: &Config, metrics: Option<String>) -> events::SessionInfo {
    events::SessionInfo {
        version: env!("CARGO_PKG_VERSION").to_string(),
        mode: config.gameplay.mode.name().to_string(),
        backend: config.backend().to_string(),
        cycles: config.gameplay.cycles,
        grace_ms: config.shutdown.grace_ms,
        metrics,
        serve: None,
    }
}

/// Keeps the game's figures' view of the spend current (the dashboard, the report, viewers),
/// and ends the session (reason `budget`) once its limit stopped a call.
fn watch_budget(
    budget: Arc<lifecycle::Budget>,
    stats: Arc<Mutex<GameStats>>,
    quit: QuitSignal,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let exhausted = budget.exhausted();
    tokio::spawn(async move {
        loop {
            stats.locked().budget = Some(budget.snapshot());
            tokio::select! {
                _ = exhausted.cancelled() => {
                    stats.locked().budget = Some(budget.snapshot());
                    tracing::warn!("the session's spend limit is reached; shutting down");
                    quit.quit(Reason::Budget);
                    return;
                }
                _ = stop.cancelled() => {
                    stats.locked().budget = Some(budget.snapshot());
                    return;
                }
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
    })
}
