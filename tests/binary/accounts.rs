//! What the program tells its user about calls that did not simply answer (issue #27): a
//! rate limit is said as one, not as slowness; a truncated answer is an answer; the experts
//! sequential mode does not ask are counted. The real binary on its embedded sandbox.

use crate::common::BoundedOutput;
use crate::common::{cmd, report};
use serde_json::Value;
use std::path::Path;

/// A headless session of `cycles` cycles without pauses, with `args`; its stdout (the text
/// account, or with `--json` the events) and its report.
fn session(dir: &Path, cycles: u32, args: &[&str]) -> (String, Value) {
    std::fs::write(
        dir.join("fast.toml"),
        "[gameplay]\ncycle_delay_ms = 0\n[audio]\nenabled = false\n",
    )
    .unwrap();
    let out = cmd(dir)
        .args(["--headless", "--config", "fast.toml", "--report", "r.json"])
        .args(["--cycles", &cycles.to_string()])
        .args(args)
        .bounded_output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{args:?}: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (stdout, report(&dir.join("r.json")))
}

/// The `--json` events of one kind.
fn events<'a>(stdout: &'a str, kind: &'a str) -> impl Iterator<Item = Value> + 'a {
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(move |v| v["event"] == kind)
}

/// Issue #27 item 2: with the service answering 429 (`Retry-After: 1`, within the 1 s
/// deadline, so the call waits it out until the deadline cuts it), the calls are
/// rate-limited, not late, with the service's status and retry time: in the report, on the
/// breaker, in the account; and the sandbox's headers on its 429 say no request is left.
#[test]
fn a_rate_limit_is_told_as_a_rate_limit_not_as_slowness() {
    let json_dir = tempfile::tempdir().unwrap();
    let text_dir = tempfile::tempdir().unwrap();
    let fault = ["--fault", "claude_client=ratelimit"];
    // Two sessions at once: the events of one, the text account of the other.
    let ((events_out, r), (account, _)) = std::thread::scope(|s| {
        let json = s.spawn(|| {
            session(
                json_dir.path(),
                6,
                &["--json", "--fault", "claude_client=ratelimit"],
            )
        });
        let text = s.spawn(|| session(text_dir.path(), 6, &fault));
        (json.join().unwrap(), text.join().unwrap())
    });

    let claude = &r["stats"]["calls"]["claude_client"];
    assert_eq!(claude["late"], 0, "a rate limit is not slowness: {claude}");
    assert!(
        claude["rate_limited"].as_u64().unwrap_or(0) >= 1,
        "its calls are counted rate-limited: {claude}"
    );
    assert_eq!(claude["answered"], 0, "{claude}");
    let said = claude["last_rate_limit"].as_str().unwrap_or_default();
    assert!(
        said.starts_with("HTTP 429 Too Many Requests, retry in 1 s"),
        "the service's status and retry time: {claude}"
    );
    // What the sandbox's 429 said of the headroom: nothing left.
    let headroom = &r["stats"]["usage"]["systems"]["claude_client"]["headroom"];
    assert_eq!(headroom["requests_remaining"], 0, "{headroom}");
    assert!(
        headroom["requests_limit"].as_u64().unwrap() > 0,
        "{headroom}"
    );

    // The breaker opened for the rate limit, and says so.
    let opened: Vec<Value> = events(&events_out, "breaker")
        .filter(|b| b["system"] == "claude_client" && b["to"] == "open")
        .collect();
    assert!(!opened.is_empty(), "{events_out}");
    for b in &opened {
        let reason = b["reason"].as_str().unwrap();
        assert!(
            reason.starts_with("rate-limited: HTTP 429 Too Many Requests, retry in 1 s"),
            "{b}"
        );
    }
    // The dashboard's and a viewer's figures (the stream's systems) carry it too.
    let last = events(&events_out, "session_ended").last().unwrap();
    assert!(
        last["stats"]["calls"]["claude_client"]["rate_limited"]
            .as_u64()
            .unwrap()
            >= 1,
        "{last}"
    );

    // The account names it, with the status and the retry time.
    let line = account
        .lines()
        .find(|l| l.starts_with("    Claude client: "))
        .unwrap_or_else(|| panic!("Claude is named:\n{account}"));
    assert!(
        line.contains("rate-limited (HTTP 429 Too Many Requests, retry in 1 s)"),
        "{line}"
    );
    assert!(!line.contains(" late"), "not said as slowness: {line}");
}

/// Issue #27 item 4: a truncated answer is an answer. The orchestrator's answers all hit
/// their cap: each is counted truncated, its text is the cycle's choice, no call is
/// skipped and no breaker opens.
#[test]
fn a_truncated_answer_is_used_and_skips_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cycles = 5;
    let (out, r) = session(
        dir.path(),
        cycles,
        &["--json", "--fault", "orchestrator=truncate"],
    );
    assert!(
        r["stats"]["skipped_calls"].get("orchestrator").is_none(),
        "a truncated answer is not a skipped call: {}",
        r["stats"]["skipped_calls"]
    );
    // What came was used: every cycle's choice is the orchestrator's.
    let whys: Vec<String> = events(&out, "cycle")
        .map(|c| c["why"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(whys.len(), cycles as usize, "{out}");
    for why in &whys {
        assert!(why.starts_with("orchestrator ("), "{whys:?}");
    }
    let orchestrator = &r["stats"]["calls"]["orchestrator"];
    assert_eq!(orchestrator["truncated"], cycles, "{orchestrator}");
    assert_eq!(orchestrator["answered"], cycles, "{orchestrator}");
    assert_eq!(orchestrator["breaker_opens"], 0, "{orchestrator}");
    assert_eq!(orchestrator["skipped_by_breaker"], 0, "{orchestrator}");
    assert_eq!(r["stats"]["truncated_by_system"]["orchestrator"], cycles);
}

/// Issue #27 item 5: sequential mode stops asking experts once a majority answered. The two
/// it does not ask are counted as skipped, with why, in the report and the account.
#[test]
fn sequential_mode_counts_the_experts_it_does_not_ask() {
    let dir = tempfile::tempdir().unwrap();
    let cycles = 4;
    let (account, r) = session(dir.path(), cycles, &["--mode", "sequential"]);
    for (name, shown) in [
        ("hyperbolic_client", "Hyperbolic client"),
        ("lmstudio_client", "LMStudio client"),
    ] {
        assert_eq!(
            r["stats"]["skipped_calls"][name], cycles,
            "{name}: not asked, so skipped: {}",
            r["stats"]["skipped_calls"]
        );
        let c = &r["stats"]["calls"][name];
        assert_eq!(c["answered"], 0, "{name} is never asked: {c}");
        assert_eq!(c["skipped"]["majority reached"], cycles, "{name}: {c}");
        assert_eq!(
            r["stats"]["skipped_why"][name]["majority reached"], cycles,
            "{name}: {}",
            r["stats"]["skipped_why"]
        );
        let line = account
            .lines()
            .find(|l| l.starts_with(&format!("    {shown}: ")))
            .unwrap_or_else(|| panic!("{shown} is named:\n{account}"));
        assert!(
            line.contains(&format!("{cycles} skipped (majority reached)")),
            "{line}"
        );
    }
    // The three asked first answered every cycle and are not listed.
    for shown in ["Gemini client", "Claude client", "OpenAI client"] {
        assert!(
            !account.contains(&format!("    {shown}: ")),
            "{shown}:\n{account}"
        );
    }
}
