//! Shutdown time (trigger → every socket verified closed) and connection reuse, against the
//! embedded sandbox on loopback. `cargo bench --bench shutdown`; figures go in BENCHMARKS.md.

use singularis_tui::clients::{self, Prompt};
use singularis_tui::config::{Config, Mode};
use singularis_tui::lifecycle::{ShutdownEvent, ShutdownReport};
use singularis_tui::sandbox::fault::Fault;
use singularis_tui::session::Session;
use singularis_tui::session::report::Reason;
use singularis_tui::systems::{Protocol, SystemId};
use std::time::Duration;

/// Runs per scenario; `BENCH_RUNS` changes it (a rare outlier needs hundreds).
fn runs() -> usize {
    std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20)
}

/// `BENCH_ONLY=N` runs the N-th scenario alone (1-based).
fn only(n: usize) -> bool {
    std::env::var("BENCH_ONLY")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .is_none_or(|o| o == n)
}

fn config(faults: &[(SystemId, Fault)]) -> Config {
    let mut c = Config::default();
    c.gameplay.cycle_delay_ms = 0;
    c.sandbox.faults.extend(faults.iter().copied());
    c
}

/// Start a session, prepare it, trigger shutdown, return the shutdown's own report.
async fn one_run(
    cfg: Config,
    grace_ms: u64,
    prepare: impl AsyncFnOnce(&Session),
) -> ShutdownReport {
    let session = Session::start(cfg).await.expect("session");
    prepare(&session).await;
    let profiled = profile_window();
    session.quit.quit(Reason::Quit);
    let dir = std::env::temp_dir().join(format!("singularis-bench-{}.json", std::process::id()));
    let end = session
        .shutdown(
            Duration::from_millis(grace_ms),
            Mode::Parallel,
            Some(dir.clone()),
            profiled.as_ref().map(|(tx, _)| tx.clone()),
        )
        .await;
    if let Some((tx, watcher)) = profiled {
        drop(tx);
        let _ = watcher.await;
    }
    let _ = std::fs::remove_file(dir);
    let sd = end.report.shutdown.report;
    // A bench that cannot verify its sockets has no figure to give.
    if !sd.verified || sd.sockets_open_after.is_none() {
        panic!("shutdown not verified: {:?}", sd.unverified_reason);
    }
    // An outlier is a finding, not noise: show the whole report of any run that left one.
    if sd.sockets_open_after != Some(0) {
        eprintln!(
            "run left sockets open: {}",
            serde_json::to_string_pretty(&sd).unwrap_or_default()
        );
    }
    sd
}

/// The systems of `ids` that have a wire of their own (the vote has none).
fn wired<'a>(session: &'a Session, ids: &'a [SystemId]) -> impl Iterator<Item = SystemId> + 'a {
    ids.iter()
        .copied()
        .filter(|&id| session.registry.get(id).config.protocol != Protocol::Moe)
}

/// One request on each of `ids` that has a wire, all at once, left running.
fn fire_at(session: &Session, ids: &[SystemId]) {
    for id in wired(session, ids) {
        let sys = session.registry.get(id).clone();
        let proto = sys.config.protocol;
        tokio::spawn(async move {
            let q = Prompt::new("bench", "Health: 90/100\nNo enemy in view");
            let _ = sys
                .call(move |c| async move { clients::ask(&c, proto, &q).await })
                .await;
        });
    }
}

/// Whether each of `ids` that has a wire has a request in flight.
fn on_the_wire(session: &Session, ids: &[SystemId]) -> bool {
    let now = session.registry.snapshots();
    wired(session, ids).all(|id| now[id.index()].in_flight > 0)
}

