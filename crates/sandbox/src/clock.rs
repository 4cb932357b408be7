//! The sandbox's clock (`[sandbox] timing`, `--timing`; ARCHITECTURE.md, "The sandbox").
//!
//! `instant` answers as fast as the machine can. `live` answers at each model family's
//! published pace: the headers after the time to first byte, the first output token after
//! the time to first token plus the model's silent reasoning (its reasoning tokens at its
//! token rate, so it grows with the effort or thinking budget), then the output at the
//! family's tokens per second; speech takes the time its audio takes to make. Each request
//! draws a long-tail factor from a seeded log-normal, so a session's latencies have a
//! median, a p99 and outliers, and the same seed gives the same clock.
//!
//! [`PROFILES`] is the one place these figures live; README.md's "The live clock" table
//! shows them with their sources (a test holds the two together).

use super::catalog::{self, Kind, Service};
use axum::body::{Body, HttpBody as _};
use futures::StreamExt;
use http::{Response, header};
use serde_json::Value;
use std::time::Duration;
use tokio::time::Instant;

pub use crate::timing::Timing;

/// One model family's pace.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Profile {
    /// As the README's table names it.
    pub family: &'static str,
    pub service: Service,
    /// Model ids that start with this (checked in order: the first match wins); "" for any.
    pub prefix: &'static str,
    /// Speech models (the catalog's `Kind::Tts`) only.
    pub speech: bool,
    /// Response headers (and a stream's first, lifecycle events).
    pub first_byte_ms: u64,
    /// Median time to the first output token, reasoning aside.
    pub first_token_ms: u64,
    /// Output (and reasoning) tokens per second.
    pub tokens_per_s: f64,
    /// Speech: seconds of work per second of audio.
    pub audio_factor: f64,
    /// The first token's tail: the published p99 over the median. The draw is log-normal
    /// with that ratio at z = 2.33, held below z = 3 (so never past ~1.6 × the p99).
    pub p99_over_p50: f64,
    /// Where the figures come from, and when they were read.
    pub source: &'static str,
}

#[allow(clippy::too_many_arguments)]
const fn p(
    family: &'static str,
    service: Service,
    prefix: &'static str,
    first_byte_ms: u64,
    first_token_ms: u64,
    tokens_per_s: f64,
    p99_over_p50: f64,
    source: &'static str,
) -> Profile {
    Profile {
        family,
        service,
        prefix,
        speech: false,
        first_byte_ms,
        first_token_ms,
        tokens_per_s,
        audio_factor: 0.0,
        p99_over_p50,
        source,
    }
}

const fn speech(
    family: &'static str,
    prefix: &'static str,
    first_token_ms: u64,
    audio_factor: f64,
    source: &'static str,
) -> Profile {
    Profile {
        family,
        service: Service::Gemini,
        prefix,
        speech: true,
        first_byte_ms: 150,
        first_token_ms,
        tokens_per_s: 0.0,
        audio_factor,
        p99_over_p50: 2.0,
        source,
    }
}

const MODELSTATS: &str = "modelstats.ai, \"LLM API Latency Spikes\" (24 h of probes, 2026) and latency comparison (2026-04-03)";

