//! Server-sent events, as the services frame them: `event:`/`data:` fields, events ended by
//! a blank line, `\n` or `\r\n` line ends, multi-line `data` joined with `\n`.

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
}

/// Cap on one unterminated line, so a stream without line ends cannot eat memory.
const MAX_LINE: usize = 1 << 20;

impl SseParser {
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<SseEvent>, ClientError> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        while let Some(nl) = self.buf.iter().position(|&b| b == b'\n') {
            let mut line: Vec<u8> = self.buf.drain(..=nl).collect();
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
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

/// Read an SSE response, handing each event to `on_event` until it returns `false` (the
/// protocol's terminator) or the body ends. Stops at once when `stop` fires.
pub async fn read_events<S, B, E>(
    body: S,
    stop: &CancellationToken,
    mut on_event: impl FnMut(SseEvent) -> Result<bool, ClientError>,
) -> Result<(), ClientError>
where
    S: Stream<Item = Result<B, E>> + Unpin,
    B: AsRef<[u8]>,
    ClientError: From<E>,
{
    let mut body = body;
    let mut parser = SseParser::default();
    loop {
        let chunk = tokio::select! {
            c = body.next() => c,
            _ = stop.cancelled() => return Err(ClientError::Cancelled),
        };
        let Some(chunk) = chunk else {
            if parser.has_partial() {
                return Err(ClientError::Protocol("stream ended mid-event".into()));
            }
            return Ok(());
        };
        for ev in parser.feed(chunk?.as_ref())? {
            if !on_event(ev)? {
                drain(&mut body, stop).await;
                return Ok(());
            }
        }
    }
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
    fn rejects_bad_utf8() {
        let mut p = SseParser::default();
        assert!(p.feed(b"data: \xff\xfe\n\n").is_err());
    }
}
