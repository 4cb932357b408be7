//! Running one request as the system's own task: a connection slot, the state moves, the
//! counters, the span; a forced close cuts it.

use super::{BreakerChange, LATENCY_WINDOW, System, SystemState};
use crate::clients::{ClientError, RateLimitSlot, RequestCtx};
use crate::lifecycle::breaker::{Admit, Transition};
use crate::net::transport::HttpClient;
use crate::sync::LockExt;
use crate::systems::Protocol;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

impl System {
    /// Run one request on this system. It runs in the caller's task while the caller waits
    /// (a task of its own would cost a cross-thread wake-up per request: BENCHMARKS.md,
    /// "Client stack"); if the caller stops waiting, the rest of it becomes a task of the
    /// system's, so it still completes (or is cut at a forced close). The system's tracker
    /// counts it either way.
    pub async fn call<T, F, Fut>(self: &Arc<Self>, f: F) -> Result<T, ClientError>
    where
        F: FnOnce(RequestCtx) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, ClientError>> + Send + 'static,
        T: Send + 'static,
    {
        self.run(f, None, None, RateLimitSlot::default()).await
    }

    /// Run one request within this system's deadline, behind its breaker (ARCHITECTURE.md,
    /// "Deadlines and breakers"). The caller never waits past the deadline: a late call is
    /// cancelled; a stream is cut there and what it said is returned. While the breaker is
    /// open the call is skipped; when it turns half-open, this call is its one probe, and
    /// runs on its own while the caller goes on without it.
    pub async fn call_bounded<T, F, Fut>(self: &Arc<Self>, f: F) -> Bounded<T>
    where
        F: FnOnce(RequestCtx) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, ClientError>> + Send + 'static,
        T: Send + 'static,
    {
        self.call_bounded_with(f, CancellationToken::new()).await
    }

    /// As [`System::call_bounded`]; `cancel` cuts the request from outside (a vote that
    /// closed without this answer: see [`System::outvoted`]). Dropping the returned future
    /// alone leaves the request to the system, to finish or be cut at a forced close.
    pub async fn call_bounded_with<T, F, Fut>(
        self: &Arc<Self>,
        f: F,
        cancel: CancellationToken,
    ) -> Bounded<T>
    where
        F: FnOnce(RequestCtx) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, ClientError>> + Send + 'static,
        T: Send + 'static,
    {
        if !self.is_available() {
            return Bounded::Unavailable;
        }
        let now = tokio::time::Instant::now();
        let (admit, change) = self.breaker.locked().admit(now);
        self.announce(change);
        if admit == Admit::Skip {
            self.breaker_skipped.fetch_add(1, Ordering::Relaxed);
            self.notify();
            return Bounded::Skipped;
        }
        let deadline = self.deadline();
        let me = self.clone();
        let bounded = {
            let cancel = cancel.clone();
            async move {
                let until = tokio::time::Instant::now() + deadline;
                let limited = RateLimitSlot::default();
                // A stream cuts itself at `until` and keeps what it said: the margin lets
                // that answer arrive before the call counts as late.
                let run = me.run(f, Some(until), Some(cancel.clone()), limited.clone());
                match tokio::time::timeout_at(until + CUT_MARGIN, run).await {
                    Ok(r) => me.settle_bounded(r, deadline),
                    Err(_) => {
                        cancel.cancel();
                        // Cut while it waited out a 429 (or sent again after one): the
                        // service's rate limit, not its slowness.
                        let status = limited.lock().unwrap_or_else(|p| p.into_inner()).take();
                        match status {
                            Some(status) => {
                                me.settle_rate_limited(deadline, &status);
                                Bounded::RateLimited(status)
                            }
                            None => {
                                me.settle_late(deadline);
                                Bounded::Late
                            }
                        }
                    }
                }
            }
        };
        if admit == Admit::Probe {
            tracing::info!(system = %self.id, "breaker half-open: one probe call");
            let me = self.clone();
            tokio::spawn(async move {
                if matches!(bounded.await, Bounded::Unavailable) {
                    me.breaker.locked().probe_abandoned();
                }
            });
            self.breaker_skipped.fetch_add(1, Ordering::Relaxed);
            self.notify();
            return Bounded::Skipped;
        }
        bounded.await
    }

