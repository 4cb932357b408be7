//! Recordings (`--record DIR`) and their replay (`--timing replay:DIR`, `sandbox --replay
//! DIR`): a session recorded on the sandbox replays with the same answers, the replay serves
//! what the recording says (not what the sandbox would), and a request the recording does not
//! hold gets a 400 that names the difference.

use crate::common::BoundedOutput;
use crate::common::{KillOnDrop, cmd, report, run_expecting};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::Stdio;

const CYCLES: &str = "4";

fn fast(dir: &Path) {
    std::fs::write(
        dir.join("fast.toml"),
        "[gameplay]\ncycle_delay_ms = 0\n[audio]\nenabled = false\n",
    )
    .unwrap();
}

fn session(dir: &Path, extra: &[&str], report_name: &str) -> serde_json::Value {
    run_expecting(
        cmd(dir)
            .args(["--headless", "--config", "fast.toml", "--cycles", CYCLES])
            .args(["--report", report_name])
            .args(extra),
        0,
    );
    report(&dir.join(report_name))
}

/// Each system's calls as the report counts them, without the latencies and the deadline
/// learned from them (they differ from run to run).
fn calls(r: &serde_json::Value) -> serde_json::Value {
    let mut c = r["stats"]["calls"].clone();
    for (_, v) in c.as_object_mut().unwrap().iter_mut() {
        for k in ["deadline_ms", "p50_ms", "p99_ms"] {
            v.as_object_mut().unwrap().remove(k);
        }
    }
    c
}

#[test]
fn a_session_recorded_on_the_sandbox_replays_with_the_same_answers() {
    let dir = tempfile::tempdir().unwrap();
    fast(dir.path());
    let recorded = session(dir.path(), &["--record", "rec"], "a.json");
    // Versioned JSON lines, one file per system with a wire of its own, private.
    let wired = singularis_tui::config::Config::default()
        .ids()
        .into_iter()
        .filter(|id| {
            singularis_tui::config::Config::default()
                .system(*id)
                .protocol
                != singularis_tui::systems::Protocol::Moe
        });
    for name in wired.map(|id| id.name()) {
        let path = dir.path().join("rec").join(format!("{name}.jsonl"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        let header: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(header["recording"], 1, "{name}");
        assert_eq!(header["system"], name);
        let exchanges = text.lines().skip(1).count();
        assert!(exchanges >= 1, "{name}: no exchange recorded");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{name}");
    }
    assert!(!dir.path().join("rec").join("moe.jsonl").exists());

    let replayed = session(dir.path(), &["--timing", "replay:rec"], "b.json");
    assert_eq!(
        replayed["stats"]["actions_by_kind"],
        recorded["stats"]["actions_by_kind"]
    );
    assert_eq!(calls(&replayed), calls(&recorded));
    assert_eq!(replayed["stats"]["errors"], 0, "{replayed:#}");
}

#[test]
fn the_replay_serves_the_recording_not_the_sandbox() {
    let dir = tempfile::tempdir().unwrap();
    fast(dir.path());
    let out = cmd(dir.path())
        .args(["--headless", "--config", "fast.toml", "--cycles", "1"])
        .args(["--record", "rec", "--report", "a.json"])
        .bounded_output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        report(&dir.path().join("a.json"))["stats"]["actions_by_kind"]["talk"],
        1
    );
    // The orchestrator's recorded answer, changed: Lucan is there, but it now says rest.
    let path = dir.path().join("rec").join("orchestrator.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("ACTION: talk"), "{text}");
    std::fs::write(&path, text.replace("ACTION: talk", "ACTION: rest")).unwrap();
    let out = cmd(dir.path())
        .args(["--headless", "--config", "fast.toml", "--cycles", "1"])
        .args(["--timing", "replay:rec", "--report", "b.json"])
        .bounded_output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let r = report(&dir.path().join("b.json"));
    assert_eq!(r["stats"]["actions_by_kind"]["rest"], 1, "{r:#}");
}

/// `POST path` with `body` to `base` (http://IP:PORT/...): the status and the body.
fn post(base: &str, path: &str, body: &str) -> (u16, String) {
    let rest = base.strip_prefix("http://").unwrap();
    let (addr, prefix) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    write!(
        s,
        "POST /{prefix}{path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nAuthorization: Bearer k\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, answer)
}

#[test]
fn a_request_the_recording_does_not_hold_gets_a_400_naming_the_difference() {
    let dir = tempfile::tempdir().unwrap();
    fast(dir.path());
    session(dir.path(), &["--record", "rec"], "a.json");
    let mut child = KillOnDrop(
        cmd(dir.path())
            .args(["sandbox", "--listen", "127.0.0.1:0", "--replay", "rec"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let lines = BufReader::new(child.0.stdout.take().unwrap()).lines();
    let url = lines
        .map_while(Result::ok)
        .find_map(|l| l.strip_prefix("orchestrator ").map(str::to_string))
        .expect("the orchestrator's endpoint");
    // The recorded first request, with one word of its input changed.
    let text = std::fs::read_to_string(dir.path().join("rec").join("orchestrator.jsonl")).unwrap();
    let first = text
        .lines()
        .skip(1)
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|e| e["seq"] == 0)
        .expect("the first exchange");
    let body = first["request"]["body"].as_str().unwrap();
    let mut v: serde_json::Value = serde_json::from_str(body).unwrap();
    v["model"] = "gpt-4.1".into();
    let (status, answer) = post(&url, "/responses", &v.to_string());
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer.contains("differs from the recording")
            && answer.contains("body at /model")
            && answer.contains("gpt-4.1"),
        "{answer}"
    );
    // The recorded request itself is served, from the recording.
    let (status, answer) = post(&url, "/responses", body);
    assert_eq!(status, 200, "{answer}");
}
