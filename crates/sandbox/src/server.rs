//! Listeners, connections and faults: one accept loop per system, one tracked task per
//! connection (hyper HTTP/1), every task cancellable so that `stop()` ends them all.

use super::catalog::{Service, ServiceHeaders};
use super::clock::{self, Clock};
use super::meter::Meter;
use super::wire::{self, Ctx, Req};
use super::{ConnStats, Fault, RecordedRequest, SandboxSystem, anthropic, gemini, openai, wolfram};
use axum::body::Body;
use http::{HeaderValue, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::json;
use singularis_engine::systems::{Protocol, SystemId};
use std::collections::VecDeque;
use std::convert::Infallible;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

/// Answered on every listener, for every system, whatever the faults; also under the
/// base path (`/v1/_sandbox/stats`), for clients that join paths to their base URL.
const STATS_PATH: &str = "/_sandbox/stats";
/// Big enough for a base64 video frame.
const MAX_BODY: usize = 64 << 20;
const MAX_RECORDED: usize = 256;
const RETRY_BIND: Duration = Duration::from_millis(50);

pub(crate) struct Core {
    ip: IpAddr,
    rt: Handle,
    root: CancellationToken,
    tracker: TaskTracker,
    slots: Vec<Arc<Slot>>,
    /// Request serial, for unique response ids.
    serial: AtomicU64,
    clock: Clock,
    /// `timing = "replay:DIR"`: the recording served back.
    replay: Option<super::replay::Replay>,
}

/// One system: its port (fixed for the sandbox's life), fault, listener and counters.
struct Slot {
    id: SystemId,
    protocol: Protocol,
    service: Service,
    model: String,
    meter: Meter,
    port: u16,
    state: Mutex<SlotState>,
    accepted: AtomicU64,
    open: AtomicU64,
    requests: AtomicU64,
    log: Mutex<VecDeque<RecordedRequest>>,
}

struct SlotState {
    fault: Option<Fault>,
    /// None while the system refuses (or its port could not be bound again yet).
    live: Option<Live>,
}

/// A listening socket and the token that ends its accept loop and its connections.
struct Live {
    token: CancellationToken,
    listener: Arc<TcpListener>,
}

impl Live {
    /// The token first: the accept loop, woken by the listener's shutdown, must find it
    /// cancelled (the other order logged every stop as a failed accept, EINVAL).
    fn close(self) {
        self.token.cancel();
        stop_listening(&self.listener);
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not take the sandbox down with it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Slot {
    fn fault(&self) -> Option<Fault> {
        lock(&self.state).fault
    }

    fn stats(&self) -> ConnStats {
        ConnStats {
            accepted: self.accepted.load(Relaxed),
            open: self.open.load(Relaxed),
            requests: self.requests.load(Relaxed),
            tokens: self.meter.sums(),
        }
    }

    fn record(&self, r: RecordedRequest) {
        let mut log = lock(&self.log);
        if log.len() == MAX_RECORDED {
            log.pop_front();
        }
        log.push_back(r);
    }
}

impl Core {
    pub(crate) fn start(
        ip: IpAddr,
        base_port: u16,
        systems: Vec<SandboxSystem>,
        clock: Clock,
    ) -> io::Result<Arc<Core>> {
        let rt = Handle::try_current().map_err(io::Error::other)?;
        let replay = match &clock.timing {
            clock::Timing::Replay(dir) => Some(super::replay::Replay::new(
                singularis_engine::net::record::Recording::load(dir)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?,
            )),
            _ => None,
        };
        let mut slots = Vec::with_capacity(systems.len());
        let mut listeners = Vec::with_capacity(systems.len());
        for s in systems {
            if slots.iter().any(|x: &Arc<Slot>| x.id == s.id) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("sandbox: {} listed twice", s.id),
                ));
            }
            let port = match base_port {
                0 => 0,
                base => u16::try_from(s.id.index())
                    .ok()
                    .and_then(|i| base.checked_add(i))
                    .ok_or_else(|| {
                        io::Error::new(
                            io::ErrorKind::InvalidInput,
                            format!("sandbox: base port {base} too high"),
                        )
                    })?,
            };
            let listener = std::net::TcpListener::bind((ip, port)).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("sandbox: cannot listen for {} on {ip}:{port}: {e}", s.id),
                )
            })?;
            let port = listener.local_addr()?.port();
            slots.push(Arc::new(Slot {
                id: s.id,
                protocol: s.protocol,
                service: s.service,
                model: s.model,
                meter: Meter::default(),
                port,
                state: Mutex::new(SlotState {
                    fault: s.fault,
                    live: None,
                }),
                accepted: AtomicU64::new(0),
                open: AtomicU64::new(0),
                requests: AtomicU64::new(0),
                log: Mutex::new(VecDeque::new()),
            }));
            listeners.push(listener);
        }
        let core = Arc::new(Core {
            ip,
            rt,
            root: CancellationToken::new(),
            tracker: TaskTracker::new(),
            slots,
            serial: AtomicU64::new(0),
            clock,
            replay,
        });
        for (slot, listener) in core.slots.iter().zip(listeners) {
            let mut st = lock(&slot.state);
            if st.fault == Some(Fault::Refuse) {
                // The port stays reserved by number only: nothing listens on it.
                continue;
            }
            match core.listen(slot, listener) {
                Ok(live) => st.live = Some(live),
                Err(e) => {
                    core.root.cancel();
                    return Err(e);
                }
            }
        }
        for slot in &core.slots {
            info!(system = %slot.id, port = slot.port, fault = slot.fault().map(tracing::field::display), "sandbox listening");
        }
        Ok(core)
    }

    fn slot(&self, id: SystemId) -> Option<&Arc<Slot>> {
        self.slots.iter().find(|s| s.id == id)
    }

    fn listen(self: &Arc<Self>, slot: &Arc<Slot>, std: std::net::TcpListener) -> io::Result<Live> {
        std.set_nonblocking(true)?;
        let _rt = self.rt.enter();
        let listener = Arc::new(TcpListener::from_std(std)?);
        let token = self.root.child_token();
        let task = accept_loop(
            Arc::clone(self),
            Arc::clone(slot),
            Arc::clone(&listener),
            token.clone(),
        );
        self.tracker.spawn_on(task, &self.rt);
        Ok(Live { token, listener })
    }

    fn bind(self: &Arc<Self>, slot: &Arc<Slot>) -> io::Result<Live> {
        let std = std::net::TcpListener::bind((self.ip, slot.port))?;
        self.listen(slot, std)
    }

    pub(crate) fn set_fault(self: &Arc<Self>, id: SystemId, fault: Option<Fault>) {
        let Some(slot) = self.slot(id) else {
            warn!(system = %id, "sandbox: set_fault for a system it does not serve");
            return;
        };
        let mut st = lock(&slot.state);
        st.fault = fault;
        info!(
            system = %id,
            fault = %fault.map_or_else(|| "none".to_string(), |f| f.to_string()),
            "sandbox fault changed"
        );
        if fault == Some(Fault::Refuse) {
            // The service goes away: listener and existing connections alike.
            if let Some(live) = st.live.take() {
                live.close();
            }
        } else if st.live.is_none() && !self.root.is_cancelled() {
            match self.bind(slot) {
                Ok(live) => st.live = Some(live),
                Err(e) => {
                    warn!(system = %id, port = slot.port, error = %e, "sandbox: cannot listen again yet; retrying");
                    self.retry_bind(Arc::clone(slot));
                }
            }
        }
    }

    /// Keeps trying to listen on a slot's port until it works, the slot refuses again or
    /// the sandbox stops.
    fn retry_bind(self: &Arc<Self>, slot: Arc<Slot>) {
        let core = Arc::clone(self);
        let task = async move {
            loop {
                tokio::select! {
                    biased;
                    () = core.root.cancelled() => return,
                    () = tokio::time::sleep(RETRY_BIND) => {}
                }
                let mut st = lock(&slot.state);
                if st.fault == Some(Fault::Refuse) || st.live.is_some() {
                    return;
                }
                if let Ok(live) = core.bind(&slot) {
                    st.live = Some(live);
                    info!(system = %slot.id, port = slot.port, "sandbox listening again");
                    return;
                }
            }
        };
        self.tracker.spawn_on(task, &self.rt);
    }

    pub(crate) fn base_url(&self, id: SystemId) -> Option<url::Url> {
        let slot = self.slot(id)?;
        // A wildcard listen address is reached through loopback.
        let host = match self.ip {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        let addr = SocketAddr::new(host, slot.port);
        url::Url::parse(&format!(
            "http://{addr}{}",
            slot.protocol.sandbox_base_path()
        ))
        .ok()
    }

    pub(crate) fn ports(&self) -> Vec<u16> {
        self.slots.iter().map(|s| s.port).collect()
    }

    pub(crate) fn requests(&self, id: SystemId) -> Vec<RecordedRequest> {
        self.slot(id)
            .map(|s| lock(&s.log).iter().cloned().collect())
            .unwrap_or_default()
    }

    pub(crate) fn stats(&self) -> Vec<(SystemId, ConnStats)> {
        self.slots.iter().map(|s| (s.id, s.stats())).collect()
    }

    /// Cancels every task when dropped: the last `Sandbox` handle holds it.
    pub(crate) fn cancel_on_drop(&self) -> tokio_util::sync::DropGuard {
        self.root.clone().drop_guard()
    }

    /// Ends every task now (a start whose caller has gone).
    pub(crate) fn cancel_now(&self) {
        self.root.cancel();
    }

    /// On a runtime of the sandbox's own: serve until stopped (or the last handle goes),
    /// then let the connections' tasks see the cancel and end before the runtime drops
    /// them.
    pub(crate) async fn serve_until_stopped(&self) {
        self.root.cancelled().await;
        self.tracker.close();
        self.tracker.wait().await;
    }

    pub(crate) async fn stop(&self) {
        for slot in &self.slots {
            let live = lock(&slot.state).live.take();
            if let Some(live) = live {
                live.close();
            }
        }
        self.root.cancel();
        self.tracker.close();
        self.tracker.wait().await;
        info!("sandbox stopped");
    }

    /// `GET /_sandbox/stats`: every system's counters. `queried_via` names the system whose
    /// listener answered, since the asking connection is itself open there.
    fn stats_response(&self, via: SystemId) -> Response<Body> {
        let systems: serde_json::Map<String, serde_json::Value> = self
            .slots
            .iter()
            .map(|s| {
                let c = s.stats();
                (
                    s.id.name().to_string(),
                    json!({ "accepted": c.accepted, "open": c.open, "requests": c.requests, "tokens": c.tokens }),
                )
            })
            .collect();
        wire::json(
            StatusCode::OK,
            &json!({ "systems": systems, "queried_via": via.name() }),
        )
    }
}

