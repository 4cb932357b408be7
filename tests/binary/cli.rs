//! The real binary, as scripts use it: exit statuses, headless output, reports, signals,
//! bad configs, and a sandbox in a separate process.

use crate::common::BoundedOutput;
use std::process::Stdio;
use std::time::Duration;

use crate::common::KillOnDrop;
use crate::common::cmd;
use crate::common::one_headless_cycle;
use crate::common::{is_state, run_expecting, spawn_json};

use crate::common::report;

#[test]
fn headless_run_prints_the_account_and_exits_clean() {
    let dir = tempfile::tempdir().unwrap();
    let stdout = run_expecting(
        cmd(dir.path()).args([
            "--headless",
            "--cycles",
            "2",
            "--report",
            "r.json",
            "--log-file",
            "log",
        ]),
        0,
    );
    assert!(
        stdout.starts_with("[CLEANUP] Closing all connections...\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("[CLEANUP] ✓ Video interpreter closed ("),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "[CLEANUP] Complete - 11 systems closed, 0 forced, 0 errors, 0 sockets left open ("
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("Final Statistics:\n  Cycles: 2\n  Actions: 2\n"),
        "{stdout}"
    );
    let r = report(&dir.path().join("r.json"));
    assert_eq!(r["shutdown"]["reason"], "cycles");
    assert_eq!(r["shutdown"]["sockets_open_after"], 0);
    assert_eq!(r["stats"]["cycles"], 2);
    assert_eq!(r["backend"], "sandbox");
    assert_eq!(r["shutdown"]["systems"].as_array().unwrap().len(), 11);
    the_log_is_plain_and_names_its_process(&dir.path().join("log"));
}

/// The log file of a clean session: the user's alone (0600, as the reports), every line
/// naming its process and session (all instances share the file), fields as the config
/// names things rather than Rust's Debug (`system=claude_client`, not
/// `Some(ClaudeClient)`), milliseconds to the hundredth, and no warning about the sandbox's
/// own listeners closing.
fn the_log_is_plain_and_names_its_process(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    let log = std::fs::read_to_string(path).unwrap();
    let first = log.lines().next().expect("a line");
    let tag = first
        .split(' ')
        .filter(|w| w.starts_with("pid=") || w.starts_with("session="))
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        tag.starts_with("pid=") && tag.contains(" session="),
        "{first}"
    );
    for line in log.lines() {
        assert!(line.contains(&tag), "{tag} not in {line}");
        assert!(!line.contains("Some("), "{line}");
        assert!(!line.contains("WARN"), "{line}");
        for ms in line.split(' ').filter_map(|w| w.strip_prefix("ms=")) {
            let decimals = ms.split_once('.').map_or(0, |(_, d)| d.len());
            assert!(decimals <= 2, "{line}");
        }
    }
    assert!(
        log.contains("closed system=claude_client outcome=closed ms="),
        "{log}"
    );
}

/// A port already taken (`--metrics`, `--serve`) is a setting to change: one line naming the
/// address and the cause, on stderr and in the log (not a colour backtrace), exit status 2.
#[test]
fn a_port_in_use_is_said_in_one_line_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    for (flag, key) in [("--metrics", "metrics.listen"), ("--serve", "serve.listen")] {
        let out = cmd(dir.path())
            .env("RUST_BACKTRACE", "1")
            .args(["--headless", "--mute", "--cycles", "1", "--log-file", "log"])
            .args([flag, &port])
            .bounded_output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flag}: {stderr}");
        let said = format!("{key} 127.0.0.1:{port}: cannot serve the ");
        let line = stderr
            .lines()
            .find(|l| l.starts_with("singularis-tui: ") && l.contains(&said))
            .unwrap_or_else(|| panic!("{flag}: no line with {said:?}: {stderr}"));
        assert!(
            line.ends_with("Address already in use (os error 98)"),
            "{line}"
        );
        assert!(!stderr.contains("BACKTRACE"), "{stderr}");
    }
    let log = std::fs::read_to_string(dir.path().join("log")).unwrap();
    let fatal: Vec<&str> = log.lines().filter(|l| l.contains(" ERROR ")).collect();
    assert_eq!(fatal.len(), 2, "{log}");
    assert!(
        fatal
            .iter()
            .all(|l| l.contains("fatal: ") && l.contains("Address already in use"))
    );
    assert!(
        !log.contains("BACKTRACE") && !log.contains('\u{1b}'),
        "{log}"
    );
}

