//! What can go wrong with one request, in words fit for a screen: never a URL (it may carry
//! a key in a query string), never a key.

use std::time::Duration;

#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    /// The service answered with an error status; `message` is its own error text. Said as
    /// "HTTP 429 Too Many Requests, retry in 2 s: <the service's words>" (see
    /// [`status_words`]), with the service's request id when it sent one (OpenAI's
    /// `x-request-id`, Anthropic's `request-id`): what their support asks for.
    #[error("{}", status_words(.status, .message, .retry_after, .request_id))]
    Status {
        status: u16,
        message: String,
        retry_after: Option<Duration>,
        request_id: Option<String>,
        /// The service's `x-should-retry` header (OpenAI, Anthropic), which overrides the
        /// status rule as their SDKs let it.
        should_retry: Option<bool>,
    },
    /// Nothing listens there: `by` is the host, with the port unless it is the default.
    #[error("connection refused by {by}")]
    Refused { by: String },
    /// The request outran its timeout.
    #[error("timed out")]
    Timeout,
    /// The connection (or the name lookup) took longer than the connect timeout; the
    /// connector's words, naming the host.
    #[error("{0}")]
    ConnectTimeout(String),
    /// The connection could not be made (DNS, TLS...) or broke (reset, closed mid-answer):
    /// whole words, naming the host for a failed connect.
    #[error("{0}")]
    Transport(String),
    /// The answer was not what the protocol says (bad JSON, bad SSE, wrong content type...).
    #[error("protocol: {0}")]
    Protocol(String),
    /// The answer hit its output cap (reasoning included) before it was done: the service
    /// said why (`length`, `max_output_tokens`, `MAX_TOKENS`, `max_tokens`). `partial` is
    /// the text that came (perhaps none): an answer, if a short one (README, "Model
    /// parameters").
    #[error("truncated: {reason}")]
    Truncated { reason: String, partial: String },
    /// A stream outran its deadline (or went silent between chunks) and was cut; `partial`
    /// is what it had said by then.
    #[error("cut: {why}")]
    Cut { partial: String, why: String },
    #[error("cancelled")]
    Cancelled,
    /// Not sent: its worst cost would cross a spend limit (`[budget]`).
    #[error("budget: not sent: {0}")]
    Budget(String),
    #[error("{0}")]
    Unavailable(String),
}

impl ClientError {
    pub fn is_cancelled(&self) -> bool {
        matches!(self, ClientError::Cancelled)
    }

    pub fn is_cut(&self) -> bool {
        matches!(self, ClientError::Cut { .. })
    }

    /// A cut or a truncated answer with what the service had said: the reader fills in the
    /// text it gathered.
    pub fn with_partial(self, text: &str) -> ClientError {
        match self {
            ClientError::Cut { why, .. } => ClientError::Cut {
                partial: text.to_string(),
                why,
            },
            ClientError::Truncated { reason, .. } => ClientError::Truncated {
                reason,
                partial: text.to_string(),
            },
            e => e,
        }
    }

    /// A 429: the service's rate limit, not a failure of its own.
    pub fn is_rate_limit(&self) -> bool {
        matches!(self, ClientError::Status { status: 429, .. })
    }

    /// A status in brief: "HTTP 429 Too Many Requests, retry in 1 s", without the service's
    /// message or request id; any other error as it reads.
    pub fn status_brief(&self) -> String {
        match self {
            ClientError::Status {
                status,
                retry_after,
                ..
            } => status_words(status, "", retry_after, &None),
            e => e.to_string(),
        }
    }

    pub fn is_truncated(&self) -> bool {
        matches!(self, ClientError::Truncated { .. })
    }

    /// An answer cut at `cap` tokens, in the service's words.
    pub fn truncated(service_reason: &str, cap: u32) -> ClientError {
        ClientError::Truncated {
            reason: format!("{service_reason} (the answer hit its {cap}-token cap)"),
            partial: String::new(),
        }
    }
}

/// What a reset connection is called, by when it broke.
const RESET_SENDING: &str = "connection reset while sending the request";
const RESET_READING: &str = "connection reset while reading the answer";
const CLOSED_BEFORE: &str = "connection closed before the answer";
const CLOSED_READING: &str = "connection closed while reading the answer";

/// Every error in `e`'s chain, `e` first. An `io::Error` made from another error hides it
/// from `source()` (it returns the inner error's source), so the walk steps into the inner
/// one instead; hyper-rustls nests one io error in another that way around rustls's.
fn causes<'a>(
    e: &'a (dyn std::error::Error + 'static),
) -> Vec<&'a (dyn std::error::Error + 'static)> {
    let mut out = Vec::new();
    let mut next = Some(e);
    while let Some(s) = next {
        out.push(s);
        next = match s
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => s.source(),
        };
    }
    out
}

