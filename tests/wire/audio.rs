//! Sound: the chime asset is the generator's output byte for byte and a valid WAV; the
//! no-device and muted paths give at most one notice, never panic, and make playback a
//! no-op; PCM from the voice system turns into rodio samples correctly.
//!
//! Regenerate the asset after changing the generator:
//! `SINGULARIS_WRITE_CHIME=1 cargo test --test wire chime_asset`.

use crate::common::BoundedOutput;
use singularis_tui::audio::{
    self, AudioOut, AudioSettings, AudioState, ChimeOutcome, DeviceChoice, chime,
};
use singularis_tui::clients::ClientError;
use singularis_tui::clients::gemini::{Pcm, decode_pcm};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tracing_subscriber::layer::SubscriberExt;

/// A 16-bit PCM WAV file, written by hound.
fn wav_bytes(sample_rate: u32, channels: u16, samples: &[i16]) -> Result<Vec<u8>, String> {
    let spec = hound::WavSpec {
        channels,
        sample_rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut out = std::io::Cursor::new(Vec::with_capacity(44 + samples.len() * 2));
    let mut w = hound::WavWriter::new(&mut out, spec).map_err(|e| format!("WAV header: {e}"))?;
    for &s in samples {
        w.write_sample(s).map_err(|e| format!("WAV sample: {e}"))?;
    }
    w.finalize().map_err(|e| format!("WAV: {e}"))?;
    Ok(out.into_inner())
}

/// The chime as the asset file holds it.
fn generate_wav() -> Result<Vec<u8>, String> {
    wav_bytes(chime::SAMPLE_RATE, 1, &chime::generate())
}

const ASSET_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/shutdown-chime.wav");

#[test]
fn chime_asset_is_the_generators_output_byte_for_byte() {
    let generated = generate_wav().unwrap();
    if std::env::var_os("SINGULARIS_WRITE_CHIME").is_some() {
        std::fs::write(ASSET_PATH, &generated).expect("write the chime asset");
        return;
    }
    let committed = std::fs::read(ASSET_PATH).expect("assets/shutdown-chime.wav");
    assert!(
        committed == generated,
        "assets/shutdown-chime.wav differs from generate_wav(); regenerate it"
    );
    assert!(
        chime::ASSET == generated.as_slice(),
        "the embedded asset is stale"
    );
}

#[test]
fn chime_is_short_clean_and_never_clips() {
    let s = chime::generate();
    let secs = s.len() as f64 / f64::from(chime::SAMPLE_RATE);
    assert!(secs > 0.5 && secs <= 1.0, "{secs} s");
    let peak = s.iter().map(|v| v.unsigned_abs()).max().unwrap();
    assert!((15_000..=17_000).contains(&peak), "peak {peak}");
    // Starts and ends in silence: no click.
    assert!(s[0].unsigned_abs() < 50 && s[s.len() - 1].unsigned_abs() < 50);
    // Deterministic.
    assert_eq!(chime::generate(), s);
}

#[test]
fn chime_wav_reads_back_with_our_reader_and_hounds() {
    let wav = generate_wav().unwrap();
    assert_eq!(&wav[..4], b"RIFF");
    assert_eq!(wav.len(), 44 + chime::generate().len() * 2);
    let pcm = chime::decode_wav(&wav).unwrap();
    assert_eq!((pcm.sample_rate, pcm.channels), (chime::SAMPLE_RATE, 1));
    assert_eq!(pcm.samples, chime::generate());

    // hound's WAV reader, a second implementation, agrees on format and every sample.
    let mut reader =
        hound::WavReader::new(std::io::Cursor::new(wav)).expect("hound reads the chime");
    let spec = reader.spec();
    assert_eq!((spec.sample_rate, spec.channels), (chime::SAMPLE_RATE, 1));
    assert_eq!(
        (spec.bits_per_sample, spec.sample_format),
        (16, hound::SampleFormat::Int)
    );
    let theirs: Vec<i16> = reader
        .samples::<i16>()
        .map(|s| s.expect("a sample"))
        .collect();
    assert_eq!(theirs, pcm.samples);
}

#[test]
fn wav_reader_skips_unknown_chunks_and_rejects_junk() {
    let samples = [0i16, 1000, -1000, 32767];
    let plain = wav_bytes(24_000, 1, &samples).unwrap();
    // Insert an odd-sized LIST chunk (padded to even) between fmt and data.
    let mut with_list = plain[..36].to_vec();
    with_list.extend_from_slice(b"LIST");
    with_list.extend_from_slice(&3u32.to_le_bytes());
    with_list.extend_from_slice(b"abc\0");
    with_list.extend_from_slice(&plain[36..]);
    let riff_len = (with_list.len() - 8) as u32;
    with_list[4..8].copy_from_slice(&riff_len.to_le_bytes());
    let pcm = chime::decode_wav(&with_list).unwrap();
    assert_eq!(pcm.samples, samples);
    assert_eq!(pcm.sample_rate, 24_000);

    let refused = |bytes: &[u8]| {
        chime::decode_wav(bytes)
            .map(|p| p.samples.len())
            .unwrap_err()
    };
    assert_eq!(refused(b""), "not a RIFF/WAVE file");
    assert_eq!(refused(b"RIFF\0\0\0\0WAVEjunk"), "no data chunk");
    let mut truncated = plain.clone();
    truncated.truncate(50);
    assert_eq!(refused(&truncated), "a chunk runs past the end of the file");
    let mut eight_bit = plain;
    eight_bit[34] = 8;
    assert_eq!(
        refused(&eight_bit),
        "unsupported WAV format (tag 1, 8 bits, 1 channels)"
    );
}

/// Counts WARN events whose message mentions sound.
struct SoundWarnings(Arc<AtomicUsize>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for SoundWarnings {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        struct Msg(String);
        impl tracing::field::Visit for Msg {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message" {
                    self.0 = format!("{value:?}");
                }
            }
        }
        if *event.metadata().level() == tracing::Level::WARN {
            let mut m = Msg(String::new());
            event.record(&mut m);
            if m.0.contains("sound") {
                self.0.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

fn speech() -> Pcm {
    Pcm {
        sample_rate: 24_000,
        channels: 1,
        samples: vec![0, 8000, -8000, 0],
    }
}

#[tokio::test]
async fn no_device_gives_one_notice_and_playback_is_a_no_op() {
    let warnings = Arc::new(AtomicUsize::new(0));
    let subscriber = tracing_subscriber::registry().with(SoundWarnings(warnings.clone()));
    let _guard = tracing::subscriber::set_default(subscriber);

    let out = AudioOut::open(AudioSettings {
        enabled: true,
        device: DeviceChoice::NoDevice,
    })
    .await;
    assert_eq!(out.state(), AudioState::NoDevice);
    let notice = out.notice().expect("a notice for the user").to_string();
    assert!(notice.starts_with("sound off"), "{notice}");
    for _ in 0..5 {
        assert!(!out.play(&speech()));
    }
    assert_eq!((out.played(), out.dropped()), (0, 0));
    let started = Instant::now();
    let report = out.close(true).await;
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(report.state, AudioState::NoDevice);
    assert_eq!(report.chime, ChimeOutcome::Skipped);
    assert_eq!(report.notice.as_deref(), Some(notice.as_str()));
    assert!(report.closed);
    // Closing twice is harmless; playing after close does nothing.
    out.close(true).await;
    assert!(!out.play(&speech()));
    assert_eq!(out.state(), AudioState::Closed);
    assert_eq!(warnings.load(Ordering::Relaxed), 1, "exactly one notice");
}

#[tokio::test]
async fn muted_opens_nothing_and_says_nothing() {
    let out = AudioOut::open(AudioSettings {
        enabled: false,
        device: DeviceChoice::Default,
    })
    .await;
    assert_eq!(out.state(), AudioState::Muted);
    assert!(out.notice().is_none());
    assert!(!out.play(&speech()));
    let report = out.close(true).await;
    assert_eq!(
        (report.state, report.chime),
        (AudioState::Muted, ChimeOutcome::Skipped)
    );
}

#[tokio::test]
async fn the_default_device_opens_or_says_why_never_panics() {
    // Whatever this machine has (CI: nothing), opening is bounded and closing is clean.
    let started = Instant::now();
    let out = AudioOut::open(AudioSettings {
        enabled: true,
        device: DeviceChoice::Default,
    })
    .await;
    assert!(started.elapsed() < audio::OPEN_BUDGET + Duration::from_secs(1));
    match out.state() {
        AudioState::On => assert!(out.notice().is_none()),
        AudioState::NoDevice | AudioState::BuiltWithout => assert!(out.notice().is_some()),
        other => panic!("unexpected state {other:?}"),
    }
    let silent = Pcm {
        sample_rate: 24_000,
        channels: 1,
        samples: vec![0; 240],
    };
    let _ = out.play(&silent);
    // No chime here: a developer's speakers need not ring on every test run.
    let report = out.close(false).await;
    assert!(report.closed);
    assert_eq!(report.chime, ChimeOutcome::Skipped);
}

#[test]
fn pcm_becomes_rodio_samples() {
    assert_eq!(
        audio::to_f32_samples(&[0, 16384, -16384, i16::MIN, i16::MAX]),
        vec![0.0, 0.5, -0.5, -1.0, 32767.0 / 32768.0]
    );
    use rodio::Source;
    let buffer = audio::samples_buffer(&Pcm {
        sample_rate: 24_000,
        channels: 1,
        samples: vec![100; 2400],
    })
    .unwrap();
    assert_eq!(buffer.sample_rate().get(), 24_000);
    assert_eq!(buffer.total_duration(), Some(Duration::from_millis(100)));
    assert!(
        audio::samples_buffer(&Pcm {
            sample_rate: 0,
            channels: 1,
            samples: vec![1]
        })
        .is_none()
    );
    assert!(
        audio::samples_buffer(&Pcm {
            sample_rate: 24_000,
            channels: 0,
            samples: vec![1]
        })
        .is_none()
    );
    assert!(
        audio::samples_buffer(&Pcm {
            sample_rate: 24_000,
            channels: 1,
            samples: vec![]
        })
        .is_none()
    );
}

#[test]
fn voice_pcm_from_the_wire_decodes() {
    use base64::Engine;
    // What the sandbox's voice system sends: 24 kHz mono s16le, base64.
    let raw = singularis_tui::sandbox::pcm::synthesize("I attack the draugr", "Kore");
    let b64 = base64::engine::general_purpose::STANDARD.encode(&raw);
    let pcm = decode_pcm("audio/L16;codec=pcm;rate=24000", &b64).unwrap();
    assert_eq!(pcm.sample_rate, 24_000);
    assert_eq!(pcm.samples.len(), raw.len() / 2);
    assert_eq!(pcm.samples[1], i16::from_le_bytes([raw[2], raw[3]]));
    assert!((240..=610).contains(&pcm.duration_ms()));
    // Rate from the MIME type; a missing rate means Gemini's 24 kHz.
    assert_eq!(
        decode_pcm("audio/pcm;rate=16000", "AAAAAA==")
            .unwrap()
            .sample_rate,
        16_000
    );
    assert_eq!(
        decode_pcm("audio/L16", "AAAAAA==").unwrap().sample_rate,
        24_000
    );
    let refused = |mime: &str, b64: &str| match decode_pcm(mime, b64) {
        Err(ClientError::Protocol(why)) => why,
        other => panic!("{mime} {b64:?}: {other:?}"),
    };
    assert!(
        refused("audio/L16", "not base64!").starts_with("audio is not base64: "),
        "{}",
        refused("audio/L16", "not base64!")
    );
    assert_eq!(
        refused("audio/wav", "AAAAAA=="),
        r#"unexpected audio type "audio/wav""#
    );
    assert_eq!(refused("audio/L16", "AAAA"), "odd number of PCM bytes");
    assert!(Path::new(ASSET_PATH).exists());
}

/// The whole sound path in the real binary, on ALSA's `null` device (a sound card that
/// swallows samples, so nothing is heard): speech is played each cycle, the chime at the
/// clean shutdown, the device is closed, and ALSA's own chatter never reaches stderr.
#[cfg(all(target_os = "linux", feature = "audio"))]
#[test]
fn on_a_null_device_speech_and_the_chime_play() {
    let home = tempfile::tempdir().unwrap();
    std::fs::write(
        home.path().join(".asoundrc"),
        "pcm.!default { type null }\nctl.!default { type hw card 0 }\n",
    )
    .unwrap();
    let report = home.path().join("report.json");
    let out = crate::common::cmd_with_sound(home.path())
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path())
        .env_remove(audio::DEVICE_ENV)
        .args(["--headless", "--cycles", "3", "--log-file"])
        .arg(home.path().join("log.txt"))
        .arg("--report")
        .arg(&report)
        .bounded_output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("ALSA"), "ALSA wrote to stderr: {stderr}");
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let a = &r["audio"];
    assert_eq!(a["state"], "on", "{a}");
    assert_eq!(a["speech_played"], 3, "{a}");
    assert_eq!(a["chime"], "played", "{a}");
    assert_eq!(a["closed"], true);
    assert!(a["notice"].is_null());
}
