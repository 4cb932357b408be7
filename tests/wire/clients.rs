//! Every client against the sandbox over loopback TCP: the answer is read (streams to the
//! end), and the request the server saw is asserted: path, headers, JSON body.

use singularis_tui::clients::{self, Prompt, anthropic, gemini, openai, wolfram};
use singularis_tui::config::Config;
use singularis_tui::lifecycle::{Registry, RequestCtx};
use singularis_tui::sandbox::{RecordedRequest, Sandbox};
use singularis_tui::systems::{Protocol, SystemId};
use std::collections::BTreeMap;
use std::sync::Arc;

struct Rig {
    sandbox: Sandbox,
    registry: Arc<Registry>,
}

async fn rig() -> Rig {
    rig_with(Config::default()).await
}

async fn rig_with(config: Config) -> Rig {
    // A canary key for every service: it must arrive in the right header, and only there.
    let env = |name: &str| Some(format!("key-for-{name}"));
    let (sandbox, registry) = crate::common::wire::rig_keyed(&config, &env).await;
    Rig { sandbox, registry }
}

impl Rig {
    async fn call<T: Send + 'static, F, Fut>(&self, id: SystemId, f: F) -> T
    where
        F: FnOnce(RequestCtx) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<T, clients::ClientError>> + Send + 'static,
    {
        self.registry
            .get(id)
            .call(f)
            .await
            .unwrap_or_else(|e| panic!("{id}: {e}"))
    }

    fn last(&self, id: SystemId) -> RecordedRequest {
        self.sandbox
            .requests(id)
            .pop()
            .unwrap_or_else(|| panic!("{id}: no request recorded"))
    }
}

fn header<'a>(r: &'a RecordedRequest, name: &str) -> &'a str {
    r.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no {name} header"))
}

fn json(r: &RecordedRequest) -> serde_json::Value {
    serde_json::from_slice(&r.body).expect("JSON request body")
}

fn prompt() -> Prompt {
    Prompt::new(
        "You play a game.",
        "Health: 90/100\nEnemy: a bandit (hostile) in view",
    )
}

#[tokio::test]
async fn openai_chat_plain_and_streamed() {
    let rig = rig().await;
    let text = rig
        .call(SystemId::OPENAI_CLIENT, |c| async move {
            openai::chat(&c, &prompt(), false).await
        })
        .await;
    assert!(text.contains("ACTION:"), "{text}");
    let r = rig.last(SystemId::OPENAI_CLIENT);
    assert_eq!(
        (r.method.as_str(), r.path_and_query.as_str()),
        ("POST", "/v1/chat/completions")
    );
    assert_eq!(header(&r, "authorization"), "Bearer key-for-OPENAI_API_KEY");
    assert!(header(&r, "content-type").starts_with("application/json"));
    let body = json(&r);
    assert_eq!(
        body["model"],
        SystemId::OPENAI_CLIENT.defaults().unwrap().model
    );
    assert_eq!(body["messages"][0]["role"], "system");
    assert_eq!(body["messages"][1]["role"], "user");
    assert!(body.get("stream").is_none());

    // LM Studio streams: chunks until `data: [DONE]`, reassembled.
    let streamed = rig
        .call(SystemId::LMSTUDIO_CLIENT, |c| async move {
            openai::chat(&c, &prompt(), true).await
        })
        .await;
    assert!(streamed.contains("ACTION: attack"), "{streamed}");
    let r = rig.last(SystemId::LMSTUDIO_CLIENT);
    assert_eq!(r.path_and_query, "/v1/chat/completions");
    assert_eq!(json(&r)["stream"], true);
    assert_eq!(json(&r)["model"], "microsoft/phi-4-mini-reasoning");
}