/// Output that cannot be written (`> /dev/full`) is an error, said on stderr, exit status 1:
/// the text account, the JSON stream (`--json` alone: stdout is not a terminal) and
/// check-config's settings. A reader that went away is not (see
/// `a_closed_stdout_is_no_panic_and_the_session_still_ends_cleanly`).
#[test]
fn output_that_cannot_be_written_exits_1_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    for (args, said) in [
        (
            &["--headless", "--mute", "--cycles", "1"][..],
            "singularis-tui: cannot write the shutdown account to stdout: No space left on device",
        ),
        (
            &["--json", "--mute", "--cycles", "1"][..],
            "singularis-tui: cannot write the event stream to stdout: No space left on device",
        ),
        (
            &["check-config"][..],
            "singularis-tui: cannot write the settings to stdout: No space left on device",
        ),
    ] {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let mut c = cmd(dir.path());
        let child = c
            .args(args)
            .stdin(Stdio::null())
            .stdout(full)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = crate::common::finish_within(child, &crate::common::command_line(&c));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.lines().any(|l| l.starts_with(said)),
            "{args:?}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

/// What a command-line tool is expected to have, made from the clap definition: shell
/// completions, a manual page, `--version` with the commit (in a checkout), `--help` with
/// the keys and exit statuses; all on stdout, exit 0.
#[test]
fn completions_man_page_version_and_help() {
    let dir = tempfile::tempdir().unwrap();
    let bash = run_expecting(cmd(dir.path()).args(["completions", "bash"]), 0);
    assert!(bash.contains("-o default singularis-tui"), "{bash}");
    let man = run_expecting(cmd(dir.path()).arg("man"), 0);
    assert!(man.contains(".TH singularis-tui 1"), "{man}");
    let version = run_expecting(cmd(dir.path()).arg("--version"), 0);
    assert!(
        version.starts_with(concat!("singularis-tui ", env!("CARGO_PKG_VERSION"))),
        "{version}"
    );
    if std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(".git")
        .exists()
    {
        assert!(version.trim_end().ends_with(')'), "no commit: {version}");
    }
    let help = run_expecting(cmd(dir.path()).arg("--help"), 0);
    assert!(
        help.contains("Dashboard keys:") && help.contains("Exit status:"),
        "{help}"
    );
}

#[test]
fn default_report_goes_under_xdg_state_home() {
    let dir = tempfile::tempdir().unwrap();
    let out = cmd(dir.path())
        .args(["--headless", "--cycles", "1"])
        .bounded_output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let sessions = dir.path().join("state/singularis-tui/sessions");
    let files: Vec<_> = std::fs::read_dir(&sessions).unwrap().collect();
    assert_eq!(files.len(), 1);
}

/// How long a session may take to reach an event the test waits for: generous, for a
/// loaded CI machine; a bound on a hang, not a timing claim.
const EVENT_WAIT: Duration = Duration::from_secs(60);

#[test]
fn sigterm_and_sighup_shut_down_cleanly_with_reason_signal() {
    for sig in [libc::SIGTERM, libc::SIGHUP, libc::SIGINT] {
        let dir = tempfile::tempdir().unwrap();
        let (mut child, events) =
            spawn_json(cmd(dir.path()).args(["--headless", "--json", "--report", "r.json"]));
        // A whole cycle ended: connections were opened and requests made.
        events.wait_for("a cycle", EVENT_WAIT, |e| e["event"] == "cycle");
        unsafe { libc::kill(child.0.id() as i32, sig) };
        let status = child.wait_within();
        assert_eq!(status.code(), Some(0), "signal {sig}");
        let r = report(&dir.path().join("r.json"));
        assert_eq!(r["shutdown"]["reason"], "signal");
        assert_eq!(r["shutdown"]["sockets_open_after"], 0);
        assert!(r["stats"]["requests"].as_u64().unwrap() > 0);
    }
}

#[test]
fn a_hung_call_at_quit_is_cancelled_at_the_deadline_and_its_system_closes_normally() {
    let dir = tempfile::tempdir().unwrap();
    // A deadline longer than the session, so the hung call is still in flight at the quit;
    // the odds are a unary call the cycle waits on (a vote would go on without an expert,
    // and a stream, the orchestrator's, ends when the game stops: no deadline cuts it).
    std::fs::write(
        dir.path().join("long.toml"),
        "[resilience]\ndeadline_initial_ms = 60000\n",
    )
    .unwrap();
    let (mut child, events) = spawn_json(cmd(dir.path()).args([
        "--headless",
        "--json",
        "--config",
        "long.toml",
        "--grace-ms",
        "300",
        "--fault",
        "wolfram_analyzer=hang",
        "--timing",
        "instant",
        "--report",
        "r.json",
    ]));
    // The odds have a request in flight (it hangs there until cancelled).
    events.wait_for("the Wolfram analyzer's call", EVENT_WAIT, |e| {
        is_state(e, "wolfram_analyzer", "open")
    });
    unsafe { libc::kill(child.0.id() as i32, libc::SIGTERM) };
    let rest = events.rest(EVENT_WAIT);
    let status = child.wait_within().code();
    assert_eq!(status, Some(0), "{rest:#?}");
    // Issue #27 item 7: the report says what ran, on what, and how the process exits.
    let r = report(&dir.path().join("r.json"));
    assert_eq!(r["exit_status"].as_i64(), status.map(i64::from), "{r:#}");
    assert_eq!(r["app"]["version"], env!("CARGO_PKG_VERSION"));
    // A build script may set the commit; a string when it does, null when it does not.
    match option_env!("SINGULARIS_GIT_HASH").filter(|h| !h.is_empty()) {
        Some(hash) => assert_eq!(r["app"]["git_hash"], hash),
        None => assert!(r["app"]["git_hash"].is_null(), "{r:#}"),
    }
    let config = std::path::PathBuf::from(r["config"].as_str().unwrap());
    assert_eq!(
        config.canonicalize().unwrap(),
        dir.path().join("long.toml").canonicalize().unwrap()
    );
    assert!(config.is_absolute(), "{config:?}");
    assert_eq!(r["timing"], "instant");
    assert_eq!(r["faults"], serde_json::json!({"wolfram_analyzer": "hang"}));
    // Its close is the usual `closed`, with what the deadline cut (the account prints the
    // same report: its line is checked in tests/sessions/shutdown.rs).
    let closed = |name: &str| {
        rest.iter()
            .find(|e| e["event"] == "closed" && e["name"] == name)
            .unwrap_or_else(|| panic!("no closed event for {name}: {rest:#?}"))
    };
    let wolfram = closed("wolfram_analyzer");
    assert_eq!(wolfram["outcome"], "closed", "{wolfram}");
    assert_eq!(wolfram["cancelled"], 1, "{wolfram}");
    let complete = rest
        .iter()
        .find(|e| e["event"] == "shutdown_complete")
        .unwrap_or_else(|| panic!("{rest:#?}"));
    for (field, value) in [
        ("closed", 11),
        ("forced", 0),
        ("errors", 0),
        ("cancelled", 1),
        ("sockets_open_after", 0),
    ] {
        assert_eq!(complete[field], value, "{field}: {complete}");
    }
    assert_eq!(r["shutdown"]["cancelled"], 1, "{r:#}");
    let wolfram = r["shutdown"]["systems"]
        .as_array()
        .and_then(|s| s.iter().find(|x| x["name"] == "wolfram_analyzer"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(wolfram["outcome"], "closed", "{r:#}");
    assert_eq!(wolfram["cancelled"], 1, "{r:#}");
}

#[test]
fn bad_configs_exit_2_naming_file_line_and_key() {
    let cases = [
        (
            "unknown key",
            "[shutdown]\ngrace_ms = 500\ngrace = 1\n",
            "shutdown.grace",
            3,
        ),
        (
            "bad url",
            "[systems.claude_client]\nbase_url = \"not a url\"\n",
            "systems.claude_client.base_url",
            2,
        ),
        (
            "unknown system",
            "[systems.clod_client]\nenabled = true\n",
            "systems.clod_client",
            1,
        ),
        (
            "duplicate",
            "[shutdown]\ngrace_ms = 1\n[shutdown]\ngrace_ms = 2\n",
            "shutdown",
            3,
        ),
        (
            "cycle",
            "[systems.gemini_client]\ndepends_on = [\"moe\"]\n",
            "depends_on",
            2,
        ),
        (
            "bad number",
            "[shutdown]\ngrace_ms = -5\n",
            "shutdown.grace_ms",
            2,
        ),
    ];
    for (what, text, key, line) in cases {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("bad.toml"), text).unwrap();
        for sub in [&["--headless", "--cycles", "1"][..], &["check-config"][..]] {
            let out = cmd(dir.path())
                .args(["--config", "bad.toml"])
                .args(sub)
                .bounded_output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{what}: {stderr}");
            assert!(
                stderr.contains(&format!("bad.toml:{line}:")),
                "{what}: {stderr}"
            );
            assert!(stderr.contains(key), "{what}: {stderr}");
            assert!(out.stdout.is_empty(), "{what}: nothing on stdout");
        }
    }
}

#[test]
fn bad_usage_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["--mode", "sideways"][..],
        &["--fault", "nosuch=hang"][..],
        &["--fault", "claude_client=explode"][..],
        &["--grace-ms", "0"][..],
    ] {
        let out = cmd(dir.path()).args(args).bounded_output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
}

#[test]
fn check_config_masks_keys() {
    let dir = tempfile::tempdir().unwrap();
    let out = cmd(dir.path())
        .arg("check-config")
        .env("OPENAI_API_KEY", "sk-canary-0123456789")
        .bounded_output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout.contains("OPENAI_API_KEY"), "{stdout}");
    assert!(!stdout.contains("canary"), "{stdout}");
}

