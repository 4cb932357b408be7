//! What the tests that run the real binary share.
// Each test binary uses a part of this.
#![allow(dead_code)]

pub mod wire;

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard};

pub const BIN: &str = env!("CARGO_BIN_EXE_singularis-tui");

/// The API keys the binary reads; tests give them only on purpose.
pub const KEY_VARS: [&str; 6] = [
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "GEMINI_API_KEY",
    "HYPERBOLIC_API_KEY",
    "WOLFRAM_APP_ID",
    "LMSTUDIO_API_KEY",
];

/// Take from `c` everything of this machine's environment that would change what the
/// binary does: API keys, trace export (`OTEL_*`), our own settings (`SINGULARIS_*`) and
/// the log filter (`RUST_LOG`).
pub fn clean_env(c: &mut Command) -> &mut Command {
    for (var, _) in std::env::vars_os() {
        let name = var.to_string_lossy();
        if name.starts_with("OTEL_") || name.starts_with("SINGULARIS_") || name == "RUST_LOG" {
            c.env_remove(&var);
        }
    }
    for var in KEY_VARS {
        c.env_remove(var);
    }
    c
}

/// The binary in `dir`, with nothing from this machine's environment that would change what
/// it does ([`clean_env`]), its state and config homes inside `dir`, and muted
/// (`SINGULARIS_MUTE`): only the tests about sound open the audio device
/// ([`cmd_with_sound`]).
pub fn cmd(dir: &Path) -> Command {
    let mut c = cmd_with_sound(dir);
    c.env("SINGULARIS_MUTE", "1");
    c
}

/// As [`cmd`], with sound as the config says.
pub fn cmd_with_sound(dir: &Path) -> Command {
    let mut c = Command::new(BIN);
    clean_env(&mut c)
        .current_dir(dir)
        .env("XDG_STATE_HOME", dir.join("state"))
        .env("XDG_CONFIG_HOME", dir.join("xdg-config"))
        .stdin(Stdio::null());
    c
}

/// Under CI (`CI` set and not `false`) or with `SINGULARIS_TESTS_REQUIRE_ALL=1`, every
/// test must run: one that cannot fails here, naming itself and why.
pub fn every_test_required() -> bool {
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
    ci || std::env::var("SINGULARIS_TESTS_REQUIRE_ALL").is_ok_and(|v| v == "1")
}

/// This test cannot run here (`why`: its tool missing or refused). Where every test is
/// required ([`every_test_required`]) that fails it; elsewhere it says so in one line on
/// standard output, which libtest shows even for a passing test (written to the handle,
/// not through `println!`, which libtest captures).
pub fn skip(why: &str) {
    let name = std::thread::current()
        .name()
        .unwrap_or("this test")
        .to_string();
    assert!(
        !every_test_required(),
        "{name} could not run: {why} (CI or SINGULARIS_TESTS_REQUIRE_ALL=1 require every test)"
    );
    use std::io::Write;
    let _ = writeln!(std::io::stdout().lock(), "SKIPPED {name}: {why}");
}

/// The binary in `dir` as [`cmd`] sets it up, run where /proc is not mounted: a private
/// mount namespace (unshare(1), as root) with /proc unmounted, so this process's socket
/// table cannot be read, for real. `None`, with the reason, where namespaces cannot be made.
pub fn cmd_without_proc(dir: &Path) -> Result<Command, String> {
    const UNMOUNT_THEN_RUN: &str = "umount -l /proc && exec \"$@\"";
    let probe = Command::new("unshare")
        .args([
            "-m",
            "--propagation",
            "private",
            "sh",
            "-c",
            UNMOUNT_THEN_RUN,
        ])
        .args(["sh", "true"])
        .bounded_output()
        .map_err(|e| format!("unshare(1) not runnable: {e}"))?;
    if !probe.status.success() {
        return Err(format!(
            "cannot make a mount namespace without /proc here: {}",
            String::from_utf8_lossy(&probe.stderr).trim()
        ));
    }
    let plain = cmd(dir);
    let mut c = Command::new("unshare");
    c.args([
        "-m",
        "--propagation",
        "private",
        "sh",
        "-c",
        UNMOUNT_THEN_RUN,
    ])
    .args(["sh", BIN])
    .current_dir(dir);
    for (k, v) in plain.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    c.stdin(Stdio::null());
    Ok(c)
}

