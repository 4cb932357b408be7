//! The shutdown chime: three bell-like notes rising through a C major chord (G5, C6, E6),
//! 0.9 s, mono, 16-bit, 44.1 kHz. `assets/shutdown-chime.wav` is exactly what hound writes
//! for [`generate`]`()` (tests/wire/audio.rs checks it byte for byte and rewrites it; hound is
//! a dev-dependency: the binary only reads WAV, with [`decode_wav`]); the binary embeds the
//! asset and plays that.
//!
//! Only IEEE additions, multiplications and divisions go into the samples (sine and
//! exponential by series, oscillators by rotation), never the platform's `sin`/`exp`, whose
//! last bit may differ between C libraries: the same bytes come out on every machine.
//!
//! Licence: the generator and the WAV it writes are dedicated to the public domain (CC0 1.0),
//! see `assets/README.md`.

use crate::clients::gemini::Pcm;

pub const SAMPLE_RATE: u32 = 44_100;
/// Length of the chime.
pub(crate) const DURATION_MS: u32 = 900;
/// The committed asset, as the binary plays it.
pub const ASSET: &[u8] = include_bytes!("../../assets/shutdown-chime.wav");

/// (start in seconds, frequency in Hz): G5, C6, E6.
const NOTES: [(f64, f64); 3] = [(0.0, 783.99), (0.11, 1046.50), (0.22, 1318.51)];
/// (multiple of the note's frequency, relative amplitude): a warm, mostly harmonic bell.
const PARTIALS: [(f64, f64); 3] = [(1.0, 1.0), (2.0, 0.22), (3.0, 0.07)];
/// Decay time constant of a note's fundamental; overtones fade faster.
const DECAY_S: f64 = 0.28;
const ATTACK_S: f64 = 0.004;
/// Everything fades to silence over the last stretch, so the clip ends at zero.
const FADE_OUT_S: f64 = 0.06;
/// Peak level, as a fraction of full scale: clearly audible, far from clipping.
const PEAK: f64 = 0.5;
use std::f64::consts::TAU;

/// The chime's samples (mono, [`SAMPLE_RATE`]).
pub fn generate() -> Vec<i16> {
    let rate = f64::from(SAMPLE_RATE);
    let len = (SAMPLE_RATE as usize) * DURATION_MS as usize / 1000;
    let mut mix = vec![0.0f64; len];
    for (start_s, freq) in NOTES {
        let start = (start_s * rate) as usize;
        let attack = (ATTACK_S * rate) as usize;
        for (multiple, level) in PARTIALS {
            let step = TAU * freq * multiple / rate;
            let (step_sin, step_cos) = (sin_series(step), cos_series(step));
            let decay = exp_series(-multiple / (DECAY_S * rate));
            // A phasor turned by `step` each sample: its imaginary part is the sine wave.
            let (mut re, mut im) = (1.0f64, 0.0f64);
            let mut envelope = level;
            for (n, out) in mix.iter_mut().enumerate().skip(start) {
                let k = n - start;
                let ramp = if k < attack {
                    k as f64 / attack as f64
                } else {
                    1.0
                };
                *out += im * envelope * ramp;
                let next_re = re * step_cos - im * step_sin;
                im = im * step_cos + re * step_sin;
                re = next_re;
                envelope *= decay;
            }
        }
    }
    let fade = (FADE_OUT_S * rate) as usize;
    for (i, v) in mix.iter_mut().enumerate() {
        let left = len - 1 - i;
        if left < fade {
            *v *= left as f64 / fade as f64;
        }
    }
    let peak = mix
        .iter()
        .fold(0.0f64, |m, v| if v.abs() > m { v.abs() } else { m });
    let scale = if peak > 0.0 {
        PEAK * 32767.0 / peak
    } else {
        0.0
    };
    mix.iter().map(|v| round_to_i16(v * scale)).collect()
}

fn round_to_i16(v: f64) -> i16 {
    // Round half away from zero, by hand: `f64::round` is exact too, this just says so.
    let r = if v >= 0.0 {
        (v + 0.5) as i64
    } else {
        -((-v + 0.5) as i64)
    };
    r.clamp(i64::from(i16::MIN), i64::from(i16::MAX)) as i16
}

/// sin(x) for |x| < 1 by its Taylor series (to well below f64 precision there).
fn sin_series(x: f64) -> f64 {
    let (mut term, mut sum) = (x, x);
    for k in 1..12 {
        term *= -x * x / ((2 * k) as f64 * (2 * k + 1) as f64);
        sum += term;
    }
    sum
}

fn cos_series(x: f64) -> f64 {
    let (mut term, mut sum) = (1.0, 1.0);
    for k in 1..12 {
        term *= -x * x / ((2 * k - 1) as f64 * (2 * k) as f64);
        sum += term;
    }
    sum
}

/// e^x for small |x| by its Taylor series.
fn exp_series(x: f64) -> f64 {
    let (mut term, mut sum) = (1.0, 1.0);
    for k in 1..16 {
        term *= x / k as f64;
        sum += term;
    }
    sum
}

/// Read a 16-bit PCM WAV (any chunk order, unknown chunks skipped). Our own: hound 3.5
/// does not skip the pad byte after an odd-sized chunk, which the RIFF format requires.
pub fn decode_wav(bytes: &[u8]) -> Result<Pcm, String> {
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err("not a RIFF/WAVE file".into());
    }
    let mut format: Option<(u16, u16, u32, u16)> = None;
    let mut pos = 12;
    while pos + 8 <= bytes.len() {
        let id = &bytes[pos..pos + 4];
        let size = u32::from_le_bytes([
            bytes[pos + 4],
            bytes[pos + 5],
            bytes[pos + 6],
            bytes[pos + 7],
        ]) as usize;
        let body = bytes
            .get(pos + 8..pos + 8 + size)
            .ok_or("a chunk runs past the end of the file")?;
        match id {
            b"fmt " if size >= 16 => {
                let u16_at = |i: usize| u16::from_le_bytes([body[i], body[i + 1]]);
                let rate = u32::from_le_bytes([body[4], body[5], body[6], body[7]]);
                format = Some((u16_at(0), u16_at(2), rate, u16_at(14)));
            }
            b"data" => {
                let (tag, channels, rate, bits) = format.ok_or("data before fmt")?;
                if tag != 1 || bits != 16 || channels == 0 || rate == 0 {
                    return Err(format!(
                        "unsupported WAV format (tag {tag}, {bits} bits, {channels} channels)"
                    ));
                }
                let samples = body
                    .chunks_exact(2)
                    .map(|b| i16::from_le_bytes([b[0], b[1]]))
                    .collect();
                return Ok(Pcm {
                    sample_rate: rate,
                    channels,
                    samples,
                });
            }
            _ => {}
        }
        // Chunks are padded to an even length.
        pos += 8 + size + (size & 1);
    }
    Err("no data chunk".into())
}

/// The embedded asset, decoded.
#[cfg(feature = "audio")]
pub(crate) fn asset_pcm() -> Result<Pcm, String> {
    decode_wav(ASSET)
}
