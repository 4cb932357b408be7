//! Closing every system: dependents before what they depend on, independent ones at once,
//! all bounded by one deadline, then a process-wide check that no socket is left.

use super::registry::Registry;
use super::system::{CloseOutcome, CloseReport};
use crate::net::sockets;
use crate::systems::SystemId;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone)]
pub enum ShutdownEvent {
    /// Shutdown began; `deadline` is when requests still running are cancelled.
    Begin {
        grace: Duration,
        deadline: tokio::time::Instant,
    },
    /// A system started closing (every system that uses it has released it).
    Closing(SystemId),
    /// A system can no longer use the systems it depends on (its requests ended, its pool
    /// dropped): they may start closing while its own sockets settle. Not on the protocol
    /// stream: the dashboard and viewers show `Closing` and `Closed`.
    Released(SystemId),
    /// A system's close ended.
    Closed(CloseReport),
    /// A closing step that is not a system (the metrics endpoint) ended.
    StepClosed(StepReport),
    /// Every system is closed; what the process-wide check found.
    Verified(Verification),
}

#[derive(Debug, Clone, Serialize)]
pub struct ShutdownReport {
    pub grace_ms: u64,
    pub total_ms: f64,
    pub closed: usize,
    pub forced: usize,
    /// Systems and closing steps (`endpoints`) whose close ended in error.
    pub errors: usize,
    pub skipped: usize,
    /// Systems whose close could not be verified.
    pub unverified: usize,
    /// Requests in flight cancelled at the grace deadline (or by a force), all systems.
    pub cancelled: u32,
    /// TCP sockets left open, by both witnesses; `None` when it could not be measured.
    pub sockets_open_after: Option<usize>,
    /// How long the process-wide socket check took, the last step of `total_ms`.
    pub check_ms: f64,
    /// Whether every close and the process-wide check were confirmed by both witnesses.
    pub verified: bool,
    /// Why not, when not verified.
    pub unverified_reason: Option<String>,
    /// In the order they finished closing.
    pub systems: Vec<CloseReport>,
    /// Closing steps after the systems (the metrics endpoint), in order.
    pub endpoints: Vec<StepReport>,
}

/// How a closing step that is not a system ended: the same report, named by a string.
pub type StepReport = CloseReport<String>;

/// Where a shutdown tells its steps as they happen: called on the closing tasks, in the
/// order the steps happen, and it must not block (a channel's send, a broadcast's). Called
/// in place, with no task between, so a closing step that runs after an event (the control
/// endpoint, whose viewers must see the others close) finds it already delivered.
pub type EventSink = Arc<dyn Fn(ShutdownEvent) + Send + Sync>;

/// A sink that sends each event on `tx` (ignored once its receiver is gone). The channel
/// ends when the shutdown does: the sink holds the only sender the shutdown keeps.
pub fn to_channel(tx: mpsc::UnboundedSender<ShutdownEvent>) -> EventSink {
    Arc::new(move |e| {
        let _ = tx.send(e);
    })
}

/// What the process-wide check found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Verification {
    /// TCP sockets left open beyond the baseline, by either witness; `None` when neither
    /// could count them.
    pub sockets_open_after: Option<usize>,
    /// Why the check is not verified, if it is not.
    pub unverified_reason: Option<String>,
}

impl CloseReport<String> {
    /// The name as a line starts with it: "Metrics endpoint".
    pub fn display_name(&self) -> String {
        let mut name = self.name.clone();
        if let Some(first) = name.get_mut(..1) {
            first.make_ascii_uppercase();
        }
        name
    }
}

/// What a step after the systems is given: how the systems' close went, and the same
/// deadline and force signal they had.
pub struct SystemsClosed {
    pub systems: Vec<CloseReport>,
    /// Trigger → last system closed.
    pub elapsed: Duration,
    pub deadline: tokio::time::Instant,
    pub force: CancellationToken,
}

/// Something that holds sockets but is not a system (the metrics endpoint): closed after
/// every system, before the process-wide check, so the check covers it too.
pub struct ClosingStep {
    pub run:
        Box<dyn FnOnce(SystemsClosed) -> futures::future::BoxFuture<'static, StepReport> + Send>,
}

