//! Services in trouble: retries with backoff, recovery, cancellation by shutdown, and bad
//! bytes on the wire. Real loopback TCP: the sandbox, or a raw socket speaking broken HTTP.

use crate::common::wire::{
    Arrivals, http, prompt, raw_server, registry_for, registry_retrying, rig, scripted_server,
};
use singularis_tui::clients::{ClientError, anthropic, gemini, openai};
use singularis_tui::config::Config;
use singularis_tui::lifecycle::{CloseOutcome, Registry, SystemState};
use singularis_tui::sandbox::fault::Fault;
use singularis_tui::systems::SystemId;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

async fn chat(reg: &Registry, id: SystemId) -> Result<String, ClientError> {
    reg.get(id)
        .call(|c| async move { openai::chat(&c, &prompt(), false).await })
        .await
}

#[tokio::test]
async fn a_failing_service_is_retried_then_shows_error_and_recovers() {
    let (sandbox, reg) = rig(&Config::default()).await;
    let id = SystemId::OPENAI_CLIENT;
    sandbox.set_fault(id, Some(Fault::Error(503)));
    let err = chat(&reg, id).await.unwrap_err();
    assert!(
        matches!(err, ClientError::Status { status: 503, .. }),
        "{err}"
    );
    let snap = reg.get(id).snapshot();
    assert_eq!(snap.state, SystemState::Error);
    assert!(
        snap.last_error.as_deref().unwrap().starts_with("HTTP 503"),
        "{:?}",
        snap.last_error
    );
    assert_eq!(snap.retries, 2, "the configured two retries were made");
    assert_eq!(sandbox.requests(id).len(), 3);

    sandbox.set_fault(id, None);
    chat(&reg, id).await.unwrap();
    assert_eq!(
        reg.get(id).snapshot().state,
        SystemState::Idle,
        "recovered with the service"
    );
    sandbox.stop().await;
}

#[tokio::test]
async fn a_retry_succeeds_when_the_service_comes_back_during_backoff() {
    let (sandbox, reg) = rig(&Config::default()).await;
    let id = SystemId::HYPERBOLIC_CLIENT;
    sandbox.set_fault(id, Some(Fault::Error(502)));
    let call = tokio::spawn({
        let reg = reg.clone();
        async move { chat(&reg, id).await }
    });
    crate::common::until("the first request", || !sandbox.requests(id).is_empty()).await;
    sandbox.set_fault(id, None);
    call.await.unwrap().expect("answered on retry");
    assert!(reg.get(id).snapshot().retries >= 1);
    assert_eq!(reg.get(id).snapshot().errors, 0);
    sandbox.stop().await;
}

#[tokio::test]
async fn retry_after_is_honoured_and_shutdown_cancels_the_wait_at_once() {
    let (sandbox, reg) = rig(&Config::default()).await;
    let id = SystemId::CLAUDE_CLIENT;
    sandbox.set_fault(id, Some(Fault::RateLimit(1))); // 429 with Retry-After: 1
    let sys = reg.get(id).clone();
    let call = tokio::spawn({
        let sys = sys.clone();
        async move {
            sys.call(|c| async move { anthropic::messages(&c, &prompt(), false).await })
                .await
        }
    });
    crate::common::until("a retry", || sys.snapshot().retries >= 1).await;
    // Waiting out Retry-After: one request so far, the next not before a second has passed.
    assert_eq!(sandbox.requests(id).len(), 1);
    let report = sys
        .close(
            tokio::time::Instant::now() + Duration::from_secs(30),
            &Default::default(),
        )
        .await;
    assert_eq!(
        report.outcome,
        CloseOutcome::Closed,
        "the backoff wait is cancelled, not waited out"
    );
    assert!(
        report.close_ms < 1000.0,
        "closed inside the Retry-After wait: {} ms",
        report.close_ms
    );
    assert!(call.await.unwrap().unwrap_err().is_cancelled());
    assert_eq!(sandbox.requests(id).len(), 1, "no retry after the close");
    sandbox.stop().await;
}

