//! Recordings of sessions (`--record DIR`; README.md, "Recordings"): per system and in
//! order, each exchange its pool made: the request's method, path and body (no headers:
//! that is where keys travel; key-like query parameters are masked), and the answer's
//! status, headers, body chunks and the time of each. The sandbox serves a recording back
//! with its own timing (`timing = "replay:DIR"`), so a session with real keys becomes an
//! offline reproduction.
//!
//! The format is versioned JSON lines, one file per system (`SYSTEM.jsonl`): a [`Header`]
//! line, then one [`Exchange`] line per request, written when the exchange ends (so lines
//! may be out of `seq` order; replay sorts them).

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

/// The format's version: a reader refuses a newer one.
pub const VERSION: u32 = 1;

/// Query parameters that carry credentials on some services (Wolfram's `appid`, Gemini's
/// `key`): recorded as `REDACTED`.
pub const SECRET_PARAMS: [&str; 5] = ["appid", "key", "api_key", "access_token", "token"];

/// What replaces a key wherever it would have been recorded.
pub const MASK: &str = "REDACTED";

/// The first line of each file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// [`VERSION`].
    pub recording: u32,
    pub system: String,
    /// RFC 3339.
    pub started_at: String,
}

/// One request and its answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Exchange {
    /// Order in which the system sent its requests, from 0.
    pub seq: u64,
    /// When the request went out, in ms from the recording's start.
    pub at_ms: f64,
    pub request: Request,
    /// `None`: no answer came (refused, reset, timed out): see `error`.
    pub response: Option<Response>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    pub method: String,
    /// Path and query, secret parameters masked.
    pub path: String,
    pub body: Data,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// Headers received, in ms from the request.
    pub headers_ms: f64,
    pub chunks: Vec<Chunk>,
    /// `complete`, `dropped` (the reader stopped: a cancelled call) or `error: …`.
    pub end: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chunk {
    /// Received, in ms from the request.
    pub ms: f64,
    pub data: Data,
}

/// Bytes as text when they are UTF-8, else base64.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Data {
    Text(String),
    Base64 { base64: String },
}

impl Data {
    fn of(bytes: &[u8], secrets: &[String]) -> Data {
        match std::str::from_utf8(bytes) {
            Ok(s) => Data::Text(mask(s, secrets)),
            Err(_) => {
                use base64::Engine;
                Data::Base64 {
                    base64: base64::engine::general_purpose::STANDARD.encode(bytes),
                }
            }
        }
    }

    pub fn bytes(&self) -> Vec<u8> {
        match self {
            Data::Text(s) => s.as_bytes().to_vec(),
            Data::Base64 { base64: b } => {
                use base64::Engine;
                base64::engine::general_purpose::STANDARD
                    .decode(b)
                    .unwrap_or_default()
            }
        }
    }
}

fn mask(s: &str, secrets: &[String]) -> String {
    let mut out = s.to_string();
    for k in secrets.iter().filter(|k| k.len() >= 4) {
        if out.contains(k.as_str()) {
            out = out.replace(k.as_str(), MASK);
        }
    }
    out
}

/// `path?query` with [`SECRET_PARAMS`] masked.
pub fn masked_path(path_and_query: &str) -> String {
    let Some((path, query)) = path_and_query.split_once('?') else {
        return path_and_query.to_string();
    };
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, _)) if SECRET_PARAMS.contains(&k) => format!("{k}={MASK}"),
            _ => pair.to_string(),
        })
        .collect();
    format!("{path}?{}", pairs.join("&"))
}

/// One system's recording: its file, its request counter and its clock.
pub struct Recorder {
    file: Mutex<std::fs::File>,
    path: PathBuf,
    seq: AtomicU64,
    epoch: Instant,
    /// Keys to mask wherever they would be written (a service may echo one back).
    secrets: Vec<String>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("path", &self.path)
            .finish()
    }
}

impl Recorder {
    /// Start `DIR/SYSTEM.jsonl` (the directory is made; an existing file is replaced, mode
    /// 0600: a recording holds what the services said).
    pub fn create(
        dir: &Path,
        system: &str,
        epoch: Instant,
        secrets: Vec<String>,
    ) -> std::io::Result<Arc<Recorder>> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(format!("{system}.jsonl"));
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut file = opts.open(&path)?;
        let header = Header {
            recording: VERSION,
            system: system.to_string(),
            started_at: chrono::Utc::now().to_rfc3339(),
        };
        writeln!(file, "{}", serde_json::to_string(&header)?)?;
        Ok(Arc::new(Recorder {
            file: Mutex::new(file),
            path,
            seq: AtomicU64::new(0),
            epoch,
            secrets,
        }))
    }

    /// A request going out now.
    pub fn begin(self: &Arc<Self>, method: &str, path_and_query: &str, body: &[u8]) -> Pending {
        Pending {
            recorder: self.clone(),
            started: Instant::now(),
            exchange: Exchange {
                seq: self.seq.fetch_add(1, Ordering::Relaxed),
                at_ms: ms(self.epoch.elapsed()),
                request: Request {
                    method: method.to_string(),
                    path: masked_path(path_and_query),
                    body: Data::of(body, &self.secrets),
                },
                response: None,
                error: None,
            },
        }
    }

    fn write(&self, exchange: &Exchange) {
        let line = match serde_json::to_string(exchange) {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(path = %self.path.display(), error = %e, "recording: an exchange could not be written");
                return;
            }
        };
        let mut f = self.file.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = writeln!(f, "{line}") {
            tracing::warn!(path = %self.path.display(), error = %e, "recording: an exchange could not be written");
        }
    }
}