/// Sessions count every TCP socket of the test process: in a binary that has sessions, the
/// tests that open sockets run one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

pub fn one_at_a_time() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// Run one session test on its own runtime, never two at once.
pub fn serial(test: impl std::future::Future<Output = ()>) {
    let _one = one_at_a_time();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(test);
}

/// Poll `cond` every 5 ms until it holds; after 10 s, fail naming `what` (a bound for a
/// stuck test, not a timing claim).
pub async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let give_up = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while !cond() {
        assert!(
            tokio::time::Instant::now() < give_up,
            "gave up waiting for: {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

/// The session report at `path`.
pub fn report(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).expect("report written")).expect("report is JSON")
}

/// Keys for every live system (a config pointing them at a standalone sandbox needs them set;
/// the sandbox checks that auth is present): `.envs(TEST_KEYS)`.
pub const TEST_KEYS: [(&str, &str); 5] = [
    ("OPENAI_API_KEY", "k1"),
    ("ANTHROPIC_API_KEY", "k2"),
    ("GEMINI_API_KEY", "k3"),
    ("HYPERBOLIC_API_KEY", "k4"),
    ("WOLFRAM_APP_ID", "k5"),
];

/// The longest a spawned process may run in a test: one that hangs fails its test with a
/// message, instead of holding the whole run until CI's limit.
pub const RUN_LIMIT: std::time::Duration = std::time::Duration::from_secs(120);

/// `Command::output` bounded by [`RUN_LIMIT`].
pub trait BoundedOutput {
    /// Like `output()` (stdin empty, stdout and stderr captured), but past [`RUN_LIMIT`] the
    /// process is killed and the test fails, naming the command.
    fn bounded_output(&mut self) -> std::io::Result<std::process::Output>;
}

impl BoundedOutput for Command {
    fn bounded_output(&mut self) -> std::io::Result<std::process::Output> {
        let child = self
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        Ok(finish_within(child, &command_line(self)))
    }
}

/// The program and its arguments (not its environment, which may hold keys).
pub fn command_line(c: &Command) -> String {
    std::iter::once(c.get_program())
        .chain(c.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Wait for `child` to exit, reading what it writes to piped stdout/stderr, for at most
/// [`RUN_LIMIT`]; past it, kill it and fail the test with `what` and what it wrote.
pub fn finish_within(mut child: std::process::Child, what: &str) -> std::process::Output {
    use std::io::Read;
    fn drain(r: Option<impl Read + Send + 'static>) -> Option<std::thread::JoinHandle<Vec<u8>>> {
        r.map(|mut r| {
            std::thread::spawn(move || {
                let mut all = Vec::new();
                let _ = r.read_to_end(&mut all);
                all
            })
        })
    }
    let (mut out, mut err) = (drain(child.stdout.take()), drain(child.stderr.take()));
    let collect = |h: Option<std::thread::JoinHandle<Vec<u8>>>| {
        h.map(|h| h.join().unwrap_or_default()).unwrap_or_default()
    };
    let status = exit_within(&mut child, what, || {
        format!(
            "it wrote:\n{}\n{}",
            String::from_utf8_lossy(&collect(out.take())),
            String::from_utf8_lossy(&collect(err.take()))
        )
    });
    std::process::Output {
        status,
        stdout: collect(out),
        stderr: collect(err),
    }
}

/// A child process killed and reaped when the test ends, however it ends: an orphan would
/// hold the test's pipes open.
pub struct KillOnDrop(pub std::process::Child);

impl KillOnDrop {
    /// Wait for its exit, for at most [`RUN_LIMIT`]: past it, kill it and fail the test.
    pub fn wait_within(&mut self) -> std::process::ExitStatus {
        let what = format!("pid {}", self.0.id());
        exit_within(&mut self.0, &what, String::new)
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `child`'s exit status, waited for at most [`RUN_LIMIT`]; past it, kill it and fail the
/// test naming `what` and adding `said()` (what it wrote, when that was read).
fn exit_within(
    child: &mut std::process::Child,
    what: &str,
    said: impl FnOnce() -> String,
) -> std::process::ExitStatus {
    let started = std::time::Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status,
            Ok(None) if started.elapsed() < RUN_LIMIT => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("`{what}` did not exit within {RUN_LIMIT:?}; {}", said());
            }
            Err(e) => panic!("`{what}`: cannot wait for it: {e}"),
        }
    }
}

/// A standalone `singularis-tui sandbox` listening at `listen` (its first port; the others
/// follow), with `fault` if given: the process, and each system's endpoint by name. `Err`
/// with what the sandbox said when it did not start (a port taken says `Address already in
/// use`), within [`SANDBOX_START`].
pub fn standalone_sandbox(
    dir: &Path,
    listen: &str,
    fault: Option<&str>,
) -> Result<(KillOnDrop, std::collections::BTreeMap<String, String>), String> {
    use std::io::{BufRead, BufReader, Read};
    let mut c = cmd(dir);
    c.args(["sandbox", "--listen", listen]);
    if let Some(f) = fault {
        c.args(["--fault", f]);
    }
    let mut child = KillOnDrop(
        c.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the sandbox starts"),
    );
    let stdout = child.0.stdout.take().expect("piped stdout");
    let mut stderr = child.0.stderr.take().expect("piped stderr");
    // Read on a thread, which goes on reading so the sandbox never writes to a closed pipe.
    let (tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            let _ = tx.send(line);
        }
    });
    let mut urls = std::collections::BTreeMap::new();
    while urls.len() < 10 {
        match lines.recv_timeout(SANDBOX_START) {
            Ok(line) => {
                let (name, url) = line
                    .split_once(' ')
                    .ok_or_else(|| format!("not an endpoint line: {line:?}"))?;
                urls.insert(name.to_string(), url.to_string());
            }
            Err(e) => {
                let _ = child.0.kill();
                let status = child.0.wait();
                let mut said = String::new();
                let _ = stderr.read_to_string(&mut said);
                return Err(format!(
                    "the sandbox at {listen} gave {} of 10 endpoints ({e}; {status:?}): {}",
                    urls.len(),
                    said.trim()
                ));
            }
        }
    }
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    Ok((child, urls))
}

