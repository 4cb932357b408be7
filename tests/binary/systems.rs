//! Systems as data: a twelfth system is a config table and a role, and then it plays like
//! the seed's eleven (its own sandbox listener, the MoE vote, the dependency order at
//! shutdown, the report, the JSON events, the account).

use crate::common::BoundedOutput;
use crate::common::{cmd, report, run_expecting};
use std::path::Path;

/// The README's example: an OpenAI-compatible third party added to the experts.
const TWELFTH: &str = r#"
[gameplay]
cycle_delay_ms = 0
[audio]
enabled = false

[systems.mistral_client]
protocol = "openai_chat"
model = "mistral-small-latest"
base_url = "sandbox"               # live: https://api.mistral.ai/v1
api_key_env = "MISTRAL_API_KEY"

[gameplay.roles]
experts = ["gemini_client", "claude_client", "openai_client", "hyperbolic_client", "lmstudio_client", "mistral_client"]
"#;

/// Five cycles with the twelfth system, exit 0: its stdout.
fn run(dir: &Path, extra: &[&str]) -> String {
    run_expecting(
        cmd(dir)
            .args(["--headless", "--config", "twelve.toml", "--cycles", "5"])
            .args(extra),
        0,
    )
}

#[test]
fn a_twelfth_system_plays_votes_and_starts_closing_after_the_vote() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("twelve.toml"), TWELFTH).unwrap();
    let out = run(dir.path(), &["--json", "--report", "r.json"]);

    let r = report(&dir.path().join("r.json"));
    let systems = r["shutdown"]["systems"].as_array().unwrap();
    assert_eq!(systems.len(), 12, "{systems:?}");
    for s in systems {
        assert_eq!(s["outcome"], "closed", "{s}");
    }
    assert_eq!(r["shutdown"]["closed"], 12);
    let calls = &r["stats"]["calls"]["mistral_client"];
    assert!(
        calls["answered"].as_u64().is_some_and(|n| n > 0),
        "mistral_client answered no call: {}",
        r["stats"]["calls"]
    );

    // The events name it, and show the vote began to close before it did.
    let events: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let at = |event: &str, name: &str| {
        events
            .iter()
            .position(|e| e["event"] == event && e.to_string().contains(&format!("\"{name}\"")))
            .unwrap_or_else(|| panic!("no {event} event for {name}"))
    };
    // It starts closing only once the vote has stopped using it (ARCHITECTURE.md, "Shutdown
    // order": what a system uses closes once it is released, while the user's own sockets
    // are still being checked), so the vote's `closing` comes first; which `closed` comes
    // first is a race between two checks.
    assert!(at("closing", "moe") < at("closing", "mistral_client"));

    // The account (the headless text) names it by its made-up display name, after the vote.
    let account = run(dir.path(), &["--report", "r2.json"]);
    let line = |what: &str| {
        account
            .find(what)
            .unwrap_or_else(|| panic!("{what:?} missing from\n{account}"))
    };
    // Listed in the order the closes ended: both there, in either order.
    line("✓ MoE orchestrator closed");
    line("✓ Mistral client closed");
    assert!(
        account.contains("Complete - 12 systems closed"),
        "{account}"
    );
}

#[test]
fn a_fault_and_a_probe_may_name_the_configs_own_systems_only() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("twelve.toml"), TWELFTH).unwrap();
    // Not in the default config: refused with the config's list.
    let out = cmd(dir.path())
        .args([
            "--headless",
            "--cycles",
            "1",
            "--fault",
            "mistral_client=hang",
        ])
        .bounded_output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("unknown system \"mistral_client\"") && stderr.contains("meta_rl"),
        "{stderr}"
    );
    // In the config: the fault applies to its own listener, and the vote goes on without it.
    run_expecting(
        cmd(dir.path())
            .args(["--headless", "--config", "twelve.toml", "--cycles", "2"])
            .args(["--fault", "mistral_client=error:500", "--report", "f.json"]),
        0,
    );
    let r = report(&dir.path().join("f.json"));
    let calls = &r["stats"]["calls"]["mistral_client"];
    assert_eq!(calls["answered"], 0, "{calls}");
    assert!(calls["errors"].as_u64().is_some_and(|n| n > 0), "{calls}");
}