fn ms(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// A request on the wire, until its answer's headers come.
pub struct Pending {
    recorder: Arc<Recorder>,
    started: Instant,
    exchange: Exchange,
}

impl Pending {
    /// No answer: written at once.
    pub fn failed(mut self, error: &str) {
        self.exchange.error = Some(mask(error, &self.recorder.secrets));
        self.recorder.write(&self.exchange);
    }

    /// The headers came: the body is recorded as it is read.
    pub fn answered(mut self, status: u16, headers: &http::HeaderMap) -> Tap {
        let secrets = &self.recorder.secrets;
        self.exchange.response = Some(Response {
            status,
            headers: headers
                .iter()
                .filter(|(k, _)| *k != http::header::SET_COOKIE)
                .map(|(k, v)| {
                    (
                        k.as_str().to_string(),
                        mask(&String::from_utf8_lossy(v.as_bytes()), secrets),
                    )
                })
                .collect(),
            headers_ms: ms(self.started.elapsed()),
            chunks: Vec::new(),
            end: String::new(),
        });
        Tap {
            pending: Some(self),
        }
    }
}

/// Records a body's chunks; writes the exchange when the body ends, fails, or is dropped
/// unread.
pub struct Tap {
    pending: Option<Pending>,
}

impl Tap {
    fn chunk(&mut self, data: &Bytes) {
        if let Some(p) = &mut self.pending {
            let at = ms(p.started.elapsed());
            let data = Data::of(data, &p.recorder.secrets);
            if let Some(r) = &mut p.exchange.response {
                r.chunks.push(Chunk { ms: at, data });
            }
        }
    }

    fn end(&mut self, how: &str) {
        if let Some(mut p) = self.pending.take() {
            if let Some(r) = &mut p.exchange.response {
                r.end = how.to_string();
            }
            p.recorder.write(&p.exchange);
        }
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        self.end("dropped");
    }
}

/// A response body that feeds a [`Tap`].
pub struct Recorded<B> {
    pub body: B,
    pub tap: Tap,
}

impl<B> http_body::Body for Recorded<B>
where
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let data = data.clone();
                    self.tap.chunk(&data);
                }
            }
            Poll::Ready(Some(Err(e))) => {
                let how = format!("error: {e}");
                self.tap.end(&how);
            }
            Poll::Ready(None) => self.tap.end("complete"),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// A recording read back: each system's exchanges in `seq` order.
#[derive(Debug, Clone, Default)]
pub struct Recording {
    pub systems: std::collections::BTreeMap<String, Vec<Exchange>>,
}

impl Recording {
    /// Every `*.jsonl` of `dir`. A file of a newer version, a bad line or no file at all is
    /// an error naming the file (and line).
    pub fn load(dir: &Path) -> Result<Recording, String> {
        let entries = std::fs::read_dir(dir)
            .map_err(|e| format!("{}: cannot read the recording: {e}", dir.display()))?;
        let mut systems = std::collections::BTreeMap::new();
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some("jsonl") {
                continue;
            }
            let text =
                std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let mut lines = text
                .lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty());
            let Some((_, first)) = lines.next() else {
                continue;
            };
            let header: Header = serde_json::from_str(first)
                .map_err(|e| format!("{}:1: not a recording header: {e}", path.display()))?;
            if header.recording > VERSION {
                return Err(format!(
                    "{}:1: recording version {} is newer than this program reads ({VERSION})",
                    path.display(),
                    header.recording
                ));
            }
            let mut exchanges = Vec::new();
            for (i, line) in lines {
                let ex: Exchange = serde_json::from_str(line)
                    .map_err(|e| format!("{}:{}: {e}", path.display(), i + 1))?;
                exchanges.push(ex);
            }
            exchanges.sort_by_key(|e| e.seq);
            systems.insert(header.system, exchanges);
        }
        if systems.is_empty() {
            return Err(format!("{}: no recording (*.jsonl) in it", dir.display()));
        }
        Ok(Recording { systems })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_query_parameters_are_masked() {
        assert_eq!(
            masked_path("/api/v1/llm-api?input=2%2B2&appid=ABC-123&maxchars=500"),
            "/api/v1/llm-api?input=2%2B2&appid=REDACTED&maxchars=500"
        );
        assert_eq!(masked_path("/v1/responses"), "/v1/responses");
    }

    #[test]
    fn an_exchange_round_trips_and_keys_never_reach_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let rec = Recorder::create(
            dir.path(),
            "claude_client",
            Instant::now(),
            vec!["sk-canary-42".into()],
        )
        .unwrap();
        let p = rec.begin(
            "POST",
            "/v1/messages?key=sk-canary-42",
            b"{\"model\":\"m\"}",
        );
        let mut headers = http::HeaderMap::new();
        headers.insert("request-id", http::HeaderValue::from_static("req_1"));
        let mut tap = p.answered(401, &headers);
        tap.chunk(&Bytes::from_static(b"invalid x-api-key: sk-canary-42"));
        tap.chunk(&Bytes::from_static(&[0xff, 0xfe]));
        tap.end("complete");
        drop(tap);
        let text = std::fs::read_to_string(dir.path().join("claude_client.jsonl")).unwrap();
        assert!(!text.contains("sk-canary-42"), "{text}");
        let r = Recording::load(dir.path()).unwrap();
        let ex = &r.systems["claude_client"][0];
        assert_eq!(ex.request.path, "/v1/messages?key=REDACTED");
        let resp = ex.response.as_ref().unwrap();
        assert_eq!((resp.status, resp.end.as_str()), (401, "complete"));
        assert_eq!(resp.chunks[1].data.bytes(), vec![0xff, 0xfe]);
    }
}