/// `n` and the noun, plural unless `n` is 1: "1 socket", "0 sockets", "4 errors". The one
/// place the app and the engine count things in words (nouns here take a plain `s`).
pub fn counted<N: std::fmt::Display + PartialEq + From<u8>>(n: N, noun: &str) -> String {
    let s = if n == N::from(1) { "" } else { "s" };
    format!("{n} {noun}{s}")
}

/// A time in milliseconds as a log line gives it: to the hundredth (10 µs), so a log reads
/// `ms=0.28`, not `ms=0.28443799999999997`.
pub fn log_ms(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 1e5).round() / 100.0
}

impl ShutdownReport {
    /// Every socket verified closed.
    pub fn is_clean(&self) -> bool {
        self.verified && self.sockets_open_after == Some(0)
    }

    /// "0 sockets left open", or what could not be verified and why: never a zero that was
    /// not measured.
    pub fn sockets_left_text(&self) -> String {
        match (self.sockets_open_after, &self.unverified_reason) {
            (Some(n), None) => format!("{} left open", counted(n, "socket")),
            (Some(n), Some(why)) => {
                format!("{} left open, unverified: {why}", counted(n, "socket"))
            }
            (None, Some(why)) => format!("sockets left open unverified: {why}"),
            (None, None) => "sockets left open unverified".to_string(),
        }
    }

    /// Sockets left open by either witness (a leak, whatever else is known).
    pub fn leaked(&self) -> bool {
        self.sockets_open_after.is_some_and(|n| n > 0)
    }
}

/// For each system, the systems that must be closed before it (those that use it).
pub fn dependents(registry: &Registry) -> BTreeMap<SystemId, Vec<SystemId>> {
    let mut map: BTreeMap<SystemId, Vec<SystemId>> = registry
        .ids()
        .into_iter()
        .map(|id| (id, Vec::new()))
        .collect();
    for s in registry.all() {
        for dep in &s.config.depends_on {
            if let Some(v) = map.get_mut(dep) {
                v.push(s.id);
            }
        }
    }
    map
}

/// Close all systems. `force` fires on a second quit request: everything is cut at once.
/// `baseline`: the process's TCP socket count before the first system opened (`None` when
/// the table could not be read then: the check is unverified);
/// `excluded_ports`: the in-process sandbox's ports, whose sockets are not the clients'.
pub async fn shutdown_all(
    registry: Arc<Registry>,
    grace: Duration,
    force: CancellationToken,
    baseline: Option<usize>,
    excluded_ports: Vec<u16>,
    events: Option<EventSink>,
    steps: Vec<ClosingStep>,
) -> ShutdownReport {
    let started = Instant::now();
    // The closes run on the runtime's workers; so does their coordination. Awaited where
    // it is called (often `block_on`'s thread), each system's report would wake that thread
    // from its sleep: tens of µs each, on the path to the check (ARCHITECTURE.md, "Shutdown").
    let close = tokio::spawn(
        Closing {
            registry,
            grace,
            force,
            baseline,
            excluded_ports,
            events,
            steps,
        }
        .run(started),
    );
    match close.await {
        Ok(report) => report,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => assemble(
            grace,
            started,
            0.0,
            Verification {
                sockets_open_after: None,
                unverified_reason: Some(format!("the shutdown task did not finish ({e})")),
            },
            Vec::new(),
            Vec::new(),
        ),
    }
}

/// What [`shutdown_all`] was given, moved into the task that does the work.
struct Closing {
    registry: Arc<Registry>,
    grace: Duration,
    force: CancellationToken,
    baseline: Option<usize>,
    excluded_ports: Vec<u16>,
    events: Option<EventSink>,
    steps: Vec<ClosingStep>,
}

