//! Closing one system: refuse new work, let requests finish until the deadline, drop the
//! pool, then settle its connections with both witnesses (ARCHITECTURE.md, "Verified
//! closing"); reopening makes a fresh pool.

use super::{
    CloseOutcome, CloseReport, CloseStep, CloseStepKind, EarlierClose, Generation, System,
    SystemState,
};
use crate::net::sockets;
use crate::net::{FORCE_BUDGET, settle};
use crate::sync::{LockExt, wake_at};
use std::sync::atomic::Ordering;
use std::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The least time a dropped pool gets to close its idle connections (woken by each close, so
/// it costs nothing when they go at once).
const SETTLE_MIN: std::time::Duration = std::time::Duration::from_millis(20);

/// After the cut at the grace deadline, how long the cancelled requests' tasks and their
/// connections get to end by themselves (a dropped HTTP/1 request closes its connection)
/// before the close is called forced. Woken by each end, so it costs nothing when they go.
const CANCEL_BUDGET: std::time::Duration = std::time::Duration::from_millis(200);

impl System {
    /// Close this system: refuse new work, stop streams, let requests in flight finish until
    /// `deadline` (or until `force` fires), drop the pool, and wait until the system's own
    /// sockets are measured gone. Requests still running at the deadline are cancelled
    /// (counted in `cancelled`); the close is `closed` if its tasks and sockets then end by
    /// themselves, `forced` if they had to be forced, or if `force` fired (ARCHITECTURE.md,
    /// "Shutdown"). A close asked for earlier and still standing is told in the report, and
    /// counts.
    pub async fn close(
        &self,
        deadline: tokio::time::Instant,
        force: &CancellationToken,
    ) -> CloseReport {
        self.close_releasing(deadline, force, || {}).await
    }

    /// `close`, telling `released` as soon as this system can no longer use another one:
    /// its requests have ended (none can start) and its pool is dropped. What it uses may
    /// start closing then, while its own sockets settle and are checked (ARCHITECTURE.md,
    /// "Shutdown order"). Called at most once; not at all for a system that was not open.
    pub async fn close_releasing(
        &self,
        deadline: tokio::time::Instant,
        force: &CancellationToken,
        released: impl FnOnce(),
    ) -> CloseReport {
        let earlier = self.earlier.locked().clone();
        let mut r = self.close_now(deadline, force, released).await;
        if let Some(e) = earlier {
            r.outcome = r.outcome.worse(e.outcome);
            r.earlier = Some(e);
        }
        r
    }

    /// Remember a close asked for at runtime, for the shutdown's account (until a reopen).
    pub fn note_earlier_close(&self, close: EarlierClose) {
        *self.earlier.locked() = Some(close);
    }

    async fn close_now(
        &self,
        deadline: tokio::time::Instant,
        force: &CancellationToken,
        released: impl FnOnce(),
    ) -> CloseReport {
        let started = Instant::now();
        let prior = self.state();
        if prior == SystemState::Disabled {
            return self.report(CloseOutcome::Skipped, started, 0, None, 0);
        }
        let (stop, gen_force, tracker) = {
            let g = self.lock_generation();
            (g.stop.clone(), g.force.clone(), g.tracker.clone())
        };
        let sockets_before = self.ledger.open_count() as u32;
        if prior == SystemState::Closed
            && sockets_before == 0
            && let Some(r) = self.still_closed(started)
        {
            return r;
        }
        self.set_state(SystemState::Closing);
        tracing::info!(system = %self.id, sockets_before, "closing");
        stop.cancel();
        tracker.close();

        let mut steps = Steps::new(started);
        let drained = drain(&tracker, deadline, force, &mut steps).await;
        let mut forced = !drained && force.is_cancelled();
        let (cut_by, cancelled) = if drained {
            (None, 0)
        } else {
            let (cut_by, cancelled) = self
                .cut_requests(forced, &gen_force, &tracker, force, &mut steps)
                .await;
            (Some(cut_by), cancelled)
        };
        // Dropping the last client handle lets each pooled connection's task close its socket.
        self.lock_generation().client = None;
        steps.at(CloseStepKind::PoolDropped);
        // A task that ignored the cut may still be calling another system: then the systems
        // it uses wait for the whole close.
        let mut released = Some(released);
        if tracker.is_empty()
            && let Some(tell) = released.take()
        {
            tell();
            // The closes just woken (what this system used) drop their pools first; this
            // one's socket checks can wait their turn (ARCHITECTURE.md, "Shutdown order").
            tokio::task::yield_now().await;
        }

        // Dropped pools close their idle connections within microseconds, but on their own
        // tasks: a system that closes at (or after) the deadline, because the systems using
        // it held it up, still gives them a moment before anything is called forced.
        let moment = tokio::time::Instant::now() + SETTLE_MIN;
        let settle_by = cut_by
            .map(|c| moment.max(c - FORCE_BUDGET / 2))
            .unwrap_or(deadline.max(moment));
        let cut_by =
            cut_by.unwrap_or_else(|| settle_by.max(tokio::time::Instant::now()) + FORCE_BUDGET / 2);
        let settled = settle(&self.ledger, None, settle_by, cut_by, force).await;
        if sockets_before > 0
            && let Some(at) = self.ledger.last_close().filter(|&at| at >= started)
        {
            steps.push(CloseStepKind::FdsClosed, at);
        }
        forced |= settled.shut_down;
        // Tasks that outlive the cut (a future that ignores the cancel) are a close that
        // needed force; they get until the same bound as the sockets.
        if !drained && !tracker.is_empty() {
            forced |= tokio::time::timeout_at(cut_by, tracker.wait())
                .await
                .is_err();
        }
        if let Some(tell) = released.take() {
            tell();
        }
        let left = settled.left;
        self.open_sockets
            .store(left.len() as u32, Ordering::Relaxed);
        self.set_state(SystemState::Closed);
        let (outcome, error) = outcome_of(&left, settled.unverified.is_some(), forced);
        tracing::info!(
            system = %self.id,
            outcome = %outcome.name(),
            ms = crate::lifecycle::log_ms(started.elapsed()),
            unverified = settled.unverified.as_deref(),
            "closed"
        );
        steps.at(CloseStepKind::Checked);
        let mut r = self.report(outcome, started, sockets_before, error, cancelled);
        r.verified = settled.unverified.is_none();
        r.unverified_reason = settled.unverified;
        r.steps = steps.done();
        r
    }

    /// Cut the requests still running: cancel them and give them a moment to end. Returns
    /// the bound on everything left after the cut (a close cut at the deadline ends within
    /// CANCEL_BUDGET + FORCE_BUDGET of it, a `forced` one within FORCE_BUDGET, however the
    /// sockets behave) and how many requests were cut.
    async fn cut_requests(
        &self,
        forced: bool,
        gen_force: &CancellationToken,
        tracker: &TaskTracker,
        force: &CancellationToken,
        steps: &mut Steps,
    ) -> (tokio::time::Instant, u32) {
        let budget = if forced {
            FORCE_BUDGET
        } else {
            CANCEL_BUDGET + FORCE_BUDGET
        };
        let cut_by = tokio::time::Instant::now() + budget;
        let cancelled = self.in_flight.load(Ordering::Relaxed);
        gen_force.cancel();
        steps.at(CloseStepKind::CancelSent);
        // Cut futures end at their next poll; dropping them drops their connections.
        let _ = tokio::time::timeout(budget / 4, async {
            tokio::select! {
                _ = tracker.wait() => {}
                _ = force.cancelled() => {}
            }
        })
        .await;
        if tracker.is_empty() {
            steps.at(CloseStepKind::TasksEnded);
        }
        (cut_by, cancelled)
    }

    /// A system closed earlier and not reopened: confirm its sockets are still gone.
    /// `None` if one is open again (then it is closed as usual).
    fn still_closed(&self, started: Instant) -> Option<CloseReport> {
        let seen = sockets::witness(&self.ledger, None);
        if !seen.open.is_empty() {
            return None;
        }
        let outcome = match seen.unverified {
            None => CloseOutcome::Closed,
            Some(_) => CloseOutcome::Unverified,
        };
        let mut r = self.report(outcome, started, 0, None, 0);
        r.verified = seen.unverified.is_none();
        r.unverified_reason = seen.unverified;
        Some(r)
    }

    fn report(
        &self,
        outcome: CloseOutcome,
        started: Instant,
        sockets_before: u32,
        error: Option<String>,
        cancelled: u32,
    ) -> CloseReport {
        CloseReport {
            name: self.id,
            outcome,
            close_ms: started.elapsed().as_secs_f64() * 1e3,
            sockets_before,
            error,
            cancelled,
            // Set by the caller once the witnesses were asked; a skipped system held none.
            verified: outcome == CloseOutcome::Skipped,
            unverified_reason: None,
            earlier: None,
            steps: Vec::new(),
        }
    }

    /// Close at once: cut requests in flight and shut the sockets (the dashboard's `x`).
    pub async fn force_close(&self) -> CloseReport {
        let now = CancellationToken::new();
        now.cancel();
        self.close(tokio::time::Instant::now(), &now).await
    }

    /// Open a closed system again with a fresh pool.
    pub fn reopen(&self) -> bool {
        if self.state() != SystemState::Closed {
            return false;
        }
        {
            let stop = CancellationToken::new();
            let mut g = self.lock_generation();
            *g = Generation {
                client: self.build_client(&stop),
                stop,
                force: CancellationToken::new(),
                tracker: TaskTracker::new(),
            };
        }
        *self.earlier.locked() = None;
        let mut st = self.lock_status();
        st.last_error = None;
        self.move_to(&mut st, SystemState::Idle);
        drop(st);
        self.notify();
        tracing::info!(system = %self.id, "reopened");
        true
    }
}

/// How a close ended, from what was left open, whether a witness could not be asked, and
/// whether it needed force.
fn outcome_of(
    left: &[sockets::OwnedSocket],
    unverified: bool,
    forced: bool,
) -> (CloseOutcome, Option<String>) {
    if !left.is_empty() {
        let error = format!(
            "{} still open after force-close: {}",
            super::super::counted(left.len(), "socket"),
            sockets::named(left)
        );
        (CloseOutcome::Error, Some(error))
    } else if unverified {
        (CloseOutcome::Unverified, None)
    } else if forced {
        (CloseOutcome::Forced, None)
    } else {
        (CloseOutcome::Closed, None)
    }
}

/// Let the requests in flight finish until `deadline` (or a force); true when they all did.
/// A force asked for (a second quit, `x`) makes the close forced whatever follows. A cut at
/// the grace deadline only ends the requests: the close is forced only if it then needs
/// more (tasks that do not end, sockets shut under their owners).
async fn drain(
    tracker: &TaskTracker,
    deadline: tokio::time::Instant,
    force: &CancellationToken,
    steps: &mut Steps,
) -> bool {
    let drained = !force.is_cancelled()
        && tokio::select! {
            biased;
            _ = tracker.wait() => true,
            _ = wake_at(deadline) => false,
            _ = force.cancelled() => false,
        };
    if drained {
        steps.at(CloseStepKind::Drained);
    } else {
        steps.at(CloseStepKind::Cut);
        if !force.is_cancelled() {
            steps.push(CloseStepKind::Deadline, deadline.into_std());
        }
    }
    drained
}

/// A close's timeline, in the order the steps happened.
struct Steps {
    started: Instant,
    steps: Vec<CloseStep>,
}

impl Steps {
    fn new(started: Instant) -> Steps {
        Steps {
            started,
            steps: Vec::with_capacity(7),
        }
    }

    fn at(&mut self, step: CloseStepKind) {
        self.push(step, Instant::now());
    }

    fn push(&mut self, step: CloseStepKind, at: Instant) {
        let ms = at.saturating_duration_since(self.started).as_secs_f64() * 1e3;
        self.steps.push(CloseStep { step, ms });
    }

    fn done(mut self) -> Vec<CloseStep> {
        // The ledger's time was read after the fact: keep the list in time order.
        self.steps.sort_by(|a, b| a.ms.total_cmp(&b.ms));
        self.steps
    }
}
