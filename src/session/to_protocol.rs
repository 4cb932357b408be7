//! The engine's and the game's values as the protocol carries them (`singularis_protocol`):
//! the same JSON their own `Serialize` writes (a test holds the two together), in types a
//! reader elsewhere can take without the engine. The viewer's way back is
//! `attach::convert`.

use crate::gameplay::GameStats;
use crate::gameplay::stats::CycleTiming;
use crate::lifecycle::{
    self, BreakerChange, BudgetSnapshot, CloseReport, EarlierClose, StateChange, SystemSnapshot,
    Verification,
};
use crate::systems::SystemId;
use singularis_protocol as p;
use std::collections::BTreeMap;

/// An engine or game value as the protocol carries it.
pub trait ToProtocol {
    type Protocol;
    fn to_protocol(&self) -> Self::Protocol;
}

fn names<V: Clone>(map: &BTreeMap<SystemId, V>) -> BTreeMap<String, V> {
    map.iter()
        .map(|(id, v)| (id.name().to_string(), v.clone()))
        .collect()
}

impl ToProtocol for lifecycle::SystemState {
    type Protocol = p::SystemState;
    fn to_protocol(&self) -> p::SystemState {
        use lifecycle::SystemState as S;
        match self {
            S::Open => p::SystemState::Open,
            S::Idle => p::SystemState::Idle,
            S::Closing => p::SystemState::Closing,
            S::Closed => p::SystemState::Closed,
            S::Error => p::SystemState::Error,
            S::Disabled => p::SystemState::Disabled,
        }
    }
}

impl ToProtocol for lifecycle::BreakerState {
    type Protocol = p::BreakerState;
    fn to_protocol(&self) -> p::BreakerState {
        use lifecycle::BreakerState as B;
        match self {
            B::Closed => p::BreakerState::Closed,
            B::Open => p::BreakerState::Open,
            B::HalfOpen => p::BreakerState::HalfOpen,
        }
    }
}

impl ToProtocol for lifecycle::CloseOutcome {
    type Protocol = p::CloseOutcome;
    fn to_protocol(&self) -> p::CloseOutcome {
        use lifecycle::CloseOutcome as O;
        match self {
            O::Closed => p::CloseOutcome::Closed,
            O::Forced => p::CloseOutcome::Forced,
            O::Error => p::CloseOutcome::Error,
            O::Skipped => p::CloseOutcome::Skipped,
            O::Unverified => p::CloseOutcome::Unverified,
        }
    }
}

impl ToProtocol for crate::clients::Usage {
    type Protocol = p::Usage;
    fn to_protocol(&self) -> p::Usage {
        p::Usage {
            input: self.input,
            output: self.output,
            reasoning: self.reasoning,
            cache_read: self.cache_read,
            cache_write: self.cache_write,
        }
    }
}

impl ToProtocol for crate::clients::Headroom {
    type Protocol = p::Headroom;
    fn to_protocol(&self) -> p::Headroom {
        p::Headroom {
            requests_remaining: self.requests_remaining,
            requests_limit: self.requests_limit,
            tokens_remaining: self.tokens_remaining,
            tokens_limit: self.tokens_limit,
        }
    }
}

impl ToProtocol for SystemSnapshot {
    type Protocol = p::SystemSnapshot;
    fn to_protocol(&self) -> p::SystemSnapshot {
        p::SystemSnapshot {
            id: self.id.name().to_string(),
            state: self.state.to_protocol(),
            in_flight: self.in_flight,
            done: self.done,
            errors: self.errors,
            truncated: self.truncated,
            retries: self.retries,
            usage: self.usage.as_ref().map(ToProtocol::to_protocol),
            cost_usd: self.cost_usd,
            headroom: self.headroom.as_ref().map(ToProtocol::to_protocol),
            open_sockets: self.open_sockets,
            connections_opened: self.connections_opened,
            latency_p50_ms: self.latency_p50_ms,
            latency_p99_ms: self.latency_p99_ms,
            recent_latency_ms: self.recent_latency_ms.clone(),
            last_error: self.last_error.clone(),
            disabled_reason: self.disabled_reason.clone(),
            late: self.late,
            rate_limited: self.rate_limited,
            last_rate_limit: self.last_rate_limit.clone(),
            cut: self.cut,
            outvoted: self.outvoted,
            breaker_skipped: self.breaker_skipped,
            budget_refused: self.budget_refused,
            breaker: self.breaker.to_protocol(),
            breaker_opens: self.breaker_opens,
            deadline_ms: self.deadline_ms,
        }
    }
}