/// The figures, by family (README.md, "The live clock", shows this table).
pub const PROFILES: &[Profile] = &[
    speech(
        "Gemini 2.5 Pro TTS",
        "gemini-2.5-pro",
        2_500,
        0.6,
        "estimate: no published figure; Flash TTS's reports plus Pro's usual slowdown",
    ),
    speech(
        "Gemini Flash TTS",
        "",
        1_500,
        0.3,
        "pipecat PR #2407 (2025-08-10), hermes-agent PR #98303 (2026-08-30): first audio 2-3 s, whole clip before any byte",
    ),
    p(
        "Gemini 2.5 Flash-Lite",
        Service::Gemini,
        "gemini-2.5-flash-lite",
        150,
        370,
        190.0,
        9.9,
        MODELSTATS,
    ),
    p(
        "Gemini 2.5 Flash",
        Service::Gemini,
        "gemini-2.5-flash",
        150,
        490,
        200.0,
        2.7,
        MODELSTATS,
    ),
    p(
        "Gemini 2.5 Pro",
        Service::Gemini,
        "gemini-2.5-pro",
        200,
        1_500,
        150.0,
        2.5,
        "modelstats.ai latency comparison (2026-04-03): 6.1 s to first token with its thinking",
    ),
    p(
        "Gemini 3.x Pro",
        Service::Gemini,
        "gemini-3.1-pro",
        200,
        1_500,
        150.0,
        2.5,
        "estimate: as Gemini 2.5 Pro",
    ),
    p(
        "Gemini 3.x Flash",
        Service::Gemini,
        "gemini-3",
        150,
        490,
        200.0,
        2.7,
        "estimate: as Gemini 2.5 Flash",
    ),
    p(
        "GPT-5.x",
        Service::OpenAi,
        "gpt-5",
        250,
        900,
        45.0,
        3.0,
        "jonathanwrede.de, \"TTFT varies 13x across LLM providers\" (2026); Artificial Analysis, GPT-5 (minimal) providers (2025-11)",
    ),
    p(
        "o-series",
        Service::OpenAi,
        "o",
        250,
        900,
        45.0,
        3.0,
        "estimate: as GPT-5.x",
    ),
    p(
        "GPT-4o / GPT-4.1",
        Service::OpenAi,
        "gpt-4",
        250,
        680,
        100.0,
        2.7,
        MODELSTATS,
    ),
    p(
        "Claude Sonnet",
        Service::Anthropic,
        "claude-sonnet",
        300,
        1_300,
        44.0,
        5.1,
        "jonathanwrede.de (2026): 1.3-2.1 s, 44 tok/s; modelstats.ai (2026): p99 5.1x p50",
    ),
    p(
        "Claude Opus",
        Service::Anthropic,
        "claude-opus",
        300,
        1_800,
        40.0,
        5.1,
        "lattice.uptownhr.com, Artificial Analysis figures (2025-11-24)",
    ),
    p(
        "Claude Haiku",
        Service::Anthropic,
        "claude-haiku",
        300,
        600,
        90.0,
        7.6,
        MODELSTATS,
    ),
    p(
        "Hyperbolic (Qwen3 235B and others)",
        Service::Hyperbolic,
        "",
        200,
        1_000,
        45.0,
        3.0,
        "estimate: no published figure for Hyperbolic; other hosts of Qwen3 235B (2026)",
    ),
    p(
        "LM Studio (local phi-4-mini-reasoning)",
        Service::LmStudio,
        "",
        50,
        500,
        60.0,
        1.3,
        "estimate: 4B models at Q4 on Apple silicon and RTX GPUs, jitesh.dev (2026-03-31)",
    ),
    p(
        "Wolfram LLM API",
        Service::Wolfram,
        "",
        1_500,
        1_500,
        0.0,
        3.0,
        "estimate: no published figure; the Full Results API's documented timeouts (apis.io, 2026-05-04)",
    ),
];

/// Any other model of a service: a middling pace.
const FALLBACK: Profile = p(
    "other",
    Service::OpenAi,
    "",
    250,
    1_000,
    50.0,
    3.0,
    "estimate",
);

/// The profile `model` is answered at.
pub fn profile(service: Service, model: &str) -> &'static Profile {
    let speech = service == Service::Gemini
        && catalog::find(service, model, model).is_some_and(|m| m.kind == Kind::Tts);
    PROFILES
        .iter()
        .find(|p| p.service == service && p.speech == speech && model.starts_with(p.prefix))
        .unwrap_or(&FALLBACK)
}

