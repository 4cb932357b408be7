//! The real binary's dashboard, driven through tmux like a person would: all eleven rows
//! appear, `x` force-closes the selected system while the game and the others go on, `q`
//! shows the shutdown account and the final statistics, a key leaves, and the terminal is
//! back to a normal shell with the headless summary printed. Skipped (with a notice) only
//! when tmux is not installed; `.ci/run` installs it.

use crate::common::BoundedOutput;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::common::BIN;
/// Generous: a loaded CI machine may be slow; nothing here measures speed.
pub(crate) const WAIT: Duration = Duration::from_secs(60);

pub(crate) const NAMES: [&str; 11] = [
    "Video interpreter",
    "Voice system",
    "GPT-5 orchestrator",
    "Wolfram analyzer",
    "Gemini client",
    "Claude client",
    "OpenAI client",
    "Hyperbolic client",
    "LMStudio client",
    "MoE orchestrator",
    "GPT-5 Meta RL",
];

/// A tmux server of our own (its own socket), killed when dropped.
pub(crate) struct Tmux {
    socket: String,
    target: &'static str,
}

impl Tmux {
    /// `None` (with a notice, so the test is skipped visibly) when tmux is not installed.
    pub(crate) fn start(dir: &Path, width: u16, height: u16) -> Option<Tmux> {
        if Command::new("tmux")
            .arg("-V")
            .bounded_output()
            .map(|o| !o.status.success())
            .unwrap_or(true)
        {
            crate::common::skip("tmux is not installed");
            return None;
        }
        static N: AtomicUsize = AtomicUsize::new(0);
        let socket = format!(
            "sgt-e2e-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        let t = Tmux {
            socket,
            target: "e2e",
        };
        let out = t.run(&[
            "new-session",
            "-d",
            "-s",
            "e2e",
            "-x",
            &width.to_string(),
            "-y",
            &height.to_string(),
            "-c",
            dir.to_str().expect("utf-8 temp dir"),
            "sh",
        ]);
        assert!(
            out.status.success(),
            "tmux new-session: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(t)
    }

    pub(crate) fn run(&self, args: &[&str]) -> Output {
        // The tmux server (started by the first call) hands its environment to the shells it
        // runs, so it gets the same clean one as every spawned binary.
        crate::common::clean_env(&mut Command::new("tmux"))
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .env("TERM", "xterm-256color")
            .env_remove("TMUX")
            .bounded_output()
            .expect("running tmux")
    }

    pub(crate) fn send(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", self.target];
        args.extend_from_slice(keys);
        let out = self.run(&args);
        assert!(
            out.status.success(),
            "send-keys {keys:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Type a line into the shell, literally, then Enter.
    pub(crate) fn type_line(&self, line: &str) {
        let out = self.run(&["send-keys", "-t", self.target, "-l", line]);
        assert!(out.status.success());
        self.send(&["Enter"]);
    }

    pub(crate) fn screen(&self) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p", "-t", self.target]).stdout)
            .into_owned()
    }

    pub(crate) fn alternate_screen(&self) -> bool {
        let out = self.run(&[
            "display-message",
            "-p",
            "-t",
            self.target,
            "#{alternate_on}",
        ]);
        String::from_utf8_lossy(&out.stdout).trim() == "1"
    }

    /// Poll the pane until `ok` holds; on timeout, fail showing the pane.
    pub(crate) fn wait_for(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let started = Instant::now();
        loop {
            let screen = self.screen();
            if ok(&screen) {
                return screen;
            }
            if started.elapsed() > WAIT {
                panic!("timed out waiting for {what}; the pane shows:\n{screen}");
            }
            std::thread::sleep(Duration::from_millis(150));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

/// The table row of `name` on the dashboard.
pub(crate) fn row<'a>(screen: &'a str, name: &str) -> &'a str {
    screen
        .lines()
        .find(|l| l.contains(&format!(" {name} ")))
        .unwrap_or("")
}

/// The `cycles N` figure of the header.
pub(crate) fn cycles(screen: &str) -> Option<u64> {
    let header = screen.lines().next()?;
    let at = header.find("cycles ")? + "cycles ".len();
    header[at..]
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

pub(crate) fn quoted(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', r"'\''"))
}

/// What one launch of the binary leaves behind.
struct Run {
    report: PathBuf,
    pid_file: PathBuf,
}

impl Run {
    fn pid(&self) -> i32 {
        std::fs::read_to_string(&self.pid_file)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .expect("the pid file")
    }

    fn report(&self) -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(&self.report).expect("report written"))
            .expect("report is JSON")
    }
}

/// Type the command that runs the dashboard (writing its pid first) into the pane's shell,
/// with `EXIT=status` printed after it.
fn launch(tmux: &Tmux, dir: &Path) -> Run {
    launch_with(tmux, dir, "")
}

/// As [`launch`], with more arguments for the binary.
fn launch_with(tmux: &Tmux, dir: &Path, extra: &str) -> Run {
    launch_env(tmux, dir, "", extra)
}

/// As [`launch_with`], with `VAR=value` assignments for the binary's environment.
fn launch_env(tmux: &Tmux, dir: &Path, env: &str, extra: &str) -> Run {
    launch_wrapped(tmux, dir, env, extra, |inner| {
        format!("sh -c {}", quoted(Path::new(inner)))
    })
}

/// As [`launch_env`], with the whole command line given to `wrap` (e.g. to run it in
/// another namespace).
fn launch_wrapped(
    tmux: &Tmux,
    dir: &Path,
    env: &str,
    extra: &str,
    wrap: impl Fn(&str) -> String,
) -> Run {
    let run = Run {
        report: dir.join("report.json"),
        pid_file: dir.join("pid"),
    };
    // No keys from this environment: every system on the embedded sandbox.
    let inner = format!(
        "echo $$ > {pid}; exec env -u OPENAI_API_KEY -u ANTHROPIC_API_KEY -u GEMINI_API_KEY \
         -u HYPERBOLIC_API_KEY -u WOLFRAM_APP_ID -u LMSTUDIO_API_KEY -u NO_COLOR {env} \
         XDG_STATE_HOME={state} XDG_CONFIG_HOME={config} {bin} --report {report} --log-file {log} {extra}",
        pid = quoted(&run.pid_file),
        state = quoted(&dir.join("state")),
        config = quoted(&dir.join("xdg-config")),
        bin = quoted(Path::new(BIN)),
        report = quoted(&run.report),
        log = quoted(&dir.join("app.log")),
    );
    tmux.type_line(&format!("{}; echo EXIT=$?", wrap(&inner)));
    run
}

fn all_rows_with_traffic(s: &str) -> bool {
    NAMES.iter().all(|n| s.contains(n))
        && s.contains("Connections")
        && cycles(s).is_some_and(|c| c >= 1)
}

/// Running (a zombie is not: nobody may be left to reap it once its shell is gone).
pub(crate) fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            stat.rsplit_once(") ")
                .map(|(_, rest)| !rest.starts_with('Z'))
        })
        .unwrap_or(false)
}

