//! The protocol's values as the dashboard's own (the engine's and the game's types), for a
//! viewer: the way back of `session::to_protocol`. A system this viewer does not know (an
//! agent with other systems) is left out rather than misread.

use crate::gameplay::GameStats;
use crate::gameplay::stats::{ActionRecord, CycleTiming};
use crate::gameplay::world::WorldView;
use crate::lifecycle::{
    self, BudgetSnapshot, CloseReport, EarlierClose, StateChange, StepReport, SystemSnapshot,
    Verification,
};
use crate::systems::SystemId;
use singularis_protocol as p;
use std::collections::BTreeMap;

/// A protocol value as the dashboard's; `None` when it names a system this viewer does not
/// know.
pub trait FromProtocol<P>: Sized {
    fn from_protocol(p: P) -> Option<Self>;
}

fn id(name: &str) -> Option<SystemId> {
    SystemId::from_name(name)
}

fn ids<V>(map: BTreeMap<String, V>) -> BTreeMap<SystemId, V> {
    map.into_iter()
        .filter_map(|(name, v)| Some((id(&name)?, v)))
        .collect()
}

fn state(s: p::SystemState) -> lifecycle::SystemState {
    use lifecycle::SystemState as S;
    match s {
        p::SystemState::Open => S::Open,
        p::SystemState::Idle => S::Idle,
        p::SystemState::Closing => S::Closing,
        p::SystemState::Closed => S::Closed,
        p::SystemState::Error => S::Error,
        p::SystemState::Disabled => S::Disabled,
    }
}

fn breaker(b: p::BreakerState) -> lifecycle::BreakerState {
    use lifecycle::BreakerState as B;
    match b {
        p::BreakerState::Closed => B::Closed,
        p::BreakerState::Open => B::Open,
        p::BreakerState::HalfOpen => B::HalfOpen,
    }
}

fn outcome(o: p::CloseOutcome) -> lifecycle::CloseOutcome {
    use lifecycle::CloseOutcome as O;
    match o {
        p::CloseOutcome::Closed => O::Closed,
        p::CloseOutcome::Forced => O::Forced,
        p::CloseOutcome::Error => O::Error,
        p::CloseOutcome::Skipped => O::Skipped,
        p::CloseOutcome::Unverified => O::Unverified,
    }
}

impl FromProtocol<p::SystemSnapshot> for SystemSnapshot {
    fn from_protocol(s: p::SystemSnapshot) -> Option<SystemSnapshot> {
        Some(SystemSnapshot {
            id: id(&s.id)?,
            state: state(s.state),
            in_flight: s.in_flight,
            done: s.done,
            errors: s.errors,
            truncated: s.truncated,
            retries: s.retries,
            usage: s.usage.map(|u| crate::clients::Usage {
                input: u.input,
                output: u.output,
                reasoning: u.reasoning,
                cache_read: u.cache_read,
                cache_write: u.cache_write,
            }),
            cost_usd: s.cost_usd,
            headroom: s.headroom.map(|h| crate::clients::Headroom {
                requests_remaining: h.requests_remaining,
                requests_limit: h.requests_limit,
                tokens_remaining: h.tokens_remaining,
                tokens_limit: h.tokens_limit,
            }),
            open_sockets: s.open_sockets,
            connections_opened: s.connections_opened,
            latency_p50_ms: s.latency_p50_ms,
            latency_p99_ms: s.latency_p99_ms,
            recent_latency_ms: s.recent_latency_ms,
            last_error: s.last_error,
            disabled_reason: s.disabled_reason,
            late: s.late,
            rate_limited: s.rate_limited,
            last_rate_limit: s.last_rate_limit,
            cut: s.cut,
            outvoted: s.outvoted,
            breaker_skipped: s.breaker_skipped,
            budget_refused: s.budget_refused,
            breaker: breaker(s.breaker),
            breaker_opens: s.breaker_opens,
            deadline_ms: s.deadline_ms,
        })
    }
}

/// Every system this viewer knows, in the agent's order.
pub fn systems(all: Vec<p::SystemSnapshot>) -> Vec<SystemSnapshot> {
    all.into_iter()
        .filter_map(SystemSnapshot::from_protocol)
        .collect()
}

impl FromProtocol<p::StateChange> for StateChange {
    fn from_protocol(c: p::StateChange) -> Option<StateChange> {
        Some(StateChange {
            system: id(&c.system)?,
            from: state(c.from),
            to: state(c.to),
            error: c.error,
        })
    }
}

