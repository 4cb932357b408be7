//! What a system's answers cost: tokens as each service reports them, and the rate-limit
//! headroom its headers announce.
//!
//! One normalisation for all services: `output` is every generated token the service bills
//! as output, reasoning included; `reasoning` is the part of it spent thinking. OpenAI's
//! `completion_tokens`/`output_tokens` already include reasoning; Gemini reports
//! `thoughtsTokenCount` beside `candidatesTokenCount`, so the two are added. Likewise
//! `input` is every prompt token, cached or not; `cache_read` and `cache_write` are the
//! parts of it read from or written to the service's prompt cache (billed at their own rates).

use serde::Serialize;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Tokens of one answer (or a sum of answers).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Usage {
    pub input: u64,
    pub output: u64,
    pub reasoning: u64,
    /// Prompt tokens read from the cache: Anthropic `cache_read_input_tokens`, OpenAI
    /// `cached_tokens`. Left out of the JSON when 0, so older reports read the same.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cache_read: u64,
    /// Prompt tokens written to the cache: Anthropic `cache_creation_input_tokens`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cache_write: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Usage {
    pub fn total(&self) -> u64 {
        self.input + self.output
    }

    /// OpenAI Chat Completions `usage`.
    pub fn from_openai_chat(u: &serde_json::Value) -> Option<Usage> {
        Some(Usage {
            input: u.get("prompt_tokens")?.as_u64()?,
            output: u.get("completion_tokens")?.as_u64()?,
            reasoning: u
                .pointer("/completion_tokens_details/reasoning_tokens")
                .and_then(|v| v.as_u64())
                .unwrap_or(0),
            // Part of prompt_tokens, as OpenAI counts it.
            cache_read: u
                .pointer("/prompt_tokens_details/cached_tokens")
                .and_then(|v| v.as_u64())
                .unwrap_or(0),
            cache_write: 0,
        })
    }

    /// OpenAI Responses `usage`.
    pub fn from_openai_responses(u: &serde_json::Value) -> Option<Usage> {
        Some(Usage {
            input: u.get("input_tokens")?.as_u64()?,
            output: u.get("output_tokens")?.as_u64()?,
            reasoning: u
                .pointer("/output_tokens_details/reasoning_tokens")
                .and_then(|v| v.as_u64())
                .unwrap_or(0),
            cache_read: u
                .pointer("/input_tokens_details/cached_tokens")
                .and_then(|v| v.as_u64())
                .unwrap_or(0),
            cache_write: 0,
        })
    }

    /// Gemini `usageMetadata`; thoughts are billed as output.
    pub fn from_gemini(u: &serde_json::Value) -> Option<Usage> {
        let n = |k: &str| u.get(k).and_then(|v| v.as_u64()).unwrap_or(0);
        let thoughts = n("thoughtsTokenCount");
        Some(Usage {
            input: u.get("promptTokenCount")?.as_u64()?,
            output: n("candidatesTokenCount") + thoughts,
            reasoning: thoughts,
            cache_read: 0,
            cache_write: 0,
        })
    }

    /// Anthropic `usage` (a whole message, or `message_start` + the last `message_delta`).
    pub fn from_anthropic(u: &serde_json::Value) -> Option<Usage> {
        let n = |k: &str| u.get(k).and_then(|v| v.as_u64()).unwrap_or(0);
        // Cached prompt tokens are still prompt tokens (Anthropic counts them apart).
        let (read, write) = (
            n("cache_read_input_tokens"),
            n("cache_creation_input_tokens"),
        );
        Some(Usage {
            input: n("input_tokens") + read + write,
            output: u.get("output_tokens")?.as_u64()?,
            reasoning: 0,
            cache_read: read,
            cache_write: write,
        })
    }
}

/// What the service's rate-limit headers said on its last answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Headroom {
    pub requests_remaining: Option<u64>,
    pub requests_limit: Option<u64>,
    pub tokens_remaining: Option<u64>,
    pub tokens_limit: Option<u64>,
}

