//! The exporter itself (the `otlp` feature).
//!
//! The OTLP exporter is wrapped twice, so that what it does is known and bounded:
//! - [`Watched`], its HTTP client: each attempt's outcome and cause ("connection refused",
//!   "HTTP 503 Service Unavailable"), which the library folds into "network error";
//! - [`Guarded`], the exporter: its retries (the library's own are off), which stop once the
//!   session is closing, and which give up at once when the collector could not be reached
//!   at all, so a dead collector does not hold the shutdown for the rest of its grace.
//!
//! Both report to a [`Health`]: spans sent and lost, the failure, a rate-limited warning.

use super::{TraceExport, var};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{RetryPolicy, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider, SpanData, SpanExporter};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};
use tracing_subscriber::registry::LookupSpan;

pub(crate) const STEP_NAME: &str = "trace exporter";

/// Retries of a failed export: 100 ms, then 200, 400 (OTLP's recommended policy), within the
/// exporter's timeout, none once the session is closing.
const FIRST_RETRY: Duration = Duration::from_millis(100);
const MAX_RETRIES: u32 = 3;
/// At most one warning per this long while exports keep failing (each says how many since).
const WARN_EVERY: Duration = Duration::from_secs(30);
/// `OTEL_EXPORTER_OTLP_TIMEOUT`'s default, as the specification sets it.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why this build cannot export traces: it can.
pub fn not_built_in() -> Option<&'static str> {
    None
}

/// The tracer [`start`] returns, for the `tracing` layer ([`layer`]).
pub type Tracer = SdkTracer;

/// The `tracing` layer that turns spans into OTLP spans, when export is on.
pub fn layer<S>(tracer: Option<Tracer>) -> Option<impl tracing_subscriber::Layer<S>>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    tracer.map(|t| tracing_opentelemetry::layer().with_tracer(t))
}

static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();
static HEALTH: OnceLock<Arc<Health>> = OnceLock::new();

/// Start exporting: the tracer for the `tracing` layer. The error names the variable at
/// fault and why.
pub fn start() -> Result<SdkTracer, String> {
    for name in [
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
    ] {
        if let Some(p) = var(name) {
            if p != "http/protobuf" {
                return Err(format!("{name}={p}: only http/protobuf is built in"));
            }
            break;
        }
    }
    let timeout = timeout();
    let health = Arc::new(Health::new(endpoint_shown()));
    let client = blocking_client(timeout)?;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(Watched {
            client,
            health: health.clone(),
        })
        .with_retry_policy(RetryPolicy::disabled())
        .build()
        .map_err(|e| format!("OTLP trace exporter: {e}"))?;
    let mut resource = Resource::builder().with_attribute(opentelemetry::KeyValue::new(
        "service.version",
        env!("CARGO_PKG_VERSION"),
    ));
    if var("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name("singularis-tui");
    }
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(Guarded {
            inner: exporter,
            health: health.clone(),
            timeout,
            first_retry: FIRST_RETRY,
        })
        .with_resource(resource.build())
        .build();
    let tracer = provider.tracer("singularis-tui");
    if PROVIDER.set(provider).is_err() || HEALTH.set(health).is_err() {
        return Err("OTLP trace export was already started".into());
    }
    Ok(tracer)
}

pub(crate) fn active() -> bool {
    PROVIDER.get().is_some()
}

/// How export has gone so far; `None` when it is off.
pub fn state() -> Option<TraceExport> {
    HEALTH.get().map(|h| h.snapshot())
}

/// Send what is buffered and stop, within `timeout`; an error when spans were lost (now or
/// earlier in the session) or the flush did not end in time. A collector that could not be
/// reached is not tried again: the flush then ends at once. Blocks: call it off the async
/// threads.
pub fn shutdown(timeout: Duration) -> Result<(), String> {
    let (Some(p), Some(health)) = (PROVIDER.get(), HEALTH.get()) else {
        return Ok(());
    };
    health.close();
    let flushed = p.shutdown_with_timeout(timeout);
    let st = health.snapshot();
    let cause = st
        .failing
        .as_deref()
        .or(st.last_error.as_deref())
        .map(|c| format!(" ({c})"))
        .unwrap_or_default();
    match flushed {
        Err(e) => Err(format!("{e}{cause}")),
        Ok(()) if st.lost_spans > 0 => Err(format!(
            "{} of {} spans not delivered to {}{cause}",
            st.lost_spans,
            st.lost_spans + st.sent_spans,
            st.endpoint
        )),
        Ok(()) => Ok(()),
    }
}

