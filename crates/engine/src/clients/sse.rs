//! Server-sent events as the spec frames them: `event:`/`data:` fields, events ended by a
//! blank line, lines ended by `\r\n`, `\n` or a lone `\r`, multi-line `data` joined with
//! `\n`. One loop for every streaming client: [`read_json_events`] hands each event's data
//! as JSON. (eventsource-stream does the same framing; it would bring nom for 60 lines.)

use super::ClientError;
use futures::{Stream, StreamExt};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    pub event: Option<String>,
    pub data: String,
}

/// Incremental parser: feed bytes, take whole events.
#[derive(Debug, Default)]
pub struct SseParser {
    buf: Vec<u8>,
    event: Option<String>,
    data: Vec<String>,
    /// The last line ended with `\r`: a `\n` that comes next (maybe in the next chunk)
    /// belongs to that line end, not a blank line of its own.
    after_cr: bool,
}

/// Cap on one unterminated line, so a stream without line ends cannot eat memory.
const MAX_LINE: usize = 1 << 20;

impl SseParser {
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<SseEvent>, ClientError> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        loop {
            if self.after_cr && !self.buf.is_empty() {
                if self.buf[0] == b'\n' {
                    self.buf.remove(0);
                }
                self.after_cr = false;
            }
            let Some(end) = self.buf.iter().position(|&b| b == b'\n' || b == b'\r') else {
                break;
            };
            let mut line: Vec<u8> = self.buf.drain(..=end).collect();
            if line.pop() == Some(b'\r') {
                self.after_cr = true;
            }
            let line = String::from_utf8(line)
                .map_err(|_| ClientError::Protocol("SSE line is not UTF-8".into()))?;
            if line.is_empty() {
                if !self.data.is_empty() || self.event.is_some() {
                    out.push(SseEvent {
                        event: self.event.take(),
                        data: self.data.join("\n"),
                    });
                    self.data.clear();
                }
                continue;
            }
            if line.starts_with(':') {
                continue; // comment / keep-alive
            }
            let (field, value) = match line.split_once(':') {
                Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
                None => (line.as_str(), ""),
            };
            match field {
                "data" => self.data.push(value.to_string()),
                "event" => self.event = Some(value.to_string()),
                _ => {} // id, retry: not needed here
            }
        }
        if self.buf.len() > MAX_LINE {
            return Err(ClientError::Protocol("SSE line longer than 1 MiB".into()));
        }
        Ok(out)
    }

    /// True when bytes of an unfinished event remain.
    pub fn has_partial(&self) -> bool {
        !self.buf.is_empty() || !self.data.is_empty()
    }
}

/// What bounds a stream: the call's deadline (overall, and so also to the first content,
/// however long the model reasons in silence first), and the longest silence between two
/// content events once content has begun.
#[derive(Debug, Clone, Copy)]
pub struct StreamLimits {
    pub deadline: Option<tokio::time::Instant>,
    pub idle: std::time::Duration,
}

/// What an event was to the protocol that read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Lifecycle, heartbeat or metadata (`response.created`, `ping`, usage): the stream is
    /// alive, but no content came, so the silence rule does not restart.
    Go,
    /// Output the caller waits for (a text delta): the silence rule counts from here.
    Content,
    /// The protocol's terminator: stop reading.
    End,
}

/// How a stream's body ended. The caller judges whether its answer was whole: as in the
/// official SDKs, an answer is whole once its stop reason has arrived, terminator or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The protocol's terminator ([`Step::End`]).
    Terminator,
    /// The body ended. `mid_event`: inside an event, which is dropped, not dispatched (the
    /// SSE spec's rule, and the SDKs').
    Eof { mid_event: bool },
}

impl Ended {
    /// What to add to an error about an answer that stopped short.
    pub fn cut_note(self) -> &'static str {
        match self {
            Ended::Eof { mid_event: true } => " (the stream ended mid-event)",
            _ => "",
        }
    }
}

