//! The device side of [`AudioOut`](super::AudioOut): a thread that owns rodio's sink and
//! players and does what the async side asks, so that nothing blocking (opening, waiting
//! on the sound card, dropping the stream) ever runs on the runtime.

use super::Counters;
use rodio::buffer::SamplesBuffer;
use rodio::{DeviceSinkBuilder, Player};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

enum Command {
    Speech(SamplesBuffer),
    StopSpeech,
    /// Play on a player of its own and answer `true` once it finished, `false` if cut at
    /// the deadline.
    PlayAndWait(SamplesBuffer, Duration, oneshot::Sender<bool>),
    Close(oneshot::Sender<()>),
}

pub(super) struct Device {
    commands: mpsc::Sender<Command>,
    pub description: String,
}

impl Device {
    /// Open the default output on a new thread; `Err` (the cause, in words) when there is
    /// no usable device or it does not open within `budget`.
    pub async fn open(counters: Arc<Counters>, budget: Duration) -> Result<Device, String> {
        let (ready_tx, ready_rx) = oneshot::channel::<Result<String, String>>();
        let (commands, rx) = mpsc::channel::<Command>();
        let spawned = std::thread::Builder::new()
            .name("audio-out".into())
            .spawn(move || run(ready_tx, rx, counters));
        if let Err(e) = spawned {
            return Err(format!("cannot start the audio thread: {e}"));
        }
        match tokio::time::timeout(budget, ready_rx).await {
            Ok(Ok(Ok(description))) => Ok(Device {
                commands,
                description,
            }),
            Ok(Ok(Err(cause))) => Err(cause),
            Ok(Err(_)) => Err("the audio thread ended while opening the device".into()),
            // The thread sees the closed channel when (if) the device opens, and gives it up.
            Err(_) => Err(format!(
                "the audio device did not open within {} ms",
                budget.as_millis()
            )),
        }
    }

    /// Queue a speech clip; `false` if the device thread is gone.
    pub fn play(&self, buffer: SamplesBuffer) -> bool {
        self.commands.send(Command::Speech(buffer)).is_ok()
    }

    pub(crate) fn stop_speech(&self) {
        let _ = self.commands.send(Command::StopSpeech);
    }

    /// Play and wait until done; bounded by `budget` (plus a little for the thread to answer).
    pub(crate) async fn play_and_wait(&self, buffer: SamplesBuffer, budget: Duration) -> bool {
        let (tx, rx) = oneshot::channel();
        if self
            .commands
            .send(Command::PlayAndWait(buffer, budget, tx))
            .is_err()
        {
            return false;
        }
        matches!(
            tokio::time::timeout(budget + Duration::from_millis(200), rx).await,
            Ok(Ok(true))
        )
    }

    /// Stop everything and drop the sink; `true` if the thread confirmed within `budget`.
    pub async fn close(self, budget: Duration) -> bool {
        let (tx, rx) = oneshot::channel();
        if self.commands.send(Command::Close(tx)).is_err() {
            return true;
        }
        matches!(tokio::time::timeout(budget, rx).await, Ok(Ok(())))
    }
}