/// The sandbox runs in its own process; a client process plays against it over loopback
/// and exits; the sandbox then sees every connection the client opened closed.
#[test]
fn a_separate_sandbox_process_sees_every_client_connection_closed() {
    let dir = tempfile::tempdir().unwrap();
    let (mut sandbox, urls) =
        crate::common::standalone_sandbox(dir.path(), "127.0.0.1:0", None).expect("a sandbox");
    std::fs::write(
        dir.path().join("live.toml"),
        crate::common::live_config(&urls),
    )
    .unwrap();
    let client = cmd(dir.path())
        .args([
            "--config",
            "live.toml",
            "--headless",
            "--cycles",
            "3",
            "--report",
            "r.json",
        ])
        .envs(crate::common::TEST_KEYS)
        .bounded_output()
        .unwrap();
    assert_eq!(
        client.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&client.stdout)
    );
    let r = report(&dir.path().join("r.json"));
    assert_eq!(r["backend"], "live");
    assert_eq!(r["stats"]["errors"], 0);

    // Ask the sandbox process what it saw: every connection accepted is closed.
    let stats_url = format!("{}/_sandbox/stats", urls["claude_client"]);
    let mut stats = serde_json::Value::Null;
    for _ in 0..200 {
        stats = reqwest::blocking_get_json(&stats_url);
        let all_closed = stats["systems"]
            .as_object()
            .unwrap()
            .iter()
            .all(|(name, s)| {
                // Our own stats request is one open connection on the claude listener.
                let own = if name == "claude_client" { 1 } else { 0 };
                s["open"].as_u64().unwrap() <= own
            });
        if all_closed {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    for (name, s) in stats["systems"].as_object().unwrap() {
        assert!(
            s["accepted"].as_u64().unwrap() >= 1,
            "{name} saw no connection: {stats}"
        );
        let own = if name == "claude_client" { 1 } else { 0 };
        assert!(
            s["open"].as_u64().unwrap() <= own,
            "{name} still has client connections open: {stats}"
        );
    }
    // The report's tokens are what the service billed, system by system (Wolfram reports none).
    let usage = &r["stats"]["usage"];
    let mut billed_input = 0;
    for (name, s) in stats["systems"].as_object().unwrap() {
        let billed = &s["tokens"];
        billed_input += billed["input"].as_u64().unwrap();
        if name == "wolfram_analyzer" {
            assert!(
                usage["systems"].get(name).is_none(),
                "no usage is reported for Wolfram: {usage}"
            );
            continue;
        }
        let line = &usage["systems"][name];
        for kind in ["input", "output", "reasoning"] {
            assert_eq!(
                line[kind], billed[kind],
                "{name} {kind}: report {line} vs sandbox {billed}"
            );
        }
    }
    assert_eq!(usage["input"].as_u64(), Some(billed_input));
    unsafe { libc::kill(sandbox.0.id() as i32, libc::SIGTERM) };
    assert_eq!(sandbox.wait_within().code(), Some(0));
}

const KEYS: [(&str, &str); 5] = [
    ("OPENAI_API_KEY", "sk-probe-openai-0123456789"),
    ("ANTHROPIC_API_KEY", "sk-ant-probe-0123456789"),
    ("GEMINI_API_KEY", "AIza-probe-0123456789"),
    ("HYPERBOLIC_API_KEY", "hyp-probe-0123456789"),
    ("WOLFRAM_APP_ID", "WOLF-PROBE-0123"),
];

#[test]
fn probe_checks_every_system_against_a_standalone_sandbox() {
    let dir = tempfile::tempdir().unwrap();
    let (mut sandbox, urls) =
        crate::common::standalone_sandbox(dir.path(), "127.0.0.1:0", None).expect("a sandbox");
    std::fs::write(
        dir.path().join("live.toml"),
        crate::common::live_config(&urls),
    )
    .unwrap();
    let stdout = run_expecting(
        cmd(dir.path())
            .args(["probe", "--config", "live.toml"])
            .envs(KEYS),
        0,
    );
    // Before the calls: that they are real and billed, and what they can cost at most.
    let first = stdout.lines().next().unwrap_or("");
    assert!(
        first.starts_with("probe makes 10 real calls, billed by the services: at most $")
            && first.contains("+ unknown for wolfram_analyzer, hyperbolic_client"),
        "{stdout}"
    );
    let rows: Vec<&str> = stdout
        .lines()
        .skip_while(|l| !l.starts_with("SYSTEM "))
        .skip(1)
        .take_while(|l| !l.is_empty() && !l.starts_with("Spent: "))
        .collect();
    assert_eq!(rows.len(), 10, "one row per system with a wire: {stdout}");
    // After: what each answer cost, from its own usage.
    let claude = rows
        .iter()
        .find(|r| r.starts_with("claude_client "))
        .unwrap();
    assert!(claude.contains(" $0.0"), "{claude}");
    assert!(stdout.contains("\nSpent: $0.0"), "{stdout}");
    for (name, url) in &urls {
        let row = rows
            .iter()
            .find(|r| r.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no row for {name}: {stdout}"));
        let port = url::Url::parse(url).unwrap().port().unwrap();
        assert!(row.contains(&format!("127.0.0.1:{port}")), "{row}");
        assert!(row.contains(" ok: "), "{row}");
        if name != "wolfram_analyzer" {
            assert!(row.contains(" ms "), "{row}");
            assert!(
                row.split_whitespace()
                    .any(|w| w.contains('/') && w.split('/').all(|n| n.parse::<u64>().is_ok())),
                "tokens in/out: {row}"
            );
        }
    }
    assert!(stdout.contains("0 sockets left open"), "{stdout}");
    for (_, key) in KEYS {
        assert!(!stdout.contains(key), "a key on screen: {stdout}");
    }

    // A named system only; no key set: no call, and the variable to set is named.
    let out = cmd(dir.path())
        .args(["probe", "--config", "live.toml", "claude_client"])
        .bounded_output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("FAILED: no call made: ANTHROPIC_API_KEY not set"),
        "{stdout}"
    );
    assert!(stdout.contains("set ANTHROPIC_API_KEY"), "{stdout}");
    unsafe { libc::kill(sandbox.0.id() as i32, libc::SIGTERM) };
    assert_eq!(sandbox.wait_within().code(), Some(0));
}

#[test]
fn probe_reports_a_port_where_nothing_listens_and_a_rejected_model() {
    let dir = tempfile::tempdir().unwrap();
    // A port that was free a moment ago: nothing listens there now.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (mut sandbox, urls) =
        crate::common::standalone_sandbox(dir.path(), "127.0.0.1:0", None).expect("a sandbox");
    let toml = format!(
        "[systems.openai_client]\nbase_url = \"http://127.0.0.1:{port}/v1\"\n\
         [systems.claude_client]\nbase_url = \"{}\"\nmodel = \"claude-3-5-sonnet-20240620\"\n",
        urls["claude_client"]
    );
    std::fs::write(dir.path().join("probe.toml"), toml).unwrap();
    let out = cmd(dir.path())
        .args(["probe", "--config", "probe.toml"])
        .envs(KEYS)
        .bounded_output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let row = |name: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name}: {stdout}"))
            .to_string()
    };
    assert!(
        row("openai_client").contains(&format!("FAILED: connection refused by 127.0.0.1:{port}")),
        "{stdout}"
    );
    assert!(
        row("claude_client")
            .contains("FAILED: HTTP 404 Not Found: model: claude-3-5-sonnet-20240620"),
        "the service's own words: {stdout}"
    );
    // The account counts the two systems probed, not every system the config holds.
    assert!(
        stdout.contains("\nSystems: 2 closed, 0 forced, 0 sockets left open ("),
        "{stdout}"
    );
    unsafe { libc::kill(sandbox.0.id() as i32, libc::SIGTERM) };
    assert_eq!(sandbox.wait_within().code(), Some(0));
}