impl Headroom {
    /// OpenAI's `x-ratelimit-*` or Anthropic's `anthropic-ratelimit-*`; `None` when the
    /// answer carries neither (Gemini, Wolfram, LM Studio).
    pub fn from_headers(h: &http::HeaderMap) -> Option<Headroom> {
        let n = |name: &str| {
            h.get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        let r = Headroom {
            requests_remaining: n("x-ratelimit-remaining-requests")
                .or_else(|| n("anthropic-ratelimit-requests-remaining")),
            requests_limit: n("x-ratelimit-limit-requests")
                .or_else(|| n("anthropic-ratelimit-requests-limit")),
            tokens_remaining: n("x-ratelimit-remaining-tokens")
                .or_else(|| n("anthropic-ratelimit-tokens-remaining")),
            tokens_limit: n("x-ratelimit-limit-tokens")
                .or_else(|| n("anthropic-ratelimit-tokens-limit")),
        };
        (r != Headroom::default()).then_some(r)
    }

    /// The tighter of the two, as a fraction left (0..=1).
    pub fn fraction_left(&self) -> Option<f64> {
        let f = |rem: Option<u64>, lim: Option<u64>| match (rem, lim) {
            (Some(r), Some(l)) if l > 0 => Some(r as f64 / l as f64),
            _ => None,
        };
        match (
            f(self.requests_remaining, self.requests_limit),
            f(self.tokens_remaining, self.tokens_limit),
        ) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// One system's running totals, written by its requests, read by snapshots.
#[derive(Debug, Default)]
pub struct UsageMeter {
    input: AtomicU64,
    output: AtomicU64,
    reasoning: AtomicU64,
    cache_read: AtomicU64,
    cache_write: AtomicU64,
    /// Answers that reported usage.
    answers: AtomicU64,
    headroom: Mutex<Option<Headroom>>,
}

impl UsageMeter {
    pub fn add(&self, u: Usage) {
        self.input.fetch_add(u.input, Relaxed);
        self.output.fetch_add(u.output, Relaxed);
        self.reasoning.fetch_add(u.reasoning, Relaxed);
        self.cache_read.fetch_add(u.cache_read, Relaxed);
        self.cache_write.fetch_add(u.cache_write, Relaxed);
        self.answers.fetch_add(1, Relaxed);
    }

    pub fn total(&self) -> Usage {
        Usage {
            input: self.input.load(Relaxed),
            output: self.output.load(Relaxed),
            reasoning: self.reasoning.load(Relaxed),
            cache_read: self.cache_read.load(Relaxed),
            cache_write: self.cache_write.load(Relaxed),
        }
    }

    /// Whether any answer reported usage (a service that never does has unknown usage, not 0).
    pub fn reported(&self) -> bool {
        self.answers.load(Relaxed) > 0
    }

    pub fn set_headroom(&self, h: Headroom) {
        *self.headroom.lock().unwrap_or_else(|p| p.into_inner()) = Some(h);
    }

    pub fn headroom(&self) -> Option<Headroom> {
        *self.headroom.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn each_service_normalises_to_output_including_reasoning() {
        let chat = json!({"prompt_tokens": 10, "completion_tokens": 300, "completion_tokens_details": {"reasoning_tokens": 256}});
        assert_eq!(
            Usage::from_openai_chat(&chat),
            Some(Usage {
                input: 10,
                output: 300,
                reasoning: 256,
                ..Usage::default()
            })
        );
        let resp = json!({"input_tokens": 5, "output_tokens": 9, "output_tokens_details": {"reasoning_tokens": 0}});
        assert_eq!(
            Usage::from_openai_responses(&resp),
            Some(Usage {
                input: 5,
                output: 9,
                reasoning: 0,
                ..Usage::default()
            })
        );
        let gem =
            json!({"promptTokenCount": 7, "candidatesTokenCount": 20, "thoughtsTokenCount": 100});
        assert_eq!(
            Usage::from_gemini(&gem),
            Some(Usage {
                input: 7,
                output: 120,
                reasoning: 100,
                ..Usage::default()
            })
        );
        let ant = json!({"input_tokens": 3, "output_tokens": 4, "cache_read_input_tokens": 2});
        assert_eq!(
            Usage::from_anthropic(&ant),
            Some(Usage {
                input: 5,
                output: 4,
                reasoning: 0,
                cache_read: 2,
                cache_write: 0,
            })
        );
        assert_eq!(Usage::from_openai_chat(&json!({})), None);
    }

    #[test]
    fn cache_reads_and_writes_are_counted_apart() {
        // anthropic-sdk-python tests/api_resources/messages usage shape (Usage model:
        // cache_creation_input_tokens, cache_read_input_tokens beside input_tokens).
        let ant = json!({"input_tokens": 21, "cache_creation_input_tokens": 188086,
            "cache_read_input_tokens": 0, "output_tokens": 393});
        let u = Usage::from_anthropic(&ant).unwrap();
        assert_eq!(
            (u.input, u.cache_write, u.cache_read),
            (188_107, 188_086, 0)
        );
        // OpenAI's documented Chat usage: cached_tokens is part of prompt_tokens.
        let chat = json!({"prompt_tokens": 2006, "completion_tokens": 300, "total_tokens": 2306,
            "prompt_tokens_details": {"cached_tokens": 1920}});
        let u = Usage::from_openai_chat(&chat).unwrap();
        assert_eq!((u.input, u.cache_read), (2006, 1920));
        let resp = json!({"input_tokens": 328, "input_tokens_details": {"cached_tokens": 256},
            "output_tokens": 52, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 380});
        assert_eq!(Usage::from_openai_responses(&resp).unwrap().cache_read, 256);
        let m = UsageMeter::default();
        m.add(Usage::from_anthropic(&ant).unwrap());
        m.add(Usage::from_openai_chat(&chat).unwrap());
        assert_eq!(
            (m.total().cache_read, m.total().cache_write),
            (1920, 188_086)
        );
        let plain = serde_json::to_value(Usage::default()).unwrap();
        assert_eq!(
            plain.get("cache_read"),
            None,
            "a report without caching reads as before"
        );
    }

    #[test]
    fn headroom_reads_both_header_families() {
        let mut h = http::HeaderMap::new();
        assert_eq!(Headroom::from_headers(&h), None);
        h.insert("x-ratelimit-remaining-requests", "499".parse().unwrap());
        h.insert("x-ratelimit-limit-requests", "500".parse().unwrap());
        h.insert("x-ratelimit-remaining-tokens", "1000".parse().unwrap());
        h.insert("x-ratelimit-limit-tokens", "4000".parse().unwrap());
        let r = Headroom::from_headers(&h).unwrap();
        assert_eq!(r.requests_remaining, Some(499));
        assert_eq!(r.fraction_left(), Some(0.25));
        let mut a = http::HeaderMap::new();
        a.insert(
            "anthropic-ratelimit-requests-remaining",
            "49".parse().unwrap(),
        );
        a.insert("anthropic-ratelimit-requests-limit", "50".parse().unwrap());
        assert_eq!(
            Headroom::from_headers(&a).unwrap().fraction_left(),
            Some(0.98)
        );
    }
}
