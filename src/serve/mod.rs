//! The control endpoint (`--serve`, `[serve] listen`; ARCHITECTURE.md, "The control
//! endpoint"): a live stream of the session's JSON events for viewers, a snapshot first, and
//! the commands a person at the dashboard has (close, force-close, reopen, pause, resume,
//! quit) for a viewer with the control token. It is one of the agent's endpoints: served on a
//! recorded listener, closed and verified at shutdown like the metrics endpoint.

mod commands;
mod stream;
pub mod token;

use crate::gameplay::GameStats;
use crate::lifecycle::{Registry, ShutdownEvent, StepReport, SystemsClosed};
use crate::session::control::Control;
use crate::session::events::{Event, SessionInfo, Snapshot};
use crate::session::{CycleEvent, QuitSignal};
use crate::sync::LockExt;
use crate::telemetry::served::Served;
use axum::routing::{get, post};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;
pub use token::{ControlToken, TokenError, TokenSource};
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

pub(crate) const STEP_NAME: &str = "control endpoint";

/// What the endpoint reads of the session: enough to draw it from nothing, and every feed of
/// what happens next.
pub(crate) struct Hub {
    pub registry: Arc<Registry>,
    pub stats: Arc<Mutex<GameStats>>,
    pub control: Control,
    pub paused: watch::Sender<bool>,
    pub quit: QuitSignal,
    pub cycles: broadcast::Sender<CycleEvent>,
    pub shutdown: broadcast::Sender<ShutdownEvent>,
    pub info: Mutex<SessionInfo>,
    pub started: Instant,
}

impl Hub {
    /// The whole session as it is now.
    pub fn snapshot(&self) -> Event {
        let stats = self.stats.locked().clone();
        Event::Snapshot(Box::new(Snapshot {
            session: self.info.locked().clone(),
            session_s: self.started.elapsed().as_secs_f64(),
            phase: if self.quit.is_set() {
                "shutting_down"
            } else {
                "running"
            },
            paused: *self.paused.borrow(),
            systems: self.registry.snapshots(),
            stats,
            commands: self.control.records(),
        }))
    }

    /// The counters, for a viewer's periodic refresh.
    pub fn refresh(&self) -> Event {
        Event::Refresh(Box::new(crate::session::events::Refresh {
            session_s: self.started.elapsed().as_secs_f64(),
            paused: *self.paused.borrow(),
            systems: self.registry.snapshots(),
            stats: self.stats.locked().clone(),
        }))
    }
}

/// What the handlers share.
struct Shared {
    hub: Arc<Hub>,
    token: ControlToken,
    /// Off loopback, watching needs the token too.
    watch_needs_token: bool,
    /// Fired when the endpoint closes: streams end, slowed answers are given at once.
    closing: CancellationToken,
    /// Failed tokens in a row, per peer address (ARCHITECTURE.md: each is slowed down more).
    failures: Mutex<HashMap<IpAddr, u32>>,
}

pub(crate) struct ControlEndpoint {
    served: Served,
    closing: CancellationToken,
    source: TokenSource,
}

impl ControlEndpoint {
    /// Bind `listen` and serve. Port 0 takes any free port: see [`ControlEndpoint::addr`].
    pub async fn start(
        listen: SocketAddr,
        hub: Arc<Hub>,
        token: ControlToken,
    ) -> std::io::Result<ControlEndpoint> {
        let closing = CancellationToken::new();
        let source = token.source.clone();
        let shared = Arc::new(Shared {
            hub: hub.clone(),
            token,
            watch_needs_token: !listen.ip().is_loopback(),
            closing: closing.clone(),
            failures: Mutex::new(HashMap::new()),
        });
        let app = axum::Router::new()
            .route("/v1/events", get(stream::events))
            .route("/v1/commands", post(commands::command))
            .route("/", get(index))
            .with_state(shared);
        let served = Served::start(STEP_NAME, listen, app, std::future::pending()).await?;
        let addr = served.addr();
        hub.info.locked().serve = Some(format!("http://{addr}"));
        if !addr.ip().is_loopback() {
            tracing::warn!(%addr, "the control endpoint is reachable from other hosts (not loopback); every request needs the token");
        }
        Ok(ControlEndpoint {
            served,
            closing,
            source,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.served.addr()
    }

    /// Where the token is (never what it is).
    pub fn token_source(&self) -> &TokenSource {
        &self.source
    }

    /// The shutdown step: every viewer's stream ends (its last event says why), commands in
    /// progress are answered, then the endpoint closes as every served endpoint does.
    pub async fn close(self, closed: SystemsClosed) -> StepReport {
        let started = Instant::now();
        let sockets_before = self.served.sockets_open();
        self.closing.cancel();
        self.served.close(&closed, started, sockets_before).await
    }
}

async fn index() -> &'static str {
    "singularis-tui control endpoint: GET /v1/events (a stream of JSON events, a snapshot first), POST /v1/commands (Authorization: Bearer <token>)\n"
}
