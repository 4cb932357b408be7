//! Locks that survive a panic elsewhere. A poisoned `Mutex` still holds the last value
//! written; losing it (cycle counts, the fatal error, the end reason) would lose the very
//! report that explains the panic. Where a poisoned lock makes a figure untrustworthy (the
//! connection ledger), the owner checks `is_poisoned` itself and says so. Also: a sleep
//! that ends on time, for the grace deadline.

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

/// Sleep until `deadline`, on time. tokio's timers round a deadline up to their next
/// millisecond tick, so a grace period ended up to 1 ms late; the last stretch here is a
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