/// Takes the socket out of LISTEN at once (Linux), so that connects are refused from the
/// moment `set_fault` returns and the port can be bound again right away (std sets
/// SO_REUSEADDR), even before the accept task has dropped the listener.
#[cfg(target_os = "linux")]
fn stop_listening(listener: &TcpListener) {
    use std::os::fd::AsRawFd;
    // SAFETY: `listener` owns the descriptor and is alive for this call; shutdown(2) only
    // changes the socket's state and does not close the descriptor.
    let rc = unsafe { libc::shutdown(listener.as_raw_fd(), libc::SHUT_RDWR) };
    if rc != 0 {
        debug!(error = %io::Error::last_os_error(), "shutdown of a listening socket failed");
    }
}

#[cfg(not(target_os = "linux"))]
fn stop_listening(_listener: &TcpListener) {}

/// Decrements a slot's open-connection count however the connection task ends.
struct OpenGuard(Arc<Slot>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Relaxed);
    }
}

/// What one accept gave.
#[derive(Debug)]
enum Accepted {
    Conn(TcpStream, SocketAddr),
    /// The listener's end: its token cancelled, or the socket shut down under it
    /// ([`stop_listening`]: accept then fails with EINVAL). Not a failure.
    End,
    /// A real failure (out of descriptors, a connection aborted before it was taken).
    Failed(io::Error),
}

