//! `GET /v1/events`: Server-Sent Events, each `data:` one JSON event as `--headless --json`
//! writes it. A `snapshot` first; then every state change, breaker change, cycle, command and
//! shutdown step, each line the agent logs (keys masked; the snapshot has the last
//! [`LOG_TAIL`] of them), and every second a `refresh` with the counters. Nothing here ever waits on a viewer: each feed is a bounded broadcast the
//! session sends to without blocking, and a viewer that fell behind (a feed overflowed while
//! its socket was full) gets a fresh `snapshot` in place of what it missed.

use super::Shared;
use crate::lifecycle::{BreakerChange, ShutdownEvent, StateChange};
use crate::logging::LogLine;
use crate::session::CycleEvent;
use crate::session::control::CommandRecord;
use crate::session::events::{self, Event};
use crate::session::hub::Hub;
use crate::telemetry::served::Peer;
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::response::sse::{self, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use singularis_protocol::LOG_TAIL;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio_util::sync::CancellationToken;

pub(super) async fn events(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
    headers: HeaderMap,
) -> Response {
    if shared.watch_needs_token
        && let Err(refused) = shared.authorize(peer, &headers).await
    {
        return refused;
    }
    tracing::info!(%peer, "viewer connected");
    let viewer = Viewer::new(shared.hub.clone(), shared.closing.clone());
    let stream = futures::stream::unfold(viewer, |mut v| async move {
        let event = v.next().await?;
        let data = match events::to_json(&event) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) => {
                tracing::error!(error = %e, "event not serialisable");
                return None;
            }
        };
        Some((Ok::<_, Infallible>(sse::Event::default().data(data)), v))
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// Each feed a viewer follows, from the moment it subscribed.
struct Feeds {
    states: broadcast::Receiver<StateChange>,
    breakers: broadcast::Receiver<BreakerChange>,
    cycles: broadcast::Receiver<CycleEvent>,
    commands: broadcast::Receiver<CommandRecord>,
    shutdown: broadcast::Receiver<ShutdownEvent>,
    logs: broadcast::Receiver<LogLine>,
}

impl Feeds {
    /// Every feed from now, and the log's last lines before it (for the snapshot).
    fn subscribe(hub: &Hub) -> (Feeds, Vec<LogLine>) {
        let (tail, logs) = hub.logs.follow(LOG_TAIL);
        let feeds = Feeds {
            states: hub.registry.subscribe_transitions(),
            breakers: hub.registry.subscribe_breakers(),
            cycles: hub.cycles.subscribe(),
            commands: hub.control.subscribe(),
            shutdown: hub.shutdown.subscribe(),
            logs,
        };
        (feeds, tail)
    }
}

/// How often a viewer is sent the counters (`refresh`).
const REFRESH_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

struct Viewer {
    hub: Arc<Hub>,
    feeds: Feeds,
    refresh: tokio::time::Interval,
    queued: VecDeque<Event>,
    closing: CancellationToken,
    ended: bool,
}

impl Viewer {
    /// Subscribed before the snapshot is taken, so nothing falls between the two (an event
    /// may be both in the snapshot and after it: applying it again changes nothing).
    fn new(hub: Arc<Hub>, closing: CancellationToken) -> Viewer {
        let (feeds, tail) = Feeds::subscribe(&hub);
        let snapshot = hub.snapshot(tail);
        let mut refresh =
            tokio::time::interval_at(tokio::time::Instant::now() + REFRESH_EVERY, REFRESH_EVERY);
        // A viewer that was slow to read gets one refresh, not a burst.
        refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Viewer {
            hub,
            feeds,
            refresh,
            queued: VecDeque::from([snapshot]),
            closing,
            ended: false,
        }
    }

    /// The next event; `None` once the stream has ended.
    async fn next(&mut self) -> Option<Event> {
        if let Some(ev) = self.queued.pop_front() {
            return Some(ev);
        }
        if self.ended {
            return None;
        }
        let quit = &self.hub.quit;
        let f = &mut self.feeds;
        let got: Option<Result<Event, RecvError>> = tokio::select! {
            biased;
            () = self.closing.cancelled() => None,
            r = f.shutdown.recv() => Some(r.map(|e| events::from_shutdown(e, quit.reason().name()))),
            r = f.states.recv() => Some(r.map(events::state)),
            r = f.breakers.recv() => Some(r.map(events::breaker)),
            r = f.commands.recv() => Some(r.map(Event::Command)),
            r = f.cycles.recv() => Some(r.map(Event::Cycle)),
            r = f.logs.recv() => Some(r.map(|l| Event::Log(self.hub.log_line(&l)))),
            _ = self.refresh.tick() => Some(Ok(self.hub.refresh())),
        };
        let Some(got) = got else {
            self.ended = true;
            self.drain();
            self.queued.push_back(Event::StreamClosed {
                why:
                    "the control endpoint is closing at shutdown; the session's report has the rest"
                        .to_string(),
            });
            return self.queued.pop_front();
        };
        match got {
            Ok(ev) => Some(ev),
            Err(RecvError::Lagged(missed)) => {
                tracing::info!(missed, "a viewer fell behind; resynced from a snapshot");
                Some(self.resync())
            }
            // The hub holds every sender: a closed feed means the session is gone.
            Err(RecvError::Closed) => None,
        }
    }

    /// Fresh feeds from now, and the session as it is now in place of what was missed.
    fn resync(&mut self) -> Event {
        let (feeds, tail) = Feeds::subscribe(&self.hub);
        self.feeds = feeds;
        self.queued.clear();
        self.hub.snapshot(tail)
    }

    /// What is already queued, in order enough for a last word: state changes and cycles,
    /// then the shutdown steps so far.
    fn drain(&mut self) {
        let reason = self.hub.quit.reason().name();
        let f = &mut self.feeds;
        drain_into(&mut self.queued, &mut f.states, events::state);
        drain_into(&mut self.queued, &mut f.breakers, events::breaker);
        drain_into(&mut self.queued, &mut f.cycles, Event::Cycle);
        drain_into(&mut self.queued, &mut f.commands, Event::Command);
        let hub = &self.hub;
        drain_into(&mut self.queued, &mut f.logs, |l| {
            Event::Log(hub.log_line(&l))
        });
        drain_into(&mut self.queued, &mut f.shutdown, |e| {
            events::from_shutdown(e, reason)
        });
    }
}

fn drain_into<T: Clone>(
    queued: &mut VecDeque<Event>,
    rx: &mut broadcast::Receiver<T>,
    event: impl Fn(T) -> Event,
) {
    loop {
        match rx.try_recv() {
            Ok(item) => queued.push_back(event(item)),
            Err(broadcast::error::TryRecvError::Lagged(missed)) => {
                queued.push_back(Event::Lagged { missed })
            }
            Err(_) => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::session::control::Control;
    use crate::session::events::SessionInfo;
    use std::sync::Mutex;
    use std::time::{Duration, Instant};

    fn hub(cycles: usize) -> Arc<Hub> {
        let config = Config::default();
        let registry = Arc::new(crate::lifecycle::Registry::new(
            &config,
            &Default::default(),
            &|_| None,
        ));
        let paused = tokio::sync::watch::channel(false).0;
        let quit = crate::session::QuitSignal::default();
        let control = Control::new(
            registry.clone(),
            paused.clone(),
            quit.clone(),
            CancellationToken::new(),
            Duration::from_millis(500),
            Instant::now(),
        );
        Arc::new(Hub {
            registry,
            stats: Default::default(),
            control,
            paused,
            quit,
            cycles: broadcast::channel(cycles).0,
            shutdown: broadcast::channel(4).0,
            info: Mutex::new(SessionInfo {
                version: "test".into(),
                mode: "parallel".into(),
                backend: "sandbox".into(),
                cycles: 0,
                grace_ms: 500,
                metrics: None,
                serve: None,
            }),
            started: Instant::now(),
            logs: Box::leak(Box::new(crate::logging::LogBuffer::new(16))),
            redactor: crate::logging::Redactor::with_secrets(vec![KEY.to_string()]),
        })
    }

    /// A key the hub's redactor knows (as one from the environment).
    const KEY: &str = "AIzaTheGeminiKey0123456789";

    fn log(text: &str) -> LogLine {
        LogLine {
            time: "12:00:00".into(),
            level: tracing::Level::WARN,
            text: text.into(),
        }
    }

    fn cycle(n: u64) -> CycleEvent {
        CycleEvent {
            cycle: n,
            action: None,
            why: None,
            reward: None,
            cycle_ms: 1.0,
            critical_path_ms: 0.9,
            usage: Default::default(),
        }
    }

    /// A viewer that was not read while more happened than its feed holds gets the session
    /// as it is now, then the live events again; the sender never waited on it.
    #[tokio::test]
    async fn a_viewer_that_falls_behind_is_resynced_from_a_snapshot() {
        let hub = hub(2);
        let mut v = Viewer::new(hub.clone(), CancellationToken::new());
        assert!(matches!(v.next().await, Some(Event::Snapshot(_))));
        for n in 1..=5 {
            let _ = hub.cycles.send(cycle(n));
        }
        match v.next().await {
            Some(Event::Snapshot(s)) => assert_eq!(s.systems.len(), 11),
            other => panic!("a snapshot after falling behind, not {other:?}"),
        }
        let _ = hub.cycles.send(cycle(6));
        match v.next().await {
            Some(Event::Cycle(c)) => assert_eq!(c.cycle, 6),
            other => panic!("the live cycle, not {other:?}"),
        }
    }

    /// The log pane's lines reach a viewer: the last ones in its snapshot, then each new one
    /// as it comes, never with a key in them (masked as the dashboard's log pane is).
    #[tokio::test]
    async fn a_viewer_gets_the_logs_tail_then_each_new_line_with_keys_masked() {
        let hub = hub(8);
        for n in 0..(LOG_TAIL + 5) {
            hub.logs.push(log(&format!("line {n}")));
        }
        hub.logs
            .push(log(&format!("request failed: ?key={KEY}&alt=sse")));
        let mut v = Viewer::new(hub.clone(), CancellationToken::new());
        let texts = match v.next().await {
            Some(Event::Snapshot(s)) => s.logs.into_iter().map(|l| l.text).collect::<Vec<_>>(),
            other => panic!("a snapshot first, not {other:?}"),
        };
        // The buffer holds 16: the tail is all of it, oldest first, the last one masked.
        assert_eq!(texts.len(), 16, "{texts:?}");
        assert_eq!(texts[14], format!("line {}", LOG_TAIL + 4));
        assert_eq!(texts[15], "request failed: ?key=****&alt=sse");
        hub.logs
            .push(log(&format!("the service echoed {KEY} back")));
        match v.next().await {
            Some(Event::Log(l)) => {
                assert_eq!(l.text, "the service echoed **** back");
                assert_eq!(l.level, "WARN");
            }
            other => panic!("the new line, not {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_closing_endpoint_ends_the_stream_with_its_last_word() {
        let hub = hub(8);
        let closing = CancellationToken::new();
        let mut v = Viewer::new(hub.clone(), closing.clone());
        assert!(matches!(v.next().await, Some(Event::Snapshot(_))));
        let _ = hub.cycles.send(cycle(1));
        closing.cancel();
        // Queued events first, then the last word, then the end.
        assert!(matches!(v.next().await, Some(Event::Cycle(_))));
        assert!(matches!(v.next().await, Some(Event::StreamClosed { .. })));
        assert!(v.next().await.is_none());
    }
}
