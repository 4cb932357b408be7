//! What a person asks of a running session (ARCHITECTURE.md, "Commands"): close, force-close
//! or reopen a system, pause, resume, quit. The dashboard's keys ask through here, and so will
//! a remote viewer: each command is judged against the system's real state (never a snapshot
//! that may be a refresh behind) and recorded, who, what, when and how it ended, for the
//! report, the event stream and the shutdown account.

use super::report::Reason;
use super::signals::QuitSignal;
use crate::lifecycle::{CloseReport, EarlierClose, Registry, SystemState};
use crate::sync::LockExt;
use crate::systems::SystemId;
use futures::future::BoxFuture;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

/// What a person may ask, and the record each command leaves: the protocol's own types (the
/// report's `commands`, the `command` event, `POST /v1/commands`).
pub use singularis_protocol::{CommandKind, CommandRecord};

/// What became of a command, for whoever asked.
pub enum Reply {
    /// Done at once; the words say what was done.
    Done(String),
    /// Not done, and why.
    Refused(String),
    /// A close under way: its report comes when it ends (and is recorded then).
    Closing(BoxFuture<'static, CloseReport>),
}

#[derive(Clone)]
pub struct Control(Arc<Inner>);

struct Inner {
    registry: Arc<Registry>,
    paused: watch::Sender<bool>,
    quit: QuitSignal,
    /// A second quit: every close under way is cut at once.
    force: CancellationToken,
    grace: Duration,
    started: Instant,
    log: Mutex<Vec<CommandRecord>>,
    /// Each graceful close under way, by the token that cuts it short.
    closing: Mutex<HashMap<SystemId, CancellationToken>>,
    /// `x` during the shutdown: each system cut then, by whom and when, recorded once the
    /// shutdown says how its close ended ([`Control::record_shutdown_cuts`]).
    cut_at_shutdown: Mutex<Vec<(SystemId, String, f64)>>,
    events: broadcast::Sender<CommandRecord>,
}

impl Control {
    pub(crate) fn new(
        registry: Arc<Registry>,
        paused: watch::Sender<bool>,
        quit: QuitSignal,
        force: CancellationToken,
        grace: Duration,
        started: Instant,
    ) -> Control {
        Control(Arc::new(Inner {
            registry,
            paused,
            quit,
            force,
            grace,
            started,
            log: Mutex::new(Vec::new()),
            closing: Mutex::new(HashMap::new()),
            cut_at_shutdown: Mutex::new(Vec::new()),
            events: broadcast::channel(256).0,
        }))
    }

    /// How long a close is given before it is forced.
    pub fn grace(&self) -> Duration {
        self.0.grace
    }

    /// Every command so far, in the order they were asked (a close is recorded when it
    /// ends, with the time it was asked).
    pub fn records(&self) -> Vec<CommandRecord> {
        let mut all = self.0.log.locked().clone();
        all.sort_by(|a, b| a.at_s.total_cmp(&b.at_s));
        all
    }

    /// Each command as it is decided (a close: as it ends).
    pub fn subscribe(&self) -> broadcast::Receiver<CommandRecord> {
        self.0.events.subscribe()
    }

