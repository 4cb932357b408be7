//! Gameplay speed: cycles per second against the embedded sandbox with no added latency
//! (`cycle_delay_ms = 0`, no faults, sound muted), in each mode, and the share of a cycle's
//! time spent outside network calls (time with no call in flight: the world, parsing,
//! voting, scheduling). `cargo bench --bench cycles`; figures go in BENCHMARKS.md.
//!
//! The sandbox streams its SSE answers in chunks 10 ms apart (as a real service trickles
//! tokens), so the streamed calls (video interpreter, orchestrator, LM Studio) set the pace.

use singularis_tui::config::{Config, Mode, Timing};
use singularis_tui::gameplay::cycle::Agent;
use singularis_tui::gameplay::{Action, World};
use singularis_tui::session::Session;
use singularis_tui::session::report::Reason;
use std::time::{Duration, Instant};

const CYCLES: u64 = 60;
const RUNS: usize = 3;

struct Run {
    cycles_per_s: f64,
    outside_share: f64,
    cycle_ms: f64,
    outside_ms: f64,
}

async fn one_run(mode: Mode) -> Run {
    let mut config = Config::default();
    config.gameplay.cycle_delay_ms = 0;
    config.audio.enabled = false;
    let mut session = Session::start(config).await.expect("session");
    let started = Instant::now();
    session.spawn_gameplay(mode, CYCLES);
    session.quit.wait().await;
    let elapsed = started.elapsed();
    let timing = session
        .stats
        .lock()
        .map(|s| s.timing.clone())
        .unwrap_or_default();
    assert_eq!(timing.cycles, CYCLES);
    session.quit.quit(Reason::Cycles);
    let report = std::env::temp_dir().join(format!(
        "singularis-bench-cycles-{}.json",
        std::process::id()
    ));
    let _ = session
        .shutdown(Duration::from_millis(500), mode, Some(report.clone()), None)
        .await;
    let _ = std::fs::remove_file(report);
    let cycle_ms = timing.total_ms / timing.cycles as f64;
    Run {
        cycles_per_s: CYCLES as f64 / elapsed.as_secs_f64(),
        outside_share: timing.outside_share().unwrap_or(0.0),
        cycle_ms,
        outside_ms: cycle_ms - timing.network_ms / timing.cycles as f64,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// On the real clock (`--timing live`): each cycle's time less its critical path (the calls
/// it had to wait for, by their own times), per cycle, in `mode`. The median and the
/// spread, in ms.
async fn live_overhead(mode: Mode, cycles: u64) -> (f64, f64, f64, f64) {
    let mut config = Config::default();
    config.gameplay.cycle_delay_ms = 0;
    config.audio.enabled = false;
    config.sandbox.timing = Timing::Live;
    let session = Session::start(config).await.expect("session");
    let mut agent = Agent::new(
        session.registry.clone(),
        session.config.gameplay.roles.clone(),
        session.config.gameplay.seed,
        mode,
        session.stats.clone(),
    );
    let (mut overhead, mut cycle) = (Vec::new(), Vec::new());
    for _ in 0..cycles {
        agent.cycle().await;
        let t = session
            .stats
            .lock()
            .map(|s| s.timing.clone())
            .unwrap_or_default();
        overhead.push(t.last_cycle_ms - t.last_critical_path_ms);
        cycle.push(t.last_cycle_ms);
    }
    agent.finish().await;
    session.quit.quit(Reason::Cycles);
    let report =
        std::env::temp_dir().join(format!("singularis-bench-live-{}.json", std::process::id()));
    let _ = session
        .shutdown(Duration::from_millis(500), mode, Some(report.clone()), None)
        .await;
    let _ = std::fs::remove_file(report);
    let min = overhead.iter().copied().fold(f64::MAX, f64::min);
    let max = overhead.iter().copied().fold(0.0, f64::max);
    (median(overhead), min, max, median(cycle))
}

/// The world alone: frame + apply per cycle, no systems.
fn world_only() -> f64 {
    let mut w = World::new(42);
    let n = 200_000;
    let started = Instant::now();
    let mut frames = 0usize;
    for i in 0..n {
        frames += w.frame().len();
        w.apply(Action::ALL[i % Action::ALL.len()]);
    }
    std::hint::black_box(frames);
    started.elapsed().as_secs_f64() * 1e6 / n as f64
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
        println!("Gameplay cycles against the embedded sandbox, cycle_delay 0, {CYCLES} cycles × {RUNS} runs (median)\n");
        println!("| mode | cycles/s | ms per cycle | ms outside network calls | share outside network calls |\n|---|---|---|---|---|");
        for mode in [Mode::Parallel, Mode::Sequential] {
            let mut runs = Vec::new();
            for _ in 0..RUNS {
                runs.push(one_run(mode).await);
            }
            println!(
                "| {} | {:.1} | {:.1} | {:.2} | {:.1} % |",
                mode.name(),
                median(runs.iter().map(|r| r.cycles_per_s).collect()),
                median(runs.iter().map(|r| r.cycle_ms).collect()),
                median(runs.iter().map(|r| r.outside_ms).collect()),
                median(runs.iter().map(|r| r.outside_share * 100.0).collect()),
            );
        }
        let live: u64 = std::env::var("LIVE_CYCLES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(20);
        println!("\nOn the live clock, {live} cycles: cycle time less its critical path\n");
        println!("| mode | median cycle ms | overhead median ms | min | max |\n|---|---|---|---|---|");
        for mode in [Mode::Parallel, Mode::Sequential] {
            let (med, min, max, cycle) = live_overhead(mode, live).await;
            println!("| {} | {cycle:.0} | {med:.3} | {min:.3} | {max:.3} |", mode.name());
        }
    });
    println!(
        "\nThe world alone (frame + apply): {:.2} µs per cycle",
        world_only()
    );
}