    /// The caller (a vote) went on without this system's answer, once it was late by its
    /// own measure ([`System::usual_latency`]): counted as outvoted. A slower provider is
    /// not a failing one, so no breaker counts it; the call itself runs on, and a hung one
    /// is late at its own deadline.
    pub fn outvoted(&self) {
        self.outvoted.fetch_add(1, Ordering::Relaxed);
        self.notify();
    }

    fn settle_bounded<T>(&self, r: Result<T, ClientError>, deadline: Duration) -> Bounded<T> {
        let now = tokio::time::Instant::now();
        match r {
            Ok(v) => {
                let change = self.breaker.locked().success();
                self.announce(change);
                Bounded::Answered(v)
            }
            Err(ClientError::Cut { partial, why }) => {
                self.cut.fetch_add(1, Ordering::Relaxed);
                let cause = format!("stream cut: {why}");
                let change = self.breaker.locked().failure(now, true, &cause);
                self.announce(change);
                tracing::info!(system = %self.id, deadline_ms = deadline.as_millis() as u64, %why, "stream cut; using what it said");
                Bounded::Cut(partial)
            }
            Err(ClientError::Cancelled)
            | Err(ClientError::Unavailable(_))
            | Err(ClientError::Budget(_)) => Bounded::Unavailable,
            // The service answered, within its deadline; the answer hit the cap the config
            // gave it. A healthy service: its breaker hears a success (counted `truncated`),
            // and what came is the answer.
            Err(ClientError::Truncated { partial, .. }) => {
                let change = self.breaker.locked().success();
                self.announce(change);
                Bounded::Truncated(partial)
            }
            Err(e) => {
                let change = self.breaker.locked().failure(now, false, &e.to_string());
                self.announce(change);
                Bounded::Failed(e)
            }
        }
    }

    fn settle_late(&self, deadline: Duration) {
        self.late.fetch_add(1, Ordering::Relaxed);
        let cause = format!("no answer within its {} ms deadline", deadline.as_millis());
        tracing::warn!(system = %self.id, "{cause}");
        {
            let mut st = self.lock_status();
            st.last_error = Some(format!("late: {cause}"));
        }
        let change = self
            .breaker
            .locked()
            .failure(tokio::time::Instant::now(), true, &cause);
        self.announce(change);
    }

    /// Cut at its deadline while it waited out the service's 429: counted `rate_limited`,
    /// said with the service's status and when it asked to be tried again, on the system
    /// and its breaker, which opens (the service asked for a pause).
    fn settle_rate_limited(&self, deadline: Duration, status: &ClientError) {
        self.rate_limited.fetch_add(1, Ordering::Relaxed);
        let brief = status.status_brief();
        let cause = format!("rate-limited: {brief}");
        tracing::warn!(system = %self.id, deadline_ms = deadline.as_millis() as u64, "{cause}; cut at its deadline while waiting");
        {
            let mut st = self.lock_status();
            st.last_error = Some(format!(
                "rate-limited: {status} (cut at its {} ms deadline while waiting)",
                deadline.as_millis()
            ));
            st.last_rate_limit = Some(brief);
        }
        let change = self
            .breaker
            .locked()
            .failure(tokio::time::Instant::now(), true, &cause);
        self.announce(change);
    }

    fn announce(&self, change: Option<Transition>) {
        let Some(t) = change else { return };
        tracing::info!(system = %self.id, from = t.from.name(), to = t.to.name(), reason = %t.reason, "breaker");
        // No subscriber is fine: nobody follows the event stream.
        let _ = self.breaker_changes.send(BreakerChange {
            system: self.id,
            from: t.from,
            to: t.to,
            reason: t.reason,
        });
        self.notify();
    }

