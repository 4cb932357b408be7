//! What being watched costs: rendering the Prometheus exposition, and a whole scrape over
//! loopback on a keep-alive connection, as Prometheus makes it, against a session with every
//! system warmed (counters, gauges and a histogram per system). `cargo bench --bench metrics`;
//! figures go in BENCHMARKS.md.

use singularis_tui::clients::{self, Prompt};
use singularis_tui::config::{Config, Mode};
use singularis_tui::session::Session;
use singularis_tui::session::report::Reason;
use singularis_tui::systems::Protocol;
use std::time::{Duration, Instant};

const RENDERS: usize = 2_000;
const SCRAPES: usize = 1_000;

fn percentiles(mut us: Vec<f64>) -> (f64, f64) {
    us.sort_by(f64::total_cmp);
    (us[us.len() / 2], us[us.len() * 99 / 100])
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
        let mut config = Config::default();
        config.audio.enabled = false;
        config.metrics.listen = Some("127.0.0.1:0".parse().expect("address"));
        let session = Session::start(config).await.expect("session");
        // 20 requests per wire system: every series exists and the histograms have samples.
        for id in singularis_tui::config::Config::default().ids() {
            let sys = session.registry.get(id).clone();
            let proto = sys.config.protocol;
            if proto == Protocol::Moe {
                continue;
            }
            for _ in 0..20 {
                let q = Prompt::new("bench", "Health: 90/100");
                sys.call(move |c| async move { clients::ask(&c, proto, &q).await })
                    .await
                    .expect("request");
            }
        }
        let metrics = session.metrics.clone().expect("metrics on");
        let body = metrics.render();
        let series = body
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .count();

        let mut render_us = Vec::with_capacity(RENDERS);
        for _ in 0..RENDERS {
            let t = Instant::now();
            std::hint::black_box(metrics.render());
            render_us.push(t.elapsed().as_secs_f64() * 1e6);
        }

        let url = format!(
            "http://{}/metrics",
            session.metrics_addr().expect("serving")
        );
        singularis_tui::net::transport::install_crypto_provider();
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(1)
            .build()
            .expect("client");
        let mut scrape_us = Vec::with_capacity(SCRAPES);
        for _ in 0..SCRAPES {
            let t = Instant::now();
            let text = client
                .get(&url)
                .send()
                .await
                .expect("scrape")
                .text()
                .await
                .expect("body");
            scrape_us.push(t.elapsed().as_secs_f64() * 1e6);
            std::hint::black_box(text);
        }
        drop(client);

        let (r50, r99) = percentiles(render_us);
        let (s50, s99) = percentiles(scrape_us);
        println!("exposition: {} bytes, {series} series", body.len());
        println!("| measure | median µs | p99 µs |\n|---|---|---|");
        println!("| render the exposition ({RENDERS} times) | {r50:.0} | {r99:.0} |");
        println!("| scrape over loopback, keep-alive ({SCRAPES} times) | {s50:.0} | {s99:.0} |");

        session.quit.quit(Reason::Quit);
        let end = session
            .shutdown(
                Duration::from_millis(500),
                Mode::Parallel,
                Some(std::env::temp_dir().join("singularis-bench-m.json")),
                None,
            )
            .await;
        let sd = &end.report.shutdown.report;
        println!(
            "shutdown with the endpoint: {:.1} ms, {}",
            sd.total_ms,
            sd.sockets_left_text()
        );
    });
}
