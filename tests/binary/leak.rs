//! A real leak (issue #28): the hidden `--test-leak-socket SYSTEM` keeps a `dup` of the
//! system's first connection open past its close, outside its pool. Its pool closes, the
//! ledger hears the stream drop, and yet the socket is open: both witnesses must find it,
//! and the session must say so everywhere (exit 3, the report, the account, the dashboard:
//! `tui_e2e::a_leaked_socket_is_shown_on_the_dashboard`).

use crate::common::BoundedOutput;
use crate::common::{cmd, report};

/// The port the embedded sandbox serves `system` on, from the session's log.
pub(crate) fn sandbox_port(log: &str, system: &str) -> u16 {
    let tag = format!("sandbox listening system={system} port=");
    log.lines()
        .find_map(|l| {
            let at = l.find(&tag)? + tag.len();
            l[at..].split(' ').next()?.parse().ok()
        })
        .unwrap_or_else(|| panic!("no `{tag}` line in the log:\n{log}"))
}

/// `1 socket still open after force-close: 127.0.0.1:L → 127.0.0.1:P`: the leaked socket
/// named by its local and peer address, the peer being `system`'s sandbox listener.
pub(crate) fn names_the_leaked_socket(text: &str, peer_port: u16) -> bool {
    let Some((_, named)) = text.split_once("1 socket still open after force-close: 127.0.0.1:")
    else {
        return false;
    };
    let Some((local, rest)) = named.split_once(" → ") else {
        return false;
    };
    let peer: String = rest
        .strip_prefix("127.0.0.1:")
        .unwrap_or_default()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    local.parse::<u16>().is_ok_and(|p| p != 0) && peer.parse() == Ok(peer_port)
}

#[test]
fn a_socket_held_open_past_its_close_is_a_leak_exit_3_named_in_the_account_and_report() {
    let dir = tempfile::tempdir().unwrap();
    let out = cmd(dir.path())
        .args(["--headless", "--cycles", "1", "--report", "r.json"])
        .args([
            "--log-file",
            "log.txt",
            "--test-leak-socket",
            "claude_client",
        ])
        .bounded_output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stdout}\n{stderr}");
    // The hook says it is on, before anything else.
    assert!(
        stderr.starts_with(
            "singularis-tui: test hook --test-leak-socket: claude_client's first connection \
             will be held open past its close"
        ),
        "{stderr}"
    );
    let log = std::fs::read_to_string(dir.path().join("log.txt")).unwrap();
    let claude = sandbox_port(&log, "claude_client");

    // The account: that system's close is an error naming the socket; every other is clean.
    let line = stdout
        .lines()
        .find(|l| l.starts_with("[CLEANUP] ⚠️ Claude client close error: "))
        .unwrap_or_else(|| panic!("no error line for the Claude client:\n{stdout}"));
    assert!(names_the_leaked_socket(line, claude), "{line}");
    assert_eq!(
        stdout
            .lines()
            .filter(|l| l.starts_with("[CLEANUP] ✓ "))
            .count(),
        10,
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "[CLEANUP] Complete - 10 systems closed, 0 forced, 1 error, 1 socket left open ("
        ),
        "{stdout}"
    );

    // The report: the leak counted by the process-wide check, the system's outcome and cause.
    let r = report(&dir.path().join("r.json"));
    let shutdown = &r["shutdown"];
    assert_eq!(shutdown["sockets_open_after"], 1, "{r:#}");
    assert_eq!(shutdown["errors"], 1, "{r:#}");
    assert_eq!(shutdown["closed"], 10, "{r:#}");
    assert_eq!(
        shutdown["verified"], true,
        "a leak is measured, not unverified: {r:#}"
    );
    let systems = shutdown["systems"].as_array().expect("systems");
    let leaked: Vec<_> = systems
        .iter()
        .filter(|s| s["outcome"] != "closed")
        .collect();
    assert_eq!(leaked.len(), 1, "{r:#}");
    assert_eq!(leaked[0]["name"], "claude_client", "{r:#}");
    assert_eq!(leaked[0]["outcome"], "error", "{r:#}");
    let cause = leaked[0]["error"].as_str().unwrap_or_default();
    assert!(names_the_leaked_socket(cause, claude), "{cause}");
}

#[test]
fn the_leak_hook_is_refused_for_a_system_that_is_not_on_the_embedded_sandbox() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("c.toml"),
        "[systems.claude_client]\nbase_url = \"http://127.0.0.1:9/v1\"\n",
    )
    .unwrap();
    for (args, why) in [
        (
            vec!["--config", "c.toml", "--test-leak-socket", "claude_client"],
            "claude_client does not (its base_url is http://127.0.0.1:9/v1)",
        ),
        (
            vec!["--test-leak-socket", "moe"],
            "moe does not (it makes no connection of its own)",
        ),
    ] {
        let out = cmd(dir.path())
            .args(["--headless", "--cycles", "1"])
            .args(&args)
            .env("ANTHROPIC_API_KEY", "k")
            .bounded_output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(
            stderr.trim_end(),
            format!(
                "singularis-tui: --test-leak-socket is a test hook for a system that connects \
                 to the embedded sandbox; {why}"
            ),
            "{args:?}"
        );
    }
}
