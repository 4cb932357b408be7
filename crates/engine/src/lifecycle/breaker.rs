//! A circuit breaker per system, in the usual closed → open → half-open form
//! (ARCHITECTURE.md, "Deadlines and breakers"):
//! - closed: calls go through; a timeout, or `failures` failures in a row, opens it;
//! - open: calls are skipped until the backoff has passed; each reopening doubles it, up to
//!   its ceiling;
//! - half-open: one probe call at a time tests the system; its success closes the breaker
//!   (and resets the backoff), its failure opens it again.

use crate::backoff::Backoff;
use serde::Serialize;
use std::time::Duration;
use tokio::time::Instant;

/// Where a breaker stands.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    serde::Deserialize,
    strum::IntoStaticStr,
    strum::VariantNames,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

impl BreakerState {
    pub fn name(self) -> &'static str {
        self.into()
    }
}

/// How a breaker behaves (config `[resilience]`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BreakerSettings {
    /// Failures in a row that open a closed breaker (a timeout opens it at once).
    pub failures: u32,
    /// The first backoff; each reopening doubles it.
    pub backoff: Duration,
    pub backoff_max: Duration,
}

/// Whether a call may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Closed: go.
    Go,
    /// Half-open: go, as the one probe.
    Probe,
    /// Open (or a probe is already out): skip.
    Skip,
}

#[derive(Debug, Clone)]
pub struct Breaker {
    settings: BreakerSettings,
    state: BreakerState,
    failures_in_a_row: u32,
    /// Failed probes since it last closed: each doubles the wait before the next.
    reopenings: u32,
    open_until: Option<Instant>,
    probe_out: bool,
    opened: u64,
}

/// A change of state and why, for the event stream and the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub from: BreakerState,
    pub to: BreakerState,
    pub reason: String,
}

impl Breaker {
    pub fn new(settings: BreakerSettings) -> Breaker {
        Breaker {
            settings,
            state: BreakerState::Closed,
            failures_in_a_row: 0,
            reopenings: 0,
            open_until: None,
            probe_out: false,
            opened: 0,
        }
    }

    pub fn state(&self) -> BreakerState {
        self.state
    }

    /// Times it opened since start.
    pub fn opened(&self) -> u64 {
        self.opened
    }

    /// Whether a call may go now; an open breaker whose backoff has passed turns half-open
    /// and lets this call through as its probe.
    pub fn admit(&mut self, now: Instant) -> (Admit, Option<Transition>) {
        match self.state {
            BreakerState::Closed => (Admit::Go, None),
            BreakerState::Open if self.open_until.is_some_and(|t| now >= t) => {
                self.probe_out = true;
                let t = self.move_to(BreakerState::HalfOpen, "backoff over: probing".into());
                (Admit::Probe, t)
            }
            BreakerState::Open => (Admit::Skip, None),
            BreakerState::HalfOpen if !self.probe_out => {
                self.probe_out = true;
                (Admit::Probe, None)
            }
            BreakerState::HalfOpen => (Admit::Skip, None),
        }
    }

    pub fn success(&mut self) -> Option<Transition> {
        self.failures_in_a_row = 0;
        self.probe_out = false;
        if self.state == BreakerState::Closed {
            return None;
        }
        self.reopenings = 0;
        self.open_until = None;
        self.move_to(BreakerState::Closed, "a call succeeded".into())
    }

    /// A call failed; `timed_out`: it outran its deadline (a hang opens at once).
    pub fn failure(&mut self, now: Instant, timed_out: bool, cause: &str) -> Option<Transition> {
        self.failures_in_a_row = self.failures_in_a_row.saturating_add(1);
        match self.state {
            BreakerState::Closed
                if !timed_out && self.failures_in_a_row < self.settings.failures =>
            {
                None
            }
            BreakerState::Closed => self.open(now, cause),
            BreakerState::HalfOpen => {
                self.probe_out = false;
                // Each failed probe waits twice as long for the next.
                self.reopenings = self.reopenings.saturating_add(1);
                self.open(now, cause)
            }
            // A call admitted before the breaker opened ended after: nothing new.
            BreakerState::Open => None,
        }
    }

    /// A probe that was not finished (the session closing): let another one go.
    pub fn probe_abandoned(&mut self) {
        self.probe_out = false;
    }

