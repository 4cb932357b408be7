//! The sandbox over real loopback TCP, with reqwest as the client: every protocol's happy
//! path and auth errors, every fault, fault switching, recording, stats and stop.

use base64::Engine as _;
use futures::StreamExt;
use serde_json::{Value, json};
use singularis_tui::sandbox::{Fault, Sandbox, SandboxSystem, script};
use singularis_tui::systems::SystemId;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

async fn sandbox(systems: &[(SystemId, Option<Fault>)]) -> Sandbox {
    let systems = systems
        .iter()
        .map(|(id, fault)| SandboxSystem {
            fault: *fault,
            ..SandboxSystem::with_defaults(*id)
        })
        .collect();
    Sandbox::start(LOOPBACK, 0, systems)
        .await
        .expect("sandbox starts")
}

fn client() -> reqwest::Client {
    singularis_tui::net::transport::install_crypto_provider();
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
}

/// `path` under the system's base URL.
fn url(sb: &Sandbox, id: SystemId, path: &str) -> String {
    let base = sb.base_url(id).expect("served");
    format!(
        "{}/{}",
        base.as_str().trim_end_matches('/'),
        path.trim_start_matches('/')
    )
}

fn port(sb: &Sandbox, id: SystemId) -> u16 {
    sb.base_url(id).and_then(|u| u.port()).expect("port")
}

fn open(sb: &Sandbox, id: SystemId) -> u64 {
    sb.stats()
        .into_iter()
        .find(|(s, _)| *s == id)
        .map(|(_, c)| c.open)
        .expect("stats")
}

async fn refused(port: u16) -> bool {
    matches!(
        tokio::net::TcpStream::connect((LOOPBACK, port)).await,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused
    )
}

/// SSE events of a complete body: (event name, data), split on blank lines (LF or CRLF).
fn sse_events(body: &str) -> Vec<(Option<String>, String)> {
    body.replace("\r\n", "\n")
        .split("\n\n")
        .filter(|b| !b.trim().is_empty())
        .map(|block| {
            let mut event = None;
            let mut data = Vec::new();
            for line in block.lines() {
                if let Some(e) = line.strip_prefix("event: ") {
                    event = Some(e.to_string());
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data.push(d);
                }
            }
            (event, data.join("\n"))
        })
        .collect()
}