fn io_kinds<'a>(
    chain: &'a [&'a (dyn std::error::Error + 'static)],
) -> impl Iterator<Item = std::io::ErrorKind> + 'a {
    chain
        .iter()
        .filter_map(|s| s.downcast_ref::<std::io::Error>())
        .map(std::io::Error::kind)
}

fn is_reset(kind: std::io::ErrorKind) -> bool {
    use std::io::ErrorKind::*;
    matches!(kind, ConnectionReset | ConnectionAborted | BrokenPipe)
}

/// Why a connection was not made, in words that name where it was going (`host`, plus the
/// port when it is not the scheme's default; never a URL, whose query may carry a key).
/// Made by the connector (`net::transport`); typed, so [`ClientError::from_transport`] finds it
/// in hyper's error chain by downcast.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("the system is closing; no new connection")]
    Closing,
    /// The resolver failed or found no address; its own text (which varies by platform and
    /// says little more) stays in the source.
    #[error("cannot resolve {host} (DNS)")]
    Dns {
        host: String,
        #[source]
        cause: std::io::Error,
    },
    #[error("cannot resolve {host} (DNS): no answer within {after_ms} ms")]
    DnsTimedOut { host: String, after_ms: u128 },
    #[error("connection refused by {to}")]
    Refused { to: String },
    #[error("timed out connecting to {to} after {after_ms} ms")]
    TimedOut { to: String, after_ms: u128 },
    #[error("cannot connect to {to}: {cause}")]
    Other {
        to: String,
        #[source]
        cause: std::io::Error,
    },
}

impl ConnectError {
    /// Ran out of time: a timeout, not a failure worth retrying at once.
    pub fn is_timeout(&self) -> bool {
        matches!(
            self,
            ConnectError::TimedOut { .. } | ConnectError::DnsTimedOut { .. }
        )
    }
}

impl ClientError {
    /// A request that got no answer from the pool: refused, timed out, DNS, TLS, reset...
    /// `to` is where it went (`host[:port]`, never the URL).
    pub fn from_transport(e: &hyper_util::client::legacy::Error, to: &str) -> ClientError {
        let chain = causes(e);
        if let Some(c) = chain.iter().find_map(|s| s.downcast_ref::<ConnectError>()) {
            return match c {
                ConnectError::Refused { to } => ClientError::Refused { by: to.clone() },
                c if c.is_timeout() => ClientError::ConnectTimeout(c.to_string()),
                c => ClientError::Transport(c.to_string()),
            };
        }
        if e.is_connect() {
            // Past our connector: the TLS handshake (hyper-rustls) failed.
            if let Some(tls) = chain.iter().find_map(|s| s.downcast_ref::<rustls::Error>()) {
                return ClientError::Transport(format!("TLS handshake with {to} failed: {tls}"));
            }
            return ClientError::Transport(format!("cannot connect to {to}: {}", chain_from(e)));
        }
        if io_kinds(&chain).any(is_reset) {
            return ClientError::Transport(RESET_SENDING.into());
        }
        if io_kinds(&chain).any(|k| k == std::io::ErrorKind::TimedOut) {
            return ClientError::Timeout;
        }
        if chain
            .iter()
            .filter_map(|s| s.downcast_ref::<hyper::Error>())
            .any(hyper::Error::is_incomplete_message)
        {
            return ClientError::Transport(CLOSED_BEFORE.into());
        }
        ClientError::Transport(format!("request to {to} failed: {}", chain_from(e)))
    }
}

impl From<reqwest::Error> for ClientError {
    /// reqwest's errors come from reading an answer (its client never sends here): a body
    /// that broke is the connection's fault, not the protocol's.
    fn from(e: reqwest::Error) -> Self {
        // host[:port] only: the URL may carry a key in its query.
        let to = e.url().map(|u| match (u.host_str(), u.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            _ => "the service".to_string(),
        });
        let e = e.without_url();
        let chain = causes(&e);
        if e.is_timeout() || io_kinds(&chain).any(|k| k == std::io::ErrorKind::TimedOut) {
            return ClientError::Timeout;
        }
        if e.is_connect() {
            let to = to.unwrap_or_else(|| "the service".into());
            if io_kinds(&chain).any(|k| k == std::io::ErrorKind::ConnectionRefused) {
                return ClientError::Refused { by: to };
            }
            return ClientError::Transport(format!("cannot connect to {to}: {}", chain_from(&e)));
        }
        if io_kinds(&chain).any(is_reset) {
            return ClientError::Transport(RESET_READING.into());
        }
        if io_kinds(&chain).any(|k| k == std::io::ErrorKind::UnexpectedEof)
            || chain
                .iter()
                .filter_map(|s| s.downcast_ref::<hyper::Error>())
                .any(hyper::Error::is_incomplete_message)
        {
            return ClientError::Transport(CLOSED_READING.into());
        }
        if e.is_decode() {
            return ClientError::Protocol(chain_from(&e));
        }
        ClientError::Transport(chain_from(&e))
    }
}

