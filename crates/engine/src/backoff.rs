//! The one doubling backoff: a wait that starts at `base` and doubles each time, up to `cap`.
//! Retries of a request (`clients::wire`), a viewer's reconnects (`attach::feed`), the
//! control endpoint's slowing of wrong tokens and a breaker's reopenings all wait by it;
//! each says what counts as its first wait.

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The first wait.
    pub base: Duration,
    /// No wait is longer.
    pub cap: Duration,
}

impl Backoff {
    pub const fn new(base: Duration, cap: Duration) -> Backoff {
        Backoff { base, cap }
    }

    /// The wait after `n` doublings: `base × 2ⁿ`, at most `cap` (never overflows).
    pub fn delay(&self, n: u32) -> Duration {
        self.base
            .saturating_mul(1u32.checked_shl(n).unwrap_or(u32::MAX))
            .min(self.cap)
    }

    /// Every wait in turn: `base`, `2 × base`, … then `cap` for ever.
    pub fn iter(self) -> impl Iterator<Item = Duration> {
        (0u32..).map(move |n| self.delay(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_from_the_base_up_to_the_cap_without_overflow() {
        let b = Backoff::new(Duration::from_millis(250), Duration::from_secs(5));
        assert_eq!(b.delay(0), Duration::from_millis(250));
        assert_eq!(b.delay(1), Duration::from_millis(500));
        assert_eq!(b.delay(4), Duration::from_secs(4));
        assert_eq!(b.delay(5), Duration::from_secs(5));
        assert_eq!(b.delay(31), Duration::from_secs(5));
        assert_eq!(b.delay(u32::MAX), Duration::from_secs(5));
        let first: Vec<_> = b.iter().take(3).collect();
        assert_eq!(first, [250, 500, 1000].map(Duration::from_millis));
        let huge = Backoff::new(Duration::MAX, Duration::MAX);
        assert_eq!(huge.delay(3), Duration::MAX);
    }
}
