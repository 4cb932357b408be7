//! One system: its connection pool, its state machine, its live counters, and how it closes.
//!
//! Requests run as tasks on the system's own [`TaskTracker`], so the system, not the caller,
//! owns them: a caller may stop waiting (the game moved on) without cutting the request,
//! and closing can wait for exactly this system's work.

mod close;
mod request;

pub use request::Bounded;

use crate::clients::ApiKey;
use crate::net::sockets::{self, SocketLedger};
use crate::net::transport::{HttpClient, PoolSettings};

use super::breaker::{Breaker, BreakerSettings, BreakerState};
use crate::clients::UsageMeter;
use crate::clients::{Headroom, Usage};
use crate::config::{Price, ResilienceConfig, SystemConfig};
use crate::sync::LockExt;
use crate::systems::{Protocol, SystemId};
use serde::Serialize;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Semaphore, broadcast, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The states of ARCHITECTURE.md, "System states".
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    serde::Deserialize,
    strum::IntoStaticStr,
    strum::EnumString,
)]
#[strum(serialize_all = "snake_case")]
#[serde(rename_all = "lowercase")]
pub enum SystemState {
    Open,
    Idle,
    Closing,
    Closed,
    Error,
    Disabled,
}

impl SystemState {
    pub fn name(self) -> &'static str {
        self.into()
    }
}

/// One system moving from one state to another (the JSON event stream's `state` events).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct StateChange {
    pub system: SystemId,
    pub from: SystemState,
    pub to: SystemState,
    /// The cause, when the system moved to `error`.
    pub error: Option<String>,
}

/// A live view of one system, cheap to take, for a UI or a report.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct SystemSnapshot {
    pub id: SystemId,
    pub state: SystemState,
    pub in_flight: u32,
    pub done: u64,
    pub errors: u64,
    /// Answers cut at their output cap (not counted in `errors` or `done`).
    pub truncated: u64,
    /// Requests sent again after a retryable status or a broken connection.
    pub retries: u64,
    /// Tokens as the service reported them; `None` until an answer reported any.
    pub usage: Option<Usage>,
    /// Estimated from `usage` and the config's `[pricing]`; `None` when either is unknown.
    pub cost_usd: Option<f64>,
    /// What the service's rate-limit headers said last; `None` if it sends none.
    pub headroom: Option<Headroom>,
    pub open_sockets: u32,
    pub connections_opened: u64,
    pub latency_p50_ms: Option<f64>,
    pub latency_p99_ms: Option<f64>,
    /// Most recent latencies, oldest first (for a sparkline).
    pub recent_latency_ms: Vec<f64>,
    pub last_error: Option<String>,
    pub disabled_reason: Option<String>,
    /// Calls past their deadline (cancelled, not awaited).
    pub late: u64,
    /// Calls cut at their deadline while waiting out the service's 429 (not counted in
    /// `late`): the service's rate limit, not its slowness.
    #[serde(default)]
    pub rate_limited: u64,
    /// The last 429 a rate-limited call waited out, in the service's words ("HTTP 429 Too
    /// Many Requests, retry in 1 s"); `None` before any.
    #[serde(default)]
    pub last_rate_limit: Option<String>,
    /// Streams cut at their deadline or after a silence; what they said was used.
    pub cut: u64,
    /// Calls the MoE vote went on without, once they were past the system's own usual
    /// latency (its recent p99). Not an outcome of the call, which runs on and is counted
    /// as whatever it ends as (answered, late…): the vote's, so no breaker counts it.
    #[serde(default)]
    pub outvoted: u64,
    /// Calls not made because the breaker was open (or its one probe was out).
    pub breaker_skipped: u64,
    /// Calls not made because their worst cost would cross a spend limit.
    #[serde(default)]
    pub budget_refused: u64,
    pub breaker: BreakerState,
    /// Times the breaker opened.
    pub breaker_opens: u64,
    /// The deadline the next call gets.
    pub deadline_ms: f64,
}

impl SystemSnapshot {
    /// Requests sent: answered (truncated included), failed, late, rate-limited or cut.
    pub fn requests(&self) -> u64 {
        self.done + self.errors + self.truncated + self.late + self.rate_limited + self.cut
    }
}