impl Closing {
    async fn run(self, started: Instant) -> ShutdownReport {
        let Closing {
            registry,
            grace,
            force,
            baseline,
            excluded_ports,
            events,
            steps,
        } = self;
        let deadline = tokio::time::Instant::now() + grace;
        // No sink: the events go nowhere, from one place.
        let send: EventSink = events.unwrap_or_else(|| Arc::new(|_| {}));
        send(ShutdownEvent::Begin { grace, deadline });

        // Each system's "I no longer use what I depend on" flag (`close_releasing`); a system
        // waits for the flags of its dependents. Waiting for their whole close would hold each
        // dependency level for the level above's socket checks, though nothing can use it.
        let done: BTreeMap<SystemId, watch::Sender<bool>> = registry
            .ids()
            .into_iter()
            .map(|id| (id, watch::channel(false).0))
            .collect();
        let order = dependents(&registry);
        let (report_tx, mut report_rx) = mpsc::unbounded_channel();
        let ordered = Arc::new(std::sync::Mutex::new(()));
        let mut tasks = tokio::task::JoinSet::new();
        for sys in registry.all() {
            let sys = sys.clone();
            let waits: Vec<watch::Receiver<bool>> =
                order[&sys.id].iter().map(|d| done[d].subscribe()).collect();
            let my_flag = done[&sys.id].clone();
            // Everything's force, or this system's alone (`x` during the shutdown).
            let force = registry.arm_cut(sys.id, &force);
            let registry = registry.clone();
            let send = send.clone();
            let report_tx = report_tx.clone();
            let ordered = ordered.clone();
            tasks.spawn(async move {
                // Dependents first, but only until the deadline: then everything still open is
                // cut at once, whatever the order, so no chain of forced closes adds up.
                let dependents_closed = async {
                    for mut w in waits {
                        // A dependent's task always sets its flag; an Err means it is gone anyway.
                        let _ = w.wait_for(|closed| *closed).await;
                    }
                };
                tokio::select! {
                    _ = dependents_closed => {}
                    _ = crate::sync::wake_at(deadline) => {}
                    _ = force.cancelled() => {}
                }
                if sys.state() != super::SystemState::Disabled {
                    send(ShutdownEvent::Closing(sys.id));
                }
                let release = || {
                    send(ShutdownEvent::Released(sys.id));
                    my_flag.send_replace(true);
                };
                let report = sys.close_releasing(deadline, &force, release).await;
                {
                    // Both channels in one step, so the events and the report list the systems
                    // in the same order.
                    let _same_order = ordered.lock().unwrap_or_else(|p| p.into_inner());
                    send(ShutdownEvent::Closed(report.clone()));
                    let _ = report_tx.send(report);
                }
                registry.disarm_cut(sys.id);
                my_flag.send_replace(true);
            });
        }
        drop(report_tx);
        let mut systems = Vec::with_capacity(registry.all().len());
        while let Some(r) = report_rx.recv().await {
            systems.push(r);
        }
        while let Some(joined) = tasks.join_next().await {
            if let Err(e) = joined {
                tracing::error!(error = %e, "a close task failed");
            }
        }

        let mut endpoints = Vec::with_capacity(steps.len());
        for step in steps {
            let closed = SystemsClosed {
                systems: systems.clone(),
                elapsed: started.elapsed(),
                deadline,
                force: force.clone(),
            };
            let report = (step.run)(closed).await;
            send(ShutdownEvent::StepClosed(report.clone()));
            endpoints.push(report);
        }

        let ledger_open: usize = registry.all().iter().map(|s| s.ledger_open()).sum();
        let checking = Instant::now();
        let check = verify(baseline, ledger_open, &excluded_ports).await;
        let check_ms = checking.elapsed().as_secs_f64() * 1e3;
        send(ShutdownEvent::Verified(check.clone()));
        assemble(grace, started, check_ms, check, systems, endpoints)
    }
}

/// The report of a shutdown from its parts: verified only if every part was (each system,
/// each endpoint, and the process check).
fn assemble(
    grace: Duration,
    started: Instant,
    check_ms: f64,
    check: Verification,
    systems: Vec<CloseReport>,
    endpoints: Vec<StepReport>,
) -> ShutdownReport {
    let count = |o: CloseOutcome| systems.iter().filter(|r| r.outcome == o).count();
    // Verified only if every part was: each system, each endpoint, and the process check.
    let unverified_reason = check
        .unverified_reason
        .clone()
        .or_else(|| {
            systems
                .iter()
                .find_map(|r| Some(format!("{}: {}", r.name, r.unverified_reason.as_ref()?)))
        })
        .or_else(|| {
            endpoints
                .iter()
                .find_map(|r| Some(format!("{}: {}", r.name, r.unverified_reason.as_ref()?)))
        });
    ShutdownReport {
        grace_ms: grace.as_millis() as u64,
        total_ms: started.elapsed().as_secs_f64() * 1e3,
        closed: count(CloseOutcome::Closed),
        forced: count(CloseOutcome::Forced),
        // A closing step's error is the session's as much as a system's (a trace exporter
        // that could not deliver what it held).
        errors: count(CloseOutcome::Error)
            + endpoints
                .iter()
                .filter(|r| r.outcome == CloseOutcome::Error)
                .count(),
        skipped: count(CloseOutcome::Skipped),
        unverified: count(CloseOutcome::Unverified),
        cancelled: systems.iter().map(|r| r.cancelled).sum(),
        sockets_open_after: check.sockets_open_after,
        check_ms,
        verified: unverified_reason.is_none(),
        unverified_reason,
        systems,
        endpoints,
    }
}

