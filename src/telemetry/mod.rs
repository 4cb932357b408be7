//! What a session tells the outside world, in the formats a fleet's tools already read:
//! Prometheus text exposition (`prometheus`, served by `endpoint`) and OTLP traces (`otlp`).
//! The engines know nothing of these formats: this module reads their snapshots. (The JSON
//! event stream is the session's own: `session::events`.)

pub mod endpoint;
pub mod otlp;
pub mod prometheus;
pub(crate) mod served;

pub(crate) use endpoint::MetricsEndpoint;
pub use prometheus::Phase;
pub use prometheus::SessionMetrics;
