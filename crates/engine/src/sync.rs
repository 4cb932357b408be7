//! Locks that survive a panic elsewhere. A poisoned `Mutex` still holds the last value
//! written; losing it (cycle counts, the fatal error, the end reason) would lose the very
//! report that explains the panic. Where a poisoned lock makes a figure untrustworthy (the
//! connection ledger), the owner checks `is_poisoned` itself and says so.

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
