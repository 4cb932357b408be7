//! OTLP trace export, left out of this build (it was built without the `otlp` feature; see
//! `export.rs` for the real one). The names are the same, so the callers compile either way;
//! asking for export (`OTEL_EXPORTER_OTLP_ENDPOINT`, …) gets a warning, never silence.

use std::time::Duration;
use tracing_subscriber::layer::Identity;

pub(crate) const STEP_NAME: &str = "trace exporter";

/// What this build says, once at start, when the standard variables ask for trace export.
const NOT_BUILT_IN: &str = "OTEL_EXPORTER_OTLP_ENDPOINT (or _TRACES_ENDPOINT) is set, but this \
     build has no OTLP trace export (built without the `otlp` feature): no traces will be sent. Rebuild with the \
     default features (`cargo build --release`) to export them.";

/// Why this build cannot export traces.
pub fn not_built_in() -> Option<&'static str> {
    Some(NOT_BUILT_IN)
}

/// No tracer can exist in this build.
#[derive(Debug, Clone)]
pub enum Tracer {}

/// No layer: there is no tracer to give it.
pub fn layer(tracer: Option<Tracer>) -> Option<Identity> {
    tracer.map(|t| match t {})
}

/// Always refused here: the caller asks [`not_built_in`] first, warns and goes on without
/// traces.
pub fn start() -> Result<Tracer, String> {
    Err(NOT_BUILT_IN.to_string())
}

pub(crate) fn active() -> bool {
    false
}

/// No export, no state.
pub fn state() -> Option<super::TraceExport> {
    None
}

/// Nothing to flush.
pub fn shutdown(_timeout: Duration) -> Result<(), String> {
    Ok(())
}
