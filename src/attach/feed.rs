//! One agent's feed: `GET /v1/events`, read as it comes, each event handed on; when the
//! connection is lost, tried again with backoff until the agent is back. The channel to the
//! dashboard is bounded: a dashboard that falls behind holds this reader, the socket fills,
//! and the agent (which never waits on a viewer) resyncs this viewer from a snapshot.

use crate::backoff::Backoff;
use crate::clients::SseParser;
use crate::control_token::ViewerToken as Token;
use futures::StreamExt;
use singularis_protocol::{Event, Line, ReadError};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// The first retry's wait; each one after it waits twice as long...
pub const FIRST_RETRY: Duration = Duration::from_millis(250);
/// ...up to this.
pub const MAX_RETRY: Duration = Duration::from_secs(5);
/// The agent sends a `refresh` every second: this long without a byte is a dead link.
const SILENCE: Duration = Duration::from_secs(10);
/// Events held between this reader and the dashboard.
pub const QUEUE: usize = 64;

#[derive(Debug)]
pub enum FeedMsg {
    Event(Box<Event>),
    /// The connection was lost (or could not be made); the next attempt is in `next_in`.
    Lost {
        attempt: u32,
        next_in: Duration,
        why: String,
    },
    /// The stream ended after the agent's shutdown (`stream_closed`): the agent exited.
    Ended,
    /// The agent speaks another major version of the protocol: nothing of it is read, and
    /// the feed stops (it would be the same agent next time). The words say so.
    Incompatible(String),
}

/// The wait before the `attempt`th retry: 250 ms, 500 ms, … up to 5 s.
pub fn backoff(attempt: u32) -> Duration {
    Backoff::new(FIRST_RETRY, MAX_RETRY).delay(attempt.saturating_sub(1))
}

enum End {
    /// `stream_closed` came.
    Closed,
    Lost(String),
    /// Another major version of the protocol: the words say which.
    Incompatible(String),
}

/// Follow `base`'s stream until it ends after a shutdown, or `stop`; every message to `tx`,
/// tagged with `index` (the agent's place in the fleet).
pub async fn follow(
    client: reqwest::Client,
    base: String,
    token: Option<Token>,
    index: usize,
    tx: mpsc::Sender<(usize, FeedMsg)>,
    stop: CancellationToken,
) {
    let mut attempt = 0u32;
    loop {
        let end = tokio::select! {
            end = connect(&client, &base, token.as_ref(), index, &tx, &mut attempt) => end,
            () = stop.cancelled() => return,
        };
        match end {
            End::Closed => {
                let _ = tx.send((index, FeedMsg::Ended)).await;
                return;
            }
            End::Incompatible(why) => {
                tracing::warn!(agent = %base, why, "not following the agent");
                let _ = tx.send((index, FeedMsg::Incompatible(why))).await;
                return;
            }
            End::Lost(why) => {
                attempt = attempt.saturating_add(1);
                let next_in = backoff(attempt);
                tracing::info!(agent = %base, attempt, why, "connection to the agent lost; retrying");
                let lost = FeedMsg::Lost {
                    attempt,
                    next_in,
                    why,
                };
                if tx.send((index, lost)).await.is_err() {
                    return;
                }
                tokio::select! {
                    () = tokio::time::sleep(next_in) => {}
                    () = stop.cancelled() => return,
                }
            }
        }
    }
}