    /// Close `id` within the grace period (`force`: at once, or cut a close under way).
    pub fn close(&self, id: SystemId, by: &str, force: bool) -> Reply {
        let kind = if force {
            CommandKind::ForceClose
        } else {
            CommandKind::Close
        };
        let name = id.display_name();
        if self.0.quit.is_set() {
            if force {
                return self.cut_in_shutdown(id, by);
            }
            return self.refuse(
                kind,
                Some(id),
                by,
                "shutting down: every system is being closed (x forces one now)",
            );
        }
        if let Some(cut) = self.0.closing.locked().get(&id) {
            return if force {
                // The close under way ends forced; its record comes when it ends.
                cut.cancel();
                Reply::Done(format!("cutting {name}'s close short…"))
            } else {
                self.refuse(
                    kind,
                    Some(id),
                    by,
                    &format!("{name} is already closing (x forces it)"),
                )
            };
        }
        let system = self.0.registry.get(id).clone();
        match system.state() {
            SystemState::Disabled => {
                return self.refuse(
                    kind,
                    Some(id),
                    by,
                    &format!("{name} is disabled: nothing to close"),
                );
            }
            SystemState::Closed => {
                return self.refuse(
                    kind,
                    Some(id),
                    by,
                    &format!("{name} is already closed (r reopens it)"),
                );
            }
            _ => {}
        }
        let cut = self.0.force.child_token();
        if force {
            cut.cancel();
        }
        self.0.closing.locked().insert(id, cut.clone());
        let deadline = tokio::time::Instant::now() + self.0.grace;
        let (control, by) = (self.clone(), by.to_string());
        let at = self.0.started.elapsed();
        Reply::Closing(Box::pin(async move {
            let report = system.close(deadline, &cut).await;
            control.0.closing.locked().remove(&id);
            system.note_earlier_close(EarlierClose {
                by: by.clone(),
                at_s: at.as_secs_f64(),
                forced_on_request: cut.is_cancelled(),
                outcome: report.outcome,
                close_ms: report.close_ms,
                error: report.error.clone(),
                cancelled: report.cancelled,
            });
            control.record(CommandRecord {
                at_s: at.as_secs_f64(),
                by,
                command: kind,
                system: Some(id.name().to_string()),
                outcome: report.outcome.name().to_string(),
                detail: report.error.clone(),
                close_ms: Some(report.close_ms),
            });
            report
        }))
    }

    /// `x` during the shutdown: `id`'s close is cut now (or starts now, forced, if it
    /// still waits for the systems that use it); recorded with how it ended once the
    /// shutdown says ([`Control::record_shutdown_cuts`]). Refused, and recorded, for a
    /// system that is disabled, already closed, or already being cut.
    fn cut_in_shutdown(&self, id: SystemId, by: &str) -> Reply {
        let kind = CommandKind::ForceClose;
        let name = id.display_name();
        if self.0.registry.get(id).state() == SystemState::Disabled {
            return self.refuse(
                kind,
                Some(id),
                by,
                &format!("{name} is disabled: nothing to close"),
            );
        }
        if self.cut_at_shutdown(id) {
            return self.refuse(
                kind,
                Some(id),
                by,
                &format!("{name}'s close is already being cut"),
            );
        }
        if !self.0.registry.cut_in_shutdown(id) {
            return self.refuse(kind, Some(id), by, &format!("{name} is already closed"));
        }
        let at = self.0.started.elapsed().as_secs_f64();
        tracing::info!(by, system = %id, "force-close during the shutdown");
        self.0
            .cut_at_shutdown
            .locked()
            .push((id, by.to_string(), at));
        Reply::Done(format!("cutting {name}'s close now"))
    }

    /// Whether `id` was cut alone during the shutdown (`x`): its close was forced on request.
    pub fn cut_at_shutdown(&self, id: SystemId) -> bool {
        self.0
            .cut_at_shutdown
            .locked()
            .iter()
            .any(|(cut, _, _)| *cut == id)
    }

    /// Record each `x` of the shutdown with how that system's close ended (`systems`: the
    /// shutdown's reports), before the report lists the commands.
    pub fn record_shutdown_cuts(&self, systems: &[CloseReport]) {
        let cuts = std::mem::take(&mut *self.0.cut_at_shutdown.locked());
        for (id, by, at_s) in cuts {
            let report = systems.iter().find(|r| r.name == id);
            self.record(CommandRecord {
                at_s,
                by,
                command: CommandKind::ForceClose,
                system: Some(id.name().to_string()),
                outcome: report.map_or("error", |r| r.outcome.name()).to_string(),
                detail: match report {
                    Some(r) => r.error.clone(),
                    None => Some("the shutdown gave no report of its close".to_string()),
                },
                close_ms: report.map(|r| r.close_ms),
            });
        }
    }