mod reqwest {
    /// A one-off HTTP/1.0 GET over a plain socket, so the check opens exactly one connection.
    pub fn blocking_get_json(url: &str) -> serde_json::Value {
        use std::io::{Read, Write};
        let u = url::Url::parse(url).unwrap();
        let mut s =
            std::net::TcpStream::connect((u.host_str().unwrap(), u.port().unwrap())).unwrap();
        write!(s, "GET {} HTTP/1.0\r\nHost: x\r\n\r\n", u.path()).unwrap();
        let mut buf = String::new();
        s.read_to_string(&mut buf).unwrap();
        let body = buf.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
        serde_json::from_str(body).unwrap_or(serde_json::Value::Null)
    }
}

#[test]
fn without_a_socket_table_no_close_is_called_closed_and_the_exit_is_4() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = match crate::common::cmd_without_proc(dir.path()) {
        Ok(c) => c,
        Err(why) => {
            crate::common::skip(&why);
            return;
        }
    };
    let stdout = run_expecting(
        c.args([
            "--headless",
            "--mute",
            "--cycles",
            "2",
            "--report",
            "r.json",
        ]),
        4,
    );
    // Every system's line says unverified, with the cause; none says closed.
    let steps: Vec<&str> = stdout
        .lines()
        .filter(|l| {
            l.starts_with("[CLEANUP] ") && !l.contains("Closing all") && !l.contains("Complete")
        })
        .collect();
    assert_eq!(steps.len(), 11, "{stdout}");
    for l in &steps {
        assert!(
            l.contains("unverified: cannot read this process's socket table"),
            "{l}"
        );
        assert!(!l.contains("✓"), "{l}");
    }
    let complete = stdout.lines().find(|l| l.contains("Complete")).unwrap();
    assert!(
        complete.contains("0 systems closed") && complete.contains("11 unverified"),
        "{complete}"
    );
    assert!(
        !complete.contains("0 sockets left open"),
        "a count never made: {complete}"
    );
    assert!(
        stdout.contains("Final Statistics:\n  Cycles: 2\n"),
        "{stdout}"
    );
    // The report is still written, and says the same.
    let r = report(&dir.path().join("r.json"));
    assert_eq!(r["shutdown"]["verified"], false);
    assert_eq!(r["shutdown"]["sockets_open_after"], serde_json::Value::Null);
    assert!(
        r["shutdown"]["unverified_reason"]
            .as_str()
            .unwrap()
            .contains("/proc/self/fd")
    );
    for s in r["shutdown"]["systems"].as_array().unwrap() {
        assert_eq!(s["outcome"], "unverified", "{s}");
        assert_eq!(s["verified"], false, "{s}");
    }
    assert_eq!(r["stats"]["cycles"], 2);

    // The JSON stream says it too.
    let mut c = crate::common::cmd_without_proc(dir.path()).unwrap();
    let out = c
        .args([
            "--headless",
            "--json",
            "--mute",
            "--cycles",
            "1",
            "--report",
            "j.json",
        ])
        .bounded_output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    let events: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let verified = events
        .iter()
        .find(|e| e["event"] == "verified")
        .expect("a verified event");
    assert_eq!(verified["sockets_open_after"], serde_json::Value::Null);
    assert!(verified["unverified_reason"].is_string());
    let complete = events
        .iter()
        .find(|e| e["event"] == "shutdown_complete")
        .unwrap();
    assert_eq!(complete["verified"], false);
    assert_eq!(complete["unverified"], 11);
    let ended = events
        .iter()
        .find(|e| e["event"] == "session_ended")
        .unwrap();
    assert_eq!(ended["exit_code"], 4);
    assert!(
        events
            .iter()
            .filter(|e| e["event"] == "closed")
            .all(|e| e["outcome"] == "unverified")
    );
}