#[tokio::test]
async fn hyperbolic_and_meta_rl_speak_chat_completions() {
    let rig = rig().await;
    for (id, key, model) in [
        (
            SystemId::HYPERBOLIC_CLIENT,
            "HYPERBOLIC_API_KEY",
            "Qwen/Qwen3-235B-A22B-Instruct-2507",
        ),
        (
            SystemId::META_RL,
            "OPENAI_API_KEY",
            SystemId::META_RL.defaults().unwrap().model,
        ),
    ] {
        let text = rig
            .call(
                id,
                |c| async move { openai::chat(&c, &prompt(), false).await },
            )
            .await;
        assert!(!text.is_empty());
        let r = rig.last(id);
        assert_eq!(r.path_and_query, "/v1/chat/completions");
        assert_eq!(header(&r, "authorization"), format!("Bearer key-for-{key}"));
        assert_eq!(json(&r)["model"], model);
    }
}

#[tokio::test]
async fn openai_responses_plain_and_streamed() {
    let rig = rig().await;
    let plain = rig
        .call(SystemId::ORCHESTRATOR, |c| async move {
            openai::responses(&c, &prompt(), false).await
        })
        .await;
    let streamed = rig
        .call(SystemId::ORCHESTRATOR, |c| async move {
            openai::responses(&c, &prompt(), true).await
        })
        .await;
    assert_eq!(
        plain, streamed,
        "typed events reassemble into the same text"
    );
    assert!(plain.contains("ACTION:"));
    let r = rig.last(SystemId::ORCHESTRATOR);
    assert_eq!(r.path_and_query, "/v1/responses");
    assert_eq!(header(&r, "authorization"), "Bearer key-for-OPENAI_API_KEY");
    let body = json(&r);
    assert_eq!(
        body["model"],
        SystemId::ORCHESTRATOR.defaults().unwrap().model
    );
    assert_eq!(body["stream"], true);
    assert_eq!(body["instructions"], "You play a game.");
    assert_eq!(body["input"][0]["role"], "user");
}

#[tokio::test]
async fn anthropic_messages_plain_and_streamed() {
    let rig = rig().await;
    let plain = rig
        .call(SystemId::CLAUDE_CLIENT, |c| async move {
            anthropic::messages(&c, &prompt(), false).await
        })
        .await;
    let streamed = rig
        .call(SystemId::CLAUDE_CLIENT, |c| async move {
            anthropic::messages(&c, &prompt(), true).await
        })
        .await;
    assert_eq!(plain, streamed);
    let r = rig.last(SystemId::CLAUDE_CLIENT);
    assert_eq!(r.path_and_query, "/v1/messages");
    assert_eq!(header(&r, "x-api-key"), "key-for-ANTHROPIC_API_KEY");
    assert_eq!(
        header(&r, "anthropic-version"),
        anthropic::ANTHROPIC_VERSION
    );
    assert!(r.headers.get("authorization").is_none());
    let body = json(&r);
    assert_eq!(
        body["model"],
        SystemId::CLAUDE_CLIENT.defaults().unwrap().model
    );
    assert_eq!(body["max_tokens"], 256);
    assert_eq!(body["system"], "You play a game.");
}

#[tokio::test]
async fn gemini_generate_stream_and_speech() {
    let rig = rig().await;
    let text = rig
        .call(SystemId::GEMINI_CLIENT, |c| async move {
            gemini::generate(&c, &prompt()).await
        })
        .await;
    assert!(text.contains("ACTION:"));
    let r = rig.last(SystemId::GEMINI_CLIENT);
    assert_eq!(
        r.path_and_query,
        format!(
            "/v1beta/models/{}:generateContent",
            SystemId::GEMINI_CLIENT.defaults().unwrap().model
        )
    );
    assert_eq!(header(&r, "x-goog-api-key"), "key-for-GEMINI_API_KEY");
    assert!(
        !r.path_and_query.contains("key="),
        "the key never goes in the URL"
    );
    assert_eq!(json(&r)["contents"][0]["parts"][0]["text"], prompt().user);

    let pieces = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = pieces.clone();
    let described = rig
        .call(SystemId::VIDEO_INTERPRETER, move |c| async move {
            gemini::stream(&c, &prompt(), |p| seen.lock().unwrap().push(p.to_string())).await
        })
        .await;
    assert!(
        pieces.lock().unwrap().len() >= 2,
        "streamed in several chunks"
    );
    assert_eq!(pieces.lock().unwrap().concat(), described);
    let r = rig.last(SystemId::VIDEO_INTERPRETER);
    assert!(r.path_and_query.starts_with("/v1beta/models/"));
    assert!(
        r.path_and_query.ends_with(":streamGenerateContent?alt=sse"),
        "{}",
        r.path_and_query
    );

    let pcm = rig
        .call(SystemId::VOICE_SYSTEM, |c| async move {
            gemini::speak(&c, "I will attack.", "Kore").await
        })
        .await;
    assert_eq!(pcm.sample_rate, 24_000);
    assert!(pcm.duration_ms() > 100, "{} ms", pcm.duration_ms());
    assert!(
        pcm.samples.iter().any(|s| s.unsigned_abs() > 1000),
        "audible"
    );
    let body = json(&rig.last(SystemId::VOICE_SYSTEM));
    assert_eq!(body["generationConfig"]["responseModalities"][0], "AUDIO");
    assert_eq!(
        body["generationConfig"]["speechConfig"]["voiceConfig"]["prebuiltVoiceConfig"]["voiceName"],
        "Kore"
    );
}

