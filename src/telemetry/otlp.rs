//! OTLP trace export: a span per gameplay cycle and per request, sent over OTLP/HTTP
//! (protobuf) to the collector the standard variables name. Off unless
//! `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set; the
//! exporter itself reads the rest (`OTEL_EXPORTER_OTLP_HEADERS`, `..._TIMEOUT`,
//! `..._COMPRESSION`), and the resource reads `OTEL_SERVICE_NAME` and
//! `OTEL_RESOURCE_ATTRIBUTES`.
//!
//! The exporter's connection to the collector is one of the process's sockets: it is
//! flushed and closed as the last shutdown step, before the process-wide socket check.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use std::sync::OnceLock;
use std::time::Duration;

pub(crate) const STEP_NAME: &str = "trace exporter";

static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

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
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
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
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build();
    let tracer = provider.tracer("singularis-tui");
    if PROVIDER.set(provider).is_err() {
        return Err("OTLP trace export was already started".into());
    }
    Ok(tracer)
}

pub(crate) fn active() -> bool {
    PROVIDER.get().is_some()
}

/// Send what is buffered and stop, within `timeout`. Blocks: call it off the async threads.
pub fn shutdown(timeout: Duration) -> Result<(), String> {
    match PROVIDER.get() {
        Some(p) => p.shutdown_with_timeout(timeout).map_err(|e| e.to_string()),
        None => Ok(()),
    }
}