    async fn run<T, F, Fut>(
        self: &Arc<Self>,
        f: F,
        deadline: Option<tokio::time::Instant>,
        cancel: Option<CancellationToken>,
        rate_limited: RateLimitSlot,
    ) -> Result<T, ClientError>
    where
        F: FnOnce(RequestCtx) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, ClientError>> + Send + 'static,
        T: Send + 'static,
    {
        let cancel = cancel.unwrap_or_default();
        let (ctx, force, tracker) = self.request_ctx(deadline, rate_limited)?;
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
        let holds = ctx.budget.as_ref().map(|b| b.holds.clone());
        let task = tracker.track_future(tracing::Instrument::instrument(async move {
            let stop = ctx.stop.clone();
            // Wait for a free connection slot, unless the system is closing.
            let permit = tokio::select! {
                p = me.limiter.clone().acquire_owned() => p.map_err(|_| ClientError::Cancelled)?,
                _ = stop.cancelled() => return Err(ClientError::Cancelled),
            };
            let mut in_flight = me.enter_flight();
            let result = tokio::select! {
                r = f(ctx) => r,
                _ = force.cancelled() => Err(ClientError::Cancelled),
                _ = cancel.cancelled() => Err(ClientError::Cancelled),
            };
            drop(permit);
            me.settle_holds(holds);
            in_flight.counted = true;
            me.finish(in_flight.started.elapsed(), &result);
            match &result {
                Ok(_) => task_span.record("otel.status_code", "ok"),
                Err(e) => task_span.record("otel.status_description", e.to_string()),
            };
            result
        }, span));
        // A panic in a client is this system's error, not the caller's crash.
        let task = Detachable(Some(Box::pin(futures::FutureExt::catch_unwind(
            std::panic::AssertUnwindSafe(task),
        ))));
        match task.await {
            Ok(r) => r,
            Err(panic) => {
                let cause = format!("request panicked: {}", panic_text(panic));
                self.set_error(cause.clone());
                Err(ClientError::Protocol(cause))
            }
        }
    }

