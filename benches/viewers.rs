//! What viewers of the control endpoint (`GET /v1/events`) cost the agent (issue #14):
//!
//! 1. **Event latency from agent to viewer**, p50 and p99: a session in this process serves
//!    the endpoint on loopback while the game plays (`cycle_delay_ms = 0`), and 1 or 10
//!    viewers (threads, blocking reads on real TCP) follow the stream. Each probe is a
//!    command made through the session's `control` (`set_paused(false)`, which changes
//!    nothing but is broadcast as a `command` event like any other): the clock starts just
//!    before the call and stops when a viewer's `read` returns the matching `data:` line.
//!    One probe at a time: the next is made once every viewer has read the last.
//! 2. **The agent's CPU per attached viewer**: the release binary runs as the agent in a
//!    process of its own (`--headless --serve PORT --cycles 0`, embedded sandbox, parallel,
//!    `cycle_delay_ms = 0`); 0, 1, 10 or 50 viewers (threads of this process) read its stream
//!    and discard it. Over a window of about 20 s from the end of one cycle to the end of
//!    another (found by asking for a snapshot every 5 ms, `stats.cycles`): the agent's cycles
//!    and its CPU time (`/proc/PID/stat` utime + stime), and the viewers' own CPU (this
//!    process's).
//!
//! `cargo bench --bench viewers`; figures go in BENCHMARKS.md.

use serde_json::Value;
use singularis_tui::config::{Config, Mode};
use singularis_tui::session::Session;
use singularis_tui::session::report::Reason;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Probes per latency configuration (after `WARMUP` unmeasured ones).
const PROBES: usize = 1_000;
const WARMUP: usize = 50;
/// The window over which the agent's cycle rate and CPU are measured.
const WINDOW: Duration = Duration::from_secs(20);
/// How often the agent is asked its cycle count at either end of the window.
const POLL: Duration = Duration::from_millis(5);
/// Time for the agent's systems to connect and the game to get going before the window.
const SETTLE: Duration = Duration::from_secs(2);
const RUNS: usize = 3;
/// A guard against a hung bench, never a measure.
const PATIENCE: Duration = Duration::from_secs(30);

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn percentile(sorted: &[f64], p: usize) -> f64 {
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// `GET /v1/events` over HTTP/1.0 (the body is the rest of the connection); the reader is
/// left just after the response head.
fn open_stream(addr: SocketAddr) -> BufReader<TcpStream> {
    let mut s = TcpStream::connect(addr).expect("connect to the control endpoint");
    s.set_read_timeout(Some(PATIENCE)).expect("read timeout");
    s.set_nodelay(true).expect("nodelay");
    write!(
        s,
        "GET /v1/events HTTP/1.0\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n"
    )
    .expect("request");
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).expect("status line");
    assert!(line.contains(" 200 "), "{line}");
    loop {
        line.clear();
        r.read_line(&mut line).expect("header");
        if line == "\r\n" || line.is_empty() {
            return r;
        }
    }
}

/// A latency viewer: for each `command` event whose `by` is a probe, the probe's number and
/// the instant its line was read. Says `ready` once the snapshot is in.
fn latency_viewer(addr: SocketAddr, ready: mpsc::Sender<()>, seen: mpsc::Sender<(usize, Instant)>) {
    let mut r = open_stream(addr);
    let mut line = String::new();
    let mut ready = Some(ready);
    loop {
        line.clear();
        match r.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let at = Instant::now();
        let Some(data) = line.strip_prefix("data: ") else {
            continue;
        };
        if let Some(tx) = ready.take() {
            let _ = tx.send(());
        }
        if !data.contains("\"event\":\"command\"") {
            continue;
        }
        let v: Value = serde_json::from_str(data).expect("each event is JSON");
        let Some(n) = v["by"]
            .as_str()
            .and_then(|b| b.strip_prefix("bench-probe "))
            .and_then(|n| n.parse().ok())
        else {
            continue;
        };
        if seen.send((n, at)).is_err() {
            return;
        }
    }
}

struct Latency {
    /// Every viewer's time for every probe, µs.
    each: Vec<f64>,
    /// Per probe, the time until the last viewer had it, µs.
    last: Vec<f64>,
    cycles: u64,
}