async fn accept(listener: &TcpListener, token: &CancellationToken) -> Accepted {
    let accepted = tokio::select! {
        biased;
        () = token.cancelled() => return Accepted::End,
        r = listener.accept() => r,
    };
    match accepted {
        Ok((stream, peer)) => Accepted::Conn(stream, peer),
        Err(_) if token.is_cancelled() => Accepted::End,
        // Only a socket that is not listening answers EINVAL, and only `stop_listening`
        // takes ours out of LISTEN.
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            debug!(error = %e, "sandbox listener shut down");
            Accepted::End
        }
        Err(e) => Accepted::Failed(e),
    }
}

async fn accept_loop(
    core: Arc<Core>,
    slot: Arc<Slot>,
    listener: Arc<TcpListener>,
    token: CancellationToken,
) {
    loop {
        match accept(&listener, &token).await {
            Accepted::End => break,
            Accepted::Conn(stream, peer) => {
                slot.accepted.fetch_add(1, Relaxed);
                slot.open.fetch_add(1, Relaxed);
                let guard = OpenGuard(Arc::clone(&slot));
                debug!(system = %slot.id, %peer, "sandbox connection accepted");
                let task = serve(
                    Arc::clone(&core),
                    Arc::clone(&slot),
                    stream,
                    token.clone(),
                    guard,
                );
                core.tracker.spawn_on(task, &core.rt);
            }
            Accepted::Failed(e) => {
                // Out of descriptors and the like: back off instead of spinning.
                warn!(system = %slot.id, error = %e, "sandbox accept failed");
                tokio::select! {
                    () = token.cancelled() => break,
                    () = tokio::time::sleep(RETRY_BIND) => {}
                }
            }
        }
    }
    debug!(system = %slot.id, "sandbox listener closed");
}