fn parse(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

fn chat_body(prompt: &str, stream: bool) -> Value {
    json!({ "model": "gpt-4o", "stream": stream, "max_tokens": 64, "messages": [
        { "role": "system", "content": "You play the game." },
        { "role": "user", "content": prompt },
    ] })
}

// ---- protocols -------------------------------------------------------------------------

#[tokio::test]
async fn openai_chat_answers_like_the_real_api() {
    let id = SystemId::OPENAI_CLIENT;
    let sb = sandbox(&[(id, None)]).await;
    assert_eq!(sb.base_url(id).expect("url").path(), "/v1");
    let c = client();
    let endpoint = url(&sb, id, "chat/completions");

    let r = c
        .post(&endpoint)
        .bearer_auth("sk-test")
        .json(&chat_body("An enemy goblin attacks! Health: 80/100", false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("x-request-id"));
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["object"], "chat.completion");
    assert!(v["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(v["model"], "gpt-4o");
    assert_eq!(v["choices"][0]["message"]["role"], "assistant");
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    let text = v["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(text.starts_with("ACTION: attack\nREASON: "), "{text}");
    let u = &v["usage"];
    assert_eq!(
        u["total_tokens"].as_u64(),
        Some(u["prompt_tokens"].as_u64().unwrap() + u["completion_tokens"].as_u64().unwrap())
    );

    // Streaming: role first, content deltas, finish_reason, then [DONE].
    let r = c
        .post(&endpoint)
        .bearer_auth("sk-test")
        .json(&chat_body("An enemy goblin attacks! Health: 80/100", true))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let events = sse_events(&r.text().await.unwrap());
    assert_eq!(events.last().unwrap().1, "[DONE]");
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|(_, d)| parse(d))
        .collect();
    assert!(chunks.len() >= 4);
    assert!(
        chunks
            .iter()
            .all(|c| c["object"] == "chat.completion.chunk")
    );
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "stop"
    );
    let streamed: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(streamed, text);

    let v: Value = c
        .get(url(&sb, id, "models"))
        .bearer_auth("sk-test")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["object"], "list");
    let ids: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["id"].as_str())
        .collect();
    assert!(
        ids.contains(&"gpt-4o") && ids.contains(&id.defaults().unwrap().model),
        "{ids:?}"
    );
    assert!(
        !ids.contains(&"text-davinci-003"),
        "retired models are not listed"
    );

    // Errors, in OpenAI's shape.
    let r = c
        .post(&endpoint)
        .json(&chat_body("hi", false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert_eq!(v["error"]["code"], "invalid_api_key");
    assert!(v["error"]["message"].is_string() && v["error"]["param"].is_null());
    let r = c
        .post(&endpoint)
        .bearer_auth("k")
        .json(&json!({ "messages": [] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = c
        .post(&endpoint)
        .bearer_auth("k")
        .json(&json!({ "model": "gpt-4o" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["param"],
        "messages"
    );
    let r = c
        .post(url(&sb, id, "nope"))
        .bearer_auth("k")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(
        r.json::<Value>().await.unwrap()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("/v1/nope")
    );
    sb.stop().await;
}

#[tokio::test]
async fn lmstudio_needs_no_key_and_parts_content_is_read() {
    let id = SystemId::LMSTUDIO_CLIENT;
    let sb = sandbox(&[(id, None)]).await;
    let body = json!({ "model": "phi", "messages": [
        { "role": "user", "content": [{ "type": "text", "text": "A villager waves. Stamina: 90/100" }] }
    ] });
    let r = client()
        .post(url(&sb, id, "chat/completions"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert!(
        v["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .starts_with("ACTION: talk")
    );
    sb.stop().await;
}

#[tokio::test]
async fn openai_responses_non_stream_and_typed_events() {
    let id = SystemId::ORCHESTRATOR;
    let sb = sandbox(&[(id, None)]).await;
    let c = client();
    let endpoint = url(&sb, id, "responses");
    let body = json!({ "model": "gpt-5", "instructions": "Coordinate.", "input": [
        { "role": "user", "content": [{ "type": "input_text", "text": "Health: 20/100, enemy near" }] }
    ] });

    let v: Value = c
        .post(&endpoint)
        .bearer_auth("sk")
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["object"], "response");
    assert_eq!(v["status"], "completed");
    assert!(v["id"].as_str().unwrap().starts_with("resp_"));
    // A reasoning model's output starts with its reasoning item; the message follows.
    assert_eq!(v["output"][0]["type"], "reasoning");
    let msg = &v["output"][1];
    assert_eq!(
        (
            msg["type"].as_str(),
            msg["role"].as_str(),
            msg["status"].as_str()
        ),
        (Some("message"), Some("assistant"), Some("completed"))
    );
    assert!(msg["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(msg["content"][0]["type"], "output_text");
    let text = msg["content"][0]["text"].as_str().unwrap().to_string();
    assert!(text.starts_with("ACTION: heal"), "{text}");
    assert!(v["usage"]["input_tokens"].as_u64().unwrap() > 0);

    let mut stream_body = body.clone();
    stream_body["stream"] = json!(true);
    let r = c
        .post(&endpoint)
        .bearer_auth("sk")
        .json(&stream_body)
        .send()
        .await
        .unwrap();
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let events = sse_events(&r.text().await.unwrap());
    let kinds: Vec<&str> = events.iter().map(|(e, _)| e.as_deref().unwrap()).collect();
    // The reasoning item first (added, done), then the message.
    assert_eq!(
        &kinds[..6],
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.output_item.done",
            "response.output_item.added",
            "response.content_part.added"
        ]
    );
    let n = kinds.len();
    assert_eq!(
        &kinds[n - 4..],
        [
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed"
        ]
    );
    assert!(
        kinds[6..n - 4]
            .iter()
            .all(|k| *k == "response.output_text.delta")
            && n - 10 >= 2
    );
    let data: Vec<Value> = events.iter().map(|(_, d)| parse(d)).collect();
    for (i, (d, k)) in data.iter().zip(&kinds).enumerate() {
        assert_eq!(d["type"], *k);
        assert_eq!(d["sequence_number"].as_u64(), Some(i as u64));
    }
    let deltas: String = data.iter().filter_map(|d| d["delta"].as_str()).collect();
    assert_eq!(deltas, text);
    assert_eq!(data[n - 4]["text"], text.as_str());
    assert_eq!(data[2]["item"]["type"], "reasoning");
    assert_eq!(
        data[n - 1]["response"]["output"][1]["content"][0]["text"],
        text.as_str()
    );
    assert!(!events.iter().any(|(_, d)| d == "[DONE]"));

    // The responses system serves no chat completions.
    let r = c
        .post(url(&sb, id, "chat/completions"))
        .bearer_auth("sk")
        .json(&chat_body("x", false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    sb.stop().await;
}

#[tokio::test]
async fn anthropic_messages_with_either_auth_and_stream_events() {
    let id = SystemId::CLAUDE_CLIENT;
    let sb = sandbox(&[(id, None)]).await;
    let c = client();
    let endpoint = url(&sb, id, "v1/messages");
    let body = json!({ "model": "claude-sonnet-4-5", "max_tokens": 100, "system": "Play well.",
                       "messages": [{ "role": "user", "content": "You see a chest. Respond with JSON." }] });

    let r = c
        .post(&endpoint)
        .header("x-api-key", "k")
        .header("anthropic-version", "2023-06-01")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["request-id"]
            .to_str()
            .unwrap()
            .starts_with("req_")
    );
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        (v["type"].as_str(), v["role"].as_str()),
        (Some("message"), Some("assistant"))
    );
    assert_eq!(v["stop_reason"], "end_turn");
    assert!(v["stop_sequence"].is_null());
    let text = v["content"][0]["text"].as_str().unwrap().to_string();
    assert_eq!(parse(&text)["action"], "loot");
    assert!(v["usage"]["output_tokens"].as_u64().unwrap() > 0);

    let mut sbody = body.clone();
    sbody["stream"] = json!(true);
    let r = c
        .post(&endpoint)
        .bearer_auth("k")
        .header("anthropic-version", "2026-10-21")
        .json(&sbody)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let events = sse_events(&r.text().await.unwrap());
    let kinds: Vec<&str> = events.iter().map(|(e, _)| e.as_deref().unwrap()).collect();
    assert_eq!(
        &kinds[..3],
        ["message_start", "content_block_start", "ping"]
    );
    assert_eq!(
        &kinds[kinds.len() - 3..],
        ["content_block_stop", "message_delta", "message_stop"]
    );
    let data: Vec<Value> = events.iter().map(|(_, d)| parse(d)).collect();
    for (d, k) in data.iter().zip(&kinds) {
        assert_eq!(d["type"], *k);
    }
    let streamed: String = data
        .iter()
        .filter(|d| d["type"] == "content_block_delta")
        .map(|d| d["delta"]["text"].as_str().unwrap())
        .collect();
    assert_eq!(streamed, text);
    assert_eq!(data[kinds.len() - 2]["delta"]["stop_reason"], "end_turn");

    let r = c
        .post(&endpoint)
        .header("anthropic-version", "2023-06-01")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        (v["type"].as_str(), v["error"]["type"].as_str()),
        (Some("error"), Some("authentication_error"))
    );
    let r = c
        .post(&endpoint)
        .header("x-api-key", "k")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["type"],
        "invalid_request_error"
    );
    let r = c
        .post(&endpoint)
        .header("x-api-key", "k")
        .header("anthropic-version", "1")
        .json(&json!({ "model": "m", "messages": [] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    sb.stop().await;
}

#[tokio::test]
async fn gemini_generate_on_v1_and_v1beta_and_auth() {
    let id = SystemId::GEMINI_CLIENT;
    let sb = sandbox(&[(id, None)]).await;
    let c = client();
    let body = json!({ "systemInstruction": { "parts": [{ "text": "Play." }] },
                       "contents": [{ "role": "user", "parts": [{ "text": "Stamina: 10/100, all quiet" }] }] });
    for version in ["v1", "v1beta"] {
        let endpoint = url(
            &sb,
            id,
            &format!("{version}/models/gemini-2.5-flash-lite:generateContent"),
        );
        let r = c
            .post(&endpoint)
            .header("x-goog-api-key", "g")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{version}");
        let v: Value = r.json().await.unwrap();
        let cand = &v["candidates"][0];
        assert_eq!(cand["content"]["role"], "model");
        assert_eq!(cand["finishReason"], "STOP");
        assert!(
            cand["content"]["parts"][0]["text"]
                .as_str()
                .unwrap()
                .starts_with("ACTION: rest")
        );
        assert_eq!(v["modelVersion"], "gemini-2.5-flash-lite");
        let u = &v["usageMetadata"];
        assert!(
            u["promptTokenCount"].as_u64().unwrap() > 0
                && u["totalTokenCount"].as_u64().unwrap() > u["promptTokenCount"].as_u64().unwrap()
        );

        let r = c
            .post(format!("{endpoint}?key=g"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let r = c.post(&endpoint).json(&body).send().await.unwrap();
        assert_eq!(r.status(), 403);
        let v: Value = r.json().await.unwrap();
        assert_eq!(
            (v["error"]["code"].as_u64(), v["error"]["status"].as_str()),
            (Some(403), Some("PERMISSION_DENIED"))
        );
    }
    let r = c
        .post(url(
            &sb,
            id,
            "v1beta/models/gemini-2.5-flash-lite:generateContent",
        ))
        .header("x-goog-api-key", "g")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["status"],
        "INVALID_ARGUMENT"
    );
    let r = c
        .post(url(&sb, id, "v2/models/x:generateContent"))
        .header("x-goog-api-key", "g")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["status"],
        "NOT_FOUND"
    );
    sb.stop().await;
}

#[tokio::test]
async fn gemini_video_interpreter_streams_the_scene() {
    let id = SystemId::VIDEO_INTERPRETER;
    let sb = sandbox(&[(id, None)]).await;
    let c = client();
    let body = json!({ "contents": [{ "role": "user", "parts": [
        { "text": "Describe this frame. Frame: dark forest, a hostile wolf approaches. Health: 90/100" },
        { "inlineData": { "mimeType": "image/png", "data": "iVBORw0KGgo=" } },
    ] }] });
    let path = format!(
        "v1beta/models/{}:streamGenerateContent",
        id.defaults().unwrap().model
    );
    let r = c
        .post(url(&sb, id, &format!("{path}?alt=sse")))
        .header("x-goog-api-key", "g")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let raw = r.text().await.unwrap();
    assert!(raw.contains("\r\n\r\n"));
    let all: Vec<Value> = sse_events(&raw).iter().map(|(_, d)| parse(d)).collect();
    // The stream ends with a chunk holding only the usage, as Gemini may send it.
    let (usage_only, chunks) = all.split_last().unwrap();
    assert!(usage_only.get("candidates").is_none(), "{usage_only}");
    assert!(usage_only["usageMetadata"]["promptTokenCount"].is_u64());
    assert!((3..=6).contains(&chunks.len()), "{} chunks", chunks.len());
    let (last, rest) = chunks.split_last().unwrap();
    assert_eq!(last["candidates"][0]["finishReason"], "STOP");
    assert!(
        rest.iter()
            .all(|c| c["candidates"][0].get("finishReason").is_none())
    );
    let scene: String = chunks
        .iter()
        .map(|c| {
            c["candidates"][0]["content"]["parts"][0]["text"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert!(
        scene.contains("forest") && scene.contains("enemy"),
        "{scene}"
    );

    // Without alt=sse: one JSON array of the same responses.
    let r = c
        .post(url(&sb, id, &path))
        .header("x-goog-api-key", "g")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let arr: Vec<Value> = r.json().await.unwrap();
    assert_eq!(arr.len(), all.len());
    sb.stop().await;
}

#[tokio::test]
async fn gemini_tts_returns_base64_pcm() {
    let id = SystemId::VOICE_SYSTEM;
    let sb = sandbox(&[(id, None)]).await;
    let body = json!({
        "contents": [{ "parts": [{ "text": "Attack the goblin now" }] }],
        "generationConfig": { "responseModalities": ["AUDIO"], "speechConfig": { "voiceConfig": { "prebuiltVoiceConfig": { "voiceName": "Kore" } } } },
    });
    let r = client()
        .post(url(
            &sb,
            id,
            "v1beta/models/gemini-2.5-pro-preview-tts:generateContent",
        ))
        .header("x-goog-api-key", "g")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let part = &v["candidates"][0]["content"]["parts"][0]["inlineData"];
    assert_eq!(part["mimeType"], "audio/L16;codec=pcm;rate=24000");
    let pcm = base64::engine::general_purpose::STANDARD
        .decode(part["data"].as_str().unwrap())
        .unwrap();
    assert!(!pcm.is_empty() && pcm.len() % 2 == 0);
    let secs = pcm.len() as f64 / 48_000.0;
    assert!((0.25..=0.6).contains(&secs), "{secs} s");
    sb.stop().await;
}

#[tokio::test]
async fn wolfram_llm_api_text_answers_and_errors() {
    let id = SystemId::WOLFRAM_ANALYZER;
    let sb = sandbox(&[(id, None)]).await;
    let c = client();
    let endpoint = url(&sb, id, "api/v1/llm-api");
    let input = "combat odds player level 5 vs enemy level 3";
    let r = c
        .get(&endpoint)
        .query(&[("input", input), ("appid", "APP"), ("maxchars", "1200")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = r.text().await.unwrap();
    assert!(
        text.starts_with(&format!("Query:\n\"{input}\"\n\nInput interpretation:\n")),
        "{text}"
    );
    assert!(text.contains("\n\nResult:\n0.69\n"), "{text}");

    let r = c
        .get(&endpoint)
        .query(&[("input", "2+2")])
        .bearer_auth("APP")
        .send()
        .await
        .unwrap();
    assert!(r.text().await.unwrap().contains("Result:\n4\n"));
    let r = c
        .get(&endpoint)
        .query(&[("input", "2+2")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(r.text().await.unwrap(), "Error 2: Appid missing");
    let r = c
        .get(&endpoint)
        .query(&[("input", "2+2"), ("appid", "")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        (r.status().as_u16(), r.text().await.unwrap()),
        (403, "Error 1: Invalid appid".to_string())
    );
    let r = c
        .get(&endpoint)
        .query(&[("appid", "APP")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = c
        .get(&endpoint)
        .query(&[("appid", "APP"), ("input", " ")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 501);
    assert!(
        r.text()
            .await
            .unwrap()
            .starts_with("Wolfram|Alpha could not understand")
    );
    let r = c
        .get(&endpoint)
        .query(&[("appid", "APP"), ("input", input), ("maxchars", "10")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap().chars().count(), 10);
    sb.stop().await;
}

// ---- faults ----------------------------------------------------------------------------

#[tokio::test]
async fn hang_keeps_the_connection_open_until_the_client_leaves() {
    let id = SystemId::OPENAI_CLIENT;
    let other = SystemId::CLAUDE_CLIENT;
    let sb = sandbox(&[(id, Some(Fault::Hang)), (other, None)]).await;
    let req = client()
        .post(url(&sb, id, "chat/completions"))
        .bearer_auth("k")
        .json(&chat_body("hi", false))
        .send();
    let task = tokio::spawn(req);
    crate::common::until("the hung request to be read", || sb.requests(id).len() == 1).await;
    // A whole exchange with another system of the same sandbox, begun after the hung request
    // was read: had the hang answered, its answer would have been written first.
    let answered = client()
        .post(url(&sb, other, "v1/messages"))
        .header("x-api-key", "k")
        .header("anthropic-version", "2023-06-01")
        .json(&json!({ "model": "claude-sonnet-4-5", "max_tokens": 10, "messages": [{ "role": "user", "content": "hi" }] }))
        .send()
        .await
        .expect("the other system answers");
    assert_eq!(answered.status(), 200);
    answered.bytes().await.expect("its whole body");
    assert!(!task.is_finished(), "a hung request must not complete");
    assert_eq!(open(&sb, id), 1);
    assert_eq!(sb.requests(id).len(), 1, "the request was read");
    // The client goes away: the server side closes too.
    task.abort();
    let _ = task.await;
    crate::common::until("the hung connection to close", || open(&sb, id) == 0).await;
    sb.stop().await;
}

#[tokio::test]
async fn reset_breaks_the_response() {
    let id = SystemId::CLAUDE_CLIENT;
    let sb = sandbox(&[(id, Some(Fault::Reset))]).await;
    let r = client()
        .post(url(&sb, id, "v1/messages"))
        .header("x-api-key", "k")
        .header("anthropic-version", "2023-06-01")
        .json(&json!({ "model": "claude-sonnet-4-5", "max_tokens": 10, "messages": [{ "role": "user", "content": "hi" }] }))
        .send()
        .await;
    // Status and headers arrive, then the body breaks off.
    let resp = r.expect("the head arrives");
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().contains_key("request-id"));
    assert!(resp.bytes().await.is_err(), "the body must break");

    // Streams break too, after a partial first event.
    let r = client()
        .post(url(&sb, id, "v1/messages"))
        .header("x-api-key", "k")
        .header("anthropic-version", "2023-06-01")
        .json(&json!({ "model": "claude-sonnet-4-5", "max_tokens": 10, "stream": true, "messages": [{ "role": "user", "content": "hi" }] }))
        .send()
        .await
        .expect("the head arrives");
    let (chunks, end) = read_for(r, Duration::from_secs(5)).await;
    assert_eq!(end, End::Broken);
    assert!(!chunks.is_empty());
    sb.stop().await;
}

#[tokio::test]
async fn slow_answers_after_the_delay() {
    let id = SystemId::GEMINI_CLIENT;
    let sb = sandbox(&[(id, Some(Fault::Slow(Duration::from_millis(200))))]).await;
    let t = Instant::now();
    let r = client()
        .post(url(
            &sb,
            id,
            "v1beta/models/gemini-2.5-flash-lite:generateContent",
        ))
        .header("x-goog-api-key", "g")
        .json(&json!({ "contents": [{ "parts": [{ "text": "hi" }] }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.json::<Value>().await.unwrap()["candidates"][0]["finishReason"] == "STOP");
    assert!(t.elapsed() >= Duration::from_millis(200));
    sb.stop().await;
}

#[tokio::test]
async fn error_and_ratelimit_faults_use_each_service_shape() {
    let sb = sandbox(&[
        (SystemId::OPENAI_CLIENT, Some(Fault::Error(503))),
        (SystemId::CLAUDE_CLIENT, Some(Fault::Error(529))),
        (SystemId::GEMINI_CLIENT, Some(Fault::Error(503))),
        (SystemId::WOLFRAM_ANALYZER, Some(Fault::Error(500))),
    ])
    .await;
    let c = client();
    let r = c
        .post(url(&sb, SystemId::OPENAI_CLIENT, "chat/completions"))
        .bearer_auth("k")
        .json(&chat_body("hi", false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["type"],
        "server_error"
    );
    let r = c
        .post(url(&sb, SystemId::CLAUDE_CLIENT, "v1/messages"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 529);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        (v["type"].as_str(), v["error"]["type"].as_str()),
        (Some("error"), Some("overloaded_error"))
    );
    let r = c
        .post(url(
            &sb,
            SystemId::GEMINI_CLIENT,
            "v1beta/models/m:generateContent",
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        (v["error"]["code"].as_u64(), v["error"]["status"].as_str()),
        (Some(503), Some("UNAVAILABLE"))
    );
    let r = c
        .get(url(
            &sb,
            SystemId::WOLFRAM_ANALYZER,
            "api/v1/llm-api?input=x&appid=a",
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 500);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );

    for id in [
        SystemId::OPENAI_CLIENT,
        SystemId::CLAUDE_CLIENT,
        SystemId::GEMINI_CLIENT,
    ] {
        sb.set_fault(id, Some(Fault::RateLimit(1)));
    }
    let r = c
        .post(url(&sb, SystemId::OPENAI_CLIENT, "chat/completions"))
        .bearer_auth("k")
        .json(&chat_body("hi", false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "1");
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "rate_limit_exceeded"
    );
    let r = c
        .post(url(&sb, SystemId::CLAUDE_CLIENT, "v1/messages"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        (
            r.status().as_u16(),
            r.headers()["retry-after"].to_str().unwrap()
        ),
        (429, "1")
    );
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["type"],
        "rate_limit_error"
    );
    let r = c
        .post(url(
            &sb,
            SystemId::GEMINI_CLIENT,
            "v1/models/m:generateContent",
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(
        (
            r.status().as_u16(),
            r.headers()["retry-after"].to_str().unwrap()
        ),
        (429, "1")
    );
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["status"],
        "RESOURCE_EXHAUSTED"
    );
    sb.stop().await;
}

/// How a body read for a while turned out.
#[derive(Debug, PartialEq)]
enum End {
    Running,
    Complete,
    Broken,
}

/// Reads `resp` for `window`: the chunks received and how the body stands.
async fn read_for(resp: reqwest::Response, window: Duration) -> (Vec<bytes::Bytes>, End) {
    let mut stream = resp.bytes_stream();
    let mut chunks = Vec::new();
    let deadline = tokio::time::Instant::now() + window;
    loop {
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Err(_) => return (chunks, End::Running),
            Ok(Some(Ok(b))) => chunks.push(b),
            Ok(Some(Err(_))) => return (chunks, End::Broken),
            Ok(None) => return (chunks, End::Complete),
        }
    }
}

#[tokio::test]
async fn drip_streams_forever() {
    let sb = sandbox(&[
        (SystemId::LMSTUDIO_CLIENT, Some(Fault::Drip)),
        (SystemId::CLAUDE_CLIENT, Some(Fault::Drip)),
    ])
    .await;
    let c = client();
    let r = c
        .post(url(&sb, SystemId::LMSTUDIO_CLIENT, "chat/completions"))
        .json(&chat_body("hi", true))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (chunks, end) = read_for(r, Duration::from_millis(1200)).await;
    assert_eq!(end, End::Running, "a drip never ends");
    let text: String = chunks
        .iter()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .collect();
    let events = sse_events(&text);
    assert!(events.len() >= 3, "{} events", events.len());
    for (_, d) in &events {
        assert_eq!(parse(d)["object"], "chat.completion.chunk");
    }
    assert!(!text.contains("[DONE]"));

    // A non-stream request: headers, then a trickle of bytes that never completes the body.
    let r = c
        .post(url(&sb, SystemId::CLAUDE_CLIENT, "v1/messages"))
        .header("x-api-key", "k")
        .header("anthropic-version", "1")
        .json(&json!({ "model": "m", "max_tokens": 5, "messages": [] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (chunks, end) = read_for(r, Duration::from_millis(900)).await;
    assert_eq!(end, End::Running);
    assert!(!chunks.is_empty());
    sb.stop().await;
}

#[tokio::test]
async fn refuse_means_nothing_listens_and_set_fault_rebinds() {
    let id = SystemId::OPENAI_CLIENT;
    let sb = sandbox(&[(id, Some(Fault::Refuse)), (SystemId::META_RL, None)]).await;
    let p = port(&sb, id);
    assert!(refused(p).await);
    let c = client();
    let err = c
        .post(url(&sb, id, "chat/completions"))
        .bearer_auth("k")
        .json(&chat_body("hi", false))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_connect(), "{err}");
    assert!(sb.ports().contains(&p));

    // refuse → none: same port, answering.
    sb.set_fault(id, None);
    assert_eq!(port(&sb, id), p);
    let r = c
        .post(url(&sb, id, "chat/completions"))
        .bearer_auth("k")
        .json(&chat_body("hi", false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // none → refuse: refused at once, pooled connection closed too; and back again.
    sb.set_fault(id, Some(Fault::Refuse));
    assert!(refused(p).await);
    crate::common::until("connections of a refusing system to close", || {
        open(&sb, id) == 0
    })
    .await;
    sb.set_fault(id, Some(Fault::Error(500)));
    let r = c
        .post(url(&sb, id, "chat/completions"))
        .bearer_auth("k")
        .json(&chat_body("hi", false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 500);
    sb.set_fault(id, None);
    let r = c
        .post(url(&sb, id, "chat/completions"))
        .bearer_auth("k")
        .json(&chat_body("hi", false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    sb.stop().await;
}

#[tokio::test]
async fn set_fault_switches_on_and_off() {
    let id = SystemId::OPENAI_CLIENT;
    let sb = sandbox(&[(id, None)]).await;
    let c = client();
    let send = || {
        c.post(url(&sb, id, "chat/completions"))
            .bearer_auth("k")
            .json(&chat_body("hi", false))
            .send()
    };
    assert_eq!(send().await.unwrap().status(), 200);
    sb.set_fault(id, Some(Fault::Error(400)));
    let r = send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["type"],
        "invalid_request_error"
    );
    sb.set_fault(id, Some(Fault::RateLimit(1)));
    assert_eq!(send().await.unwrap().status(), 429);
    sb.set_fault(id, None);
    assert_eq!(send().await.unwrap().status(), 200);
    sb.stop().await;
}

// ---- bookkeeping -----------------------------------------------------------------------

#[tokio::test]
async fn requests_are_recorded_with_headers_and_body() {
    let id = SystemId::META_RL;
    let sb = sandbox(&[(id, None)]).await;
    let body = chat_body("Reward: 1.5 for the last attack", false);
    let r = client()
        .post(url(&sb, id, "chat/completions?trace=1"))
        .bearer_auth("sk-meta")
        .json(&body)
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert!(
        v["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .starts_with("ACK reward 1.5")
    );
    for stats in [
        url(&sb, id, "_sandbox/stats"),
        format!("http://127.0.0.1:{}/_sandbox/stats", port(&sb, id)),
    ] {
        let v: Value = client()
            .get(stats)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(v["systems"]["meta_rl"]["requests"], 1);
    }
    let reqs = sb.requests(id);
    assert_eq!(reqs.len(), 1, "the stats path is not recorded");
    let r = &reqs[0];
    assert_eq!(
        (r.method.as_str(), r.path_and_query.as_str()),
        ("POST", "/v1/chat/completions?trace=1")
    );
    assert_eq!(r.headers["authorization"], "Bearer sk-meta");
    assert_eq!(serde_json::from_slice::<Value>(&r.body).unwrap(), body);
    assert!(sb.requests(SystemId::MOE).is_empty());
    sb.stop().await;
}

#[tokio::test]
async fn stats_endpoint_reports_every_system_and_ignores_faults() {
    let sb = sandbox(&[
        (SystemId::CLAUDE_CLIENT, Some(Fault::Hang)),
        (SystemId::GEMINI_CLIENT, None),
    ])
    .await;
    let c = client();
    let _ = c
        .post(url(
            &sb,
            SystemId::GEMINI_CLIENT,
            "v1beta/models/m:generateContent",
        ))
        .header("x-goog-api-key", "g")
        .json(&json!({ "contents": [{ "parts": [{ "text": "hi" }] }] }))
        .send()
        .await
        .unwrap();
    let r = tokio::time::timeout(
        Duration::from_secs(5),
        c.get(url(&sb, SystemId::CLAUDE_CLIENT, "_sandbox/stats"))
            .send(),
    )
    .await;
    let v: Value = r
        .expect("stats are not faulted")
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["queried_via"], "claude_client");
    assert_eq!(v["systems"]["gemini_client"]["requests"], 1);
    assert_eq!(v["systems"]["gemini_client"]["accepted"], 1);
    assert_eq!(
        v["systems"]["claude_client"]["open"], 1,
        "the asking connection"
    );
    assert_eq!(v["systems"]["claude_client"]["requests"], 0);
    drop(c);
    crate::common::until("clients to close", || {
        sb.stats().iter().all(|(_, s)| s.open == 0)
    })
    .await;
    sb.stop().await;
}

#[tokio::test]
async fn stop_ends_hung_and_dripping_connections_and_frees_the_ports() {
    let sb = sandbox(&[
        (SystemId::OPENAI_CLIENT, Some(Fault::Hang)),
        (SystemId::GEMINI_CLIENT, Some(Fault::Drip)),
    ])
    .await;
    let c = client();
    let hung = tokio::spawn(
        c.post(url(&sb, SystemId::OPENAI_CLIENT, "chat/completions"))
            .bearer_auth("k")
            .json(&chat_body("hi", false))
            .send(),
    );
    let drip = c
        .post(url(
            &sb,
            SystemId::GEMINI_CLIENT,
            "v1beta/models/m:streamGenerateContent?alt=sse",
        ))
        .header("x-goog-api-key", "g")
        .json(&json!({ "contents": [{ "parts": [{ "text": "hi" }] }] }))
        .send()
        .await
        .unwrap();
    let mut drip = drip.bytes_stream();
    assert!(drip.next().await.is_some());
    crate::common::until("both connections to be open", || {
        sb.stats().iter().all(|(_, s)| s.open == 1)
    })
    .await;
    let ports = sb.ports();

    tokio::time::timeout(Duration::from_secs(5), sb.stop())
        .await
        .expect("stop returns");
    for p in ports {
        assert!(refused(p).await, "port {p} still accepts");
    }
    // The clients see their connections end.
    let r = tokio::time::timeout(Duration::from_secs(5), hung)
        .await
        .expect("hung request ends")
        .unwrap();
    // The connection was closed under the request: no answer, not a timeout.
    let err = r.map(|resp| resp.status()).unwrap_err();
    assert!(err.is_request() && !err.is_timeout(), "{err:?}");
    assert!(
        format!("{err:?}").contains("IncompleteMessage"),
        "closed before an answer: {err:?}"
    );
    let tail = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(item) = drip.next().await {
            if item.is_err() {
                return true;
            }
        }
        false
    })
    .await
    .expect("drip ends");
    assert!(tail, "an unterminated stream must end in an error");
}

#[tokio::test]
async fn fixed_base_port_gives_index_offsets() {
    // Find a free run of ports; another process may hold one, so try a few bases.
    for attempt in 0..20u16 {
        let base = 20_000 + (std::process::id() as u16 % 2000) * 11 + attempt * 17;
        let systems = vec![
            SandboxSystem::with_defaults(SystemId::VIDEO_INTERPRETER),
            SandboxSystem::with_defaults(SystemId::CLAUDE_CLIENT),
        ];
        let Ok(sb) = Sandbox::start(LOOPBACK, base, systems).await else {
            continue;
        };
        assert_eq!(
            sb.ports(),
            vec![base, base + SystemId::CLAUDE_CLIENT.index() as u16]
        );
        assert_eq!(
            sb.base_url(SystemId::CLAUDE_CLIENT).unwrap().as_str(),
            format!("http://127.0.0.1:{}/", base + 5)
        );
        assert!(sb.base_url(SystemId::ORCHESTRATOR).is_none());
        sb.stop().await;
        return;
    }
    panic!("no free port run found");
}

#[tokio::test]
async fn duplicate_systems_are_rejected() {
    let s = SandboxSystem::with_defaults(SystemId::MOE);
    let err = Sandbox::start(LOOPBACK, 0, vec![s.clone(), s])
        .await
        .map(|sb| sb.ports())
        .unwrap_err();
    assert_eq!(err.to_string(), "sandbox: moe listed twice");
}

// ---- the game script -------------------------------------------------------------------

#[test]
fn script_rules_in_priority_order() {
    let act = |p: &str| script::choose_action(p, "openai_client gpt-4o").0;
    assert_eq!(act("Health: 20/100. An enemy attacks!"), "heal");
    assert_eq!(act("HP: 34%"), "heal");
    assert_eq!(act("Health: 35/100. A hostile orc."), "attack");
    assert_eq!(act("ENEMY spotted, Stamina: 10/100"), "attack");
    assert_eq!(act("A chest sits in the corner"), "loot");
    assert_eq!(act("Enemies: none. Loot on the floor."), "loot");
    assert_eq!(act("A villager waves at you"), "talk");
    assert_eq!(act("An NPC stands by the well"), "talk");
    assert_eq!(act("Quiet meadow. Stamina: 15/100"), "rest");
    assert_eq!(act("Quiet meadow. Stamina: 25/100"), "explore");
    assert_eq!(act("Nothing here."), "explore");
    assert_eq!(act("There is no enemy in sight."), "explore");
    // A menu of actions is not a scene.
    assert_eq!(
        act(
            "Choose one of: explore, move, attack, block, cast, heal, sneak, talk, loot, rest, turn_camera\nA door stands open."
        ),
        "move"
    );
}

#[test]
fn game_frames_read_as_expected() {
    let calm = "Location: Riverwood\nHealth: 100/100\nStamina: 100/100\nMagicka: 100/100\nNo enemy in view\n";
    assert_eq!(script::choose_action(calm, "gemini_client").0, "explore");
    let npc = format!("{calm}Person nearby: Lucan the trader\n");
    assert_eq!(script::choose_action(&npc, "gemini_client").0, "talk");
    let fight = "Location: Helgen ruins\nHealth: 90/100\nStamina: 80/100\nMagicka: 100/100\nEnemy: a wolf (hostile) in view\n";
    assert_eq!(script::choose_action(fight, "claude_client").0, "attack");
    let scene = script::describe_scene(fight).concat();
    assert!(
        scene.starts_with("The scene shows Helgen ruins. An enemy"),
        "{scene}"
    );
    // The scene description fed back with the frame keeps the same answer.
    assert_eq!(
        script::choose_action(&format!("{fight}Scene: {scene}"), "claude_client").0,
        "attack"
    );
    let (_, p) = script::wolfram_answer("probability of finding loot while exploring Riverwood");
    let p: f64 = p.parse().unwrap();
    assert!((0.2..=0.8).contains(&p));
}

#[test]
fn cautious_experts_block_when_winded() {
    let prompt = "An enemy charges. Stamina: 10/100";
    assert_eq!(
        script::choose_action(prompt, "hyperbolic_client").0,
        "block"
    );
    assert_eq!(
        script::choose_action(prompt, "Qwen/Qwen3-235B-A22B-Instruct-2507").0,
        "block"
    );
    assert_eq!(script::choose_action(prompt, "claude_client").0, "attack");
    assert_eq!(
        script::choose_action("An enemy charges. Stamina: 50/100", "hyperbolic_client").0,
        "attack"
    );
    // Low health still wins.
    assert_eq!(
        script::choose_action(
            "Enemy! Health: 10/100, Stamina: 10/100",
            "hyperbolic_client"
        )
        .0,
        "heal"
    );
}

#[test]
fn script_is_deterministic_and_formats_replies() {
    let (a, r) = script::choose_action("A chest", "x");
    assert_eq!(script::choose_action("A chest", "x"), (a, r.clone()));
    assert!(script::ACTIONS.contains(&a) && r.ends_with('.'));
    let plain = script::reply("", "A chest", "x");
    assert_eq!(plain, format!("ACTION: loot\nREASON: {r}"));
    let j: Value =
        serde_json::from_str(&script::reply("Respond with JSON only.", "A chest", "x")).unwrap();
    assert_eq!(j["action"], "loot");
    assert!(script::reply("", "reward: -1", "meta").starts_with("ACK reward -1"));
    let scene = script::describe_scene("cave, enemy ahead, Health: 30/100");
    assert!((3..=6).contains(&scene.len()));
    assert!(scene.concat().contains("enemy"));
}

// ---- as strict as the services --------------------------------------------------------

/// POST `body` as JSON to `path` under `id`'s base URL, with that service's auth.
async fn post(
    sb: &Sandbox,
    id: SystemId,
    path: &str,
    body: &Value,
) -> (u16, http::HeaderMap, Value) {
    let c = client();
    let mut req = c.post(url(sb, id, path)).json(body);
    req = match id {
        SystemId::CLAUDE_CLIENT => req
            .header("x-api-key", "k")
            .header("anthropic-version", "2023-06-01"),
        SystemId::GEMINI_CLIENT | SystemId::VIDEO_INTERPRETER | SystemId::VOICE_SYSTEM => {
            req.header("x-goog-api-key", "k")
        }
        _ => req.bearer_auth("k"),
    };
    let r = req.send().await.unwrap();
    let (status, headers) = (r.status().as_u16(), r.headers().clone());
    let text = r.text().await.unwrap();
    (
        status,
        headers,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test]
async fn openai_refuses_what_openai_refuses() {
    let (chat, resp) = (SystemId::OPENAI_CLIENT, SystemId::ORCHESTRATOR);
    let sb = sandbox(&[(chat, None), (resp, None)]).await;
    let msgs = json!([{ "role": "user", "content": "hi" }]);
    let cases: Vec<(SystemId, &str, Value, u16, &str, Value)> = vec![
        (
            chat,
            "chat/completions",
            json!({ "model": "gpt-9-imaginary", "messages": msgs }),
            404,
            "The model `gpt-9-imaginary` does not exist or you do not have access to it.",
            json!("model_not_found"),
        ),
        (
            chat,
            "chat/completions",
            json!({ "model": "text-davinci-003", "messages": msgs }),
            404,
            "The model `text-davinci-003` has been deprecated",
            json!("model_not_found"),
        ),
        (
            chat,
            "chat/completions",
            json!({ "model": "gpt-5", "max_tokens": 256, "messages": msgs }),
            400,
            "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.",
            json!("unsupported_parameter"),
        ),
        (
            chat,
            "chat/completions",
            json!({ "model": "gpt-4o", "reasoning_effort": "low", "messages": msgs }),
            400,
            "Unrecognized request argument supplied: reasoning_effort",
            Value::Null,
        ),
        (
            chat,
            "chat/completions",
            json!({ "model": "gpt-5", "reasoning_effort": "none", "messages": msgs }),
            400,
            "Unsupported value: 'reasoning_effort' does not support 'none' with this model. Supported values are: 'minimal', 'low', 'medium', 'high'.",
            json!("unsupported_value"),
        ),
        (
            chat,
            "chat/completions",
            json!({ "model": "gpt-5", "temperature": 0.2, "messages": msgs }),
            400,
            "Only the default (1) value is supported.",
            json!("unsupported_value"),
        ),
        (
            chat,
            "chat/completions",
            json!({ "model": "gpt-5-pro", "messages": msgs }),
            404,
            "This model is only supported in v1/responses and not in v1/chat/completions.",
            Value::Null,
        ),
        (
            resp,
            "responses",
            json!({ "model": "gpt-4.1", "reasoning": { "effort": "low" }, "input": "hi" }),
            400,
            "Unsupported parameter: 'reasoning.effort' is not supported with this model.",
            json!("unsupported_parameter"),
        ),
        (
            resp,
            "responses",
            json!({ "model": "gpt-5", "max_output_tokens": 8, "input": "hi" }),
            400,
            "Expected a value >= 16, but got 8 instead.",
            json!("integer_below_min_value"),
        ),
    ];
    for (id, path, body, status, message, code) in cases {
        let (got, _, v) = post(&sb, id, path, &body).await;
        assert_eq!(got, status, "{body}: {v}");
        assert!(
            v["error"]["message"].as_str().unwrap().contains(message),
            "{body}: {v}"
        );
        assert_eq!(v["error"]["code"], code, "{body}");
        assert_eq!(v["error"]["type"], "invalid_request_error", "{body}");
    }
    // gpt-5.1 takes 'none', and then reasons not at all.
    let (got, _, v) = post(
        &sb,
        chat,
        "chat/completions",
        &json!({ "model": "gpt-5.1", "reasoning_effort": "none", "messages": msgs }),
    )
    .await;
    assert_eq!(got, 200, "{v}");
    assert_eq!(
        v["usage"]["completion_tokens_details"]["reasoning_tokens"],
        0
    );
    // The Responses API serves gpt-5-pro.
    let (got, _, _) = post(
        &sb,
        resp,
        "responses",
        &json!({ "model": "gpt-5-pro", "input": "hi" }),
    )
    .await;
    assert_eq!(got, 200);
    sb.stop().await;
}

#[tokio::test]
async fn reasoning_spends_the_cap_in_each_services_shape() {
    let (chat, resp, gem) = (
        SystemId::META_RL,
        SystemId::ORCHESTRATOR,
        SystemId::GEMINI_CLIENT,
    );
    let sb = sandbox(&[(chat, None), (resp, None), (gem, None)]).await;
    let msgs = json!([{ "role": "user", "content": "Health: 90/100" }]);
    // Chat: finish_reason length, empty content, the whole cap in reasoning_tokens.
    let (_, _, v) = post(&sb, chat, "chat/completions", &json!({ "model": "gpt-5", "max_completion_tokens": 256, "reasoning_effort": "high", "messages": msgs })).await;
    assert_eq!(v["choices"][0]["finish_reason"], "length", "{v}");
    assert_eq!(v["choices"][0]["message"]["content"], "");
    assert_eq!(v["usage"]["completion_tokens"], 256);
    assert_eq!(
        v["usage"]["completion_tokens_details"]["reasoning_tokens"],
        256
    );
    // Responses: status incomplete, its reason, only the reasoning item; streamed, the
    // last event is response.incomplete, never response.completed.
    let body = json!({ "model": "gpt-5", "max_output_tokens": 256, "reasoning": { "effort": "high" }, "input": "hi" });
    let (_, _, v) = post(&sb, resp, "responses", &body).await;
    assert_eq!(v["status"], "incomplete", "{v}");
    assert_eq!(v["incomplete_details"]["reason"], "max_output_tokens");
    assert_eq!(v["output"].as_array().unwrap().len(), 1);
    assert_eq!(v["output"][0]["type"], "reasoning");
    assert_eq!(v["usage"]["output_tokens_details"]["reasoning_tokens"], 256);
    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    let r = client()
        .post(url(&sb, resp, "responses"))
        .bearer_auth("k")
        .json(&streamed)
        .send()
        .await
        .unwrap();
    let events = sse_events(&r.text().await.unwrap());
    assert_eq!(
        events.last().unwrap().0.as_deref(),
        Some("response.incomplete")
    );
    assert!(
        events
            .iter()
            .all(|(e, _)| e.as_deref() != Some("response.completed"))
    );
    // Gemini 2.5: thinking by default; at the cap, MAX_TOKENS and a content without parts.
    let path = "v1beta/models/gemini-2.5-flash-lite:generateContent";
    let body = json!({ "contents": [{ "parts": [{ "text": "hi" }] }],
                       "generationConfig": { "maxOutputTokens": 256, "thinkingConfig": { "thinkingBudget": -1 } } });
    let (_, _, v) = post(&sb, gem, path, &body).await;
    assert_eq!(v["candidates"][0]["finishReason"], "MAX_TOKENS", "{v}");
    assert_eq!(v["candidates"][0]["content"], json!({ "role": "model" }));
    assert_eq!(v["usageMetadata"]["thoughtsTokenCount"], 256);
    assert!(v["usageMetadata"].get("candidatesTokenCount").is_none());
    sb.stop().await;
}

#[tokio::test]
async fn gemini_refuses_what_gemini_refuses() {
    let (gem, tts) = (SystemId::GEMINI_CLIENT, SystemId::VOICE_SYSTEM);
    let sb = sandbox(&[(gem, None), (tts, None)]).await;
    let text = json!({ "contents": [{ "parts": [{ "text": "hi" }] }] });
    let audio = json!({ "contents": [{ "parts": [{ "text": "hi" }] }], "generationConfig": { "responseModalities": ["AUDIO"] } });
    let pro_off = json!({ "contents": [{ "parts": [{ "text": "hi" }] }], "generationConfig": { "thinkingConfig": { "thinkingBudget": 0 } } });
    let cases: Vec<(SystemId, String, Value, u16, &str, String)> = vec![
        (gem, "v1beta/models/gemini-2.5-flash-native-audio-preview-09-2025:streamGenerateContent".into(), text.clone(), 404, "NOT_FOUND",
         "models/gemini-2.5-flash-native-audio-preview-09-2025 is not found for API version v1beta, or is not supported for streamGenerateContent. Call ListModels to see the list of available models and their supported methods.".into()),
        (gem, "v1beta/models/gemini-1.5-flash:generateContent".into(), text.clone(), 404, "NOT_FOUND",
         "models/gemini-1.5-flash is not found for API version v1beta, or is not supported for generateContent.".into()),
        (gem, "v1beta/models/gemini-2.5-flash-lite:generateContent".into(), audio.clone(), 400, "INVALID_ARGUMENT",
         "Model does not support the requested response modalities: audio".into()),
        (tts, "v1beta/models/gemini-2.5-pro-preview-tts:generateContent".into(), text.clone(), 400, "INVALID_ARGUMENT",
         "The requested combination of response modalities (TEXT) is not supported by the model. models/gemini-2.5-pro-preview-tts accepts the following combination of response modalities:\n* AUDIO\n".into()),
        (gem, "v1beta/models/gemini-2.5-flash:generateContent".into(), text.clone(), 404, "NOT_FOUND",
         "models/gemini-2.5-flash is not found for API version v1beta, or is not supported for generateContent.".into()),
        (gem, "v1beta/models/gemini-3.1-pro-preview:generateContent".into(), pro_off, 400, "INVALID_ARGUMENT",
         "Budget 0 is invalid. This model only works in thinking mode.".into()),
    ];
    for (id, path, body, status, name, message) in cases {
        let (got, _, v) = post(&sb, id, &path, &body).await;
        assert_eq!(got, status, "{path}: {v}");
        assert_eq!(v["error"]["status"], name, "{path}");
        assert_eq!(v["error"]["code"], status, "{path}");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with(&message),
            "{path}: {v}"
        );
    }
    sb.stop().await;
}

#[tokio::test]
async fn anthropic_errors_carry_a_request_id_and_overload_is_529() {
    let id = SystemId::CLAUDE_CLIENT;
    let sb = sandbox(&[(id, Some(Fault::Overloaded))]).await;
    let body = json!({ "model": "claude-sonnet-4-5", "max_tokens": 10, "messages": [{ "role": "user", "content": "hi" }] });
    let (status, headers, v) = post(&sb, id, "v1/messages", &body).await;
    assert_eq!(status, 529);
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "overloaded_error");
    assert_eq!(v["error"]["message"], "Overloaded");
    let rid = v["request_id"].as_str().expect("request_id in the body");
    assert!(rid.starts_with("req_"));
    assert_eq!(headers["request-id"], rid, "and the same id in the header");
    sb.set_fault(id, None);
    let retired = json!({ "model": "claude-3-5-sonnet-20240620", "max_tokens": 10, "messages": [{ "role": "user", "content": "hi" }] });
    let (status, _, v) = post(&sb, id, "v1/messages", &retired).await;
    assert_eq!(status, 404);
    assert_eq!(
        (v["error"]["type"].as_str(), v["error"]["message"].as_str()),
        (
            Some("not_found_error"),
            Some("model: claude-3-5-sonnet-20240620")
        )
    );
    assert!(v["request_id"].is_string());
    sb.stop().await;
}

#[tokio::test]
async fn rate_limit_headers_on_every_answer_and_retry_hints_on_a_429() {
    let (oai, ant, gem) = (
        SystemId::OPENAI_CLIENT,
        SystemId::CLAUDE_CLIENT,
        SystemId::GEMINI_CLIENT,
    );
    let sb = sandbox(&[(oai, None), (ant, None), (gem, None)]).await;
    let chat = chat_body("hi", false);
    let (_, h1, _) = post(&sb, oai, "chat/completions", &chat).await;
    let (_, h2, _) = post(&sb, oai, "chat/completions", &chat).await;
    let n = |h: &http::HeaderMap, k: &str| h[k].to_str().unwrap().parse::<u64>().unwrap();
    assert_eq!(
        n(&h1, "x-ratelimit-remaining-requests"),
        n(&h2, "x-ratelimit-remaining-requests") + 1
    );
    assert!(n(&h2, "x-ratelimit-remaining-tokens") < n(&h1, "x-ratelimit-remaining-tokens"));
    assert!(
        n(&h1, "x-ratelimit-limit-requests") > 0 && h1.contains_key("x-ratelimit-reset-requests")
    );
    let claude = json!({ "model": "claude-sonnet-4-5", "max_tokens": 64, "messages": [{ "role": "user", "content": "hi" }] });
    let (_, h, _) = post(&sb, ant, "v1/messages", &claude).await;
    for k in [
        "requests-limit",
        "requests-remaining",
        "requests-reset",
        "tokens-limit",
        "tokens-remaining",
        "tokens-reset",
    ] {
        assert!(
            h.contains_key(format!("anthropic-ratelimit-{k}").as_str()),
            "anthropic-ratelimit-{k}"
        );
    }
    assert!(
        chrono::DateTime::parse_from_rfc3339(
            h["anthropic-ratelimit-requests-reset"].to_str().unwrap()
        )
        .is_ok()
    );
    let (_, h, _) = post(
        &sb,
        gem,
        "v1beta/models/gemini-2.5-flash-lite:generateContent",
        &json!({ "contents": [{ "parts": [{ "text": "hi" }] }] }),
    )
    .await;
    assert!(
        !h.keys().any(|k| k.as_str().contains("ratelimit")),
        "Gemini sends none"
    );

    sb.set_fault(oai, Some(Fault::RateLimit(1)));
    let (status, h, _) = post(&sb, oai, "chat/completions", &chat).await;
    assert_eq!(status, 429);
    assert_eq!(h["retry-after"], "1");
    assert_eq!(h["retry-after-ms"], "1000");
    sb.stop().await;
}

/// A system the catalog does not know, added by a config: an OpenAI-compatible third party
/// serves the model its config declares (as Hyperbolic and LM Studio serve their own), and
/// refuses any other as OpenAI's wire does; OpenAI's own listener stays as strict as before.
#[tokio::test]
async fn a_third_party_serves_the_model_its_config_declares() {
    use singularis_tui::systems::Protocol;
    use singularis_tui::systems::catalog::Service;
    let id = SystemId::intern("sandbox_wire_mistral").unwrap();
    let third = SandboxSystem {
        id,
        protocol: Protocol::OpenaiChat,
        service: Service::of(id, Protocol::OpenaiChat, None),
        model: "mistral-small-latest".into(),
        fault: None,
    };
    assert_eq!(third.service, Service::OpenAiCompatible);
    let sb = Sandbox::start(
        LOOPBACK,
        0,
        vec![third, SandboxSystem::with_defaults(SystemId::OPENAI_CLIENT)],
    )
    .await
    .unwrap();
    let msgs = json!([{ "role": "user", "content": "hi" }]);
    let ask = |model: &str| json!({ "model": model, "max_tokens": 64, "messages": msgs });
    let (status, _, v) = post(&sb, id, "chat/completions", &ask("mistral-small-latest")).await;
    assert_eq!(status, 200, "{v}");
    assert!(v["choices"][0]["message"]["content"].is_string(), "{v}");
    let (status, _, v) = post(&sb, id, "chat/completions", &ask("gpt-5.1")).await;
    assert_eq!(status, 404, "{v}");
    assert_eq!(v["error"]["code"], "model_not_found");
    let (status, _, _) = post(
        &sb,
        SystemId::OPENAI_CLIENT,
        "chat/completions",
        &ask("mistral-small-latest"),
    )
    .await;
    assert_eq!(
        status, 404,
        "OpenAI's listener does not serve a third party's model"
    );
    let listed: Value = client()
        .get(url(&sb, id, "models"))
        .bearer_auth("k")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["data"][0]["id"], "mistral-small-latest", "{listed}");
    sb.stop().await;
}
