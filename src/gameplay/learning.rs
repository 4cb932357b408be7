//! The agent's action preferences: a score per action, the running average of the rewards
//! that action earned. Learning moves the scores; the order they give breaks ties in the
//! experts' vote.

use super::Action;
use std::collections::BTreeMap;

/// How far one reward moves a score (an exponential moving average).
const LEARNING_RATE: f64 = 0.2;
/// How far a hint from the meta-RL system moves a score.
const HINT_WEIGHT: f64 = 0.05;

#[derive(Debug, Clone, Default)]
pub struct Preferences {
    scores: BTreeMap<Action, f64>,
}

impl Preferences {
    pub fn score(&self, action: Action) -> f64 {
        self.scores.get(&action).copied().unwrap_or(0.0)
    }

    /// Learn from one reward.
    pub fn update(&mut self, action: Action, reward: f64) {
        let s = self.scores.entry(action).or_insert(0.0);
        *s += LEARNING_RATE * (reward - *s);
    }

    /// The meta-RL system suggested preferring `action`.
    pub fn hint(&mut self, action: Action) {
        *self.scores.entry(action).or_insert(0.0) += HINT_WEIGHT;
    }

    /// Every action, best first; equal scores keep the cautious order.
    pub fn order(&self) -> Vec<Action> {
        let mut all = Action::CAUTION.to_vec();
        // A stable sort keeps the caution order among equals.
        all.sort_by(|a, b| self.score(*b).total_cmp(&self.score(*a)));
        all
    }

    /// Scores by action name, for the dashboard and the report.
    pub(crate) fn by_name(&self) -> BTreeMap<String, f64> {
        self.scores
            .iter()
            .map(|(a, s)| (a.name().to_string(), *s))
            .collect()
    }
}
