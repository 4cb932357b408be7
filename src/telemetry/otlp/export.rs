//! The exporter itself (the `otlp` feature).

use super::var;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use std::sync::OnceLock;
use std::time::Duration;
use tracing_subscriber::registry::LookupSpan;

pub(crate) const STEP_NAME: &str = "trace exporter";

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
