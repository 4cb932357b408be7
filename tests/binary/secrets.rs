//! Keys never leak: every key set to a canary, sessions whose systems fail in every way,
//! and the canary is nowhere in stdout, stderr, the log (at trace level) or the report.

use crate::common::BoundedOutput;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const KEYS: [&str; 6] = [
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "GEMINI_API_KEY",
    "HYPERBOLIC_API_KEY",
    "WOLFRAM_APP_ID",
    "LMSTUDIO_API_KEY",
];

fn canary(var: &str) -> String {
    format!("CANARY{}x9f3", var.len() * 7919)
}

/// The binary in `dir` with every key set to its canary and the log at trace level.
fn canary_cmd(dir: &Path) -> Command {
    let mut cmd = crate::common::cmd(dir);
    cmd.env("SINGULARIS_LOG", "trace");
    for k in KEYS {
        cmd.env(k, canary(k));
    }
    cmd
}

/// `args` run to the end: its stdout and stderr.
fn run(dir: &Path, args: &[&str]) -> (String, String) {
    let out = canary_cmd(dir).args(args).bounded_output().unwrap();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A headless `--json` session with `args`, stopped by SIGTERM once each of `systems` has
/// had a call end (a `state` event out of `open`: its exchange, failed or not, is over and
/// recorded): every event it wrote (one JSON line each) and its stderr.
fn run_until_each_called(dir: &Path, args: &[&str], systems: &[&str]) -> (String, String) {
    let mut cmd = canary_cmd(dir);
    cmd.args(["--headless", "--json"])
        .args(args)
        .stderr(Stdio::piped());
    let (mut child, events) = crate::common::spawn_json(&mut cmd);
    let mut stderr = child.0.stderr.take().expect("piped stderr");
    let stderr = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
        text
    });
    let mut called = std::collections::BTreeSet::new();
    let mut seen = events.until("a call ended on every system", WAIT, |e| {
        if e["event"] == "state" && e["from"] == "open" {
            called.extend(e["system"].as_str().map(str::to_string));
        }
        systems.iter().all(|s| called.contains(*s))
    });
    unsafe { libc::kill(child.0.id() as i32, libc::SIGTERM) };
    seen.extend(events.rest(WAIT));
    child.wait_within();
    let lines: Vec<String> = seen.iter().map(|e| e.to_string()).collect();
    (lines.join("\n"), stderr.join().expect("the stderr reader"))
}

/// Generous, for a loaded CI machine: a bound on a hang, not a timing claim.
const WAIT: Duration = Duration::from_secs(60);

fn assert_clean(what: &str, text: &str) {
    for k in KEYS {
        let c = canary(k);
        assert!(!text.contains(&c), "{what} contains the {k} canary");
        // Nor a telling part of it.
        assert!(
            !text.contains(&c[..10]),
            "{what} contains part of the {k} canary"
        );
    }
}

#[test]
fn no_key_appears_in_any_output_log_or_report() {
    let dir = tempfile::tempdir().unwrap();
    // Every system fails in its own way; the keys are still sent (the sandbox checks auth).
    let faults = [
        "openai_client=error:401",
        "claude_client=error:403",
        "gemini_client=reset",
        "hyperbolic_client=ratelimit",
        "lmstudio_client=refuse",
        "orchestrator=error:500",
        "wolfram_analyzer=error:403",
        "voice_system=drip",
        "meta_rl=error:429",
        "video_interpreter=slow:50",
    ];
    let mut args = vec![
        "--grace-ms",
        "200",
        "--report",
        "r.json",
        "--log-file",
        "log.txt",
        "--record",
        "rec",
    ];
    for f in &faults {
        args.push("--fault");
        args.push(f);
    }
    let systems: Vec<&str> = faults.iter().filter_map(|f| f.split('=').next()).collect();
    let (stdout, stderr) = run_until_each_called(dir.path(), &args, &systems);
    assert!(
        stdout.contains(r#""event":"shutdown_complete""#),
        "{stdout}\n{stderr}"
    );
    assert_clean("stdout", &stdout);
    assert_clean("stderr", &stderr);
    let log = std::fs::read_to_string(dir.path().join("log.txt")).unwrap();
    assert!(log.contains("request failed"), "the failures were logged");
    assert_clean("log", &log);
    let report = std::fs::read_to_string(dir.path().join("r.json")).unwrap();
    assert!(report.contains("\"errors\""));
    assert_clean("report", &report);
    // The recording holds every request and answer, the failed ones too, but no key.
    let mut recorded = 0;
    for entry in std::fs::read_dir(dir.path().join("rec")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        recorded += text.lines().count() - 1;
        assert_clean(&format!("recording {}", path.display()), &text);
    }
    assert!(recorded >= 10, "{recorded} exchanges recorded");

    let (stdout, stderr) = run(dir.path(), &["check-config"]);
    assert!(stdout.contains("  # set, ****"), "{stdout}");
    assert_clean("check-config stdout", &stdout);
    assert_clean("check-config stderr", &stderr);
}

#[test]
fn a_key_is_never_sent_in_clear_text_off_loopback() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("c.toml"),
        "[systems.openai_client]\nbase_url = \"http://api.example.com/v1\"\n",
    )
    .unwrap();
    let out = crate::common::cmd(dir.path())
        .args(["--config", "c.toml", "--headless", "--cycles", "1"])
        .env("OPENAI_API_KEY", canary("OPENAI_API_KEY"))
        .bounded_output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("c.toml:2:")
            && stderr.contains("systems.openai_client.base_url")
            && stderr.contains("clear text"),
        "{stderr}"
    );
    assert_clean("stderr", &stderr);
}

#[test]
fn report_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let out = crate::common::cmd(dir.path())
        .args(["--headless", "--cycles", "1", "--report", "r.json"])
        .bounded_output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let mode = std::fs::metadata(dir.path().join("r.json"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}