    fn open(&mut self, now: Instant, cause: &str) -> Option<Transition> {
        let backoff =
            Backoff::new(self.settings.backoff, self.settings.backoff_max).delay(self.reopenings);
        self.open_until = Some(now + backoff);
        self.opened += 1;
        let reason = format!("{cause}; next probe in {} ms", backoff.as_millis());
        self.move_to(BreakerState::Open, reason)
    }

    fn move_to(&mut self, to: BreakerState, reason: String) -> Option<Transition> {
        let from = std::mem::replace(&mut self.state, to);
        (from != to).then_some(Transition { from, to, reason })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> BreakerSettings {
        BreakerSettings {
            failures: 3,
            backoff: Duration::from_secs(1),
            backoff_max: Duration::from_secs(4),
        }
    }

    #[test]
    fn repeated_failures_open_it_and_a_timeout_opens_it_at_once() {
        let t0 = Instant::now();
        let mut b = Breaker::new(settings());
        assert_eq!(b.failure(t0, false, "HTTP 500"), None);
        assert_eq!(b.failure(t0, false, "HTTP 500"), None);
        let t = b
            .failure(t0, false, "HTTP 500")
            .expect("third failure opens");
        assert_eq!((t.from, t.to), (BreakerState::Closed, BreakerState::Open));
        assert_eq!(b.admit(t0).0, Admit::Skip);

        let mut b = Breaker::new(settings());
        assert!(b.failure(t0, true, "late").is_some());
        assert_eq!(b.state(), BreakerState::Open);
        assert_eq!(b.opened(), 1);
    }

    #[test]
    fn one_probe_at_a_time_after_the_backoff_and_its_success_closes_it() {
        let t0 = Instant::now();
        let mut b = Breaker::new(settings());
        b.failure(t0, true, "late");
        assert_eq!(b.admit(t0 + Duration::from_millis(999)).0, Admit::Skip);
        let (admit, t) = b.admit(t0 + Duration::from_secs(1));
        assert_eq!(admit, Admit::Probe);
        assert_eq!(t.unwrap().to, BreakerState::HalfOpen);
        // The probe is out: nobody else goes.
        assert_eq!(b.admit(t0 + Duration::from_secs(1)).0, Admit::Skip);
        let t = b.success().expect("the probe's success closes it");
        assert_eq!(
            (t.from, t.to),
            (BreakerState::HalfOpen, BreakerState::Closed)
        );
        assert_eq!(b.admit(t0 + Duration::from_secs(1)).0, Admit::Go);
    }

    #[test]
    fn failed_probes_double_the_backoff_up_to_its_ceiling() {
        let mut now = Instant::now();
        let mut b = Breaker::new(settings());
        b.failure(now, true, "late");
        let mut waits = Vec::new();
        for _ in 0..4 {
            // Bounded: a breaker that never lets a probe go fails here rather than hangs.
            let wait = (0..=40)
                .map(|quarters| Duration::from_millis(250) * quarters)
                .find(|&wait| b.admit(now + wait).0 == Admit::Probe)
                .expect("a probe goes within 10 s");
            waits.push(wait);
            now += wait;
            b.failure(now, true, "late");
        }
        assert_eq!(
            waits,
            [1, 2, 4, 4].map(Duration::from_secs),
            "1 s, then doubling to the 4 s ceiling"
        );
        assert_eq!(b.opened(), 5);
        b.admit(now + Duration::from_secs(4));
        b.success();
        // Closed again, the backoff starts over.
        b.failure(now, true, "late");
        assert_eq!(b.admit(now + Duration::from_secs(1)).0, Admit::Probe);
    }

    #[test]
    fn the_states_have_their_report_names() {
        assert_eq!(BreakerState::Closed.name(), "closed");
        assert_eq!(BreakerState::Open.name(), "open");
        assert_eq!(BreakerState::HalfOpen.name(), "half_open");
    }

    #[test]
    fn an_abandoned_probe_lets_the_next_call_probe() {
        let t0 = Instant::now();
        let mut b = Breaker::new(settings());
        b.failure(t0, true, "late");
        let later = t0 + Duration::from_secs(1);
        assert_eq!(b.admit(later).0, Admit::Probe);
        assert_eq!(b.admit(later).0, Admit::Skip, "one probe at a time");
        b.probe_abandoned();
        assert_eq!(b.state(), BreakerState::HalfOpen);
        assert_eq!(b.admit(later), (Admit::Probe, None), "already half-open");
        assert_eq!(b.admit(later).0, Admit::Skip);
    }
}
