//! What the game has done so far: shown live and in the final statistics.

use super::Action;
use crate::systems::SystemId;
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};

#[derive(Debug, Clone, Default, Serialize)]
pub struct GameStats {
    pub cycles: u64,
    pub actions: u64,
    pub actions_by_kind: BTreeMap<String, u64>,
    /// Calls not made because the system was disabled, closed or failing.
    pub skipped_calls: BTreeMap<SystemId, u64>,
    /// Replies that named no action, replaced by the safe action.
    pub fallbacks: u64,
    pub total_reward: f64,
    #[serde(skip)]
    pub recent: VecDeque<ActionRecord>,
    #[serde(skip)]
    pub scene: String,
    /// The world as of the last action.
    #[serde(skip)]
    pub world: Option<super::World>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ActionRecord {
    pub cycle: u64,
    pub action: Action,
    pub why: String,
    pub reward: f64,
}

impl GameStats {
    pub fn record(&mut self, rec: ActionRecord) {
        self.actions += 1;
        self.total_reward += rec.reward;
        *self.actions_by_kind.entry(rec.action.name().to_string()).or_default() += 1;
        if self.recent.len() == 20 {
            self.recent.pop_front();
        }
        self.recent.push_back(rec);
    }

    pub fn skipped(&mut self, id: SystemId) {
        *self.skipped_calls.entry(id).or_default() += 1;
    }
}