impl ToProtocol for StateChange {
    type Protocol = p::StateChange;
    fn to_protocol(&self) -> p::StateChange {
        p::StateChange {
            system: self.system.name().to_string(),
            from: self.from.to_protocol(),
            to: self.to.to_protocol(),
            error: self.error.clone(),
        }
    }
}

impl ToProtocol for BreakerChange {
    type Protocol = p::BreakerChange;
    fn to_protocol(&self) -> p::BreakerChange {
        p::BreakerChange {
            system: self.system.name().to_string(),
            from: self.from.to_protocol(),
            to: self.to.to_protocol(),
            reason: self.reason.clone(),
        }
    }
}

impl ToProtocol for EarlierClose {
    type Protocol = p::EarlierClose;
    fn to_protocol(&self) -> p::EarlierClose {
        p::EarlierClose {
            by: self.by.clone(),
            at_s: self.at_s,
            forced_on_request: self.forced_on_request,
            outcome: self.outcome.to_protocol(),
            close_ms: self.close_ms,
            error: self.error.clone(),
            cancelled: self.cancelled,
        }
    }
}

/// A system's close report and a closing step's are one shape, named differently.
trait Named {
    fn wire_name(&self) -> String;
}

impl Named for SystemId {
    fn wire_name(&self) -> String {
        self.name().to_string()
    }
}

impl Named for String {
    fn wire_name(&self) -> String {
        self.clone()
    }
}

impl<N: Named> ToProtocol for CloseReport<N> {
    type Protocol = p::CloseReport;
    fn to_protocol(&self) -> p::CloseReport {
        p::CloseReport {
            name: self.name.wire_name(),
            outcome: self.outcome.to_protocol(),
            close_ms: self.close_ms,
            sockets_before: self.sockets_before,
            error: self.error.clone(),
            cancelled: self.cancelled,
            verified: self.verified,
            unverified_reason: self.unverified_reason.clone(),
            earlier: self.earlier.as_ref().map(ToProtocol::to_protocol),
            steps: self
                .steps
                .iter()
                .map(|s| p::CloseStep {
                    step: <&str>::from(s.step).to_string(),
                    ms: s.ms,
                })
                .collect(),
        }
    }
}

impl ToProtocol for Verification {
    type Protocol = p::Verification;
    fn to_protocol(&self) -> p::Verification {
        p::Verification {
            sockets_open_after: self.sockets_open_after.map(|n| n as u64),
            unverified_reason: self.unverified_reason.clone(),
        }
    }
}

impl ToProtocol for BudgetSnapshot {
    type Protocol = p::BudgetSnapshot;
    fn to_protocol(&self) -> p::BudgetSnapshot {
        p::BudgetSnapshot {
            spent_usd: self.spent_usd,
            limit_usd: self.limit_usd,
            hour_usd: self.hour_usd,
            hour_limit_usd: self.hour_limit_usd,
            burn_usd_per_hour: self.burn_usd_per_hour,
            time_left_s: self.time_left_s,
            warn: self.warn,
            exhausted: self.exhausted,
            refused: names(&self.refused),
            last_refusal: self.last_refusal.clone(),
            unknown: self
                .unknown
                .iter()
                .map(|id| id.name().to_string())
                .collect(),
        }
    }
}

impl ToProtocol for CycleTiming {
    type Protocol = p::CycleTiming;
    fn to_protocol(&self) -> p::CycleTiming {
        p::CycleTiming {
            cycles: self.cycles,
            total_ms: self.total_ms,
            network_ms: self.network_ms,
            last_cycle_ms: self.last_cycle_ms,
            critical_path_ms: self.critical_path_ms,
            last_critical_path_ms: self.last_critical_path_ms,
        }
    }
}

