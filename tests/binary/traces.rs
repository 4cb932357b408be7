//! Issue #6: OTLP trace export, to a collector that speaks OTLP/HTTP on loopback in this
//! test: what arrives is decoded with the protocol's own message types. A build without the
//! `otlp` feature warns when export is asked for, and runs on.

#[cfg(feature = "otlp")]
use crate::common::BoundedOutput;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
#[cfg(feature = "otlp")]
use opentelemetry_proto::tonic::common::v1::KeyValue;
#[cfg(feature = "otlp")]
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
#[cfg(feature = "otlp")]
use opentelemetry_proto::tonic::trace::v1::Span;
#[cfg(feature = "otlp")]
use prost::Message;
#[cfg(feature = "otlp")]
use std::io::{BufRead, BufReader, Read, Write};
#[cfg(feature = "otlp")]
use std::net::TcpListener;
#[cfg(feature = "otlp")]
use std::sync::{Arc, Mutex};

#[cfg(feature = "otlp")]
use crate::common::cmd;
use crate::common::one_headless_cycle;

#[cfg(feature = "otlp")]
struct Export {
    path: String,
    content_type: String,
    body: Vec<u8>,
}

#[cfg(feature = "otlp")]
/// A minimal OTLP/HTTP collector: answers every POST with 200 and keeps what came.
fn collector() -> (String, Arc<Mutex<Vec<Export>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let got = Arc::new(Mutex::new(Vec::new()));
    let keep = got.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { return };
            let keep = keep.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut conn = conn;
                loop {
                    let mut request_line = String::new();
                    if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
                        return;
                    }
                    let path = request_line
                        .split_whitespace()
                        .nth(1)
                        .unwrap_or("")
                        .to_string();
                    let (mut length, mut content_type) = (0usize, String::new());
                    loop {
                        let mut h = String::new();
                        reader.read_line(&mut h).unwrap();
                        let h = h.trim_end();
                        if h.is_empty() {
                            break;
                        }
                        let (k, v) = h.split_once(':').unwrap();
                        match k.to_ascii_lowercase().as_str() {
                            "content-length" => length = v.trim().parse().unwrap(),
                            "content-type" => content_type = v.trim().to_string(),
                            _ => {}
                        }
                    }
                    let mut body = vec![0u8; length];
                    reader.read_exact(&mut body).unwrap();
                    keep.lock().unwrap().push(Export {
                        path,
                        content_type,
                        body,
                    });
                    let _ = conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n");
                }
            });
        }
    });
    (url, got)
}

#[cfg(feature = "otlp")]
fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a AnyValue> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.as_ref())
}

#[cfg(feature = "otlp")]
fn string_attr(attrs: &[KeyValue], key: &str) -> Option<String> {
    match attr(attrs, key) {
        Some(AnyValue::StringValue(s)) => Some(s.clone()),
        _ => None,
    }
}

#[cfg(feature = "otlp")]
#[test]
fn cycles_and_requests_are_exported_as_otlp_spans() {
    let dir = tempfile::tempdir().unwrap();
    let (url, got) = collector();
    let stdout = crate::common::run_expecting(
        cmd(dir.path())
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", &url)
            .args([
                "--headless",
                "--mute",
                "--cycles",
                "3",
                "--report",
                "r.json",
            ])
            .args(["--fault", "claude_client=error:400"]),
        0,
    );
    assert!(
        stdout.contains("[CLEANUP] ✓ Trace exporter closed ("),
        "{stdout}"
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("r.json")).unwrap()).unwrap();
    let sd = &report["shutdown"];
    assert_eq!(
        sd["sockets_open_after"], 0,
        "the exporter's connection is closed too"
    );
    assert!(
        sd["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["name"] == "trace exporter" && e["outcome"] == "closed"),
        "{sd}"
    );

    let exports = got.lock().unwrap();
    assert!(!exports.is_empty(), "something was exported");
    let mut spans: Vec<Span> = Vec::new();
    for e in exports.iter() {
        assert_eq!(e.path, "/v1/traces");
        assert_eq!(e.content_type, "application/x-protobuf");
        let req =
            ExportTraceServiceRequest::decode(e.body.as_slice()).expect("an OTLP trace export");
        for rs in req.resource_spans {
            let resource = rs.resource.expect("a resource");
            assert_eq!(
                string_attr(&resource.attributes, "service.name").as_deref(),
                Some("singularis-tui")
            );
            spans.extend(rs.scope_spans.into_iter().flat_map(|s| s.spans));
        }
    }
    let cycles: Vec<&Span> = spans.iter().filter(|s| s.name == "cycle").collect();
    let requests: Vec<&Span> = spans.iter().filter(|s| s.name == "request").collect();
    assert_eq!(cycles.len(), 3, "a span per cycle");
    assert_eq!(
        requests.len() as u64,
        report["stats"]["requests"].as_u64().unwrap(),
        "a span per request"
    );
    // Requests sit under their cycle, in its trace; each names its system and is a client span.
    for r in &requests {
        assert_eq!(r.kind, 3, "SPAN_KIND_CLIENT");
        assert!(string_attr(&r.attributes, "system").is_some());
    }
    let under_a_cycle = requests
        .iter()
        .filter(|r| {
            cycles
                .iter()
                .any(|c| c.span_id == r.parent_span_id && c.trace_id == r.trace_id)
        })
        .count();
    assert!(under_a_cycle > 0, "requests are children of their cycle");
    // The injected fault shows as failed spans, with the cause.
    let claude: Vec<&&Span> = requests
        .iter()
        .filter(|r| string_attr(&r.attributes, "system").as_deref() == Some("claude_client"))
        .collect();
    assert!(!claude.is_empty());
    // Each failed with the service's 400 (not retried: a 500 would be retried past the
    // vote's quorum and cancelled), but a breaker probe still out at the quit, which the
    // shutdown cancels.
    let mut with_400 = 0;
    for r in claude {
        let status = r.status.as_ref().expect("a status");
        assert_eq!(status.code, 2, "STATUS_CODE_ERROR");
        assert!(
            status.message.contains("400") || status.message == "cancelled",
            "{}",
            status.message
        );
        with_400 += usize::from(status.message.contains("400"));
    }
    assert!(with_400 > 0, "the injected fault shows");
}

