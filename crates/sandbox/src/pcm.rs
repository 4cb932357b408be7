//! The sandbox's stand-in for speech: a short, pleasant tone sequence, one note per word,
//! as signed 16-bit little-endian mono PCM at 24 kHz (what Gemini TTS returns).

use super::script::fnv1a;
use std::f64::consts::TAU;

pub const SAMPLE_RATE: u32 = 24_000;
/// The MIME type Gemini labels its TTS audio with.
pub const MIME: &str = "audio/L16;codec=pcm;rate=24000";

/// C major pentatonic from C5: any sequence of these notes sounds consonant.
const SCALE: [f64; 8] = [
    523.25, 587.33, 659.25, 783.99, 880.0, 1046.5, 1174.66, 1318.51,
];
/// About 30 % of full scale: audible, far from clipping.
const AMPLITUDE: f64 = 0.3 * i16::MAX as f64;
const MAX_NOTES: usize = 8;

/// PCM bytes for `text`: one note per word (at most eight), 0.25–0.6 s in all, each note
/// with a short fade in and out so that nothing clicks. The same text and voice always give
/// the same bytes; voices hash to one of two octaves.
pub fn synthesize(text: &str, voice: &str) -> Vec<u8> {
    let words: Vec<&str> = text.split_whitespace().take(MAX_NOTES).collect();
    let notes = words.len().max(1);
    let total_s = (notes as f64 * 0.1).clamp(0.25, 0.6);
    let note_len = (total_s * f64::from(SAMPLE_RATE) / notes as f64) as usize;
    let octave = if fnv1a(voice.as_bytes()) % 2 == 0 {
        1.0
    } else {
        0.5
    };

    let mut out = Vec::with_capacity(notes * note_len * 2);
    for i in 0..notes {
        let word = words.get(i).copied().unwrap_or("");
        let freq = SCALE[(fnv1a(word.as_bytes()) % SCALE.len() as u64) as usize] * octave;
        for n in 0..note_len {
            let t = n as f64 / f64::from(SAMPLE_RATE);
            // A touch of second harmonic makes it less of a test tone.
            let wave = ((TAU * freq * t).sin() + 0.2 * (2.0 * TAU * freq * t).sin()) / 1.2;
            let sample = (wave * envelope(n, note_len) * AMPLITUDE).round() as i16;
            out.extend_from_slice(&sample.to_le_bytes());
        }
    }
    out
}

/// Raised-cosine fade: 5 ms in, 15 ms out, so each note starts and ends at zero.
fn envelope(n: usize, len: usize) -> f64 {
    let attack = (SAMPLE_RATE as usize / 200).min(len / 2).max(1);
    let release = (SAMPLE_RATE as usize * 15 / 1000).min(len / 2).max(1);
    let ramp = |x: f64| 0.5 - 0.5 * (std::f64::consts::PI * x.clamp(0.0, 1.0)).cos();
    if n < attack {
        ramp(n as f64 / attack as f64)
    } else if n + release >= len {
        ramp((len - 1 - n) as f64 / release as f64)
    } else {
        1.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(b: &[u8]) -> Vec<i16> {
        b.chunks_exact(2)
            .map(|c| i16::from_le_bytes([c[0], c[1]]))
            .collect()
    }

    #[test]
    fn length_amplitude_and_fades() {
        for text in [
            "",
            "hi",
            "attack the goblin now",
            "one two three four five six seven eight nine ten",
        ] {
            let pcm = synthesize(text, "Kore");
            assert_eq!(pcm.len() % 2, 0);
            let s = samples(&pcm);
            let secs = s.len() as f64 / f64::from(SAMPLE_RATE);
            assert!((0.24..=0.61).contains(&secs), "{text:?}: {secs} s");
            let peak = s.iter().map(|v| v.unsigned_abs()).max().unwrap_or(0);
            assert!(peak > 3000 && peak < 20000, "peak {peak}");
            assert!(s[0].unsigned_abs() < 200 && s[s.len() - 1].unsigned_abs() < 200);
        }
    }

    #[test]
    fn deterministic_and_voice_dependent() {
        assert_eq!(
            synthesize("hello there", "Kore"),
            synthesize("hello there", "Kore")
        );
        let differs = ["Charon", "Puck", "Zephyr", "Fenrir"]
            .iter()
            .any(|v| synthesize("hello there", v) != synthesize("hello there", "Kore"));
        assert!(differs);
    }
}
