//! The log file's writer thread: `tracing` events are queued and written off the caller's
//! thread, so a slow disk never stalls the runtime or the dashboard. What tracing-appender's
//! `non_blocking` did, with std's channel (it brought the `time` crate and four others for
//! file rotation, which is not used): a bounded queue of 128 000 lines that drops a line
//! rather than wait when full, a flush whenever the queue runs dry, and a guard whose drop
//! writes what is queued (waiting at most about a second).

use std::io::{self, Write};
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError, TrySendError};
use std::time::{Duration, Instant};

/// Lines held while the writer thread catches up (tracing-appender's default).
const QUEUE_LINES: usize = 128_000;
/// How long the guard tries to queue its stop behind a full queue.
const STOP_QUEUE_WAIT: Duration = Duration::from_millis(100);
/// How long the guard waits for the queued lines to be written.
const STOP_FLUSH_WAIT: Duration = Duration::from_secs(1);

enum Msg {
    Line(Vec<u8>),
    Stop,
}

/// The writer the `fmt` layer writes to: each event's text goes to the queue.
#[derive(Clone)]
pub struct NonBlocking {
    queue: SyncSender<Msg>,
}

/// Keep it alive until exit: its drop writes what is still queued.
#[must_use = "dropping the guard stops the log's writer thread"]
pub struct WorkerGuard {
    queue: SyncSender<Msg>,
    done: Receiver<()>,
}

/// Start the writer thread for `out`.
pub fn non_blocking<W: Write + Send + 'static>(out: W) -> io::Result<(NonBlocking, WorkerGuard)> {
    let (queue, lines) = mpsc::sync_channel(QUEUE_LINES);
    let (done_tx, done) = mpsc::channel();
    std::thread::Builder::new()
        .name("log-writer".into())
        .spawn(move || {
            work(out, lines);
            let _ = done_tx.send(());
        })?;
    Ok((
        NonBlocking {
            queue: queue.clone(),
        },
        WorkerGuard { queue, done },
    ))
}

/// Write lines as they come, flushing whenever the queue runs dry, until the guard says stop
/// (after the lines queued before it) or every sender is gone. A failed write loses its line;
/// the writer (`SaysFailure`) says so.
fn work<W: Write>(mut out: W, lines: Receiver<Msg>) {
    while let Ok(Msg::Line(line)) = lines.recv() {
        let _ = out.write_all(&line);
        let stopped = loop {
            match lines.try_recv() {
                Ok(Msg::Line(line)) => {
                    let _ = out.write_all(&line);
                }
                Ok(Msg::Stop) | Err(TryRecvError::Disconnected) => break true,
                Err(TryRecvError::Empty) => break false,
            }
        };
        let _ = out.flush();
        if stopped {
            return;
        }
    }
    let _ = out.flush();
}

impl Write for NonBlocking {
    /// Never blocks and never fails: a line that does not fit in the queue is dropped.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let _ = self.queue.try_send(Msg::Line(buf.to_vec()));
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for NonBlocking {
    type Writer = NonBlocking;

    fn make_writer(&'a self) -> NonBlocking {
        self.clone()
    }
}

impl Drop for WorkerGuard {
    fn drop(&mut self) {
        let until = Instant::now() + STOP_QUEUE_WAIT;
        let mut stop = Msg::Stop;
        loop {
            match self.queue.try_send(stop) {
                Ok(()) => break,
                Err(TrySendError::Disconnected(_)) => return,
                Err(TrySendError::Full(back)) if Instant::now() < until => {
                    stop = back;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(TrySendError::Full(_)) => return,
            }
        }
        let _ = self.done.recv_timeout(STOP_FLUSH_WAIT);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn every_line_queued_before_the_guard_drops_is_written() {
        let out = Shared::default();
        let (mut writer, guard) = non_blocking(out.clone()).unwrap();
        for i in 0..1000 {
            writer.write_all(format!("line {i}\n").as_bytes()).unwrap();
        }
        drop(guard);
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 1000);
        assert!(text.ends_with("line 999\n"));
        // The thread is gone: later lines are dropped, never an error.
        writer.write_all(b"late\n").unwrap();
    }
}
