//! What can go wrong with one request, in words fit for a screen: never a URL (it may carry
//! a key in a query string), never a key.

use std::time::Duration;

#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    /// The service answered with an error status; `message` is its own error text.
    #[error("HTTP {status}: {message}")]
    Status {
        status: u16,
        message: String,
        retry_after: Option<Duration>,
    },
    #[error("connection refused")]
    Refused,
    #[error("timed out")]
    Timeout,
    /// The connection broke (reset, closed mid-response, DNS, TLS...).
    #[error("transport: {0}")]
    Transport(String),
    /// The answer was not what the protocol says (bad JSON, bad SSE, wrong content type...).
    #[error("protocol: {0}")]
    Protocol(String),
    /// The answer hit its output cap (reasoning included) before it was done: the service
    /// said why (`length`, `max_output_tokens`, `MAX_TOKENS`, `max_tokens`).
    #[error("truncated: {reason}")]
    Truncated { reason: String },
    /// A stream outran its deadline (or went silent between chunks) and was cut; `partial`
    /// is what it had said by then.
    #[error("cut: {why}")]
    Cut { partial: String, why: String },
    #[error("cancelled")]
    Cancelled,
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

    /// A cut with what the stream had said: the reader fills in the text it gathered.
    pub fn with_partial(self, text: &str) -> ClientError {
        match self {
            ClientError::Cut { why, .. } => ClientError::Cut {
                partial: text.to_string(),
                why,
            },
            e => e,
        }
    }

    pub fn is_truncated(&self) -> bool {
        matches!(self, ClientError::Truncated { .. })
    }

    /// An answer cut at `cap` tokens, in the service's words.
    pub fn truncated(service_reason: &str, cap: u32) -> ClientError {
        ClientError::Truncated {
            reason: format!("{service_reason} (the answer hit its {cap}-token cap)"),
        }
    }
}

impl ClientError {
    /// A request that got no answer from the pool: refused, timed out, DNS, TLS...
    pub fn from_transport(e: &hyper_util::client::legacy::Error) -> ClientError {
        let mut src: Option<&dyn std::error::Error> = Some(e);
        while let Some(s) = src {
            if let Some(io) = s.downcast_ref::<std::io::Error>() {
                match io.kind() {
                    std::io::ErrorKind::ConnectionRefused => return ClientError::Refused,
                    std::io::ErrorKind::TimedOut => return ClientError::Timeout,
                    _ => {}
                }
            }
            src = s.source();
        }
        ClientError::Transport(chain(e))
    }
}

impl From<reqwest::Error> for ClientError {
    fn from(e: reqwest::Error) -> Self {
        let e = e.without_url();
        if e.is_timeout() {
            return ClientError::Timeout;
        }
        if e.is_connect() {
            let mut src: Option<&dyn std::error::Error> = Some(&e);
            while let Some(s) = src {
                if let Some(io) = s.downcast_ref::<std::io::Error>()
                    && io.kind() == std::io::ErrorKind::ConnectionRefused
                {
                    return ClientError::Refused;
                }
                src = s.source();
            }
        }
        if e.is_decode() {
            return ClientError::Protocol(chain(&e));
        }
        ClientError::Transport(chain(&e))
    }
}

/// The error and its causes on one line ("error sending request: connection reset").
fn chain(e: &dyn std::error::Error) -> String {
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
