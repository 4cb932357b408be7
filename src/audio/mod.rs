//! Sound: the voice system's speech and the shutdown chime, played with rodio.
//!
//! [`AudioOut`] is a cheap handle on one output. Muted (`--mute`, `audio.enabled = false`)
//! it opens no device at all. With no device (servers, SSH, CI) it gives one notice (a
//! `tracing` warning and [`AudioOut::notice`] for the screen) and every call is a no-op;
//! it never panics. The device lives on a thread of its own (cpal streams are not `Send`
//! everywhere, and opening or dropping one may block), so the async side only sends it
//! commands and waits with deadlines. Built without the `audio` feature, everything
//! here still compiles and reports "built without audio".
//!
//! ALSA writes warnings to stderr when it opens: open the output before a TUI takes the
//! screen.

use crate::sync::LockExt;
pub mod chime;
#[cfg(feature = "audio")]
mod device;

use crate::clients::gemini::Pcm;
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Environment variable that forces the "no audio device" path (`none`), for machines where
/// a device exists but must stay silent, and for tests.
pub const DEVICE_ENV: &str = "SINGULARIS_AUDIO_DEVICE";

/// How long opening the device may take before sound is given up for the session.
pub const OPEN_BUDGET: Duration = Duration::from_secs(3);
/// Longest wait for the chime to finish at shutdown (it lasts under a second).
#[cfg(feature = "audio")]
pub(crate) const CHIME_BUDGET: Duration = Duration::from_millis(1500);
/// Longest wait for the device to close.
#[cfg(feature = "audio")]
pub(crate) const CLOSE_BUDGET: Duration = Duration::from_millis(500);
/// Speech clips waiting to play beyond this are dropped: the game must not fall behind
/// its own voice.
#[cfg(feature = "audio")]
pub(crate) const MAX_QUEUED_CLIPS: usize = 2;

/// Which device to open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceChoice {
    /// The system's default output (or the first that works).
    Default,
    /// Behave as if the machine had no audio device.
    NoDevice,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioSettings {
    pub enabled: bool,
    pub device: DeviceChoice,
}

impl AudioSettings {
    /// From the config, with [`DEVICE_ENV`]`=none` forcing the no-device path.
    pub fn from_config(config: &crate::config::AudioConfig) -> AudioSettings {
        let forced_off = std::env::var(DEVICE_ENV).is_ok_and(|v| v.eq_ignore_ascii_case("none"));
        AudioSettings {
            enabled: config.enabled,
            device: if forced_off {
                DeviceChoice::NoDevice
            } else {
                DeviceChoice::Default
            },
        }
    }
}

/// Where the output stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AudioState {
    /// A device is open and plays.
    On,
    /// Sound was turned off by the user; no device was opened.
    Muted,
    /// Sound was wanted but no device could be opened.
    NoDevice,
    /// This binary was built without the `audio` feature.
    BuiltWithout,
    /// Closed at shutdown.
    Closed,
}

impl AudioState {
    pub fn name(self) -> &'static str {
        match self {
            AudioState::On => "on",
            AudioState::Muted => "muted",
            AudioState::NoDevice => "off: no audio device",
            AudioState::BuiltWithout => "off: built without audio",
            AudioState::Closed => "closed",
        }
    }
}

/// What happened to the chime at shutdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, strum::IntoStaticStr)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum ChimeOutcome {
    Played,
    /// Started but still playing at the deadline; cut.
    Cut,
    /// Not a clean shutdown, or no sound.
    Skipped,
}

impl ChimeOutcome {
    /// As in the report.
    pub fn name(self) -> &'static str {
        self.into()
    }
}

/// The audio step of the shutdown, for the session report.
#[derive(Debug, Clone, Serialize)]
pub struct AudioReport {
    /// How the output stood before closing (`on`, `muted`, `no_device`, `built_without`).
    pub state: AudioState,
    pub notice: Option<String>,
    pub speech_played: u64,
    pub speech_dropped: u64,
    pub chime: ChimeOutcome,
    /// Time to play the chime and close the device.
    pub close_ms: f64,
    /// The device thread ended within its deadline (or there was none).
    pub closed: bool,
}

#[derive(Default)]
struct Counters {
    played: AtomicU64,
    dropped: AtomicU64,
}

struct Inner {
    state: Mutex<AudioState>,
    notice: Option<String>,
    counters: Arc<Counters>,
    #[cfg(feature = "audio")]
    device: Mutex<Option<device::Device>>,
}

/// A handle on the sound output; clones share it.
#[derive(Clone)]
pub struct AudioOut {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for AudioOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AudioOut")
            .field("state", &self.state())
            .field("notice", &self.inner.notice)
            .finish()
    }
}

impl AudioOut {
    fn without_device(state: AudioState, notice: Option<String>) -> AudioOut {
        AudioOut {
            inner: Arc::new(Inner {
                state: Mutex::new(state),
                notice,
                counters: Arc::default(),
                #[cfg(feature = "audio")]
                device: Mutex::new(None),
            }),
        }
    }

    /// Silent output: plays nothing, opens nothing (what a muted session and tests use).
    pub fn muted() -> AudioOut {
        AudioOut::without_device(AudioState::Muted, None)
    }

    /// Open the output as `settings` say. Never fails: without a device, sound is off and
    /// [`notice`](Self::notice) says why (logged once as a warning).
    pub async fn open(settings: AudioSettings) -> AudioOut {
        if !settings.enabled {
            tracing::info!("sound muted: no audio device opened");
            return AudioOut::muted();
        }
        if settings.device == DeviceChoice::NoDevice {
            return AudioOut::no_device(format!("no audio device ({DEVICE_ENV}=none)"));
        }
        AudioOut::open_device().await
    }

