//! OTLP trace export: a span per gameplay cycle and per request, sent over OTLP/HTTP
//! (protobuf) to the collector the standard variables name. Off unless
//! `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set; the
//! exporter itself reads the rest (`OTEL_EXPORTER_OTLP_HEADERS`, `..._TIMEOUT`,
//! `..._COMPRESSION`), and the resource reads `OTEL_SERVICE_NAME` and
//! `OTEL_RESOURCE_ATTRIBUTES`.
//!
//! The exporter's connection to the collector is one of the process's sockets: it is
//! flushed and closed as the last shutdown step, before the process-wide socket check.
//!
//! The exporter is built with the `otlp` feature (default on, `export.rs`); without it
//! `off.rs` stands in with the same names, and asking for export gets a warning
//! ([`not_built_in`]), never a silent no-op.

#[cfg(feature = "otlp")]
mod export;
#[cfg(not(feature = "otlp"))]
#[path = "otlp/off.rs"]
mod export;

pub(crate) use export::{STEP_NAME, active};
pub use export::{Tracer, layer, not_built_in, shutdown, start, state};

/// How trace export went: the report's `traces`, the dashboard's warning, the account's line.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct TraceExport {
    /// Where spans are sent (no credentials, no query).
    pub endpoint: String,
    pub sent_spans: u64,
    /// Spans given up: their export failed after its retries, or the collector was
    /// unreachable at shutdown.
    pub lost_spans: u64,
    /// Attempts that failed, retries included.
    pub failed_attempts: u64,
    /// Exports (batches) given up.
    pub failed_exports: u64,
    /// Why the last attempt failed, while export is failing ("connection refused"); `None`
    /// once an attempt succeeds.
    pub failing: Option<String>,
    /// Why the last export given up failed (kept after export works again).
    pub last_error: Option<String>,
}

fn var(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// Whether the standard variables ask for trace export.
pub fn requested() -> bool {
    let disabled = var("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true"))
        || var("OTEL_TRACES_EXPORTER").is_some_and(|v| v.eq_ignore_ascii_case("none"));
    !disabled
        && (var("OTEL_EXPORTER_OTLP_ENDPOINT").is_some()
            || var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_some())
}