fn earlier(e: p::EarlierClose) -> EarlierClose {
    EarlierClose {
        by: e.by,
        at_s: e.at_s,
        forced_on_request: e.forced_on_request,
        outcome: outcome(e.outcome),
        close_ms: e.close_ms,
        error: e.error,
        cancelled: e.cancelled,
    }
}

fn close_report<N>(r: p::CloseReport, name: N) -> CloseReport<N> {
    CloseReport {
        name,
        outcome: outcome(r.outcome),
        close_ms: r.close_ms,
        sockets_before: r.sockets_before,
        error: r.error,
        cancelled: r.cancelled,
        verified: r.verified,
        unverified_reason: r.unverified_reason,
        earlier: r.earlier.map(earlier),
        // Steps a newer agent added are left out; the rest read as they were written.
        steps: r
            .steps
            .iter()
            .filter_map(|s| {
                Some(lifecycle::CloseStep {
                    step: s.step.parse().ok()?,
                    ms: s.ms,
                })
            })
            .collect(),
    }
}

impl FromProtocol<p::CloseReport> for CloseReport {
    fn from_protocol(r: p::CloseReport) -> Option<CloseReport> {
        let name = id(&r.name)?;
        Some(close_report(r, name))
    }
}

impl FromProtocol<p::CloseReport> for StepReport {
    fn from_protocol(r: p::CloseReport) -> Option<StepReport> {
        let name = r.name.clone();
        Some(close_report(r, name))
    }
}

impl FromProtocol<p::Verification> for Verification {
    fn from_protocol(v: p::Verification) -> Option<Verification> {
        Some(Verification {
            sockets_open_after: v.sockets_open_after.map(|n| n as usize),
            unverified_reason: v.unverified_reason,
        })
    }
}

impl FromProtocol<p::GameStats> for GameStats {
    fn from_protocol(g: p::GameStats) -> Option<GameStats> {
        Some(GameStats {
            cycles: g.cycles,
            actions: g.actions,
            actions_by_kind: g.actions_by_kind,
            skipped_calls: ids(g.skipped_calls),
            skipped_why: ids(g.skipped_why),
            fallbacks: g.fallbacks,
            unparsable_replies: ids(g.unparsable_replies),
            guard_fired: g.guard_fired,
            guards_by_kind: g.guards_by_kind,
            speech_clips: g.speech_clips,
            speech_played: g.speech_played,
            preferences: g.preferences,
            last_odds: g.last_odds,
            timing: CycleTiming {
                cycles: g.timing.cycles,
                total_ms: g.timing.total_ms,
                network_ms: g.timing.network_ms,
                last_cycle_ms: g.timing.last_cycle_ms,
                critical_path_ms: g.timing.critical_path_ms,
                last_critical_path_ms: g.timing.last_critical_path_ms,
            },
            audio: g.audio,
            audio_notice: g.audio_notice,
            total_reward: g.total_reward,
            budget: g.budget.map(|b| BudgetSnapshot {
                spent_usd: b.spent_usd,
                limit_usd: b.limit_usd,
                hour_usd: b.hour_usd,
                hour_limit_usd: b.hour_limit_usd,
                burn_usd_per_hour: b.burn_usd_per_hour,
                time_left_s: b.time_left_s,
                warn: b.warn,
                exhausted: b.exhausted,
                refused: ids(b.refused),
                last_refusal: b.last_refusal,
                unknown: b.unknown.iter().filter_map(|n| id(n)).collect(),
            }),
            outvoted_experts: ids(g.outvoted_experts),
            ..GameStats::default()
        })
    }
}

impl FromProtocol<p::WorldView> for WorldView {
    fn from_protocol(w: p::WorldView) -> Option<WorldView> {
        Some(WorldView {
            place: w.place,
            enemy: w.enemy,
            health: w.health,
            stamina: w.stamina,
            magicka: w.magicka,
            npc_here: w.npc_here,
            loot_here: w.loot_here,
        })
    }
}

/// An action the agent took; `None` for an action this viewer does not know.
impl FromProtocol<p::ActionLine> for ActionRecord {
    fn from_protocol(a: p::ActionLine) -> Option<ActionRecord> {
        Some(ActionRecord {
            cycle: a.cycle,
            action: a.action.parse().ok()?,
            why: a.why,
            reward: a.reward,
        })
    }
}

/// A cycle's action, when it got as far as acting.
impl FromProtocol<&p::CycleEvent> for ActionRecord {
    fn from_protocol(c: &p::CycleEvent) -> Option<ActionRecord> {
        ActionRecord::from_protocol(p::ActionLine {
            cycle: c.cycle,
            action: c.action.clone()?,
            why: c.why.clone().unwrap_or_default(),
            reward: c.reward?,
        })
    }
}

