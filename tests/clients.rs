//! Every client against the sandbox over loopback TCP: the answer is read (streams to the
//! end), and the request the server saw is asserted: path, headers, JSON body.

use singularis_tui::clients::{self, Prompt, anthropic, gemini, openai, wolfram};
use singularis_tui::config::Config;
use singularis_tui::lifecycle::{Registry, RequestCtx};
use singularis_tui::sandbox::{RecordedRequest, Sandbox, SandboxSystem};
use singularis_tui::systems::{Protocol, SystemId};
use std::collections::BTreeMap;
use std::sync::Arc;

struct Rig {
    sandbox: Sandbox,
    registry: Arc<Registry>,
}

async fn rig() -> Rig {
    let config = Config::default();
    let systems = SystemId::ALL
        .into_iter()
        .filter(|id| config.system(*id).protocol != Protocol::Moe)
        .map(|id| SandboxSystem::from_config(&config, id))
        .collect();
    let sandbox = Sandbox::start("127.0.0.1".parse().unwrap(), 0, systems).await.unwrap();
    let urls: BTreeMap<_, _> = SystemId::ALL.into_iter().filter_map(|id| Some((id, sandbox.base_url(id)?))).collect();
    // A canary key for every service: it must arrive in the right header, and only there.
    let env = |name: &str| Some(format!("key-for-{name}"));
    let registry = Arc::new(Registry::new(&config, &urls, &env));
    Rig { sandbox, registry }
}

impl Rig {
    async fn call<T: Send + 'static, F, Fut>(&self, id: SystemId, f: F) -> T
    where
        F: FnOnce(RequestCtx) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<T, clients::ClientError>> + Send + 'static,
    {
        self.registry.get(id).call(f).await.unwrap_or_else(|e| panic!("{id}: {e}"))
    }

    fn last(&self, id: SystemId) -> RecordedRequest {
        self.sandbox.requests(id).pop().unwrap_or_else(|| panic!("{id}: no request recorded"))
    }
}

fn header<'a>(r: &'a RecordedRequest, name: &str) -> &'a str {
    r.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_else(|| panic!("no {name} header"))
}

fn json(r: &RecordedRequest) -> serde_json::Value {
    serde_json::from_slice(&r.body).expect("JSON request body")
}

fn prompt() -> Prompt {
    Prompt::new("You play a game.", "Health: 90/100\nEnemy: a bandit (hostile) in view")
}

#[tokio::test]
async fn openai_chat_plain_and_streamed() {
    let rig = rig().await;
    let text = rig.call(SystemId::OpenaiClient, |c| async move { openai::chat(&c, &prompt(), false).await }).await;
    assert!(text.contains("ACTION:"), "{text}");
    let r = rig.last(SystemId::OpenaiClient);
    assert_eq!((r.method.as_str(), r.path_and_query.as_str()), ("POST", "/v1/chat/completions"));
    assert_eq!(header(&r, "authorization"), "Bearer key-for-OPENAI_API_KEY");
    assert!(header(&r, "content-type").starts_with("application/json"));
    let body = json(&r);
    assert_eq!(body["model"], "gpt-4o");
    assert_eq!(body["messages"][0]["role"], "system");
    assert_eq!(body["messages"][1]["role"], "user");
    assert!(body.get("stream").is_none());

    // LM Studio streams: chunks until `data: [DONE]`, reassembled.
    let streamed = rig.call(SystemId::LmstudioClient, |c| async move { openai::chat(&c, &prompt(), true).await }).await;
    assert!(streamed.contains("ACTION: attack"), "{streamed}");
    let r = rig.last(SystemId::LmstudioClient);
    assert_eq!(r.path_and_query, "/v1/chat/completions");
    assert_eq!(json(&r)["stream"], true);
    assert_eq!(json(&r)["model"], "microsoft/phi-4-mini-reasoning");
}

