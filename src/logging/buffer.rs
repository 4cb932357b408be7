//! The most recent `tracing` events, kept in memory for the dashboard's log pane.
//! `logging` feeds it from a layer beside the file log; the dashboard reads copies.

use std::collections::VecDeque;
use std::sync::{Mutex, OnceLock};
use tokio::sync::{broadcast, watch};
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
/// dashboard can sleep until there is something to show, and a bounded broadcast of each
/// new line for the control endpoint's viewers (who never hold it up: one that falls
/// behind lags, and is resynced).
pub(crate) struct LogBuffer {
    lines: Mutex<VecDeque<LogLine>>,
    capacity: usize,
    changed: watch::Sender<u64>,
    feed: broadcast::Sender<LogLine>,
}

/// New lines held for the slowest viewer before it lags.
const FEED: usize = 256;
/// The most verbose level followers get: below it, sending a line to a viewer would log
/// lines of its own (hyper's "flushed N bytes" at debug), without end.
const FEED_LEVEL: Level = Level::INFO;

/// Enough history to scroll back through a busy minute without holding much memory.
pub(crate) const DEFAULT_CAPACITY: usize = 1000;

impl LogBuffer {
    pub fn new(capacity: usize) -> LogBuffer {
        LogBuffer {
            lines: Mutex::new(VecDeque::with_capacity(capacity.min(64))),
            capacity: capacity.max(1),
            changed: watch::channel(0).0,
            feed: broadcast::channel(FEED).0,
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
            // Under the lock: a follower's tail and its feed (`follow`) neither miss nor
            // repeat a line. Nobody following is fine.
            if line.level <= FEED_LEVEL {
                let _ = self.feed.send(line.clone());
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

    /// The last `n` lines held at info and above (oldest first), and every such line pushed
    /// after them.
    pub(crate) fn follow(&self, n: usize) -> (Vec<LogLine>, broadcast::Receiver<LogLine>) {
        let lines = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        let mut tail: Vec<LogLine> = lines
            .iter()
            .rev()
            .filter(|l| l.level <= FEED_LEVEL)
            .take(n)
            .cloned()
            .collect();
        tail.reverse();
        (tail, self.feed.subscribe())
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
    fn a_follower_gets_the_tail_then_each_new_line_once() {
        let buf = LogBuffer::new(10);
        for n in 0..5 {
            buf.push(line(n));
        }
        let debug = |text: &str| LogLine {
            level: Level::DEBUG,
            text: text.into(),
            ..line(0)
        };
        buf.push(debug("flushed 10 bytes"));
        let (tail, mut feed) = buf.follow(2);
        let texts: Vec<String> = tail.into_iter().map(|l| l.text).collect();
        assert_eq!(texts, ["event 3", "event 4"], "info and above");
        buf.push(debug("flushed 20 bytes"));
        buf.push(line(5));
        assert_eq!(feed.try_recv().unwrap().text, "event 5");
        assert!(feed.try_recv().is_err(), "nothing else");
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
