//! The session's figures as Prometheus metrics, in the Prometheus text format (0.0.4)
//! through the Prometheus project's `prometheus-client`. Each session has its own registry
//! (no global one), so several sessions in one process (the tests) never mix their figures.
//!
//! Counters and gauges are read from the engines' snapshots when scraped (a collector);
//! request durations are observed as they happen, into a histogram per system (a histogram
//! cannot be rebuilt from a snapshot).

use crate::gameplay::GameStats;
use crate::lifecycle::BreakerState;
use crate::lifecycle::{CloseOutcome, Registry, SystemSnapshot, SystemState, SystemsClosed};
use crate::sync::LockExt;
use crate::systems::SystemId;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry as Exposition;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

/// The `Content-Type` of what [`SessionMetrics::render`] writes.
pub(crate) const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

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
/// A counter of fractional USD.
pub(crate) const COST: &str = "singularis_cost_usd_total";
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
    figures: Arc<Figures>,
    exposition: Exposition,
}

/// What a scrape reads: the engines' snapshots, the game's stats, the session's phase and
/// shutdown, and the histograms the systems' requests fill.
struct Figures {
    registry: Arc<Registry>,
    game: Arc<Mutex<GameStats>>,
    phase: Mutex<Phase>,
    shutdown: Mutex<Option<ShutdownFigures>>,
    /// Per system, the cost last read and the counter's total: the counter only grows, so
    /// a cost read lower than before (the system's figures started again) adds from zero.
    cost: Mutex<BTreeMap<SystemId, CostCounter>>,
    /// Request durations, per system, in [`LATENCY_BUCKETS`].
    latency: Vec<(SystemId, Histogram)>,
}

impl fmt::Debug for Figures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Figures").finish_non_exhaustive()
    }
}

/// The collector the exposition registry asks at each scrape.
#[derive(Debug)]
struct Scrape(Arc<Figures>);

impl Collector for Scrape {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        self.0.encode(&mut encoder)
    }
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
    pub fn new(registry: Arc<Registry>, game: Arc<Mutex<GameStats>>) -> Arc<SessionMetrics> {
        let latency = registry
            .all()
            .iter()
            .map(|sys| {
                let h = Histogram::new(LATENCY_BUCKETS.iter().copied());
                let observed = h.clone();
                sys.observe_latency(Arc::new(move |took| observed.observe(took.as_secs_f64())));
                (sys.id, h)
            })
            .collect();
        let figures = Arc::new(Figures {
            registry,
            game,
            phase: Mutex::new(Phase::Running),
            shutdown: Mutex::new(None),
            cost: Mutex::new(BTreeMap::new()),
            latency,
        });
        let mut exposition = Exposition::default();
        exposition.register_collector(Box::new(Scrape(figures.clone())));
        Arc::new(SessionMetrics {
            figures,
            exposition,
        })
    }

    pub fn phase(&self) -> Phase {
        *self.figures.phase.locked()
    }

    pub(crate) fn set_phase(&self, phase: Phase) {
        *self.figures.phase.locked() = phase;
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
        *self.figures.shutdown.locked() = Some(f);
        self.set_phase(Phase::Final);
    }

    /// The exposition text ([`CONTENT_TYPE`]), figures read now.
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing into a String fails only if a collector does, and ours do not.
        if let Err(e) =
            prometheus_client::encoding::prometheus_text::encode(&mut text, &self.exposition)
        {
            tracing::error!(error = %e, "encoding the metrics failed; the scrape is partial");
        }
        text
    }
}

/// Labels of one sample, in the order written.
type Labels<'a> = Vec<(&'static str, &'a str)>;

/// One family: `# HELP`, `# TYPE` and its samples; left out when it has no samples (as a
/// metric never set is absent). `name` is the full sample name: a counter's ends in
/// `_total`, which the encoder adds itself.
fn family<M: EncodeMetric>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    samples: Vec<(Labels<'_>, M)>,
) -> fmt::Result {
    let Some((_, first)) = samples.first() else {
        return Ok(());
    };
    let kind = first.metric_type();
    let name = match kind {
        MetricType::Counter => name.strip_suffix("_total").unwrap_or(name),
        _ => name,
    };
    let mut metric = enc.encode_descriptor(name, help, None, kind)?;
    for (labels, m) in &samples {
        m.encode(metric.encode_family(labels)?)?;
    }
    Ok(())
}

