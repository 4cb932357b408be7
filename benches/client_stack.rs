//! What the client stack costs on the request path (issue #15): the full stack (System with
//! its deadline and breaker, the pool gate, the ledger, metrics, tracing, the OpenAI client's
//! request building and answer parsing) against bare reqwest with the same pool size, the
//! same concurrency limit and the same JSON work, on one unpaced loopback server, in one run.
//! `cargo bench --bench client_stack`; figures go in BENCHMARKS.md.

use singularis_tui::clients::{self, Prompt};
use singularis_tui::config::Config;
use singularis_tui::lifecycle::{Bounded, Registry, System};
use singularis_tui::systems::{Protocol, SystemId};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// A chat completion as the service gives it: the same bytes for every request.
const ANSWER: &str = r#"{"id":"chatcmpl-bench","object":"chat.completion","created":1764806400,"model":"gpt-5-mini","choices":[{"index":0,"message":{"role":"assistant","content":"explore","refusal":null},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":1,"total_tokens":13}}"#;
const CALLERS: [usize; 3] = [1, 10, 100];
/// Each measurement runs this long; the stacks alternate, ROUNDS times each.
const WINDOW: Duration = Duration::from_secs(2);

const ROUNDS: usize = 3;

async fn serve() -> std::net::SocketAddr {
    let app = axum::Router::new().fallback(|| async {
        (
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            ANSWER,
        )
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

fn prompt() -> Prompt {
    Prompt::new("bench", "Health: 90/100\nNo enemy in view")
}

struct Figures {
    per_s: f64,
    p50_us: f64,
    p99_us: f64,
}

/// `callers` tasks, each calling in a loop for the window; latency of every call.
async fn measure<F, Fut>(callers: usize, call: F) -> Figures
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let until = Instant::now() + WINDOW;
    let tasks: Vec<_> = (0..callers)
        .map(|_| {
            let call = call.clone();
            tokio::spawn(async move {
                let mut lat = Vec::new();
                while Instant::now() < until {
                    let t = Instant::now();
                    call().await;
                    lat.push(t.elapsed().as_secs_f64() * 1e6);
                }
                lat
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("caller"));
    }
    all.sort_by(f64::total_cmp);
    let at = |q: f64| all[((all.len() - 1) as f64 * q) as usize];
    Figures {
        per_s: all.len() as f64 / WINDOW.as_secs_f64(),
        p50_us: at(0.5),
        p99_us: at(0.99),
    }
}

fn stack_call(
    sys: Arc<System>,
) -> impl Fn() -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> + Clone {
    move || {
        let sys = sys.clone();
        Box::pin(async move {
            let q = prompt();
            match sys
                .call_bounded(
                    move |c| async move { clients::ask(&c, Protocol::OpenaiChat, &q).await },
                )
                .await
            {
                Bounded::Answered(text) => assert_eq!(text, "explore"),
                other => panic!("the stack did not answer: {}", describe(&other)),
            }
        })
    }
}

fn describe<T>(b: &Bounded<T>) -> String {
    match b {
        Bounded::Answered(_) => "answered".into(),
        Bounded::Cut(_) => "cut".into(),
        Bounded::Late => "late".into(),
        Bounded::RateLimited(e) => format!("rate-limited: {e}"),
        Bounded::Truncated(_) => "truncated".into(),
        Bounded::Skipped => "skipped".into(),
        Bounded::Unavailable => "unavailable".into(),
        Bounded::Failed(e) => e.to_string(),
    }
}

fn bare_call(
    client: reqwest::Client,
    url: String,
    limit: Arc<Semaphore>,
) -> impl Fn() -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> + Clone {
    move || {
        let (client, url, limit) = (client.clone(), url.clone(), limit.clone());
        Box::pin(async move {
            let _slot = limit.acquire().await.expect("limit");
            let q = prompt();
            let body = serde_json::json!({
                "model": "gpt-5-mini",
                "messages": [
                    {"role": "developer", "content": q.system},
                    {"role": "user", "content": q.user},
                ],
                "max_completion_tokens": 1024,
                "reasoning_effort": "minimal",
            });
            let resp = client
                .post(&url)
                .bearer_auth("sandbox-key")
                .json(&body)
                .send()
                .await
                .expect("bare send");
            let v: serde_json::Value = resp.json().await.expect("bare json");
            assert_eq!(v["choices"][0]["message"]["content"], "explore");
        })
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // The app's logging as a session has it (INFO, to a sink): callsites are checked as in a run.
    let _ = tracing_subscriber::fmt()
        .with_env_filter("info")
        .with_writer(std::io::sink)
        .try_init();
    let addr = serve().await;
    let base = format!("http://{addr}/v1");
    let config = Config::default();
    let urls = BTreeMap::from([(
        SystemId::OPENAI_CLIENT,
        url::Url::parse(&format!("{base}/")).expect("url"),
    )]);
    let registry = Arc::new(Registry::new(&config, &urls, &|_| None));
    // Metrics as when `--metrics` is on: every request's duration into the histogram.
    let _metrics = singularis_tui::telemetry::prometheus::SessionMetrics::new(
        registry.clone(),
        Arc::default(),
    );
    let sys = registry.get(SystemId::OPENAI_CLIENT).clone();
    let limit = sys.config.max_connections();
    singularis_tui::net::transport::install_crypto_provider();
    let bare = reqwest::Client::builder()
        .pool_max_idle_per_host(limit)
        .tcp_nodelay(true)
        .build()
        .expect("reqwest");
    let gate = Arc::new(Semaphore::new(limit));
    let url = format!("{base}/chat/completions");
    // Warm both pools.
    measure(limit, stack_call(sys.clone())).await;
    measure(limit, bare_call(bare.clone(), url.clone(), gate.clone())).await;

    println!("pool limit {limit}, window {WINDOW:?}, median of {ROUNDS} alternating rounds\n");
    println!(
        "| callers | stack req/s | bare req/s | ratio | stack p50/p99 µs | bare p50/p99 µs | p99 ratio |"
    );
    println!("|---|---|---|---|---|---|---|");
    // `BENCH_CALLERS=1` runs one row (for a profiler).
    let only: Option<usize> = std::env::var("BENCH_CALLERS")
        .ok()
        .and_then(|v| v.parse().ok());
    for callers in CALLERS.into_iter().filter(|c| only.is_none_or(|o| o == *c)) {
        let mut stack = Vec::new();
        let mut plain = Vec::new();
        for _ in 0..ROUNDS {
            stack.push(measure(callers, stack_call(sys.clone())).await);
            // `BENCH_ONLY=stack` leaves bare reqwest out (for a profiler).
            if std::env::var("BENCH_ONLY").as_deref() != Ok("stack") {
                plain.push(
                    measure(callers, bare_call(bare.clone(), url.clone(), gate.clone())).await,
                );
            } else {
                plain.push(Figures {
                    per_s: f64::NAN,
                    p50_us: f64::NAN,
                    p99_us: f64::NAN,
                });
            }
        }
        let med = |v: &mut Vec<Figures>, f: fn(&Figures) -> f64| {
            let mut xs: Vec<f64> = v.iter().map(f).collect();
            xs.sort_by(f64::total_cmp);
            xs[xs.len() / 2]
        };
        let (s_rate, b_rate) = (med(&mut stack, |f| f.per_s), med(&mut plain, |f| f.per_s));
        let (s50, b50) = (med(&mut stack, |f| f.p50_us), med(&mut plain, |f| f.p50_us));
        let (s99, b99) = (med(&mut stack, |f| f.p99_us), med(&mut plain, |f| f.p99_us));
        println!(
            "| {callers} | {s_rate:.0} | {b_rate:.0} | {:.3} | {s50:.0}/{s99:.0} | {b50:.0}/{b99:.0} | {:.3} |",
            s_rate / b_rate,
            s99 / b99
        );
    }
    println!(
        "\nconnections the stack opened: {} (limit {limit})",
        sys.connections_opened()
    );
}
