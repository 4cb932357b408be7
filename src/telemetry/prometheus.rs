//! The session's figures as Prometheus metrics, through the `metrics` facade and
//! `metrics-exporter-prometheus`. Each session has its own recorder (no global one), so
//! several sessions in one process (the tests) never mix their figures.
//!
//! Counters and gauges are read from the engines' snapshots when scraped; request durations
//! are recorded as they happen (a histogram cannot be rebuilt from a snapshot).

use crate::gameplay::GameStats;
use crate::lifecycle::BreakerState;
use crate::lifecycle::{CloseOutcome, Registry, SystemState, SystemsClosed};
use crate::sync::LockExt;
use crate::systems::SystemId;
use metrics_exporter_prometheus::{
    BuildError, Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

pub(crate) const SYSTEM_STATE: &str = "singularis_system_state";
pub(crate) const REQUESTS: &str = "singularis_requests_total";
pub(crate) const REQUEST_ERRORS: &str = "singularis_request_errors_total";
pub(crate) const IN_FLIGHT: &str = "singularis_requests_in_flight";
pub(crate) const OPEN_SOCKETS: &str = "singularis_open_sockets";
pub(crate) const CONNECTIONS_OPENED: &str = "singularis_connections_opened_total";
pub(crate) const REQUEST_DURATION: &str = "singularis_request_duration_seconds";
pub const CYCLES: &str = "singularis_cycles_total";
pub const ACTIONS: &str = "singularis_actions_total";
pub(crate) const FALLBACKS: &str = "singularis_fallback_actions_total";
pub(crate) const SKIPPED_CALLS: &str = "singularis_skipped_calls_total";
pub(crate) const SESSION_PHASE: &str = "singularis_session_phase";
pub(crate) const SHUTDOWN_SYSTEMS: &str = "singularis_shutdown_systems";
pub(crate) const SHUTDOWN_DURATION: &str = "singularis_shutdown_duration_seconds";
pub(crate) const SHUTDOWN_CANCELLED: &str = "singularis_shutdown_cancelled_requests";
pub(crate) const BUILD_INFO: &str = "singularis_build_info";
pub(crate) const TRUNCATED: &str = "singularis_truncated_answers_total";
pub(crate) const TOKENS: &str = "singularis_tokens_total";
/// A counter of fractional USD, which the `metrics` facade (integer counters) cannot hold:
/// rendered by [`SessionMetrics::render`] beside the recorder's text.
pub(crate) const COST: &str = "singularis_cost_usd_total";
const COST_HELP: &str = "Estimated cost in USD so far, per system, from the config's [pricing]; absent while the model used tokens it has no price for";
pub(crate) const RATELIMIT_REMAINING: &str = "singularis_ratelimit_remaining";
pub(crate) const RATELIMIT_LIMIT: &str = "singularis_ratelimit_limit";
pub(crate) const BREAKER_STATE: &str = "singularis_breaker_state";
pub(crate) const BREAKER_OPENS: &str = "singularis_breaker_opens_total";
pub(crate) const CALL_OUTCOMES: &str = "singularis_calls_total";
pub(crate) const DEADLINE: &str = "singularis_call_deadline_seconds";
pub(crate) const BUDGET_SPENT: &str = "singularis_budget_spent_usd";
pub(crate) const BUDGET_LIMIT: &str = "singularis_budget_limit_usd";
pub(crate) const BUDGET_BURN: &str = "singularis_budget_burn_usd_per_hour";
pub(crate) const BUDGET_REFUSED: &str = "singularis_budget_refused_calls_total";
pub(crate) const BUDGET_EXHAUSTED: &str = "singularis_budget_exhausted";

/// From a loopback millisecond to a slow model's half minute.
pub(crate) const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

const STATES: [SystemState; 6] = [
    SystemState::Open,
    SystemState::Idle,
    SystemState::Closing,
    SystemState::Closed,
    SystemState::Error,
    SystemState::Disabled,
];

/// Where the session is; `final` once every system is closed and the figures stop moving.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr, strum::EnumString)]
#[strum(serialize_all = "snake_case")]
pub enum Phase {
    Running,
    ShuttingDown,
    Final,
}

impl Phase {
    pub fn name(self) -> &'static str {
        self.into()
    }
}

#[derive(Debug, Clone, Default)]
struct ShutdownFigures {
    outcomes: [u64; CloseOutcome::ALL.len()],
    seconds: f64,
    /// Requests each system's close cancelled.
    cancelled: BTreeMap<SystemId, u32>,
}

