//! The dashboard's commands as `POST /v1/commands`, and the agent's answers as actions.

use super::convert::FromProtocol;
use crate::control_token::ViewerToken as Token;
use crate::lifecycle::CloseReport;
use crate::tui::{Action, Command};
use singularis_protocol::{Answer, CommandKind, CommandRequest};
use std::time::Duration;

/// What a command is on the wire.
fn request(command: &Command) -> Option<CommandRequest> {
    let (command, system) = match command {
        Command::Quit => (CommandKind::Quit, None),
        Command::ForceClose(id) => (CommandKind::ForceClose, Some(*id)),
        Command::Close(id) => (CommandKind::Close, Some(*id)),
        Command::Reopen(id) => (CommandKind::Reopen, Some(*id)),
        Command::SetPaused(true) => (CommandKind::Pause, None),
        Command::SetPaused(false) => (CommandKind::Resume, None),
        _ => return None,
    };
    Some(CommandRequest {
        command,
        system: system.map(|id| id.name().to_string()),
    })
}

/// Send `command` to the agent at `base`; the actions its answer means.
pub async fn send(
    client: reqwest::Client,
    base: String,
    token: Token,
    command: Command,
    wait: Duration,
) -> Vec<Action> {
    let Some(body) = request(&command) else {
        return Vec::new();
    };
    let name = body.command.name();
    let sent = client
        .post(format!("{base}/v1/commands"))
        .bearer_auth(token.secret())
        .timeout(wait)
        .json(&body)
        .send()
        .await;
    let resp = match sent {
        Ok(r) => r,
        Err(e) => {
            return vec![Action::Problem(format!(
                "{name} not sent to the agent: {e}"
            ))];
        }
    };
    let status = resp.status().as_u16();
    let answer: Answer = match resp.json().await {
        Ok(a) => a,
        Err(e) => {
            return vec![Action::Problem(format!(
                "{name}: the agent's answer ({status}) is not readable: {e}"
            ))];
        }
    };
    let message = answer
        .message
        .or(answer.error)
        .unwrap_or_else(|| format!("answered {status}"));
    match (status, &command) {
        (401, _) => vec![Action::Problem(format!(
            "the agent refused the control token ({})",
            token.source
        ))],
        (200, Command::ForceClose(_) | Command::Close(_)) => {
            match answer.report.and_then(CloseReport::from_protocol) {
                Some(report) => vec![Action::UserCloseDone {
                    report,
                    forced: matches!(command, Command::ForceClose(_)),
                }],
                None => vec![Action::Notice(message)],
            }
        }
        (200, Command::Reopen(id)) => vec![Action::Reopened { id: *id }],
        (200 | 202 | 409, _) => vec![Action::Notice(message)],
        _ => vec![Action::Problem(format!("{name}: {message}"))],
    }
}
