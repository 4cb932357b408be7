//! The connector layer under each system's pool: it records each new connection's local and
//! remote address in the system's [`SocketLedger`] (so the system can find its own sockets in
//! `/proc`), and it holds the pool to its connection limit.
//!
//! Why a limit here as well as the request semaphore: hyper-util hands a finished
//! connection back to the pool from a task of its own, and a request starting in that moment
//! races a fresh connect against the pool checkout. On loopback the connect wins, so without
//! a gate a busy system opens ten times its limit. With it, the connect waits while the
//! system already holds `limit` connections; the returning one wins the checkout, and the
//! connect, now in the background, gives up at the connect timeout or when the system closes.

use super::sockets::SocketLedger;
use futures::future::BoxFuture;
use hyper_util::client::legacy::connect::{Connection, HttpInfo};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often a connect waiting for room looks at the socket table again.
const GATE_POLL: Duration = Duration::from_millis(5);

/// Admits a new connection only while the system holds fewer than `limit`.
#[derive(Debug)]
pub struct ConnectionGate {
    limit: usize,
    /// Connects admitted but not yet recorded in the ledger.
    pending: std::sync::Mutex<usize>,
    /// One waiter looks at a time, so one freed connection admits one connect.
    turn: tokio::sync::Mutex<()>,
}

impl ConnectionGate {
    pub fn new(limit: usize) -> ConnectionGate {
        ConnectionGate {
            limit: limit.max(1),
            pending: std::sync::Mutex::new(0),
            turn: tokio::sync::Mutex::new(()),
        }
    }

    /// Wait for room, then reserve it until the returned [`Admission`] is dropped (after the
    /// connection is recorded, or failed). `None` when `stop` fires first.
    async fn admit(
        self: &Arc<Self>,
        ledger: &SocketLedger,
        stop: &CancellationToken,
    ) -> Option<Admission> {
        let _turn = tokio::select! {
            t = self.turn.lock() => t,
            _ = stop.cancelled() => return None,
        };
        loop {
            // Without a socket table (no /proc) the limit cannot be measured: admit.
            let held = ledger.live().unwrap_or(0);
            {
                let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
                if held + *pending < self.limit {
                    *pending += 1;
                    return Some(Admission { gate: self.clone() });
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(GATE_POLL) => {}
                _ = stop.cancelled() => return None,
            }
        }
    }
}

struct Admission {
    gate: Arc<ConnectionGate>,
}

impl Drop for Admission {
    fn drop(&mut self) {
        let mut pending = self.gate.pending.lock().unwrap_or_else(|p| p.into_inner());
        *pending = pending.saturating_sub(1);
    }
}

/// The layer given to `reqwest::ClientBuilder::connector_layer`, one per pool generation.
#[derive(Clone)]
pub struct RecordConnections {
    pub ledger: Arc<SocketLedger>,
    pub gate: Arc<ConnectionGate>,
    /// The generation's stop: a waiting connect gives up when the system closes, so no
    /// connection opens after its pool is gone.
    pub stop: CancellationToken,
}

impl<S> tower::Layer<S> for RecordConnections {
    type Service = Recorded<S>;
    fn layer(&self, inner: S) -> Recorded<S> {
        Recorded {
            inner,
            layer: self.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Recorded<S> {
    inner: S,
    layer: RecordConnections,
}

/// Why a connect was not made.
#[derive(Debug, thiserror::Error)]
#[error("the system is closing; no new connection")]
pub struct Closing;

impl<S, R> tower::Service<R> for Recorded<S>
where
    S: tower::Service<R>,
    S::Response: Connection + Send + 'static,
    S::Future: Send + 'static,
    S::Error: From<Closing>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: R) -> Self::Future {
        // The inner future is lazy: nothing connects until it is polled after admission.
        let connecting = self.inner.call(req);
        let RecordConnections { ledger, gate, stop } = self.layer.clone();
        Box::pin(async move {
            let Some(admission) = gate.admit(&ledger, &stop).await else {
                return Err(Closing.into());
            };
            let conn = connecting.await?;
            let mut extras = http::Extensions::new();
            conn.connected().get_extras(&mut extras);
            if let Some(info) = extras.get::<HttpInfo>() {
                ledger.record(info.local_addr(), info.remote_addr());
            }
            drop(admission);
            Ok(conn)
        })
    }
}
