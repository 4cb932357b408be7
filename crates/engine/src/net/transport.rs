//! Each system's HTTP transport: hyper's pooled client over a connector of our own, so every
//! connection is a stream we own. Why not reqwest's connector: its `Conn` is sealed, so a
//! layer can neither wrap the stream nor see it close. Here the stream that owns a
//! connection's fd also holds:
//! - its [`ConnectionRecord`]: the ledger learns of the close when the fd is gone;
//! - its pool permit: the pool limit is a semaphore, freed the moment the connection drops,
//!   so a waiting connect is admitted at once (no polling, no socket table needed).
//!
//! reqwest still builds the requests (`json`, `query`, headers) and reads the answers
//! (`bytes_stream`, `json`): the clients keep its API.
//!
//! Why a limit at connect as well as the request semaphore: hyper hands a finished
//! connection back to the pool from a task of its own, and a request starting in that moment
//! races a fresh connect against the pool checkout. On loopback the connect wins, so without
//! a limit a busy system opens ten times its pool. With it, the connect waits for a permit;
//! the returning connection wins the checkout, and the connect, now in the background, gives
//! up when the system closes.

use super::sockets::{ConnectionRecord, SocketLedger};
use crate::error::{ClientError, ConnectError};
use bytes::Bytes;
use futures::future::BoxFuture;
use http::Uri;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::io;
use std::pin::Pin;
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

const USER_AGENT: &str = concat!("singularis-tui/", env!("CARGO_PKG_VERSION"));
/// Idle pooled connections close after this.
const POOL_IDLE: Duration = Duration::from_secs(90);

/// `host`, or `host:port` when the port is not the scheme's default: how a person names a
/// server. IPv6 literals get their brackets back.
pub fn authority(uri: &Uri) -> String {
    let host = uri.host().unwrap_or("?");
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let host = if bare.contains(':') {
        format!("[{bare}]")
    } else {
        bare.to_string()
    };
    match uri.port_u16() {
        Some(port) if port != default_port(uri) => format!("{host}:{port}"),
        _ => host,
    }
}

fn default_port(uri: &Uri) -> u16 {
    if uri.scheme_str() == Some("https") {
        443
    } else {
        80
    }
}

/// A connection's stream: the fd, then what must outlive it. Fields drop in order, so the
/// fd is closed before the ledger hears of it and before the permit admits another.
pub struct TrackedStream {
    io: TokioIo<TcpStream>,
    _record: ConnectionRecord,
    _permit: OwnedSemaphorePermit,
}

impl Read for TrackedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl Write for TrackedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

impl Connection for TrackedStream {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

/// Makes a system's connections: waits for a pool permit, resolves, connects within the
/// connect timeout, and records the stream in the ledger.
#[derive(Clone)]
pub struct Connector {
    ledger: Arc<SocketLedger>,
    permits: Arc<Semaphore>,
    /// The pool generation's stop: a waiting connect gives up when the system closes, so no
    /// connection opens after its pool is gone.
    stop: CancellationToken,
    connect_timeout: Duration,
}

impl tower::Service<Uri> for Connector {
    type Response = TrackedStream;
    type Error = ConnectError;
    type Future = BoxFuture<'static, Result<TrackedStream, ConnectError>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), ConnectError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let me = self.clone();
        Box::pin(async move {
            let stop = me.stop.clone();
            tokio::select! {
                r = me.connect(uri) => r,
                _ = stop.cancelled() => Err(ConnectError::Closing),
            }
        })
    }
}

impl Connector {
    async fn connect(self, uri: Uri) -> Result<TrackedStream, ConnectError> {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| ConnectError::Closing)?;
        let to = authority(&uri);
        let host = uri
            .host()
            .map(|h| h.trim_start_matches('[').trim_end_matches(']').to_string())
            .ok_or_else(|| ConnectError::Other {
                to: to.clone(),
                cause: io::Error::new(io::ErrorKind::InvalidInput, "URL without a host"),
            })?;
        let port = uri.port_u16().unwrap_or(default_port(&uri));
        let deadline = tokio::time::Instant::now() + self.connect_timeout;
        let after_ms = self.connect_timeout.as_millis();
        let lookup =
            tokio::time::timeout_at(deadline, tokio::net::lookup_host((host.clone(), port))).await;
        let addrs: Vec<_> = match lookup {
            Err(_) => return Err(ConnectError::DnsTimedOut { host, after_ms }),
            Ok(Err(cause)) => return Err(ConnectError::Dns { host, cause }),
            Ok(Ok(a)) => a.collect(),
        };
        let mut last = None;
        for addr in addrs {
            match tokio::time::timeout_at(deadline, TcpStream::connect(addr)).await {
                Err(_) => return Err(ConnectError::TimedOut { to, after_ms }),
                Ok(Ok(stream)) => {
                    let other = |cause| ConnectError::Other {
                        to: to.clone(),
                        cause,
                    };
                    stream.set_nodelay(true).map_err(other)?;
                    let record = self.ledger.record(
                        std::os::fd::AsRawFd::as_raw_fd(&stream),
                        stream.local_addr().map_err(other)?,
                        stream.peer_addr().map_err(other)?,
                    );
                    return Ok(TrackedStream {
                        io: TokioIo::new(stream),
                        _record: record,
                        _permit: permit,
                    });
                }
                // Named as configured (`localhost:9`), not by the address tried: that is
                // the name a person can find in their config.
                Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused => {
                    last = Some(ConnectError::Refused { to: to.clone() });
                }
                Ok(Err(cause)) => {
                    last = Some(ConnectError::Other {
                        to: to.clone(),
                        cause,
                    });
                }
            }
        }
        Err(last.unwrap_or_else(|| ConnectError::Dns {
            host,
            cause: io::Error::new(io::ErrorKind::NotFound, "no address"),
        }))
    }
}