/// How long a standalone sandbox may take to say where it listens: generous, for a loaded
/// CI machine; a bound on a hang.
pub const SANDBOX_START: std::time::Duration = std::time::Duration::from_secs(30);

/// A config pointing every system at `urls` (as a live service).
pub fn live_config(urls: &std::collections::BTreeMap<String, String>) -> String {
    urls.iter()
        .map(|(name, url)| format!("[systems.{name}]\nbase_url = \"{url}\"\n"))
        .collect()
}

/// `c` run to its end, which must be exit status `code` (else the test fails showing all it
/// wrote): its stdout.
pub fn run_expecting(c: &mut Command, code: i32) -> String {
    let out = c.bounded_output().expect("the binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// One headless, muted cycle of the binary in `dir`, with `extra` arguments: the shape of
/// most command-line checks.
pub fn one_headless_cycle(dir: &Path, extra: &[&str]) -> std::process::Output {
    cmd(dir)
        .args(["--headless", "--mute", "--cycles", "1"])
        .args(extra)
        .bounded_output()
        .expect("the binary runs")
}

/// JSON values a helper thread reads and checks. What the thread finds wrong comes back
/// here and fails the test on the test's thread: a panic on the helper would only close
/// the channel, which a drain loop reads as the stream's normal end.
pub struct Events(std::sync::mpsc::Receiver<Result<serde_json::Value, String>>);

impl Events {
    /// Read `input` line by line on a thread; `check` turns a line into a value to pass on
    /// (`Ok(None)`: skip it) or says what is wrong with it.
    pub fn read<R: std::io::BufRead + Send + 'static>(
        input: R,
        check: impl Fn(&str) -> Result<Option<serde_json::Value>, String> + Send + 'static,
    ) -> Events {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in input.lines() {
                let Ok(line) = line else { return };
                let item = match check(&line) {
                    Ok(None) => continue,
                    Ok(Some(v)) => Ok(v),
                    Err(e) => Err(e),
                };
                let bad = item.is_err();
                if tx.send(item).is_err() || bad {
                    return;
                }
            }
        });
        Events(rx)
    }

    /// The first value `ok` accepts, within `wait` in all. The stream ending first, or the
    /// time running out, fails the test naming `what` and the last value that went by.
    pub fn wait_for(
        &self,
        what: &str,
        wait: std::time::Duration,
        ok: impl FnMut(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let mut seen = self.until(what, wait, ok);
        seen.pop().expect("the accepted value")
    }

    /// As [`Events::wait_for`], with every value read: those that went by, then the one
    /// `ok` accepted.
    pub fn until(
        &self,
        what: &str,
        wait: std::time::Duration,
        mut ok: impl FnMut(&serde_json::Value) -> bool,
    ) -> Vec<serde_json::Value> {
        let until = std::time::Instant::now() + wait;
        let mut seen = Vec::new();
        loop {
            let left = until.saturating_duration_since(std::time::Instant::now());
            match self.recv_timeout(left) {
                Ok(v) => {
                    let done = ok(&v);
                    seen.push(v);
                    if done {
                        return seen;
                    }
                }
                Err(e) => panic!(
                    "no {what} within {wait:?} ({e}); {} other values went by, the last: {}",
                    seen.len(),
                    seen.last().unwrap_or(&serde_json::Value::Null)
                ),
            }
        }
    }

    /// Every value until the stream ends, which must be within `wait`.
    pub fn rest(&self, wait: std::time::Duration) -> Vec<serde_json::Value> {
        let until = std::time::Instant::now() + wait;
        let mut all = Vec::new();
        loop {
            let left = until.saturating_duration_since(std::time::Instant::now());
            match self.recv_timeout(left) {
                Ok(v) => all.push(v),
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return all,
                Err(e) => panic!("the stream did not end within {wait:?} ({e}): {all:?}"),
            }
        }
    }

    /// The next value within `wait`; a bad line read before it fails the test here.
    pub fn recv_timeout(
        &self,
        wait: std::time::Duration,
    ) -> Result<serde_json::Value, std::sync::mpsc::RecvTimeoutError> {
        self.0
            .recv_timeout(wait)
            .map(|item| item.unwrap_or_else(|e| panic!("{e}")))
    }
}

