//! What the protocol modules share: the buffered request, response builders, paced and
//! never-ending bodies, and the reset wrapper.

use super::catalog::Service;
use super::meter::Meter;
use axum::body::Body;
use bytes::Bytes;
use futures::{StreamExt, stream};
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode, header};
use serde_json::Value;
use singularis_engine::systems::{Protocol, SystemId};
use std::convert::Infallible;
use std::time::Duration;

pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Gap between streamed chunks: small, but enough that each one arrives in its own read,
/// as from a real service.
pub(crate) const CHUNK_GAP: Duration = Duration::from_millis(10);
/// Period of a `drip` fault's never-ending stream.
pub(crate) const DRIP_PERIOD: Duration = Duration::from_millis(200);
/// How long a `reset` response lingers after its partial body, so the bytes are flushed
/// before the connection is torn down.
const RESET_DELAY: Duration = Duration::from_millis(50);

/// A request with its body read in full.
pub(crate) struct Req {
    pub method: Method,
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Req {
    pub fn query_param(&self, key: &str) -> Option<String> {
        let q = self.query.as_deref()?;
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.into_owned())
    }

    /// A header's value, when present and not blank.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    }

    /// The token of `Authorization: Bearer <token>`, when not blank.
    pub fn bearer(&self) -> Option<&str> {
        let (scheme, token) = self.header("authorization")?.split_once(' ')?;
        let token = token.trim();
        (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
    }

    /// The body as a JSON object.
    pub fn json(&self) -> Result<Value, String> {
        match serde_json::from_slice::<Value>(&self.body) {
            Ok(v) if v.is_object() => Ok(v),
            Ok(_) => Err("the body is not a JSON object".into()),
            Err(e) => Err(e.to_string()),
        }
    }

    /// The model asked for: the body's `model`, or Gemini's `/models/{model}:method`.
    pub fn model(&self) -> Option<String> {
        if let Some((_, rest)) = self.path.split_once("/models/") {
            return rest.split(':').next().map(str::to_string);
        }
        let v: Value = serde_json::from_slice(&self.body).ok()?;
        v.get("model").and_then(Value::as_str).map(str::to_string)
    }

    pub fn describe(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

/// What a handler answers as.
pub(crate) struct Ctx<'a> {
    pub id: SystemId,
    pub protocol: Protocol,
    pub service: Service,
    /// The model the listener was set up with (LM Studio's "loaded" model).
    pub model: &'a str,
    /// Unique per request within this sandbox, for response ids.
    pub serial: u64,
    /// Where billed tokens are counted.
    pub meter: &'a Meter,
    /// The `truncate` fault: the answer hits its cap whatever the cap is.
    pub truncate: bool,
    /// What the answer cost to make, for the live clock.
    pub spent: std::sync::Mutex<Option<super::clock::Spent>>,
}

/// An answer fitted into its output cap, thinking first, as the services spend it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fit {
    pub text: String,
    pub thinking: u64,
    pub visible: u64,
    /// The cap ended the answer.
    pub cut: bool,
}

impl Fit {
    /// Billed output: the visible tokens and the thinking.
    pub fn output(&self) -> u64 {
        self.visible + self.thinking
    }
}

impl Ctx<'_> {
    /// Spend `thinking` tokens, then as much of `text` as `cap` leaves. The `truncate`
    /// fault lowers the cap to half the answer.
    pub fn fit(&self, cap: Option<u64>, thinking: u64, text: &str) -> Fit {
        let fit = self.fit_inner(cap, thinking, text);
        self.made(super::clock::Spent {
            thinking: fit.thinking,
            visible: fit.visible,
            audio_ms: 0,
        });
        fit
    }

    /// Tell the clock what the answer cost to make.
    pub fn made(&self, spent: super::clock::Spent) {
        *self.spent.lock().unwrap_or_else(|e| e.into_inner()) = Some(spent);
    }

    pub fn spent(&self) -> Option<super::clock::Spent> {
        *self.spent.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn fit_inner(&self, cap: Option<u64>, thinking: u64, text: &str) -> Fit {
        let full = tokens(text);
        let cap = match (cap, self.truncate) {
            (c, true) => Some(c.unwrap_or(u64::MAX).min(thinking + (full / 2).max(1))),
            (c, false) => c,
        };
        match cap {
            Some(cap) if thinking >= cap => Fit {
                text: String::new(),
                thinking: cap,
                visible: 0,
                cut: true,
            },
            Some(cap) if thinking + full > cap => {
                let visible = cap - thinking;
                Fit {
                    text: text.chars().take(visible as usize * 4).collect(),
                    thinking,
                    visible,
                    cut: true,
                }
            }
            _ => Fit {
                text: text.to_string(),
                thinking,
                visible: full,
                cut: false,
            },
        }
    }
}

impl Ctx<'_> {
    /// A unique, deterministic id body: system index and request serial.
    pub fn tag(&self) -> String {
        format!("sbx{:02}{:012x}", self.id.index(), self.serial)
    }

