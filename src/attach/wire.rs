//! The control endpoint's events as a viewer reads them. The engine's types are the stream's
//! own (they derive `Deserialize`); only the envelope and the session's description, whose
//! agent-side forms hold `&'static str`, are read here.

use crate::config::Mode;
use crate::gameplay::GameStats;
use crate::lifecycle::{CloseReport, StateChange, StepReport, SystemSnapshot, Verification};
use crate::session::control::CommandRecord;
use crate::session::events::Refresh;
use crate::systems::SystemId;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Wire {
    Snapshot(Box<WireSnapshot>),
    Refresh(Box<Refresh>),
    State(StateChange),
    Cycle(WireCycle),
    Command(CommandRecord),
    ShutdownStarted {
        reason: String,
        grace_ms: u64,
    },
    Closing {
        name: SystemId,
    },
    Closed(CloseReport),
    EndpointClosed(StepReport),
    Verified(Verification),
    StreamClosed {
        why: String,
    },
    /// Anything this viewer does not draw (breaker changes, later additions).
    #[serde(other)]
    Other,
}

#[derive(Debug, Clone, Deserialize)]
pub struct WireSession {
    pub mode: Mode,
    pub backend: String,
    pub grace_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct WireSnapshot {
    pub session: WireSession,
    pub phase: String,
    pub paused: bool,
    pub systems: Vec<SystemSnapshot>,
    pub stats: GameStats,
}

#[derive(Debug, Clone, Deserialize)]
pub struct WireCycle {
    pub cycle: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::events::Event;

    /// What the agent writes, this viewer reads.
    #[test]
    fn the_agents_events_read_back() {
        let cycle = Event::Cycle(crate::session::CycleEvent {
            cycle: 7,
            action: None,
            why: None,
            reward: None,
            cycle_ms: 1.0,
            usage: Default::default(),
        });
        let json = cycle.to_json().unwrap();
        assert!(matches!(
            serde_json::from_slice::<Wire>(&json).unwrap(),
            Wire::Cycle(WireCycle { cycle: 7 })
        ));
        let closed = Event::StreamClosed { why: "bye".into() };
        assert!(matches!(
            serde_json::from_slice::<Wire>(&closed.to_json().unwrap()).unwrap(),
            Wire::StreamClosed { .. }
        ));
        let lagged = Event::Lagged { missed: 3 };
        assert!(matches!(
            serde_json::from_slice::<Wire>(&lagged.to_json().unwrap()).unwrap(),
            Wire::Other
        ));
    }
}