#[test]
fn a_closed_stdout_is_no_panic_and_the_session_still_ends_cleanly() {
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    let mut child = cmd(dir.path())
        .args([
            "--headless",
            "--mute",
            "--cycles",
            "3",
            "--report",
            "r.json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // As `| head -c 1` does: read a byte, then close the pipe before the account is printed.
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 1];
    let _ = stdout.read(&mut first);
    drop(stdout);
    let out = crate::common::finish_within(child, "a headless session whose stdout closes");
    let (status, stderr) = (out.status, String::from_utf8_lossy(&out.stderr));
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(status.code(), Some(0), "{stderr}");
    let r = report(&dir.path().join("r.json"));
    assert_eq!(r["stats"]["cycles"], 3);
    assert_eq!(r["shutdown"]["sockets_open_after"], 0);
}

#[test]
fn the_sandbox_listens_on_loopback_only_from_the_command_line_as_from_the_config() {
    let dir = tempfile::tempdir().unwrap();
    for addr in ["0.0.0.0:0", "[::]:0"] {
        let out = cmd(dir.path())
            .args(["sandbox", "--listen", addr])
            .bounded_output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{addr}: {stderr}");
        assert!(
            stderr.contains("not a loopback address"),
            "{addr}: {stderr}"
        );
    }
    std::fs::write(
        dir.path().join("wild.toml"),
        "[sandbox]\nlisten = \"0.0.0.0\"\n",
    )
    .unwrap();
    let out = cmd(dir.path())
        .args(["check-config", "--config", "wild.toml"])
        .bounded_output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a loopback address"));
}

/// A mistyped flag is a usage error (exit 2) that names the flag and suggests the right one,
/// in plain text (no ANSI colour: clap is built without `color`).
#[test]
fn a_mistyped_flag_gets_a_suggestion_in_plain_text() {
    let dir = tempfile::tempdir().unwrap();
    let out = cmd(dir.path())
        .args(["--confg", "x.toml"])
        .bounded_output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("'--confg'"), "{stderr}");
    assert!(stderr.contains("'--config'"), "no suggestion: {stderr}");
    assert!(!stderr.contains('\u{1b}'), "colour codes: {stderr:?}");
}

