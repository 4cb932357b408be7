//! What the game has done so far: shown live and in the final statistics.

use super::Action;
use crate::systems::SystemId;
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};

#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
#[serde(default)]
pub struct GameStats {
    pub cycles: u64,
    pub actions: u64,
    pub actions_by_kind: BTreeMap<String, u64>,
    /// Calls not made because the system was disabled, closed or failing.
    pub skipped_calls: BTreeMap<SystemId, u64>,
    /// The same calls by why ([`Skip`]'s words), per system.
    pub skipped_why: BTreeMap<SystemId, BTreeMap<String, u64>>,
    /// Replies that named no action, replaced by the safe action.
    pub fallbacks: u64,
    /// Replies that were read but named no action, per system (they count as no vote).
    pub unparsable_replies: BTreeMap<SystemId, u64>,
    /// Times a loop guard replaced the chosen action, and why.
    pub guard_fired: u64,
    pub guards_by_kind: BTreeMap<String, u64>,
    /// Speech clips the voice system returned, and how many of them were played.
    pub speech_clips: u64,
    pub speech_played: u64,
    /// The agent's learned score per action (a running average of its rewards).
    pub preferences: BTreeMap<String, f64>,
    /// The last win probability Wolfram gave, as a fraction.
    pub last_odds: Option<f64>,
    pub timing: CycleTiming,
    /// The sound output in a few words ("on", "muted", "off: no audio device"...).
    pub audio: String,
    /// The one notice about sound to show the user (no device, built without audio).
    pub audio_notice: Option<String>,
    pub total_reward: f64,
    #[serde(skip)]
    pub recent: VecDeque<ActionRecord>,
    #[serde(skip)]
    pub scene: String,
    /// The world as of the last action.
    #[serde(skip)]
    pub world: Option<super::world::WorldView>,
    /// The world `scene` describes, set with it (the frame the cycle perceived), so the
    /// dashboard draws the place and the scene from the same cycle.
    #[serde(skip)]
    pub seen: Option<super::world::WorldView>,
    /// The spend and its limits, when `[budget]` sets one (the session keeps it current).
    #[serde(default)]
    pub budget: Option<crate::lifecycle::BudgetSnapshot>,
    /// Experts the MoE vote closed without, once each was past its own usual latency
    /// (cancelled, not awaited; no breaker counts it), per expert.
    pub outvoted_experts: BTreeMap<SystemId, u64>,
    /// The calls the current cycle waits on, since when (the dashboard names the longest).
    #[serde(skip)]
    pub waiting: BTreeMap<SystemId, std::time::Instant>,
}

/// How many of the last actions the game pane keeps.
pub const RECENT: usize = 20;

/// Why the game went on without a system's answer (the report's `skipped_why`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// No answer within its deadline.
    Late,
    /// Cut at its deadline while waiting out the service's 429.
    RateLimited,
    /// The call failed.
    Failed,
    /// Not made: its breaker was open (or its one probe was out).
    BreakerOpen,
    /// Not made: the system is closed, closing or disabled.
    Unavailable,
    /// Not asked: sequential mode stops asking experts once a majority has answered.
    MajorityReached,
}

impl Skip {
    pub fn words(self) -> &'static str {
        match self {
            Skip::Late => "late",
            Skip::RateLimited => "rate-limited",
            Skip::Failed => "failed",
            Skip::BreakerOpen => "breaker open",
            Skip::Unavailable => "unavailable",
            Skip::MajorityReached => "majority reached",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ActionRecord {
    pub cycle: u64,
    pub action: Action,
    pub why: String,
    pub reward: f64,
}

/// Where cycles spend their time: wall-clock time inside `Agent::cycle`, the part of it
/// during which at least one network call was in flight, and its critical path (what the
/// cycle had to wait for, from the times its calls took: see [`CriticalPath`]).
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct CycleTiming {
    pub cycles: u64,
    pub total_ms: f64,
    pub network_ms: f64,
    pub last_cycle_ms: f64,
    /// The critical paths of all cycles, summed: `total_ms` less this is the game's own
    /// overhead.
    #[serde(default)]
    pub critical_path_ms: f64,
    #[serde(default)]
    pub last_critical_path_ms: f64,
}

/// The calls a cycle must wait for, as it measured them. In parallel mode: the longest of
/// perception, the experts' vote and the odds (they run at once), then the final choice,
/// plus any wait for the last cycle's speech and learning. In sequential mode every call
/// waits for the one before, so all of them.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CriticalPath {
    pub perceive: std::time::Duration,
    pub vote: std::time::Duration,
    pub odds: std::time::Duration,
    pub decide: std::time::Duration,
    /// Speech and learning: this cycle's (sequential), or the wait for the last cycle's
    /// (parallel).
    pub after: std::time::Duration,
    pub parallel: bool,
}

impl CriticalPath {
    pub(crate) fn total(&self) -> std::time::Duration {
        let reason = if self.parallel {
            self.perceive.max(self.vote).max(self.odds)
        } else {
            self.perceive + self.vote + self.odds
        };
        reason + self.decide + self.after
    }
}

impl CycleTiming {
    pub(crate) fn add(
        &mut self,
        total: std::time::Duration,
        network: std::time::Duration,
        critical: std::time::Duration,
    ) {
        self.cycles += 1;
        self.last_cycle_ms = total.as_secs_f64() * 1e3;
        self.total_ms += self.last_cycle_ms;
        // A call overlapping the cycle's edges can count a hair more than the cycle.
        self.network_ms += (network.as_secs_f64() * 1e3).min(self.last_cycle_ms);
        self.last_critical_path_ms = (critical.as_secs_f64() * 1e3).min(self.last_cycle_ms);
        self.critical_path_ms += self.last_critical_path_ms;
    }

    /// The share (0–1) of cycle time spent outside network calls; `None` before any cycle.
    pub fn outside_share(&self) -> Option<f64> {
        (self.total_ms > 0.0).then(|| 1.0 - self.network_ms / self.total_ms)
    }
}

impl GameStats {
    pub fn record(&mut self, rec: ActionRecord) {
        self.actions += 1;
        self.total_reward += rec.reward;
        *self
            .actions_by_kind
            .entry(rec.action.name().to_string())
            .or_default() += 1;
        self.remember(rec);
    }

    /// Keep `rec` among the last [`RECENT`] actions (for the game pane).
    pub fn remember(&mut self, rec: ActionRecord) {
        if self.recent.len() == RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back(rec);
    }

    pub fn skipped(&mut self, id: SystemId, why: Skip) {
        *self.skipped_calls.entry(id).or_default() += 1;
        *self
            .skipped_why
            .entry(id)
            .or_default()
            .entry(why.words().to_string())
            .or_default() += 1;
    }

    pub(crate) fn outvoted_expert(&mut self, id: SystemId) {
        *self.outvoted_experts.entry(id).or_default() += 1;
    }

    /// The call waited on longest, and since when.
    pub(crate) fn longest_wait(&self) -> Option<(SystemId, std::time::Instant)> {
        self.waiting
            .iter()
            .min_by_key(|(_, since)| **since)
            .map(|(id, since)| (*id, *since))
    }

    pub(crate) fn unparsable(&mut self, id: SystemId) {
        *self.unparsable_replies.entry(id).or_default() += 1;
    }

    pub fn guard(&mut self, kind: &str) {
        self.guard_fired += 1;
        *self.guards_by_kind.entry(kind.to_string()).or_default() += 1;
    }

    pub(crate) fn skipped_total(&self) -> u64 {
        self.skipped_calls.values().sum()
    }
}