/// Read an SSE response, handing each event to `on_event` until it returns [`Step::End`]
/// or the body ends. Stops at once when `stop` fires; past the deadline, or once content
/// has begun after `idle` without more, ends with [`ClientError::Cut`] (the caller adds
/// what the stream had said). Before the first content only the deadline bounds it: a
/// reasoning model is silent for seconds after its lifecycle events (ARCHITECTURE.md,
/// "Deadlines and breakers").
pub async fn read_events<S, B, E>(
    body: S,
    stop: &CancellationToken,
    limits: StreamLimits,
    mut on_event: impl FnMut(SseEvent) -> Result<Step, ClientError>,
) -> Result<Ended, ClientError>
where
    S: Stream<Item = Result<B, E>> + Unpin,
    B: AsRef<[u8]>,
    ClientError: From<E>,
{
    let mut body = body;
    let mut parser = SseParser::default();
    let started = tokio::time::Instant::now();
    let mut last_content: Option<tokio::time::Instant> = None;
    loop {
        let silent_until = last_content.map(|t| t + limits.idle);
        let (until, silent) = match (limits.deadline, silent_until) {
            (Some(d), Some(s)) if s < d => (Some(s), true),
            (None, Some(s)) => (Some(s), true),
            (d, _) => (d, false),
        };
        let timer = async {
            match until {
                Some(t) => tokio::time::sleep_until(t).await,
                None => std::future::pending().await,
            }
        };
        let chunk = tokio::select! {
            c = body.next() => c,
            _ = stop.cancelled() => return Err(ClientError::Cancelled),
            _ = timer => {
                let why = if silent {
                    format!("no content for {} ms", limits.idle.as_millis())
                } else if last_content.is_none() {
                    format!("no content within its deadline ({} ms)", started.elapsed().as_millis())
                } else {
                    format!("past its deadline after {} ms", started.elapsed().as_millis())
                };
                return Err(ClientError::Cut { partial: String::new(), why });
            }
        };
        let Some(chunk) = chunk else {
            return Ok(Ended::Eof {
                mid_event: parser.has_partial(),
            });
        };
        for ev in parser.feed(chunk?.as_ref())? {
            match on_event(ev)? {
                Step::Go => {}
                Step::Content => last_content = Some(tokio::time::Instant::now()),
                Step::End => {
                    drain(&mut body, stop).await;
                    return Ok(Ended::Terminator);
                }
            }
        }
    }
}

/// One streamed event's data: JSON, or OpenAI's `[DONE]` terminator.
#[derive(Debug)]
pub enum JsonEvent {
    Json(serde_json::Value),
    Done,
}

/// [`read_events`] with each event's data parsed as JSON, the one place a stream's JSON is
/// read: `on_event` says what each event was.
pub async fn read_json_events<S, B, E>(
    body: S,
    stop: &CancellationToken,
    limits: StreamLimits,
    mut on_event: impl FnMut(JsonEvent) -> Result<Step, ClientError>,
) -> Result<Ended, ClientError>
where
    S: Stream<Item = Result<B, E>> + Unpin,
    B: AsRef<[u8]>,
    ClientError: From<E>,
{
    read_events(body, stop, limits, |ev| {
        if ev.data == "[DONE]" {
            return on_event(JsonEvent::Done);
        }
        let v = serde_json::from_str(&ev.data).map_err(|e| {
            ClientError::Protocol(format!(
                "invalid event JSON{}: {e}",
                ev.event.map(|n| format!(" ({n})")).unwrap_or_default()
            ))
        })?;
        on_event(JsonEvent::Json(v))
    })
    .await
}