/// Issue #27 item 6: a collector that cannot be reached loses the spans, and that is an
/// error: the trace exporter's close says why, the account and the report count it, the
/// exit status is not 0, the report's `traces` names the cause, and the log warns.
#[cfg(feature = "otlp")]
#[test]
fn an_unreachable_collector_is_an_error_named_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    // A loopback port nothing listens on: bound, then let go.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let stdout = crate::common::run_expecting(
        cmd(dir.path())
            .env(
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                format!("http://127.0.0.1:{port}"),
            )
            .args([
                "--headless",
                "--mute",
                "--cycles",
                "1",
                "--report",
                "r.json",
            ]),
        1,
    );
    let close = stdout
        .lines()
        .find(|l| l.contains("Trace exporter"))
        .unwrap_or_else(|| panic!("no trace exporter line: {stdout}"));
    assert!(
        close.contains("⚠️ Trace exporter close error:")
            && close.contains("spans not delivered to http://127.0.0.1:")
            && close.contains("(connection refused)"),
        "{close}"
    );
    assert!(stdout.contains(", 1 error, "), "{stdout}");
    assert!(stdout.contains("  Traces: "), "{stdout}");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("r.json")).unwrap()).unwrap();
    let sd = &report["shutdown"];
    assert_eq!(sd["errors"], 1, "{sd}");
    assert_eq!(sd["sockets_open_after"], 0, "an error, not a leak");
    assert_eq!(report["exit_status"], 1);
    let exporter = sd["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "trace exporter")
        .expect("the exporter's step");
    assert_eq!(exporter["outcome"], "error", "{exporter}");
    let traces = &report["traces"];
    assert_eq!(traces["failing"], "connection refused", "{traces}");
    assert_eq!(traces["sent_spans"], 0, "{traces}");
    assert!(traces["lost_spans"].as_u64().unwrap() > 0, "{traces}");
    let log = std::fs::read_to_string(dir.path().join("state/singularis-tui/singularis-tui.log"))
        .expect("the log file");
    assert!(
        log.contains("trace export failing") && log.contains("connection refused"),
        "{log}"
    );
}

#[test]
fn traces_are_off_unless_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let out = one_headless_cycle(dir.path(), &["--report", "r.json"]);
    assert_eq!(out.status.code(), Some(0));
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("r.json")).unwrap()).unwrap();
    assert_eq!(
        report["shutdown"]["endpoints"],
        serde_json::json!([]),
        "no exporter, no metrics endpoint"
    );
    assert!(report.get("traces").is_none(), "{report:#}");
    // Issue #27 item 7: no config file read, no fault injected.
    assert_eq!(report["config"], "built-in");
    assert_eq!(report["faults"], serde_json::json!({}));
    assert_eq!(report["exit_status"], 0);
}

#[cfg(feature = "otlp")]
#[test]
fn a_bad_trace_endpoint_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = cmd(dir.path())
        .env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "not a url")
        .args(["--headless", "--mute", "--cycles", "1"])
        .bounded_output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
        "{stderr}"
    );
    let out = cmd(dir.path())
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317")
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
        .args(["--headless", "--mute", "--cycles", "1"])
        .bounded_output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("OTEL_EXPORTER_OTLP_PROTOCOL=grpc: only http/protobuf"),
        "{stderr}"
    );
}

#[cfg(not(feature = "otlp"))]
#[test]
fn a_build_without_otlp_warns_when_export_is_asked_for_and_runs_on() {
    let dir = tempfile::tempdir().unwrap();
    let out = crate::common::cmd(dir.path())
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
        .args(["--headless", "--mute", "--cycles", "1"])
        .bounded_output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("warning: OTEL_EXPORTER_OTLP_ENDPOINT")
            && stderr.contains("this build has no OTLP trace export"),
        "{stderr}"
    );
}
