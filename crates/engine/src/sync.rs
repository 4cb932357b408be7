//! Locks that survive a panic elsewhere. A poisoned `Mutex` still holds the last value
//! written; losing it (cycle counts, the fatal error, the end reason) would lose the very
//! report that explains the panic. Where a poisoned lock makes a figure untrustworthy (the
//! connection ledger), the owner checks `is_poisoned` itself and says so. Also: waits that
//! end on time (the sandbox's paced answers, the grace deadline's cut).

use std::sync::{Mutex, MutexGuard, PoisonError};

pub trait LockExt<T> {
    /// The guard, poisoned or not.
    fn locked(&self) -> MutexGuard<'_, T>;
}

impl<T> LockExt<T> for Mutex<T> {
    fn locked(&self) -> MutexGuard<'_, T> {
        self.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Sleep until `deadline`, on time (the sandbox's service times). tokio's timers round a
/// deadline up to their next millisecond tick, up to 1 ms late; the last stretch here is a
/// thread's sleep (a high-resolution timer, tens of µs late), on the blocking pool. Only the
/// final 2 ms take a thread, so a wait that ends early (dropped first) costs nothing extra.
pub async fn sleep_until_precisely(deadline: tokio::time::Instant) {
    const COARSE_EARLY: std::time::Duration = std::time::Duration::from_millis(2);
    if let Some(coarse) = deadline.checked_sub(COARSE_EARLY) {
        tokio::time::sleep_until(coarse).await;
    }
    let rest = deadline.saturating_duration_since(tokio::time::Instant::now());
    if rest.is_zero() {
        return;
    }
    if tokio::task::spawn_blocking(move || {
        // Linux lets a sleeping thread wake up to its timer slack late (50 µs by default):
        // 1 ns here, on this pool thread, so the wake-up is as early as the timer allows.
        // SAFETY: PR_SET_TIMERSLACK takes a plain integer and changes only this thread.
        unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong) };
        std::thread::sleep(rest)
    })
    .await
    .is_err()
    {
        // No blocking pool (the runtime is shutting down): the coarse timer still ends it.
        tokio::time::sleep_until(deadline).await;
    }
}

/// Wait until `deadline` and go on at it, not after: the grace deadline's cut, where every
/// microsecond past it is shutdown time. A timer's wake-up (tokio's ticks a millisecond
/// apart, or a thread's sleep as in [`sleep_until_precisely`]) reaches a parked worker tens
/// of µs late, so the last 2 ms are spent on the worker, yielding between looks at the
/// clock: other tasks run meanwhile, and the code after this runs within a few µs of the
/// deadline. Up to 2 ms of one core, and only while something still waits on the deadline.
pub async fn wake_at(deadline: tokio::time::Instant) {
    const SPIN: std::time::Duration = std::time::Duration::from_millis(2);
    if let Some(coarse) = deadline.checked_sub(SPIN) {
        tokio::time::sleep_until(coarse).await;
    }
    while tokio::time::Instant::now() < deadline {
        tokio::task::yield_now().await;
    }
}

#[cfg(test)]
mod tests {
    /// `wake_at` goes on at its deadline and never before it, whether the deadline is
    /// inside the last stretch it spins through or beyond it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn wake_at_never_returns_before_its_deadline() {
        for ms in [0u64, 1, 3, 7] {
            let deadline = tokio::time::Instant::now() + std::time::Duration::from_millis(ms);
            super::wake_at(deadline).await;
            assert!(
                tokio::time::Instant::now() >= deadline,
                "woke before {ms} ms"
            );
        }
    }
}