/// Where a system announces its changes: any change (a counter), its state changes, its
/// breaker's changes. Shared by all the systems of a registry.
#[derive(Clone)]
pub struct Channels {
    pub changed: watch::Sender<u64>,
    pub transitions: broadcast::Sender<StateChange>,
    pub breaker_changes: broadcast::Sender<BreakerChange>,
}

/// A breaker changing state (the JSON `breaker` events, the log).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct BreakerChange {
    pub system: SystemId,
    pub from: BreakerState,
    pub to: BreakerState,
    pub reason: String,
}

/// How one system's close ended (ARCHITECTURE.md, "Session report": `outcome`).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    serde::Deserialize,
    strum::IntoStaticStr,
    strum::EnumString,
)]
#[strum(serialize_all = "snake_case")]
#[serde(rename_all = "lowercase")]
pub enum CloseOutcome {
    Closed,
    Forced,
    Error,
    Skipped,
    /// The in-process ledger saw every connection close, but the OS table could not be read
    /// to confirm it (or the ledger itself could not vouch): never counted as closed.
    Unverified,
}

impl CloseOutcome {
    pub const ALL: [CloseOutcome; 5] = [
        CloseOutcome::Closed,
        CloseOutcome::Forced,
        CloseOutcome::Error,
        CloseOutcome::Skipped,
        CloseOutcome::Unverified,
    ];

    /// As in the report.
    pub fn name(self) -> &'static str {
        self.into()
    }
}

/// How one close ended: a system's (`CloseReport`), or a closing step's that is not a
/// system, such as the metrics endpoint (`StepReport`, named by a string).
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct CloseReport<Name = SystemId> {
    pub name: Name,
    pub outcome: CloseOutcome,
    pub close_ms: f64,
    pub sockets_before: u32,
    pub error: Option<String>,
    /// Requests in flight cancelled by this close: at the grace deadline (the close may still
    /// be `closed`) or by a force. Older agents sent it as `cancelled_requests`.
    #[serde(default, alias = "cancelled_requests")]
    pub cancelled: u32,
    /// Whether both witnesses (the ledger and the OS socket table) agreed on the result.
    pub verified: bool,
    /// Why not, when not verified.
    pub unverified_reason: Option<String>,
    /// A close asked for while the session ran, still standing at this one (not reopened
    /// since): the outcome above is the worse of the two.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub earlier: Option<EarlierClose>,
    /// When each step of this close happened, in ms since it began: where a close's time
    /// goes (BENCHMARKS.md, "Where the milliseconds go"). Empty for a close that had
    /// nothing to do, and in a viewer (the protocol does not carry it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<CloseStep>,
}

/// One step of a close, at `ms` since the close began.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
pub struct CloseStep {
    pub step: CloseStepKind,
    pub ms: f64,
}

/// The steps of a close, in the order they can happen.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    serde::Deserialize,
    strum::IntoStaticStr,
    strum::EnumString,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum CloseStepKind {
    /// Every request in flight ended by itself (no cut).
    Drained,
    /// The grace deadline (a mark, not an action: the cut is measured against it).
    Deadline,
    /// The grace deadline's timer fired (or a force came) with requests still running.
    Cut,
    /// The cut's cancel was sent to the requests still running.
    CancelSent,
    /// Every request task ended (its future dropped with its connection).
    TasksEnded,
    /// The pool was dropped: its idle connections' tasks close their sockets.
    PoolDropped,
    /// The ledger saw the last connection's fd close.
    FdsClosed,
    /// Both witnesses were asked and the close decided.
    Checked,
}

/// A close asked for while the session ran (the dashboard's `c`/`x`, a viewer's command).
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct EarlierClose {
    /// Who asked ("you" at the dashboard, a viewer's name).
    pub by: String,
    /// Seconds since the session started.
    pub at_s: f64,
    /// `x` rather than `c`: forced on request, not at a grace deadline.
    pub forced_on_request: bool,
    pub outcome: CloseOutcome,
    pub close_ms: f64,
    pub error: Option<String>,
    /// Requests that close cancelled at its grace deadline (or by its force).
    #[serde(default)]
    pub cancelled: u32,
}

impl CloseOutcome {
    /// How bad an outcome is, to keep the worse of two closes of one system.
    fn severity(self) -> u8 {
        match self {
            CloseOutcome::Skipped => 0,
            CloseOutcome::Closed => 1,
            CloseOutcome::Forced => 2,
            CloseOutcome::Unverified => 3,
            CloseOutcome::Error => 4,
        }
    }

