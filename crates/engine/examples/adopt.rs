//! A program that is not singularis-tui adopts the engine alone: two systems of its own
//! (`weather` and `news`, from its own config text), one request each to a tiny
//! OpenAI-compatible server it starts itself on loopback, then a verified shutdown.
//!
//! `cargo run -p singularis-engine --example adopt` (a test runs the same code).

use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use singularis_engine::clients::{Prompt, openai};
use singularis_engine::config;
use singularis_engine::lifecycle::{
    Registry, ShutdownEvent, ShutdownReport, shutdown_all, sockets, to_channel,
};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// One chat completion, whatever was asked.
async fn answer(
    _: Request<hyper::body::Incoming>,
) -> Result<Response<String>, std::convert::Infallible> {
    let body = r#"{"id":"c1","object":"chat.completion","model":"tiny","choices":[{"index":0,"message":{"role":"assistant","content":"sunny"},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":1,"total_tokens":6}}"#;
    Ok(Response::builder()
        .header("content-type", "application/json")
        .body(body.to_string())
        .unwrap_or_default())
}

/// The server: loopback, port 0, one task per connection.
async fn serve() -> std::io::Result<(u16, CancellationToken)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let stop = CancellationToken::new();
    let stopped = stop.clone();
    tokio::spawn(async move {
        loop {
            let (stream, _) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(_) => return,
                },
                _ = stopped.cancelled() => return,
            };
            tokio::spawn(async move {
                let service = hyper::service::service_fn(answer);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok((port, stop))
}

/// Start the server, load the config, call each system once, shut down; the report.
pub async fn run(
    events: Option<tokio::sync::mpsc::UnboundedSender<ShutdownEvent>>,
) -> Result<(Vec<String>, ShutdownReport), Box<dyn std::error::Error>> {
    let (port, server) = serve().await?;
    // The program's own config: the engine's sections only, its own system names.
    let text = format!(
        r#"
[shutdown]
grace_ms = 1000
[systems.weather]
protocol = "openai_chat"
base_url = "http://127.0.0.1:{port}/v1"
model = "tiny"
api_key_env = ""
[systems.news]
protocol = "openai_chat"
base_url = "http://127.0.0.1:{port}/v1"
model = "tiny"
api_key_env = ""
depends_on = ["weather"]
"#
    );
    let mut cfg = config::parse(text.as_bytes(), "adopt.toml")?;
    // Only its own systems: the engine's default catalog is not this program's.
    cfg.systems.retain(|id, _| !id.is_seed());
    // Its own server's sockets are not the systems': left out by port, as the sandbox is.
    let baseline = sockets::count_process_sockets(&[port]).ok();
    let registry = Arc::new(Registry::new(&cfg, &BTreeMap::new(), &|_| None));
    let mut answers = Vec::new();
    for id in registry.ids() {
        let prompt = Prompt::new("You answer in one word.", format!("What does {id} say?"));
        let text = registry
            .get(id)
            .call(move |ctx| async move { openai::chat(&ctx, &prompt, false).await })
            .await?;
        answers.push(format!("{id}: {text}"));
    }
    let report = shutdown_all(
        registry,
        Duration::from_millis(cfg.shutdown.grace_ms),
        CancellationToken::new(),
        baseline,
        vec![port],
        events.map(to_channel),
        Vec::new(),
    )
    .await;
    server.cancel();
    Ok((answers, report))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (answers, report) = run(None).await?;
    for a in &answers {
        println!("{a}");
    }
    for s in &report.systems {
        println!("closed {} ({:?})", s.name, s.outcome);
    }
    let after = report
        .sockets_open_after
        .map_or("unmeasured".to_string(), |n| n.to_string());
    println!(
        "shutdown: {} closed, {} forced, verified {}, sockets open after = {after}",
        report.closed, report.forced, report.verified
    );
    Ok(())
}
