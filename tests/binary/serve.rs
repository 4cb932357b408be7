//! The control endpoint (`--serve`) of the real binary, over real TCP: a viewer's stream, a
//! late viewer's snapshot, commands with and without the token, and the endpoint's sockets
//! closed and verified at shutdown.

use crate::common::BoundedOutput;
use crate::common::{Events, KillOnDrop, cmd, one_headless_cycle, report, start_served};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

/// A guard against a hung test, never a measure of speed.
const PATIENCE: Duration = Duration::from_secs(60);

/// A headless agent with `--json --serve 0` and `--report r.json` in `dir`; its control
/// endpoint's URL, and its JSON events (stdout is read by a thread, so it never blocks).
struct Agent {
    child: KillOnDrop,
    url: String,
    stdout: Events,
}

fn agent(dir: &Path, token: Option<&str>) -> Agent {
    let mut c = cmd(dir);
    c.args([
        "--headless",
        "--json",
        "--mute",
        "--serve",
        "0",
        "--report",
        "r.json",
    ])
    .stderr(std::fs::File::create(dir.join("stderr")).unwrap());
    if let Some(t) = token {
        c.env("SINGULARIS_CONTROL_TOKEN", t);
    }
    let (child, url, stdout) = start_served(c, PATIENCE);
    Agent { child, url, stdout }
}

fn host_port(url: &str) -> String {
    url.trim_start_matches("http://").to_string()
}

/// A viewer of `GET /v1/events`, read by a thread: each `data:` line's JSON, in order; the
/// channel ends when the stream does.
fn viewer(url: &str) -> Events {
    let mut s = TcpStream::connect(host_port(url)).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    // HTTP/1.0: the body is the rest of the connection, no chunks to take apart.
    write!(
        s,
        "GET /v1/events HTTP/1.0\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n"
    )
    .unwrap();
    let mut reader = BufReader::new(s);
    let mut status = String::new();
    reader.read_line(&mut status).unwrap();
    assert!(status.contains(" 200 "), "{status}");
    Events::read(reader, |line| match line.strip_prefix("data: ") {
        Some(data) => serde_json::from_str(data)
            .map(Some)
            .map_err(|e| format!("an event that is not JSON ({e}): {data}")),
        None => Ok(None),
    })
}

/// The next event named `name`, skipping others, within PATIENCE in all.
fn next_named(rx: &Events, name: &str) -> Value {
    rx.wait_for(&format!("{name} event"), PATIENCE, |v| v["event"] == name)
}

/// `POST /v1/commands` with `body` and the token if given: the status and the JSON answer.
fn post(url: &str, body: &str, token: Option<&str>) -> (u16, Value) {
    let mut s = TcpStream::connect(host_port(url)).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "POST /v1/commands HTTP/1.0\r\nHost: x\r\nContent-Type: application/json\r\n{auth}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    let status: u16 = answer
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status: {answer}"));
    let body = answer.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    let json = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {answer}"));
    (status, json)
}

fn system<'a>(snapshot: &'a Value, name: &str) -> &'a Value {
    snapshot["systems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == name)
        .unwrap_or_else(|| panic!("{name} in {snapshot}"))
}

fn wait_exit(mut a: Agent) -> i32 {
    // Drain stdout to the end so the agent never blocks on it.
    a.stdout.rest(PATIENCE);
    a.child.wait_within().code().unwrap_or(-1)
}