/// [`PROFILES`] as the README's table: one row per family.
pub fn readme_table() -> String {
    let mut out = String::from(
        "| family | served for | first byte | first token (median) | tokens/s | first token p99 / p50 | source |\n|---|---|---|---|---|---|---|\n",
    );
    for p in PROFILES {
        let models = match (p.prefix, p.speech) {
            ("", true) => "other speech models".to_string(),
            ("", false) => "any model".to_string(),
            (prefix, true) => format!("`{prefix}…` speech"),
            (prefix, false) => format!("`{prefix}…`"),
        };
        let rate = match (p.speech, p.tokens_per_s) {
            (true, _) => format!("{}× the audio's length", p.audio_factor),
            (false, 0.0) => "n/a (one computed answer)".to_string(),
            (false, r) => format!("{r}"),
        };
        out.push_str(&format!(
            "| {} | {} | {} ms | {} ms | {} | {} | {} |\n",
            p.family, models, p.first_byte_ms, p.first_token_ms, rate, p.p99_over_p50, p.source
        ));
    }
    out
}

/// What an answer cost to make: recorded by the protocol handler as it fits its answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Spent {
    pub thinking: u64,
    pub visible: u64,
    /// Speech: the audio's length.
    pub audio_ms: u64,
}

/// When each part of one answer is due, from the moment the request was read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plan {
    pub headers: Duration,
    /// The first content (output text, audio), after any silent reasoning.
    pub first_content: Duration,
    pub per_token: Duration,
    pub visible: u64,
}

impl Plan {
    /// A whole (not streamed) answer is sent when its last token is made.
    pub fn whole(&self) -> Duration {
        self.first_content + self.per_token * self.visible.min(u32::MAX as u64) as u32
    }
}

/// The clock of a running sandbox.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Clock {
    pub timing: Timing,
    /// Seeds the tail: the same seed, the same latencies for the same requests.
    pub seed: u64,
}

impl Clock {
    pub fn instant() -> Clock {
        Clock::default()
    }

    pub fn live(seed: u64) -> Clock {
        Clock {
            timing: Timing::Live,
            seed,
        }
    }

    /// The plan of the `nth` request to system `slot` (per system, so the draw does not
    /// depend on how requests of different systems interleave). `spent` is `None` for
    /// answers that made nothing (errors, listings): those take the first byte only, but
    /// for Wolfram, whose every answer is computed.
    pub fn plan(&self, p: &Profile, spent: Option<Spent>, slot: usize, nth: u64) -> Option<Plan> {
        if self.timing != Timing::Live {
            return None;
        }
        let (z1, z2) = normals(self.seed, slot as u64, nth);
        // The first token carries the published tail; the token rate varies far less.
        let first = (p.p99_over_p50.max(1.0).ln() / 2.33 * z1.clamp(-2.5, 3.0)).exp();
        let rate = (RATE_SIGMA * z2.clamp(-2.5, 3.0)).exp();
        let ms = |ms: f64| Duration::from_secs_f64(ms.max(0.0) / 1e3);
        let headers = ms(p.first_byte_ms.min(p.first_token_ms) as f64 * first);
        let Some(spent) = spent.or((p.service == Service::Wolfram).then(Spent::default)) else {
            return Some(Plan {
                headers,
                first_content: headers,
                per_token: Duration::ZERO,
                visible: 0,
            });
        };
        let token_ms = if p.tokens_per_s > 0.0 {
            1e3 / p.tokens_per_s * rate
        } else {
            0.0
        };
        let reasoning = spent.thinking as f64 * token_ms;
        let audio = spent.audio_ms as f64 * p.audio_factor * rate;
        Some(Plan {
            headers,
            first_content: ms(p.first_token_ms as f64 * first + reasoning + audio),
            per_token: ms(token_ms),
            visible: if p.speech { 0 } else { spent.visible },
        })
    }
}

/// The spread of the token rate from one answer to the next.
const RATE_SIGMA: f64 = 0.1;

/// Two standard normals drawn from (seed, slot, nth) (Box-Muller).
fn normals(seed: u64, slot: u64, nth: u64) -> (f64, f64) {
    let mut s =
        seed ^ slot.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ nth.wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    let u1 = unit(splitmix(&mut s)).max(1e-12);
    let u2 = unit(splitmix(&mut s));
    let r = (-2.0 * u1.ln()).sqrt();
    let a = std::f64::consts::TAU * u2;
    (r * a.cos(), r * a.sin())
}

