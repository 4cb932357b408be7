//! `POST /v1/commands` and the token check. A command is asked through the session's
//! [`Control`](crate::session::control::Control), as the dashboard's keys are: judged against
//! the system's real state, logged, and recorded with who asked ("viewer IP:PORT") for the
//! report and the `command` events.

use super::Shared;
use crate::backoff::Backoff;
use crate::session::control::{CommandKind, Reply};
use crate::session::to_protocol::ToProtocol;
use crate::sync::LockExt;
use crate::systems::SystemId;
use crate::telemetry::served::Peer;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use singularis_protocol::{Answer, CommandRequest};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// The first failure is answered at once; each one after it waits twice as long as the last,
/// from this...
const FIRST_DELAY: Duration = Duration::from_millis(100);
/// ...up to this.
const MAX_DELAY: Duration = Duration::from_secs(5);
/// Peers remembered for slowing down; past this many the memory starts again (a bound, not a
/// defence against many addresses: off loopback, the token is the defence).
const MAX_PEERS: usize = 4096;
/// The largest command body read.
const MAX_BODY: usize = 4096;

pub(super) async fn command(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Err(refused) = shared.authorize(peer, &headers).await {
        // Counted too, for the report's audit: who tried what without a valid token.
        if let Ok(req) = serde_json::from_slice::<CommandRequest>(&body) {
            let system = req
                .system
                .as_deref()
                .and_then(|name| SystemId::parse_among(name, &shared.hub.registry.ids()).ok());
            shared
                .hub
                .control
                .unauthorized(req.command, system, &format!("viewer {peer}"));
        }
        return refused;
    }
    if body.len() > MAX_BODY {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("a command is at most {MAX_BODY} bytes"),
        );
    }
    let req: CommandRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!(
                    "not a command: {e}; send JSON such as {{\"command\": \"force_close\", \"system\": \"claude_client\"}} (commands: close, force_close, reopen, pause, resume, quit)"
                ),
            );
        }
    };
    let system = match (req.command.needs_system(), req.system.as_deref()) {
        (true, None) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("{} needs a \"system\"", req.command.name()),
            );
        }
        (true, Some(name)) => match SystemId::parse_among(name, &shared.hub.registry.ids()) {
            Ok(id) => Some(id),
            Err(why) => return error(StatusCode::BAD_REQUEST, why),
        },
        (false, Some(_)) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("{} takes no \"system\"", req.command.name()),
            );
        }
        (false, None) => None,
    };
    let by = format!("viewer {peer}");
    let control = &shared.hub.control;
    let reply = match (req.command, system) {
        (CommandKind::Close, Some(id)) => control.close(id, &by, false),
        (CommandKind::ForceClose, Some(id)) => control.close(id, &by, true),
        (CommandKind::Reopen, Some(id)) => control.reopen(id, &by),
        (CommandKind::Pause, _) => control.set_paused(true, &by),
        (CommandKind::Resume, _) => control.set_paused(false, &by),
        (CommandKind::Quit, _) => control.quit(&by),
        // Checked above: a system command has its system.
        (_, None) => return error(StatusCode::BAD_REQUEST, "no system".to_string()),
    };
    let answer = |ok, outcome: &str, message: String, report| Answer {
        ok,
        command: Some(req.command),
        system: system.map(|id| id.name().to_string()),
        outcome: Some(outcome.to_string()),
        message: Some(message),
        report,
        error: None,
    };
    match reply {
        Reply::Done(words) => json(StatusCode::OK, &answer(true, "done", words, None)),
        Reply::Refused(why) => json(StatusCode::CONFLICT, &answer(false, "refused", why, None)),
        Reply::Closing(close) => {
            // The close is the session's, not this request's: it goes on if the viewer
            // hangs up. Its own deadline bounds it; the wait here is a second bound.
            let close = tokio::spawn(close);
            let wait = shared.hub.control.grace() * 2 + Duration::from_secs(2);
            match tokio::time::timeout(wait, close).await {
                Ok(Ok(report)) => {
                    let outcome = report.outcome.name();
                    let ok = matches!(outcome, "closed" | "forced");
                    let words = format!(
                        "{} {outcome} ({:.1} ms)",
                        report.name.display_name(),
                        report.close_ms
                    );
                    let report = report.to_protocol();
                    json(StatusCode::OK, &answer(ok, outcome, words, Some(report)))
                }
                Ok(Err(e)) => error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("the close failed: {e}"),
                ),
                Err(_) => json(
                    StatusCode::ACCEPTED,
                    &answer(
                        false,
                        "closing",
                        "still closing; its outcome will be a command event".to_string(),
                        None,
                    ),
                ),
            }
        }
    }
}

impl Shared {
    /// The request carries the control token, or the answer is 401; each failure in a row
    /// from one address waits longer before it is answered.
    pub(super) async fn authorize(
        &self,
        peer: SocketAddr,
        headers: &HeaderMap,
    ) -> Result<(), Response> {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, token) = v.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            });
        if given.is_some_and(|t| self.token.matches(t.as_bytes())) {
            self.failures.locked().remove(&peer.ip());
            return Ok(());
        }
        let failures = {
            let mut all = self.failures.locked();
            if all.len() >= MAX_PEERS && !all.contains_key(&peer.ip()) {
                all.clear();
            }
            let n = all.entry(peer.ip()).or_insert(0);
            *n = n.saturating_add(1);
            *n
        };
        let delay = delay_after(failures);
        tracing::warn!(
            %peer,
            failures,
            delay_ms = delay.as_millis() as u64,
            token = if given.is_some() { "wrong" } else { "missing" },
            "control endpoint request refused"
        );
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = self.closing.cancelled() => {}
        }
        let why = match given {
            None => format!(
                "this needs the control token: send \"Authorization: Bearer <token>\" (the {})",
                self.token.source
            ),
            Some(_) => "wrong control token".to_string(),
        };
        let mut r = error(StatusCode::UNAUTHORIZED, why);
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"singularis-tui\""),
        );
        Err(r)
    }
}

/// How long the `n`th failure in a row waits: nothing, then 100 ms, 200 ms, … up to 5 s.
fn delay_after(n: u32) -> Duration {
    if n <= 1 {
        return Duration::ZERO;
    }
    Backoff::new(FIRST_DELAY, MAX_DELAY).delay(n - 2)
}

fn json(status: StatusCode, body: &impl Serialize) -> Response {
    (status, axum::Json(body)).into_response()
}

fn error(status: StatusCode, why: String) -> Response {
    json(status, &Answer::error(why))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_wait_longer_each_time_up_to_a_cap() {
        assert_eq!(delay_after(1), Duration::ZERO);
        assert_eq!(delay_after(2), Duration::from_millis(100));
        assert_eq!(delay_after(3), Duration::from_millis(200));
        assert_eq!(delay_after(7), Duration::from_millis(3200));
        assert_eq!(delay_after(8), MAX_DELAY);
        assert_eq!(delay_after(u32::MAX), MAX_DELAY);
    }
}
