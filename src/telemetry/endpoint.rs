//! `/metrics` over HTTP on the address the user gave. Served here rather than by the
//! exporter's own listener so that the session owns its sockets: the endpoint is closed as a
//! shutdown step and the process-wide check covers it like every other connection.

use super::prometheus::{CONTENT_TYPE, Phase, SessionMetrics};
use super::served::Served;
use crate::lifecycle::{StepReport, SystemsClosed};
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

pub(crate) const STEP_NAME: &str = "metrics endpoint";

#[derive(Clone)]
struct Shared {
    metrics: Arc<SessionMetrics>,
    /// Set once a scrape carried the final figures.
    final_served: watch::Sender<bool>,
}

pub(crate) struct MetricsEndpoint {
    served: Served,
    metrics: Arc<SessionMetrics>,
    final_served: watch::Receiver<bool>,
}

impl MetricsEndpoint {
    /// Bind `listen` and serve. Port 0 takes any free port: see [`MetricsEndpoint::addr`].
    pub async fn start(
        listen: SocketAddr,
        metrics: Arc<SessionMetrics>,
    ) -> std::io::Result<MetricsEndpoint> {
        let (final_tx, final_served) = watch::channel(false);
        let shared = Shared {
            metrics: metrics.clone(),
            final_served: final_tx,
        };
        let app = axum::Router::new()
            .route("/metrics", get(scrape))
            .route("/", get(index))
            .with_state(shared);
        let served = Served::start(STEP_NAME, listen, app).await?;
        let addr = served.addr();
        if !addr.ip().is_loopback() {
            tracing::warn!(%addr, "the metrics endpoint is reachable from other hosts (not loopback); it has no auth");
        }
        Ok(MetricsEndpoint {
            served,
            metrics,
            final_served,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.served.addr()
    }

    /// The shutdown step: publish the final figures, wait up to `hold` for one scrape of
    /// them, then close as every served endpoint does ([`Served::close`]).
    pub async fn close(mut self, hold: Duration, closed: SystemsClosed) -> StepReport {
        let started = Instant::now();
        self.metrics.publish_shutdown(&closed);
        let sockets_before = self.served.sockets_open();
        if !hold.is_zero() {
            tokio::select! {
                _ = self.final_served.wait_for(|served| *served) => {}
                _ = tokio::time::sleep(hold) => tracing::info!("no scrape of the final figures came; closing the metrics endpoint"),
                _ = closed.force.cancelled() => {}
            }
        }
        self.served.close(&closed, started, sockets_before).await
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