impl FromProtocol<p::LogLine> for crate::logging::LogLine {
    fn from_protocol(l: p::LogLine) -> Option<crate::logging::LogLine> {
        Some(crate::logging::LogLine {
            time: l.time,
            // Levels are tracing's five; one of another name is shown as information.
            level: l.level.parse().unwrap_or(tracing::Level::INFO),
            text: l.text,
        })
    }
}

/// The game as the dashboard holds it: its figures, and its pane as the agent's sees it
/// (a call out for `ms` is one that began that long before now).
pub fn game(stats: p::GameStats, view: p::GameView) -> GameStats {
    let now = std::time::Instant::now();
    GameStats {
        world: view.world.and_then(WorldView::from_protocol),
        scene: view.scene,
        recent: view
            .recent
            .into_iter()
            .filter_map(ActionRecord::from_protocol)
            .collect(),
        waiting: ids(view.waiting)
            .into_iter()
            .filter_map(|(id, ms)| {
                let out = std::time::Duration::try_from_secs_f64(ms / 1e3).ok()?;
                Some((id, now.checked_sub(out)?))
            })
            .collect(),
        ..GameStats::from_protocol(stats).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::to_protocol::ToProtocol;

    /// What the agent sends, the viewer reads back as it was.
    #[test]
    fn the_dashboards_values_survive_the_round_trip() {
        let config = crate::config::Config::default();
        let registry = lifecycle::Registry::new(&config, &Default::default(), &|_| None);
        let snaps = registry.snapshots();
        let back = systems(snaps.iter().map(ToProtocol::to_protocol).collect());
        assert_eq!(
            serde_json::to_value(&snaps).unwrap(),
            serde_json::to_value(&back).unwrap()
        );
        let mut stats = GameStats::default();
        stats.skipped(SystemId::CLAUDE_CLIENT, crate::gameplay::stats::Skip::Late);
        stats.budget = Some(BudgetSnapshot {
            refused: [(SystemId::MOE, 2)].into(),
            unknown: vec![SystemId::META_RL],
            ..Default::default()
        });
        let back = GameStats::from_protocol(stats.to_protocol()).unwrap();
        assert_eq!(
            serde_json::to_value(&stats).unwrap(),
            serde_json::to_value(&back).unwrap()
        );
        let unknown = p::StateChange {
            system: "a_system_of_tomorrow".into(),
            from: p::SystemState::Idle,
            to: p::SystemState::Open,
            error: None,
        };
        assert!(StateChange::from_protocol(unknown).is_none());
    }

    /// The game pane's world, scene, last actions and waits read back as the agent's pane
    /// draws them; an action of a newer agent is left out, not misread.
    #[test]
    fn the_game_pane_survives_the_round_trip() {
        use crate::gameplay::{Action, World};
        use crate::session::to_protocol::game_view;
        use std::time::{Duration, Instant};
        let mut g = GameStats::default();
        let world = World::new(1);
        let mut seen = world.view();
        seen.enemy = Some("a wolf".into());
        g.seen = Some(seen.clone());
        g.world = Some(world.view());
        g.scene = "A mill wheel turns.".into();
        for cycle in 1..=25 {
            g.record(ActionRecord {
                cycle,
                action: Action::Explore,
                why: format!("vote {cycle}"),
                reward: 0.5,
            });
        }
        g.waiting.insert(
            SystemId::CLAUDE_CLIENT,
            Instant::now() - Duration::from_secs(2),
        );
        let mut view = game_view(&g);
        assert_eq!(view.recent.len(), 20, "the pane's last twenty");
        view.recent.push(p::ActionLine {
            cycle: 26,
            action: "fly".into(),
            why: String::new(),
            reward: 0.0,
        });
        let back = game(g.to_protocol(), view);
        assert_eq!(back.world, Some(seen), "the world the scene describes");
        assert_eq!(back.scene, g.scene);
        let recent = |g: &GameStats| -> Vec<(u64, &'static str, String)> {
            g.recent
                .iter()
                .map(|r| (r.cycle, r.action.name(), r.why.clone()))
                .collect()
        };
        assert_eq!(recent(&back), recent(&g));
        let since = back.waiting[&SystemId::CLAUDE_CLIENT];
        assert!(since.elapsed() >= Duration::from_secs(2));
        assert_eq!(back.cycles, g.cycles);
    }
}
