//! Per-system token sums (the sandbox's own count of what it answered, to check clients
//! against) and a rate-limit window that depletes as the session calls, announced in the
//! service's headers on every answer and enforced with a 429 when spent.

use super::catalog::Service;
use axum::body::Body;
use http::{HeaderValue, Response};
use serde::Serialize;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

/// Tokens the sandbox billed, normalised as the clients record them: `output` includes
/// `reasoning`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TokenSums {
    pub input: u64,
    pub output: u64,
    pub reasoning: u64,
}

/// The sandbox's own limits: generous enough that a session never meets them unless a
/// test sets out to, small enough to be seen moving.
pub const REQUESTS_PER_MINUTE: u64 = 10_000;
pub const TOKENS_PER_MINUTE: u64 = 2_000_000;
const WINDOW: Duration = Duration::from_secs(60);

#[derive(Debug)]
struct Window {
    start: Instant,
    requests: u64,
    tokens: u64,
}

#[derive(Debug)]
pub(crate) struct Meter {
    sums: Mutex<TokenSums>,
    window: Mutex<Window>,
    limits: (u64, u64),
}

impl Default for Meter {
    fn default() -> Self {
        Meter::with_limits(REQUESTS_PER_MINUTE, TOKENS_PER_MINUTE)
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Meter {
    pub fn with_limits(requests: u64, tokens: u64) -> Meter {
        Meter {
            sums: Mutex::default(),
            window: Mutex::new(Window {
                start: Instant::now(),
                requests: 0,
                tokens: 0,
            }),
            limits: (requests, tokens),
        }
    }

    pub fn sums(&self) -> TokenSums {
        *lock(&self.sums)
    }

    fn window(&self) -> MutexGuard<'_, Window> {
        let mut w = lock(&self.window);
        if w.start.elapsed() >= WINDOW {
            *w = Window {
                start: Instant::now(),
                requests: 0,
                tokens: 0,
            };
        }
        w
    }

    /// Count one request; `Err(wait)` when this minute's requests or tokens are spent.
    pub fn admit(&self) -> Result<(), Duration> {
        let mut w = self.window();
        if w.requests >= self.limits.0 || w.tokens >= self.limits.1 {
            return Err(WINDOW
                .saturating_sub(w.start.elapsed())
                .max(Duration::from_secs(1)));
        }
        w.requests += 1;
        Ok(())
    }

    /// An answer was billed.
    pub fn spend(&self, input: u64, output: u64, reasoning: u64) {
        let mut s = lock(&self.sums);
        s.input += input;
        s.output += output;
        s.reasoning += reasoning;
        drop(s);
        self.window().tokens += input + output;
    }

    /// The service's rate-limit headers, as of now. On a 429 (the window spent, or the
    /// `ratelimit` fault) they say what the refusal says: no request left until the
    /// `retry-after` the answer carries, as the services' headers do when they refuse.
    pub fn decorate(&self, service: Service, r: &mut Response<Body>) {
        let (req_limit, tok_limit) = self.limits;
        let w = self.window();
        let mut reset = WINDOW.saturating_sub(w.start.elapsed());
        let (mut req_left, tok_left) = (
            req_limit.saturating_sub(w.requests),
            tok_limit.saturating_sub(w.tokens),
        );
        drop(w);
        if r.status() == http::StatusCode::TOO_MANY_REQUESTS {
            req_left = 0;
            if let Some(secs) = r
                .headers()
                .get(http::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
            {
                reset = Duration::from_secs(secs);
            }
        }
        let h = r.headers_mut();
        let mut set = |name: &'static str, v: String| {
            if let Ok(v) = HeaderValue::from_str(&v) {
                h.insert(name, v);
            }
        };
        match service {
            Service::OpenAi => {
                set("x-ratelimit-limit-requests", req_limit.to_string());
                set("x-ratelimit-limit-tokens", tok_limit.to_string());
                set("x-ratelimit-remaining-requests", req_left.to_string());
                set("x-ratelimit-remaining-tokens", tok_left.to_string());
                set("x-ratelimit-reset-requests", openai_duration(reset));
                set("x-ratelimit-reset-tokens", openai_duration(reset));
            }
            Service::Anthropic => {
                let at = chrono::DateTime::<chrono::Utc>::from(SystemTime::now() + reset)
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
                set("anthropic-ratelimit-requests-limit", req_limit.to_string());
                set(
                    "anthropic-ratelimit-requests-remaining",
                    req_left.to_string(),
                );
                set("anthropic-ratelimit-requests-reset", at.clone());
                set("anthropic-ratelimit-tokens-limit", tok_limit.to_string());
                set("anthropic-ratelimit-tokens-remaining", tok_left.to_string());
                set("anthropic-ratelimit-tokens-reset", at);
            }
            _ => {}
        }
    }
}

/// OpenAI writes its reset times as `6m0s`, `1s`, `120ms`.
fn openai_duration(d: Duration) -> String {
    let ms = d.as_millis() as u64;
    match ms {
        0..1_000 => format!("{ms}ms"),
        1_000..60_000 => format!("{}s", ms.div_ceil(1000)),
        _ => format!("{}m{}s", ms / 60_000, (ms % 60_000) / 1000),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_depletes_and_refuses_when_spent() {
        let m = Meter::with_limits(2, 1_000);
        assert!(m.admit().is_ok());
        m.spend(10, 20, 5);
        assert!(m.admit().is_ok());
        let wait = m.admit().unwrap_err();
        assert!(wait > Duration::from_secs(50), "{wait:?}");
        assert_eq!(
            m.sums(),
            TokenSums {
                input: 10,
                output: 20,
                reasoning: 5
            }
        );
        let mut r = Response::new(Body::empty());
        m.decorate(Service::OpenAi, &mut r);
        assert_eq!(r.headers()["x-ratelimit-remaining-requests"], "0");
        assert_eq!(r.headers()["x-ratelimit-remaining-tokens"], "970");
    }

    #[test]
    fn a_429_says_no_request_is_left_in_each_services_headers() {
        let m = Meter::default();
        for (service, remaining, reset) in [
            (
                Service::OpenAi,
                "x-ratelimit-remaining-requests",
                "x-ratelimit-reset-requests",
            ),
            (
                Service::Anthropic,
                "anthropic-ratelimit-requests-remaining",
                "anthropic-ratelimit-requests-reset",
            ),
        ] {
            let mut r = Response::new(Body::empty());
            *r.status_mut() = http::StatusCode::TOO_MANY_REQUESTS;
            r.headers_mut()
                .insert(http::header::RETRY_AFTER, HeaderValue::from(7u64));
            m.decorate(service, &mut r);
            assert_eq!(r.headers()[remaining], "0", "{service:?}");
            if service == Service::OpenAi {
                assert_eq!(r.headers()[reset], "7s");
            }
            // An answer that is not refused still says what is left.
            let mut ok = Response::new(Body::empty());
            m.decorate(service, &mut ok);
            assert_eq!(
                ok.headers()[remaining],
                REQUESTS_PER_MINUTE.to_string(),
                "{service:?}"
            );
        }
    }

    #[test]
    fn openai_duration_format() {
        assert_eq!(openai_duration(Duration::from_millis(120)), "120ms");
        assert_eq!(openai_duration(Duration::from_secs(1)), "1s");
        assert_eq!(openai_duration(Duration::from_secs(360)), "6m0s");
    }
}