type Pool = Client<hyper_rustls::HttpsConnector<Connector>, reqwest::Body>;

/// One pool generation of a system: where its requests go out.
#[derive(Clone)]
pub struct HttpClient {
    pool: Option<Pool>,
    timeout: Duration,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("pooled", &self.pool.is_some())
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Builds requests only; it never sends one, so it never opens a socket.
static BUILDER: LazyLock<reqwest::Client> = LazyLock::new(|| {
    install_crypto_provider();
    reqwest::Client::new()
});

/// Make ring the process's TLS provider, for every client that asks rustls for the default
/// (reqwest's, the trace exporter's). Call it before building one; a second call is a no-op.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The TLS settings of every pool: the platform's verifier, HTTP/2 or HTTP/1.1 by ALPN.
/// Built once per process and cloned into each pool (its parts are shared `Arc`s), so the
/// verifier and its root store are made once, and dropping a pool at a close frees none of
/// them: that free was a large part of an idle close's work (BENCHMARKS.md, "Where the
/// milliseconds go").
static TLS: LazyLock<Result<rustls::ClientConfig, String>> = LazyLock::new(|| {
    use rustls_platform_verifier::BuilderVerifierExt;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_platform_verifier())
        .map_err(|e| e.to_string())?;
    Ok(config.with_no_client_auth())
});

/// What a system's pool is made with.
pub struct PoolSettings {
    pub ledger: Arc<SocketLedger>,
    pub permits: Arc<Semaphore>,
    pub stop: CancellationToken,
    pub connect_timeout: Duration,
    pub timeout: Duration,
    pub max_idle_per_host: usize,
}

impl HttpClient {
    pub fn new(s: PoolSettings) -> Result<HttpClient, String> {
        let tls = TLS.clone().map_err(|e| format!("TLS setup: {e}"))?;
        let connector = Connector {
            ledger: s.ledger,
            permits: s.permits,
            stop: s.stop,
            connect_timeout: s.connect_timeout,
        };
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(connector);
        let pool = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE)
            .pool_max_idle_per_host(s.max_idle_per_host)
            .pool_timer(hyper_util::rt::TokioTimer::new())
            .build(https);
        Ok(HttpClient {
            pool: Some(pool),
            timeout: s.timeout,
        })
    }

    /// A client for a system with no wire of its own (moe): it builds, never sends.
    pub fn unconnected() -> HttpClient {
        HttpClient {
            pool: None,
            timeout: Duration::ZERO,
        }
    }

    pub fn post(&self, url: url::Url) -> reqwest::RequestBuilder {
        BUILDER.post(url)
    }

    pub fn get(&self, url: url::Url) -> reqwest::RequestBuilder {
        BUILDER.get(url)
    }

    /// Send on this pool. The whole exchange, body included, is bounded by the system's
    /// `timeout_ms`.
    pub async fn send(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ClientError> {
        self.send_with(req, None).await
    }

    /// [`HttpClient::send`], recording the exchange when `recorder` is given.
    pub async fn send_with(
        &self,
        req: reqwest::RequestBuilder,
        recorder: Option<&Arc<crate::net::record::Recorder>>,
    ) -> Result<reqwest::Response, ClientError> {
        let Some(pool) = &self.pool else {
            return Err(ClientError::Unavailable("no connection pool".into()));
        };
        let req = req.build().map_err(|e| {
            ClientError::Protocol(format!("building the request: {}", e.without_url()))
        })?;
        let mut req: http::Request<reqwest::Body> = req
            .try_into()
            .map_err(|e: reqwest::Error| ClientError::Protocol(e.without_url().to_string()))?;
        req.headers_mut()
            .entry(http::header::USER_AGENT)
            .or_insert(http::HeaderValue::from_static(USER_AGENT));
        let to = authority(req.uri());
        let pending = recorder.map(|r| {
            let path = req
                .uri()
                .path_and_query()
                .map_or_else(|| req.uri().path().to_string(), |p| p.to_string());
            let body = req.body().as_bytes().unwrap_or_default();
            r.begin(req.method().as_str(), &path, body)
        });
        let deadline = tokio::time::Instant::now() + self.timeout;
        let resp = match tokio::time::timeout_at(deadline, pool.request(req)).await {
            Err(_) => {
                if let Some(p) = pending {
                    p.failed("timed out");
                }
                return Err(ClientError::Timeout);
            }
            Ok(Err(e)) => {
                let e = ClientError::from_transport(&e, &to);
                if let Some(p) = pending {
                    p.failed(&e.to_string());
                }
                return Err(e);
            }
            Ok(Ok(r)) => r,
        };
        let tap = pending.map(|p| p.answered(resp.status().as_u16(), resp.headers()));
        Ok(reqwest::Response::from(resp.map(|body| {
            let body = Deadline {
                body,
                at: Box::pin(tokio::time::sleep_until(deadline)),
            };
            match tap {
                Some(tap) => reqwest::Body::wrap(crate::net::record::Recorded { body, tap }),
                None => reqwest::Body::wrap(body),
            }
        })))
    }
}

