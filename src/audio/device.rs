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
            Ok(Ok(Ok(description))) => Ok(Device { commands, description }),
            Ok(Ok(Err(cause))) => Err(cause),
            Ok(Err(_)) => Err("the audio thread ended while opening the device".into()),
            // The thread sees the closed channel when (if) the device opens, and gives it up.
            Err(_) => Err(format!("the audio device did not open within {} ms", budget.as_millis())),
        }
    }

    /// Queue a speech clip; `false` if the device thread is gone.
    pub fn play(&self, buffer: SamplesBuffer) -> bool {
        self.commands.send(Command::Speech(buffer)).is_ok()
    }

    pub fn stop_speech(&self) {
        let _ = self.commands.send(Command::StopSpeech);
    }

    /// Play and wait until done; bounded by `budget` (plus a little for the thread to answer).
    pub async fn play_and_wait(&self, buffer: SamplesBuffer, budget: Duration) -> bool {
        let (tx, rx) = oneshot::channel();
        if self.commands.send(Command::PlayAndWait(buffer, budget, tx)).is_err() {
            return false;
        }
        matches!(tokio::time::timeout(budget + Duration::from_millis(200), rx).await, Ok(Ok(true)))
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
fn run(ready: oneshot::Sender<Result<String, String>>, commands: mpsc::Receiver<Command>, counters: Arc<Counters>) {
    let mut sink = match DeviceSinkBuilder::open_default_sink() {
        Ok(s) => s,
        Err(e) => {
            let _ = ready.send(Err(describe(&e)));
            return;
        }
    };
    sink.log_on_drop(false);
    let config = sink.config();
    let description = format!("{} Hz, {} channel(s)", config.sample_rate(), config.channel_count());
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