/// Read what follows the protocol's terminator (the end of the chunked body) so the
/// connection goes back to the pool instead of being closed; bounded, as a server may
/// keep talking.
async fn drain<S, B, E>(body: &mut S, stop: &CancellationToken)
where
    S: Stream<Item = Result<B, E>> + Unpin,
    B: AsRef<[u8]>,
{
    let mut left = 64 * 1024usize;
    loop {
        let next = tokio::select! {
            n = tokio::time::timeout(std::time::Duration::from_millis(100), body.next()) => n,
            _ = stop.cancelled() => return,
        };
        match next {
            Ok(Some(Ok(chunk))) if chunk.as_ref().len() < left => left -= chunk.as_ref().len(),
            _ => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_split_events_with_crlf_and_comments() {
        let mut p = SseParser::default();
        assert!(p.feed(b"event: a\r\ndata: {\"x\"").unwrap().is_empty());
        let evs = p
            .feed(b":1}\r\n\r\n: keepalive\n\ndata: one\ndata: two\n\n")
            .unwrap();
        assert_eq!(
            evs,
            vec![
                SseEvent {
                    event: Some("a".into()),
                    data: "{\"x\":1}".into()
                },
                SseEvent {
                    event: None,
                    data: "one\ntwo".into()
                },
            ]
        );
        assert!(!p.has_partial());
    }

    #[test]
    fn a_lone_cr_ends_a_line_and_a_crlf_split_across_chunks_is_one_line_end() {
        let mut p = SseParser::default();
        let evs = p.feed(b"event: a\rdata: 1\r\r").unwrap();
        assert_eq!(
            evs,
            vec![SseEvent {
                event: Some("a".into()),
                data: "1".into()
            }]
        );
        // `\r` at the end of one chunk, `\n` at the start of the next: one line end, so no
        // blank line (no event) between the two data lines.
        assert!(p.feed(b"data: x\r").unwrap().is_empty());
        assert!(p.feed(b"\ndata: y\r").unwrap().is_empty());
        let evs = p.feed(b"\n\r\n").unwrap();
        assert_eq!(
            evs,
            vec![SseEvent {
                event: None,
                data: "x\ny".into()
            }]
        );
        assert!(!p.has_partial());
    }

    /// A body that sends each `(gap, text)` after its gap.
    fn timed(
        events: Vec<(u64, &'static str)>,
    ) -> impl Stream<Item = Result<bytes::Bytes, ClientError>> + Unpin {
        Box::pin(
            futures::stream::iter(events).then(|(gap, text)| async move {
                tokio::time::sleep(std::time::Duration::from_millis(gap)).await;
                Ok(bytes::Bytes::from(text))
            }),
        )
    }

    async fn read(
        events: Vec<(u64, &'static str)>,
        deadline_ms: Option<u64>,
    ) -> (Result<Ended, ClientError>, Vec<String>) {
        let limits = StreamLimits {
            deadline: deadline_ms
                .map(|ms| tokio::time::Instant::now() + std::time::Duration::from_millis(ms)),
            idle: std::time::Duration::from_millis(100),
        };
        let mut seen = Vec::new();
        let r = read_events(timed(events), &CancellationToken::new(), limits, |ev| {
            seen.push(ev.data.clone());
            Ok(match ev.data.as_str() {
                "end" => Step::End,
                d if d.starts_with("text") => Step::Content,
                _ => Step::Go,
            })
        })
        .await;
        (r, seen)
    }

    #[tokio::test]
    async fn silence_before_the_first_content_is_reasoning_not_a_stall() {
        // Lifecycle at once, then four times the idle limit of silence, then the answer.
        let (r, seen) = read(
            vec![
                (0, "data: created\n\n"),
                (400, "data: text 1\n\n"),
                (0, "data: end\n\n"),
            ],
            Some(5_000),
        )
        .await;
        assert!(r.is_ok(), "{r:?}");
        assert_eq!(seen, ["created", "text 1", "end"]);
    }

    #[tokio::test]
    async fn once_content_began_a_silence_is_cut_and_heartbeats_do_not_count() {
        let (r, seen) = read(
            vec![
                (0, "data: text 1\n\n"),
                (50, ": keep-alive\n\n"),
                (50, "data: ping\n\n"),
                (50, ": keep-alive\n\n"),
                (50, "data: ping\n\n"),
                (50, ": keep-alive\n\n"),
                (50, "data: ping\n\n"),
                (20, "data: text 2\n\n"),
            ],
            None,
        )
        .await;
        match r {
            Err(ClientError::Cut { why, .. }) => assert_eq!(why, "no content for 100 ms"),
            other => panic!("expected a cut, got {other:?}"),
        }
        // A chunk every 50 ms, but no content after the first: heartbeats keep no stream alive.
        assert!(!seen.contains(&"text 2".to_string()), "{seen:?}");
    }

    #[tokio::test]
    async fn the_deadline_bounds_the_wait_for_the_first_content() {
        let (r, _) = read(
            vec![(0, "data: created\n\n"), (2_000, "data: text 1\n\n")],
            Some(150),
        )
        .await;
        match r {
            Err(ClientError::Cut { why, .. }) => {
                assert!(why.starts_with("no content within its deadline"), "{why}")
            }
            other => panic!("expected a cut, got {other:?}"),
        }
    }

    #[test]
    fn rejects_bad_utf8() {
        let mut p = SseParser::default();
        assert!(p.feed(b"data: \xff\xfe\n\n").is_err());
    }
}
