//! What a viewer of the session reads (the control endpoint's, ARCHITECTURE.md "The control
//! endpoint"): enough to draw the session from nothing, and every feed of what happens next.
//! The session makes it; whoever serves it (`serve`) only reads it.

use super::CycleEvent;
use super::control::Control;
use super::events::{Event, Refresh, SessionInfo, Snapshot};
use super::signals::QuitSignal;
use super::to_protocol::{self, ToProtocol};
use crate::gameplay::GameStats;
use crate::lifecycle::{Registry, ShutdownEvent};
use crate::logging::{LogBuffer, LogLine, Redactor};
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
    /// The process's recent log lines and their feed (the log pane's).
    pub(crate) logs: &'static LogBuffer,
    /// What masks keys in the log lines a viewer is sent, as in the dashboard's log pane.
    pub(crate) redactor: Redactor,
}

impl Hub {
    /// The whole session as it is now, with `logs`, the log's tail (from
    /// [`LogBuffer::follow`], which also gives the lines after it).
    pub fn snapshot(&self, logs: Vec<LogLine>) -> Event {
        let (stats, game) = self.game();
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
            game,
            logs: logs.iter().map(|l| self.log_line(l)).collect(),
        }))
    }

    /// A log line as a viewer is sent it: its keys masked.
    pub(crate) fn log_line(&self, l: &LogLine) -> singularis_protocol::LogLine {
        let mut line = l.to_protocol();
        line.text = self.redactor.scrub(&line.text);
        line
    }

    /// The game's figures and its pane, from one look.
    fn game(
        &self,
    ) -> (
        singularis_protocol::GameStats,
        singularis_protocol::GameView,
    ) {
        let stats = self.stats.locked();
        (stats.to_protocol(), to_protocol::game_view(&stats))
    }

    /// The counters, for a viewer's periodic refresh.
    pub fn refresh(&self) -> Event {
        let (stats, game) = self.game();
        Event::Refresh(Box::new(Refresh {
            session_s: self.started.elapsed().as_secs_f64(),
            paused: *self.paused.borrow(),
            systems: self.systems(),
            stats,
            game,
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