#[tokio::test]
async fn configured_timeouts_are_honoured() {
    let mut config = Config::default();
    config
        .systems
        .get_mut(&SystemId::OPENAI_CLIENT)
        .unwrap()
        .timeout_ms = 200;
    config
        .systems
        .get_mut(&SystemId::OPENAI_CLIENT)
        .unwrap()
        .retries = 0;
    let (sandbox, reg) = rig(&config).await;
    sandbox.set_fault(SystemId::OPENAI_CLIENT, Some(Fault::Hang));
    let err = chat(&reg, SystemId::OPENAI_CLIENT).await.unwrap_err();
    assert!(matches!(err, ClientError::Timeout), "{err}");
    assert_eq!(
        reg.get(SystemId::OPENAI_CLIENT)
            .snapshot()
            .last_error
            .as_deref(),
        Some("timed out")
    );
    sandbox.stop().await;
}

/// A registry whose `openai_client` talks to `url`; the other systems stay on nothing.

#[tokio::test]
async fn bad_bytes_from_a_service_fail_that_request_clearly() {
    let huge = vec![b'x'; 17 << 20];
    let cases: Vec<(&str, Vec<u8>, bool, &str)> = vec![
        (
            "truncated JSON",
            http(
                "200 OK",
                "application/json",
                br#"{"choices":[{"message":{"content":"hi"#,
            ),
            false,
            "invalid JSON",
        ),
        (
            "wrong content type",
            http("200 OK", "text/html", b"<html>hello</html>"),
            false,
            "expected application/json",
        ),
        (
            "JSON without the answer",
            http("200 OK", "application/json", br#"{"id":"x"}"#),
            false,
            "without choices",
        ),
        (
            "huge body",
            http("200 OK", "application/json", &huge),
            false,
            "exceeds",
        ),
        (
            "invalid SSE",
            http("200 OK", "text/event-stream", b"data: {not json}\n\n"),
            true,
            "invalid event JSON",
        ),
        (
            "SSE without a finish_reason",
            http(
                "200 OK",
                "text/event-stream",
                b"data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n",
            ),
            true,
            "ended before a finish_reason",
        ),
        (
            "SSE cut mid-event",
            http(
                "200 OK",
                "text/event-stream",
                b"data: {\"choices\":[{\"delta\":",
            ),
            true,
            "mid-event",
        ),
        (
            "non-UTF-8 SSE",
            http("200 OK", "text/event-stream", b"data: \xff\xfe\n\n"),
            true,
            "not UTF-8",
        ),
        (
            "error status with HTML",
            http("500 Internal Server Error", "text/html", b"<h1>oops</h1>"),
            false,
            "HTTP 500",
        ),
    ];
    for (what, response, stream, expect) in cases {
        let url = raw_server(response).await;
        let reg = registry_for(SystemId::OPENAI_CLIENT, url.clone());
        let sys = reg.get(SystemId::OPENAI_CLIENT);
        let err = sys
            .call(move |c| async move { openai::chat(&c, &prompt(), stream).await })
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains(expect), "{what}: {text}");
        assert!(
            !text.contains("127.0.0.1"),
            "{what}: no URL in error text: {text}"
        );
        let snap = sys.snapshot();
        assert_eq!(snap.state, SystemState::Error, "{what}");
        assert_eq!(snap.errors, 1, "{what}");
        // Nothing else broke: the other systems are untouched.
        assert!(
            reg.snapshots()
                .iter()
                .filter(|s| s.id != SystemId::OPENAI_CLIENT)
                .all(|s| s.errors == 0)
        );
    }
}

#[tokio::test]
async fn gemini_speech_with_bad_audio_fails_clearly() {
    let body = br#"{"candidates":[{"content":{"parts":[{"inlineData":{"mimeType":"audio/L16;codec=pcm;rate=24000","data":"%%%notbase64"}}]}}]}"#;
    let url = raw_server(http("200 OK", "application/json", body)).await;
    let reg = registry_for(SystemId::VOICE_SYSTEM, url.join("/").unwrap());
    let err = reg
        .get(SystemId::VOICE_SYSTEM)
        .call(|c| async move { gemini::speak(&c, "hi", "Kore").await })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not base64"), "{err}");
}

// ---- what the services call retryable -------------------------------------------------