/// The process-wide check, by both witnesses: the OS table's TCP sockets now (less the
/// sandbox's) against the baseline, and `ledger_open`, the connections the systems' ledgers
/// still count. Each system already confirmed its own zero; a short re-check absorbs a
/// socket that is mid-close in another task.
pub async fn verify(
    baseline: Option<usize>,
    ledger_open: usize,
    excluded_ports: &[u16],
) -> Verification {
    let Some(baseline) = baseline else {
        let why = match sockets::count_process_sockets(excluded_ports) {
            Err(e) => e.to_string(),
            Ok(_) => "the socket table could not be read before the session started".into(),
        };
        return Verification {
            sockets_open_after: (ledger_open > 0).then_some(ledger_open),
            unverified_reason: Some(why),
        };
    };
    // One read of the table; a second, once, only if something is left: a socket outside
    // every ledger (the trace exporter's, on its own thread) may be closing this instant.
    let mut table = sockets::process_tcp_sockets_except(excluded_ports);
    if matches!(&table, Ok(t) if t.len() > baseline) {
        tokio::time::sleep(RECHECK).await;
        table = sockets::process_tcp_sockets_except(excluded_ports);
    }
    match table {
        Err(e) => {
            tracing::error!(error = %e, "cannot verify sockets");
            Verification {
                // The ledger alone can prove a leak, never its absence.
                sockets_open_after: (ledger_open > 0).then_some(ledger_open),
                unverified_reason: Some(e.to_string()),
            }
        }
        Ok(table) => {
            // The table leaves the sandbox's sockets out already.
            let left = table.len().saturating_sub(baseline).max(ledger_open);
            if left > 0 {
                for s in &table {
                    tracing::error!(local = %s.local, remote = %s.remote, state = %s.state, "socket still open");
                }
            }
            Verification {
                sockets_open_after: Some(left),
                unverified_reason: None,
            }
        }
    }
}

/// How long the process-wide check gives a socket it finds open to finish closing.
const RECHECK: Duration = Duration::from_millis(20);

#[cfg(test)]
mod tests {
    use super::*;

    fn step(name: &str, outcome: CloseOutcome, error: Option<&str>) -> StepReport {
        StepReport {
            name: name.to_string(),
            outcome,
            close_ms: 1.0,
            sockets_before: 0,
            error: error.map(str::to_string),
            cancelled: 0,
            verified: true,
            unverified_reason: None,
            earlier: None,
            steps: Vec::new(),
        }
    }

    /// A closing step that failed (a trace exporter that could not deliver) is an error of
    /// the shutdown, as a system's is: counted in `errors`, whatever the sockets say.
    #[test]
    fn a_closing_steps_error_is_counted_in_errors() {
        let check = Verification {
            sockets_open_after: Some(0),
            unverified_reason: None,
        };
        // Two steps that closed and one that failed: only the failed one counts.
        let endpoints = vec![
            step("metrics endpoint", CloseOutcome::Closed, None),
            step(
                "trace exporter",
                CloseOutcome::Error,
                Some("3 of 3 spans not delivered (connection refused)"),
            ),
            step("log file", CloseOutcome::Closed, None),
        ];
        let r = assemble(
            Duration::from_millis(500),
            Instant::now(),
            0.1,
            check,
            Vec::new(),
            endpoints,
        );
        assert_eq!(r.errors, 1);
        assert!(r.is_clean(), "no socket left: the error is not a leak");
    }

    /// A log line's milliseconds: rounded to the hundredth, not cut, nor scaled wrong.
    #[test]
    fn log_ms_gives_milliseconds_to_the_hundredth() {
        assert_eq!(log_ms(Duration::from_nanos(284_437_999)), 284.44);
        assert_eq!(log_ms(Duration::from_micros(1_234)), 1.23);
        assert_eq!(log_ms(Duration::ZERO), 0.0);
    }
}
