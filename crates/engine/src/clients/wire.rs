//! What every protocol does the same way: send, map an error status to the service's own
//! message, and read a body with a size cap.

use super::ClientError;
use super::RequestCtx;
use crate::backoff::Backoff;
use crate::systems::Protocol;
use futures::StreamExt;
use std::time::Duration;

/// The largest answer we accept; a service sending more is broken.
pub const MAX_BODY: usize = 16 << 20;

/// Longest wait between two attempts of our own choosing; a service may ask for more
/// (`Retry-After`), which is waited out when the call's deadline allows it.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Our own waits between attempts: 200 ms, doubling, up to [`MAX_BACKOFF`].
const RETRY_BACKOFF: Backoff = Backoff::new(Duration::from_millis(200), MAX_BACKOFF);

/// The longest `Retry-After` waited out by a call without a deadline of its own: the SDKs'
/// "reasonable amount" (`0 < retry_after <= 60` in their `_calculate_retry_timeout`).
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// The statuses the services call retryable: timeout, rate limit, and the server-side
/// failures that may pass (Anthropic's 529 overloaded among them). 501 is not one: Wolfram
/// answers it for input it does not understand, and asking again only spends quota. This is
/// google-genai's `_RETRY_HTTP_STATUS_CODES` (408, 429, 500, 502, 503, 504) plus 529.
pub const RETRYABLE: [u16; 7] = [408, 429, 500, 502, 503, 504, 529];

/// Whether an error status is worth another attempt, as the service's own SDK decides. Its
/// `x-should-retry` header comes first (OpenAI and Anthropic send it; their SDKs obey it).
/// The OpenAI and Anthropic SDKs (Stainless `_should_retry`) then retry 408, 409 (a lock
/// timeout), 429 and every 5xx; Gemini and Wolfram get [`RETRYABLE`] (no 409: google-genai
/// does not retry it).
pub fn retryable(protocol: Protocol, status: u16, should_retry: Option<bool>) -> bool {
    if let Some(said) = should_retry {
        return said;
    }
    match protocol {
        Protocol::OpenaiChat
        | Protocol::OpenaiResponses
        | Protocol::AnthropicMessages
        | Protocol::Moe => matches!(status, 408 | 409 | 429) || status >= 500,
        Protocol::GeminiGenerate
        | Protocol::GeminiStream
        | Protocol::GeminiTts
        | Protocol::WolframLlm => RETRYABLE.contains(&status),
    }
}

/// Send, retrying what is worth retrying ([`retryable`], a refused or broken connection) up
/// to `ctx.retries` times with exponential backoff that honours `Retry-After` and
/// `retry-after-ms`. The wait between attempts ends at once when the system is closing.
pub async fn send(
    ctx: &RequestCtx,
    req: reqwest::RequestBuilder,
) -> Result<reqwest::Response, ClientError> {
    // Only under a spend limit: reading the size builds the request once more.
    if ctx.budget.is_some() {
        // A request whose body cannot be read here (a stream) is reserved at its cap alone.
        let bytes = req
            .try_clone()
            .and_then(|r| r.build().ok())
            .map(|r| {
                r.url().as_str().len() + r.body().and_then(|b| b.as_bytes()).map_or(0, <[u8]>::len)
            })
            .unwrap_or(0);
        ctx.reserve(bytes).await?;
    }
    let mut attempt = 0u32;
    loop {
        // A body that cannot be cloned (a stream) gets one attempt only.
        let Some(this) = req.try_clone() else {
            return send_once(ctx, req).await.map_err(|e| {
                if ctx.stop.is_cancelled() {
                    ClientError::Cancelled
                } else {
                    e
                }
            });
        };
        let sent = send_once(ctx, this).await;
        // The service's last word: a 429 is kept while the call waits it out, so a deadline
        // that cuts the wait tells a rate limit, not slowness.
        *ctx.rate_limited.lock().unwrap_or_else(|p| p.into_inner()) = match &sent {
            Err(e) if e.is_rate_limit() => Some(e.clone()),
            _ => None,
        };
        let err = match sent {
            Ok(resp) => return Ok(resp),
            // A connect refused because the system is closing is the close, not a failure.
            Err(_) if ctx.stop.is_cancelled() => return Err(ClientError::Cancelled),
            Err(e) => e,
        };
        let Some(wait) = (attempt < ctx.retries)
            .then(|| backoff(attempt, &err, ctx.protocol))
            .flatten()
            .filter(|w| wait_fits(*w, ctx.deadline, tokio::time::Instant::now()))
        else {
            // Past the deadline, the error says how long the service asked us to wait.
            return Err(err);
        };
        attempt += 1;
        ctx.retried
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::debug!(system = %ctx.system, error = %err, attempt, wait_ms = wait.as_millis() as u64, "retrying");
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = ctx.stop.cancelled() => return Err(ClientError::Cancelled),
        }
    }
}