#[tokio::test]
async fn a_501_is_not_retried_but_overloaded_services_are() {
    let (sandbox, reg) = rig(&Config::default()).await;
    // Wolfram answers 501 for input it does not understand: asking again spends quota.
    let id = SystemId::WOLFRAM_ANALYZER;
    sandbox.set_fault(id, Some(Fault::Error(501)));
    let err = reg
        .get(id)
        .call(|c| async move { singularis_tui::clients::wolfram::query(&c, "x").await })
        .await
        .unwrap_err();
    assert!(
        matches!(err, ClientError::Status { status: 501, .. }),
        "{err}"
    );
    assert_eq!(sandbox.requests(id).len(), 1, "501 is not worth a retry");
    assert_eq!(reg.get(id).snapshot().retries, 0);

    // Anthropic's 529 overloaded_error and Gemini's 503 UNAVAILABLE are retried.
    for (id, status) in [
        (SystemId::CLAUDE_CLIENT, 529),
        (SystemId::GEMINI_CLIENT, 503),
        (SystemId::OPENAI_CLIENT, 503),
    ] {
        sandbox.set_fault(id, Some(Fault::Overloaded));
        let proto = reg.get(id).config.protocol;
        let ask = move |c| async move { singularis_tui::clients::ask(&c, proto, &prompt()).await };
        let err = reg.get(id).call(ask).await.unwrap_err();
        assert!(
            matches!(err, ClientError::Status { status: s, .. } if s == status),
            "{id}: {err}"
        );
        assert_eq!(
            sandbox.requests(id).len(),
            3,
            "{id}: the first try and two retries"
        );
        assert_eq!(reg.get(id).snapshot().retries, 2, "{id}");
        sandbox.set_fault(id, None);
        reg.get(id).call(ask).await.unwrap();
    }
    sandbox.stop().await;
}

/// A loopback server that answers its first request with `first` and every later one with
/// `then`; when each request arrived.
async fn two_step_server(first: Vec<u8>, then: Vec<u8>) -> (url::Url, Arrivals) {
    scripted_server(move |n| if n == 1 { first.clone() } else { then.clone() }).await
}

const CHAT_OK: &[u8] = br#"{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":"ACTION: rest"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}}"#;

#[tokio::test]
async fn a_429_with_an_http_date_retry_after_waits_until_that_date() {
    let until = std::time::SystemTime::now() + Duration::from_secs(2);
    let date = httpdate::fmt_http_date(until);
    let mut limited = format!(
        "HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\nretry-after: {date}\r\ncontent-length: 2\r\nconnection: close\r\n\r\n"
    )
    .into_bytes();
    limited.extend_from_slice(b"{}");
    let (url, seen) = two_step_server(limited, http("200 OK", "application/json", CHAT_OK)).await;
    let reg = registry_retrying(SystemId::OPENAI_CLIENT, url, 1);
    let answer = chat(&reg, SystemId::OPENAI_CLIENT).await.unwrap();
    assert_eq!(answer, "ACTION: rest");
    let times = seen.lock().unwrap().clone();
    assert_eq!(times.len(), 2, "one 429, one retry");
    // The date has whole seconds: the retry may not come before the second it names.
    let named = httpdate::parse_http_date(&date).unwrap();
    assert!(
        times[1] >= named,
        "retried at {:?}, before the Retry-After date {date}",
        times[1]
    );
}

#[tokio::test]
async fn openai_retry_after_ms_is_honoured() {
    let mut limited = b"HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\nretry-after-ms: 1200\r\nretry-after: 0\r\ncontent-length: 2\r\nconnection: close\r\n\r\n".to_vec();
    limited.extend_from_slice(b"{}");
    let (url, seen) = two_step_server(limited, http("200 OK", "application/json", CHAT_OK)).await;
    let reg = registry_retrying(SystemId::OPENAI_CLIENT, url, 1);
    chat(&reg, SystemId::OPENAI_CLIENT).await.unwrap();
    let times = seen.lock().unwrap().clone();
    let gap = times[1].duration_since(times[0]).unwrap();
    assert!(
        gap >= Duration::from_millis(1200),
        "retry-after-ms asked for 1200 ms, the retry came after {gap:?}"
    );
}

// ---- transport errors in words (issue #13 item 9) -----------------------------------------