pub struct SessionMetrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    registry: Arc<Registry>,
    game: Arc<Mutex<GameStats>>,
    phase: Mutex<Phase>,
    shutdown: Mutex<Option<ShutdownFigures>>,
    /// Per system, the cost last read and the counter's total: the counter only grows, so
    /// a cost read lower than before (the system's figures started again) adds from zero.
    cost: Mutex<BTreeMap<SystemId, CostCounter>>,
}

#[derive(Debug, Clone, Copy, Default)]
struct CostCounter {
    /// What was counted before the system's figures last began again.
    before: f64,
    last: f64,
}

impl CostCounter {
    fn read(&mut self, now: f64) {
        if now < self.last {
            self.before += self.last;
        }
        self.last = now;
    }

    /// Without a restart, exactly the cost read last.
    fn total(&self) -> f64 {
        self.before + self.last
    }
}

impl SessionMetrics {
    pub fn new(
        registry: Arc<Registry>,
        game: Arc<Mutex<GameStats>>,
    ) -> Result<Arc<SessionMetrics>, BuildError> {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(REQUEST_DURATION.to_string()), LATENCY_BUCKETS)?
            .build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            describe();
            metrics::gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
            for sys in registry.all() {
                sys.observe_latency(
                    metrics::histogram!(REQUEST_DURATION, "system" => sys.id.name()),
                );
            }
        });
        let me = Arc::new(SessionMetrics {
            recorder,
            handle,
            registry,
            game,
            phase: Mutex::new(Phase::Running),
            shutdown: Mutex::new(None),
            cost: Mutex::new(BTreeMap::new()),
        });
        me.refresh();
        Ok(me)
    }

    pub fn phase(&self) -> Phase {
        *self.phase.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn set_phase(&self, phase: Phase) {
        *self.phase.lock().unwrap_or_else(|p| p.into_inner()) = phase;
    }

    /// Every system is closed: its outcome counts and duration are final.
    pub(crate) fn publish_shutdown(&self, closed: &SystemsClosed) {
        let mut f = ShutdownFigures {
            seconds: closed.elapsed.as_secs_f64(),
            ..Default::default()
        };
        for r in &closed.systems {
            if let Some(i) = CloseOutcome::ALL.iter().position(|o| *o == r.outcome) {
                f.outcomes[i] += 1;
            }
            *f.cancelled.entry(r.name).or_default() += r.cancelled;
        }
        *self.shutdown.lock().unwrap_or_else(|p| p.into_inner()) = Some(f);
        self.set_phase(Phase::Final);
    }

    /// The exposition text, figures read now.
    pub fn render(&self) -> String {
        self.refresh();
        let mut text = self.handle.render();
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&self.cost_text());
        text
    }

    /// `singularis_cost_usd_total`, a counter per system (OpenMetrics: the `_total` sample of
    /// the `singularis_cost_usd` counter family), in the text format's lines.
    fn cost_text(&self) -> String {
        use std::fmt::Write;
        let mut cost = self.cost.locked();
        for s in self.registry.snapshots() {
            if let Some(usd) = s.cost_usd {
                cost.entry(s.id).or_default().read(usd);
            }
        }
        if cost.is_empty() {
            return String::new();
        }
        let mut out = format!("# HELP {COST} {COST_HELP}\n# TYPE {COST} counter\n");
        for (id, c) in cost.iter() {
            // `{}` of an f64 never uses an exponent: a valid sample value as it is.
            let system = id
                .name()
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            let _ = writeln!(out, "{COST}{{system=\"{system}\"}} {}", c.total());
        }
        out.push('\n');
        out
    }

    /// Fold recorded histogram samples into their buckets; call now and then, so samples
    /// between two scrapes do not pile up.
    pub(crate) fn upkeep(&self) {
        self.handle.run_upkeep();
    }

    fn refresh(&self) {
        let systems = self.registry.snapshots();
        let game = self.game.locked().clone();
        let phase = self.phase();
        let shutdown = self
            .shutdown
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .unwrap_or_default();
        metrics::with_local_recorder(&self.recorder, || {
            for s in &systems {
                let name = s.id.name();
                for st in STATES {
                    let on = if s.state == st { 1.0 } else { 0.0 };
                    metrics::gauge!(SYSTEM_STATE, "system" => name, "state" => st.name()).set(on);
                }
                metrics::counter!(REQUESTS, "system" => name).absolute(s.requests());
                metrics::counter!(TRUNCATED, "system" => name).absolute(s.truncated);
                if let Some(u) = s.usage {
                    for (kind, n) in [
                        ("input", u.input),
                        ("output", u.output),
                        ("reasoning", u.reasoning),
                    ] {
                        metrics::counter!(TOKENS, "system" => name, "kind" => kind).absolute(n);
                    }
                }
                if let Some(h) = s.headroom {
                    let pairs = [
                        ("requests", h.requests_remaining, h.requests_limit),
                        ("tokens", h.tokens_remaining, h.tokens_limit),
                    ];
                    for (resource, left, limit) in pairs {
                        if let Some(n) = left {
                            metrics::gauge!(RATELIMIT_REMAINING, "system" => name, "resource" => resource).set(n as f64);
                        }
                        if let Some(n) = limit {
                            metrics::gauge!(RATELIMIT_LIMIT, "system" => name, "resource" => resource).set(n as f64);
                        }
                    }
                }
                metrics::counter!(REQUEST_ERRORS, "system" => name).absolute(s.errors);
                metrics::gauge!(IN_FLIGHT, "system" => name).set(s.in_flight as f64);
                metrics::gauge!(OPEN_SOCKETS, "system" => name).set(s.open_sockets as f64);
                metrics::counter!(CONNECTIONS_OPENED, "system" => name)
                    .absolute(s.connections_opened);
                for b in [
                    BreakerState::Closed,
                    BreakerState::Open,
                    BreakerState::HalfOpen,
                ] {
                    let on = if s.breaker == b { 1.0 } else { 0.0 };
                    metrics::gauge!(BREAKER_STATE, "system" => name, "state" => b.name()).set(on);
                }
                metrics::counter!(BREAKER_OPENS, "system" => name).absolute(s.breaker_opens);
                for (outcome, n) in [
                    ("answered", s.done + s.truncated),
                    ("late", s.late),
                    ("rate_limited", s.rate_limited),
                    ("cut", s.cut),
                    ("outvoted", s.outvoted),
                    ("skipped_by_breaker", s.breaker_skipped),
                    ("error", s.errors),
                ] {
                    metrics::counter!(CALL_OUTCOMES, "system" => name, "outcome" => outcome)
                        .absolute(n);
                }
                metrics::gauge!(DEADLINE, "system" => name).set(s.deadline_ms / 1e3);
                metrics::gauge!(SHUTDOWN_CANCELLED, "system" => name)
                    .set(shutdown.cancelled.get(&s.id).copied().unwrap_or(0) as f64);
                let skipped = game.skipped_calls.get(&s.id).copied().unwrap_or(0);
                metrics::counter!(SKIPPED_CALLS, "system" => name).absolute(skipped);
            }
            metrics::counter!(CYCLES).absolute(game.cycles);
            for (kind, n) in &game.actions_by_kind {
                metrics::counter!(ACTIONS, "kind" => kind.clone()).absolute(*n);
            }
            metrics::counter!(FALLBACKS).absolute(game.fallbacks);
            if let Some(b) = &game.budget {
                metrics::gauge!(BUDGET_SPENT).set(b.spent_usd);
                if let Some(l) = b.limit_usd {
                    metrics::gauge!(BUDGET_LIMIT).set(l);
                }
                metrics::gauge!(BUDGET_BURN).set(b.burn_usd_per_hour);
                metrics::gauge!(BUDGET_EXHAUSTED).set(if b.exhausted { 1.0 } else { 0.0 });
                for (id, n) in &b.refused {
                    metrics::counter!(BUDGET_REFUSED, "system" => id.name()).absolute(*n);
                }
            }
            for p in [Phase::Running, Phase::ShuttingDown, Phase::Final] {
                metrics::gauge!(SESSION_PHASE, "phase" => p.name()).set(if p == phase {
                    1.0
                } else {
                    0.0
                });
            }
            for (i, o) in CloseOutcome::ALL.iter().enumerate() {
                metrics::gauge!(SHUTDOWN_SYSTEMS, "outcome" => o.name())
                    .set(shutdown.outcomes[i] as f64);
            }
            metrics::gauge!(SHUTDOWN_DURATION).set(shutdown.seconds);
        });
    }
}

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_gauge!(
        SYSTEM_STATE,
        "1 for the state each system is in (open, idle, closing, closed, error, disabled), 0 for the others"
    );
    describe_counter!(
        REQUESTS,
        "Requests finished (answered, truncated or failed), per system"
    );
    describe_counter!(REQUEST_ERRORS, "Requests that failed, per system");
    describe_gauge!(
        BREAKER_STATE,
        "1 for the state each system's circuit breaker is in (closed, open, half_open), 0 for the others"
    );
    describe_counter!(BREAKER_OPENS, "Times each system's circuit breaker opened");
    describe_gauge!(
        BUDGET_SPENT,
        Unit::Count,
        "USD spent by the session, from the answers' usage at [pricing] (with a [budget] set)"
    );
    describe_gauge!(
        BUDGET_LIMIT,
        Unit::Count,
        "The session's spend limit in USD"
    );
    describe_gauge!(
        BUDGET_BURN,
        Unit::Count,
        "USD per hour spent over the last hour (or the session, when younger)"
    );
    describe_gauge!(
        BUDGET_EXHAUSTED,
        "1 once the session's spend limit stopped a call (the session then ends with reason budget)"
    );
    describe_counter!(
        BUDGET_REFUSED,
        "Calls not made because their worst cost would cross a spend limit, per system"
    );
    describe_counter!(
        CALL_OUTCOMES,
        "The game's calls per system by outcome: answered, late (cancelled at the deadline), rate_limited (cut at the deadline while waiting out a 429), cut (a stream cut; its partial text used), skipped_by_breaker, error"
    );
    describe_gauge!(
        DEADLINE,
        Unit::Seconds,
        "The deadline each system's next call gets (its recent p99 times the multiplier, within the floor and the ceiling)"
    );
    describe_gauge!(IN_FLIGHT, "Requests in flight, per system");
    describe_gauge!(
        OPEN_SOCKETS,
        "TCP sockets the system holds open, measured from the process's fds"
    );
    describe_counter!(CONNECTIONS_OPENED, "TCP connections the system opened");
    describe_histogram!(
        REQUEST_DURATION,
        Unit::Seconds,
        "Duration of successful requests, per system"
    );
    describe_counter!(CYCLES, "Gameplay cycles completed");
    describe_counter!(ACTIONS, "Actions taken, by kind");
    describe_counter!(
        FALLBACKS,
        "Safe actions taken because no usable answer came"
    );
    describe_counter!(
        SKIPPED_CALLS,
        "Calls the agent skipped because the system was unavailable, per system"
    );
    describe_gauge!(
        SESSION_PHASE,
        "1 for the session's phase (running, shutting_down, final), 0 for the others"
    );
    describe_gauge!(
        SHUTDOWN_SYSTEMS,
        "Systems by close outcome (closed, forced, error, skipped, unverified: closed by the in-process ledger but not confirmed by the OS socket table); 0 until shutdown"
    );
    describe_gauge!(
        SHUTDOWN_CANCELLED,
        "Requests in flight each system's close cancelled at the grace deadline (or by a force); 0 until shutdown"
    );
    describe_gauge!(
        SHUTDOWN_DURATION,
        Unit::Seconds,
        "Shutdown trigger to the last system closed; 0 until shutdown"
    );
    describe_gauge!(BUILD_INFO, "Always 1; the version is a label");
    describe_counter!(
        TRUNCATED,
        "Answers cut at their output cap (reasoning included), per system"
    );
    describe_counter!(
        TOKENS,
        "Tokens as the service reported them, per system and kind (input, output, reasoning; output includes reasoning)"
    );
    describe_gauge!(
        RATELIMIT_REMAINING,
        "Requests or tokens left in the service's rate-limit window, from its last answer's headers"
    );
    describe_gauge!(
        RATELIMIT_LIMIT,
        "The service's rate limit for requests or tokens, from its last answer's headers"
    );
}

#[cfg(test)]
mod tests {
    use super::CostCounter;

    /// The cost counter never goes down: a cost read lower than the last (its system's
    /// figures began again) counts from zero on top of what was counted.
    #[test]
    fn the_cost_counter_only_grows() {
        let mut c = CostCounter::default();
        for (now, total) in [
            (0.5, 0.5),
            (0.75, 0.75),
            (0.75, 0.75),
            (0.25, 1.0),
            (0.5, 1.25),
        ] {
            c.read(now);
            assert_eq!(c.total(), total, "after reading {now}");
        }
    }
}