async fn connect(
    client: &reqwest::Client,
    base: &str,
    token: Option<&Token>,
    index: usize,
    tx: &mpsc::Sender<(usize, FeedMsg)>,
    attempt: &mut u32,
) -> End {
    let mut req = client
        .get(format!("{base}/v1/events"))
        .header(reqwest::header::ACCEPT, "text/event-stream");
    if let Some(t) = token {
        req = req.bearer_auth(t.secret());
    }
    let resp = match req.send().await {
        Ok(r) => r,
        Err(e) => return End::Lost(reqwest_why(&e)),
    };
    let status = resp.status();
    if !status.is_success() {
        return End::Lost(match status.as_u16() {
            401 => "the agent wants the control token to watch (401)".to_string(),
            _ => format!("the agent answered {status}"),
        });
    }
    let mut body = resp.bytes_stream();
    let mut parser = SseParser::default();
    loop {
        let chunk = match tokio::time::timeout(SILENCE, body.next()).await {
            Err(_) => return End::Lost(format!("no word for {} s", SILENCE.as_secs())),
            Ok(None) => return End::Lost("the agent closed the connection".to_string()),
            Ok(Some(Err(e))) => return End::Lost(reqwest_why(&e)),
            Ok(Some(Ok(c))) => c,
        };
        let events = match parser.feed(&chunk) {
            Ok(ev) => ev,
            Err(e) => return End::Lost(format!("not an event stream: {e}")),
        };
        for ev in events {
            let event = match Line::read(&ev.data) {
                Ok(line) => line.event,
                Err(ReadError::Version(e)) => {
                    return End::Incompatible(format!("agent at {base} {e}"));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "an event this viewer cannot read; skipped");
                    continue;
                }
            };
            if matches!(event, Event::Snapshot(_)) {
                // Connected: the next loss starts the backoff again.
                *attempt = 0;
            }
            let closed = matches!(event, Event::StreamClosed { .. });
            if tx
                .send((index, FeedMsg::Event(Box::new(event))))
                .await
                .is_err()
            {
                return End::Closed;
            }
            if closed {
                return End::Closed;
            }
        }
    }
}

/// The cause in a few words (reqwest's top line says only "error sending request").
fn reqwest_why(e: &reqwest::Error) -> String {
    let mut why = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        why = s.to_string();
        source = s.source();
    }
    why
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_wait_longer_each_time_up_to_a_cap() {
        assert_eq!(backoff(1), Duration::from_millis(250));
        assert_eq!(backoff(2), Duration::from_millis(500));
        assert_eq!(backoff(5), Duration::from_secs(4));
        assert_eq!(backoff(6), MAX_RETRY);
        assert_eq!(backoff(u32::MAX), MAX_RETRY);
    }

    /// An agent on loopback whose stream is of protocol 2: the feed says which versions
    /// differ and stops, without handing on an event it would misread or trying again.
    #[tokio::test]
    async fn an_agent_of_a_newer_major_version_is_named_and_not_followed() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let agent = tokio::spawn(async move {
            let mut served = 0;
            while let Ok(Ok((mut sock, _))) =
                tokio::time::timeout(Duration::from_secs(1), listener.accept()).await
            {
                let mut buf = [0u8; 4096];
                let _ = sock.read(&mut buf).await;
                // A snapshot whose fields mean something else in version 2.
                let event = r#"{"ts":"2030-01-01T00:00:00Z","protocol":"2.0","event":"snapshot","systems":{"moe":"idle"}}"#;
                let reply = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\ndata: {event}\n\n"
                );
                let _ = sock.write_all(reply.as_bytes()).await;
                served += 1;
            }
            served
        });
        let (tx, mut rx) = mpsc::channel(8);
        crate::net::transport::install_crypto_provider();
        let client = reqwest::Client::new();
        let stop = CancellationToken::new();
        tokio::time::timeout(
            Duration::from_secs(5),
            follow(client, base.clone(), None, 0, tx, stop),
        )
        .await
        .expect("the feed stops by itself");
        match rx.recv().await {
            Some((0, FeedMsg::Incompatible(why))) => assert_eq!(
                why,
                format!("agent at {base} speaks protocol 2.x; this viewer reads 1.x")
            ),
            other => panic!("the version named, not {other:?}"),
        }
        assert!(rx.recv().await.is_none(), "nothing else is handed on");
        assert_eq!(agent.await.unwrap(), 1, "one connection, no retry");
    }
}