/// What a system's row shows after a failed call, checked against the error itself.
async fn said(reg: &Registry, id: SystemId) -> String {
    let proto = reg.get(id).config.protocol;
    let err = reg
        .get(id)
        .call(move |c| async move { singularis_tui::clients::ask(&c, proto, &prompt()).await })
        .await
        .unwrap_err();
    let text = err.to_string();
    assert_eq!(
        reg.get(id).snapshot().last_error.as_deref(),
        Some(text.as_str()),
        "{id}: the row shows the same words"
    );
    text
}

#[tokio::test]
async fn connect_failures_name_the_host_and_the_cause() {
    // A port nobody listens on: bound, then let go.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = url::Url::parse(&format!("http://127.0.0.1:{port}/v1")).unwrap();
    assert_eq!(
        said(
            &registry_for(SystemId::OPENAI_CLIENT, url.clone()),
            SystemId::OPENAI_CLIENT
        )
        .await,
        format!("connection refused by 127.0.0.1:{port}")
    );

    // RFC 6761: `.invalid` never resolves. The connect timeout bounds a resolver that hangs.
    let url = url::Url::parse("http://nosuch.invalid:9/v1").unwrap();
    assert_eq!(
        said(
            &registry_for(SystemId::OPENAI_CLIENT, url.clone()),
            SystemId::OPENAI_CLIENT
        )
        .await,
        "cannot resolve nosuch.invalid (DNS)"
    );

    // TLS to a server that speaks plain HTTP: the handshake fails, named by host and port.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let _ = sock
                .write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
                .await;
        }
    });
    let url = url::Url::parse(&format!("https://127.0.0.1:{port}/v1")).unwrap();
    let text = said(
        &registry_for(SystemId::OPENAI_CLIENT, url.clone()),
        SystemId::OPENAI_CLIENT,
    )
    .await;
    assert!(
        text.starts_with(&format!("TLS handshake with 127.0.0.1:{port} failed: ")),
        "{text}"
    );
}

#[tokio::test]
async fn a_reset_mid_answer_is_a_reset_not_a_protocol_error() {
    let (sandbox, reg) = rig(&Config::default()).await;
    let id = SystemId::OPENAI_CLIENT;
    sandbox.set_fault(id, Some(Fault::Reset));
    for stream in [false, true] {
        let err = reg
            .get(id)
            .call(move |c| async move { openai::chat(&c, &prompt(), stream).await })
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "connection reset while reading the answer",
            "stream: {stream}"
        );
    }
    sandbox.stop().await;
}

#[tokio::test]
async fn error_statuses_read_with_their_reason_and_when_to_retry() {
    let mut config = Config::default();
    for id in [SystemId::WOLFRAM_ANALYZER, SystemId::OPENAI_CLIENT] {
        config.systems.get_mut(&id).unwrap().retries = 0;
    }
    let (sandbox, reg) = rig(&config).await;
    let cases = [
        // Wolfram's text only restates the status: said once.
        (
            SystemId::WOLFRAM_ANALYZER,
            Fault::RateLimit(1),
            "HTTP 429 Too Many Requests, retry in 1 s",
        ),
        (
            SystemId::WOLFRAM_ANALYZER,
            Fault::Error(503),
            "HTTP 503 Service Unavailable",
        ),
        // OpenAI's message adds something: kept.
        (
            SystemId::OPENAI_CLIENT,
            Fault::RateLimit(1),
            "HTTP 429 Too Many Requests, retry in 1 s: Rate limit reached for requests. Please try again in 1s.",
        ),
        (
            SystemId::OPENAI_CLIENT,
            Fault::Error(503),
            "HTTP 503 Service Unavailable: The server is overloaded or not ready yet.",
        ),
    ];
    for (id, fault, want) in cases {
        sandbox.set_fault(id, Some(fault));
        let got = said(&reg, id).await;
        // OpenAI names the request, Wolfram does not.
        let (words, rid) = got.split_once(" (request id req_").unwrap_or((&got, ""));
        assert_eq!(words, want, "{id} {fault}");
        assert_eq!(rid.is_empty(), id == SystemId::WOLFRAM_ANALYZER, "{got}");
    }
    sandbox.stop().await;
}
