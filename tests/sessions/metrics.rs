//! Issue #6: the Prometheus endpoint and the JSON event stream, read the way a fleet's tools
//! read them: scraped over loopback during a real headless session, parsed with an
//! independent Prometheus text parser, and matched against the session report.

use crate::common::BoundedOutput;
use prometheus_parse::{Sample, Scrape, Value};
use serde_json::Value as Json;
use singularis_tui::config::Config;
use singularis_tui::session::Session;
use singularis_tui::session::report::Reason;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::cmd;

/// GET /metrics with a plain HTTP/1.1 request; `None` once nothing listens.
fn scrape(addr: SocketAddr) -> Option<(String, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).ok()?;
    let (head, body) = raw.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200")
        .then(|| (head.to_string(), body.to_string()))
}

fn parse(body: &str) -> Scrape {
    Scrape::parse(body.lines().map(|l| Ok(l.to_string()))).expect("Prometheus text format")
}

fn value(s: &Sample) -> f64 {
    match &s.value {
        Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
        Value::Histogram(buckets) => buckets
            .iter()
            .find(|b| b.less_than.is_infinite())
            .map(|b| b.count)
            .unwrap_or(-1.0),
        Value::Summary(_) => -1.0,
    }
}

/// metric → label value (of `label`, or "" without labels) → value.
fn by_label(scrape: &Scrape, metric: &str, label: &str) -> BTreeMap<String, f64> {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == metric)
        .map(|s| (s.labels.get(label).unwrap_or("").to_string(), value(s)))
        .collect()
}

fn one(scrape: &Scrape, metric: &str) -> f64 {
    let v = by_label(scrape, metric, "");
    assert_eq!(v.len(), 1, "{metric}: {v:?}");
    v[""]
}

fn as_f64_map(v: &Json) -> BTreeMap<String, f64> {
    v.as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_f64().unwrap()))
        .collect()
}