    pub fn worse(self, other: CloseOutcome) -> CloseOutcome {
        if other.severity() > self.severity() {
            other
        } else {
            self
        }
    }
}

/// One generation of the system's connection pool; reopening makes a new one.
struct Generation {
    client: Option<HttpClient>,
    stop: CancellationToken,
    force: CancellationToken,
    tracker: TaskTracker,
}

struct Status {
    state: SystemState,
    last_error: Option<String>,
    /// The last 429 a call was cut waiting out.
    last_rate_limit: Option<String>,
    disabled_reason: Option<String>,
}

const LATENCY_WINDOW: usize = 120;

/// Told each successful request's duration, on the task that made the request: keep it
/// short (a histogram's observe).
pub type LatencyObserver = Arc<dyn Fn(Duration) + Send + Sync>;

pub struct System {
    pub id: SystemId,
    pub config: SystemConfig,
    /// `None` for systems with no wire of their own (moe) or disabled ones.
    base: Option<url::Url>,
    key: Option<ApiKey>,
    ledger: Arc<SocketLedger>,
    /// The pool limit on connections, held by each connection until its fd closes.
    connection_permits: Arc<Semaphore>,
    generation: Mutex<Generation>,
    status: Mutex<Status>,
    limiter: Arc<Semaphore>,
    in_flight: AtomicU32,
    done: AtomicU64,
    errors: AtomicU64,
    truncated: AtomicU64,
    retried: Arc<AtomicU64>,
    usage: Arc<UsageMeter>,
    price: std::sync::OnceLock<Price>,
    open_sockets: AtomicU32,
    latencies: Mutex<VecDeque<f64>>,
    changed: watch::Sender<u64>,
    transitions: broadcast::Sender<StateChange>,
    /// Where finished requests' durations also go when metrics are exported.
    latency_observer: std::sync::OnceLock<LatencyObserver>,
    deadlines: std::sync::OnceLock<Deadlines>,
    breaker: Mutex<Breaker>,
    breaker_changes: broadcast::Sender<BreakerChange>,
    late: AtomicU64,
    rate_limited: AtomicU64,
    outvoted: AtomicU64,
    cut: AtomicU64,
    /// The last close asked for at runtime, while it stands (reopening clears it).
    earlier: Mutex<Option<EarlierClose>>,
    /// Where each exchange is recorded (`--record DIR`), when it is.
    recorder: std::sync::OnceLock<Arc<crate::net::record::Recorder>>,
    /// The spend limit, when one is set.
    budget: std::sync::OnceLock<Arc<crate::lifecycle::Budget>>,
    /// Calls not made because of a spend limit.
    budget_refused: AtomicU64,
    breaker_skipped: AtomicU64,
}

/// How a system's calls are bounded (config `[resilience]`).
#[derive(Debug, Clone, Copy)]
pub struct Deadlines {
    pub multiplier: f64,
    pub floor: Duration,
    pub ceiling: Duration,
    /// Before the system has [`MIN_SAMPLES`] answers.
    pub initial: Duration,
    pub stream_idle: Duration,
}

impl Deadlines {
    pub fn from_config(r: &ResilienceConfig, instant_sandbox: bool) -> Deadlines {
        Deadlines {
            multiplier: r.deadline_multiplier,
            floor: Duration::from_millis(r.deadline_floor_ms),
            ceiling: Duration::from_millis(r.deadline_ceiling_ms),
            initial: r.initial_deadline(instant_sandbox),
            stream_idle: Duration::from_millis(r.stream_idle_ms),
        }
    }
}

impl Default for Deadlines {
    fn default() -> Self {
        Deadlines::from_config(&ResilienceConfig::default(), false)
    }
}

/// Answers a system needs before its own p99 sets its deadline.
pub const MIN_SAMPLES: usize = 5;