    /// What a request on this system is given: its client, address, key, model and the
    /// rest, taken under the generation's lock with that generation's force and tracker;
    /// `Unavailable` when the system cannot take work or has no connection pool.
    fn request_ctx(
        &self,
        deadline: Option<tokio::time::Instant>,
        rate_limited: RateLimitSlot,
    ) -> Result<(RequestCtx, CancellationToken, TaskTracker), ClientError> {
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
            protocol: self.config.protocol,
            client,
            base,
            key: self.key.clone(),
            model: self.config.model.clone(),
            params: self.config.params,
            stop: gen_.stop.clone(),
            retries: self.config.retries,
            retried: self.retried.clone(),
            usage: self.usage.clone(),
            deadline,
            stream_idle: self.deadlines().stream_idle,
            recorder: self.recorder.get().cloned(),
            budget: self.budget.get().map(|b| crate::clients::BudgetCtx {
                budget: b.clone(),
                price: self.price.get().copied(),
                holds: Default::default(),
            }),
            rate_limited,
        };
        Ok((ctx, gen_.force.clone(), gen_.tracker.clone()))
    }

    /// A request holds its connection slot and goes on the wire: counted in flight, and an
    /// idle system is open again.
    fn enter_flight(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        {
            let mut st = self.lock_status();
            if matches!(st.state, SystemState::Idle) {
                self.move_to(&mut st, SystemState::Open);
            }
        }
        self.notify();
        InFlight {
            system: self.clone(),
            started: Instant::now(),
            counted: false,
        }
    }

    /// What the call held is counted at what it cost, in the same step.
    fn settle_holds(
        &self,
        holds: Option<Arc<std::sync::Mutex<Vec<crate::lifecycle::budget::Hold>>>>,
    ) {
        if let Some(holds) = holds {
            let total = self.cost_usd();
            for hold in holds.lock().unwrap_or_else(|p| p.into_inner()).drain(..) {
                hold.settle(total);
            }
        }
    }

    /// An answer came after `took`: its time sets the next deadlines.
    fn record_latency(&self, took: Duration) {
        {
            let mut l = self.latencies.locked();
            if l.len() == LATENCY_WINDOW {
                l.pop_front();
            }
            l.push_back(took.as_secs_f64() * 1e3);
        }
        if let Some(observe) = self.latency_observer.get() {
            observe(took);
        }
    }

    fn finish<T>(&self, took: Duration, result: &Result<T, ClientError>) {
        let left = self.in_flight.fetch_sub(1, Ordering::Relaxed) - 1;
        match result {
            Ok(_) => {
                self.done.fetch_add(1, Ordering::Relaxed);
                self.record_latency(took);
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
            // A cancellation is the system closing (or a late call dropped), not the
            // service failing; a cut stream is counted by the bounded call.
            Err(e) if e.is_cancelled() || e.is_cut() => {}
            // Not sent: the spend limit, not the service. Said, counted, no error state.
            Err(ClientError::Budget(why)) => {
                self.budget_refused.fetch_add(1, Ordering::Relaxed);
                self.lock_status().last_error = Some(format!("budget: {why}"));
            }
            // The service answered; the answer did not fit its cap. Counted on its own, and
            // shown as the last problem, but the system is not failing.
            Err(e) if e.is_truncated() => {
                self.truncated.fetch_add(1, Ordering::Relaxed);
                // An answer, if a short one: its time is the service's pace.
                self.record_latency(took);
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

/// A future run by its caller until the caller drops it unfinished; then the rest of it is
/// spawned, so the work goes on without anyone waiting (a request is the system's, not its
/// caller's). Boxed, so moving it to a task moves no pinned state.
struct Detachable<F: Future + Send + 'static>(Option<Pin<Box<F>>>)
where
    F::Output: Send;

impl<F: Future + Send + 'static> Future for Detachable<F>
where
    F::Output: Send,
{
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let Some(inner) = self.0.as_mut() else {
            return Poll::Pending;
        };
        let out = inner.as_mut().poll(cx);
        if out.is_ready() {
            self.0 = None;
        }
        out
    }
}

impl<F: Future + Send + 'static> Drop for Detachable<F>
where
    F::Output: Send,
{
    fn drop(&mut self) {
        if let Some(rest) = self.0.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move {
                let _ = rest.await;
            });
        }
    }
}

/// A request on the wire. If it is dropped before the answer (its runtime was going away, so
/// it could not go on as a task), it is counted as cancelled here, so the system does not
/// stay `open`.
struct InFlight {
    system: Arc<System>,
    started: Instant,
    counted: bool,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if !self.counted {
            self.system
                .finish::<()>(self.started.elapsed(), &Err(ClientError::Cancelled));
        }
    }
}

/// How long after its deadline a call still counts as in time, so a stream that cut itself
/// at the deadline returns what it said rather than counting as late.
const CUT_MARGIN: Duration = Duration::from_millis(25);

/// How a bounded call ended.
#[derive(Debug)]
pub enum Bounded<T> {
    Answered(T),
    /// A stream cut at its deadline or after a silence: what it had said.
    Cut(String),
    /// No answer by the deadline: cancelled.
    Late,
    /// Cut at the deadline while waiting out the service's 429 (its status and
    /// `Retry-After` in the error): the service's rate limit, not its slowness.
    RateLimited(ClientError),
    /// The answer hit its output cap: what came (perhaps nothing), to use as the answer.
    Truncated(String),
    /// Not made: the breaker is open (or this call went out as its probe).
    Skipped,
    /// Not made: the system is closed, closing or disabled.
    Unavailable,
    Failed(ClientError),
}

fn panic_text(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}
