//! How a session is asked to end: the quit signal (keys, `--cycles`, a failed task) and the
//! process signals (SIGINT, SIGTERM, SIGHUP; a second one forces).

use super::report::Reason;
use crate::sync::LockExt;
use anyhow::{Context, Result};
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

/// Ways a session is asked to end; the first one wins.
#[derive(Clone)]
pub struct QuitSignal {
    token: CancellationToken,
    reason: Arc<Mutex<Option<Reason>>>,
    /// A process signal came, first or second: whoever shows the shutdown hurries (a service
    /// manager waits for the exit, not for an animation).
    signalled: CancellationToken,
}

impl Default for QuitSignal {
    fn default() -> Self {
        QuitSignal {
            token: CancellationToken::new(),
            reason: Arc::new(Mutex::new(None)),
            signalled: CancellationToken::new(),
        }
    }
}

impl QuitSignal {
    pub fn quit(&self, reason: Reason) {
        self.reason.locked().get_or_insert(reason);
        self.token.cancel();
    }
    pub fn reason(&self) -> Reason {
        self.reason.locked().unwrap_or(Reason::Quit)
    }
    pub async fn wait(&self) {
        self.token.cancelled().await
    }
    pub(crate) fn is_set(&self) -> bool {
        self.token.is_cancelled()
    }
    /// The terminal went away (input closed, a draw failed). Its usual cause is a hangup
    /// (the window closed), whose SIGHUP arrives with it: give the signal a moment to be
    /// the reason; without one, losing the terminal is an error.
    pub fn terminal_lost(&self) {
        let quit = self.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(HANGUP_GRACE, quit.signalled()).await;
            quit.quit(Reason::Error);
        });
    }

    /// Until a process signal (SIGINT, SIGTERM, SIGHUP) came.
    pub async fn signalled(&self) {
        self.signalled.cancelled().await
    }
}

/// How long a lost terminal waits for the SIGHUP that usually comes with it (the kernel
/// sends it before the reads fail; this covers the signal's hand-over to the listener).
const HANGUP_GRACE: std::time::Duration = std::time::Duration::from_millis(100);

pub(super) struct AbortOnDrop(pub(super) tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Listen for SIGINT, SIGTERM and SIGHUP: the first asks to quit, the next forces.
pub fn spawn_signal_listener(
    quit: QuitSignal,
    force: CancellationToken,
) -> Result<tokio::task::JoinHandle<()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut hup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
    Ok(tokio::spawn(async move {
        loop {
            let name = tokio::select! {
                _ = int.recv() => "SIGINT",
                _ = term.recv() => "SIGTERM",
                _ = hup.recv() => "SIGHUP",
            };
            quit.signalled.cancel();
            if quit.is_set() {
                tracing::warn!(signal = name, "second request: force-closing everything");
                force.cancel();
            } else {
                tracing::info!(signal = name, "quit requested");
                quit.quit(Reason::Signal);
            }
        }
    }))
}