/// The exporter's timeout per export (`OTEL_EXPORTER_OTLP_TRACES_TIMEOUT`, else
/// `OTEL_EXPORTER_OTLP_TIMEOUT`, in ms), as the OTLP exporter reads it.
fn timeout() -> Duration {
    [
        "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
        "OTEL_EXPORTER_OTLP_TIMEOUT",
    ]
    .into_iter()
    .find_map(|name| var(name)?.parse().ok())
    .map(Duration::from_millis)
    .unwrap_or(DEFAULT_TIMEOUT)
}

/// Where spans go, as the OTLP exporter resolves it, without credentials or query: for the
/// warning, the dashboard and the report.
fn endpoint_shown() -> String {
    let url = match var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
        Some(u) => u,
        None => format!(
            "{}/v1/traces",
            var("OTEL_EXPORTER_OTLP_ENDPOINT")
                .unwrap_or_default()
                .trim_end_matches('/')
        ),
    };
    match url::Url::parse(&url) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.set_query(None);
            u.to_string()
        }
        Err(_) => url,
    }
}

/// The blocking client the batch processor's thread sends with, built on a thread of its
/// own (it starts a runtime, which must not be made or dropped inside another).
fn blocking_client(timeout: Duration) -> Result<reqwest::blocking::Client, String> {
    std::thread::spawn(move || {
        reqwest::blocking::Client::builder()
            .timeout(timeout)
            .build()
    })
    .join()
    .map_err(|_| "OTLP trace exporter: building its HTTP client panicked".to_string())?
    .map_err(|e| format!("OTLP trace exporter: its HTTP client: {e}"))
}

/// Why one attempt failed.
#[derive(Debug, Clone, PartialEq)]
struct Failure {
    cause: String,
    /// Worth another attempt (no answer, or 429/502/503/504, as OTLP/HTTP says).
    retry: bool,
    /// The collector could not be reached at all (refused, no route, no such host).
    unreachable: bool,
}

impl Failure {
    fn status(status: http::StatusCode) -> Failure {
        Failure {
            cause: format!(
                "HTTP {} {}",
                status.as_u16(),
                status.canonical_reason().unwrap_or("")
            )
            .trim_end()
            .to_string(),
            retry: matches!(status.as_u16(), 429 | 502 | 503 | 504),
            unreachable: false,
        }
    }

