//! The last wire gaps (issue #24): chunks without candidates, `x-should-retry` and 409, a
//! long `Retry-After`, request ids, and usage a service does not report.

use crate::common::wire::{http, prompt, raw_server, registry_for, rig};
use singularis_tui::clients::{ClientError, gemini, openai};
use singularis_tui::config::Config;
use singularis_tui::lifecycle::Registry;
use singularis_tui::sandbox::fault::Fault;
use singularis_tui::systems::{Protocol, SystemId};
use std::time::Duration;

async fn ask(reg: &Registry, id: SystemId) -> Result<String, ClientError> {
    let proto = reg.get(id).config.protocol;
    reg.get(id)
        .call(move |c| async move { singularis_tui::clients::ask(&c, proto, &prompt()).await })
        .await
}

fn a_system_with(config: &Config, protocol: Protocol) -> SystemId {
    singularis_tui::config::Config::default()
        .ids()
        .into_iter()
        .find(|id| config.system(*id).protocol == protocol)
        .expect("a system speaks it")
}

#[tokio::test]
async fn a_gemini_stream_ending_in_a_usage_only_chunk_is_read_and_counted() {
    let config = Config::default();
    let (sandbox, reg) = rig(&config).await;
    let id = a_system_with(&config, Protocol::GeminiStream);
    let text = reg
        .get(id)
        .call(|c| async move { gemini::stream(&c, &prompt(), |_| {}).await })
        .await
        .expect("a chunk without candidates is skipped, not fatal");
    assert!(!text.is_empty());
    let usage = reg.get(id).snapshot().usage.expect("its usage counted");
    assert!(usage.input > 0 && usage.output > 0, "{usage:?}");
    sandbox.stop().await;
}

#[tokio::test]
async fn a_409_is_retried_where_the_service_sdk_retries_it() {
    let config = Config::default();
    let (sandbox, reg) = rig(&config).await;
    let gem = a_system_with(&config, Protocol::GeminiGenerate);
    for (id, tries) in [
        (SystemId::OPENAI_CLIENT, 3),
        (SystemId::CLAUDE_CLIENT, 3),
        // google-genai does not retry a 409.
        (gem, 1),
    ] {
        sandbox.set_fault(id, Some(Fault::Error(409)));
        let err = ask(&reg, id).await.unwrap_err();
        assert!(
            matches!(err, ClientError::Status { status: 409, .. }),
            "{id}: {err}"
        );
        assert_eq!(sandbox.requests(id).len(), tries, "{id}");
    }
    sandbox.stop().await;
}

#[tokio::test]
async fn errors_carry_the_request_id_and_x_should_retry_the_service_sent() {
    let (sandbox, reg) = rig(&Config::default()).await;
    for (id, status, again) in [
        (SystemId::OPENAI_CLIENT, 400, false),
        (SystemId::CLAUDE_CLIENT, 500, true),
    ] {
        sandbox.set_fault(id, Some(Fault::Error(status)));
        let err = ask(&reg, id).await.unwrap_err();
        let ClientError::Status {
            request_id,
            should_retry,
            ..
        } = &err
        else {
            panic!("{id}: {err}");
        };
        let rid = request_id.clone().expect("a request id");
        assert!(rid.starts_with("req_"), "{id}: {rid}");
        assert_eq!(*should_retry, Some(again), "{id}");
        let last = reg.get(id).snapshot().last_error.unwrap_or_default();
        assert!(
            last.ends_with(&format!("(request id {rid})")),
            "{id}: the dashboard and report say it: {last}"
        );
    }
    // Gemini sends no request id its SDK reads.
    let gem = SystemId::GEMINI_CLIENT;
    sandbox.set_fault(gem, Some(Fault::Error(400)));
    let err = ask(&reg, gem).await.unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Status {
                request_id: None,
                ..
            }
        ),
        "{err}"
    );
    sandbox.stop().await;
}

