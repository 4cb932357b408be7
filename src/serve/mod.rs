//! The control endpoint (`--serve`, `[serve] listen`; ARCHITECTURE.md, "The control
//! endpoint"): a live stream of the session's JSON events for viewers, a snapshot first, and
//! the commands a person at the dashboard has (close, force-close, reopen, pause, resume,
//! quit) for a viewer with the control token. It is one of the agent's endpoints: served on a
//! recorded listener, closed and verified at shutdown like the metrics endpoint.

mod commands;
mod stream;

use crate::control_token::ControlToken;
pub use crate::control_token::{TokenError, TokenSource};
use crate::lifecycle::{ClosingStep, StepReport, SystemsClosed};
use crate::session::Session;
use crate::session::hub::Hub;
use crate::sync::LockExt;
use crate::telemetry::served::Served;
use axum::routing::{get, post};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio_util::sync::CancellationToken;

pub(crate) const STEP_NAME: &str = "control endpoint";

/// Serve `session`'s control endpoint when its config asks (`serve.listen`): started on the
/// session's [`Hub`], its close handed to the session as the last closing step. Where it
/// is served and where its token is; an error says what could not start (the caller lets
/// the session go: [`Session::abandon`]).
pub async fn serve(session: &Session) -> Result<Option<(SocketAddr, TokenSource)>, String> {
    let Some(listen) = session.config.serve.listen else {
        return Ok(None);
    };
    let token =
        crate::control_token::resolve(listen).map_err(|e| format!("serve.listen {listen}: {e}"))?;
    let endpoint = ControlEndpoint::start(listen, session.hub(), token)
        .await
        .map_err(|e| format!("serve.listen {listen}: cannot serve the control endpoint: {e}"))?;
    let served = (endpoint.addr(), endpoint.token_source().clone());
    session.close_last(ClosingStep {
        run: Box::new(move |closed| Box::pin(endpoint.close(closed))),
    });
    Ok(Some(served))
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
        let served = Served::start(STEP_NAME, listen, app).await?;
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
