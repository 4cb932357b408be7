//! The spend limit (`[budget]`, `--budget-usd`; ARCHITECTURE.md, "Spend limit"). Before each
//! paid call its worst cost is reserved: the request's input at its most (its body's bytes
//! over three: English runs about four characters a token, and a request's JSON carries less
//! text than bytes) plus the whole output cap, at the model's
//! price. A call whose worst cost would cross a limit is not made. What a system has spent is
//! its answers' own usage at the same prices, so the limit holds by construction: spent plus
//! what is reserved never passes it, and no answer costs more than its reservation.

pub use crate::config::BudgetConfig;
use crate::config::Price;
use crate::systems::SystemId;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Share of a limit at which the dashboard warns.
pub const WARN_AT: f64 = 0.8;
const HOUR: Duration = Duration::from_secs(3600);

/// A call that does not fit now: waits (fits once held money settles) or is refused.
enum Verdict {
    Wait(Refusal),
    Refused(Refusal),
}

/// Why a call was not made.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refusal {
    #[error(
        "the session's ${limit:.4} limit: this call could cost up to ${worst:.4}, ${left:.4} is left"
    )]
    Session { limit: f64, worst: f64, left: f64 },
    #[error(
        "the ${limit:.4} per hour limit: this call could cost up to ${worst:.4}, ${left:.4} is left this hour"
    )]
    Hour { limit: f64, worst: f64, left: f64 },
    #[error(
        "its own ${limit:.4} limit: this call could cost up to ${worst:.4}, ${left:.4} is left"
    )]
    System { limit: f64, worst: f64, left: f64 },
    #[error(
        "{model} has no price ([pricing]), so what it spends is unknown; set its price or budget.allow_unpriced = true"
    )]
    Unpriced { model: String },
}

/// The budget as the dashboard, the report and viewers see it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BudgetSnapshot {
    pub spent_usd: f64,
    pub limit_usd: Option<f64>,
    /// Spent over the last hour, and its limit.
    pub hour_usd: f64,
    pub hour_limit_usd: Option<f64>,
    /// The pace of the last hour (or of the session, when younger), in $ per hour.
    pub burn_usd_per_hour: f64,
    /// At that pace, until the session's limit; `None` without one or while nothing burns.
    pub time_left_s: Option<f64>,
    /// At 80 % of a limit or more.
    pub warn: bool,
    /// The session's limit stopped a call: the session ends.
    pub exhausted: bool,
    /// Calls not made, per system.
    pub refused: BTreeMap<SystemId, u64>,
    /// The last refusal, in words.
    pub last_refusal: Option<String>,
    /// Systems whose spend is unknown (no price, allowed by `allow_unpriced`).
    pub unknown: Vec<SystemId>,
}

pub struct Budget {
    /// Itself, for the holds it hands out.
    this: std::sync::Weak<Budget>,
    cfg: BudgetConfig,
    /// Money held was released: a waiting call may fit now.
    released: tokio::sync::Notify,
    started: Instant,
    inner: Mutex<Inner>,
    exhausted: CancellationToken,
}

impl std::fmt::Debug for Budget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Budget").field("cfg", &self.cfg).finish()
    }
}

#[derive(Default)]
struct Inner {
    spent_by: BTreeMap<SystemId, f64>,
    reserved_by: BTreeMap<SystemId, f64>,
    /// Each rise of the spend, for the rolling hour.
    window: VecDeque<(Instant, f64)>,
    refused: BTreeMap<SystemId, u64>,
    last_refusal: Option<String>,
    unknown: BTreeSet<SystemId>,
}

impl Inner {
    fn spent(&self) -> f64 {
        self.spent_by.values().sum()
    }
    fn reserved(&self) -> f64 {
        self.reserved_by.values().sum()
    }
    fn hour(&mut self, now: Instant) -> f64 {
        while self
            .window
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) >= HOUR)
        {
            self.window.pop_front();
        }
        self.window.iter().map(|(_, c)| c).sum()
    }
}

fn lock(m: &Mutex<Inner>) -> std::sync::MutexGuard<'_, Inner> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The worst an answer can cost: `body_bytes / 3` input tokens (text runs about four
/// characters a token, and a request's JSON holds fewer characters of text than bytes) and the
/// whole output cap, at `price`.
pub fn worst_cost(price: &Price, body_bytes: usize, output_cap: u32) -> f64 {
    let input = (body_bytes as u64).div_ceil(3);
    // Written to a cache, input costs the most (1.25 ×): the worst case.
    price.cost(&crate::clients::Usage {
        input,
        output: u64::from(output_cap),
        cache_write: input,
        ..Default::default()
    })
}