#[tokio::test]
async fn a_retry_after_past_the_cap_is_waited_out_within_the_deadline() {
    let mut config = Config::default();
    config.resilience.deadline_initial_ms = Some(30_000);
    config.resilience.deadline_ceiling_ms = 30_000;
    let (sandbox, reg) = rig(&config).await;
    let id = SystemId::CLAUDE_CLIENT;
    // Longer than MAX_BACKOFF (5 s), well inside the 30 s deadline.
    sandbox.set_fault(id, Some(Fault::RateLimit(6)));
    let sys = reg.get(id).clone();
    let call = tokio::spawn({
        let sys = sys.clone();
        async move {
            sys.call(|c| async move {
                singularis_tui::clients::anthropic::messages(&c, &prompt(), false).await
            })
            .await
        }
    });
    crate::common::until("a retry", || sys.snapshot().retries >= 1).await;
    // The service has had its say; the next attempt finds it well again.
    sandbox.set_fault(id, None);
    call.await
        .unwrap()
        .expect("the wait was kept, then answered");
    assert_eq!(sandbox.requests(id).len(), 2);
    sandbox.stop().await;
}

#[tokio::test]
async fn a_retry_after_past_the_deadline_fails_at_once_saying_how_long() {
    let (sandbox, reg) = rig(&Config::default()).await;
    let id = SystemId::OPENAI_CLIENT;
    sandbox.set_fault(id, Some(Fault::RateLimit(3600)));
    let err = ask(&reg, id).await.unwrap_err();
    assert!(err.to_string().contains("retry in 3600 s"), "{err}");
    assert_eq!(sandbox.requests(id).len(), 1, "no wait past the deadline");
    assert_eq!(reg.get(id).snapshot().retries, 0);
    sandbox.stop().await;
}

#[tokio::test]
async fn lm_studio_without_usage_leaves_tokens_and_cost_unknown() {
    // LM Studio's stream, which may ignore stream_options.include_usage: no usage chunk.
    let chunk = |delta: &str, finish: &str| {
        format!(
            "data: {{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"phi\",\"choices\":[{{\"index\":0,\"delta\":{delta},\"finish_reason\":{finish}}}]}}\n\n"
        )
    };
    let body = [
        chunk(r#"{"role":"assistant","content":"Go"}"#, "null"),
        chunk(r#"{"content":" north"}"#, "null"),
        chunk("{}", r#""stop""#),
        "data: [DONE]\n\n".to_string(),
    ]
    .concat();
    let url = raw_server(http("200 OK", "text/event-stream", body.as_bytes())).await;
    let id = SystemId::LMSTUDIO_CLIENT;
    let reg = registry_for(id, url);
    let text = reg
        .get(id)
        .call(|c| async move { openai::chat(&c, &prompt(), true).await })
        .await
        .unwrap();
    assert_eq!(text, "Go north");
    let snap = reg.get(id).snapshot();
    assert_eq!(snap.usage, None, "unknown, not 0");
    assert_eq!(snap.cost_usd, None);
}

#[tokio::test]
async fn a_long_retry_after_wait_ends_at_once_on_close() {
    let mut config = Config::default();
    config.resilience.deadline_initial_ms = Some(30_000);
    config.resilience.deadline_ceiling_ms = 30_000;
    let (sandbox, reg) = rig(&config).await;
    let id = SystemId::OPENAI_CLIENT;
    sandbox.set_fault(id, Some(Fault::RateLimit(20)));
    let sys = reg.get(id).clone();
    let call = tokio::spawn({
        let sys = sys.clone();
        async move {
            sys.call(|c| async move { openai::chat(&c, &prompt(), false).await })
                .await
        }
    });
    crate::common::until("a retry", || sys.snapshot().retries >= 1).await;
    let report = sys
        .close(
            tokio::time::Instant::now() + Duration::from_secs(30),
            &Default::default(),
        )
        .await;
    assert_eq!(
        report.outcome,
        singularis_tui::lifecycle::CloseOutcome::Closed
    );
    let err = call.await.unwrap().unwrap_err();
    assert!(err.is_cancelled(), "the wait was cut by the close: {err}");
    assert_eq!(sandbox.requests(id).len(), 1, "no retry after the close");
    sandbox.stop().await;
}
