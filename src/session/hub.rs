//! What a viewer of the session reads (the control endpoint's, ARCHITECTURE.md "The control
//! endpoint"): enough to draw the session from nothing, and every feed of what happens next.
//! The session makes it; whoever serves it (`serve`) only reads it.

use super::CycleEvent;
use super::control::Control;
use super::events::{Event, Refresh, SessionInfo, Snapshot};
use super::signals::QuitSignal;
use super::to_protocol::ToProtocol;
use crate::gameplay::GameStats;
use crate::lifecycle::{Registry, ShutdownEvent};
use crate::sync::LockExt;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::{broadcast, watch};

pub struct Hub {
    pub registry: Arc<Registry>,
    pub stats: Arc<Mutex<GameStats>>,
    pub control: Control,
    pub paused: watch::Sender<bool>,
    pub quit: QuitSignal,
    pub cycles: broadcast::Sender<CycleEvent>,
    pub shutdown: broadcast::Sender<ShutdownEvent>,
    /// What the session is; whoever serves it adds where (`serve`).
    pub info: Mutex<SessionInfo>,
    pub started: Instant,
}

impl Hub {
    /// The whole session as it is now.
    pub fn snapshot(&self) -> Event {
        let stats = self.stats.locked().to_protocol();
        Event::Snapshot(Box::new(Snapshot {
            protocol: singularis_protocol::PROTOCOL,
            session: self.info.locked().clone(),
            session_s: self.started.elapsed().as_secs_f64(),
            phase: if self.quit.is_set() {
                "shutting_down"
            } else {
                "running"
            }
            .to_string(),
            paused: *self.paused.borrow(),
            systems: self.systems(),
            stats,
            commands: self.control.records(),
        }))
    }

    /// The counters, for a viewer's periodic refresh.
    pub fn refresh(&self) -> Event {
        Event::Refresh(Box::new(Refresh {
            session_s: self.started.elapsed().as_secs_f64(),
            paused: *self.paused.borrow(),
            systems: self.systems(),
            stats: self.stats.locked().to_protocol(),
        }))
    }

    fn systems(&self) -> Vec<singularis_protocol::SystemSnapshot> {
        self.registry
            .snapshots()
            .iter()
            .map(ToProtocol::to_protocol)
            .collect()
    }
}