/// A fatal error prints its cause chain on one line (`{e:#}`), exits 1, and no panic report.
#[test]
fn a_busy_sandbox_port_is_a_fatal_error_with_its_cause_chain() {
    let dir = tempfile::tempdir().unwrap();
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = held.local_addr().unwrap().to_string();
    let out = cmd(dir.path())
        .args(["sandbox", "--listen", &addr])
        .bounded_output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.starts_with("singularis-tui: starting the sandbox on "))
        .unwrap_or_else(|| panic!("no fatal line: {stderr}"));
    // The context, then the cause after ": ".
    let cause = line
        .strip_prefix(&format!("singularis-tui: starting the sandbox on {addr}: "))
        .unwrap_or_else(|| panic!("no cause after the context: {line}"));
    assert!(!cause.trim().is_empty(), "{line}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_bare_metrics_port_is_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let out = one_headless_cycle(dir.path(), &["--metrics", "0"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("metrics at http://127.0.0.1:"), "{stderr}");
    assert!(!stderr.contains("open to the network"), "{stderr}");
    // The public case is not run: no test binds 0.0.0.0 (issue #28).
}

#[test]
fn a_config_that_cannot_be_read_is_named_without_a_made_up_position() {
    let dir = tempfile::tempdir().unwrap();
    let out = cmd(dir.path())
        .args(["check-config", "--config", "/nonexistent/config.toml"])
        .bounded_output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("/nonexistent/config.toml: cannot read"),
        "{stderr}"
    );
    assert!(!stderr.contains(":0:0"), "{stderr}");
}

#[test]
fn a_config_path_that_is_not_a_regular_file_or_never_ends_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("config.fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let zero = dir.path().join("zero.toml");
    std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
    let big = dir.path().join("big.toml");
    std::fs::write(&big, "# padding\n".repeat(200_000)).unwrap();
    for (path, why) in [
        (&fifo, "is a FIFO, not a regular file"),
        (&zero, "is a character device, not a regular file"),
        (&big, "is larger than 1024 KiB"),
    ] {
        for sub in [&["check-config"][..], &["--headless", "--cycles", "1"][..]] {
            // A hang here would be the bug: the wait is bounded so that it fails instead.
            let mut child = cmd(dir.path())
                .args(sub)
                .arg("--config")
                .arg(path)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let started = std::time::Instant::now();
            let status = loop {
                if let Some(s) = child.try_wait().unwrap() {
                    break s;
                }
                if started.elapsed() > Duration::from_secs(20) {
                    child.kill().unwrap();
                    panic!("{} {sub:?} hung", path.display());
                }
                std::thread::sleep(Duration::from_millis(20));
            };
            let mut stderr = String::new();
            std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
            assert_eq!(status.code(), Some(2), "{stderr}");
            assert!(
                stderr.contains(&format!(
                    "{}: cannot read the config: {why}",
                    path.display()
                )),
                "{stderr}"
            );
        }
    }
}

#[test]
fn a_bad_log_filter_is_said_once_and_the_session_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let out = cmd(dir.path())
        .args(["--headless", "--mute", "--cycles", "1"])
        .env("SINGULARIS_LOG", "debug,=[[[")
        .bounded_output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(stderr.matches("is not a log filter").count(), 1, "{stderr}");
}

/// /dev/full opens, then fails every write with ENOSPC: a full disk, for real. The session
/// logs many lines; the failure is said once, and the session is not the worse for it.
#[test]
fn a_log_file_that_cannot_be_written_is_said_once_and_the_session_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let out = cmd(dir.path())
        .args([
            "--headless",
            "--mute",
            "--cycles",
            "2",
            "--log-file",
            "/dev/full",
        ])
        .bounded_output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(
        stderr.matches("cannot write the log file").count(),
        1,
        "once, not once per line: {stderr}"
    );
    assert!(
        stderr.lines().any(|l| l
            == "singularis-tui: cannot write the log file /dev/full: No space left on device (os error 28); log lines are being lost"),
        "{stderr}"
    );
    assert!(
        stdout.contains("Final Statistics:\n  Cycles: 2\n"),
        "{stdout}"
    );
}