fn count(n: u64) -> ConstCounter<u64> {
    ConstCounter::new(n)
}

fn gauge(v: f64) -> ConstGauge<f64> {
    ConstGauge::new(v)
}

/// 1 when `on`, else 0 (a state set's gauge).
fn flag(on: bool) -> ConstGauge<u64> {
    ConstGauge::new(u64::from(on))
}

/// A sample per system.
fn per_system<M>(
    systems: &[SystemSnapshot],
    value: impl Fn(&SystemSnapshot) -> M,
) -> Vec<(Labels<'static>, M)> {
    systems
        .iter()
        .map(|s| (vec![("system", s.id.name())], value(s)))
        .collect()
}

impl Figures {
    fn encode(&self, enc: &mut DescriptorEncoder) -> fmt::Result {
        let systems = self.registry.snapshots();
        let game = self.game.locked().clone();
        let shutdown = self.shutdown.locked().clone().unwrap_or_default();
        let phase = *self.phase.locked();
        family(
            enc,
            BUILD_INFO,
            "Always 1; the version is a label",
            vec![(vec![("version", env!("CARGO_PKG_VERSION"))], flag(true))],
        )?;
        encode_systems(enc, &systems, &game)?;
        encode_calls(enc, &systems)?;
        self.encode_cost(enc, &systems)?;
        family(
            enc,
            REQUEST_DURATION,
            "Duration of successful requests, per system",
            self.latency
                .iter()
                .map(|(id, h)| (vec![("system", id.name())], h.clone()))
                .collect(),
        )?;
        encode_game(enc, &game)?;
        encode_session(enc, &systems, phase, &shutdown)
    }

    /// `singularis_cost_usd_total`, a counter of fractional USD per system that never goes
    /// down (see [`CostCounter`]).
    fn encode_cost(&self, enc: &mut DescriptorEncoder, systems: &[SystemSnapshot]) -> fmt::Result {
        let mut cost = self.cost.locked();
        for s in systems {
            if let Some(usd) = s.cost_usd {
                cost.entry(s.id).or_default().read(usd);
            }
        }
        family(
            enc,
            COST,
            "Estimated cost in USD so far, per system, from the config's [pricing]; absent while the model used tokens it has no price for",
            cost.iter()
                .map(|(id, c)| (vec![("system", id.name())], ConstCounter::new(c.total())))
                .collect(),
        )
    }
}