async fn latency(viewers: usize) -> Latency {
    let mut config = Config::default();
    config.audio.enabled = false;
    config.gameplay.cycle_delay_ms = 0;
    config.serve.listen = Some("127.0.0.1:0".parse().expect("address"));
    let mut session = Session::start(config).await.expect("session");
    let (addr, _) = singularis_tui::serve::serve(&session)
        .await
        .expect("serving")
        .expect("serve.listen is set");
    session.spawn_gameplay(Mode::Parallel, 0);

    let (ready_tx, ready_rx) = mpsc::channel();
    let (seen_tx, seen_rx) = mpsc::channel();
    let threads: Vec<_> = (0..viewers)
        .map(|_| {
            let (r, s) = (ready_tx.clone(), seen_tx.clone());
            std::thread::spawn(move || latency_viewer(addr, r, s))
        })
        .collect();
    drop((ready_tx, seen_tx));
    for _ in 0..viewers {
        ready_rx
            .recv_timeout(PATIENCE)
            .expect("a viewer's snapshot");
    }

    let control = session.control.clone();
    let probing = tokio::task::spawn_blocking(move || {
        let mut each = Vec::with_capacity(PROBES * viewers);
        let mut last = Vec::with_capacity(PROBES);
        for i in 0..WARMUP + PROBES {
            let by = format!("bench-probe {i}");
            let t0 = Instant::now();
            control.set_paused(false, &by);
            let mut latest = Duration::ZERO;
            for _ in 0..viewers {
                let (n, at) = seen_rx.recv_timeout(PATIENCE).expect("the probe's event");
                assert_eq!(n, i, "probes are one at a time");
                let d = at - t0;
                latest = latest.max(d);
                if i >= WARMUP {
                    each.push(d.as_secs_f64() * 1e6);
                }
            }
            if i >= WARMUP {
                last.push(latest.as_secs_f64() * 1e6);
            }
            // Spread the probes over the cycle (not in step with the stream's other events).
            std::thread::sleep(Duration::from_micros(2_000 + (i as u64 * 7919) % 3_000));
        }
        (each, last)
    });
    let (mut each, mut last) = probing.await.expect("probes");
    let cycles = session.stats.lock().map(|s| s.cycles).unwrap_or(0);

    session.quit.quit(Reason::Quit);
    let report = std::env::temp_dir().join(format!(
        "singularis-bench-viewers-{}.json",
        std::process::id()
    ));
    let _ = session
        .shutdown(
            Duration::from_millis(500),
            Mode::Parallel,
            Some(report.clone()),
            None,
        )
        .await;
    let _ = std::fs::remove_file(report);
    for t in threads {
        let _ = t.join();
    }
    each.sort_by(f64::total_cmp);
    last.sort_by(f64::total_cmp);
    Latency { each, last, cycles }
}

/// A process's CPU time (user + system), from `/proc/PID/stat` (`self` for this one).
fn cpu_time(pid: &str) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/PID/stat");
    // The command name may hold spaces: the fields are counted after its closing parenthesis.
    let after = &stat[stat.rfind(')').expect("comm") + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 (utime, stime) are the 12th and 13th after the name.
    let ticks: u64 = f[11].parse::<u64>().expect("utime") + f[12].parse::<u64>().expect("stime");
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_nanos(ticks * 1_000_000_000 / hz)
}

/// The agent's cycle count, from the snapshot a fresh viewer is sent first.
fn cycles_now(addr: SocketAddr) -> u64 {
    let mut r = open_stream(addr);
    let mut line = String::new();
    loop {
        line.clear();
        r.read_line(&mut line).expect("the snapshot");
        if let Some(data) = line.strip_prefix("data: ") {
            let v: Value = serde_json::from_str(data).expect("JSON");
            assert_eq!(v["event"], "snapshot", "{v}");
            return v["stats"]["cycles"].as_u64().expect("stats.cycles");
        }
    }
}

/// Wait for the next cycle to end (snapshots `POLL` apart) and return its number: the window
/// runs from one cycle's end to another's, so its count is exact, not ±1.
fn next_cycle(addr: SocketAddr) -> u64 {
    let from = cycles_now(addr);
    let deadline = Instant::now() + PATIENCE;
    loop {
        std::thread::sleep(POLL);
        let now = cycles_now(addr);
        if now > from {
            return now;
        }
        assert!(Instant::now() < deadline, "the agent stopped playing");
    }
}

struct Agent {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_agent(dir: &Path) -> Agent {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let child = Command::new(env!("CARGO_BIN_EXE_singularis-tui"))
        .current_dir(dir)
        .env("XDG_STATE_HOME", dir.join("state"))
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .args([
            "--config",
            "config.toml",
            "--headless",
            "--mute",
            "--cycles",
            "0",
        ])
        .args(["--serve", &port.to_string(), "--report", "r.json"])
        .args(["--log-file", "agent.log"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("stderr")).expect("stderr file"))
        .spawn()
        .expect("the agent starts");
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let deadline = Instant::now() + PATIENCE;
    while TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "the agent never served");
        std::thread::sleep(Duration::from_millis(20));
    }
    Agent { child, addr }
}

/// A viewer that reads the stream and throws it away, until it ends.
fn discarding_viewer(addr: SocketAddr) -> u64 {
    let mut r = open_stream(addr);
    let mut buf = [0u8; 16 * 1024];
    let mut total = 0u64;
    while let Ok(n) = r.read(&mut buf) {
        if n == 0 {
            break;
        }
        total += n as u64;
    }
    total
}

struct Window {
    cycles_per_s: f64,
    agent_cpu_ms_per_s: f64,
    viewers_cpu_ms_per_s: f64,
    bytes_per_viewer_per_s: f64,
}