#[tokio::test]
async fn wolfram_llm_api() {
    let rig = rig().await;
    let answer = rig
        .call(SystemId::WOLFRAM_ANALYZER, |c| async move {
            wolfram::query(&c, "combat odds player level 5 vs enemy level 3").await
        })
        .await;
    let p = wolfram::result_number(&answer).expect("a number under Result:");
    assert!((0.0..=1.0).contains(&p), "{p}");
    let r = rig.last(SystemId::WOLFRAM_ANALYZER);
    assert_eq!(r.method, "GET");
    assert!(
        r.path_and_query
            .starts_with("/api/v1/llm-api?input=combat+odds"),
        "{}",
        r.path_and_query
    );
    assert!(
        !r.path_and_query.contains("appid"),
        "the AppID goes in a header"
    );
    assert_eq!(header(&r, "authorization"), "Bearer key-for-WOLFRAM_APP_ID");
}

#[tokio::test]
async fn every_connection_is_counted_and_reused() {
    let rig = rig().await;
    for _ in 0..20 {
        rig.call(SystemId::OPENAI_CLIENT, |c| async move {
            openai::chat(&c, &prompt(), false).await
        })
        .await;
    }
    let sys = rig.registry.get(SystemId::OPENAI_CLIENT);
    assert_eq!(
        sys.connections_opened(),
        1,
        "sequential requests reuse one keep-alive connection"
    );
    rig.registry.measure_sockets();
    assert_eq!(sys.snapshot().open_sockets, 1);
    assert_eq!(sys.snapshot().done, 20);
}

/// More callers than connections, streams and unary alike: the pool stays within its limit
/// (the server counts what it accepted), even though hyper-util returns a finished
/// connection to the pool from a task of its own and a new request races a fresh connect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_system_stays_within_its_connection_limit() {
    let rig = rig().await;
    for id in [
        SystemId::OPENAI_CLIENT,
        SystemId::LMSTUDIO_CLIENT,
        SystemId::VIDEO_INTERPRETER,
    ] {
        let sys = rig.registry.get(id).clone();
        let proto = sys.config.protocol;
        let limit = sys.config.max_connections() as u64;
        for _ in 0..10 {
            let calls = (0..2 * limit).map(|_| {
                let sys = sys.clone();
                async move {
                    sys.call(move |c| async move { clients::ask(&c, proto, &prompt()).await })
                        .await
                }
            });
            for r in futures::future::join_all(calls).await {
                r.unwrap_or_else(|e| panic!("{id}: {e}"));
            }
        }
        let accepted = rig
            .sandbox
            .stats()
            .into_iter()
            .find(|(s, _)| *s == id)
            .map(|(_, c)| c.accepted);
        assert_eq!(sys.snapshot().done, 20 * limit, "{id}");
        assert!(
            accepted.is_some_and(|a| a <= limit),
            "{id}: the sandbox accepted {accepted:?} connections, limit {limit}"
        );
        assert!(
            sys.connections_opened() <= limit,
            "{id}: opened {}",
            sys.connections_opened()
        );
    }
}