    /// Who is answering, for the game script: system name and model.
    pub fn expert(&self, model: &str) -> String {
        format!("{} {}", self.id.name(), model)
    }
}

pub(crate) fn json(status: StatusCode, v: &Value) -> Response<Body> {
    with_type(status, "application/json", Body::from(v.to_string()))
}

pub(crate) fn text(status: StatusCode, s: impl Into<String>) -> Response<Body> {
    with_type(status, "text/plain; charset=utf-8", Body::from(s.into()))
}

pub(crate) fn with_type(
    status: StatusCode,
    content_type: &'static str,
    body: Body,
) -> Response<Body> {
    let mut r = Response::new(body);
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// An event stream whose chunks come out [`CHUNK_GAP`] apart.
pub(crate) fn sse(content_type: &'static str, chunks: Vec<Bytes>) -> Response<Body> {
    let mut r = with_type(StatusCode::OK, content_type, paced(chunks));
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

pub(crate) fn set_header(r: &mut Response<Body>, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        r.headers_mut().insert(name, v);
    }
}

pub(crate) fn paced(chunks: Vec<Bytes>) -> Body {
    let s = stream::iter(chunks.into_iter().enumerate()).then(|(i, b)| async move {
        if i > 0 {
            tokio::time::sleep(CHUNK_GAP).await;
        }
        Ok::<Bytes, Infallible>(b)
    });
    Body::from_stream(s)
}

/// `prefix` at once, then `tick(n)` every [`DRIP_PERIOD`], forever.
pub(crate) fn endless(prefix: Vec<Bytes>, tick: impl FnMut(u64) -> Bytes + Send + 'static) -> Body {
    let tail = stream::unfold((0u64, tick), |(n, mut tick)| async move {
        tokio::time::sleep(DRIP_PERIOD).await;
        let chunk = tick(n);
        Some((Ok::<Bytes, Infallible>(chunk), (n + 1, tick)))
    });
    Body::from_stream(stream::iter(prefix.into_iter().map(Ok::<Bytes, Infallible>)).chain(tail))
}

/// A 200 whose body is one space every [`DRIP_PERIOD`], forever (leading whitespace keeps
/// it a valid prefix of JSON).
pub(crate) fn drip_plain(content_type: &'static str) -> Response<Body> {
    with_type(
        StatusCode::OK,
        content_type,
        endless(Vec::new(), |_| Bytes::from_static(b" ")),
    )
}

/// Keeps `resp`'s status and headers and the first half of its first chunk, then fails the
/// body, which makes hyper abort the connection mid-response (closed with a TCP reset: see
/// `server::Conn`).
pub(crate) fn reset_midway(resp: Response<Body>) -> Response<Body> {
    let (mut parts, body) = resp.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    let first = body.into_data_stream().take(1).map(|r| {
        r.map(|b| b.slice(..(b.len() / 2).max(1).min(b.len())))
            .map_err(|e| -> BoxError { Box::new(e) })
    });
    let boom = stream::once(async {
        tokio::time::sleep(RESET_DELAY).await;
        let e: BoxError = Box::new(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "sandbox fault: reset",
        ));
        Err::<Bytes, BoxError>(e)
    });
    Response::from_parts(parts, Body::from_stream(first.chain(boom)))
}

pub(crate) fn sse_data(v: &Value) -> Bytes {
    Bytes::from(format!("data: {v}\n\n"))
}

pub(crate) fn sse_event(name: &str, v: &Value) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {v}\n\n"))
}

/// A rough token count (about four characters per token, as for English).
pub(crate) fn tokens(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(4).max(1)
}

/// `text` in pieces of `words` words, whitespace kept, so the pieces concatenate back.
pub(crate) fn word_chunks(text: &str, words: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut n = 0;
    for piece in text.split_inclusive(char::is_whitespace) {
        cur.push_str(piece);
        if piece.ends_with(char::is_whitespace) {
            n += 1;
            if n == words {
                out.push(std::mem::take(&mut cur));
                n = 0;
            }
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Text of a message's content: a string, or the text of an array of parts
/// (`{"type":"text","text":..}`, `input_text`, Gemini `{"text":..}`).
pub(crate) fn content_text(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| match p {
                Value::String(s) => Some(s.as_str()),
                _ => p.get("text").and_then(Value::as_str),
            })
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_concatenate_back() {
        let t = "ACTION: attack\nREASON: A hostile is in range and the player is fit.";
        let c = word_chunks(t, 3);
        assert!(c.len() > 2);
        assert_eq!(c.concat(), t);
    }
}