fn one_window(dir: &Path, viewers: usize) -> Window {
    let mut agent = start_agent(dir);
    let addr = agent.addr;
    let pid = agent.child.id().to_string();
    let threads: Vec<_> = (0..viewers)
        .map(|_| std::thread::spawn(move || discarding_viewer(addr)))
        .collect();
    std::thread::sleep(SETTLE);
    let c0 = next_cycle(addr);
    let (a0, v0, t0) = (cpu_time(&pid), cpu_time("self"), Instant::now());
    std::thread::sleep(WINDOW);
    let c1 = next_cycle(addr);
    let (a1, v1, t1) = (cpu_time(&pid), cpu_time("self"), Instant::now());
    let secs = (t1 - t0).as_secs_f64();
    // SAFETY: kill(2) on our own child's pid, which we have not yet waited for.
    unsafe { libc::kill(agent.child.id() as libc::pid_t, libc::SIGTERM) };
    let deadline = Instant::now() + PATIENCE;
    while agent.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let bytes: u64 = threads.into_iter().map(|t| t.join().unwrap_or(0)).sum();
    let lifetime = (Instant::now() - t0).as_secs_f64() + SETTLE.as_secs_f64();
    Window {
        cycles_per_s: (c1 - c0) as f64 / secs,
        agent_cpu_ms_per_s: (a1 - a0).as_secs_f64() * 1e3 / secs,
        viewers_cpu_ms_per_s: (v1 - v0).as_secs_f64() * 1e3 / secs,
        bytes_per_viewer_per_s: if viewers == 0 {
            0.0
        } else {
            bytes as f64 / viewers as f64 / lifetime
        },
    }
}

fn main() {
    // `cargo test --benches` runs bench targets with --bench absent: stay quick then.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    // The in-process session's control token goes under a state directory of our own.
    // SAFETY: no other thread exists yet.
    unsafe { std::env::set_var("XDG_STATE_HOME", dir.path().join("state")) };
    std::fs::write(
        dir.path().join("config.toml"),
        "[gameplay]\nmode = \"parallel\"\ncycle_delay_ms = 0\n\n[audio]\nenabled = false\n",
    )
    .expect("config");

    println!("load average at start: {}", loadavg());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "\nEvent latency, agent to viewer (a `command` event from `control.set_paused`), {PROBES} probes, game playing\n"
    );
    println!(
        "| viewers | samples | p50 µs | p99 µs | last viewer p50 µs | last viewer p99 µs | cycles meanwhile |\n|---|---|---|---|---|---|---|"
    );
    for viewers in [1, 10] {
        let l = rt.block_on(latency(viewers));
        println!(
            "| {viewers} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {} |",
            l.each.len(),
            percentile(&l.each, 50),
            percentile(&l.each, 99),
            percentile(&l.last, 50),
            percentile(&l.last, 99),
            l.cycles,
        );
    }
    drop(rt);

    println!(
        "\nThe agent's cycle rate and CPU with viewers attached (agent: the release binary, headless, parallel, cycle_delay 0; a window of about {} s, cycle end to cycle end; median of {RUNS} runs)\n",
        WINDOW.as_secs()
    );
    println!("load average before: {}", loadavg());
    let counts = [0usize, 1, 10, 50];
    let mut runs: Vec<Vec<Window>> = counts.iter().map(|_| Vec::new()).collect();
    for run in 0..RUNS {
        for (i, &n) in counts.iter().enumerate() {
            let w = one_window(dir.path(), n);
            eprintln!(
                "run {run} viewers {n}: {:.3} cycles/s, agent {:.0} ms/s, viewers {:.0} ms/s, load {}",
                w.cycles_per_s,
                w.agent_cpu_ms_per_s,
                w.viewers_cpu_ms_per_s,
                loadavg()
            );
            runs[i].push(w);
        }
    }
    println!(
        "| viewers | cycles/s | change vs 0 | agent CPU ms/s | agent CPU ms/s per viewer | viewers' CPU ms/s | stream B/s per viewer |\n|---|---|---|---|---|---|---|"
    );
    let base = median(runs[0].iter().map(|w| w.cycles_per_s).collect());
    let base_cpu = median(runs[0].iter().map(|w| w.agent_cpu_ms_per_s).collect());
    for (i, &n) in counts.iter().enumerate() {
        let rate = median(runs[i].iter().map(|w| w.cycles_per_s).collect());
        let cpu = median(runs[i].iter().map(|w| w.agent_cpu_ms_per_s).collect());
        let per = if n == 0 {
            "–".to_string()
        } else {
            format!("{:.2}", (cpu - base_cpu) / n as f64)
        };
        println!(
            "| {n} | {rate:.3} | {:+.1} % | {cpu:.0} | {per} | {:.0} | {:.0} |",
            (rate / base - 1.0) * 100.0,
            median(runs[i].iter().map(|w| w.viewers_cpu_ms_per_s).collect()),
            median(runs[i].iter().map(|w| w.bytes_per_viewer_per_s).collect()),
        );
    }
    println!("load average at the end: {}", loadavg());
}