/// Each system's state, requests, tokens, rate limits and sockets.
fn encode_systems(
    enc: &mut DescriptorEncoder,
    systems: &[SystemSnapshot],
    game: &GameStats,
) -> fmt::Result {
    let mut states = Vec::new();
    for s in systems {
        for st in STATES {
            states.push((
                vec![("system", s.id.name()), ("state", st.name())],
                flag(s.state == st),
            ));
        }
    }
    family(
        enc,
        SYSTEM_STATE,
        "1 for the state each system is in (open, idle, closing, closed, error, disabled), 0 for the others",
        states,
    )?;
    family(
        enc,
        REQUESTS,
        "Requests finished (answered, truncated or failed), per system",
        per_system(systems, |s| count(s.requests())),
    )?;
    family(
        enc,
        REQUEST_ERRORS,
        "Requests that failed, per system",
        per_system(systems, |s| count(s.errors)),
    )?;
    family(
        enc,
        TRUNCATED,
        "Answers cut at their output cap (reasoning included), per system",
        per_system(systems, |s| count(s.truncated)),
    )?;
    let mut tokens = Vec::new();
    for s in systems {
        if let Some(u) = s.usage {
            for (kind, n) in [
                ("input", u.input),
                ("output", u.output),
                ("reasoning", u.reasoning),
            ] {
                tokens.push((vec![("system", s.id.name()), ("kind", kind)], count(n)));
            }
        }
    }
    family(
        enc,
        TOKENS,
        "Tokens as the service reported them, per system and kind (input, output, reasoning; output includes reasoning)",
        tokens,
    )?;
    let (mut remaining, mut limits) = (Vec::new(), Vec::new());
    for s in systems {
        let Some(h) = s.headroom else { continue };
        let pairs = [
            ("requests", h.requests_remaining, h.requests_limit),
            ("tokens", h.tokens_remaining, h.tokens_limit),
        ];
        for (resource, left, limit) in pairs {
            let labels = vec![("system", s.id.name()), ("resource", resource)];
            if let Some(n) = left {
                remaining.push((labels.clone(), ConstGauge::new(n)));
            }
            if let Some(n) = limit {
                limits.push((labels, ConstGauge::new(n)));
            }
        }
    }
    family(
        enc,
        RATELIMIT_REMAINING,
        "Requests or tokens left in the service's rate-limit window, from its last answer's headers",
        remaining,
    )?;
    family(
        enc,
        RATELIMIT_LIMIT,
        "The service's rate limit for requests or tokens, from its last answer's headers",
        limits,
    )?;
    family(
        enc,
        IN_FLIGHT,
        "Requests in flight, per system",
        per_system(systems, |s| ConstGauge::new(s.in_flight)),
    )?;
    family(
        enc,
        OPEN_SOCKETS,
        "TCP sockets the system holds open, measured from the process's fds",
        per_system(systems, |s| ConstGauge::new(s.open_sockets)),
    )?;
    family(
        enc,
        CONNECTIONS_OPENED,
        "TCP connections the system opened",
        per_system(systems, |s| count(s.connections_opened)),
    )?;
    family(
        enc,
        SKIPPED_CALLS,
        "Calls the agent skipped because the system was unavailable, per system",
        per_system(systems, |s| {
            count(game.skipped_calls.get(&s.id).copied().unwrap_or(0))
        }),
    )
}

/// Each system's breaker, calls by outcome and deadline.
fn encode_calls(enc: &mut DescriptorEncoder, systems: &[SystemSnapshot]) -> fmt::Result {
    let mut breaker = Vec::new();
    let mut outcomes = Vec::new();
    for s in systems {
        let name = s.id.name();
        for b in [
            BreakerState::Closed,
            BreakerState::Open,
            BreakerState::HalfOpen,
        ] {
            breaker.push((
                vec![("system", name), ("state", b.name())],
                flag(s.breaker == b),
            ));
        }
        for (outcome, n) in [
            ("answered", s.done + s.truncated),
            ("late", s.late),
            ("rate_limited", s.rate_limited),
            ("cut", s.cut),
            ("outvoted", s.outvoted),
            ("skipped_by_breaker", s.breaker_skipped),
            ("error", s.errors),
        ] {
            outcomes.push((vec![("system", name), ("outcome", outcome)], count(n)));
        }
    }
    family(
        enc,
        BREAKER_STATE,
        "1 for the state each system's circuit breaker is in (closed, open, half_open), 0 for the others",
        breaker,
    )?;
    family(
        enc,
        BREAKER_OPENS,
        "Times each system's circuit breaker opened",
        per_system(systems, |s| count(s.breaker_opens)),
    )?;
    family(
        enc,
        CALL_OUTCOMES,
        "The game's calls per system by outcome: answered, late (cancelled at the deadline), rate_limited (cut at the deadline while waiting out a 429), cut (a stream cut; its partial text used), skipped_by_breaker, error",
        outcomes,
    )?;
    family(
        enc,
        DEADLINE,
        "The deadline each system's next call gets (its recent p99 times the multiplier, within the floor and the ceiling)",
        per_system(systems, |s| gauge(s.deadline_ms / 1e3)),
    )
}