fn splitmix(s: &mut u64) -> u64 {
    *s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *s;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn unit(x: u64) -> f64 {
    (x >> 11) as f64 / (1u64 << 53) as f64
}

/// Hold `response` to `plan`, counted from `since` (the request read): a whole answer until
/// its last token is made; a stream's headers after the first byte, its lifecycle events at
/// once, its content at the model's token rate after the first token (and any reasoning).
pub async fn keep(response: Response<Body>, plan: Plan, since: Instant) -> Response<Body> {
    let streamed = response.body().size_hint().exact().is_none();
    if !streamed || !response.status().is_success() {
        let due = if response.status().is_success() {
            plan.whole()
        } else {
            plan.headers
        };
        tokio::time::sleep_until(since + due).await;
        return response;
    }
    tokio::time::sleep_until(since + plan.headers).await;
    let (mut parts, body) = response.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    let first = since + plan.first_content;
    let paced = body.into_data_stream().scan(0u64, move |made, chunk| {
        let due = match &chunk {
            Ok(bytes) => {
                let tokens = content_tokens(bytes);
                // Before the first content: lifecycle events, at once. From then on each
                // piece when its tokens are made, and what follows the last one after it.
                let due = (tokens > 0 || *made > 0)
                    .then(|| first + plan.per_token * (*made).min(u32::MAX as u64) as u32);
                *made += tokens;
                due
            }
            Err(_) => None,
        };
        async move {
            if let Some(due) = due {
                tokio::time::sleep_until(due).await;
            }
            Some(chunk)
        }
    });
    Response::from_parts(parts, Body::from_stream(paced))
}

/// Output tokens a streamed piece carries: the text of a Chat delta, a Responses
/// `output_text.delta`, an Anthropic `text_delta`, a Gemini candidate's (non-thought)
/// parts. Lifecycle events, usage and terminators carry none. A piece may hold several
/// SSE events, or one element of Gemini's JSON-array stream.
pub fn content_tokens(piece: &[u8]) -> u64 {
    let Ok(text) = std::str::from_utf8(piece) else {
        return 0;
    };
    let mut n = 0;
    let datas: Vec<&str> = if text.contains("data:") {
        text.lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .map(str::trim)
            .collect()
    } else {
        // Gemini without `alt=sse`: "[{..}", ",\r\n{..}", "]".
        vec![
            text.trim_start_matches(['[', ',', '\r', '\n', ' '])
                .trim_end_matches(']'),
        ]
    };
    for data in datas {
        let Ok(v) = serde_json::from_str::<Value>(data) else {
            continue;
        };
        let texts: Vec<&str> = if let Some(d) = v.pointer("/choices/0/delta/content") {
            d.as_str().into_iter().collect()
        } else if v.get("type").and_then(Value::as_str) == Some("response.output_text.delta") {
            v.get("delta").and_then(Value::as_str).into_iter().collect()
        } else if v.pointer("/delta/type").and_then(Value::as_str) == Some("text_delta") {
            v.pointer("/delta/text")
                .and_then(Value::as_str)
                .into_iter()
                .collect()
        } else if let Some(parts) = v
            .pointer("/candidates/0/content/parts")
            .and_then(Value::as_array)
        {
            parts
                .iter()
                .filter(|p| p.get("thought").and_then(Value::as_bool) != Some(true))
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect()
        } else {
            Vec::new()
        };
        n += texts
            .iter()
            .filter(|t| !t.is_empty())
            .map(|t| super::wire::tokens(t))
            .sum::<u64>();
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readme_shows_these_figures() {
        let readme = include_str!("../../../README.md");
        assert!(
            readme.contains(&readme_table()),
            "README.md's live clock table differs from clock::PROFILES; put this in it:\n{}",
            readme_table()
        );
    }

    #[test]
    fn families_resolve_to_their_profiles() {
        assert_eq!(
            profile(Service::Gemini, "gemini-2.5-flash-lite").family,
            "Gemini 2.5 Flash-Lite"
        );
        assert_eq!(
            profile(Service::Gemini, "gemini-2.5-pro-preview-tts").family,
            "Gemini 2.5 Pro TTS"
        );
        assert_eq!(
            profile(Service::Gemini, "gemini-3.8-flash-tts").family,
            "Gemini Flash TTS"
        );
        assert_eq!(profile(Service::OpenAi, "gpt-5.1").family, "GPT-5.x");
        assert_eq!(
            profile(Service::OpenAi, "gpt-4.1").family,
            "GPT-4o / GPT-4.1"
        );
        assert_eq!(
            profile(Service::Anthropic, "claude-sonnet-4-6").family,
            "Claude Sonnet"
        );
        assert_eq!(
            profile(Service::Wolfram, "llm-api").family,
            "Wolfram LLM API"
        );
        assert_eq!(
            profile(Service::LmStudio, "anything").service,
            Service::LmStudio
        );
    }

    #[test]
    fn reasoning_is_silence_before_the_first_token_and_grows_with_the_effort() {
        let clock = Clock::live(7);
        let p = profile(Service::OpenAi, "gpt-5.1");
        let plan = |thinking| {
            clock
                .plan(
                    p,
                    Some(Spent {
                        thinking,
                        visible: 40,
                        audio_ms: 0,
                    }),
                    2,
                    0,
                )
                .unwrap()
        };
        let (none, low, high) = (plan(0), plan(128), plan(1024));
        assert!(none.first_content < low.first_content && low.first_content < high.first_content);
        // The same draw: the difference is the reasoning alone, at the token rate.
        let extra = (low.first_content - none.first_content).as_secs_f64();
        let per_token = none.per_token.as_secs_f64();
        assert!(
            (extra - 128.0 * per_token).abs() < 1e-6,
            "{extra} vs {}",
            128.0 * per_token
        );
        assert_eq!(Clock::instant().plan(p, None, 0, 0), None);
    }

    #[test]
    fn the_tail_is_seeded_and_has_the_published_spread() {
        let clock = Clock::live(42);
        let p = profile(Service::Anthropic, "claude-sonnet-4-6");
        let firsts: Vec<f64> = (0..4000)
            .map(|n| clock.plan(p, None, 5, n).unwrap().headers.as_secs_f64())
            .collect();
        let again: Vec<f64> = (0..4000)
            .map(|n| clock.plan(p, None, 5, n).unwrap().headers.as_secs_f64())
            .collect();
        assert_eq!(firsts, again, "the same seed, the same clock");
        let mut sorted = firsts.clone();
        sorted.sort_by(f64::total_cmp);
        let (p50, p99) = (sorted[2000], sorted[3960]);
        let ratio = p99 / p50;
        assert!(
            (4.0..6.5).contains(&ratio),
            "p99/p50 {ratio}, published 5.1"
        );
        assert!(sorted[3999] / p50 <= 5.1f64.powf(3.0 / 2.33) + 1e-6);
        let other = Clock::live(43).plan(p, None, 5, 0).unwrap();
        assert_ne!(other.headers.as_secs_f64(), firsts[0]);
    }

    #[test]
    fn content_is_told_from_lifecycle_events() {
        let chat = br#"data: {"choices":[{"index":0,"delta":{"content":"attack the bandit"},"finish_reason":null}]}"#;
        assert!(content_tokens(chat) > 0);
        let role = br#"data: {"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#;
        assert_eq!(content_tokens(role), 0);
        let created = b"event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0}\n\n";
        assert_eq!(content_tokens(created), 0);
        let delta = b"event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"ACTION: rest\"}\n\n";
        assert!(content_tokens(delta) > 0);
        let anthropic = br#"data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello there"}}"#;
        assert!(content_tokens(anthropic) > 0);
        let ping = br#"data: {"type":"ping"}"#;
        assert_eq!(content_tokens(ping), 0);
        let gemini =
            b"data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"A cave.\"}]}}]}\r\n\r\n";
        assert!(content_tokens(gemini) > 0);
        let array = b",\r\n{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"A cave.\"}]}}]}";
        assert!(content_tokens(array) > 0);
        assert_eq!(content_tokens(b"data: [DONE]\n\n"), 0);
    }
}
