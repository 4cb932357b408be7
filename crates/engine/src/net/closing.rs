//! The one close-then-verify routine, for systems and for the metrics endpoint alike
//! (ARCHITECTURE.md, "Verified closing").

use super::sockets::{self, Also, OwnedSocket, SocketLedger};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How long a forced close may take after the cut (requests dropped, sockets shut), for a
/// system and for the metrics endpoint alike: a forced close ends within this of its
/// deadline however the sockets behave.
pub const FORCE_BUDGET: std::time::Duration = std::time::Duration::from_millis(60);

/// How a set of connections ended once their owner let go of them.
#[derive(Debug, Clone, Default)]
pub struct Settled {
    /// Still open by either witness after the force.
    pub left: Vec<OwnedSocket>,
    /// Whether sockets had to be shut under their owners.
    pub shut_down: bool,
    /// Why the result could not be verified (a witness could not be asked), if so.
    pub unverified: Option<String>,
}

/// After the owner dropped its pool (or stopped its server):
/// 1. wait until the ledger has seen every connection close, woken by each close, until
///    `settle_by` (or `force`);
/// 2. ask both witnesses once (the OS table also for the sockets `also` picks);
/// 3. shut whatever is open under its owner (shutdown(2): the task holding it sees EOF and
///    drops it), wait for the ledger again until `cut_by`, and ask both witnesses again.
pub async fn settle(
    ledger: &SocketLedger,
    also: Also<'_>,
    settle_by: Instant,
    cut_by: Instant,
    force: &CancellationToken,
) -> Settled {
    ledger.wait_all_closed(settle_by, force).await;
    let seen = sockets::witness(ledger, also);
    if seen.open.is_empty() {
        return Settled {
            left: Vec::new(),
            shut_down: false,
            unverified: seen.unverified,
        };
    }
    for s in &seen.open {
        if let Err(e) = sockets::shutdown_socket(s) {
            tracing::debug!(local = %s.local, remote = %s.remote, error = %e, "shutdown(2) not applied");
        }
    }
    ledger
        .wait_all_closed(cut_by, &CancellationToken::new())
        .await;
    // A socket outside the ledger (a listener, a server-side connection) closes in the task
    // that owns it: give it until `cut_by`, looking again only while something is left.
    let mut seen = sockets::witness(ledger, also);
    while !seen.open.is_empty() && Instant::now() < cut_by {
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        seen = sockets::witness(ledger, also);
    }
    Settled {
        left: seen.open,
        shut_down: true,
        unverified: seen.unverified,
    }
}