impl System {
    /// `base`: the resolved endpoint; `disabled`: why the system cannot run (no key...).
    pub fn new(
        id: SystemId,
        config: SystemConfig,
        base: Option<url::Url>,
        key: Option<ApiKey>,
        disabled: Option<String>,
        channels: Channels,
    ) -> Arc<System> {
        let Channels {
            changed,
            transitions,
            breaker_changes,
        } = channels;
        let ledger = Arc::new(SocketLedger::default());
        let state = if disabled.is_some() {
            SystemState::Disabled
        } else {
            SystemState::Idle
        };
        let limiter = Arc::new(Semaphore::new(config.max_connections()));
        let sys = System {
            id,
            base,
            key,
            generation: Mutex::new(Generation {
                client: None,
                stop: CancellationToken::new(),
                force: CancellationToken::new(),
                tracker: TaskTracker::new(),
            }),
            status: Mutex::new(Status {
                state,
                last_error: None,
                last_rate_limit: None,
                disabled_reason: disabled,
            }),
            limiter,
            ledger,
            connection_permits: Arc::new(Semaphore::new(config.max_connections().max(1))),
            config,
            in_flight: AtomicU32::new(0),
            done: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            truncated: AtomicU64::new(0),
            retried: Arc::new(AtomicU64::new(0)),
            usage: Arc::default(),
            price: std::sync::OnceLock::new(),
            open_sockets: AtomicU32::new(0),
            latencies: Mutex::new(VecDeque::with_capacity(LATENCY_WINDOW)),
            changed,
            transitions,
            latency_observer: std::sync::OnceLock::new(),
            deadlines: std::sync::OnceLock::new(),
            breaker: Mutex::new(Breaker::new(breaker_settings(&ResilienceConfig::default()))),
            breaker_changes,
            late: AtomicU64::new(0),
            rate_limited: AtomicU64::new(0),
            outvoted: AtomicU64::new(0),
            cut: AtomicU64::new(0),
            earlier: Mutex::new(None),
            recorder: std::sync::OnceLock::new(),
            budget: std::sync::OnceLock::new(),
            budget_refused: AtomicU64::new(0),
            breaker_skipped: AtomicU64::new(0),
        };
        if state != SystemState::Disabled {
            let stop = sys.lock_generation().stop.clone();
            sys.lock_generation().client = sys.build_client(&stop);
        }
        Arc::new(sys)
    }

    fn build_client(&self, stop: &CancellationToken) -> Option<HttpClient> {
        if self.config.protocol == Protocol::Moe {
            return None;
        }
        let built = HttpClient::new(PoolSettings {
            ledger: self.ledger.clone(),
            permits: self.connection_permits.clone(),
            stop: stop.clone(),
            connect_timeout: self.config.connect_timeout(),
            timeout: self.config.timeout(),
            max_idle_per_host: self.config.pool_max_per_host as usize,
        });
        match built {
            Ok(c) => Some(c),
            Err(e) => {
                self.set_error(format!("building HTTP client: {e}"));
                None
            }
        }
    }

    fn lock_generation(&self) -> std::sync::MutexGuard<'_, Generation> {
        self.generation.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_status(&self) -> std::sync::MutexGuard<'_, Status> {
        self.status.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn notify(&self) {
        self.changed.send_modify(|v| *v = v.wrapping_add(1));
    }

    pub fn state(&self) -> SystemState {
        self.lock_status().state
    }

    fn set_state(&self, state: SystemState) {
        let mut st = self.lock_status();
        self.move_to(&mut st, state);
        drop(st);
        self.notify();
    }

    /// Every state change goes through here, so each one is announced exactly once.
    fn move_to(&self, st: &mut Status, to: SystemState) {
        if st.state == to {
            return;
        }
        let from = std::mem::replace(&mut st.state, to);
        let error = if to == SystemState::Error {
            st.last_error.clone()
        } else {
            None
        };
        // No subscriber is fine: nobody follows the event stream.
        let _ = self.transitions.send(StateChange {
            system: self.id,
            from,
            to,
            error,
        });
    }

    /// Estimate this system's cost at `price` (its model's, from `[pricing]`).
    pub fn set_price(&self, price: Price) {
        let _ = self.price.set(price);
    }

    /// Also hand each successful request's duration to `observer` (the app's exporter;
    /// the first observer set stays).
    pub fn observe_latency(&self, observer: LatencyObserver) {
        let _ = self.latency_observer.set(observer);
    }

    fn set_error(&self, cause: String) {
        let mut st = self.lock_status();
        st.last_error = Some(cause);
        if !matches!(
            st.state,
            SystemState::Closing | SystemState::Closed | SystemState::Disabled
        ) {
            self.move_to(&mut st, SystemState::Error);
        }
        drop(st);
        self.notify();
    }

