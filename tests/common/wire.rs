//! What the in-process wire tests share: the sandbox with a registry of the default systems
//! on it, raw loopback servers that answer with whatever bytes a test gives (broken ones
//! too), and a registry for one system pointed at such a server.

use singularis_tui::clients::Prompt;
use singularis_tui::config::{BaseUrl, Config};
use singularis_tui::lifecycle::Registry;
use singularis_tui::sandbox::{Sandbox, SandboxSystem};
use singularis_tui::systems::{Protocol, SystemId};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The sandbox serving every default system with a wire of its own (as `config` sets it),
/// and a registry of `config`'s systems on it, keys from `env`.
pub async fn rig_keyed(
    config: &Config,
    env: &dyn Fn(&str) -> Option<String>,
) -> (Sandbox, Arc<Registry>) {
    let ids = Config::default().ids();
    let systems = ids
        .iter()
        .filter(|id| config.system(**id).protocol != Protocol::Moe)
        .map(|id| SandboxSystem::from_config(config, *id, config.sandbox.faults.get(id).copied()))
        .collect();
    let sandbox = Sandbox::start("127.0.0.1".parse().unwrap(), 0, systems)
        .await
        .expect("the sandbox starts");
    let urls: BTreeMap<_, _> = ids
        .into_iter()
        .filter_map(|id| Some((id, sandbox.base_url(id)?)))
        .collect();
    let registry = Arc::new(Registry::new(config, &urls, env));
    (sandbox, registry)
}

/// [`rig_keyed`] with no key set.
pub async fn rig(config: &Config) -> (Sandbox, Arc<Registry>) {
    rig_keyed(config, &|_| None).await
}

/// A prompt as the game makes one.
pub fn prompt() -> Prompt {
    Prompt::new("", "Health: 90/100\nNo enemy in view")
}

/// A whole HTTP/1.1 answer, `connection: close`.
pub fn http(status: &str, content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut r = format!("HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n", body.len()).into_bytes();
    r.extend_from_slice(body);
    r
}

/// Read one request, head and body (by its Content-Length); `false` if the peer left first.
async fn read_request(sock: &mut tokio::net::TcpStream) -> bool {
    let mut buf = vec![0u8; 64 << 10];
    let mut seen = Vec::new();
    loop {
        let n = sock.read(&mut buf).await.unwrap_or(0);
        if n == 0 {
            return false;
        }
        seen.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&seen);
        if let Some(head_end) = text.find("\r\n\r\n") {
            let len = text[..head_end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                })
                .unwrap_or(0);
            if seen.len() >= head_end + 4 + len {
                return true;
            }
        }
    }
}

/// When each request a [`scripted_server`] answered arrived, in order.
pub type Arrivals = Arc<Mutex<Vec<SystemTime>>>;

/// A loopback server that answers the n-th request (from 1) with `answer(n)`, raw bytes,
/// then closes that connection; its URL (`/v1`) and when each request arrived.
pub async fn scripted_server(
    answer: impl Fn(usize) -> Vec<u8> + Send + Sync + 'static,
) -> (url::Url, Arrivals) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let arrivals = Arrivals::default();
    let log = arrivals.clone();
    let answer = Arc::new(answer);
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let (answer, log) = (answer.clone(), log.clone());
            tokio::spawn(async move {
                if !read_request(&mut sock).await {
                    return;
                }
                let n = {
                    let mut l = log.lock().unwrap();
                    l.push(SystemTime::now());
                    l.len()
                };
                let _ = sock.write_all(&answer(n)).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    let url = url::Url::parse(&format!("http://{addr}/v1")).unwrap();
    (url, arrivals)
}

/// A loopback server that answers every request with `response` (raw bytes), then closes.
pub async fn raw_server(response: Vec<u8>) -> url::Url {
    scripted_server(move |_| response.clone()).await.0
}

/// A registry whose system `id` is a live service at `url`, with a key and no retry (one
/// answer, read once).
pub fn registry_for(id: SystemId, url: url::Url) -> Registry {
    registry_retrying(id, url, 0)
}

/// [`registry_for`], with `retries` retries.
pub fn registry_retrying(id: SystemId, url: url::Url, retries: u32) -> Registry {
    let mut config = Config::default();
    let sys = config.systems.get_mut(&id).expect("a default system");
    sys.base_url = BaseUrl::Live(url);
    sys.retries = retries;
    Registry::new(&config, &BTreeMap::new(), &|_| Some("k".into()))
}

/// [`registry_for`] `id`, at a loopback server that gives `body` to every request.
pub async fn serving(id: SystemId, content_type: &str, body: &[u8]) -> Registry {
    registry_for(id, raw_server(http("200 OK", content_type, body)).await)
}