    /// An attempt that got no answer: the cause in words, from the innermost error (an I/O
    /// error's kind when there is one; never the URL).
    fn no_answer(e: &(dyn std::error::Error + 'static)) -> Failure {
        let (mut connect, mut timed_out, mut kind) = (false, false, None);
        let mut innermost = e.to_string();
        let mut next = Some(e);
        while let Some(err) = next {
            if let Some(r) = err.downcast_ref::<reqwest::Error>() {
                connect |= r.is_connect();
                timed_out |= r.is_timeout();
            } else {
                innermost = err.to_string();
            }
            if let Some(io) = err.downcast_ref::<std::io::Error>() {
                kind = Some(io.kind());
            }
            next = err.source();
        }
        use std::io::ErrorKind as K;
        let cause = match kind {
            Some(K::ConnectionRefused) => "connection refused".to_string(),
            Some(K::ConnectionReset) => "connection reset".to_string(),
            _ if timed_out => "timed out".to_string(),
            _ => innermost,
        };
        Failure {
            cause,
            retry: true,
            unreachable: connect || matches!(kind, Some(K::ConnectionRefused)),
        }
    }
}

/// What the exporter's attempts came to, shared by its thread, the session and the shutdown.
#[derive(Debug)]
pub(crate) struct Health {
    state: Mutex<State>,
    /// Wakes a retry's pause when the session starts closing.
    closing: Condvar,
}

#[derive(Debug, Default)]
struct State {
    endpoint: String,
    closing: bool,
    sent_spans: u64,
    lost_spans: u64,
    failed_attempts: u64,
    failed_exports: u64,
    /// The last attempt's failure; `None` once one succeeds.
    failing: Option<Failure>,
    /// This attempt's outcome, as the client saw it (`None`: it did not say).
    attempt: Option<Failure>,
    last_error: Option<String>,
    /// When the last warning was logged, and `failed_exports` then.
    warned: Option<(Instant, u64)>,
}

impl Health {
    fn new(endpoint: String) -> Health {
        Health {
            state: Mutex::new(State {
                endpoint,
                ..State::default()
            }),
            closing: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn snapshot(&self) -> TraceExport {
        let st = self.lock();
        TraceExport {
            endpoint: st.endpoint.clone(),
            sent_spans: st.sent_spans,
            lost_spans: st.lost_spans,
            failed_attempts: st.failed_attempts,
            failed_exports: st.failed_exports,
            failing: st.failing.as_ref().map(|f| f.cause.clone()),
            last_error: st.last_error.clone(),
        }
    }

    /// The session is closing: no more retries, and a pause in progress ends now.
    fn close(&self) {
        self.lock().closing = true;
        self.closing.notify_all();
    }

    /// The client's word on one attempt.
    fn attempted(&self, outcome: Result<(), Failure>) {
        let mut st = self.lock();
        match outcome {
            Ok(()) => {
                st.attempt = None;
                if st.failing.take().is_some() {
                    tracing::info!(endpoint = %st.endpoint, "trace export works again");
                }
            }
            Err(f) => {
                st.failed_attempts += 1;
                st.failing = Some(f.clone());
                st.attempt = Some(f);
            }
        }
    }

    /// Whether to send at all: not when closing and the collector could not be reached
    /// (then why it could not).
    fn why_not_send(&self) -> Option<String> {
        let mut st = self.lock();
        st.attempt = None;
        let f = st
            .failing
            .as_ref()
            .filter(|f| st.closing && f.unreachable)?;
        Some(f.cause.clone())
    }

    /// After a failed attempt (`error`, the exporter's word): the failure, and whether to try
    /// again.
    fn failed(&self, error: &OTelSdkError) -> (Failure, bool) {
        let mut st = self.lock();
        let f = st.attempt.take().unwrap_or_else(|| Failure {
            cause: error.to_string(),
            retry: false,
            unreachable: false,
        });
        let again = f.retry && !st.closing;
        (f, again)
    }

    /// Wait `delay` before a retry, or until the session starts closing.
    fn pause(&self, delay: Duration) {
        let st = self.lock();
        let _ = self
            .closing
            .wait_timeout_while(st, delay, |st| !st.closing)
            .unwrap_or_else(|p| p.into_inner());
    }

    fn sent(&self, spans: u64) {
        self.lock().sent_spans += spans;
    }

    /// A batch given up: counted, and a warning unless one was logged in the last
    /// [`WARN_EVERY`].
    fn lost(&self, spans: u64, cause: &str) {
        let warn = {
            let mut st = self.lock();
            st.lost_spans += spans;
            st.failed_exports += 1;
            st.last_error = Some(cause.to_string());
            let due = st.warned.is_none_or(|(at, _)| at.elapsed() >= WARN_EVERY);
            due.then(|| {
                let since = st.failed_exports - st.warned.map_or(0, |(_, n)| n);
                st.warned = Some((Instant::now(), st.failed_exports));
                (st.endpoint.clone(), since, st.lost_spans)
            })
        };
        if let Some((endpoint, failed_exports, lost_spans)) = warn {
            tracing::warn!(
                %endpoint,
                cause,
                failed_exports,
                lost_spans,
                "trace export failing: spans not delivered"
            );
        }
    }
}

/// The exporter's HTTP client, reporting each attempt to its [`Health`].
#[derive(Debug)]
struct Watched<C> {
    client: C,
    health: Arc<Health>,
}

#[async_trait::async_trait]
impl<C: HttpClient> HttpClient for Watched<C> {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let result = self.client.send_bytes(request).await;
        self.health.attempted(match &result {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) => Err(Failure::status(r.status())),
            Err(e) => Err(Failure::no_answer(&**e)),
        });
        result
    }
}

/// The OTLP exporter with its retries: none once the session is closing, and no attempt at
/// all then to a collector that could not be reached.
#[derive(Debug)]
struct Guarded<E> {
    inner: E,
    health: Arc<Health>,
    /// The whole export's budget, retries included.
    timeout: Duration,
    /// The pause before the first retry (each next one doubles it).
    first_retry: Duration,
}

impl<E: SpanExporter> SpanExporter for Guarded<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let spans = batch.len() as u64;
        let started = Instant::now();
        let mut delay = self.first_retry;
        let mut retries = 0;
        loop {
            if let Some(cause) = self.health.why_not_send() {
                self.health.lost(spans, &cause);
                return Err(OTelSdkError::InternalFailure(format!(
                    "not sent: the collector is unreachable ({cause})"
                )));
            }
            let error = match self.inner.export(batch.clone()).await {
                Ok(()) => {
                    self.health.sent(spans);
                    return Ok(());
                }
                Err(e) => e,
            };
            let (failure, again) = self.health.failed(&error);
            if !again || retries >= MAX_RETRIES || started.elapsed() + delay >= self.timeout {
                self.health.lost(spans, &failure.cause);
                return Err(OTelSdkError::InternalFailure(failure.cause));
            }
            self.health.pause(delay);
            retries += 1;
            delay *= 2;
        }
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A closed loopback port: bound, then let go.
    fn closed_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    #[test]
    fn a_refused_connection_is_named_and_marks_the_collector_unreachable() {
        crate::net::transport::install_crypto_provider();
        let client = blocking_client(Duration::from_secs(2)).unwrap();
        let e = client
            .post(format!("http://127.0.0.1:{}/v1/traces", closed_port()))
            .send()
            .expect_err("nothing listens");
        let f = Failure::no_answer(&e);
        assert_eq!(f.cause, "connection refused");
        assert!(f.unreachable && f.retry, "{f:?}");
        let f = Failure::status(http::StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(f.cause, "HTTP 503 Service Unavailable");
        assert!(f.retry && !f.unreachable);
        assert!(!Failure::status(http::StatusCode::NOT_FOUND).retry);
        // The client's thread holds a runtime: dropped off this (plain) thread is fine.
        std::thread::spawn(move || drop(client)).join().unwrap();
    }

    /// An exporter whose every attempt fails as `failure` says, counting its attempts.
    #[derive(Debug)]
    struct Failing {
        health: Arc<Health>,
        failure: Failure,
        attempts: AtomicU32,
    }

    impl SpanExporter for Failing {
        async fn export(&self, _batch: Vec<SpanData>) -> OTelSdkResult {
            self.attempts.fetch_add(1, Ordering::Relaxed);
            self.health.attempted(Err(self.failure.clone()));
            Err(OTelSdkError::InternalFailure("network error".into()))
        }
    }

    fn guarded(failure: Failure) -> Guarded<Failing> {
        let health = Arc::new(Health::new("http://127.0.0.1:1/v1/traces".into()));
        Guarded {
            inner: Failing {
                health: health.clone(),
                failure,
                attempts: AtomicU32::new(0),
            },
            health,
            timeout: Duration::from_secs(10),
            first_retry: Duration::from_millis(1),
        }
    }

    fn refused() -> Failure {
        Failure {
            cause: "connection refused".into(),
            retry: true,
            unreachable: true,
        }
    }

    fn batch() -> Vec<SpanData> {
        Vec::new()
    }

    #[test]
    fn a_failing_export_is_retried_then_counted_lost_with_its_cause() {
        let g = guarded(Failure {
            retry: true,
            ..refused()
        });
        let r = futures::executor::block_on(g.export(batch()));
        assert!(r.is_err());
        assert_eq!(g.inner.attempts.load(Ordering::Relaxed), 1 + MAX_RETRIES);
        let st = g.health.snapshot();
        assert_eq!(st.failed_exports, 1);
        assert_eq!(st.failed_attempts, u64::from(1 + MAX_RETRIES));
        assert_eq!(st.failing.as_deref(), Some("connection refused"));
        assert_eq!(st.last_error.as_deref(), Some("connection refused"));
    }

    #[test]
    fn once_closing_an_unreachable_collector_is_not_tried_again() {
        let g = guarded(refused());
        // A failure during the session: the collector is known unreachable.
        g.health.close();
        g.health.attempted(Err(refused()));
        let r = futures::executor::block_on(g.export(batch()));
        assert!(
            r.unwrap_err().to_string().contains("unreachable"),
            "given up without trying"
        );
        assert_eq!(g.inner.attempts.load(Ordering::Relaxed), 0);
        let st = g.health.snapshot();
        assert_eq!(st.failed_exports, 1);
        assert_eq!(st.last_error.as_deref(), Some("connection refused"));
    }

    #[test]
    fn closing_stops_the_retries_of_a_reachable_collector() {
        let g = guarded(Failure::status(http::StatusCode::SERVICE_UNAVAILABLE));
        g.health.close();
        let r = futures::executor::block_on(g.export(batch()));
        assert!(r.is_err());
        assert_eq!(
            g.inner.attempts.load(Ordering::Relaxed),
            1,
            "one attempt, no retry"
        );
    }

    #[test]
    fn a_pause_ends_when_the_session_starts_closing() {
        let h = Arc::new(Health::new(String::new()));
        let closer = {
            let h = h.clone();
            std::thread::spawn(move || h.close())
        };
        // An hour's pause returns: woken by the close, or not begun once it came.
        h.pause(Duration::from_secs(3600));
        closer.join().unwrap();
        assert!(h.lock().closing);
    }
}