    #[cfg(feature = "audio")]
    async fn open_device() -> AudioOut {
        let counters = Arc::new(Counters::default());
        match device::Device::open(counters.clone(), OPEN_BUDGET).await {
            Ok(dev) => {
                tracing::info!(device = %dev.description, "sound on");
                AudioOut {
                    inner: Arc::new(Inner {
                        state: Mutex::new(AudioState::On),
                        notice: None,
                        counters,
                        device: Mutex::new(Some(dev)),
                    }),
                }
            }
            Err(cause) => AudioOut::no_device(cause),
        }
    }

    #[cfg(not(feature = "audio"))]
    async fn open_device() -> AudioOut {
        let notice = "sound off: built without audio".to_string();
        tracing::info!("{notice}");
        AudioOut::without_device(AudioState::BuiltWithout, Some(notice))
    }

    fn no_device(cause: String) -> AudioOut {
        let notice = format!("sound off: {cause}");
        tracing::warn!("{notice}");
        AudioOut::without_device(AudioState::NoDevice, Some(notice))
    }

    pub fn state(&self) -> AudioState {
        self.inner.state.locked().to_owned()
    }

    pub(crate) fn is_on(&self) -> bool {
        self.state() == AudioState::On
    }

    /// The one thing to tell the user about sound, if anything (no device, built without).
    pub fn notice(&self) -> Option<&str> {
        self.inner.notice.as_deref()
    }

    /// Speech clips sent to the device so far.
    pub fn played(&self) -> u64 {
        self.inner.counters.played.load(Ordering::Relaxed)
    }

    /// Speech clips dropped because too many were waiting.
    pub fn dropped(&self) -> u64 {
        self.inner.counters.dropped.load(Ordering::Relaxed)
    }

    /// Queue `pcm` for playing; returns at once. `false` when sound is off (a no-op) or the
    /// clip is empty.
    pub fn play(&self, pcm: &Pcm) -> bool {
        if !self.is_on() {
            return false;
        }
        #[cfg(feature = "audio")]
        if let Some(buffer) = samples_buffer(pcm)
            && let dev = self.inner.device.locked()
            && let Some(dev) = dev.as_ref()
        {
            return dev.play(buffer);
        }
        let _ = pcm;
        false
    }

    /// Close the output: stop speech, play the chime if `chime` (a clean shutdown) and
    /// sound is on, wait for it (bounded), then drop the device (bounded). Idempotent.
    pub async fn close(&self, chime: bool) -> AudioReport {
        let started = Instant::now();
        let state = self.state();
        let (outcome, closed) = self.close_device(chime).await;
        let took = started.elapsed();
        {
            let mut s = self.inner.state.locked();
            *s = AudioState::Closed;
        }
        let report = AudioReport {
            state,
            notice: self.inner.notice.clone(),
            speech_played: self.played(),
            speech_dropped: self.dropped(),
            chime: outcome,
            close_ms: took.as_secs_f64() * 1e3,
            closed,
        };
        tracing::info!(
            state = state.name(),
            chime = %report.chime.name(),
            ms = crate::lifecycle::log_ms(took),
            "audio output closed"
        );
        report
    }
}

impl AudioOut {
    /// Stop speech, play the chime (if asked), drop the device: (chime outcome, closed in time).
    #[cfg(feature = "audio")]
    async fn close_device(&self, chime: bool) -> (ChimeOutcome, bool) {
        let Some(dev) = self.inner.device.locked().take() else {
            return (ChimeOutcome::Skipped, true);
        };
        dev.stop_speech();
        let mut outcome = ChimeOutcome::Skipped;
        if chime {
            match chime::asset_pcm().ok().and_then(|p| samples_buffer(&p)) {
                Some(buffer) => {
                    outcome = if dev.play_and_wait(buffer, CHIME_BUDGET).await {
                        ChimeOutcome::Played
                    } else {
                        ChimeOutcome::Cut
                    };
                }
                None => tracing::warn!("the shutdown chime asset is not a WAV this player reads"),
            }
        }
        let closed = dev.close(CLOSE_BUDGET).await;
        if !closed {
            tracing::warn!(
                "the audio device did not close within {} ms",
                CLOSE_BUDGET.as_millis()
            );
        }
        (outcome, closed)
    }

    #[cfg(not(feature = "audio"))]
    async fn close_device(&self, _chime: bool) -> (ChimeOutcome, bool) {
        (ChimeOutcome::Skipped, true)
    }
}

/// Signed 16-bit samples as rodio's `f32` samples in [-1, 1).
pub fn to_f32_samples(samples: &[i16]) -> Vec<f32> {
    samples.iter().map(|&s| f32::from(s) / 32768.0).collect()
}

/// A PCM clip as a rodio source; `None` for an empty clip or a zero rate or channel count.
pub fn samples_buffer(pcm: &Pcm) -> Option<rodio::buffer::SamplesBuffer> {
    let channels = std::num::NonZeroU16::new(pcm.channels)?;
    let rate = std::num::NonZeroU32::new(pcm.sample_rate)?;
    if pcm.samples.is_empty() {
        return None;
    }
    Some(rodio::buffer::SamplesBuffer::new(
        channels,
        rate,
        to_f32_samples(&pcm.samples),
    ))
}