#[test]
fn a_report_through_a_symlink_lands_in_its_target_and_the_link_stays() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("reports")).unwrap();
    std::os::unix::fs::symlink("reports/latest.json", dir.path().join("link.json")).unwrap();
    let out = one_headless_cycle(dir.path(), &["--report", "link.json"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let link = std::fs::symlink_metadata(dir.path().join("link.json")).unwrap();
    assert!(link.file_type().is_symlink(), "the link was replaced");
    let written = report(&dir.path().join("reports/latest.json"));
    assert_eq!(written["stats"]["cycles"], 1);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Report: ./reports/latest.json")
            || String::from_utf8_lossy(&out.stdout).contains("Report: reports/latest.json"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn a_report_path_that_cannot_take_a_report_is_refused_before_the_session_starts() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("r.fifo");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    std::fs::create_dir(dir.path().join("a-dir")).unwrap();
    let cases = [
        (fifo.display().to_string(), "is a FIFO"),
        ("/dev/null".to_string(), "is a character device"),
        ("a-dir".to_string(), "is a directory"),
        ("/proc/x".to_string(), ""),
        ("/proc/self/nosuch/r.json".to_string(), ""),
    ];
    for (path, why) in cases {
        let out = one_headless_cycle(dir.path(), &["--report", &path]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(2), "{path}: {stderr}");
        assert!(
            stderr.contains(&format!("cannot write the report to {path}: "))
                && stderr.contains(why),
            "{path}: {stderr}"
        );
        assert!(
            !stdout.contains("[CLEANUP]"),
            "{path}: the session ran: {stdout}"
        );
    }
    let fifo_kind = std::fs::symlink_metadata(&fifo).unwrap().file_type();
    assert!(
        std::os::unix::fs::FileTypeExt::is_fifo(&fifo_kind),
        "the FIFO was replaced"
    );
    assert!(
        std::os::unix::fs::FileTypeExt::is_char_device(
            &std::fs::metadata("/dev/null").unwrap().file_type()
        ),
        "/dev/null was replaced"
    );
}

#[test]
fn a_report_that_cannot_be_written_at_the_end_exits_1_and_says_so() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("out")).unwrap();
    let mut child = KillOnDrop(
        cmd(dir.path())
            .args(["--headless", "--json", "--mute", "--report", "out/r.json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut lines = std::io::BufReader::new(child.0.stdout.take().unwrap()).lines();
    // Playing: the start-up check passed. Now the directory goes away, for a file.
    let first = lines.next().unwrap().unwrap();
    assert!(first.contains("\"event\""), "{first}");
    std::fs::remove_dir(dir.path().join("out")).unwrap();
    std::fs::write(dir.path().join("out"), "not a directory").unwrap();
    unsafe { libc::kill(child.0.id() as i32, libc::SIGTERM) };
    let events: Vec<serde_json::Value> = lines
        .map(|l| serde_json::from_str(&l.unwrap()).unwrap())
        .collect();
    let status = child.wait_within();
    assert_eq!(status.code(), Some(1));
    let ended = events
        .iter()
        .find(|e| e["event"] == "session_ended")
        .expect("a session_ended event");
    assert_eq!(ended["exit_code"], 1);
    assert_eq!(ended["report"], serde_json::Value::Null);
    assert!(
        ended["report_error"]
            .as_str()
            .is_some_and(|e| e.contains("cannot write the session report out/r.json")),
        "{ended}"
    );
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.0.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(
        stderr.contains("cannot write the session report"),
        "{stderr}"
    );
}

#[test]
fn the_command_line_holds_to_the_configs_rules_and_names_them() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&[&str], &[&str])] = &[
        (
            &["--cycles", "20000000"],
            &["20000000 is out of range: from 0 to 10000000"],
        ),
        (
            &["--cycles", "-1"],
            &["-1 is out of range: from 0 to 10000000"],
        ),
        (
            &["--grace-ms", "0"],
            &["0 is out of range: from 1 to 600000"],
        ),
        (
            &["--fault", "claude_client=error:200"],
            &["error:CODE takes an HTTP error status from 400 to 599"],
        ),
        (
            &["--fault", "claude_client=slow:99999999"],
            &["slow:MS takes a delay in milliseconds from 0 to 3600000"],
        ),
        (
            &["--fault", "nosuch=hang"],
            &["unknown system \"nosuch\"", "claude_client", "meta_rl"],
        ),
        (
            &[
                "--fault",
                "claude_client=hang",
                "--fault",
                "claude_client=reset",
            ],
            &["--fault is given twice for claude_client (hang, then reset)"],
        ),
    ];
    for (args, said) in cases {
        let out = cmd(dir.path())
            .arg("--headless")
            .args(*args)
            .bounded_output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        for s in *said {
            assert!(stderr.contains(s), "{args:?}: expected {s:?} in {stderr}");
        }
        assert!(out.stdout.is_empty(), "{args:?}: the session started");
    }
    // The sandbox alone takes the same rule for a repeated fault.
    let out = cmd(dir.path())
        .args(["sandbox", "--fault", "moe=hang", "--fault", "moe=drip"])
        .bounded_output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("given twice for moe"));
}

/// What the services are known to refuse is refused before a request: a located error and
/// exit 2, from `check-config` and at session start alike.
#[test]
fn configs_the_services_refuse_exit_2_before_a_request() {
    let cases = [
        (
            "[systems.orchestrator]\nmax_output_tokens = 15\n",
            "2:21: systems.orchestrator.max_output_tokens: ",
            "the least the Responses API accepts",
        ),
        (
            "[systems.openai_client]\nmodel = \"gpt-4.1\"\nreasoning_effort = \"none\"\n",
            "3:20: systems.openai_client.reasoning_effort: ",
            "\"gpt-4.1\" does not reason",
        ),
        (
            "[systems.meta_rl]\nmodel = \"gpt-5\"\nreasoning_effort = \"none\"\n",
            "3:20: systems.meta_rl.reasoning_effort: ",
            "does not take effort \"none\"",
        ),
        (
            "[systems.orchestrator]\nreasoning_effort = \"minimal\"\n",
            "2:20: systems.orchestrator.reasoning_effort: ",
            "\"gpt-5.1\" does not take effort \"minimal\"",
        ),
        (
            "[systems.gemini_client]\nthinking_budget = 24577\n",
            "2:19: systems.gemini_client.thinking_budget: ",
            "between 512 and 24576",
        ),
        (
            "[systems.video_interpreter]\nmodel = \"gemini-3.1-pro-preview\"\nthinking_budget = 0\n",
            "3:19: systems.video_interpreter.thinking_budget: ",
            "only works in thinking mode",
        ),
    ];
    for (text, at, why) in cases {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("bad.toml"), text).unwrap();
        for sub in [&["check-config"][..], &["--headless", "--cycles", "1"][..]] {
            let out = cmd(dir.path())
                .args(["--config", "bad.toml"])
                .args(sub)
                .bounded_output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{text}{sub:?}: {stderr}");
            assert!(
                stderr.contains(&format!("bad.toml:{at}")) && stderr.contains(why),
                "{text}{sub:?}: want {at}{why}; got {stderr}"
            );
            assert!(out.stdout.is_empty(), "{text}: nothing on stdout");
        }
    }
}

