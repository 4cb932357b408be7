//! `/metrics` over HTTP on the address the user gave. Served here rather than by the
//! exporter's own listener so that the session owns its sockets: the endpoint is closed as a
//! shutdown step and the process-wide check covers it like every other connection.

use super::prometheus::{Phase, SessionMetrics};
use crate::lifecycle::{CloseOutcome, StepReport, SystemsClosed};
use crate::net::sockets::{OwnedSocket, SocketLedger};
use crate::net::transport::RecordedListener;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub(crate) const STEP_NAME: &str = "metrics endpoint";
/// Prometheus text format 0.0.4.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
use crate::net::FORCE_BUDGET;
/// Floor for a graceful close when the systems used up the grace period (a scrape takes
/// about a millisecond).
const MIN_GRACE: Duration = Duration::from_millis(20);

#[derive(Clone)]
struct Shared {
    metrics: Arc<SessionMetrics>,
    /// Set once a scrape carried the final figures.
    final_served: watch::Sender<bool>,
}

pub(crate) struct MetricsEndpoint {
    addr: SocketAddr,
    metrics: Arc<SessionMetrics>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    final_served: watch::Receiver<bool>,
    /// Each scrape's connection, recorded when accepted and when its fd closed.
    ledger: Arc<SocketLedger>,
}

impl MetricsEndpoint {
    /// Bind `listen` and serve. Port 0 takes any free port: see [`MetricsEndpoint::addr`].
    pub async fn start(
        listen: SocketAddr,
        metrics: Arc<SessionMetrics>,
    ) -> std::io::Result<MetricsEndpoint> {
        let listener = tokio::net::TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let ledger = Arc::new(SocketLedger::default());
        let listener = RecordedListener {
            listener,
            ledger: ledger.clone(),
        };
        let (final_tx, final_served) = watch::channel(false);
        let shared = Shared {
            metrics: metrics.clone(),
            final_served: final_tx,
        };
        let app = axum::Router::new()
            .route("/metrics", get(scrape))
            .route("/", get(index))
            .with_state(shared);
        let stop = CancellationToken::new();
        let graceful = stop.clone();
        let upkeep = metrics.clone();
        let task = tokio::spawn(async move {
            let serve =
                axum::serve(listener, app).with_graceful_shutdown(graceful.cancelled_owned());
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            let mut serve = std::pin::pin!(serve.into_future());
            loop {
                tokio::select! {
                    r = &mut serve => {
                        if let Err(e) = r {
                            tracing::error!(error = %e, "metrics endpoint failed");
                        }
                        return;
                    }
                    _ = tick.tick() => upkeep.upkeep(),
                }
            }
        });
        tracing::info!(%addr, "metrics endpoint listening");
        if !addr.ip().is_loopback() {
            tracing::warn!(%addr, "the metrics endpoint is reachable from other hosts (not loopback); it has no auth");
        }
        Ok(MetricsEndpoint {
            addr,
            metrics,
            stop,
            task,
            final_served,
            ledger,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The shutdown step: publish the final figures, wait up to `hold` for one scrape of
    /// them, then close: no new connections, scrapes in progress finish until the grace
    /// deadline (at least [`MIN_GRACE`]), then whatever is left is cut and its sockets shut.
    /// Ends once the endpoint's sockets are measured gone.
    pub async fn close(mut self, hold: Duration, closed: SystemsClosed) -> StepReport {
        let started = Instant::now();
        self.metrics.publish_shutdown(&closed);
        let sockets_before = self.ledger.open_count() as u32 + 1;
        if !hold.is_zero() {
            tokio::select! {
                _ = self.final_served.wait_for(|served| *served) => {}
                _ = tokio::time::sleep(hold) => tracing::info!("no scrape of the final figures came; closing the metrics endpoint"),
                _ = closed.force.cancelled() => {}
            }
        }
        self.stop.cancel();
        let graceful_until = closed.deadline.max(tokio::time::Instant::now() + MIN_GRACE);
        let mut forced = false;
        tokio::select! {
            _ = &mut self.task => {}
            _ = tokio::time::sleep_until(graceful_until) => forced = true,
            _ = closed.force.cancelled() => forced = true,
        }
        if forced {
            self.task.abort();
            // Awaiting an aborted task returns once it is dropped: the listener is closed.
            let _ = (&mut self.task).await;
        }
        // Connections are served by tasks of their own: what is left is shut under them.
        let now = tokio::time::Instant::now();
        let port = self.addr.port();
        let settled = crate::net::settle(
            &self.ledger,
            |s: &OwnedSocket| s.local.port() == port,
            now,
            now + FORCE_BUDGET,
            &closed.force,
        )
        .await;
        forced |= settled.shut_down;
        let (outcome, error) = match (settled.left.len(), forced) {
            (0, _) if settled.unverified.is_some() => (CloseOutcome::Unverified, None),
            (0, false) => (CloseOutcome::Closed, None),
            (0, true) => (CloseOutcome::Forced, None),
            (n, _) => (
                CloseOutcome::Error,
                Some(format!(
                    "{} still open after force-close",
                    crate::lifecycle::counted(n, "socket")
                )),
            ),
        };
        tracing::info!(addr = %self.addr, ?outcome, "metrics endpoint closed");
        StepReport {
            name: STEP_NAME.to_string(),
            outcome,
            close_ms: started.elapsed().as_secs_f64() * 1e3,
            sockets_before,
            error,
            cancelled_requests: 0,
            verified: settled.unverified.is_none(),
            unverified_reason: settled.unverified,
            earlier: None,
        }
    }
}

async fn scrape(State(shared): State<Shared>) -> Response {
    let is_final = shared.metrics.phase() == Phase::Final;
    let body = shared.metrics.render();
    if is_final {
        shared.final_served.send_replace(true);
    }
    let mut r = (StatusCode::OK, body).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    r
}

async fn index() -> &'static str {
    "singularis-tui: Prometheus metrics at /metrics\n"
}