    /// Open a closed system again with a fresh pool.
    pub fn reopen(&self, id: SystemId, by: &str) -> Reply {
        let name = id.display_name();
        if self.0.quit.is_set() {
            return self.refuse(CommandKind::Reopen, Some(id), by, "shutting down");
        }
        if self.0.closing.locked().contains_key(&id) {
            return self.refuse(
                CommandKind::Reopen,
                Some(id),
                by,
                &format!("{name} is closing: reopen it once it is closed"),
            );
        }
        let system = self.0.registry.get(id);
        if !system.reopen() {
            let state = system.state();
            return self.refuse(
                CommandKind::Reopen,
                Some(id),
                by,
                &format!(
                    "{name} is {}: only a closed system can be reopened",
                    state.name()
                ),
            );
        }
        self.done(CommandKind::Reopen, Some(id), by, "reopened");
        Reply::Done(format!("{name} reopened"))
    }

    pub fn set_paused(&self, paused: bool, by: &str) -> Reply {
        let kind = if paused {
            CommandKind::Pause
        } else {
            CommandKind::Resume
        };
        if self.0.quit.is_set() {
            return self.refuse(kind, None, by, "shutting down");
        }
        self.0.paused.send_replace(paused);
        let word = if paused { "paused" } else { "resumed" };
        self.done(kind, None, by, word);
        Reply::Done(format!("game {word}"))
    }

    /// The normal shutdown, as `q` asks for it.
    pub fn quit(&self, by: &str) -> Reply {
        self.done(CommandKind::Quit, None, by, "quit");
        self.0.quit.quit(Reason::Quit);
        Reply::Done("shutting down".to_string())
    }

    /// A command that came without a valid control token: not acted on, but recorded (outcome
    /// `unauthorized`), so the report says who tried what.
    pub fn unauthorized(&self, kind: CommandKind, system: Option<SystemId>, by: &str) {
        tracing::warn!(
            by,
            command = <&str>::from(kind),
            system = system.map(|id| tracing::field::display(id.name())),
            "command without a valid control token"
        );
        self.record(CommandRecord {
            at_s: self.0.started.elapsed().as_secs_f64(),
            by: by.to_string(),
            command: kind,
            system: system.map(|id| id.name().to_string()),
            outcome: "unauthorized".to_string(),
            detail: Some("no valid control token".to_string()),
            close_ms: None,
        });
    }

    fn refuse(&self, kind: CommandKind, system: Option<SystemId>, by: &str, why: &str) -> Reply {
        tracing::info!(
            by,
            command = <&str>::from(kind),
            system = system.map(|id| tracing::field::display(id.name())),
            why,
            "command refused"
        );
        self.record(CommandRecord {
            at_s: self.0.started.elapsed().as_secs_f64(),
            by: by.to_string(),
            command: kind,
            system: system.map(|id| id.name().to_string()),
            outcome: "refused".to_string(),
            detail: Some(why.to_string()),
            close_ms: None,
        });
        Reply::Refused(why.to_string())
    }

    fn done(&self, kind: CommandKind, system: Option<SystemId>, by: &str, outcome: &str) {
        self.record(CommandRecord {
            at_s: self.0.started.elapsed().as_secs_f64(),
            by: by.to_string(),
            command: kind,
            system: system.map(|id| id.name().to_string()),
            outcome: outcome.to_string(),
            detail: None,
            close_ms: None,
        });
    }

    fn record(&self, record: CommandRecord) {
        tracing::info!(
            by = %record.by,
            command = <&str>::from(record.command),
            system = record.system.as_deref().map(tracing::field::display),
            outcome = %record.outcome,
            "command"
        );
        let _ = self.0.events.send(record.clone());
        self.0.log.locked().push(record);
    }
}

/// `h:mm:ss` since the session started, as the account says when something was asked.
pub fn clock(at_s: f64) -> String {
    let s = at_s.max(0.0) as u64;
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}
