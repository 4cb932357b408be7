//! Running one request as the system's own task: a connection slot, the state moves, the
//! counters, the span; a forced close cuts it.

use super::{LATENCY_WINDOW, System, SystemState};
use crate::clients::{ClientError, RequestCtx};
use crate::net::transport::HttpClient;
use crate::sync::LockExt;
use crate::systems::Protocol;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

impl System {
    /// Run one request on this system. The request runs as this system's task: if the
    /// caller stops waiting, the request still completes (or is cut at a forced close).
    pub async fn call<T, F, Fut>(self: &Arc<Self>, f: F) -> Result<T, ClientError>
    where
        F: FnOnce(RequestCtx) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, ClientError>> + Send + 'static,
        T: Send + 'static,
    {
        let (ctx, force, tracker) = {
            let gen_ = self.lock_generation();
            let state = self.state();
            if !matches!(
                state,
                SystemState::Open | SystemState::Idle | SystemState::Error
            ) {
                return Err(ClientError::Unavailable(format!(
                    "{} is {}",
                    self.id,
                    state.name()
                )));
            }
            let client = match (&gen_.client, self.config.protocol) {
                (Some(c), _) => c.clone(),
                // moe has no wire; it gets a client that it never uses.
                (None, Protocol::Moe) => HttpClient::unconnected(),
                (None, _) => {
                    return Err(ClientError::Unavailable(format!(
                        "{} has no connection pool",
                        self.id
                    )));
                }
            };
            let base = self
                .base
                .clone()
                .unwrap_or_else(|| url::Url::parse("http://moe.invalid/").expect("static URL"));
            let ctx = RequestCtx {
                system: self.id,
                client,
                base,
                key: self.key.clone(),
                model: self.config.model.clone(),
                params: self.config.params,
                stop: gen_.stop.clone(),
                retries: self.config.retries,
                retried: self.retried.clone(),
                usage: self.usage.clone(),
            };
            (ctx, gen_.force.clone(), gen_.tracker.clone())
        };
        let me = self.clone();
        // One span per request (exported as an OTLP client span when traces are on); its
        // parent is whatever span the caller is in, e.g. the gameplay cycle.
        let span = tracing::info_span!(
            "request",
            system = self.id.name(),
            otel.kind = "client",
            otel.status_code = tracing::field::Empty,
            otel.status_description = tracing::field::Empty,
        );
        let task_span = span.clone();
        let task = tracker.spawn(tracing::Instrument::instrument(async move {
            let stop = ctx.stop.clone();
            // Wait for a free connection slot, unless the system is closing.
            let permit = tokio::select! {
                p = me.limiter.clone().acquire_owned() => p.map_err(|_| ClientError::Cancelled)?,
                _ = stop.cancelled() => return Err(ClientError::Cancelled),
            };
            me.in_flight.fetch_add(1, Ordering::Relaxed);
            {
                let mut st = me.lock_status();
                if matches!(st.state, SystemState::Idle) {
                    me.move_to(&mut st, SystemState::Open);
                }
            }
            me.notify();
            let started = Instant::now();
            let result = tokio::select! {
                r = f(ctx) => r,
                _ = force.cancelled() => Err(ClientError::Cancelled),
            };
            drop(permit);
            me.finish(started.elapsed(), &result);
            match &result {
                Ok(_) => task_span.record("otel.status_code", "ok"),
                Err(e) => task_span.record("otel.status_description", e.to_string()),
            };
            result
        }, span));
        match task.await {
            Ok(r) => r,
            Err(e) if e.is_panic() => {
                let cause = format!("request task panicked: {}", panic_text(e.into_panic()));
                self.set_error(cause.clone());
                Err(ClientError::Protocol(cause))
            }
            Err(_) => Err(ClientError::Cancelled),
        }
    }

    fn finish<T>(&self, took: Duration, result: &Result<T, ClientError>) {
        let left = self.in_flight.fetch_sub(1, Ordering::Relaxed) - 1;
        match result {
            Ok(_) => {
                self.done.fetch_add(1, Ordering::Relaxed);
                {
                    let mut l = self.latencies.locked();
                    if l.len() == LATENCY_WINDOW {
                        l.pop_front();
                    }
                    l.push_back(took.as_secs_f64() * 1e3);
                }
                if let Some(h) = self.latency_histogram.get() {
                    h.record(took.as_secs_f64());
                }
                let mut st = self.lock_status();
                if matches!(st.state, SystemState::Open | SystemState::Error) {
                    self.move_to(
                        &mut st,
                        if left == 0 {
                            SystemState::Idle
                        } else {
                            SystemState::Open
                        },
                    );
                }
            }
            // A cancellation is the system closing, not the service failing.
            Err(e) if e.is_cancelled() => {}
            // The service answered; the answer did not fit its cap. Counted on its own, and
            // shown as the last problem, but the system is not failing.
            Err(e) if e.is_truncated() => {
                self.truncated.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(system = %self.id, error = %e, "answer truncated");
                let mut st = self.lock_status();
                st.last_error = Some(e.to_string());
                if matches!(st.state, SystemState::Open | SystemState::Error) {
                    self.move_to(
                        &mut st,
                        if left == 0 {
                            SystemState::Idle
                        } else {
                            SystemState::Open
                        },
                    );
                }
            }
            Err(e) => {
                self.errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(system = %self.id, error = %e, "request failed");
                self.set_error(e.to_string());
            }
        }
        if result.is_ok() || left == 0 {
            let mut st = self.lock_status();
            if st.state == SystemState::Open && left == 0 {
                self.move_to(&mut st, SystemState::Idle);
            }
        }
        self.notify();
    }
}

fn panic_text(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}