/// The device thread: open, report, then serve commands until closed or abandoned.
fn run(
    ready: oneshot::Sender<Result<String, String>>,
    commands: mpsc::Receiver<Command>,
    counters: Arc<Counters>,
) {
    // ALSA prints its complaints ("cannot find card '0'") straight to stderr, where they
    // would land on the user's terminal and before a script's first expected line: keep
    // them for the log instead. The user gets one notice from us.
    let (opened, backend_said) = stderr_capture::around(DeviceSinkBuilder::open_default_sink);
    if !backend_said.trim().is_empty() {
        tracing::debug!(output = %backend_said.trim(), "the audio backend wrote to stderr while opening");
    }
    let mut sink = match opened {
        Ok(s) => s,
        Err(e) => {
            let _ = ready.send(Err(describe(&e)));
            return;
        }
    };
    sink.log_on_drop(false);
    let config = sink.config();
    let description = format!(
        "{} Hz, {} channel(s)",
        config.sample_rate(),
        config.channel_count()
    );
    if ready.send(Ok(description)).is_err() {
        // Nobody waits any more (the open took too long): give the device back.
        return;
    }
    let speech = Player::connect_new(sink.mixer());
    while let Ok(cmd) = commands.recv() {
        match cmd {
            Command::Speech(buffer) => {
                if speech.len() >= super::MAX_QUEUED_CLIPS {
                    counters.dropped.fetch_add(1, Ordering::Relaxed);
                } else {
                    speech.append(buffer);
                    counters.played.fetch_add(1, Ordering::Relaxed);
                }
            }
            Command::StopSpeech => speech.clear(),
            Command::PlayAndWait(buffer, budget, done) => {
                let player = Player::connect_new(sink.mixer());
                player.append(buffer);
                let started = Instant::now();
                while !player.empty() && started.elapsed() < budget {
                    std::thread::sleep(Duration::from_millis(10));
                }
                let finished = player.empty();
                player.stop();
                let _ = done.send(finished);
            }
            Command::Close(done) => {
                speech.stop();
                drop(speech);
                drop(sink);
                let _ = done.send(());
                return;
            }
        }
    }
    // Every handle dropped without a close: the sink goes with this thread.
}

/// The error and its cause on one line ("Could not find any output device: ...").
fn describe(e: &rodio::DeviceSinkError) -> String {
    let mut out = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        out.push_str(": ");
        out.push_str(&s.to_string());
        src = s.source();
    }
    out
}

/// Runs a function with the process's stderr (fd 2) sent into a pipe, and returns what was
/// written there. The swap is process-wide, so it is kept to the device opening, which
/// happens at start-up before anything else prints.
#[cfg(unix)]
mod stderr_capture {
    use std::io::Read;
    use std::os::fd::{FromRawFd, OwnedFd};

    pub fn around<T>(f: impl FnOnce() -> T) -> (T, String) {
        let Some((saved, read_end, write_end)) = redirect() else {
            return (f(), String::new());
        };
        // Drain the pipe as it fills, so a chatty backend can never block on a full pipe.
        let reader = std::thread::Builder::new()
            .name("audio-stderr".into())
            .spawn(move || {
                // Keep the first 16 KiB; read (and drop) the rest so the writer never blocks.
                let mut kept = Vec::new();
                let mut pipe = std::fs::File::from(read_end);
                let mut buf = [0u8; 4096];
                while let Ok(n) = pipe.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    let room = (16 * 1024usize).saturating_sub(kept.len());
                    kept.extend_from_slice(&buf[..n.min(room)]);
                }
                String::from_utf8_lossy(&kept).into_owned()
            });
        let out = f();
        // SAFETY: `saved` is a descriptor we duplicated from fd 2 and still own.
        unsafe {
            libc::dup2(std::os::fd::AsRawFd::as_raw_fd(&saved), 2);
        }
        // With fd 2 restored and our end closed, the reader sees end-of-file.
        drop(write_end);
        let said = match reader {
            Ok(r) => r.join().unwrap_or_default(),
            Err(_) => String::new(),
        };
        (out, said)
    }

    /// Duplicate fd 2, make a pipe and point fd 2 at its write end:
    /// (the saved stderr, the read end, the write end).
    fn redirect() -> Option<(OwnedFd, OwnedFd, OwnedFd)> {
        let mut fds = [0i32; 2];
        // SAFETY: plain descriptor calls; every descriptor created is owned right away.
        unsafe {
            let saved = libc::dup(2);
            if saved < 0 {
                return None;
            }
            let saved = OwnedFd::from_raw_fd(saved);
            if libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) != 0 {
                return None;
            }
            let (read_end, write_end) =
                (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1]));
            if libc::dup2(fds[1], 2) < 0 {
                return None;
            }
            Some((saved, read_end, write_end))
        }
    }
}

#[cfg(not(unix))]
mod stderr_capture {
    pub fn around<T>(f: impl FnOnce() -> T) -> (T, String) {
        (f(), String::new())
    }
}