// ---- what each model family needs -----------------------------------------------------

fn tuned(id: SystemId, f: impl FnOnce(&mut singularis_tui::config::SystemConfig)) -> Config {
    let mut config = Config::default();
    f(config.systems.get_mut(&id).unwrap());
    config
}

fn truncated_reason(e: &clients::ClientError) -> &str {
    match e {
        clients::ClientError::Truncated { reason, .. } => reason,
        other => panic!("expected a truncated answer, got: {other}"),
    }
}

/// A reasoning model at a small cap and high effort spends the cap thinking: the service
/// answers in its truncated shape, and the client says so, by name, per system.
#[tokio::test]
async fn gpt5_at_cap_256_and_high_effort_is_truncated() {
    use singularis_tui::systems::Effort;
    for id in [SystemId::ORCHESTRATOR, SystemId::META_RL] {
        let config = tuned(id, |c| {
            c.model = "gpt-5".into();
            c.params.max_output_tokens = 256;
            c.params.reasoning_effort = Some(Effort::High);
        });
        let rig = rig_with(config).await;
        let sys = rig.registry.get(id).clone();
        for stream in [false, true] {
            let proto = sys.config.protocol;
            let err = sys
                .call(move |c| async move {
                    match proto {
                        Protocol::OpenaiResponses => openai::responses(&c, &prompt(), stream).await,
                        _ => openai::chat(&c, &prompt(), stream).await,
                    }
                })
                .await
                .unwrap_err();
            let reason = truncated_reason(&err);
            let want = if proto == Protocol::OpenaiResponses {
                "max_output_tokens"
            } else {
                "finish_reason length"
            };
            assert!(
                reason.contains(want) && reason.contains("256"),
                "{id}: {reason}"
            );
        }
        let snap = sys.snapshot();
        assert_eq!(
            (snap.truncated, snap.errors, snap.done),
            (2, 0, 0),
            "{id}: counted as truncated, not as errors"
        );
        let usage = snap.usage.expect("usage reported");
        assert_eq!(
            usage.reasoning, 512,
            "{id}: each answer spent its whole cap reasoning"
        );
        assert_eq!(usage.output, 512, "{id}: reasoning is billed as output");
        assert!(
            snap.last_error
                .as_deref()
                .unwrap()
                .starts_with("truncated:"),
            "{id}"
        );
        let body = json(&rig.last(id));
        match sys.config.protocol {
            Protocol::OpenaiResponses => {
                assert_eq!(body["reasoning"]["effort"], "high");
                assert_eq!(body["max_output_tokens"], 256);
            }
            _ => {
                assert_eq!(body["reasoning_effort"], "high");
                assert_eq!(body["max_completion_tokens"], 256);
                assert!(body.get("max_tokens").is_none(), "gpt-5 refuses max_tokens");
            }
        }
    }
}

/// The shipped settings fit a game's short answers: no default system comes back truncated.
#[tokio::test]
async fn the_default_settings_are_not_truncated() {
    let rig = rig().await;
    for id in singularis_tui::config::Config::default()
        .ids()
        .into_iter()
        .filter(|id| *id != SystemId::MOE)
    {
        let sys = rig.registry.get(id).clone();
        let proto = sys.config.protocol;
        sys.call(move |c| async move { clients::ask(&c, proto, &prompt()).await })
            .await
            .unwrap_or_else(|e| panic!("{id}: {e}"));
        assert_eq!(sys.snapshot().truncated, 0, "{id}");
    }
    let orchestrator = json(&rig.last(SystemId::ORCHESTRATOR));
    assert_eq!(
        orchestrator["reasoning"]["effort"],
        SystemId::ORCHESTRATOR
            .defaults()
            .unwrap()
            .params
            .reasoning_effort
            .unwrap()
            .name()
    );
    let gemini = json(&rig.last(SystemId::GEMINI_CLIENT));
    assert_eq!(
        gemini["generationConfig"]["thinkingConfig"]["thinkingBudget"],
        0
    );
    assert_eq!(gemini["generationConfig"]["maxOutputTokens"], 256);
}

