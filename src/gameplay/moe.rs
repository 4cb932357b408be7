//! Mixture of experts: ask several LLM systems the same question at once, merge by vote.

use crate::gameplay::Action;
use crate::systems::SystemId;
use serde::Serialize;
use std::collections::BTreeMap;

/// One expert's contribution: the action it named, or why it gave none.
#[derive(Debug, Clone, Serialize)]
pub struct ExpertAnswer {
    pub expert: SystemId,
    pub action: Option<Action>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    /// `None` when no expert gave a usable answer.
    pub action: Option<Action>,
    pub votes: BTreeMap<Action, u32>,
    /// Experts that answered with a usable action.
    pub voters: usize,
    /// Experts that were asked but failed, gave nothing usable, or were unavailable.
    pub missing: usize,
}

/// Majority vote. Ties go to the tied action named first in `preference` (the agent's
/// learned ordering), then to the more cautious action (lower in [`Action::ALL`] order is
/// not a judgement, so we use a fixed caution ranking).
pub fn vote(answers: &[ExpertAnswer], preference: &[Action]) -> Verdict {
    let mut votes: BTreeMap<Action, u32> = BTreeMap::new();
    for a in answers.iter().filter_map(|a| a.action) {
        *votes.entry(a).or_default() += 1;
    }
    let voters = votes.values().sum::<u32>() as usize;
    let best = votes.values().copied().max().unwrap_or(0);
    let tied: Vec<Action> = votes
        .iter()
        .filter(|(_, n)| **n == best)
        .map(|(a, _)| *a)
        .collect();
    let action = match tied.len() {
        0 => None,
        1 => Some(tied[0]),
        _ => preference
            .iter()
            .copied()
            .find(|p| tied.contains(p))
            .or_else(|| Action::CAUTION.iter().copied().find(|c| tied.contains(c))),
    };
    Verdict {
        action,
        votes,
        voters,
        missing: answers.len() - voters,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ans(expert: SystemId, action: Option<Action>) -> ExpertAnswer {
        ExpertAnswer {
            expert,
            action,
            error: action.is_none().then(|| "down".to_string()),
        }
    }

    #[test]
    fn majority_wins() {
        let v = vote(
            &[
                ans(SystemId::GEMINI_CLIENT, Some(Action::Attack)),
                ans(SystemId::CLAUDE_CLIENT, Some(Action::Attack)),
                ans(SystemId::OPENAI_CLIENT, Some(Action::Block)),
            ],
            &[],
        );
        assert_eq!(v.action, Some(Action::Attack));
        assert_eq!((v.voters, v.missing), (3, 0));
    }

    #[test]
    fn ties_follow_preference_then_caution() {
        let answers = [
            ans(SystemId::GEMINI_CLIENT, Some(Action::Attack)),
            ans(SystemId::CLAUDE_CLIENT, Some(Action::Block)),
        ];
        assert_eq!(vote(&answers, &[]).action, Some(Action::Block));
        assert_eq!(
            vote(&answers, &[Action::Attack]).action,
            Some(Action::Attack)
        );
    }

    #[test]
    fn missing_experts_are_counted_and_none_means_no_verdict() {
        let v = vote(
            &[
                ans(SystemId::GEMINI_CLIENT, None),
                ans(SystemId::CLAUDE_CLIENT, Some(Action::Loot)),
            ],
            &[],
        );
        assert_eq!(v.action, Some(Action::Loot));
        assert_eq!(v.missing, 1);
        let v = vote(&[ans(SystemId::GEMINI_CLIENT, None)], &[]);
        assert_eq!(v.action, None);
    }
}