#[test]
fn scraped_metrics_and_the_json_stream_agree_with_the_report() {
    let _one = crate::common::one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    // The endpoint waits (up to 20 s) for one scrape of the final figures before it closes.
    std::fs::write(
        dir.path().join("config.toml"),
        "[metrics]\nlisten = \"127.0.0.1:0\"\nfinal_scrape_ms = 20000\n[gameplay]\ncycle_delay_ms = 0\n",
    )
    .unwrap();
    let mut child = cmd(dir.path())
        .args([
            "--headless",
            "--json",
            "--mute",
            "--cycles",
            "6",
            "--report",
            "r.json",
        ])
        .args(["--fault", "claude_client=error:400"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first: Json = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(first["event"], "session_started", "{first}");
    let url = first["metrics"]
        .as_str()
        .expect("the metrics URL in session_started")
        .to_string();
    let addr: SocketAddr = url
        .trim_start_matches("http://")
        .trim_end_matches("/metrics")
        .parse()
        .unwrap();
    // Read the event stream on a thread of its own while this one scrapes.
    let reader = std::thread::spawn(move || lines.map(|l| l.unwrap()).collect::<Vec<String>>());

    let mut running_scrapes = 0;
    let mut last = None;
    // Each system's cost as last scraped: a counter, so it never goes down.
    let mut cost: BTreeMap<String, f64> = BTreeMap::new();
    let give_up = Instant::now() + Duration::from_secs(120);
    while let Some((head, body)) = scrape(addr) {
        assert!(
            head.to_ascii_lowercase()
                .contains("content-type: text/plain; version=0.0.4"),
            "{head}"
        );
        let s = parse(&body);
        for sample in s
            .samples
            .iter()
            .filter(|x| x.metric == "singularis_cost_usd_total")
        {
            let Value::Counter(usd) = sample.value else {
                panic!("singularis_cost_usd_total is not a counter: {sample:?}");
            };
            let system = sample.labels.get("system").unwrap().to_string();
            let before = cost.insert(system.clone(), usd).unwrap_or(0.0);
            assert!(
                usd >= before,
                "{system}'s cost went down: {before} -> {usd}"
            );
        }
        let phase = by_label(&s, "singularis_session_phase", "phase");
        if phase.get("running") == Some(&1.0) {
            running_scrapes += 1;
        }
        let is_final = phase.get("final") == Some(&1.0);
        last = Some(s);
        if is_final {
            break;
        }
        assert!(
            Instant::now() < give_up,
            "the session never reached its final figures"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = crate::common::finish_within(child, "the scraped session");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "stderr: {stderr}");
    assert!(running_scrapes > 0, "scraped while the game was running");
    let m = last.expect("at least one scrape");
    assert_eq!(
        by_label(&m, "singularis_session_phase", "phase")["final"],
        1.0
    );
    assert!(
        scrape(addr).is_none(),
        "the endpoint is closed once the process is gone"
    );

    let report: Json =
        serde_json::from_slice(&std::fs::read(dir.path().join("r.json")).unwrap()).unwrap();
    let stats = &report["stats"];

    // Per session.
    assert_eq!(one(&m, "singularis_cycles_total"), 6.0);
    assert_eq!(
        one(&m, "singularis_cycles_total"),
        stats["cycles"].as_f64().unwrap()
    );
    assert_eq!(
        by_label(&m, "singularis_actions_total", "kind"),
        as_f64_map(&stats["actions_by_kind"])
    );
    assert_eq!(
        one(&m, "singularis_fallback_actions_total"),
        stats["fallbacks"].as_f64().unwrap()
    );
    // Per system.
    let priced: BTreeMap<String, f64> = stats["usage"]["systems"]
        .as_object()
        .unwrap()
        .iter()
        .filter_map(|(k, v)| Some((k.clone(), v["cost_usd"].as_f64()?)))
        .filter(|(_, usd)| *usd > 0.0)
        .collect();
    assert!(!priced.is_empty(), "the sandbox's answers cost something");
    let scraped_cost: BTreeMap<String, f64> = by_label(&m, "singularis_cost_usd_total", "system")
        .into_iter()
        .filter(|(_, usd)| *usd > 0.0)
        .collect();
    assert_eq!(
        scraped_cost, priced,
        "the cost counter ends at the report's cost"
    );
    let calls = as_f64_map(&stats["calls_by_system"]);
    let errors = as_f64_map(&stats["errors_by_system"]);
    assert_eq!(by_label(&m, "singularis_requests_total", "system"), calls);
    assert_eq!(
        by_label(&m, "singularis_request_errors_total", "system"),
        errors
    );
    assert!(
        errors["claude_client"] > 0.0,
        "the injected fault shows as errors"
    );
    assert_eq!(
        by_label(&m, "singularis_connections_opened_total", "system"),
        as_f64_map(&stats["connections_opened_by_system"])
    );
    let successes: BTreeMap<String, f64> = calls
        .iter()
        .map(|(k, v)| (k.clone(), v - errors[k]))
        .collect();
    let histogram_counts = by_label(&m, "singularis_request_duration_seconds", "system");
    assert_eq!(
        histogram_counts, successes,
        "one duration per successful request"
    );
    for (system, open) in by_label(&m, "singularis_open_sockets", "system") {
        assert_eq!(open, 0.0, "{system}: sockets left after its close");
    }
    for (system, n) in by_label(&m, "singularis_requests_in_flight", "system") {
        assert_eq!(n, 0.0, "{system}");
    }
    for s in m
        .samples
        .iter()
        .filter(|s| s.metric == "singularis_system_state")
    {
        let want = if s.labels.get("state") == Some("closed") {
            1.0
        } else {
            0.0
        };
        assert_eq!(value(s), want, "{:?}", s.labels);
    }
    // Shutdown.
    let sd = &report["shutdown"];
    let outcomes = by_label(&m, "singularis_shutdown_systems", "outcome");
    for (outcome, key) in [
        ("closed", "closed"),
        ("forced", "forced"),
        ("error", "errors"),
        ("skipped", "skipped"),
    ] {
        assert_eq!(outcomes[outcome], sd[key].as_f64().unwrap(), "{outcome}");
    }
    // Requests cancelled at the grace deadline, per system: the report's `cancelled`.
    let cancelled = by_label(&m, "singularis_shutdown_cancelled_requests", "system");
    assert_eq!(cancelled.len(), 11, "{cancelled:?}");
    for r in sd["systems"].as_array().unwrap() {
        let name = r["name"].as_str().unwrap();
        assert_eq!(cancelled[name], r["cancelled"].as_f64().unwrap(), "{name}");
    }
    assert_eq!(
        cancelled.values().sum::<f64>(),
        sd["cancelled"].as_f64().unwrap()
    );
    let seconds = one(&m, "singularis_shutdown_duration_seconds");
    assert!(
        seconds > 0.0 && seconds * 1e3 <= sd["total_ms"].as_f64().unwrap(),
        "{seconds}"
    );
    let endpoint = &sd["endpoints"][0];
    assert_eq!(endpoint["name"], "metrics endpoint");
    assert_eq!(endpoint["outcome"], "closed");
    assert_eq!(sd["sockets_open_after"], 0);

    // The JSON event stream: every line parses, and its shutdown events are the report's.
    let events: Vec<Json> = reader
        .join()
        .unwrap()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    for e in &events {
        assert!(e["ts"].is_string() && e["event"].is_string(), "{e}");
    }
    let of = |kind: &str| {
        events
            .iter()
            .filter(|e| e["event"] == kind)
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(of("cycle").len(), 6);
    assert_eq!(of("cycle").last().unwrap()["cycle"], 6);
    let strip = |mut v: Json| {
        v.as_object_mut().unwrap().remove("ts");
        v.as_object_mut().unwrap().remove("event");
        v
    };
    let closed: Vec<Json> = of("closed").into_iter().map(strip).collect();
    assert_eq!(
        &closed,
        sd["systems"].as_array().unwrap(),
        "closed events = report systems, in order"
    );
    let endpoints: Vec<Json> = of("endpoint_closed").into_iter().map(strip).collect();
    assert_eq!(&endpoints, sd["endpoints"].as_array().unwrap());
    let complete = &of("shutdown_complete")[0];
    for key in [
        "reason",
        "grace_ms",
        "total_ms",
        "closed",
        "forced",
        "errors",
        "skipped",
        "cancelled",
        "sockets_open_after",
    ] {
        assert_eq!(complete[key], sd[key], "{key}");
    }
    assert_eq!(of("shutdown_started")[0]["reason"], "cycles");
    let ended = events.last().unwrap();
    assert_eq!(ended["event"], "session_ended");
    assert_eq!(ended["exit_code"], 0);
    assert_eq!(ended["stats"], report["stats"]);
    // State changes: claude_client went to error with its cause, and every system that ran
    // ended closed.
    let states = of("state");
    assert!(
        states.iter().any(|e| e["system"] == "claude_client"
            && e["to"] == "error"
            && e["error"].as_str().is_some_and(|c| c.contains("400"))),
        "claude_client's error in the stream"
    );
    for sys in sd["systems"].as_array().unwrap() {
        let last = states
            .iter()
            .rev()
            .find(|e| e["system"] == sys["name"])
            .expect("a state change per system");
        assert_eq!(last["to"], "closed", "{}", sys["name"]);
    }
}

/// The endpoint is a connection like any other: an idle keep-alive scraper connection is
/// closed at shutdown, the listener with it, and the process-wide check covers both.
#[test]
fn the_metrics_endpoint_closes_as_a_shutdown_step() {
    crate::common::serial(async {
        let mut config = Config::default();
        config.audio.enabled = false;
        config.metrics.listen = Some("127.0.0.1:0".parse().unwrap());
        let session = Session::start(config).await.unwrap();
        let addr = session.metrics_addr().expect("serving");
        // A scraper that keeps its connection open between scrapes, as Prometheus does. It is
        // in this process, so it must let go of its end when the server closes, or the
        // process-wide check would rightly count it: a thread reads until EOF, then drops it.
        let (answered_tx, answered) = std::sync::mpsc::channel();
        let scraper = std::thread::spawn(move || {
            let mut keep = TcpStream::connect(addr).unwrap();
            keep.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n")
                .unwrap();
            keep.set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let mut seen = Vec::new();
            let mut buf = [0u8; 64 * 1024];
            loop {
                match keep.read(&mut buf) {
                    Ok(0) => return Ok(seen.len()),
                    Ok(n) => {
                        seen.extend_from_slice(&buf[..n]);
                        if String::from_utf8_lossy(&seen).contains("singularis_build_info") {
                            let _ = answered_tx.send(());
                        }
                    }
                    Err(e) => return Err(e.to_string()),
                }
            }
        });
        answered
            .recv_timeout(Duration::from_secs(10))
            .expect("the scrape was answered");
        session.quit.quit(Reason::Quit);
        let report_path = tempfile::tempdir().unwrap();
        let end = session
            .shutdown(
                Duration::from_millis(500),
                singularis_tui::config::Mode::Parallel,
                Some(report_path.path().join("r.json")),
                None,
            )
            .await;
        let sd = &end.report.shutdown.report;
        assert_eq!(sd.endpoints.len(), 1);
        let ep = &sd.endpoints[0];
        assert_eq!(ep.name, "metrics endpoint");
        assert!(
            ep.sockets_before >= 2,
            "the listener and the scraper's connection: {}",
            ep.sockets_before
        );
        assert_eq!(ep.error, None);
        // The scraper saw its connection end (EOF, not a timeout), and nothing listens any more.
        assert!(matches!(scraper.join().unwrap(), Ok(n) if n > 0));
        assert_eq!(sd.sockets_open_after, Some(0));
        let refused = tokio::net::TcpStream::connect(addr).await.map(drop);
        assert!(
            matches!(&refused, Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused),
            "{refused:?}"
        );
    });
}

/// `--json` alone, stdout not a terminal: the run is headless anyway, so the events come
/// (it required --headless before; on a terminal see
/// tui_e2e::json_on_a_terminal_says_what_to_do). A taken metrics port: see
/// cli::a_port_in_use_is_said_in_one_line_and_exits_2.
#[test]
fn json_alone_when_stdout_is_not_a_terminal() {
    let _one = crate::common::one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let out = cmd(dir.path())
        .args(["--json", "--cycles", "1"])
        .bounded_output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let events: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(events.first().unwrap()["event"], "session_started");
    assert_eq!(events.last().unwrap()["event"], "session_ended");
}