impl ToProtocol for GameStats {
    type Protocol = p::GameStats;
    fn to_protocol(&self) -> p::GameStats {
        p::GameStats {
            cycles: self.cycles,
            actions: self.actions,
            actions_by_kind: self.actions_by_kind.clone(),
            skipped_calls: names(&self.skipped_calls),
            skipped_why: names(&self.skipped_why),
            fallbacks: self.fallbacks,
            unparsable_replies: names(&self.unparsable_replies),
            guard_fired: self.guard_fired,
            guards_by_kind: self.guards_by_kind.clone(),
            speech_clips: self.speech_clips,
            speech_played: self.speech_played,
            preferences: self.preferences.clone(),
            last_odds: self.last_odds,
            timing: self.timing.to_protocol(),
            audio: self.audio.clone(),
            audio_notice: self.audio_notice.clone(),
            total_reward: self.total_reward,
            budget: self.budget.as_ref().map(ToProtocol::to_protocol),
            outvoted_experts: names(&self.outvoted_experts),
        }
    }
}

impl ToProtocol for crate::gameplay::world::WorldView {
    type Protocol = p::WorldView;
    fn to_protocol(&self) -> p::WorldView {
        p::WorldView {
            place: self.place.clone(),
            enemy: self.enemy.clone(),
            health: self.health,
            stamina: self.stamina,
            magicka: self.magicka,
            npc_here: self.npc_here.clone(),
            loot_here: self.loot_here,
        }
    }
}

/// What the game pane shows (`snapshot`, `refresh`): the world it draws (the one the scene
/// describes, else as of the last action), the scene, the last actions, and how long each
/// call the cycle waits on has been out.
pub fn game_view(g: &GameStats) -> p::GameView {
    p::GameView {
        world: g
            .seen
            .as_ref()
            .or(g.world.as_ref())
            .map(ToProtocol::to_protocol),
        scene: g.scene.clone(),
        recent: g
            .recent
            .iter()
            .map(|r| p::ActionLine {
                cycle: r.cycle,
                action: r.action.name().to_string(),
                why: r.why.clone(),
                reward: r.reward,
            })
            .collect(),
        waiting: g
            .waiting
            .iter()
            .map(|(id, since)| {
                let ms = since.elapsed().as_secs_f64() * 1e3;
                (id.name().to_string(), ms)
            })
            .collect(),
    }
}

impl ToProtocol for crate::logging::LogLine {
    type Protocol = p::LogLine;
    fn to_protocol(&self) -> p::LogLine {
        p::LogLine {
            time: self.time.clone(),
            level: self.level.as_str().to_string(),
            text: self.text.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The protocol's form of each engine value is the JSON the engine's own `Serialize`
    /// writes (what the stream carried before the protocol crate), so no reader sees a
    /// difference.
    #[test]
    fn the_protocol_form_is_the_engines_json() {
        let config = crate::config::Config::default();
        let registry = lifecycle::Registry::new(&config, &Default::default(), &|_| None);
        for s in registry.snapshots() {
            assert_eq!(
                serde_json::to_value(&s).unwrap(),
                serde_json::to_value(s.to_protocol()).unwrap()
            );
        }
        let mut stats = GameStats::default();
        stats.skipped(SystemId::CLAUDE_CLIENT, crate::gameplay::stats::Skip::Late);
        stats.budget = Some(BudgetSnapshot {
            refused: [(SystemId::MOE, 2)].into(),
            unknown: vec![SystemId::META_RL],
            limit_usd: Some(1.0),
            ..Default::default()
        });
        assert_eq!(
            serde_json::to_value(&stats).unwrap(),
            serde_json::to_value(stats.to_protocol()).unwrap()
        );
        let report = CloseReport {
            name: SystemId::ORCHESTRATOR,
            outcome: lifecycle::CloseOutcome::Forced,
            close_ms: 1.5,
            sockets_before: 2,
            error: None,
            cancelled: 1,
            verified: true,
            unverified_reason: None,
            earlier: Some(EarlierClose {
                by: "you".into(),
                at_s: 3.0,
                forced_on_request: true,
                outcome: lifecycle::CloseOutcome::Closed,
                close_ms: 2.0,
                error: Some("x".into()),
                cancelled: 0,
            }),
            steps: Vec::new(),
        };
        assert_eq!(
            serde_json::to_value(&report).unwrap(),
            serde_json::to_value(report.to_protocol()).unwrap()
        );
        let change = StateChange {
            system: SystemId::MOE,
            from: lifecycle::SystemState::Idle,
            to: lifecycle::SystemState::Error,
            error: Some("boom".into()),
        };
        assert_eq!(
            serde_json::to_value(&change).unwrap(),
            serde_json::to_value(change.to_protocol()).unwrap()
        );
    }
}