/// The game's cycles, actions and spend.
fn encode_game(enc: &mut DescriptorEncoder, game: &GameStats) -> fmt::Result {
    family(
        enc,
        CYCLES,
        "Gameplay cycles completed",
        vec![(vec![], count(game.cycles))],
    )?;
    family(
        enc,
        ACTIONS,
        "Actions taken, by kind",
        game.actions_by_kind
            .iter()
            .map(|(kind, n)| (vec![("kind", kind.as_str())], count(*n)))
            .collect(),
    )?;
    family(
        enc,
        FALLBACKS,
        "Safe actions taken because no usable answer came",
        vec![(vec![], count(game.fallbacks))],
    )?;
    let Some(b) = &game.budget else {
        return Ok(());
    };
    family(
        enc,
        BUDGET_SPENT,
        "USD spent by the session, from the answers' usage at [pricing] (with a [budget] set)",
        vec![(vec![], gauge(b.spent_usd))],
    )?;
    family(
        enc,
        BUDGET_LIMIT,
        "The session's spend limit in USD",
        b.limit_usd
            .map(|l| (vec![], gauge(l)))
            .into_iter()
            .collect(),
    )?;
    family(
        enc,
        BUDGET_BURN,
        "USD per hour spent over the last hour (or the session, when younger)",
        vec![(vec![], gauge(b.burn_usd_per_hour))],
    )?;
    family(
        enc,
        BUDGET_EXHAUSTED,
        "1 once the session's spend limit stopped a call (the session then ends with reason budget)",
        vec![(vec![], flag(b.exhausted))],
    )?;
    family(
        enc,
        BUDGET_REFUSED,
        "Calls not made because their worst cost would cross a spend limit, per system",
        b.refused
            .iter()
            .map(|(id, n)| (vec![("system", id.name())], count(*n)))
            .collect(),
    )
}