impl Budget {
    pub fn new(cfg: BudgetConfig) -> Arc<Budget> {
        Arc::new_cyclic(|this| Budget {
            this: this.clone(),
            released: tokio::sync::Notify::new(),
            cfg,
            started: Instant::now(),
            inner: Mutex::default(),
            exhausted: CancellationToken::new(),
        })
    }

    pub fn config(&self) -> &BudgetConfig {
        &self.cfg
    }

    /// Fires when the session's limit stopped a call.
    pub fn exhausted(&self) -> CancellationToken {
        self.exhausted.clone()
    }

    /// Before a paid call of `id` whose worst cost is `worst` (`None`: its model has no
    /// price): a hold on that much, released by [`Hold::settle`] or when dropped. A call that
    /// fits once the money other calls hold is settled waits for them (until `until`); one
    /// that cannot fit is refused, and if the session's limit refused it, the session is
    /// told ([`Budget::exhausted`]).
    pub async fn reserve(
        self: &Arc<Self>,
        id: SystemId,
        model: &str,
        worst: Option<f64>,
        until: Option<tokio::time::Instant>,
    ) -> Result<Hold, Refusal> {
        loop {
            let released = self.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            let wait = match self.try_reserve(id, model, worst) {
                Ok(hold) => return Ok(hold),
                Err(Verdict::Refused(r)) => return Err(r),
                Err(Verdict::Wait(r)) => r,
            };
            let timer = async {
                match until {
                    Some(t) => tokio::time::sleep_until(t).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = released => {}
                // Out of time while others held the money: this call is not made, but the
                // budget is not spent.
                _ = timer => return Err(self.refuse(id, wait, false)),
            }
        }
    }

    fn refuse(&self, id: SystemId, r: Refusal, for_good: bool) -> Refusal {
        let mut st = lock(&self.inner);
        *st.refused.entry(id).or_default() += 1;
        st.last_refusal = Some(format!("{id}: {r}"));
        tracing::warn!(system = %id, reason = %r, "budget: call not made");
        if for_good && matches!(r, Refusal::Session { .. }) {
            self.exhausted.cancel();
        }
        r
    }

    fn try_reserve(&self, id: SystemId, model: &str, worst: Option<f64>) -> Result<Hold, Verdict> {
        let now = Instant::now();
        let mut st = lock(&self.inner);
        let hold = |amount| Hold {
            budget: self.me(),
            id,
            amount,
        };
        let Some(worst) = worst else {
            if !self.cfg.allow_unpriced {
                drop(st);
                let r = Refusal::Unpriced {
                    model: model.to_string(),
                };
                return Err(Verdict::Refused(self.refuse(id, r, true)));
            }
            st.unknown.insert(id);
            return Ok(hold(0.0));
        };
        // Each limit: refused when the call cannot fit even once what others hold is
        // settled; told to wait when it can.
        let (spent, reserved) = (st.spent(), st.reserved());
        let hour = st.hour(now);
        let mine = st.spent_by.get(&id).copied().unwrap_or(0.0);
        let mine_held = st.reserved_by.get(&id).copied().unwrap_or(0.0);
        type Kind = fn(f64, f64, f64) -> Refusal;
        let checks: [(Option<f64>, f64, f64, Kind); 3] = [
            (self.cfg.max_usd, spent, reserved, |limit, worst, left| {
                Refusal::Session { limit, worst, left }
            }),
            (
                self.cfg.max_usd_per_hour,
                hour,
                reserved,
                |limit, worst, left| Refusal::Hour { limit, worst, left },
            ),
            (
                self.cfg.systems.get(&id).copied(),
                mine,
                mine_held,
                |limit, worst, left| Refusal::System { limit, worst, left },
            ),
        ];
        for (limit, used, held, kind) in checks {
            let Some(limit) = limit else { continue };
            let r = kind(limit, worst, (limit - used - held).max(0.0));
            if used + worst > limit {
                drop(st);
                return Err(Verdict::Refused(self.refuse(id, r, true)));
            }
            if used + held + worst > limit {
                return Err(Verdict::Wait(r));
            }
        }
        *st.reserved_by.entry(id).or_default() += worst;
        Ok(hold(worst))
    }

    fn me(&self) -> Arc<Budget> {
        self.this
            .upgrade()
            .expect("a budget is only used through its Arc")
    }

    /// `id` has spent `total` so far, by its answers' usage (never less than before).
    fn spend(&self, st: &mut Inner, id: SystemId, total: f64) {
        let before = st.spent_by.get(&id).copied().unwrap_or(0.0);
        if total > before {
            st.spent_by.insert(id, total);
            st.window.push_back((Instant::now(), total - before));
        }
    }

    pub fn snapshot(&self) -> BudgetSnapshot {
        let now = Instant::now();
        let mut st = lock(&self.inner);
        let spent = st.spent();
        let hour = st.hour(now);
        let age = now.duration_since(self.started).min(HOUR).as_secs_f64();
        // A pace needs a few seconds of history to mean anything.
        let burn = if age >= 5.0 { hour / age * 3600.0 } else { 0.0 };
        let time_left_s = match self.cfg.max_usd {
            Some(limit) if burn > 0.0 => Some(((limit - spent).max(0.0) / burn) * 3600.0),
            _ => None,
        };
        let near = |used: f64, limit: Option<f64>| limit.is_some_and(|l| used >= WARN_AT * l);
        let warn = near(spent, self.cfg.max_usd)
            || near(hour, self.cfg.max_usd_per_hour)
            || self
                .cfg
                .systems
                .iter()
                .any(|(id, l)| near(st.spent_by.get(id).copied().unwrap_or(0.0), Some(*l)));
        BudgetSnapshot {
            spent_usd: spent,
            limit_usd: self.cfg.max_usd,
            hour_usd: hour,
            hour_limit_usd: self.cfg.max_usd_per_hour,
            burn_usd_per_hour: burn,
            time_left_s,
            warn,
            exhausted: self.exhausted.is_cancelled(),
            refused: st.refused.clone(),
            last_refusal: st.last_refusal.clone(),
            unknown: st.unknown.iter().copied().collect(),
        }
    }
}

/// Money held for one call until its answer's cost is known.
#[derive(Debug)]
pub struct Hold {
    budget: Arc<Budget>,
    id: SystemId,
    amount: f64,
}

impl Hold {
    /// The call is over and its system has spent `total` in all (its usage at its price):
    /// counted and released in one step, so no other call sees the money twice or not at all.
    pub fn settle(mut self, total: Option<f64>) {
        let mut st = lock(&self.budget.inner);
        if let Some(total) = total {
            self.budget.spend(&mut st, self.id, total);
        }
        release(&mut st, self.id, self.amount);
        drop(st);
        self.amount = 0.0;
        self.wake();
    }
}

fn release(st: &mut Inner, id: SystemId, amount: f64) {
    if let Some(r) = st.reserved_by.get_mut(&id) {
        *r = (*r - amount).max(0.0);
    }
}

impl Hold {
    fn wake(&self) {
        self.budget.released.notify_waiters();
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        if self.amount > 0.0 {
            release(&mut lock(&self.budget.inner), self.id, self.amount);
            self.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRICE: Price = Price {
        input: 1.0,
        output: 10.0,
        cached_input: None,
    };

    fn budget(max: f64) -> Arc<Budget> {
        Budget::new(BudgetConfig {
            max_usd: Some(max),
            ..Default::default()
        })
    }

    /// A reservation that waits at most 50 ms for money others hold.
    async fn reserve(b: &Arc<Budget>, id: SystemId, worst: Option<f64>) -> Result<Hold, Refusal> {
        let until = tokio::time::Instant::now() + Duration::from_millis(50);
        b.reserve(id, "m", worst, Some(until)).await
    }

    #[tokio::test]
    async fn a_call_waits_for_held_money_and_one_that_cannot_fit_ends_the_session() {
        let b = budget(0.01);
        // 3000 bytes → at most 1000 input tokens ($0.00125 written to a cache) + 256 output
        // ($0.00256).
        let worst = worst_cost(&PRICE, 3000, 256);
        assert!((worst - 0.00381).abs() < 1e-9, "{worst}");
        let h1 = reserve(&b, SystemId::CLAUDE_CLIENT, Some(worst))
            .await
            .unwrap();
        let h2 = reserve(&b, SystemId::OPENAI_CLIENT, Some(worst))
            .await
            .unwrap();
        // Two held ($0.00762): a third fits only once they settle; out of time, it is not
        // made, but the budget is not spent.
        let r = reserve(&b, SystemId::GEMINI_CLIENT, Some(worst)).await;
        assert!(matches!(r, Err(Refusal::Session { .. })), "{r:?}");
        assert!(!b.exhausted().is_cancelled());
        // A waiting call goes as soon as money is released.
        let waiting = {
            let b = b.clone();
            tokio::spawn(async move {
                b.reserve(SystemId::GEMINI_CLIENT, "m", Some(worst), None)
                    .await
            })
        };
        tokio::task::yield_now().await;
        h1.settle(Some(0.002));
        let h3 = waiting.await.unwrap().unwrap();
        h2.settle(Some(0.001));
        h3.settle(Some(0.004));
        // $0.007 spent: a call that could cost $0.00381 can never fit: the session ends.
        let r = reserve(&b, SystemId::GEMINI_CLIENT, Some(worst)).await;
        assert!(matches!(r, Err(Refusal::Session { .. })), "{r:?}");
        assert!(b.exhausted().is_cancelled());
        let s = b.snapshot();
        assert!((s.spent_usd - 0.007).abs() < 1e-12, "{s:?}");
        assert_eq!(s.refused.get(&SystemId::GEMINI_CLIENT), Some(&2));
        assert!(s.exhausted);
    }

    #[tokio::test]
    async fn spend_is_the_systems_own_total_and_never_counted_twice() {
        let b = budget(1.0);
        let h = reserve(&b, SystemId::CLAUDE_CLIENT, Some(0.1))
            .await
            .unwrap();
        h.settle(Some(0.05));
        let h = reserve(&b, SystemId::CLAUDE_CLIENT, Some(0.1))
            .await
            .unwrap();
        // The system's total after its second answer.
        h.settle(Some(0.08));
        let dropped = reserve(&b, SystemId::CLAUDE_CLIENT, Some(0.1))
            .await
            .unwrap();
        drop(dropped);
        let s = b.snapshot();
        assert!((s.spent_usd - 0.08).abs() < 1e-12, "{s:?}");
        assert!(!s.warn);
        // 80 % of the limit warns.
        let h = reserve(&b, SystemId::OPENAI_CLIENT, Some(0.1))
            .await
            .unwrap();
        h.settle(Some(0.75));
        assert!(b.snapshot().warn);
    }

    #[tokio::test]
    async fn unpriced_models_are_refused_under_a_limit_unless_allowed() {
        let b = budget(1.0);
        let r = reserve(&b, SystemId::HYPERBOLIC_CLIENT, None).await;
        assert!(matches!(r, Err(Refusal::Unpriced { .. })), "{r:?}");
        assert!(!b.exhausted().is_cancelled(), "one system, not the session");
        let b = Budget::new(BudgetConfig {
            max_usd: Some(1.0),
            allow_unpriced: true,
            ..Default::default()
        });
        let h = reserve(&b, SystemId::HYPERBOLIC_CLIENT, None)
            .await
            .unwrap();
        h.settle(None);
        assert_eq!(b.snapshot().unknown, vec![SystemId::HYPERBOLIC_CLIENT]);
    }

    #[tokio::test]
    async fn per_system_and_per_hour_limits_stop_their_calls_only() {
        let b = Budget::new(BudgetConfig {
            max_usd_per_hour: Some(0.5),
            systems: [(SystemId::CLAUDE_CLIENT, 0.1)].into(),
            ..Default::default()
        });
        reserve(&b, SystemId::CLAUDE_CLIENT, Some(0.08))
            .await
            .unwrap()
            .settle(Some(0.08));
        let r = reserve(&b, SystemId::CLAUDE_CLIENT, Some(0.05)).await;
        assert!(matches!(r, Err(Refusal::System { .. })), "{r:?}");
        reserve(&b, SystemId::OPENAI_CLIENT, Some(0.4))
            .await
            .unwrap()
            .settle(Some(0.4));
        let r = reserve(&b, SystemId::OPENAI_CLIENT, Some(0.05)).await;
        assert!(matches!(r, Err(Refusal::Hour { .. })), "{r:?}");
        assert!(!b.exhausted().is_cancelled());
    }
}
