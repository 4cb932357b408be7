//! The game's figures: each cycle, the running statistics, the spend, and the session's
//! final statistics (the report's `stats`).

use crate::systems::{BreakerState, Headroom, is_zero};
#[cfg(feature = "schema")]
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What the game has done so far. Maps keyed by a system are keyed by its name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
#[serde(default)]
pub struct GameStats {
    pub cycles: u64,
    pub actions: u64,
    pub actions_by_kind: BTreeMap<String, u64>,
    /// Calls not made because the system was disabled, closed or failing.
    pub skipped_calls: BTreeMap<String, u64>,
    /// The same calls by why (`late`, `rate-limited`, `failed`, `breaker open`,
    /// `unavailable`, `majority reached`: an expert sequential mode did not ask once a
    /// majority had answered), per system. Since 1.2.
    pub skipped_why: BTreeMap<String, BTreeMap<String, u64>>,
    /// Replies that named no action, replaced by the safe action.
    pub fallbacks: u64,
    /// Replies that were read but named no action, per system.
    pub unparsable_replies: BTreeMap<String, u64>,
    /// Times a loop guard replaced the chosen action, and why.
    pub guard_fired: u64,
    pub guards_by_kind: BTreeMap<String, u64>,
    /// Speech clips the voice system returned, and how many were played.
    pub speech_clips: u64,
    pub speech_played: u64,
    /// The agent's learned score per action.
    pub preferences: BTreeMap<String, f64>,
    /// The last win probability Wolfram gave, as a fraction.
    pub last_odds: Option<f64>,
    pub timing: CycleTiming,
    /// The sound output in a few words.
    pub audio: String,
    /// The one notice about sound to show.
    pub audio_notice: Option<String>,
    pub total_reward: f64,
    /// The spend and its limits, when a budget is set.
    pub budget: Option<BudgetSnapshot>,
    /// Experts the MoE vote closed without, per expert.
    pub outvoted_experts: BTreeMap<String, u64>,
}

/// Where cycles spend their time.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
pub struct CycleTiming {
    pub cycles: u64,
    pub total_ms: f64,
    pub network_ms: f64,
    pub last_cycle_ms: f64,
    /// The cycles' critical paths, summed (the calls each had to wait for); since 1.1.
    #[serde(default)]
    pub critical_path_ms: f64,
    #[serde(default)]
    pub last_critical_path_ms: f64,
}

/// The spend and its limits.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
pub struct BudgetSnapshot {
    pub spent_usd: f64,
    pub limit_usd: Option<f64>,
    /// Spent over the last hour, and its limit.
    pub hour_usd: f64,
    pub hour_limit_usd: Option<f64>,
    /// The pace of the last hour, in $ per hour.
    pub burn_usd_per_hour: f64,
    /// At that pace, until the session's limit.
    pub time_left_s: Option<f64>,
    /// At 80 % of a limit or more.
    pub warn: bool,
    /// The session's limit stopped a call: the session ends.
    pub exhausted: bool,
    /// Calls not made, per system.
    pub refused: BTreeMap<String, u64>,
    /// The last refusal, in words.
    pub last_refusal: Option<String>,
    /// Systems whose spend is unknown (no price).
    pub unknown: Vec<String>,
}

/// What the dashboard's game pane shows: where the player is, the scene, the last actions,
/// and the calls the cycle in progress waits on (in `snapshot` and `refresh`). Since 1.3.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
#[serde(default)]
pub struct GameView {
    /// The world the scene describes, else as of the last action; null before the first
    /// cycle.
    pub world: Option<WorldView>,
    /// The scene as the perceiving system described it (streamed in as it comes).
    pub scene: String,
    /// The last actions, oldest first (at most 20).
    pub recent: Vec<ActionLine>,
    /// The calls the cycle in progress waits on: per system, the milliseconds since each
    /// began.
    pub waiting: BTreeMap<String, f64>,
}