/// Wait for the exit line; the shell is back.
pub(crate) fn wait_exit(tmux: &Tmux) -> String {
    // A line of its own: the typed command line contains `EXIT=` too.
    tmux.wait_for("the process to exit", |s| {
        s.lines().any(|l| l.starts_with("EXIT="))
    })
}

#[test]
fn dashboard_force_closes_one_system_then_shuts_down_and_restores_the_terminal() {
    let dir = tempfile::tempdir().expect("temp dir");
    let Some(tmux) = Tmux::start(dir.path(), 120, 40) else {
        return;
    };
    // A pace and a linger no test could wait out: only keys can bring the final panel and
    // the exit within the bound.
    std::fs::write(
        dir.path().join("slow-ui.toml"),
        "[ui]\nshutdown_step_ms = 5000\nlinger_s = 3600\n",
    )
    .unwrap();
    let run = launch_with(&tmux, dir.path(), "--config slow-ui.toml");

    // All eleven rows, and the game under way.
    let screen = tmux.wait_for("all eleven rows with traffic", all_rows_with_traffic);
    assert!(
        tmux.alternate_screen(),
        "the dashboard uses the alternate screen:\n{screen}"
    );

    // Smaller, then back: redrawn to the new size each time.
    assert!(
        tmux.run(&["resize-window", "-t", "e2e", "-x", "80", "-y", "24"])
            .status
            .success()
    );
    tmux.wait_for("the dashboard at 80x24", |s| {
        s.lines().count() <= 24
            && all_rows_with_traffic(s)
            && s.lines().nth(1).is_some_and(|l| l.ends_with('┓'))
    });
    assert!(
        tmux.run(&["resize-window", "-t", "e2e", "-x", "120", "-y", "40"])
            .status
            .success()
    );
    tmux.wait_for("the dashboard at 120x40", |s| {
        s.lines()
            .nth(1)
            .is_some_and(|l| l.chars().count() == 120 && l.ends_with('┓'))
    });

    // Select OpenAI client (the seventh row) and force-close it.
    for _ in 0..6 {
        tmux.send(&["j"]);
    }
    tmux.wait_for("OpenAI client selected", |s| {
        row(s, "OpenAI client").contains("> OpenAI client")
    });
    tmux.send(&["x"]);
    let screen = tmux.wait_for("OpenAI client force-closed", |s| {
        s.contains("OpenAI client force-closed on request")
            && row(s, "OpenAI client").contains("closed")
    });
    for name in NAMES.iter().filter(|n| **n != "OpenAI client") {
        let r = row(&screen, name);
        assert!(
            !r.contains("closed") && !r.contains("closing"),
            "{name} should stay up: {r}\n{screen}"
        );
    }
    // The game goes on without it.
    let before = cycles(&screen).unwrap_or(0);
    tmux.wait_for("more gameplay cycles", |s| {
        cycles(s).is_some_and(|c| c > before)
    });

    // Quit: the shutdown account, paced; a key shows it whole at once, with the final
    // statistics (22 steps at 5 s each would be far past the bound).
    tmux.send(&["q"]);
    tmux.wait_for("the shutdown account", |s| {
        s.contains("Shutdown") && s.contains("Grace period") && s.contains("show it all now")
    });
    tmux.send(&["Enter"]);
    let screen = tmux.wait_for("the final statistics after a key", |s| {
        s.contains("Final statistics") && s.contains("11 of 11 done")
    });
    assert!(
        screen.contains("any key to exit") && screen.contains("exits by itself in"),
        "the final panel says how to leave:\n{screen}"
    );
    assert!(screen.contains("✓ Video interpreter"), "{screen}");
    let openai = row(&screen, "OpenAI client");
    assert!(
        openai.contains("forced") && openai.contains("by you at 0:0"),
        "the account remembers the user's close:\n{screen}"
    );
    assert!(screen.contains("0 sockets left open"), "{screen}");

    // Any key leaves (the linger is an hour); the shell is back with the headless summary.
    tmux.send(&["Space"]);
    let screen = wait_exit(&tmux);
    assert!(
        screen.lines().any(|l| l == "EXIT=0"),
        "exit status:\n{screen}"
    );
    assert!(
        !tmux.alternate_screen(),
        "the alternate screen is left:\n{screen}"
    );
    assert!(
        screen.contains("[CLEANUP] Closing all connections..."),
        "{screen}"
    );
    assert!(
        screen.contains("[CLEANUP] ✗ OpenAI client force-closed by you at 0:0")
            && screen.contains("closed again at shutdown ("),
        "{screen}"
    );
    assert!(screen.contains("[CLEANUP] Complete - "), "{screen}");
    assert!(screen.contains("Final Statistics:"), "{screen}");
    assert!(
        screen.contains(&format!("Report: {}", run.report.display())),
        "{screen}"
    );
    assert!(
        !screen.contains("Connections"),
        "no dashboard left on the screen:\n{screen}"
    );

    // Raw mode is off: the shell's terminal echoes and reads lines again.
    tmux.type_line("stty -a | tr ' ;' '\\n\\n' | grep -x -e icanon -e -icanon -e echo -e -echo | tr '\\n' ' '; echo STTY-DONE");
    // The output line, not the typed command line.
    let is_output = |l: &str| l.ends_with("STTY-DONE") && !l.contains("stty -a");
    let screen = tmux.wait_for("stty", |s| s.lines().any(is_output));
    let stty = screen.lines().find(|l| is_output(l)).unwrap_or("");
    assert!(
        stty.contains("icanon") && !stty.contains("-icanon"),
        "canonical mode is back: {stty}"
    );
    assert!(
        stty.contains("echo") && !stty.contains("-echo"),
        "echo is back: {stty}"
    );

    let json = run.report();
    assert_eq!(json["shutdown"]["sockets_open_after"], 0, "{json:#}");
    assert_eq!(json["shutdown"]["reason"], "quit");
    // The key is in the report: who, what, when, and the shutdown counts it.
    let openai = json["shutdown"]["systems"]
        .as_array()
        .and_then(|s| s.iter().find(|r| r["name"] == "openai_client"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(openai["outcome"], "forced", "{json:#}");
    assert_eq!(openai["earlier"]["by"], "you", "{json:#}");
    assert_eq!(openai["earlier"]["forced_on_request"], true, "{json:#}");
    assert!(json["shutdown"]["forced"].as_u64() >= Some(1), "{json:#}");
    let commands = json["commands"].as_array().cloned().unwrap_or_default();
    assert!(
        commands.iter().any(|c| c["command"] == "force_close"
            && c["system"] == "openai_client"
            && c["outcome"] == "forced"
            && c["by"] == "you"
            && c["at_s"].as_f64().is_some()),
        "{json:#}"
    );
    assert!(commands.iter().any(|c| c["command"] == "quit"), "{json:#}");
    assert_eq!(
        json["shutdown"]["systems"].as_array().map(Vec::len),
        Some(11)
    );
}

#[test]
fn sigterm_shows_the_account_at_once_and_exits_without_lingering() {
    let dir = tempfile::tempdir().expect("temp dir");
    let Some(tmux) = Tmux::start(dir.path(), 100, 30) else {
        return;
    };
    // A pace and a linger no test could wait out: a signal must skip both.
    std::fs::write(
        dir.path().join("slow-ui.toml"),
        "[ui]\nshutdown_step_ms = 5000\nlinger_s = 3600\n",
    )
    .unwrap();
    let run = launch_with(&tmux, dir.path(), "--config slow-ui.toml");
    tmux.wait_for("all eleven rows with traffic", all_rows_with_traffic);
    // SAFETY: kill(2) with a pid we started; it changes no memory of ours.
    assert_eq!(unsafe { libc::kill(run.pid(), libc::SIGTERM) }, 0);
    let screen = wait_exit(&tmux);
    assert!(
        screen.lines().any(|l| l == "EXIT=0"),
        "exit status:\n{screen}"
    );
    assert!(
        !tmux.alternate_screen(),
        "the alternate screen is left:\n{screen}"
    );
    assert!(screen.contains("Final Statistics:"), "{screen}");
    let json = run.report();
    assert_eq!(json["shutdown"]["reason"], "signal");
    assert_eq!(json["shutdown"]["sockets_open_after"], 0, "{json:#}");
}

#[test]
fn a_second_signal_cuts_a_long_grace_period_and_exits_now() {
    let dir = tempfile::tempdir().expect("temp dir");
    let Some(tmux) = Tmux::start(dir.path(), 100, 30) else {
        return;
    };
    // A hung unary call (the odds: a stream would end when the game stops) and a ten-minute
    // grace: only the second signal ends this.
    std::fs::write(
        dir.path().join("long.toml"),
        "[resilience]\ndeadline_initial_ms = 600000\ndeadline_ceiling_ms = 600000\n",
    )
    .unwrap();
    let run = launch_with(
        &tmux,
        dir.path(),
        "--config long.toml --grace-ms 600000 --fault wolfram_analyzer=hang",
    );
    tmux.wait_for("the odds call hanging", |s| {
        s.contains("waiting on Wolfram analyzer")
    });
    assert_eq!(unsafe { libc::kill(run.pid(), libc::SIGTERM) }, 0);
    tmux.wait_for("the odds call held by the grace period", |s| {
        s.contains("shutting down (signal)") && s.contains("closing")
    });
    assert_eq!(unsafe { libc::kill(run.pid(), libc::SIGTERM) }, 0);
    let screen = wait_exit(&tmux);
    assert!(
        screen.lines().any(|l| l == "EXIT=0"),
        "exit status:\n{screen}"
    );
    assert!(!tmux.alternate_screen(), "{screen}");
    let json = run.report();
    assert_eq!(json["shutdown"]["reason"], "signal");
    assert_eq!(json["shutdown"]["sockets_open_after"], 0, "{json:#}");
    let wolfram = json["shutdown"]["systems"]
        .as_array()
        .and_then(|s| s.iter().find(|r| r["name"] == "wolfram_analyzer"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(wolfram["outcome"], "forced", "{json:#}");
}

#[test]
fn a_closed_terminal_still_shuts_the_session_down_cleanly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let Some(tmux) = Tmux::start(dir.path(), 100, 30) else {
        return;
    };
    let run = launch(&tmux, dir.path());
    tmux.wait_for("all eleven rows with traffic", all_rows_with_traffic);
    let pid = run.pid();
    // The window goes away: SIGHUP, and the terminal is gone for good.
    assert!(tmux.run(&["kill-server"]).status.success());
    let started = Instant::now();
    while !run.report.exists() || alive(pid) {
        assert!(
            started.elapsed() < WAIT,
            "the session did not end after the hangup"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let json = run.report();
    // The window closed: a hangup, not an error, even when the lost terminal is noticed
    // before the signal.
    assert_eq!(json["shutdown"]["reason"], "signal", "{json:#}");
    assert_eq!(json["exit_status"], 0, "{json:#}");
    assert_eq!(json["shutdown"]["sockets_open_after"], 0, "{json:#}");
}

#[test]
fn a_crash_in_the_game_still_shuts_down_restores_the_terminal_and_exits_1() {
    let dir = tempfile::tempdir().expect("temp dir");
    let Some(tmux) = Tmux::start(dir.path(), 100, 30) else {
        return;
    };
    // The hidden test hook makes the game task panic after two cycles.
    let run = launch_with(&tmux, dir.path(), "--crash-after-cycles 2");
    let screen = tmux.wait_for("the final statistics", |s| s.contains("Final statistics"));
    assert!(screen.contains("shutting down (error)"), "{screen}");
    tmux.send(&["Enter"]);
    let screen = wait_exit(&tmux);
    assert!(
        screen.lines().any(|l| l == "EXIT=1"),
        "exit status:\n{screen}"
    );
    assert!(
        !tmux.alternate_screen(),
        "the alternate screen is left:\n{screen}"
    );
    assert!(screen.contains("Final Statistics:"), "{screen}");
    let json = run.report();
    assert_eq!(json["shutdown"]["reason"], "error");
    assert!(
        json["error"]
            .as_str()
            .unwrap_or("")
            .contains("gameplay task panicked"),
        "{json:#}"
    );
    assert_eq!(json["shutdown"]["sockets_open_after"], 0, "{json:#}");
}

/// A real leak (`--test-leak-socket`, see `leak.rs`) is on the dashboard: the system's row
/// in the shutdown account is an error naming the socket, the statistics count it, and the
/// account printed once the terminal is back names it too. Wide, so the row is not cut.
#[test]
fn a_leaked_socket_is_shown_on_the_dashboard() {
    let dir = tempfile::tempdir().expect("temp dir");
    let Some(tmux) = Tmux::start(dir.path(), 220, 40) else {
        return;
    };
    let run = launch_with(
        &tmux,
        dir.path(),
        "--mute --cycles 2 --test-leak-socket claude_client",
    );
    let screen = tmux.wait_for("the final statistics", |s| {
        s.contains("Final statistics") && s.contains("11 of 11 done")
    });
    let log = std::fs::read_to_string(dir.path().join("app.log")).expect("the log");
    let claude = crate::leak::sandbox_port(&log, "claude_client");
    let line = row(&screen, "Claude client");
    assert!(line.contains("⚠ Claude client      error "), "{screen}");
    assert!(
        crate::leak::names_the_leaked_socket(line, claude),
        "{screen}"
    );
    assert!(
        screen.contains("10 systems closed, 0 forced, 1 error, 1 socket left open ("),
        "{screen}"
    );
    tmux.send(&["Enter"]);
    let screen = wait_exit(&tmux);
    assert!(
        screen.lines().any(|l| l == "EXIT=3"),
        "exit status:\n{screen}"
    );
    let printed = screen
        .lines()
        .find(|l| l.starts_with("[CLEANUP] ⚠️ Claude client close error: "))
        .unwrap_or_else(|| panic!("{screen}"));
    assert!(
        crate::leak::names_the_leaked_socket(printed, claude),
        "{screen}"
    );
    let json = run.report();
    assert_eq!(json["shutdown"]["sockets_open_after"], 1, "{json:#}");
}

/// GET /metrics from this (separate) process; `None` once nothing listens.
fn scrape(addr: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: agent\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).ok()?;
    raw.starts_with("HTTP/1.1 200").then_some(raw)
}

#[test]
fn the_dashboard_serves_metrics_and_closes_the_endpoint_at_shutdown() {
    let dir = tempfile::tempdir().expect("temp dir");
    let Some(tmux) = Tmux::start(dir.path(), 160, 40) else {
        return;
    };
    let run = launch_with(&tmux, dir.path(), "--metrics 127.0.0.1:0");
    let screen = tmux.wait_for("all eleven rows with traffic", all_rows_with_traffic);
    // The header says where; scrape it while the dashboard plays.
    let header = screen.lines().next().unwrap_or("");
    let addr = header
        .split("metrics ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("the header names the endpoint:\n{screen}"))
        .to_string();
    let body = scrape(&addr).expect("a scrape while the dashboard runs");
    assert!(
        body.contains("singularis_session_phase{phase=\"running\"} 1"),
        "{body}"
    );
    assert!(
        body.contains("singularis_requests_total{system=\"orchestrator\"}"),
        "{body}"
    );

    tmux.send(&["q"]);
    let screen = tmux.wait_for("the endpoint closed in the account", |s| {
        s.contains("Metrics endpoint") && s.contains("11 of 11 done")
    });
    assert!(
        row(&screen, "Metrics endpoint").contains("closed"),
        "{screen}"
    );
    tmux.send(&["Space"]);
    let screen = wait_exit(&tmux);
    assert!(
        screen.lines().any(|l| l == "EXIT=0"),
        "exit status:\n{screen}"
    );
    assert!(
        screen.contains("[CLEANUP] ✓ Metrics endpoint closed ("),
        "{screen}"
    );
    assert!(scrape(&addr).is_none(), "nothing listens after the session");
    let json = run.report();
    assert_eq!(json["shutdown"]["sockets_open_after"], 0, "{json:#}");
    assert_eq!(
        json["shutdown"]["endpoints"][0]["outcome"], "closed",
        "{json:#}"
    );
}

/// The dashboard shows each system's tokens as the service reported them: with the game
/// paused, the selected row's detail line equals what a standalone sandbox billed.
#[test]
fn the_dashboards_token_counts_equal_what_the_sandbox_billed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let Some(tmux) = Tmux::start(dir.path(), 140, 40) else {
        return;
    };
    let mut sandbox = KillOnDrop(
        crate::common::cmd(dir.path())
            .args(["sandbox", "--listen", "127.0.0.1:0"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("sandbox process"),
    );
    use std::io::BufRead;
    let mut lines = std::io::BufReader::new(sandbox.0.stdout.take().unwrap()).lines();
    let mut claude = String::new();
    for _ in 0..10 {
        let line = lines.next().expect("an endpoint line").unwrap();
        if let Some(url) = line.strip_prefix("claude_client ") {
            claude = url.to_string();
        }
    }
    // A pace and a linger no test could wait out: `q q` must leave without either.
    let config = format!(
        "[systems.claude_client]\nbase_url = \"{claude}\"\napi_key_env = \"SGT_E2E_KEY\"\n\
         [ui]\nshutdown_step_ms = 5000\nlinger_s = 3600\n"
    );
    std::fs::write(dir.path().join("claude.toml"), config).unwrap();
    let run = launch_env(
        &tmux,
        dir.path(),
        "SGT_E2E_KEY=e2e-key-0123456789",
        "--config claude.toml",
    );
    tmux.wait_for("all eleven rows with traffic", |s| {
        all_rows_with_traffic(s) && cycles(s).is_some_and(|c| c >= 2)
    });
    tmux.send(&["p"]);
    for _ in 0..5 {
        tmux.send(&["j"]);
    }
    // Paused between cycles, nothing more goes to Claude: the figures stop moving.
    let tokens = |s: &str| -> Option<(u64, u64)> {
        let line = s
            .lines()
            .find(|l| l.contains("Claude client: tokens in "))?;
        let rest = &line[line.find("tokens in ")? + "tokens in ".len()..];
        let mut words = rest.split_whitespace();
        let input = words.next()?.parse().ok()?;
        let output = words.nth(1)?.parse().ok()?;
        Some((input, output))
    };
    let mut last = None;
    let mut tries = 0;
    let shown = loop {
        let screen = tmux.wait_for("Claude's usage in the detail line", |s| tokens(s).is_some());
        let now = tokens(&screen);
        if let Some(stable) = now.filter(|_| now == last) {
            break stable;
        }
        tries += 1;
        assert!(
            tries < 30,
            "Claude's tokens kept moving while paused:\n{screen}"
        );
        last = now;
        std::thread::sleep(Duration::from_millis(700));
    };
    let stats_url = format!("{claude}/_sandbox/stats");
    let u = url::Url::parse(&stats_url).unwrap();
    let billed = {
        use std::io::{Read, Write};
        let mut s =
            std::net::TcpStream::connect((u.host_str().unwrap(), u.port().unwrap())).unwrap();
        write!(s, "GET {} HTTP/1.0\r\nHost: x\r\n\r\n", u.path()).unwrap();
        let mut buf = String::new();
        s.read_to_string(&mut buf).unwrap();
        let v: serde_json::Value =
            serde_json::from_str(buf.split_once("\r\n\r\n").unwrap().1).unwrap();
        v["systems"]["claude_client"]["tokens"].clone()
    };
    assert_eq!(
        serde_json::json!(shown.0),
        billed["input"],
        "input tokens: dashboard {shown:?}, sandbox {billed}"
    );
    assert_eq!(
        serde_json::json!(shown.1),
        billed["output"],
        "output tokens: dashboard {shown:?}, sandbox {billed}"
    );
    assert!(shown.0 > 0);

    // `q` again: force what is left and exit once it is closed, without the pace or the
    // linger; the account is printed on the shell.
    tmux.send(&["q"]);
    tmux.send(&["q"]);
    let screen = wait_exit(&tmux);
    assert!(screen.lines().any(|l| l == "EXIT=0"), "{screen}");
    assert!(screen.contains("[CLEANUP] Complete - "), "{screen}");
    let report = run.report();
    assert_eq!(
        report["stats"]["usage"]["systems"]["claude_client"]["input"],
        billed["input"]
    );
    // The typed command line holds the key; nothing the program wrote may.
    let printed: String = screen
        .lines()
        .filter(|l| !l.contains("SGT_E2E_KEY="))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        !printed.contains("e2e-key-0123456789"),
        "the key shows:\n{printed}"
    );
    let log = std::fs::read_to_string(dir.path().join("app.log")).unwrap_or_default();
    assert!(!log.contains("e2e-key-0123456789"), "the key is in the log");
    assert!(
        !std::fs::read_to_string(&run.report)
            .unwrap()
            .contains("e2e-key-0123456789"),
        "the key is in the report"
    );
}

/// A child process that ends with the test, even when the test fails.
use crate::common::KillOnDrop;

#[test]
fn without_a_socket_table_the_dashboard_says_unverified_restores_the_terminal_and_exits_4() {
    let dir = tempfile::tempdir().expect("temp dir");
    if let Err(why) = crate::common::cmd_without_proc(dir.path()) {
        crate::common::skip(&why);
        return;
    }
    let Some(tmux) = Tmux::start(dir.path(), 120, 40) else {
        return;
    };
    let run = launch_wrapped(&tmux, dir.path(), "", "--mute --cycles 2", |inner| {
        let unmounted = format!("umount -l /proc && exec sh -c {}", quoted(Path::new(inner)));
        format!(
            "unshare -m --propagation private sh -c {}",
            quoted(Path::new(&unmounted))
        )
    });
    let screen = tmux.wait_for("the final statistics", |s| s.contains("Final statistics"));
    assert!(screen.contains("11 unverified"), "{screen}");
    assert!(!screen.contains("0 sockets left open"), "{screen}");
    // Each row of the account is marked unverified (`?`), not closed.
    for name in NAMES {
        assert!(screen.contains(&format!("? {name}")), "{name}:\n{screen}");
    }
    tmux.send(&["q"]);
    let screen = wait_exit(&tmux);
    assert!(
        screen.lines().any(|l| l == "EXIT=4"),
        "exit status:\n{screen}"
    );
    assert!(
        !tmux.alternate_screen(),
        "the alternate screen is left:\n{screen}"
    );
    let json = run.report();
    assert_eq!(json["shutdown"]["verified"], false, "{json:#}");
    assert_eq!(
        json["shutdown"]["sockets_open_after"],
        serde_json::Value::Null
    );
}

#[test]
fn on_the_live_clock_the_dashboard_stays_responsive_says_what_it_waits_for_and_quits_clean() {
    let dir = tempfile::tempdir().expect("temp dir");
    let Some(tmux) = Tmux::start(dir.path(), 120, 40) else {
        return;
    };
    const MARKER: &str = "> ";
    let run = launch_with(&tmux, dir.path(), "--timing live --mute");
    // A live cycle takes seconds (the orchestrator reasons in silence, the experts answer
    // at their own pace): the game pane names what the cycle waits for meanwhile.
    let waiting = tmux.wait_for("the game pane to say what it waits on", |s| {
        s.contains("waiting on ")
    });
    assert!(NAMES.iter().all(|n| waiting.contains(n)), "{waiting}");
    // Keys act at once while a call is out: the selection moves, help opens and closes.
    let started = Instant::now();
    let mut cycles_seen = 0;
    let mut moves = 0;
    while started.elapsed() < Duration::from_secs(30) {
        let key = if moves % 2 == 0 { "j" } else { "k" };
        let before = tmux.screen();
        let marked = |s: &str| {
            s.lines()
                .position(|l| l.contains(MARKER) && NAMES.iter().any(|n| l.contains(n)))
        };
        let row_before = marked(&before);
        tmux.send(&[key]);
        let after = tmux.wait_for("the selection to move", |s| {
            marked(s).is_some() && marked(s) != row_before
        });
        moves += 1;
        cycles_seen = cycles_seen.max(cycles(&after).unwrap_or(0));
        std::thread::sleep(Duration::from_millis(500));
    }
    tmux.send(&["?"]);
    tmux.wait_for("the help popup", |s| {
        s.contains("force-close the selected system now")
    });
    tmux.send(&["Escape"]);
    assert!(cycles_seen >= 1, "no cycle in 30 s on the live clock");
    tmux.send(&["q"]);
    tmux.wait_for("the final statistics", |s| s.contains("Final statistics"));
    tmux.send(&["Enter"]);
    let screen = wait_exit(&tmux);
    assert!(
        screen.lines().any(|l| l == "EXIT=0"),
        "exit status:\n{screen}"
    );
    assert!(!tmux.alternate_screen(), "{screen}");
    let json = run.report();
    assert_eq!(json["shutdown"]["sockets_open_after"], 0, "{json:#}");
    // Healthy services on their real pace: nothing late, no stream cut, no breaker opened.
    for (name, calls) in json["stats"]["calls"].as_object().expect("stats.calls") {
        assert_eq!(calls["late"], 0, "{name}: {calls}");
        assert_eq!(calls["cut"], 0, "{name}: {calls}");
        assert_eq!(calls["breaker_opens"], 0, "{name}: {calls}");
    }
}

#[test]
fn the_dashboard_stops_at_its_spend_limit_and_says_so() {
    let dir = tempfile::tempdir().expect("temp dir");
    let Some(tmux) = Tmux::start(dir.path(), 120, 40) else {
        return;
    };
    std::fs::write(
        dir.path().join("priced.toml"),
        "[gameplay]\ncycle_delay_ms = 100\n[audio]\nenabled = false\n[pricing]\n\
         \"Qwen/Qwen3-235B-A22B-Instruct-2507\" = { input = 0.2, output = 0.6 }\n\
         \"llm-api\" = { input = 0.0, output = 0.0 }\n",
    )
    .unwrap();
    let run = launch_with(&tmux, dir.path(), "--config priced.toml --budget-usd 0.02");
    // Nobody quits: the limit does.
    tmux.wait_for("the final statistics", |s| s.contains("Final statistics"));
    tmux.send(&["Enter"]);
    let screen = wait_exit(&tmux);
    assert!(
        screen.lines().any(|l| l == "EXIT=5"),
        "exit status:\n{screen}"
    );
    assert!(!tmux.alternate_screen(), "{screen}");
    assert!(screen.contains("(budget), 0 sockets left open"), "{screen}");
    assert!(screen.contains("  Budget: $"), "{screen}");
    let json = run.report();
    assert_eq!(json["shutdown"]["reason"], "budget", "{json:#}");
    assert!(json["stats"]["budget"]["spent_usd"].as_f64().unwrap() <= 0.02);
}

#[test]
fn a_dumb_terminal_gets_the_plain_session_and_a_one_line_notice() {
    let dir = tempfile::tempdir().expect("temp dir");
    let Some(tmux) = Tmux::start(dir.path(), 100, 30) else {
        return;
    };
    let run = launch_env(&tmux, dir.path(), "TERM=dumb", "--mute --cycles 2");
    let screen = wait_exit(&tmux);
    assert!(screen.lines().any(|l| l == "EXIT=0"), "{screen}");
    assert!(
        screen.contains("TERM=dumb cannot draw the dashboard; running headless"),
        "{screen}"
    );
    assert!(screen.contains("[CLEANUP] Complete - "), "{screen}");
    assert!(!screen.contains("Connections"), "no dashboard: {screen}");
    assert_eq!(run.report()["stats"]["cycles"], 2);
}

/// `--json` on a terminal, without --headless: the terminal gets the dashboard, so the events
/// would have nowhere to go; said before anything starts, with what to do, exit status 2.
#[test]
fn json_on_a_terminal_says_what_to_do() {
    let dir = tempfile::tempdir().expect("temp dir");
    let Some(tmux) = Tmux::start(dir.path(), 200, 30) else {
        return;
    };
    launch_with(&tmux, dir.path(), "--mute --json");
    let screen = wait_exit(&tmux);
    assert!(screen.lines().any(|l| l == "EXIT=2"), "{screen}");
    let said = screen.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        said.contains("add --headless, or send stdout elsewhere"),
        "{screen}"
    );
}