/// One connection: hyper HTTP/1 until the client leaves or the token is cancelled, which
/// drops the connection (and whatever response it was hanging or dripping).
async fn serve(
    core: Arc<Core>,
    slot: Arc<Slot>,
    stream: TcpStream,
    token: CancellationToken,
    _open: OpenGuard,
) {
    // Streamed chunks go out as they are produced.
    let _ = stream.set_nodelay(true);
    let id = slot.id;
    let slot_for_close = Arc::clone(&slot);
    let svc =
        hyper::service::service_fn(move |req| handle(Arc::clone(&core), Arc::clone(&slot), req));
    let stream = Conn {
        io: stream,
        slot: Arc::clone(&slot_for_close),
    };
    let conn =
        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc);
    tokio::select! {
        biased;
        () = token.cancelled() => debug!(system = %id, "sandbox connection closed by the sandbox"),
        r = conn => match r {
            Ok(()) => debug!(system = %id, "sandbox connection closed"),
            Err(e) => debug!(system = %id, error = %e, "sandbox connection ended"),
        },
    }
}

/// A served connection. While its system's fault is `reset`, its close is a TCP reset
/// (`SO_LINGER` 0: RST, not FIN), as when a service's process dies mid-answer: the client
/// reads ECONNRESET, not a clean end of stream.
struct Conn {
    io: TcpStream,
    slot: Arc<Slot>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        if self.slot.fault() == Some(Fault::Reset) {
            // Zero linger never blocks the drop; a failure only means a FIN instead.
            let _ = self.io.set_zero_linger();
        }
    }
}

