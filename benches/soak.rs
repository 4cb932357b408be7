//! Soak: 100 000 requests through all ten wire systems against the in-process sandbox, in
//! rounds, watching open sockets, file descriptors and memory stay flat; then a verified
//! shutdown. `cargo bench --bench soak` (SOAK_REQUESTS to change the total); figures go in
//! BENCHMARKS.md.

use singularis_tui::clients::{self, Prompt};
use singularis_tui::config::{Config, Mode};
use singularis_tui::lifecycle::sockets;
use singularis_tui::session::Session;
use singularis_tui::session::report::Reason;
use singularis_tui::systems::Protocol;
use std::time::{Duration, Instant};

fn fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

fn rss_mib() -> f64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: f64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0.0);
    pages * 4096.0 / (1 << 20) as f64
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let total: usize = std::env::var("SOAK_REQUESTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let session = Session::start(Config::default()).await.expect("session");
        let wired: Vec<_> = singularis_tui::config::Config::default().ids()
            .into_iter()
            .filter(|id| session.registry.get(*id).config.protocol != Protocol::Moe)
            .map(|id| session.registry.get(id).clone())
            .collect();
        let sandbox_ports = session.sandbox().map(|s| s.ports()).unwrap_or_default();
        println!("| requests | client TCP sockets | fds | RSS MiB | errors | elapsed s |\n|---|---|---|---|---|---|");
        let started = Instant::now();
        let rounds = 10;
        let per_round = total / rounds;
        let mut done = 0;
        for _ in 0..rounds {
            // Each system takes its share, 8 callers at a time (more than its 5 connections).
            let per_system = per_round / wired.len();
            let work = wired.iter().map(|sys| {
                let sys = sys.clone();
                async move {
                    let proto = sys.config.protocol;
                    let mut left = per_system;
                    while left > 0 {
                        let batch = left.min(8);
                        let calls = (0..batch).map(|_| {
                            let sys = sys.clone();
                            async move {
                                let q = Prompt::new("soak", "Health: 90/100\nNo enemy in view");
                                sys.call(move |c| async move { clients::ask(&c, proto, &q).await }).await
                            }
                        });
                        futures::future::join_all(calls).await;
                        left -= batch;
                    }
                }
            });
            futures::future::join_all(work).await;
            done += per_system * wired.len();
            let tcp = sockets::count_process_sockets(&sandbox_ports)
                .map_or_else(|e| format!("unreadable: {e}"), |n| n.to_string());
            let errors: u64 = session.registry.snapshots().iter().map(|s| s.errors).sum();
            println!(
                "| {done} | {tcp} | {} | {:.1} | {errors} | {:.1} |",
                fds(),
                rss_mib(),
                started.elapsed().as_secs_f64()
            );
        }
        let opened: u64 = wired.iter().map(|s| s.connections_opened()).sum();
        println!("\nconnections opened in all: {opened} for {done} requests");
        session.quit.quit(Reason::Quit);
        let end = session
            .shutdown(Duration::from_millis(500), Mode::Parallel, Some(std::env::temp_dir().join("singularis-soak.json")), None)
            .await;
        println!(
            "shutdown: {:.1} ms, {}",
            end.report.shutdown.report.total_ms,
            end.report.shutdown.report.sockets_left_text()
        );
    });
}