/// A response body that fails once the request's deadline passes.
struct Deadline<B> {
    body: B,
    at: Pin<Box<tokio::time::Sleep>>,
}

impl<B> http_body::Body for Deadline<B>
where
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        if self.at.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(Box::new(io::Error::new(
                io::ErrorKind::TimedOut,
                "timed out reading the answer",
            )))));
        }
        Pin::new(&mut self.body)
            .poll_frame(cx)
            .map(|f| f.map(|r| r.map_err(Into::into)))
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_authority_is_how_a_person_names_a_server() {
        let uri = |s: &str| s.parse::<http::Uri>().unwrap();
        assert_eq!(
            authority(&uri("https://api.anthropic.com/v1")),
            "api.anthropic.com"
        );
        assert_eq!(
            authority(&uri("https://api.anthropic.com:443/")),
            "api.anthropic.com"
        );
        assert_eq!(authority(&uri("http://127.0.0.1:9/v1")), "127.0.0.1:9");
        assert_eq!(authority(&uri("http://[::1]:8080/")), "[::1]:8080");
        assert_eq!(
            authority(&uri("https://example.com/v1/models?key=secret")),
            "example.com",
            "never the query"
        );
    }

    fn connector(limit: usize) -> Connector {
        Connector {
            ledger: Arc::new(SocketLedger::default()),
            permits: Arc::new(Semaphore::new(limit)),
            stop: CancellationToken::new(),
            connect_timeout: Duration::from_secs(5),
        }
    }

    /// The pool limit is the permit: a second connect waits while the first connection
    /// lives, and is admitted when it drops (no table, no poll).
    #[tokio::test]
    async fn a_waiting_connect_is_admitted_when_a_connection_drops() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let uri: Uri = format!("http://{}/", listener.local_addr().unwrap())
            .parse()
            .unwrap();
        let accept = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = listener.accept().await {
                held.push(s);
            }
        });
        let c = connector(1);
        let first = c.clone().connect(uri.clone()).await.unwrap();
        assert_eq!(c.permits.available_permits(), 0);
        let mut second = tokio::spawn(c.clone().connect(uri.clone()));
        // Long enough for an ungated loopback connect many times over.
        let waited = tokio::time::timeout(Duration::from_millis(200), &mut second).await;
        assert!(
            waited.is_err(),
            "a second connection opened past the limit of 1"
        );
        assert_eq!(c.ledger.open_count(), 1);
        drop(first);
        let second = tokio::time::timeout(Duration::from_secs(10), second)
            .await
            .expect("the waiter was never admitted")
            .unwrap()
            .unwrap();
        assert_eq!(
            c.ledger.open_count(),
            1,
            "the first one's record went with it"
        );
        drop(second);
        assert_eq!(c.permits.available_permits(), 1);
        accept.abort();
    }

    /// A connect waiting for a permit gives up when its pool generation stops, so nothing
    /// opens after the pool is gone.
    #[tokio::test]
    async fn a_waiting_connect_gives_up_when_the_pool_stops() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let uri: Uri = format!("http://{}/", listener.local_addr().unwrap())
            .parse()
            .unwrap();
        let mut c = connector(1);
        let _first = c.clone().connect(uri.clone()).await.unwrap();
        let waiter = tower::Service::call(&mut c, uri);
        c.stop.cancel();
        assert!(matches!(waiter.await, Err(ConnectError::Closing)));
        assert_eq!(c.ledger.open_count(), 1);
    }
}
