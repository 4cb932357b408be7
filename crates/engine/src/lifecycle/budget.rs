//! The spend limit (`[budget]`, `--budget-usd`; ARCHITECTURE.md, "Spend limit"). Before each
//! paid call its worst cost is reserved: the request's input at its most (its body's bytes
//! over two, more than any tokenizer makes of text) plus the whole output cap, at the model's
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
    cfg: BudgetConfig,
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

/// The worst an answer can cost: `body_bytes / 2` input tokens (no tokenizer makes more of
/// text) and the whole output cap, at `price`.
pub fn worst_cost(price: &Price, body_bytes: usize, output_cap: u32) -> f64 {
    price.cost((body_bytes as u64).div_ceil(2), u64::from(output_cap))
}

impl Budget {
    pub fn new(cfg: BudgetConfig) -> Arc<Budget> {
        Arc::new(Budget {
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
    /// price): a hold on that much, released by [`Hold::settle`] or when dropped.
    pub fn reserve(
        self: &Arc<Self>,
        id: SystemId,
        model: &str,
        worst: Option<f64>,
    ) -> Result<Hold, Refusal> {
        let now = Instant::now();
        let mut st = lock(&self.inner);
        let refused = |st: &mut Inner, r: Refusal| {
            *st.refused.entry(id).or_default() += 1;
            st.last_refusal = Some(format!("{id}: {r}"));
            tracing::warn!(system = %id, reason = %r, "budget: call not made");
            r
        };
        let Some(worst) = worst else {
            if !self.cfg.allow_unpriced {
                return Err(refused(
                    &mut st,
                    Refusal::Unpriced {
                        model: model.to_string(),
                    },
                ));
            }
            st.unknown.insert(id);
            return Ok(Hold {
                budget: self.clone(),
                id,
                amount: 0.0,
            });
        };
        let committed = st.spent() + st.reserved();
        if let Some(limit) = self.cfg.max_usd
            && committed + worst > limit
        {
            let left = (limit - committed).max(0.0);
            let r = refused(&mut st, Refusal::Session { limit, worst, left });
            self.exhausted.cancel();
            return Err(r);
        }
        if let Some(limit) = self.cfg.max_usd_per_hour {
            let in_hour = st.hour(now) + st.reserved();
            if in_hour + worst > limit {
                let left = (limit - in_hour).max(0.0);
                return Err(refused(&mut st, Refusal::Hour { limit, worst, left }));
            }
        }
        if let Some(&limit) = self.cfg.systems.get(&id) {
            let mine = st.spent_by.get(&id).copied().unwrap_or(0.0)
                + st.reserved_by.get(&id).copied().unwrap_or(0.0);
            if mine + worst > limit {
                let left = (limit - mine).max(0.0);
                return Err(refused(&mut st, Refusal::System { limit, worst, left }));
            }
        }
        *st.reserved_by.entry(id).or_default() += worst;
        Ok(Hold {
            budget: self.clone(),
            id,
            amount: worst,
        })
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
        self.amount = 0.0;
    }
}

fn release(st: &mut Inner, id: SystemId, amount: f64) {
    if let Some(r) = st.reserved_by.get_mut(&id) {
        *r = (*r - amount).max(0.0);
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        if self.amount > 0.0 {
            release(&mut lock(&self.budget.inner), self.id, self.amount);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRICE: Price = Price {
        input: 1.0,
        output: 10.0,
    };

    fn budget(max: f64) -> Arc<Budget> {
        Budget::new(BudgetConfig {
            max_usd: Some(max),
            ..Default::default()
        })
    }

    #[test]
    fn a_call_that_could_cross_the_limit_is_not_made_and_the_session_is_told() {
        let b = budget(0.01);
        // 2000 bytes → at most 1000 input tokens ($0.001) + 256 output ($0.00256).
        let worst = worst_cost(&PRICE, 2000, 256);
        assert!((worst - 0.00356).abs() < 1e-9);
        let h1 = b.reserve(SystemId::ClaudeClient, "m", Some(worst)).unwrap();
        let h2 = b.reserve(SystemId::OpenaiClient, "m", Some(worst)).unwrap();
        // Two held ($0.00712): a third could cross $0.01.
        let r = b.reserve(SystemId::GeminiClient, "m", Some(worst));
        assert!(matches!(r, Err(Refusal::Session { .. })), "{r:?}");
        assert!(b.exhausted().is_cancelled());
        // Answers cost less than they could: settled, the money held is released.
        h1.settle(Some(0.002));
        h2.settle(Some(0.001));
        let s = b.snapshot();
        assert!((s.spent_usd - 0.003).abs() < 1e-12, "{s:?}");
        assert_eq!(s.refused.get(&SystemId::GeminiClient), Some(&1));
        assert!(s.exhausted);
    }

    #[test]
    fn spend_is_the_systems_own_total_and_never_counted_twice() {
        let b = budget(1.0);
        let h = b.reserve(SystemId::ClaudeClient, "m", Some(0.1)).unwrap();
        h.settle(Some(0.05));
        let h = b.reserve(SystemId::ClaudeClient, "m", Some(0.1)).unwrap();
        // The system's total after its second answer.
        h.settle(Some(0.08));
        let dropped = b.reserve(SystemId::ClaudeClient, "m", Some(0.1)).unwrap();
        drop(dropped);
        let s = b.snapshot();
        assert!((s.spent_usd - 0.08).abs() < 1e-12, "{s:?}");
        assert!(!s.warn);
        // 80 % of the limit warns.
        let h = b.reserve(SystemId::OpenaiClient, "m", Some(0.1)).unwrap();
        h.settle(Some(0.75));
        assert!(b.snapshot().warn);
    }

    #[test]
    fn unpriced_models_are_refused_under_a_limit_unless_allowed() {
        let b = budget(1.0);
        let r = b.reserve(SystemId::HyperbolicClient, "Qwen/Qwen3", None);
        assert!(matches!(r, Err(Refusal::Unpriced { .. })), "{r:?}");
        assert!(!b.exhausted().is_cancelled(), "one system, not the session");
        let b = Budget::new(BudgetConfig {
            max_usd: Some(1.0),
            allow_unpriced: true,
            ..Default::default()
        });
        let h = b
            .reserve(SystemId::HyperbolicClient, "Qwen/Qwen3", None)
            .unwrap();
        h.settle(None);
        assert_eq!(b.snapshot().unknown, vec![SystemId::HyperbolicClient]);
    }

    #[test]
    fn per_system_and_per_hour_limits_stop_their_calls_only() {
        let b = Budget::new(BudgetConfig {
            max_usd_per_hour: Some(0.5),
            systems: [(SystemId::ClaudeClient, 0.1)].into(),
            ..Default::default()
        });
        b.reserve(SystemId::ClaudeClient, "m", Some(0.08))
            .unwrap()
            .settle(Some(0.08));
        let r = b.reserve(SystemId::ClaudeClient, "m", Some(0.05));
        assert!(matches!(r, Err(Refusal::System { .. })), "{r:?}");
        b.reserve(SystemId::OpenaiClient, "m", Some(0.4))
            .unwrap()
            .settle(Some(0.4));
        let r = b.reserve(SystemId::OpenaiClient, "m", Some(0.05));
        assert!(matches!(r, Err(Refusal::Hour { .. })), "{r:?}");
        assert!(!b.exhausted().is_cancelled());
    }
}