impl tokio::io::AsyncRead for Conn {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Conn {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<io::Result<usize>> {
        std::pin::Pin::new(&mut self.io).poll_write(cx, buf)
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

async fn handle(
    core: Arc<Core>,
    slot: Arc<Slot>,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path();
    if path == STATS_PATH
        || path.strip_prefix(slot.protocol.sandbox_base_path()) == Some(STATS_PATH)
    {
        return Ok(core.stats_response(slot.id));
    }
    let fault = slot.fault();
    let nth = slot.requests.load(Relaxed);
    let ctx = Ctx {
        id: slot.id,
        protocol: slot.protocol,
        service: slot.service,
        model: &slot.model,
        serial: core.serial.fetch_add(1, Relaxed),
        meter: &slot.meter,
        truncate: fault == Some(Fault::Truncate),
        spent: Default::default(),
    };
    let (parts, body) = req.into_parts();
    // The whole body first: recording needs it, and `hang` means "read, never answer".
    let body = match axum::body::to_bytes(Body::new(body), MAX_BODY).await {
        Ok(b) => b,
        Err(e) => {
            debug!(system = %slot.id, error = %e, "sandbox could not read a request body");
            return Ok(fault_error(&ctx, StatusCode::PAYLOAD_TOO_LARGE));
        }
    };
    slot.requests.fetch_add(1, Relaxed);
    slot.record(RecordedRequest {
        method: parts.method.to_string(),
        path_and_query: parts
            .uri
            .path_and_query()
            .map_or_else(|| parts.uri.path().to_string(), |p| p.to_string()),
        headers: parts.headers.clone(),
        body: body.clone(),
    });
    let path_and_query = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path().to_string(), |p| p.to_string());
    let req = Req {
        method: parts.method,
        path: parts.uri.path().to_string(),
        query: parts.uri.query().map(str::to_string),
        headers: parts.headers,
        body,
    };
    // A replay answers from the recording (a fault, when one is set, still wins).
    if let (Some(replay), None) = (&core.replay, fault) {
        let since = tokio::time::Instant::now();
        return Ok(match replay.serve(slot.id.name(), &req, &path_and_query) {
            super::replay::Served::Answer(ex) => super::replay::answer(*ex, since).await,
            super::replay::Served::Mismatch(r) => r,
            super::replay::Served::NoAnswer => {
                wire::reset_midway(wire::json(StatusCode::OK, &json!({})))
            }
        });
    }
    debug!(system = %slot.id, request = %req.describe(), fault = fault.map(tracing::field::display), "sandbox request");
    let mut response = match fault {
        None | Some(Fault::Truncate) => admitted(&ctx, &req),
        Some(Fault::Slow(delay)) => {
            // A service that answers in `delay`, on time (tokio's millisecond timer alone adds
            // up to a tick). The answer is made after the wait, so a client that gives up
            // first (the wait is dropped with its connection) is never metered for it.
            singularis_engine::sync::sleep_until_precisely(tokio::time::Instant::now() + delay)
                .await;
            admitted(&ctx, &req)
        }
        Some(Fault::Hang) => std::future::pending().await,
        Some(Fault::Error(code)) => fault_error(
            &ctx,
            StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        ),
        Some(Fault::RateLimit(secs)) => rate_limited(&ctx, Duration::from_secs(secs)),
        Some(Fault::Overloaded) => overloaded(&ctx),
        Some(Fault::Drip) => drip(&ctx, &req),
        // Refuse only reaches here in the instant before its listener closes.
        Some(Fault::Reset | Fault::Refuse) => wire::reset_midway(respond(&ctx, &req)),
    };
    if slot.service.rate_limit_headers() {
        slot.meter.decorate(slot.service, &mut response);
    }
    identify(&ctx, &mut response);
    // On the live clock the answer takes the model's time, counted from here (a `slow`
    // fault's delay comes on top); `hang` and `drip` never get here or pace themselves.
    // Only then is the request's model read (its body parsed once more).
    if core.clock.timing.is_live() {
        let model = req.model().unwrap_or_else(|| slot.model.clone());
        let profile = clock::profile(slot.service, &model);
        if let Some(plan) = core.clock.plan(profile, ctx.spent(), slot.id.index(), nth) {
            response = clock::keep(response, plan, tokio::time::Instant::now()).await;
        }
    }
    Ok(response)
}

/// What OpenAI and Anthropic put on every answer: a request id (`x-request-id` /
/// `request-id`, which their SDKs keep as `_request_id`), and on an error whether to try
/// again (`x-should-retry`), here said as their SDKs would judge the status (408, 409, 429
/// and 5xx are worth it).
fn identify(ctx: &Ctx, r: &mut Response<Body>) {
    let name = match ctx.service {
        Service::OpenAi => "x-request-id",
        Service::Anthropic => "request-id",
        _ => return,
    };
    if let Ok(v) = HeaderValue::from_str(&format!("req_{}", ctx.tag())) {
        r.headers_mut().insert(name, v);
    }
    let status = r.status().as_u16();
    if status >= 400 {
        let again = matches!(status, 408 | 409 | 429) || status >= 500;
        r.headers_mut().insert(
            "x-should-retry",
            HeaderValue::from_static(if again { "true" } else { "false" }),
        );
    }
}

/// The answer, unless this minute's rate limit is spent.
fn admitted(ctx: &Ctx, req: &Req) -> Response<Body> {
    match ctx.meter.admit() {
        Ok(()) => respond(ctx, req),
        Err(wait) => rate_limited(ctx, wait),
    }
}

/// 429 with the service's error JSON and `retry-after` (OpenAI adds `retry-after-ms`).
fn rate_limited(ctx: &Ctx, wait: Duration) -> Response<Body> {
    let mut r = fault_error(ctx, StatusCode::TOO_MANY_REQUESTS);
    let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    if ctx.service == Service::OpenAi {
        r.headers_mut().insert(
            "retry-after-ms",
            HeaderValue::from(wait.as_millis().max(1) as u64),
        );
    }
    r
}

/// Each service's own "too busy": Anthropic 529, the others 503.
fn overloaded(ctx: &Ctx) -> Response<Body> {
    let status = if ctx.service == Service::Anthropic {
        529
    } else {
        503
    };
    fault_error(
        ctx,
        StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
    )
}

fn respond(ctx: &Ctx, req: &Req) -> Response<Body> {
    match ctx.protocol {
        Protocol::OpenaiChat | Protocol::OpenaiResponses | Protocol::Moe => {
            openai::respond(ctx, req)
        }
        Protocol::AnthropicMessages => anthropic::respond(ctx, req),
        Protocol::GeminiGenerate | Protocol::GeminiStream | Protocol::GeminiTts => {
            gemini::respond(ctx, req)
        }
        Protocol::WolframLlm => wolfram::respond(ctx, req),
    }
}

fn fault_error(ctx: &Ctx, status: StatusCode) -> Response<Body> {
    match ctx.protocol {
        Protocol::OpenaiChat | Protocol::OpenaiResponses | Protocol::Moe => {
            openai::fault_error(status)
        }
        Protocol::AnthropicMessages => anthropic::fault_error(ctx, status),
        Protocol::GeminiGenerate | Protocol::GeminiStream | Protocol::GeminiTts => {
            gemini::fault_error(status)
        }
        Protocol::WolframLlm => wolfram::fault_error(status),
    }
}

fn drip(ctx: &Ctx, req: &Req) -> Response<Body> {
    match ctx.protocol {
        Protocol::OpenaiChat | Protocol::OpenaiResponses | Protocol::Moe => openai::drip(ctx, req),
        Protocol::AnthropicMessages => anthropic::drip(ctx, req),
        Protocol::GeminiGenerate | Protocol::GeminiStream | Protocol::GeminiTts => {
            gemini::drip(ctx, req)
        }
        Protocol::WolframLlm => wire::drip_plain("text/plain; charset=utf-8"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sandbox stops a listener by taking it out of LISTEN (`Live::close`); an accept
    /// pending on it then fails with EINVAL. That is the listener's end, not a failure to
    /// warn about: every shutdown logged `sandbox accept failed … (os error 22)` when the
    /// accept loop woke before the token was cancelled.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn an_accept_on_a_listener_shut_down_is_its_end_not_a_failure() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        // Not cancelled: only the shutdown says that the listener ended.
        let token = CancellationToken::new();
        stop_listening(&listener);
        let got = tokio::time::timeout(Duration::from_secs(10), accept(&listener, &token))
            .await
            .expect("an accept on a shut-down listener returns");
        assert!(matches!(got, Accepted::End), "{got:?}");
    }

    /// Started apart, the sandbox serves from a runtime of its own: it answers while the
    /// caller's only worker is blocked (on the caller's runtime this request could never
    /// be served), and once stopped its port refuses.
    #[tokio::test(flavor = "current_thread")]
    async fn a_sandbox_started_apart_answers_while_its_callers_runtime_is_blocked() {
        use std::io::{Read, Write};
        let id = SystemId::WOLFRAM_ANALYZER;
        let config = singularis_engine::config::Config::default();
        let systems = vec![crate::SandboxSystem::from_config(&config, id, None)];
        let sandbox = crate::Sandbox::start_apart(
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            0,
            systems,
            Clock::instant(),
        )
        .await
        .expect("sandbox");
        let port = sandbox.ports()[0];
        // Blocking I/O on this runtime's only thread: nothing here can run the server.
        let mut conn = std::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        write!(
            conn,
            "GET {STATS_PATH} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        conn.read_to_string(&mut answer)
            .expect("the sandbox answers from its own thread");
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(
            answer.contains("\"queried_via\":\"wolfram_analyzer\""),
            "{answer}"
        );
        sandbox.stop().await;
        assert!(std::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err());
    }
}
