//! Serving a recording back (`timing = "replay:DIR"`, `sandbox --replay DIR`; README.md,
//! "Recordings"): each system's listener answers its requests from that system's recorded
//! exchanges, with their own timing (headers, then each chunk, at the recorded offsets). A
//! request matches the first unserved exchange with the same method, path and body; one
//! that matches none is answered 400 with the difference from the next one in order.

use super::wire::{self, Req};
use axum::body::Body;
use bytes::Bytes;
use futures::StreamExt;
use http::{HeaderName, HeaderValue, StatusCode};
use serde_json::{Value, json};
use singularis_engine::net::record::{Exchange, Recording, Response, masked_path};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

/// The exchanges still to serve, per system.
#[derive(Debug, Default)]
pub struct Replay {
    left: Mutex<BTreeMap<String, Vec<Exchange>>>,
    served: Mutex<BTreeMap<String, u64>>,
}

/// What a request got from the recording.
pub enum Served {
    /// The recorded answer, to be sent with its timing.
    Answer(Box<Response>),
    /// Recorded without an answer (refused, reset, timed out): drop the connection.
    NoAnswer,
    /// Matches nothing: the 400 to send.
    Mismatch(http::Response<Body>),
}

impl Replay {
    pub fn new(recording: Recording) -> Replay {
        Replay {
            left: Mutex::new(recording.systems),
            served: Mutex::default(),
        }
    }

    /// The exchange for `req` to `system`.
    pub fn serve(&self, system: &str, req: &Req, path_and_query: &str) -> Served {
        let path = masked_path(path_and_query);
        let method = req.method.as_str();
        let mut left = self.left.lock().unwrap_or_else(|e| e.into_inner());
        let Some(queue) = left.get_mut(system) else {
            return Served::Mismatch(mismatch(format!(
                "replay: the recording has nothing for {system}"
            )));
        };
        let found = queue.iter().position(|e| {
            e.request.method == method
                && e.request.path == path
                && e.request.body.bytes() == req.body.as_ref()
        });
        let mut served = self.served.lock().unwrap_or_else(|e| e.into_inner());
        let n = served.entry(system.to_string()).or_default();
        let Some(at) = found else {
            let why = match queue.first() {
                None => format!(
                    "replay: the recording of {system} has no more exchanges ({} served)",
                    *n
                ),
                Some(next) => format!(
                    "replay: request {} to {system} differs from the recording's exchange {}: {}",
                    *n + 1,
                    next.seq,
                    difference(next, method, &path, &req.body)
                ),
            };
            return Served::Mismatch(mismatch(why));
        };
        *n += 1;
        match queue.remove(at).response {
            Some(r) => Served::Answer(Box::new(r)),
            None => Served::NoAnswer,
        }
    }
}

/// The 400 a request that is not in the recording gets, in the OpenAI error shape (the
/// message is what a user reads, whichever client asked).
fn mismatch(message: String) -> http::Response<Body> {
    tracing::warn!("{message}");
    wire::json(
        StatusCode::BAD_REQUEST,
        &json!({ "error": { "message": message, "type": "replay_mismatch", "param": null, "code": "replay_mismatch" } }),
    )
}

/// The first difference between a recorded request and this one, in words.
fn difference(recorded: &Exchange, method: &str, path: &str, body: &[u8]) -> String {
    let r = &recorded.request;
    if r.method != method {
        return format!("method: recorded {}, got {method}", r.method);
    }
    if r.path != path {
        return format!("path: recorded {:?}, got {path:?}", r.path);
    }
    let rb = r.body.bytes();
    match (
        serde_json::from_slice::<Value>(&rb),
        serde_json::from_slice::<Value>(body),
    ) {
        (Ok(a), Ok(b)) => match first_json_difference(&a, &b, String::new()) {
            Some((at, was, now)) => format!(
                "body at {}: recorded {}, got {}",
                if at.is_empty() { "/" } else { &at },
                short(&was),
                short(&now)
            ),
            None => "body: the same JSON, written differently".to_string(),
        },
        _ => {
            let at = rb
                .iter()
                .zip(body)
                .position(|(a, b)| a != b)
                .unwrap_or(rb.len().min(body.len()));
            format!(
                "body at byte {at}: recorded {} bytes, got {}",
                rb.len(),
                body.len()
            )
        }
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 80 {
        format!("{}…", s.chars().take(80).collect::<String>())
    } else {
        s
    }
}

/// The first JSON pointer where `a` and `b` differ, with both values there.
fn first_json_difference(a: &Value, b: &Value, at: String) -> Option<(String, Value, Value)> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().find_map(|k| {
                let here = format!("{at}/{k}");
                match (x.get(k), y.get(k)) {
                    (Some(p), Some(q)) => first_json_difference(p, q, here),
                    (p, q) => Some((
                        here,
                        p.cloned().unwrap_or(Value::Null),
                        q.cloned().unwrap_or(Value::Null),
                    )),
                }
            })
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (p, q))| first_json_difference(p, q, format!("{at}/{i}"))),
        _ if a == b => None,
        _ => Some((at, a.clone(), b.clone())),
    }
}

/// The recorded answer, sent as it came: headers at their time, each chunk at its own,
/// counted from `since` (the request read).
pub async fn answer(resp: Response, since: tokio::time::Instant) -> http::Response<Body> {
    let at = move |ms: f64| since + Duration::from_secs_f64(ms.max(0.0) / 1e3);
    tokio::time::sleep_until(at(resp.headers_ms)).await;
    let chunks = resp
        .chunks
        .into_iter()
        .map(move |c| (at(c.ms), c.data.bytes()));
    let body = futures::stream::iter(chunks).then(|(due, data)| async move {
        tokio::time::sleep_until(due).await;
        Ok::<Bytes, std::convert::Infallible>(Bytes::from(data))
    });
    let mut r = http::Response::new(Body::from_stream(body));
    *r.status_mut() = StatusCode::from_u16(resp.status).unwrap_or(StatusCode::OK);
    for (k, v) in resp.headers {
        // The body is re-framed (chunked); the recorded length and framing do not apply.
        if matches!(
            k.as_str(),
            "content-length" | "transfer-encoding" | "connection"
        ) {
            continue;
        }
        if let (Ok(k), Ok(v)) = (HeaderName::try_from(k), HeaderValue::from_str(&v)) {
            r.headers_mut().append(k, v);
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_difference_is_named_by_its_json_pointer() {
        let a = json!({"model": "gpt-5.1", "input": [{"content": "attack"}], "stream": true});
        let b = json!({"model": "gpt-5.1", "input": [{"content": "flee"}], "stream": true});
        let (at, was, now) = first_json_difference(&a, &b, String::new()).unwrap();
        assert_eq!(at, "/input/0/content");
        assert_eq!((was, now), (json!("attack"), json!("flee")));
        assert!(first_json_difference(&a, &a, String::new()).is_none());
    }
}