/// [`send`], for a stream when `stream`: the stream is the game's, so the system's stop
/// ends it at once, before its headers as after them (the SSE readers end it after). A
/// unary call, by contrast, may finish until the grace deadline. Dropping the request
/// future closes its connection; the pool never gets it back half-read.
pub async fn send_stream(
    ctx: &RequestCtx,
    req: reqwest::RequestBuilder,
    stream: bool,
) -> Result<reqwest::Response, ClientError> {
    if !stream {
        return send(ctx, req).await;
    }
    tokio::select! {
        biased;
        _ = ctx.stop.cancelled() => Err(ClientError::Cancelled),
        r = send(ctx, req) => r,
    }
}

/// Whether a wait can be afforded: ours (at most [`MAX_BACKOFF`]) always; a longer one the
/// service asked for only if the next attempt still starts before the call's deadline, or,
/// for a call without one, if it is at most [`MAX_RETRY_AFTER`].
pub fn wait_fits(
    wait: Duration,
    deadline: Option<tokio::time::Instant>,
    now: tokio::time::Instant,
) -> bool {
    if wait <= MAX_BACKOFF {
        return true;
    }
    match deadline {
        Some(d) => now + wait < d,
        None => wait <= MAX_RETRY_AFTER,
    }
}

/// How long to wait before attempt `attempt + 1`, or `None` when the error is not worth a
/// retry. 200 ms doubling, ±20 % jitter so many clients don't retry in step, at most
/// [`MAX_BACKOFF`]; a `Retry-After` is a floor, and may be longer (see [`wait_fits`]).
pub fn backoff(attempt: u32, err: &ClientError, protocol: Protocol) -> Option<Duration> {
    let retry_after = match err {
        ClientError::Status {
            status,
            retry_after,
            should_retry,
            ..
        } if retryable(protocol, *status, *should_retry) => *retry_after,
        ClientError::Refused { .. } | ClientError::Transport(_) => None,
        _ => return None,
    };
    let base = RETRY_BACKOFF.delay(attempt);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let jitter = 0.8 + 0.4 * (nanos % 1000) as f64 / 1000.0;
    // Ours never passes the cap, so only a service's own ask is weighed by `wait_fits`.
    let wait = base.mul_f64(jitter).min(MAX_BACKOFF);
    Some(retry_after.map_or(wait, |ra| wait.max(ra)))
}

/// Send once and return the response if its status is a success; otherwise the service's
/// error. Either way the rate-limit headroom the answer announces is recorded.
pub async fn send_once(
    ctx: &RequestCtx,
    req: reqwest::RequestBuilder,
) -> Result<reqwest::Response, ClientError> {
    let resp = ctx.client.send_with(req, ctx.recorder.as_ref()).await?;
    if let Some(h) = super::Headroom::from_headers(resp.headers()) {
        ctx.usage.set_headroom(h);
    }
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let retry_after = retry_after(resp.headers(), std::time::SystemTime::now());
    let request_id = request_id(resp.headers());
    let should_retry = should_retry(resp.headers());
    let body = read_limited(resp, 64 << 10).await.unwrap_or_default();
    Err(ClientError::Status {
        status: status.as_u16(),
        message: error_message(&body),
        retry_after,
        request_id,
        should_retry,
    })
}

/// The id the service gave this answer: OpenAI's `x-request-id`, Anthropic's `request-id`
/// (the headers their SDKs read as `_request_id`). Gemini sends none its SDK reads.
pub fn request_id(h: &http::HeaderMap) -> Option<String> {
    ["x-request-id", "request-id"]
        .iter()
        .filter_map(|name| h.get(*name)?.to_str().ok())
        .map(str::trim)
        .find(|v| !v.is_empty())
        .map(|v| shorten(v, 80))
}

/// `x-should-retry: true|false`, exactly as the SDKs compare it; anything else says nothing.
pub fn should_retry(h: &http::HeaderMap) -> Option<bool> {
    match h.get("x-should-retry").and_then(|v| v.to_str().ok()) {
        Some("true") => Some(true),
        Some("false") => Some(false),
        _ => None,
    }
}

/// How long the service asks us to wait: `retry-after-ms` (OpenAI), else `Retry-After` as
/// seconds or as an HTTP date (RFC 9110), counted from `now`. A date in the past is "now".
pub fn retry_after(h: &http::HeaderMap, now: std::time::SystemTime) -> Option<Duration> {
    let text = |name: &str| h.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    if let Some(ms) = text("retry-after-ms")
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|ms| ms.is_finite() && *ms >= 0.0)
    {
        return Some(Duration::from_secs_f64(ms / 1e3));
    }
    let v = text(http::header::RETRY_AFTER.as_str())?;
    if let Ok(secs) = v.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The message inside the error JSON of OpenAI, Anthropic and Gemini (all put it at
/// `error.message`), else the start of the text body.
pub fn error_message(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let from_json = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v.pointer("/error/message")
                .and_then(|m| m.as_str())
                .map(str::to_string)
        });
    let msg = from_json.unwrap_or_else(|| text.trim().to_string());
    shorten(&msg, 160)
}

