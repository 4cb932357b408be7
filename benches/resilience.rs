//! One hung provider must not stall the agent: cycles per second of the real binary
//! (headless, muted, 10 cycles, the default 250 ms between cycles) with each single system
//! hung and each single system dripping, as a ratio to the clean session; median of
//! `RUNS` (default 5) runs each, all in one run. `cargo bench --bench resilience`.

use std::process::{Command, Stdio};
use std::time::Instant;

const BIN: &str = env!("CARGO_BIN_EXE_singularis-tui");
const CYCLES: u32 = 10;
/// The systems with a wire of their own (moe has none: it is its experts), from the default
/// config's list.
fn wired() -> Vec<&'static str> {
    let c = singularis_tui::config::Config::default();
    c.ids()
        .into_iter()
        .filter(|id| c.system(*id).protocol != singularis_tui::systems::Protocol::Moe)
        .map(|id| id.name())
        .collect()
}

/// Seconds one session took, start to exit.
fn session(fault: Option<&str>) -> f64 {
    let dir = std::env::temp_dir().join(format!("sgt-bench-resilience-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let mut c = Command::new(BIN);
    c.args(["--headless", "--mute", "--cycles", &CYCLES.to_string()])
        .args(["--report", &dir.join("r.json").to_string_lossy()])
        .env("XDG_STATE_HOME", dir.join("state"))
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(f) = fault {
        c.args(["--fault", f]);
    }
    let started = Instant::now();
    let status = c.status().expect("the binary runs");
    assert!(status.success(), "{fault:?}: {status}");
    started.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let runs: usize = std::env::var("RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    let clean = median((0..runs).map(|_| session(None)).collect());
    let rate = |secs: f64| f64::from(CYCLES) / secs;
    println!(
        "clean: {clean:.2} s for {CYCLES} cycles ({:.2} cycles/s), median of {runs}",
        rate(clean)
    );
    println!("\n| system | hung: s | hung: ratio | dripping: s | dripping: ratio |");
    println!("|---|---|---|---|---|");
    let mut worst = f64::INFINITY;
    for sys in wired() {
        let hung = median(
            (0..runs)
                .map(|_| session(Some(&format!("{sys}=hang"))))
                .collect(),
        );
        let drip = median(
            (0..runs)
                .map(|_| session(Some(&format!("{sys}=drip"))))
                .collect(),
        );
        let (rh, rd) = (rate(hung) / rate(clean), rate(drip) / rate(clean));
        worst = worst.min(rh).min(rd);
        println!("| {sys} | {hung:.2} | {rh:.2} | {drip:.2} | {rd:.2} |");
    }
    println!("\nworst ratio: {worst:.2} (target >= 0.8)");
}