    /// Whether new work is accepted.
    pub fn is_available(&self) -> bool {
        matches!(
            self.state(),
            SystemState::Open | SystemState::Idle | SystemState::Error
        )
    }

    /// Connections open by the in-process ledger's account.
    pub fn ledger_open(&self) -> usize {
        self.ledger.open_count()
    }

    /// Test hook (as `--crash-after-cycles` is): poison this system's ledger lock mid-session,
    /// to prove the shutdown then says "unverified" and loses nothing else.
    #[doc(hidden)]
    pub fn poison_ledger(&self) {
        self.ledger.poison();
    }

    /// Test hook (`--test-leak-socket`): the next connection this system makes is
    /// duplicated and the duplicate held open past the system's close, outside its pool, so
    /// the shutdown finds a real leak: this system `error`, exit status 3
    /// ([`SocketLedger::leak_next`](crate::net::sockets::SocketLedger::leak_next)).
    #[doc(hidden)]
    pub fn leak_next_connection(&self) {
        self.ledger.leak_next();
    }

    pub fn connections_opened(&self) -> u64 {
        self.ledger.opened()
    }

    /// This system's open sockets by both witnesses: the ledger's own count, and what a
    /// fresh socket table still lists.
    pub fn measure_sockets(&self, table: &[sockets::OwnedSocket]) -> u32 {
        let n = self
            .ledger
            .open_sockets(table)
            .len()
            .max(self.ledger.open_count()) as u32;
        if self.open_sockets.swap(n, Ordering::Relaxed) != n {
            self.notify();
        }
        n
    }

    pub fn snapshot(&self) -> SystemSnapshot {
        let st = self.lock_status();
        let lat: Vec<f64> = self.latencies.locked().iter().copied().collect();
        let (p50, p99) = percentiles(&lat);
        let usage = self.usage.reported().then(|| self.usage.total());
        // One look at the breaker (a second lock in the same expression would deadlock).
        let breaker = self.breaker.locked().clone();
        SystemSnapshot {
            id: self.id,
            state: st.state,
            in_flight: self.in_flight.load(Ordering::Relaxed),
            done: self.done.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            truncated: self.truncated.load(Ordering::Relaxed),
            retries: self.retried.load(Ordering::Relaxed),
            usage,
            cost_usd: self.cost_usd(),
            headroom: self.usage.headroom(),
            open_sockets: self.open_sockets.load(Ordering::Relaxed),
            connections_opened: self.ledger.opened(),
            latency_p50_ms: p50,
            latency_p99_ms: p99,
            recent_latency_ms: lat,
            last_error: st.last_error.clone(),
            disabled_reason: st.disabled_reason.clone(),
            late: self.late.load(Ordering::Relaxed),
            rate_limited: self.rate_limited.load(Ordering::Relaxed),
            last_rate_limit: st.last_rate_limit.clone(),
            outvoted: self.outvoted.load(Ordering::Relaxed),
            budget_refused: self.budget_refused.load(Ordering::Relaxed),
            cut: self.cut.load(Ordering::Relaxed),
            breaker_skipped: self.breaker_skipped.load(Ordering::Relaxed),
            breaker: breaker.state(),
            breaker_opens: breaker.opened(),
            deadline_ms: self.deadline().as_secs_f64() * 1e3,
        }
    }

    /// Bound this system's calls as `d` says, and open its breaker as `b` says.
    pub fn set_resilience(&self, d: Deadlines, b: BreakerSettings) {
        let _ = self.deadlines.set(d);
        *self.breaker.locked() = Breaker::new(b);
    }

    fn deadlines(&self) -> Deadlines {
        self.deadlines.get().copied().unwrap_or_default()
    }

    /// The next call's deadline: its recent p99 times the multiplier, between the floor and
    /// the ceiling; the initial deadline until it has answered [`MIN_SAMPLES`] calls.
    pub fn deadline(&self) -> Duration {
        let d = self.deadlines();
        // On every call's path: the p99 of the window without copying or sorting it.
        let p99 = {
            let lat = self.latencies.locked();
            if lat.len() < MIN_SAMPLES {
                return d.initial;
            }
            p99_of(lat.iter().copied(), lat.len())
        };
        let ms = p99 * d.multiplier;
        Duration::from_secs_f64(ms / 1e3).clamp(d.floor, d.ceiling)
    }
}

