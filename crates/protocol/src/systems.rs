//! The systems as the stream tells them: each one's live figures, its state changes and
//! breaker changes, and how its close ended.

#[cfg(feature = "schema")]
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A system's state (ARCHITECTURE.md, "System states").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
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
        match self {
            SystemState::Open => "open",
            SystemState::Idle => "idle",
            SystemState::Closing => "closing",
            SystemState::Closed => "closed",
            SystemState::Error => "error",
            SystemState::Disabled => "disabled",
        }
    }
}

/// Where a system's circuit breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

impl BreakerState {
    pub fn name(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

/// Tokens as a service reported them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
pub struct Usage {
    pub input: u64,
    pub output: u64,
    /// Part of `output` spent thinking.
    pub reasoning: u64,
    /// Part of `input` read from the prompt cache; left out when 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cache_read: u64,
    /// Part of `input` written to the prompt cache; left out when 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cache_write: u64,
}

pub(crate) fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// What a service's rate-limit headers said on its last answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
pub struct Headroom {
    pub requests_remaining: Option<u64>,
    pub requests_limit: Option<u64>,
    pub tokens_remaining: Option<u64>,
    pub tokens_limit: Option<u64>,
}

/// A live view of one system, as the dashboard shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
pub struct SystemSnapshot {
    /// The system's name (`claude_client`).
    pub id: String,
    pub state: SystemState,
    pub in_flight: u32,
    pub done: u64,
    pub errors: u64,
    /// Answers cut at their output cap (not counted in `errors` or `done`).
    pub truncated: u64,
    /// Requests sent again after a retryable status or a broken connection.
    pub retries: u64,
    /// Tokens as the service reported them; null until an answer reported any.
    pub usage: Option<Usage>,
    /// Estimated from `usage` and the config's prices; null when either is unknown.
    pub cost_usd: Option<f64>,
    /// What the service's rate-limit headers said last; null if it sends none.
    pub headroom: Option<Headroom>,
    pub open_sockets: u32,
    pub connections_opened: u64,
    pub latency_p50_ms: Option<f64>,
    pub latency_p99_ms: Option<f64>,
    /// Most recent latencies, oldest first.
    pub recent_latency_ms: Vec<f64>,
    pub last_error: Option<String>,
    pub disabled_reason: Option<String>,
    /// Calls past their deadline (cancelled, not awaited).
    pub late: u64,
    /// Calls cut at their deadline while waiting out the service's 429 (not in `late`).
    /// Since 1.2.
    #[serde(default)]
    pub rate_limited: u64,
    /// The last 429 a rate-limited call waited out, in the service's words (status, retry
    /// time); null before any. Since 1.2.
    #[serde(default)]
    pub last_rate_limit: Option<String>,
    /// Streams cut at their deadline or after a silence; what they said was used.
    pub cut: u64,
    /// Calls the MoE vote went on without.
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

/// A system moved from one state to another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
pub struct StateChange {
    pub system: String,
    pub from: SystemState,
    pub to: SystemState,
    /// The cause, when the system moved to `error`.
    pub error: Option<String>,
}

/// A system's circuit breaker changed state, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
pub struct BreakerChange {
    pub system: String,
    pub from: BreakerState,
    pub to: BreakerState,
    pub reason: String,
}

/// How one close ended (the session report's `outcome`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum CloseOutcome {
    Closed,
    Forced,
    Error,
    Skipped,
    /// The ledger saw every connection close, but the OS table could not confirm it.
    Unverified,
}

impl CloseOutcome {
    pub fn name(self) -> &'static str {
        match self {
            CloseOutcome::Closed => "closed",
            CloseOutcome::Forced => "forced",
            CloseOutcome::Error => "error",
            CloseOutcome::Skipped => "skipped",
            CloseOutcome::Unverified => "unverified",
        }
    }
}

/// How one close ended: a system's (named by the system), or a closing step's after the
/// systems (the metrics endpoint, the control endpoint: named in words). The session
/// report's `shutdown.systems` and `shutdown.endpoints` entries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
pub struct CloseReport {
    pub name: String,
    pub outcome: CloseOutcome,
    pub close_ms: f64,
    pub sockets_before: u32,
    pub error: Option<String>,
    /// Requests in flight cancelled by this close. Older agents sent `cancelled_requests`.
    #[serde(default, alias = "cancelled_requests")]
    pub cancelled: u32,
    /// Whether both witnesses (the ledger and the OS socket table) agreed on the result.
    pub verified: bool,
    /// Why not, when not verified.
    pub unverified_reason: Option<String>,
    /// A close asked for while the session ran, still standing at this one: the outcome
    /// above is the worse of the two.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub earlier: Option<EarlierClose>,
    /// When each step of the close happened, in ms since it began (`drained`, `deadline`,
    /// `cut`, `cancel_sent`, `tasks_ended`, `pool_dropped`, `fds_closed`, `checked`; a
    /// newer agent may add steps). Left out when the close had none. Since 1.1.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<CloseStep>,
}

/// One step of a close, at `ms` since the close began.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
pub struct CloseStep {
    pub step: String,
    pub ms: f64,
}

/// A close asked for while the session ran (a key at the dashboard, a viewer's command).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
pub struct EarlierClose {
    /// Who asked ("you" at the dashboard, "viewer IP:PORT").
    pub by: String,
    /// Seconds since the session started.
    pub at_s: f64,
    /// Forced on request, not at a grace deadline.
    pub forced_on_request: bool,
    pub outcome: CloseOutcome,
    pub close_ms: f64,
    pub error: Option<String>,
    #[serde(default)]
    pub cancelled: u32,
}

/// What the process-wide socket check found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
pub struct Verification {
    /// TCP sockets left open beyond the baseline; null when they could not be counted.
    pub sockets_open_after: Option<u64>,
    /// Why the check is not verified, if it is not.
    pub unverified_reason: Option<String>,
}
