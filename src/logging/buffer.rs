//! The most recent `tracing` events, kept in memory for the dashboard's log pane.
//! `logging` feeds it from a layer beside the file log; the dashboard reads copies.

use std::collections::VecDeque;
use std::sync::{Mutex, OnceLock};
use tokio::sync::watch;
use tracing::Level;

/// One event as the log pane shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// Local wall-clock time, `HH:MM:SS`.
    pub time: String,
    pub level: Level,
    /// The message, then the event's other fields as `name=value`.
    pub text: String,
}

/// A bounded ring of recent events plus a counter that bumps on every new one, so the
/// dashboard can sleep until there is something to show.
pub(crate) struct LogBuffer {
    lines: Mutex<VecDeque<LogLine>>,
    capacity: usize,
    changed: watch::Sender<u64>,
}

/// Enough history to scroll back through a busy minute without holding much memory.
pub(crate) const DEFAULT_CAPACITY: usize = 1000;

impl LogBuffer {
    pub fn new(capacity: usize) -> LogBuffer {
        LogBuffer {
            lines: Mutex::new(VecDeque::with_capacity(capacity.min(64))),
            capacity: capacity.max(1),
            changed: watch::channel(0).0,
        }
    }

    /// The process-wide buffer the logging layer writes to (tracing's subscriber is
    /// process-wide too).
    pub(crate) fn global() -> &'static LogBuffer {
        static GLOBAL: OnceLock<LogBuffer> = OnceLock::new();
        GLOBAL.get_or_init(|| LogBuffer::new(DEFAULT_CAPACITY))
    }

    pub fn push(&self, line: LogLine) {
        {
            let mut lines = self.lines.lock().unwrap_or_else(|p| p.into_inner());
            if lines.len() == self.capacity {
                lines.pop_front();
            }
            lines.push_back(line);
        }
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A copy of everything held, oldest first.
    pub fn lines(&self) -> Vec<LogLine> {
        self.lines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect()
    }

    /// Changes whenever a line is pushed.
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(n: usize) -> LogLine {
        LogLine {
            time: "00:00:00".into(),
            level: Level::INFO,
            text: format!("event {n}"),
        }
    }

    #[test]
    fn keeps_only_the_most_recent_lines() {
        let buf = LogBuffer::new(3);
        for n in 0..5 {
            buf.push(line(n));
        }
        let texts: Vec<String> = buf.lines().into_iter().map(|l| l.text).collect();
        assert_eq!(texts, ["event 2", "event 3", "event 4"]);
    }

    #[test]
    fn a_push_wakes_subscribers() {
        let buf = LogBuffer::new(3);
        let mut rx = buf.subscribe();
        assert!(!rx.has_changed().unwrap());
        buf.push(line(0));
        assert!(rx.has_changed().unwrap());
        rx.mark_unchanged();
        assert!(!rx.has_changed().unwrap());
    }
}