impl System {
    /// Keep every paid call within `budget` from now on; a second call is ignored.
    pub fn keep_within(&self, budget: Arc<crate::lifecycle::Budget>) {
        let _ = self.budget.set(budget);
    }

    /// What this system has spent, by its answers' usage at its price; `None` when either
    /// is unknown.
    pub fn cost_usd(&self) -> Option<f64> {
        let usage = self.usage.reported().then(|| self.usage.total());
        usage.zip(self.price.get()).map(|(u, p)| p.cost(&u))
    }

    /// Record every exchange from now on (`--record DIR`); a second call is ignored.
    pub fn record_to(&self, recorder: Arc<crate::net::record::Recorder>) {
        let _ = self.recorder.set(recorder);
    }

    /// The key this system signs with, for what must never be written (recordings mask it).
    pub fn key_for_masking(&self) -> Option<String> {
        self.key
            .as_ref()
            .map(|k| k.expose_for_masking().to_string())
    }

    /// How long this system usually takes: its recent p99 latency once it has answered
    /// [`MIN_SAMPLES`] calls, else its deadline (nothing shorter is known to be normal for
    /// it). A caller that waits this long has waited for everything but its tail.
    pub fn usual_latency(&self) -> Duration {
        let p99 = {
            let lat = self.latencies.locked();
            if lat.len() < MIN_SAMPLES {
                None
            } else {
                Some(p99_of(lat.iter().copied(), lat.len()))
            }
        };
        match p99 {
            Some(ms) => Duration::from_secs_f64(ms / 1e3),
            None => self.deadline(),
        }
    }
}

/// The same p99 as [`percentiles`] (the sample at rank round((n-1)·0.99)), found as the
/// (k+1)-th largest, k = n-1-rank, which is 0 or 1 for a window of up to 150 samples.
fn p99_of(samples: impl Iterator<Item = f64>, n: usize) -> f64 {
    let k = (n - 1) - ((n - 1) as f64 * 0.99).round() as usize;
    let mut top: Vec<f64> = Vec::with_capacity(k + 2);
    for x in samples {
        if top.len() <= k || x > top[top.len() - 1] {
            let at = top.partition_point(|t| *t >= x);
            top.insert(at, x);
            top.truncate(k + 1);
        }
    }
    top.get(k).copied().unwrap_or(0.0)
}

fn percentiles(samples: &[f64]) -> (Option<f64>, Option<f64>) {
    if samples.is_empty() {
        return (None, None);
    }
    let mut s = samples.to_vec();
    s.sort_by(f64::total_cmp);
    let at = |q: f64| s[((s.len() - 1) as f64 * q).round() as usize];
    (Some(at(0.5)), Some(at(0.99)))
}

/// The breaker settings of `[resilience]`.
pub fn breaker_settings(r: &ResilienceConfig) -> BreakerSettings {
    BreakerSettings {
        failures: r.breaker_failures,
        backoff: Duration::from_millis(r.breaker_backoff_ms),
        backoff_max: Duration::from_millis(r.breaker_backoff_max_ms),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_ranked_samples() {
        assert_eq!(percentiles(&[]), (None, None));
        // The quick p99 is the sorted one, for every window size it meets.
        for n in 1..=LATENCY_WINDOW {
            let s: Vec<f64> = (0..n).map(|i| ((i * 7919) % 1013) as f64).collect();
            assert_eq!(
                Some(p99_of(s.iter().copied(), n)),
                percentiles(&s).1,
                "n = {n}"
            );
        }
        let s: Vec<f64> = (1..=100).map(f64::from).collect();
        let (p50, p99) = percentiles(&s);
        assert_eq!(p50, Some(51.0));
        assert_eq!(p99, Some(99.0));
    }

    /// A viewer reads the `closed` events of agents from before the rename too.
    #[test]
    fn a_close_report_reads_cancelled_under_its_former_name() {
        let old = r#"{"name":"claude_client","outcome":"forced","close_ms":500.2,
            "sockets_before":1,"error":null,"cancelled_requests":2,"verified":true,
            "unverified_reason":null}"#;
        let r: CloseReport = serde_json::from_str(old).unwrap();
        assert_eq!(r.cancelled, 2);
        let now = serde_json::to_value(&r).unwrap();
        assert_eq!(now["cancelled"], 2);
        assert!(now.get("cancelled_requests").is_none());
    }
}