/// The world as the game pane shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
pub struct WorldView {
    pub place: String,
    /// The hostile in view, if any (`a draugr`).
    pub enemy: Option<String>,
    pub health: i32,
    pub stamina: i32,
    pub magicka: i32,
    /// A person nearby, if any.
    pub npc_here: Option<String>,
    pub loot_here: bool,
}

/// One action the agent took.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
pub struct ActionLine {
    pub cycle: u64,
    /// The action's name (`explore`, `turn_camera`…).
    pub action: String,
    pub why: String,
    pub reward: f64,
}

/// One gameplay cycle ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
pub struct CycleEvent {
    pub cycle: u64,
    /// The action taken (`explore`, `turn_camera`…), if the cycle got as far as acting.
    pub action: Option<String>,
    pub why: Option<String>,
    pub reward: Option<f64>,
    pub cycle_ms: f64,
    /// The calls this cycle had to wait for, by their own times: the longest of perception,
    /// the experts' vote and the odds, then the final choice (parallel mode), or all of them
    /// (sequential). `cycle_ms` less this is the game's own overhead. Since 1.1.
    #[serde(default)]
    pub critical_path_ms: f64,
    /// Running token counts, cost and headroom of each system that reports them.
    pub usage: BTreeMap<String, UsageLine>,
}

/// One system's usage as its service reported it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
pub struct UsageLine {
    pub input: u64,
    pub output: u64,
    /// Part of `output` spent thinking.
    pub reasoning: u64,
    /// Parts of `input` read from and written to the prompt cache; left out when 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cache_read: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cache_write: u64,
    /// null: the model has no price.
    pub cost_usd: Option<f64>,
    /// The service's rate-limit headers on its last answer; null: it sends none.
    pub headroom: Option<Headroom>,
}

/// Tokens and cost over every system that reported any.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
pub struct UsageSection {
    pub systems: BTreeMap<String, UsageLine>,
    pub input: u64,
    pub output: u64,
    pub reasoning: u64,
    /// The sum over systems whose price is known.
    pub cost_usd: f64,
    /// Systems that used tokens at no known price.
    pub cost_unknown_for: Vec<String>,
}

/// How one system's calls ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
pub struct CallAccount {
    /// Answered within the deadline (truncated answers included).
    pub answered: u64,
    /// No answer by the deadline: cancelled.
    pub late: u64,
    /// Cut at the deadline while waiting out the service's 429 (not in `late`). Since 1.2.
    #[serde(default)]
    pub rate_limited: u64,
    /// The last 429 it waited out, in the service's words (status, retry time). Since 1.2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_rate_limit: Option<String>,
    /// Streams cut at the deadline or a silence.
    pub cut: u64,
    /// Answers that hit their output cap (in `answered`: what came was used). Since 1.2.
    #[serde(default)]
    pub truncated: u64,
    /// The MoE vote went on without it.
    pub outvoted: u64,
    /// Not made: the breaker was open.
    pub skipped_by_breaker: u64,
    /// Calls the game went on without, by why (the game's `skipped_why` for this system).
    /// Since 1.2.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub skipped: BTreeMap<String, u64>,
    pub errors: u64,
    pub breaker: BreakerState,
    pub breaker_opens: u64,
    /// The deadline the next call would have had.
    pub deadline_ms: f64,
    /// Latency of its recent answers, when it has any.
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

/// The session's final statistics (the report's `stats`): the game's figures with the
/// systems' beside them, in one object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(JsonSchema))]
pub struct ReportStats {
    #[serde(flatten)]
    pub game: GameStats,
    pub requests: u64,
    pub errors: u64,
    pub calls_by_system: BTreeMap<String, u64>,
    pub errors_by_system: BTreeMap<String, u64>,
    pub connections_opened_by_system: BTreeMap<String, u64>,
    /// Answers cut at their output cap (counted in `requests`, not in `errors`).
    pub truncated: u64,
    pub truncated_by_system: BTreeMap<String, u64>,
    pub usage: UsageSection,
    /// Every call the game made, per system, by how it ended.
    pub calls: BTreeMap<String, CallAccount>,
}