#[tokio::test]
async fn hyperbolic_and_meta_rl_speak_chat_completions() {
    let rig = rig().await;
    for (id, key, model) in [
        (SystemId::HyperbolicClient, "HYPERBOLIC_API_KEY", "Qwen/Qwen3-235B-A22B-Instruct-2507"),
        (SystemId::MetaRl, "OPENAI_API_KEY", "gpt-5"),
    ] {
        let text = rig.call(id, |c| async move { openai::chat(&c, &prompt(), false).await }).await;
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
    let plain = rig.call(SystemId::Orchestrator, |c| async move { openai::responses(&c, &prompt(), false).await }).await;
    let streamed = rig.call(SystemId::Orchestrator, |c| async move { openai::responses(&c, &prompt(), true).await }).await;
    assert_eq!(plain, streamed, "typed events reassemble into the same text");
    assert!(plain.contains("ACTION:"));
    let r = rig.last(SystemId::Orchestrator);
    assert_eq!(r.path_and_query, "/v1/responses");
    assert_eq!(header(&r, "authorization"), "Bearer key-for-OPENAI_API_KEY");
    let body = json(&r);
    assert_eq!(body["model"], "gpt-5");
    assert_eq!(body["stream"], true);
    assert_eq!(body["instructions"], "You play a game.");
    assert_eq!(body["input"][0]["role"], "user");
}

#[tokio::test]
async fn anthropic_messages_plain_and_streamed() {
    let rig = rig().await;
    let plain = rig.call(SystemId::ClaudeClient, |c| async move { anthropic::messages(&c, &prompt(), false).await }).await;
    let streamed = rig.call(SystemId::ClaudeClient, |c| async move { anthropic::messages(&c, &prompt(), true).await }).await;
    assert_eq!(plain, streamed);
    let r = rig.last(SystemId::ClaudeClient);
    assert_eq!(r.path_and_query, "/v1/messages");
    assert_eq!(header(&r, "x-api-key"), "key-for-ANTHROPIC_API_KEY");
    assert_eq!(header(&r, "anthropic-version"), anthropic::ANTHROPIC_VERSION);
    assert!(r.headers.get("authorization").is_none());
    let body = json(&r);
    assert_eq!(body["model"], "claude-sonnet-4-5");
    assert_eq!(body["max_tokens"], 256);
    assert_eq!(body["system"], "You play a game.");
}

#[tokio::test]
async fn gemini_generate_stream_and_speech() {
    let rig = rig().await;
    let text = rig.call(SystemId::GeminiClient, |c| async move { gemini::generate(&c, &prompt()).await }).await;
    assert!(text.contains("ACTION:"));
    let r = rig.last(SystemId::GeminiClient);
    assert_eq!(r.path_and_query, "/v1beta/models/gemini-2.5-flash:generateContent");
    assert_eq!(header(&r, "x-goog-api-key"), "key-for-GEMINI_API_KEY");
    assert!(!r.path_and_query.contains("key="), "the key never goes in the URL");
    assert_eq!(json(&r)["contents"][0]["parts"][0]["text"], prompt().user);

    let pieces = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = pieces.clone();
    let described = rig
        .call(SystemId::VideoInterpreter, move |c| async move {
            gemini::stream(&c, &prompt(), |p| seen.lock().unwrap().push(p.to_string())).await
        })
        .await;
    assert!(pieces.lock().unwrap().len() >= 2, "streamed in several chunks");
    assert_eq!(pieces.lock().unwrap().concat(), described);
    let r = rig.last(SystemId::VideoInterpreter);
    assert!(r.path_and_query.starts_with("/v1beta/models/"));
    assert!(r.path_and_query.ends_with(":streamGenerateContent?alt=sse"), "{}", r.path_and_query);

    let pcm = rig.call(SystemId::VoiceSystem, |c| async move { gemini::speak(&c, "I will attack.", "Kore").await }).await;
    assert_eq!(pcm.sample_rate, 24_000);
    assert!(pcm.duration_ms() > 100, "{} ms", pcm.duration_ms());
    assert!(pcm.samples.iter().any(|s| s.unsigned_abs() > 1000), "audible");
    let body = json(&rig.last(SystemId::VoiceSystem));
    assert_eq!(body["generationConfig"]["responseModalities"][0], "AUDIO");
    assert_eq!(body["generationConfig"]["speechConfig"]["voiceConfig"]["prebuiltVoiceConfig"]["voiceName"], "Kore");
}

#[tokio::test]
async fn wolfram_llm_api() {
    let rig = rig().await;
    let answer = rig
        .call(SystemId::WolframAnalyzer, |c| async move {
            wolfram::query(&c, "combat odds player level 5 vs enemy level 3").await
        })
        .await;
    let p = wolfram::result_number(&answer).expect("a number under Result:");
    assert!((0.0..=1.0).contains(&p), "{p}");
    let r = rig.last(SystemId::WolframAnalyzer);
    assert_eq!(r.method, "GET");
    assert!(r.path_and_query.starts_with("/api/v1/llm-api?input=combat+odds"), "{}", r.path_and_query);
    assert!(!r.path_and_query.contains("appid"), "the AppID goes in a header");
    assert_eq!(header(&r, "authorization"), "Bearer key-for-WOLFRAM_APP_ID");
}

#[tokio::test]
async fn every_connection_is_counted_and_reused() {
    let rig = rig().await;
    for _ in 0..20 {
        rig.call(SystemId::OpenaiClient, |c| async move { openai::chat(&c, &prompt(), false).await }).await;
    }
    let sys = rig.registry.get(SystemId::OpenaiClient);
    assert_eq!(sys.connections_opened(), 1, "sequential requests reuse one keep-alive connection");
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
    for id in [SystemId::OpenaiClient, SystemId::LmstudioClient, SystemId::VideoInterpreter] {
        let sys = rig.registry.get(id).clone();
        let proto = sys.config.protocol;
        let limit = sys.config.max_connections() as u64;
        for _ in 0..10 {
            let calls = (0..2 * limit).map(|_| {
                let sys = sys.clone();
                async move { sys.call(move |c| async move { clients::ask(&c, proto, &prompt()).await }).await }
            });
            for r in futures::future::join_all(calls).await {
                r.unwrap_or_else(|e| panic!("{id}: {e}"));
            }
        }
        let accepted = rig.sandbox.stats().into_iter().find(|(s, _)| *s == id).map(|(_, c)| c.accepted);
        assert_eq!(sys.snapshot().done, 20 * limit, "{id}");
        assert!(accepted.is_some_and(|a| a <= limit), "{id}: the sandbox accepted {accepted:?} connections, limit {limit}");
        assert!(sys.connections_opened() <= limit, "{id}: opened {}", sys.connections_opened());
    }
}
