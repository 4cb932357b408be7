//! What one request is given: the system's pool, where to go, how to sign, and when to stop.

use crate::clients::UsageMeter;
use crate::net::transport::HttpClient;
use crate::systems::{ModelParams, Protocol, SystemId};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use tokio_util::sync::CancellationToken;

/// An API key. It only ever leaves this type as a header value marked sensitive.
#[derive(Clone)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(s: String) -> ApiKey {
        ApiKey(s)
    }
    /// The key itself, only so that a recording can mask it wherever a service echoes it.
    pub fn expose_for_masking(&self) -> &str {
        &self.0
    }

    pub fn header(&self, prefix: &str) -> http::HeaderValue {
        let mut v = http::HeaderValue::from_str(&format!("{prefix}{}", self.0))
            .unwrap_or_else(|_| http::HeaderValue::from_static("invalid-key"));
        v.set_sensitive(true);
        v
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(****)")
    }
}

/// What a request needs: the pool, where to go, how to sign, and a token that says
/// "stop now" to work that would otherwise never end (streams, waiting on other systems).
#[derive(Clone, Debug)]
pub struct RequestCtx {
    pub system: SystemId,
    /// How the system talks to its service (what its SDK retries depends on it).
    pub protocol: Protocol,
    pub client: HttpClient,
    pub base: url::Url,
    pub key: Option<ApiKey>,
    pub model: String,
    /// Output cap and the model family's settings.
    pub params: ModelParams,
    pub stop: CancellationToken,
    /// Retries allowed per request (config `retries`), and where they are counted.
    pub retries: u32,
    pub retried: Arc<AtomicU64>,
    /// Where the answers' token counts and rate-limit headroom go.
    pub usage: Arc<UsageMeter>,
    /// When this call must be over (streams cut themselves there and keep what they said);
    /// `None`: no deadline of its own.
    pub deadline: Option<tokio::time::Instant>,
    /// A stream that sends nothing for this long (once its content began) is cut.
    pub stream_idle: std::time::Duration,
    /// Where the exchange is recorded (`--record DIR`), when it is.
    pub recorder: Option<Arc<crate::net::record::Recorder>>,
    /// The spend limit, when one is set: each paid request reserves its worst cost first.
    pub budget: Option<BudgetCtx>,
    /// The service's last word on this call when it was a 429 (cleared by any other answer):
    /// a call cut at its deadline while it waits out a rate limit is rate-limited, not late.
    pub rate_limited: RateLimitSlot,
}

/// Where a call keeps the 429 it is waiting out, if any (see [`RequestCtx::rate_limited`]).
pub type RateLimitSlot = Arc<std::sync::Mutex<Option<crate::error::ClientError>>>;

/// What a request needs to keep within the spend limit.
#[derive(Clone)]
pub struct BudgetCtx {
    pub budget: Arc<crate::lifecycle::Budget>,
    /// The model's price; `None`: unpriced.
    pub price: Option<crate::config::Price>,
    /// What this call holds, settled by the system when the call is over.
    pub holds: Arc<std::sync::Mutex<Vec<crate::lifecycle::budget::Hold>>>,
}

impl std::fmt::Debug for BudgetCtx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BudgetCtx")
            .field("price", &self.price)
            .finish()
    }
}

impl RequestCtx {
    /// Before sending a body of `body_bytes`: reserve the request's worst cost, or say why
    /// it may not be made.
    pub async fn reserve(&self, body_bytes: usize) -> Result<(), super::ClientError> {
        let Some(b) = &self.budget else {
            return Ok(());
        };
        // Speech is billed by its audio (25 tokens a second), which its cap is not sent to
        // bound: the cap stands for it (256 tokens are 10 s of speech; the game's lines are
        // one sentence).
        let cap = self.params.max_output_tokens;
        let worst = b
            .price
            .map(|p| crate::lifecycle::budget::worst_cost(&p, body_bytes, cap));
        let reserve = b
            .budget
            .reserve(self.system, &self.model, worst, self.deadline);
        let hold = tokio::select! {
            r = reserve => r.map_err(|r| super::ClientError::Budget(r.to_string()))?,
            _ = self.stop.cancelled() => return Err(super::ClientError::Cancelled),
        };
        b.holds.lock().unwrap_or_else(|p| p.into_inner()).push(hold);
        Ok(())
    }

    /// What bounds a stream read under this context.
    pub fn stream_limits(&self) -> super::sse::StreamLimits {
        super::sse::StreamLimits {
            deadline: self.deadline,
            idle: self.stream_idle,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_key_never_prints() {
        let k = ApiKey::new("sk-secret".into());
        assert!(!format!("{k:?}").contains("secret"));
        assert!(k.header("Bearer ").is_sensitive());
    }
}