/// Changing only the model keeps none of the old model's tuned effort: gpt-4.1 on
/// openai_client is sent no `reasoning_effort` (gpt-5.1's "none" would be refused) and plays.
#[test]
fn a_changed_model_takes_its_own_default_effort_and_plays() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("gpt41.toml"),
        "[systems.openai_client]\nmodel = \"gpt-4.1\"\n",
    )
    .unwrap();
    let out = cmd(dir.path())
        .args(["check-config", "--config", "gpt41.toml"])
        .bounded_output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let openai = stdout
        .split("[systems.openai_client]")
        .nth(1)
        .and_then(|s| s.split("\n[").next())
        .unwrap_or_default();
    assert!(openai.contains("model = \"gpt-4.1\"\n"), "{stdout}");
    assert!(openai.contains("reasoning_effort = \"\"\n"), "{stdout}");

    let out = one_headless_cycle(
        dir.path(),
        &["--config", "gpt41.toml", "--report", "r.json"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let r = report(&dir.path().join("r.json"));
    assert_eq!(r["stats"]["errors"], 0, "{stderr}\n{r:#}");
}

#[test]
fn a_session_stopped_by_its_spend_limit_says_so_and_exits_5() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("priced.toml"),
        "[gameplay]\ncycle_delay_ms = 0\n[audio]\nenabled = false\n[pricing]\n\
         \"Qwen/Qwen3-235B-A22B-Instruct-2507\" = { input = 0.2, output = 0.6 }\n\
         \"llm-api\" = { input = 0.0, output = 0.0 }\n",
    )
    .unwrap();
    let out = cmd(dir.path())
        .args([
            "--config",
            "priced.toml",
            "--headless",
            "--budget-usd",
            "0.02",
        ])
        .args(["--cycles", "100000", "--report", "r.json"])
        .bounded_output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(5), "{stdout}");
    assert!(stdout.contains("(budget), 0 sockets left open"), "{stdout}");
    assert!(
        stdout.contains("  Budget: $") && stdout.contains(" of $0.0200 ("),
        "{stdout}"
    );
    assert!(
        stdout.contains("Calls not made for the budget: "),
        "{stdout}"
    );
    let r = crate::common::report(&dir.path().join("r.json"));
    assert_eq!(r["shutdown"]["reason"], "budget", "{r:#}");
    let b = &r["stats"]["budget"];
    assert_eq!(b["exhausted"], true, "{b}");
    assert!(b["spent_usd"].as_f64().unwrap() <= 0.02, "{b}");
    assert!(r["stats"]["cycles"].as_u64().unwrap() >= 2, "{r:#}");
    // An unpriced model under a limit is refused, not counted as $0.
    let out = cmd(dir.path())
        .args(["--headless", "--mute", "--budget-usd", "1", "--cycles", "1"])
        .args(["--report", "u.json"])
        .bounded_output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let r = crate::common::report(&dir.path().join("u.json"));
    let refused = &r["stats"]["budget"]["refused"];
    assert_eq!(refused["hyperbolic_client"], 1, "{r:#}");
    assert!(
        r["stats"]["budget"]["last_refusal"]
            .as_str()
            .is_some_and(|s| s.contains("has no price")),
        "{r:#}"
    );
}

#[test]
fn sessions_ending_together_keep_every_report() {
    let dir = tempfile::tempdir().unwrap();
    let children: Vec<_> = (0..8)
        .map(|_| {
            cmd(dir.path())
                .args(["--headless", "--mute", "--cycles", "1"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        assert_eq!(KillOnDrop(c).wait_within().code(), Some(0));
    }
    let sessions = dir.path().join("state/singularis-tui/sessions");
    let reports: Vec<_> = std::fs::read_dir(&sessions)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(reports.len(), 8, "{reports:?}");
    assert!(reports.iter().all(|r| r.ends_with(".json")), "{reports:?}");
}

#[test]
fn the_account_names_a_system_that_answered_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = cmd(dir.path())
        .args(["--headless", "--mute", "--cycles", "10"])
        .args(["--fault", "claude_client=hang", "--report", "r.json"])
        .bounded_output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    // Its close was clean, but it never answered: the statistics say so, with why.
    assert!(
        stdout.contains("[CLEANUP] ✓ Claude client closed"),
        "{stdout}"
    );
    let line = stdout
        .lines()
        .find(|l| l.starts_with("    Claude client: answered none of its "))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(
        line.contains(" late") && line.contains("skipped by its breaker"),
        "{line}"
    );
    assert!(
        stdout.contains("  Calls that did not simply answer:"),
        "{stdout}"
    );
    // The healthy systems are not listed.
    assert!(!stdout.contains("    Gemini client: "), "{stdout}");
}
