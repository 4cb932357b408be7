//! The embedded sandbox: one loopback listener per system, each speaking that system's real
//! wire protocol, with deterministic answers and injectable faults (ARCHITECTURE.md, "The sandbox").
//!
//! - `openai_chat`: `POST /v1/chat/completions` (+ `GET /v1/models`); Bearer auth, except
//!   for LM Studio, which needs no key.
//! - `openai_responses`: `POST /v1/responses`, typed SSE events when streaming.
//! - `anthropic_messages`: `POST /v1/messages`; `x-api-key` or Bearer, `anthropic-version`.
//! - `gemini_*`: `POST /{v1,v1beta}/models/{model}:generateContent` and
//!   `:streamGenerateContent` (`?alt=sse` or a JSON array); `x-goog-api-key`, `?key=` or
//!   Bearer. TTS answers PCM when `responseModalities` has `AUDIO`; the video interpreter
//!   describes the scene.
//! - `wolfram_llm`: `GET /api/v1/llm-api?input=..&appid=..`, plain text.
//! - every listener: `GET /_sandbox/stats`, all systems' connection counters, never faulted.
//!
//! Answers come from [`script`]. Faults apply to everything but the stats path.

mod anthropic;
mod catalog;
pub mod clock;
/// The fault kinds: a config value (`[sandbox.faults]`, `--fault`).
pub mod fault;
mod gemini;
mod meter;
mod openai;
pub mod pcm;
mod replay;
pub mod script;
mod server;
pub mod timing;
mod wire;
mod wolfram;

pub use clock::{Clock, Timing};
pub use fault::Fault;
pub use meter::TokenSums;

use singularis_engine::systems::catalog::Service;
use singularis_engine::systems::{Protocol, SystemId};
use std::net::IpAddr;
use std::sync::Arc;
use tokio_util::sync::DropGuard;

/// One system the sandbox serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxSystem {
    pub id: SystemId,
    pub protocol: Protocol,
    /// The service it plays: which catalog judges its models, which errors it answers.
    pub service: Service,
    pub model: String,
    pub fault: Option<Fault>,
}

impl SandboxSystem {
    /// The system with its default protocol and model, no fault.
    pub fn with_defaults(id: SystemId) -> SandboxSystem {
        let c = singularis_engine::config::SystemConfig::default_for(id);
        SandboxSystem {
            id,
            protocol: c.protocol,
            service: c.service(id),
            model: c.model,
            fault: None,
        }
    }

    /// The system as `config` sets it up, with `fault` (the app's `[sandbox.faults]`).
    pub fn from_config(
        config: &singularis_engine::config::Config,
        id: SystemId,
        fault: Option<Fault>,
    ) -> SandboxSystem {
        let c = config.system(id);
        SandboxSystem {
            id,
            protocol: c.protocol,
            service: c.service(id),
            model: c.model.clone(),
            fault,
        }
    }
}

/// A request as a system's listener saw it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: String,
    pub path_and_query: String,
    pub headers: http::HeaderMap,
    pub body: bytes::Bytes,
}

/// Server-side connection counters of one system.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ConnStats {
    /// Connections accepted since start.
    pub accepted: u64,
    /// Connections open now.
    pub open: u64,
    /// Requests received (the stats path excluded).
    pub requests: u64,
    /// Tokens billed in the answers, as the clients should have recorded them.
    pub tokens: TokenSums,
}

/// A running sandbox. Clones share it; it stops when `stop()` is called, or (without
/// waiting) when the last clone is dropped.
#[derive(Clone)]
pub struct Sandbox {
    core: Arc<server::Core>,
    _cancel_on_drop: Arc<DropGuard>,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("ports", &self.core.ports())
            .finish()
    }
}

impl Sandbox {
    /// Binds one listener per system on `listen`: port `base_port + SystemId::index()` when
    /// `base_port` is not 0 (so a system's port does not depend on which others are served),
    /// else an ephemeral port per system; then serves. A system whose fault is `refuse` gets
    /// its port reserved but nothing listens on it. Must be called inside a tokio runtime.
    pub async fn start(
        listen: IpAddr,
        base_port: u16,
        systems: Vec<SandboxSystem>,
    ) -> std::io::Result<Sandbox> {
        Sandbox::start_with(listen, base_port, systems, Clock::instant()).await
    }

    /// [`Sandbox::start`] on `clock`: at once, or at the services' own pace.
    pub async fn start_with(
        listen: IpAddr,
        base_port: u16,
        systems: Vec<SandboxSystem>,
        clock: Clock,
    ) -> std::io::Result<Sandbox> {
        let core = server::Core::start(listen, base_port, systems, clock)?;
        Ok(Sandbox::serving(core))
    }

    /// The handle on a started core: the last one dropped cancels it.
    fn serving(core: Arc<server::Core>) -> Sandbox {
        let guard = Arc::new(core.cancel_on_drop());
        Sandbox {
            core,
            _cancel_on_drop: guard,
        }
    }

    /// [`Sandbox::start_with`] on a thread and runtime of its own, as a remote service
    /// would be: its server tasks never wait in the caller's run queue, nor the caller's
    /// in its (on two cores, each client close used to queue a server task in front of
    /// the next close; BENCHMARKS.md, issue #26). The thread ends once the sandbox is
    /// stopped or its last handle dropped, after its connections have ended.
    pub async fn start_apart(
        listen: IpAddr,
        base_port: u16,
        systems: Vec<SandboxSystem>,
        clock: Clock,
    ) -> std::io::Result<Sandbox> {
        let (started, core) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("sandbox".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = started.send(Err(e));
                        return;
                    }
                };
                // Started inside the runtime, so that its tasks are spawned on it.
                let core = {
                    let _inside = rt.enter();
                    server::Core::start(listen, base_port, systems, clock)
                };
                let Ok(core) = core else {
                    let _ = started.send(core);
                    return;
                };
                if started.send(Ok(Arc::clone(&core))).is_err() {
                    core.cancel_now();
                }
                rt.block_on(core.serve_until_stopped());
            })?;
        let core = core
            .await
            .map_err(|_| std::io::Error::other("the sandbox's thread ended before it started"))??;
        Ok(Sandbox::serving(core))
    }

    /// The base URL a client uses for that system, shaped like the real service's:
    /// `http://127.0.0.1:PORT/v1` for OpenAI-compatible protocols, `http://127.0.0.1:PORT`
    /// otherwise. A wildcard listen address gives a loopback URL.
    pub fn base_url(&self, id: SystemId) -> Option<url::Url> {
        self.core.base_url(id)
    }

    /// Local ports of every listener (also the local port of every server-side connection),
    /// in start order; includes ports of systems that currently refuse.
    pub fn ports(&self) -> Vec<u16> {
        self.core.ports()
    }

    /// Requests seen by a system's listener, oldest first (the last 256), stats path excluded.
    pub fn requests(&self, id: SystemId) -> Vec<RecordedRequest> {
        self.core.requests(id)
    }

    /// Changes or clears a system's fault while running; applies to requests that arrive
    /// afterwards. Switching to `refuse` stops listening at once and closes that system's
    /// open connections; switching away from it listens again on the same port.
    pub fn set_fault(&self, id: SystemId, fault: Option<Fault>) {
        self.core.set_fault(id, fault);
    }

    /// Connection counters per system, in start order.
    pub fn stats(&self) -> Vec<(SystemId, ConnStats)> {
        self.core.stats()
    }

    /// Stops everything: closes the listeners, ends every connection (hung and dripping
    /// ones included) and returns once every task has ended; the ports refuse afterwards.
    pub async fn stop(self) {
        self.core.stop().await;
    }
}