#[test]
fn a_viewer_watches_from_a_snapshot_and_steers_with_the_token() {
    let _one = crate::common::one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let a = agent(dir.path(), None);
    let token_file = dir.path().join("state/singularis-tui/control-token");
    let token = std::fs::read_to_string(&token_file)
        .unwrap()
        .trim()
        .to_string();
    {
        use std::os::unix::fs::MetadataExt;
        let mode = std::fs::metadata(&token_file).unwrap().mode();
        assert_eq!(mode & 0o777, 0o600, "the token file is private");
    }

    // A viewer: a snapshot of all eleven systems first, then live events.
    let first = viewer(&a.url);
    let snapshot = first.recv_timeout(PATIENCE).unwrap();
    assert_eq!(snapshot["event"], "snapshot", "{snapshot}");
    assert_eq!(snapshot["systems"].as_array().unwrap().len(), 11);
    assert_eq!(snapshot["session"]["backend"], "sandbox");
    assert_eq!(snapshot["session"]["serve"], a.url.as_str());
    assert_eq!(snapshot["phase"], "running");
    assert!(snapshot["stats"]["cycles"].is_u64(), "{snapshot}");
    let cycle = next_named(&first, "cycle");
    assert!(cycle["cycle"].as_u64().unwrap() >= 1, "{cycle}");

    // With the token, a force-close: done, answered with its report, seen by the viewer.
    let (status, answer) = post(
        &a.url,
        r#"{"command": "force_close", "system": "claude_client"}"#,
        Some(&token),
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["ok"], true, "{answer}");
    assert_eq!(answer["report"]["name"], "claude_client", "{answer}");
    let command = next_named(&first, "command");
    assert_eq!(command["command"], "force_close", "{command}");
    assert_eq!(command["system"], "claude_client", "{command}");
    let by = command["by"].as_str().unwrap().to_string();
    assert!(by.starts_with("viewer 127.0.0.1:"), "{by}");

    // A late viewer sees it in its snapshot: the system closed, the command listed.
    let late = viewer(&a.url);
    let snapshot = late.recv_timeout(PATIENCE).unwrap();
    assert_eq!(snapshot["event"], "snapshot", "{snapshot}");
    assert_eq!(system(&snapshot, "claude_client")["state"], "closed");
    let commands = snapshot["commands"].as_array().unwrap();
    assert!(
        commands
            .iter()
            .any(|c| c["command"] == "force_close" && c["by"] == by.as_str()),
        "{snapshot}"
    );

    // A second force-close is refused: it is closed already.
    let (status, answer) = post(
        &a.url,
        r#"{"command": "force_close", "system": "claude_client"}"#,
        Some(&token),
    );
    assert_eq!(status, 409, "{answer}");
    assert_eq!(answer["outcome"], "refused", "{answer}");

    // Quit: the normal shutdown; both viewers see it, then their stream's last word.
    let (status, answer) = post(&a.url, r#"{"command": "quit"}"#, Some(&token));
    assert_eq!(status, 200, "{answer}");
    for v in [&first, &late] {
        let started = next_named(v, "shutdown_started");
        assert_eq!(started["reason"], "quit", "{started}");
        next_named(v, "stream_closed");
        assert!(
            matches!(
                v.recv_timeout(PATIENCE),
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected)
            ),
            "the stream ends (not a silence)"
        );
    }
    assert_eq!(wait_exit(a), 0);

    let r = report(&dir.path().join("r.json"));
    assert_eq!(r["shutdown"]["sockets_open_after"], 0, "{r}");
    let endpoint = r["shutdown"]["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "control endpoint")
        .unwrap_or_else(|| panic!("the control endpoint in {r}"))
        .clone();
    assert_eq!(endpoint["outcome"], "closed", "{endpoint}");
    assert_eq!(endpoint["verified"], true, "{endpoint}");
    let commands = r["commands"].as_array().unwrap();
    for (what, outcome) in [
        ("force_close", "forced"),
        ("force_close", "refused"),
        ("quit", "quit"),
    ] {
        assert!(
            commands.iter().any(|c| c["command"] == what
                && c["outcome"] == outcome
                && c["by"].as_str().unwrap().starts_with("viewer 127.0.0.1:")),
            "{what} {outcome} by a viewer: {r}"
        );
    }

    // The token is nowhere but its file.
    let stderr = std::fs::read_to_string(dir.path().join("stderr")).unwrap();
    assert!(
        stderr.contains(&format!("token in {}", token_file.display())),
        "{stderr}"
    );
    let log = std::fs::read_to_string(dir.path().join("state/singularis-tui/singularis-tui.log"))
        .unwrap_or_default();
    let report_text = std::fs::read_to_string(dir.path().join("r.json")).unwrap();
    for (what, text) in [("stderr", &stderr), ("log", &log), ("report", &report_text)] {
        assert!(!text.contains(&token), "the token in the {what}");
    }
}

#[test]
fn a_missing_or_wrong_token_gets_401_and_changes_nothing() {
    let _one = crate::common::one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let token = "correct-horse-battery-staple-42";
    let a = agent(dir.path(), Some(token));
    let close = r#"{"command": "force_close", "system": "openai_client"}"#;
    for given in [None, Some("correct-horse-battery-staple-43"), Some("")] {
        let (status, answer) = post(&a.url, close, given);
        assert_eq!(status, 401, "{given:?}: {answer}");
        let why = answer["error"].as_str().unwrap();
        assert!(why.contains("token"), "{why}");
        assert!(!why.contains(token), "{why}");
    }
    // Nothing was done: openai_client is still up; each attempt is recorded as unauthorized.
    let watch = viewer(&a.url);
    let snapshot = watch.recv_timeout(PATIENCE).unwrap();
    assert_ne!(system(&snapshot, "openai_client")["state"], "closed");
    let tried = snapshot["commands"].as_array().unwrap();
    assert_eq!(tried.len(), 3, "{snapshot}");
    assert!(
        tried.iter().all(|c| c["outcome"] == "unauthorized"
            && c["command"] == "force_close"
            && c["system"] == "openai_client"
            && c["by"].as_str().unwrap().starts_with("viewer 127.0.0.1:")),
        "{snapshot}"
    );
    drop(watch);

    // A bad body with the right token: 400 with the reason, nothing done.
    let (status, answer) = post(&a.url, r#"{"command": "explode"}"#, Some(token));
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("explode"),
        "{answer}"
    );

    let (status, _) = post(&a.url, r#"{"command": "quit"}"#, Some(token));
    assert_eq!(status, 200);
    assert_eq!(wait_exit(a), 0);
    let r = report(&dir.path().join("r.json"));
    let commands = r["commands"].as_array().unwrap();
    assert_eq!(
        commands
            .iter()
            .filter(|c| c["outcome"] != "unauthorized")
            .count(),
        1,
        "only the quit was done: {r}"
    );
    assert_eq!(r["shutdown"]["sockets_open_after"], 0, "{r}");
    let stderr = std::fs::read_to_string(dir.path().join("stderr")).unwrap();
    assert!(
        stderr.contains("token from SINGULARIS_CONTROL_TOKEN"),
        "{stderr}"
    );
    assert!(!stderr.contains(token), "{stderr}");
}

#[test]
fn serving_off_loopback_needs_a_chosen_token() {
    let dir = tempfile::tempdir().unwrap();
    let out = one_headless_cycle(dir.path(), &["--serve", "0.0.0.0:0"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("not on loopback"), "{stderr}");
    assert!(stderr.contains("SINGULARIS_CONTROL_TOKEN"), "{stderr}");
    assert!(
        !dir.path()
            .join("state/singularis-tui/control-token")
            .exists(),
        "nothing generated for a refused start"
    );

    // The same from the config file; a token too short to be one is refused too.
    std::fs::write(
        dir.path().join("c.toml"),
        "[serve]\nlisten = \"0.0.0.0:0\"\n",
    )
    .unwrap();
    let out = cmd(dir.path())
        .args([
            "--config",
            "c.toml",
            "--headless",
            "--mute",
            "--cycles",
            "1",
        ])
        .bounded_output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = cmd(dir.path())
        .args(["--headless", "--mute", "--cycles", "1", "--serve", "0"])
        .env("SINGULARIS_CONTROL_TOKEN", "short")
        .bounded_output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("too short"), "{stderr}");
}

#[test]
fn viewers_see_the_spend_against_its_limit() {
    let _one = crate::common::one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let mut c = cmd(dir.path());
    c.args(["--headless", "--json", "--mute", "--serve", "0"])
        .args(["--budget-usd", "5", "--report", "r.json"])
        .stderr(std::fs::File::create(dir.path().join("stderr")).unwrap());
    let (child, url, stdout) = start_served(c, PATIENCE);
    let a = Agent { child, url, stdout };
    let events = viewer(&a.url);
    // A refresh after the first cycles: the game's stats carry the budget.
    let budget = events.wait_for("a refresh with money spent", PATIENCE, |r| {
        r["event"] == "refresh"
            && r["stats"]["budget"]["spent_usd"]
                .as_f64()
                .is_some_and(|s| s > 0.0)
    })["stats"]["budget"]
        .clone();
    assert_eq!(budget["limit_usd"], 5.0, "{budget}");
    assert_eq!(budget["exhausted"], false, "{budget}");
    let (status, _) = post(&a.url, r#"{"command":"quit"}"#, None);
    assert_eq!(status, 401, "a viewer without the token cannot quit");
    unsafe { libc::kill(a.child.0.id() as i32, libc::SIGTERM) };
    assert_eq!(wait_exit(a), 0);
}