/// The session's phase and shutdown figures.
fn encode_session(
    enc: &mut DescriptorEncoder,
    systems: &[SystemSnapshot],
    phase: Phase,
    shutdown: &ShutdownFigures,
) -> fmt::Result {
    family(
        enc,
        SESSION_PHASE,
        "1 for the session's phase (running, shutting_down, final), 0 for the others",
        [Phase::Running, Phase::ShuttingDown, Phase::Final]
            .into_iter()
            .map(|p| (vec![("phase", p.name())], flag(p == phase)))
            .collect(),
    )?;
    family(
        enc,
        SHUTDOWN_SYSTEMS,
        "Systems by close outcome (closed, forced, error, skipped, unverified: closed by the in-process ledger but not confirmed by the OS socket table); 0 until shutdown",
        CloseOutcome::ALL
            .iter()
            .zip(shutdown.outcomes)
            .map(|(o, n)| (vec![("outcome", o.name())], ConstGauge::new(n)))
            .collect(),
    )?;
    family(
        enc,
        SHUTDOWN_CANCELLED,
        "Requests in flight each system's close cancelled at the grace deadline (or by a force); 0 until shutdown",
        per_system(systems, |s| {
            ConstGauge::new(shutdown.cancelled.get(&s.id).copied().unwrap_or(0))
        }),
    )?;
    family(
        enc,
        SHUTDOWN_DURATION,
        "Shutdown trigger to the last system closed; 0 until shutdown",
        vec![(vec![], gauge(shutdown.seconds))],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session_metrics() -> Arc<SessionMetrics> {
        let config = crate::config::Config::default();
        let registry = Arc::new(Registry::new(&config, &Default::default(), &|_| None));
        let mut stats = GameStats::default();
        stats.actions_by_kind.insert("move".into(), 3);
        stats.budget = Some(crate::lifecycle::BudgetSnapshot {
            spent_usd: 0.25,
            refused: [(SystemId::MOE, 2)].into(),
            ..Default::default()
        });
        SessionMetrics::new(registry, Arc::new(Mutex::new(stats)))
    }

    /// The exposition is Prometheus text 0.0.4 (no OpenMetrics `# EOF`) that an independent
    /// parser reads; every family has its HELP and TYPE once, under the sample names it had
    /// with the `metrics` exporter (a counter's `_total` not doubled), and the request
    /// durations are a histogram per system in LATENCY_BUCKETS, cumulative, with `+Inf`,
    /// `_sum` and `_count`.
    #[test]
    fn the_exposition_keeps_its_names_labels_and_buckets() {
        let metrics = session_metrics();
        let (id, histogram) = &metrics.figures.latency[0];
        let system = id.name();
        histogram.observe(0.003);
        histogram.observe(0.2);
        let text = metrics.render();
        assert!(
            !text.contains("# EOF") && !text.contains("_total_total"),
            "{text}"
        );
        let line = |l: String| assert!(text.lines().any(|x| x == l), "no line {l:?} in\n{text}");
        line(format!(
            "singularis_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        ));
        line("# HELP singularis_requests_total Requests finished (answered, truncated or failed), per system".into());
        line("# TYPE singularis_requests_total counter".into());
        line(format!(
            "singularis_requests_total{{system=\"{system}\"}} 0"
        ));
        line(format!(
            "singularis_system_state{{system=\"{system}\",state=\"idle\"}} 0"
        ));
        line("# TYPE singularis_request_duration_seconds histogram".into());
        let bucket = |le: &str, n: u64| {
            line(format!(
                "singularis_request_duration_seconds_bucket{{system=\"{system}\",le=\"{le}\"}} {n}"
            ))
        };
        for (le, n) in [
            ("0.001", 0),
            ("0.0025", 0),
            ("0.005", 1),
            ("0.25", 2),
            ("1", 2),
            ("30", 2),
            ("+Inf", 2),
        ] {
            bucket(le, n);
        }
        line(format!(
            "singularis_request_duration_seconds_count{{system=\"{system}\"}} 2"
        ));
        line("singularis_cycles_total 0".into());
        line("singularis_actions_total{kind=\"move\"} 3".into());
        line("singularis_budget_spent_usd 0.25".into());
        line("singularis_budget_refused_calls_total{system=\"moe\"} 2".into());
        line("singularis_session_phase{phase=\"running\"} 1".into());
        line("singularis_shutdown_systems{outcome=\"closed\"} 0".into());

        let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string())))
            .expect("Prometheus text format");
        let sum = scrape
            .samples
            .iter()
            .find(|s| s.metric == REQUEST_DURATION && s.labels.get("system") == Some(system))
            .expect("the histogram");
        let prometheus_parse::Value::Histogram(buckets) = &sum.value else {
            panic!("not a histogram: {sum:?}");
        };
        let les: Vec<f64> = buckets.iter().map(|b| b.less_than).collect();
        assert_eq!(les[..LATENCY_BUCKETS.len()], *LATENCY_BUCKETS);
        assert_eq!(les.len(), LATENCY_BUCKETS.len() + 1);
        // Each family once, with its HELP and TYPE.
        let mut families = BTreeMap::<&str, (u32, u32)>::new();
        for l in text.lines() {
            if let Some(rest) = l.strip_prefix("# HELP ") {
                families
                    .entry(rest.split(' ').next().unwrap())
                    .or_default()
                    .0 += 1;
            } else if let Some(rest) = l.strip_prefix("# TYPE ") {
                families
                    .entry(rest.split(' ').next().unwrap())
                    .or_default()
                    .1 += 1;
            }
        }
        assert!(families.values().all(|n| *n == (1, 1)), "{families:?}");
        // Families with samples here: all but cost (no price), tokens and rate limits (no
        // answers yet) and the budget's limit (none set).
        let absent = [
            COST,
            TOKENS,
            RATELIMIT_REMAINING,
            RATELIMIT_LIMIT,
            BUDGET_LIMIT,
        ];
        for name in [
            SYSTEM_STATE,
            REQUESTS,
            REQUEST_ERRORS,
            IN_FLIGHT,
            OPEN_SOCKETS,
            CONNECTIONS_OPENED,
            REQUEST_DURATION,
            CYCLES,
            ACTIONS,
            FALLBACKS,
            SKIPPED_CALLS,
            SESSION_PHASE,
            SHUTDOWN_SYSTEMS,
            SHUTDOWN_DURATION,
            SHUTDOWN_CANCELLED,
            BUILD_INFO,
            TRUNCATED,
            BREAKER_STATE,
            BREAKER_OPENS,
            CALL_OUTCOMES,
            DEADLINE,
            BUDGET_SPENT,
            BUDGET_BURN,
            BUDGET_REFUSED,
            BUDGET_EXHAUSTED,
        ] {
            assert!(families.contains_key(name), "{name} missing");
        }
        for name in absent {
            assert!(!families.contains_key(name), "{name} without samples");
        }
    }

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