/// Gemini 2.5 thinks by default, out of the same budget: at a small cap the candidate ends
/// MAX_TOKENS with no parts. That is a truncated answer, not a malformed one.
#[tokio::test]
async fn gemini_thinking_at_a_small_cap_is_truncated_not_malformed() {
    let config = tuned(SystemId::GEMINI_CLIENT, |c| {
        c.model = "gemini-2.5-flash-lite".into();
        c.params.thinking_budget = Some(-1);
        c.params.max_output_tokens = 256;
    });
    let rig = rig_with(config).await;
    let err = rig
        .registry
        .get(SystemId::GEMINI_CLIENT)
        .call(|c| async move { gemini::generate(&c, &prompt()).await })
        .await
        .unwrap_err();
    assert!(truncated_reason(&err).contains("MAX_TOKENS"), "{err}");
    let u = rig
        .registry
        .get(SystemId::GEMINI_CLIENT)
        .snapshot()
        .usage
        .unwrap();
    assert_eq!(
        (u.reasoning, u.output),
        (256, 256),
        "thoughtsTokenCount fills the cap"
    );
}

/// Hyperbolic and LM Studio document `max_tokens`: the cap goes under that name, and it
/// applies (a tiny cap cuts the answer).
#[tokio::test]
async fn hyperbolic_receives_max_tokens() {
    let rig = rig().await;
    for id in [SystemId::HYPERBOLIC_CLIENT, SystemId::LMSTUDIO_CLIENT] {
        rig.call(
            id,
            |c| async move { openai::chat(&c, &prompt(), false).await },
        )
        .await;
        let body = json(&rig.last(id));
        assert_eq!(
            body["max_tokens"],
            id.defaults().unwrap().params.max_output_tokens,
            "{id}"
        );
        assert!(
            body.get("max_completion_tokens").is_none(),
            "{id}: a name the service ignores"
        );
    }
    let config = tuned(SystemId::HYPERBOLIC_CLIENT, |c| {
        c.params.max_output_tokens = 5
    });
    let rig = rig_with(config).await;
    let err = rig
        .registry
        .get(SystemId::HYPERBOLIC_CLIENT)
        .call(|c| async move { openai::chat(&c, &prompt(), false).await })
        .await
        .unwrap_err();
    assert!(truncated_reason(&err).contains("length"), "{err}");
}

/// Anthropic's cap is `max_tokens`; a cut answer says `stop_reason: max_tokens`.
#[tokio::test]
async fn anthropic_at_its_cap_is_truncated() {
    let config = tuned(SystemId::CLAUDE_CLIENT, |c| c.params.max_output_tokens = 4);
    let rig = rig_with(config).await;
    for stream in [false, true] {
        let err = rig
            .registry
            .get(SystemId::CLAUDE_CLIENT)
            .call(move |c| async move { anthropic::messages(&c, &prompt(), stream).await })
            .await
            .unwrap_err();
        assert!(truncated_reason(&err).contains("max_tokens"), "{err}");
    }
    let u = rig
        .registry
        .get(SystemId::CLAUDE_CLIENT)
        .snapshot()
        .usage
        .unwrap();
    assert_eq!(u.output, 8, "4 tokens each, as the service billed them");
}

/// The `truncate` fault: every protocol's own truncated shape, named as such.
#[tokio::test]
async fn the_truncate_fault_is_truncated_in_every_protocol() {
    let rig = rig().await;
    for id in singularis_tui::config::Config::default()
        .ids()
        .into_iter()
        .filter(|id| *id != SystemId::MOE)
    {
        rig.sandbox
            .set_fault(id, Some(singularis_tui::sandbox::Fault::Truncate));
        let sys = rig.registry.get(id).clone();
        let proto = sys.config.protocol;
        let err = sys
            .call(move |c| async move { clients::ask(&c, proto, &prompt()).await })
            .await
            .unwrap_err();
        assert!(err.is_truncated(), "{id}: {err}");
        assert_eq!(sys.snapshot().truncated, 1, "{id}");
        assert_eq!(sys.snapshot().errors, 0, "{id}");
    }
}

