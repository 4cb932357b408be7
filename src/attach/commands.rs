//! The dashboard's commands as `POST /v1/commands`, and the agent's answers as actions.

use super::token::Token;
use crate::lifecycle::CloseReport;
use crate::systems::SystemId;
use crate::tui::{Action, Command};
use serde::Deserialize;
use std::time::Duration;

#[derive(Debug, Deserialize)]
struct Answer {
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    report: Option<CloseReport>,
    #[serde(default)]
    error: Option<String>,
}

/// What a command is on the wire: its name and its system.
fn wire(command: &Command) -> Option<(&'static str, Option<SystemId>)> {
    Some(match command {
        Command::Quit => ("quit", None),
        Command::ForceClose(id) => ("force_close", Some(*id)),
        Command::Close(id) => ("close", Some(*id)),
        Command::Reopen(id) => ("reopen", Some(*id)),
        Command::SetPaused(true) => ("pause", None),
        Command::SetPaused(false) => ("resume", None),
        _ => return None,
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
    let Some((name, system)) = wire(&command) else {
        return Vec::new();
    };
    let body = match system {
        Some(id) => serde_json::json!({ "command": name, "system": id.name() }),
        None => serde_json::json!({ "command": name }),
    };
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
        (200, Command::ForceClose(_) | Command::Close(_)) => match answer.report {
            Some(report) => vec![Action::UserCloseDone {
                report,
                forced: matches!(command, Command::ForceClose(_)),
            }],
            None => vec![Action::Notice(message)],
        },
        (200, Command::Reopen(id)) => vec![Action::Reopened { id: *id }],
        (200 | 202 | 409, _) => vec![Action::Notice(message)],
        _ => vec![Action::Problem(format!("{name}: {message}"))],
    }
}
