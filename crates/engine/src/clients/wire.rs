//! What every protocol does the same way: send, map an error status to the service's own
//! message, and read a body with a size cap.

use super::ClientError;
use super::RequestCtx;
use futures::StreamExt;
use std::time::Duration;

/// The largest answer we accept; a service sending more is broken.
pub const MAX_BODY: usize = 16 << 20;

/// Longest wait between two attempts; a service asking for more (`Retry-After`) fails the
/// request instead, so a game cycle is never stuck behind one system.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The statuses the services call retryable: timeout, rate limit, and the server-side
/// failures that may pass (Anthropic's 529 overloaded among them). 501 is not one: Wolfram
/// answers it for input it does not understand, and asking again only spends quota.
pub const RETRYABLE: [u16; 7] = [408, 429, 500, 502, 503, 504, 529];

/// Send, retrying what is worth retrying ([`RETRYABLE`], a refused or broken connection) up
/// to `ctx.retries` times with exponential backoff that honours `Retry-After` and
/// `retry-after-ms`. The wait between attempts ends at once when the system is closing.
pub async fn send(
    ctx: &RequestCtx,
    req: reqwest::RequestBuilder,
) -> Result<reqwest::Response, ClientError> {
    // A request whose body cannot be read here (a stream) is reserved at its cap alone.
    let body_bytes = req
        .try_clone()
        .and_then(|r| r.build().ok())
        .map(|r| {
            r.url().as_str().len() + r.body().and_then(|b| b.as_bytes()).map_or(0, <[u8]>::len)
        })
        .unwrap_or(0);
    ctx.reserve(body_bytes).await?;
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
        let err = match send_once(ctx, this).await {
            Ok(resp) => return Ok(resp),
            // A connect refused because the system is closing is the close, not a failure.
            Err(_) if ctx.stop.is_cancelled() => return Err(ClientError::Cancelled),
            Err(e) => e,
        };
        let Some(wait) = (attempt < ctx.retries)
            .then(|| backoff(attempt, &err))
            .flatten()
        else {
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

/// How long to wait before attempt `attempt + 1`, or `None` when the error is not worth a
/// retry. 200 ms doubling, ±20 % jitter so many clients don't retry in step, at most
/// [`MAX_BACKOFF`]; a `Retry-After` is a floor.
pub fn backoff(attempt: u32, err: &ClientError) -> Option<Duration> {
    let retry_after = match err {
        ClientError::Status {
            status,
            retry_after,
            ..
        } if RETRYABLE.contains(status) => *retry_after,
        ClientError::Refused { .. } | ClientError::Transport(_) => None,
        _ => return None,
    };
    let base = Duration::from_millis(200)
        .saturating_mul(1 << attempt.min(8))
        .min(MAX_BACKOFF);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let jitter = 0.8 + 0.4 * (nanos % 1000) as f64 / 1000.0;
    let wait = base.mul_f64(jitter);
    match retry_after {
        Some(ra) if ra > MAX_BACKOFF => None,
        Some(ra) => Some(wait.max(ra)),
        None => Some(wait),
    }
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
    let body = read_limited(resp, 64 << 10).await.unwrap_or_default();
    Err(ClientError::Status {
        status: status.as_u16(),
        message: error_message(&body),
        retry_after,
    })
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

    #[test]
    fn backoff_grows_honours_retry_after_and_gives_up_on_long_waits() {
        let status = |s: u16, ra: Option<u64>| ClientError::Status {
            status: s,
            message: String::new(),
            retry_after: ra.map(Duration::from_secs),
        };
        let first = backoff(0, &status(503, None)).unwrap();
        let third = backoff(2, &status(503, None)).unwrap();
        assert!(
            first >= Duration::from_millis(160) && first <= Duration::from_millis(240),
            "{first:?}"
        );
        assert!(third >= Duration::from_millis(640), "{third:?}");
        assert!(backoff(20, &status(500, None)).unwrap() <= MAX_BACKOFF.mul_f64(1.2));
        assert!(backoff(0, &status(429, Some(2))).unwrap() >= Duration::from_secs(2));
        assert_eq!(backoff(0, &status(429, Some(60))), None);
        assert_eq!(backoff(0, &status(400, None)), None);
        assert_eq!(
            backoff(0, &status(501, None)),
            None,
            "501 is not worth a retry"
        );
        assert!(backoff(0, &status(529, None)).is_some());
        assert!(backoff(0, &status(408, None)).is_some());
        assert_eq!(backoff(0, &ClientError::Timeout), None);
        assert!(
            backoff(
                0,
                &ClientError::Refused {
                    by: "127.0.0.1:9".into()
                }
            )
            .is_some()
        );
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