/// Live-API models are not served by streamGenerateContent: the client gets the service's
/// own 404, in words, and it is not retried.
#[tokio::test]
async fn a_live_only_model_gets_the_service_error() {
    let config = tuned(SystemId::VIDEO_INTERPRETER, |c| {
        c.model = "gemini-2.5-flash-native-audio-preview-09-2025".into()
    });
    let rig = rig_with(config).await;
    let err = rig
        .registry
        .get(SystemId::VIDEO_INTERPRETER)
        .call(|c| async move { gemini::stream(&c, &prompt(), |_| {}).await })
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with("HTTP 404"), "{text}");
    assert!(
        text.contains(
            "is not found for API version v1beta, or is not supported for streamGenerateContent"
        ),
        "{text}"
    );
    assert_eq!(
        rig.sandbox.requests(SystemId::VIDEO_INTERPRETER).len(),
        1,
        "a 404 is not retried"
    );
}

/// The dashboard's and the report's token counts are the clients' sums; they equal what
/// the sandbox billed, system by system.
#[tokio::test]
async fn token_counts_equal_the_sandbox_sums() {
    let rig = rig().await;
    for round in 0..3 {
        for id in singularis_tui::config::Config::default()
            .ids()
            .into_iter()
            .filter(|id| *id != SystemId::MOE)
        {
            let sys = rig.registry.get(id).clone();
            let proto = sys.config.protocol;
            sys.call(move |c| async move { clients::ask(&c, proto, &prompt()).await })
                .await
                .unwrap_or_else(|e| panic!("{id} round {round}: {e}"));
        }
    }
    let server: BTreeMap<SystemId, singularis_tui::sandbox::TokenSums> = rig
        .sandbox
        .stats()
        .into_iter()
        .map(|(id, c)| (id, c.tokens))
        .collect();
    for snap in rig
        .registry
        .snapshots()
        .into_iter()
        .filter(|s| s.id != SystemId::MOE)
    {
        let billed = server[&snap.id];
        match snap.usage {
            Some(u) => assert_eq!(
                (u.input, u.output, u.reasoning),
                (billed.input, billed.output, billed.reasoning),
                "{}",
                snap.id
            ),
            // Wolfram's LLM API reports no tokens: unknown, never a made-up 0.
            None => assert_eq!(
                (snap.id, billed),
                (SystemId::WOLFRAM_ANALYZER, Default::default())
            ),
        }
    }
    let report = singularis_tui::session::report::usage_section(&rig.registry.snapshots());
    let total: u64 = server.values().map(|t| t.input).sum();
    assert_eq!(report.input, total);
}

/// Rate-limit headers come on every answer and deplete as the session calls; the client
/// keeps the last headroom per system.
#[tokio::test]
async fn rate_limit_headroom_is_read_and_depletes() {
    let rig = rig().await;
    let id = SystemId::OPENAI_CLIENT;
    rig.call(
        id,
        |c| async move { openai::chat(&c, &prompt(), false).await },
    )
    .await;
    let first = rig
        .registry
        .get(id)
        .snapshot()
        .headroom
        .expect("OpenAI sends x-ratelimit-*");
    rig.call(
        id,
        |c| async move { openai::chat(&c, &prompt(), false).await },
    )
    .await;
    let second = rig.registry.get(id).snapshot().headroom.unwrap();
    assert_eq!(
        second.requests_remaining.unwrap() + 1,
        first.requests_remaining.unwrap()
    );
    assert!(second.tokens_remaining < first.tokens_remaining);
    rig.call(SystemId::CLAUDE_CLIENT, |c| async move {
        anthropic::messages(&c, &prompt(), false).await
    })
    .await;
    assert!(
        rig.registry
            .get(SystemId::CLAUDE_CLIENT)
            .snapshot()
            .headroom
            .is_some(),
        "anthropic-ratelimit-*"
    );
    rig.call(SystemId::GEMINI_CLIENT, |c| async move {
        gemini::generate(&c, &prompt()).await
    })
    .await;
    assert!(
        rig.registry
            .get(SystemId::GEMINI_CLIENT)
            .snapshot()
            .headroom
            .is_none(),
        "Gemini sends none"
    );
}