/// "HTTP 429 Too Many Requests, retry in 2 s: <message> (request id req_123)": the status
/// with its reason phrase, when to try again, the service's message unless it only restates
/// the status (Wolfram's "Error 429: Too Many Requests"), and the request id it gave.
pub fn status_words(
    status: &u16,
    message: &str,
    retry_after: &Option<Duration>,
    request_id: &Option<String>,
) -> String {
    let reason = http::StatusCode::from_u16(*status)
        .ok()
        .and_then(|s| s.canonical_reason());
    let mut out = format!("HTTP {status}");
    if let Some(reason) = reason {
        out.push(' ');
        out.push_str(reason);
    }
    if let Some(wait) = retry_after {
        out.push_str(", retry ");
        out.push_str(&retry_in(*wait));
    }
    if !restates_status(message, *status, reason) {
        out.push_str(": ");
        out.push_str(message);
    }
    if let Some(id) = request_id {
        out.push_str(" (request id ");
        out.push_str(id);
        out.push(')');
    }
    out
}

/// "in 2 s", "in 0.5 s", "now": rounded up to a tenth, so a wait is never said shorter.
fn retry_in(wait: Duration) -> String {
    let tenths = wait.as_millis().div_ceil(100);
    match tenths {
        0 => "now".into(),
        t if t % 10 == 0 || t >= 100 => format!("in {} s", t.div_ceil(10)),
        t => format!("in {}.{} s", t / 10, t % 10),
    }
}

/// True when `message` says nothing but the status: every word is the code, its reason
/// phrase, or "error"/"http"/"status".
fn restates_status(message: &str, status: u16, reason: Option<&str>) -> bool {
    let code = status.to_string();
    let known: Vec<String> = reason
        .unwrap_or("")
        .split(|c: char| !c.is_alphanumeric())
        .map(str::to_lowercase)
        .chain(["error", "http", "status"].map(String::from))
        .chain([code])
        .collect();
    message
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .all(|w| known.contains(&w.to_lowercase()))
}

/// The error and its causes on one line ("error sending request: connection reset").
fn chain_from(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        let s_text = s.to_string();
        if !out.contains(&s_text) {
            out.push_str(": ");
            out.push_str(&s_text);
        }
        src = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16, message: &str, retry_after: Option<Duration>) -> String {
        ClientError::Status {
            status: code,
            message: message.into(),
            retry_after,
            request_id: None,
            should_retry: None,
        }
        .to_string()
    }

    #[test]
    fn a_status_names_the_request_id_the_service_gave() {
        let e = ClientError::Status {
            status: 500,
            message: "Internal server error".into(),
            retry_after: None,
            request_id: Some("req_123".into()),
            should_retry: None,
        };
        assert_eq!(
            e.to_string(),
            "HTTP 500 Internal Server Error (request id req_123)"
        );
        let e = ClientError::Status {
            status: 529,
            message: "Overloaded".into(),
            retry_after: None,
            request_id: Some("req_011CSHoEeqs5C35K2UUqR7Fy".into()),
            should_retry: Some(true),
        };
        assert_eq!(
            e.to_string(),
            "HTTP 529: Overloaded (request id req_011CSHoEeqs5C35K2UUqR7Fy)"
        );
    }

    #[test]
    fn a_status_reads_with_its_reason_the_service_words_and_when_to_retry() {
        assert_eq!(
            status(
                429,
                "Error 429: Too Many Requests",
                Some(Duration::from_secs(2))
            ),
            "HTTP 429 Too Many Requests, retry in 2 s"
        );
        assert_eq!(
            status(503, "upstream overloaded", None),
            "HTTP 503 Service Unavailable: upstream overloaded"
        );
        assert_eq!(status(500, "", None), "HTTP 500 Internal Server Error");
        assert_eq!(
            status(404, "HTTP status 404 NOT FOUND", None),
            "HTTP 404 Not Found"
        );
        // No canonical reason: the service's words carry it.
        assert_eq!(status(529, "Overloaded", None), "HTTP 529: Overloaded");
        assert_eq!(
            status(429, "slow down", Some(Duration::from_millis(1500))),
            "HTTP 429 Too Many Requests, retry in 1.5 s: slow down"
        );
        assert_eq!(
            status(429, "", Some(Duration::from_millis(20))),
            "HTTP 429 Too Many Requests, retry in 0.1 s",
            "rounded up, never said shorter"
        );
        assert_eq!(
            status(429, "", Some(Duration::ZERO)),
            "HTTP 429 Too Many Requests, retry now"
        );
    }

    #[test]
    fn connect_failures_name_where_they_were_going() {
        assert_eq!(
            ClientError::Refused {
                by: "127.0.0.1:9".into()
            }
            .to_string(),
            "connection refused by 127.0.0.1:9"
        );
    }
}