pub fn shorten(s: &str, max: usize) -> String {
    let one_line = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= max {
        one_line
    } else {
        let cut: String = one_line.chars().take(max - 1).collect();
        format!("{cut}…")
    }
}

/// Read the whole body, failing if it exceeds `limit` bytes.
pub async fn read_limited(resp: reqwest::Response, limit: usize) -> Result<Vec<u8>, ClientError> {
    if let Some(len) = resp.content_length()
        && len as usize > limit
    {
        return Err(ClientError::Protocol(format!(
            "answer of {len} bytes exceeds {limit}"
        )));
    }
    let mut out = Vec::new();
    let mut body = resp.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        if out.len() + chunk.len() > limit {
            return Err(ClientError::Protocol(format!(
                "answer exceeds {limit} bytes"
            )));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// Read a JSON body, checking the content type as the SDKs do.
pub async fn read_json(resp: reqwest::Response) -> Result<serde_json::Value, ClientError> {
    expect_content_type(&resp, "application/json")?;
    let body = read_limited(resp, MAX_BODY).await?;
    serde_json::from_slice(&body).map_err(|e| ClientError::Protocol(format!("invalid JSON: {e}")))
}

pub fn expect_content_type(resp: &reqwest::Response, want: &str) -> Result<(), ClientError> {
    let got = resp
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if got.to_ascii_lowercase().starts_with(want) {
        Ok(())
    } else {
        Err(ClientError::Protocol(format!(
            "expected {want}, got content type {:?}",
            shorten(got, 60)
        )))
    }
}

/// `base` joined with a path, keeping the base's own path (`https://host/v1` + `chat/completions`).
pub fn endpoint(base: &url::Url, path: &str) -> url::Url {
    let mut u = base.clone();
    let joined = format!(
        "{}/{}",
        base.path().trim_end_matches('/'),
        path.trim_start_matches('/')
    );
    u.set_path(&joined);
    u
}

pub fn str_at<'a>(v: &'a serde_json::Value, ptr: &str) -> Option<&'a str> {
    v.pointer(ptr).and_then(|x| x.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_keeps_base_path() {
        let b = url::Url::parse("https://api.hyperbolic.xyz/v1").unwrap();
        assert_eq!(
            endpoint(&b, "chat/completions").as_str(),
            "https://api.hyperbolic.xyz/v1/chat/completions"
        );
        let b = url::Url::parse("http://127.0.0.1:9/").unwrap();
        assert_eq!(
            endpoint(&b, "/v1/messages").as_str(),
            "http://127.0.0.1:9/v1/messages"
        );
    }

    fn status(s: u16, ra: Option<u64>) -> ClientError {
        ClientError::Status {
            status: s,
            message: String::new(),
            retry_after: ra.map(Duration::from_secs),
            request_id: None,
            should_retry: None,
        }
    }

    #[test]
    fn backoff_grows_and_honours_retry_after() {
        let chat = Protocol::OpenaiChat;
        let first = backoff(0, &status(503, None), chat).unwrap();
        let third = backoff(2, &status(503, None), chat).unwrap();
        assert!(
            first >= Duration::from_millis(160) && first <= Duration::from_millis(240),
            "{first:?}"
        );
        assert!(third >= Duration::from_millis(640), "{third:?}");
        assert!(backoff(20, &status(500, None), chat).unwrap() <= MAX_BACKOFF);
        assert!(backoff(0, &status(429, Some(2)), chat).unwrap() >= Duration::from_secs(2));
        assert_eq!(
            backoff(0, &status(429, Some(60)), chat),
            Some(Duration::from_secs(60)),
            "a long Retry-After is the wait; whether it fits is the deadline's call"
        );
        assert_eq!(backoff(0, &status(400, None), chat), None);
        assert_eq!(
            backoff(0, &status(501, None), Protocol::WolframLlm),
            None,
            "501 from Wolfram is input it does not understand"
        );
        assert!(backoff(0, &status(529, None), Protocol::AnthropicMessages).is_some());
        assert!(backoff(0, &status(408, None), Protocol::GeminiGenerate).is_some());
        assert_eq!(backoff(0, &ClientError::Timeout, chat), None);
        assert!(
            backoff(
                0,
                &ClientError::Refused {
                    by: "127.0.0.1:9".into()
                },
                chat
            )
            .is_some()
        );
    }

    #[test]
    fn each_protocol_retries_what_its_sdk_retries() {
        // Stainless `_should_retry` (openai-python and anthropic-sdk-python
        // src/*/_base_client.py): 408, 409, 429, >= 500.
        for p in [
            Protocol::OpenaiChat,
            Protocol::OpenaiResponses,
            Protocol::AnthropicMessages,
        ] {
            for s in [408, 409, 429, 500, 501, 503, 529] {
                assert!(retryable(p, s, None), "{p:?} {s}");
            }
            for s in [400, 401, 403, 404, 422] {
                assert!(!retryable(p, s, None), "{p:?} {s}");
            }
        }
        // google-genai `_RETRY_HTTP_STATUS_CODES`: no 409; Wolfram's 501 is not retried.
        assert!(!retryable(Protocol::GeminiGenerate, 409, None));
        assert!(retryable(Protocol::GeminiStream, 503, None));
        assert!(!retryable(Protocol::WolframLlm, 501, None));
    }

    #[test]
    fn x_should_retry_overrides_the_status_rule() {
        let h = |v: &'static str| {
            let mut m = http::HeaderMap::new();
            m.insert("x-should-retry", http::HeaderValue::from_static(v));
            m
        };
        assert_eq!(should_retry(&h("true")), Some(true));
        assert_eq!(should_retry(&h("false")), Some(false));
        assert_eq!(should_retry(&h("maybe")), None, "the SDKs compare exactly");
        assert_eq!(should_retry(&http::HeaderMap::new()), None);
        let chat = Protocol::OpenaiChat;
        assert!(!retryable(chat, 503, Some(false)));
        assert!(retryable(chat, 400, Some(true)));
        let said = |s: u16, v: bool| ClientError::Status {
            status: s,
            message: String::new(),
            retry_after: None,
            request_id: None,
            should_retry: Some(v),
        };
        assert_eq!(backoff(0, &said(500, false), chat), None);
        assert!(backoff(0, &said(400, true), Protocol::AnthropicMessages).is_some());
    }

    #[test]
    fn a_long_retry_after_is_waited_out_only_within_the_deadline() {
        let now = tokio::time::Instant::now();
        let secs = Duration::from_secs;
        assert!(
            wait_fits(MAX_BACKOFF, Some(now), now),
            "our own waits always"
        );
        assert!(wait_fits(secs(20), Some(now + secs(30)), now));
        assert!(!wait_fits(secs(40), Some(now + secs(30)), now));
        assert!(wait_fits(secs(60), None, now));
        assert!(!wait_fits(secs(61), None, now));
    }

    #[test]
    fn request_ids_are_read_from_either_service_header() {
        let mut h = http::HeaderMap::new();
        assert_eq!(request_id(&h), None);
        h.insert(
            "request-id",
            "req_018EeWyXxfu5pfWkrYcMdjWG".parse().unwrap(),
        );
        assert_eq!(
            request_id(&h).as_deref(),
            Some("req_018EeWyXxfu5pfWkrYcMdjWG")
        );
        let mut o = http::HeaderMap::new();
        o.insert("x-request-id", "req_123".parse().unwrap());
        assert_eq!(request_id(&o).as_deref(), Some("req_123"));
    }

    #[test]
    fn retry_after_reads_seconds_dates_and_milliseconds() {
        let now = std::time::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let h = |pairs: &[(&'static str, &str)]| {
            let mut m = http::HeaderMap::new();
            for (k, v) in pairs {
                m.insert(*k, v.parse().unwrap());
            }
            m
        };
        assert_eq!(
            retry_after(&h(&[("retry-after", "2")]), now),
            Some(Duration::from_secs(2))
        );
        let date = httpdate::fmt_http_date(now + Duration::from_secs(3));
        assert_eq!(
            retry_after(&h(&[("retry-after", &date)]), now),
            Some(Duration::from_secs(3))
        );
        let past = httpdate::fmt_http_date(now - Duration::from_secs(3));
        assert_eq!(
            retry_after(&h(&[("retry-after", &past)]), now),
            Some(Duration::ZERO)
        );
        assert_eq!(
            retry_after(&h(&[("retry-after-ms", "1500"), ("retry-after", "9")]), now),
            Some(Duration::from_millis(1500)),
            "the finer header wins"
        );
        assert_eq!(retry_after(&h(&[("retry-after", "soon")]), now), None);
        assert_eq!(retry_after(&h(&[]), now), None);
    }

    #[test]
    fn error_message_reads_service_json() {
        let openai = br#"{"error":{"message":"Rate limit reached","type":"requests"}}"#;
        assert_eq!(error_message(openai), "Rate limit reached");
        let anthropic =
            br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
        assert_eq!(error_message(anthropic), "Overloaded");
        assert_eq!(
            error_message(b"Error 1: Invalid appid\n"),
            "Error 1: Invalid appid"
        );
    }
}
