//! A waiter's wake-up at the pool gate (issue #15): a pool of one connection, one request on
//! it, a second one waiting for the permit. The server closes the first after its answer; the
//! figure is the time from the server seeing that connection end (EOF) to it accepting the
//! waiter's new connection: the permit's release on the fd's close, the waiter's wake-up and
//! its loopback connect, all of it. `cargo bench --bench gate`; figures go in BENCHMARKS.md.

use singularis_tui::net::sockets::SocketLedger;
use singularis_tui::net::transport::{HttpClient, PoolSettings};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

const ROUNDS: usize = 500;
/// How long the first request holds the only connection, so the second is surely waiting.
const HOLD: Duration = Duration::from_millis(2);

/// What the server saw: a connection's accept, and when its client hung up.
enum Seen {
    Accepted(Instant),
    Ended(Instant),
}

async fn serve(listener: tokio::net::TcpListener, seen: mpsc::UnboundedSender<Seen>) {
    loop {
        let Ok((mut conn, _)) = listener.accept().await else {
            return;
        };
        let _ = seen.send(Seen::Accepted(Instant::now()));
        let seen = seen.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            let mut got = Vec::new();
            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                match conn.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
            tokio::time::sleep(HOLD).await;
            let body = "{}";
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = conn.write_all(head.as_bytes()).await;
            // The client closes after the answer (`connection: close`): its EOF is the moment
            // its fd closed, and with it the permit was released.
            while let Ok(n) = conn.read(&mut buf).await {
                if n == 0 {
                    break;
                }
            }
            let _ = seen.send(Seen::Ended(Instant::now()));
        });
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    singularis_tui::net::transport::install_crypto_provider();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url =
        url::Url::parse(&format!("http://{}/", listener.local_addr().expect("addr"))).expect("url");
    let (tx, mut seen) = mpsc::unbounded_channel();
    tokio::spawn(serve(listener, tx));
    let client = HttpClient::new(PoolSettings {
        ledger: Arc::new(SocketLedger::default()),
        permits: Arc::new(Semaphore::new(1)),
        stop: CancellationToken::new(),
        connect_timeout: Duration::from_secs(5),
        timeout: Duration::from_secs(5),
        max_idle_per_host: 0,
    })
    .expect("pool");
    let mut wake_us = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let first = client.send(client.get(url.clone()));
        let second = async {
            // Asked once the first holds the permit.
            tokio::time::sleep(HOLD / 4).await;
            client.send(client.get(url.clone())).await
        };
        let (a, b) = tokio::join!(first, second);
        a.expect("first").bytes().await.expect("first body");
        b.expect("second").bytes().await.expect("second body");
        // Accepted(first), Ended(first), Accepted(second), Ended(second), in some order of
        // the last two kinds: the figure is the first Ended to the second Accepted.
        let mut accepted = Vec::new();
        let mut ended = Vec::new();
        while accepted.len() < 2 || ended.len() < 2 {
            match seen.recv().await.expect("server") {
                Seen::Accepted(t) => accepted.push(t),
                Seen::Ended(t) => ended.push(t),
            }
        }
        ended.sort();
        let waiter_in = accepted[1];
        wake_us.push(waiter_in.saturating_duration_since(ended[0]).as_secs_f64() * 1e6);
    }
    wake_us.sort_by(f64::total_cmp);
    let at = |q: f64| wake_us[((wake_us.len() - 1) as f64 * q) as usize];
    println!(
        "pool gate, a waiter admitted when the only connection closes ({ROUNDS} rounds):\n\
         first connection's end (server sees EOF) -> waiter's connection accepted: \
         p50 {:.0} µs, p90 {:.0} µs, p99 {:.0} µs, max {:.0} µs",
        at(0.5),
        at(0.9),
        at(0.99),
        wake_us[wake_us.len() - 1]
    );
}