/// One `--json` line: JSON, a line of the protocol, an event it knows; the first of a
/// stream says its version.
pub fn protocol_line(line: &str) -> Result<Option<serde_json::Value>, String> {
    let v: serde_json::Value =
        serde_json::from_str(line).map_err(|e| format!("not JSON ({e}): {line}"))?;
    let typed = singularis_protocol::Line::read(line)
        .map_err(|e| format!("not a line of the protocol ({e}): {line}"))?;
    if let Some(version) = typed.event.protocol()
        && version != singularis_protocol::PROTOCOL
    {
        return Err(format!(
            "protocol {version}, not {}: {line}",
            singularis_protocol::PROTOCOL
        ));
    }
    if matches!(typed.event, singularis_protocol::Event::Unknown) {
        return Err(format!("an event the protocol does not know: {line}"));
    }
    Ok(Some(v))
}

/// `c` (which has `--headless --json`) started, its stdout's events read by a thread and
/// checked line by line ([`protocol_line`]).
pub fn spawn_json(c: &mut Command) -> (KillOnDrop, Events) {
    let mut child = KillOnDrop(c.stdout(Stdio::piped()).spawn().expect("the binary starts"));
    let out = child.0.stdout.take().expect("piped stdout");
    (
        child,
        Events::read(std::io::BufReader::new(out), protocol_line),
    )
}

/// A `state` event: `system` moved to `to`.
pub fn is_state(v: &serde_json::Value, system: &str, to: &str) -> bool {
    v["event"] == "state" && v["system"] == system && v["to"] == to
}

/// A headless agent started from `c` (which has `--json --serve …` and its stderr set): its
/// JSON events read by a thread, and its control endpoint's URL from `session_started`.
pub fn start_served(mut c: Command, wait: std::time::Duration) -> (KillOnDrop, String, Events) {
    c.stdout(Stdio::piped());
    let mut child = KillOnDrop(c.spawn().expect("the agent starts"));
    let out = child.0.stdout.take().expect("piped stdout");
    let rx = Events::read(std::io::BufReader::new(out), protocol_line);
    let first = rx.recv_timeout(wait).expect("session_started");
    assert_eq!(first["event"], "session_started", "{first}");
    let url = first["serve"].as_str().expect("the serve URL").to_string();
    (child, url, rx)
}