async fn warm(session: &Session) {
    for _ in 0..3 {
        fire_at(session, &session.registry.ids());
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    wait_idle(session).await;
}

async fn wait_idle(session: &Session) {
    while session.registry.snapshots().iter().any(|s| s.in_flight > 0) {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// With `PERF_CTL=FIFO` (`scripts/profile-bench.sh shutdown`), `perf record` runs paused and
/// is told to record from the quit to the process-wide check only: a profile of shutdowns,
/// not of the sessions started and warmed for them. `None` without it.
fn profile_window() -> Option<(
    tokio::sync::mpsc::UnboundedSender<ShutdownEvent>,
    tokio::task::JoinHandle<()>,
)> {
    let fifo = std::env::var("PERF_CTL").ok()?;
    // perf's control protocol: a command on the FIFO, answered on FIFO.ack.
    let tell = move |cmd: &str| -> std::io::Result<()> {
        use std::io::{Read, Write};
        std::fs::OpenOptions::new()
            .write(true)
            .open(&fifo)?
            .write_all(cmd.as_bytes())?;
        let mut ack = [0u8; 5];
        match std::fs::File::open(format!("{fifo}.ack"))?.read(&mut ack)? {
            0 => Err(std::io::Error::other("perf closed its ack FIFO")),
            _ => Ok(()),
        }
    };
    tell("enable\n").expect("perf control FIFO");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let watcher = tokio::spawn(async move {
        while let Some(e) = rx.recv().await {
            if matches!(e, ShutdownEvent::Verified(_)) {
                tell("disable\n").expect("perf control FIFO");
            }
        }
    });
    Some((tx, watcher))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// One scenario, `BENCH_RUNS` times: its row of the table, then where the time went (the median
/// of each step of the close of `watch`, and of the final socket check). `in_flight`: the
/// systems with a request on the wire at the quit.
async fn scenario(
    name: &str,
    faults: &[(SystemId, Fault)],
    grace_ms: u64,
    in_flight: &[SystemId],
    watch: Option<SystemId>,
) {
    let mut reports = Vec::new();
    for _ in 0..runs() {
        let sd = one_run(config(&[]), grace_ms, async |s: &Session| {
            warm(s).await;
            // Faults go on after warming, so every system has pooled sockets first.
            if let Some(sb) = s.sandbox() {
                for (id, f) in faults {
                    sb.set_fault(*id, Some(*f));
                }
            }
            // Only the row's systems get a request: "the rest idle" means idle.
            fire_at(s, in_flight);
            // Wait until the requests are really on the wire.
            while !on_the_wire(s, in_flight) {
                tokio::time::sleep(Duration::from_micros(200)).await;
            }
        })
        .await;
        reports.push(sd);
    }
    let times: Vec<f64> = reports.iter().map(|r| r.total_ms).collect();
    let leaks: usize = reports.iter().filter_map(|r| r.sockets_open_after).sum();
    let min = times.iter().copied().fold(f64::MAX, f64::min);
    let max = times.iter().copied().fold(0.0, f64::max);
    let med = median(times);
    // A close cut at its deadline: shown as the grace plus what the cut took.
    let past = if med >= grace_ms as f64 {
        format!(" (G + {:.2})", med - grace_ms as f64)
    } else {
        String::new()
    };
    println!("| {name} | {grace_ms} | {med:.2}{past} | {min:.2} | {max:.2} | {leaks} |");
    breakdown(&reports, watch);
}

/// The median time between consecutive steps of one system's close, then the final check.
fn breakdown(reports: &[ShutdownReport], watch: Option<SystemId>) {
    let mut between: Vec<(String, Vec<f64>)> = Vec::new();
    if let Some(id) = watch {
        for r in reports {
            let Some(close) = r.systems.iter().find(|c| c.name == id) else {
                continue;
            };
            if let Some(first) = close.steps.first() {
                let label = format!("start → {:?}", first.step);
                match between.iter_mut().find(|(l, _)| *l == label) {
                    Some((_, v)) => v.push(first.ms),
                    None => between.push((label, vec![first.ms])),
                }
            }
            for pair in close.steps.windows(2) {
                let label = format!("{:?} → {:?}", pair[0].step, pair[1].step);
                let gap = pair[1].ms - pair[0].ms;
                match between.iter_mut().find(|(l, _)| *l == label) {
                    Some((_, v)) => v.push(gap),
                    None => between.push((label, vec![gap])),
                }
            }
        }
    }
    let mut parts: Vec<String> = between
        .into_iter()
        .map(|(label, v)| format!("{label} {:.3}", median(v)))
        .collect();
    parts.push(format!(
        "process-wide check {:.3}",
        median(reports.iter().map(|r| r.check_ms).collect())
    ));
    println!("|  ↳ median ms: {} | | | | | |", parts.join(", "));
}

async fn connections_per_1000() {
    let session = Session::start(config(&[])).await.expect("session");
    println!("\n| system | requests | connections opened | pool limit |\n|---|---|---|---|");
    for id in singularis_tui::config::Config::default().ids() {
        let sys = session.registry.get(id).clone();
        let proto = sys.config.protocol;
        if proto == Protocol::Moe {
            continue;
        }
        // 1000 requests, 10 callers at a time (more than the per-host limit of 5).
        let mut left = 1000;
        while left > 0 {
            let batch = left.min(10);
            let calls = (0..batch).map(|_| {
                let sys = sys.clone();
                async move {
                    let q = Prompt::new("bench", "Health: 90/100");
                    sys.call(move |c| async move { clients::ask(&c, proto, &q).await })
                        .await
                }
            });
            for r in futures::future::join_all(calls).await {
                r.expect("request");
            }
            left -= batch;
        }
        println!(
            "| {id} | 1000 | {} | {} |",
            sys.connections_opened(),
            sys.config.max_connections()
        );
    }
    session.quit.quit(Reason::Quit);
    let _ = session
        .shutdown(
            Duration::from_millis(500),
            Mode::Parallel,
            Some(std::env::temp_dir().join("singularis-bench-c.json")),
            None,
        )
        .await;
}

fn main() {
    // `cargo test --benches` runs bench targets with --bench absent: stay quick then.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        println!("Shutdown time, trigger → every socket verified closed, {} runs each\n", runs());
        println!("| scenario | grace ms | median ms | min ms | max ms | sockets left (all runs) |\n|---|---|---|---|---|---|");
        let ids = singularis_tui::config::Config::default().ids();
        if only(1) { scenario("all idle, pooled keep-alive sockets", &[], 500, &[], Some(SystemId::CLAUDE_CLIENT)).await; }
        let slow: Vec<_> = ids.iter().map(|&id| (id, Fault::Slow(Duration::from_millis(5)))).collect();
        if only(2) { scenario("a request in flight on every system (service answers in 5 ms)", &slow, 500, &ids, None).await; }
        // A unary call the cycle waits on, hung on the wire at the quit: cut at the deadline.
        let wolfram = SystemId::WOLFRAM_ANALYZER;
        if only(3) { scenario("one unary call hung (wolfram_analyzer=hang), the rest idle", &[(wolfram, Fault::Hang)], 300, &[wolfram], Some(wolfram)).await; }
        // A stream hung before its headers: the game no longer needs it, so it ends at once.
        let orchestrator = SystemId::ORCHESTRATOR;
        if only(4) { scenario("one stream hung before its headers (orchestrator=hang), the rest idle", &[(orchestrator, Fault::Hang)], 300, &[orchestrator], Some(orchestrator)).await; }
        if only(5) { connections_per_1000().await; }
    });
}
