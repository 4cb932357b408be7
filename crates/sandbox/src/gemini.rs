//! Gemini `generateContent` / `streamGenerateContent` under `/v1/` and `/v1beta/`: text,
//! the video interpreter's scene descriptions, and TTS audio.

use super::catalog::{self, Kind, Model, Think};
use super::wire::{self, Ctx, Req};
use super::{pcm, script};
use axum::body::Body;
use base64::Engine as _;
use bytes::Bytes;
use http::{Response, StatusCode};
use serde_json::{Value, json};
use singularis_engine::systems::Protocol;

const SSE: &str = "text/event-stream";

enum Route<'a> {
    List,
    Model(&'a str),
    Call { model: &'a str, method: &'a str },
}

/// `v1beta` or `v1`, as the path has it.
fn api_version(path: &str) -> &'static str {
    if path.starts_with("/v1beta/") {
        "v1beta"
    } else {
        "v1"
    }
}

fn route(path: &str) -> Option<Route<'_>> {
    let rest = path
        .strip_prefix("/v1beta/")
        .or_else(|| path.strip_prefix("/v1/"))?;
    if rest == "models" {
        return Some(Route::List);
    }
    let target = rest.strip_prefix("models/").filter(|t| !t.is_empty())?;
    Some(match target.rsplit_once(':') {
        Some((model, method)) => Route::Call { model, method },
        None => Route::Model(target),
    })
}

pub(crate) fn respond(ctx: &Ctx, req: &Req) -> Response<Body> {
    let Some(route) = route(&req.path) else {
        return not_found(req);
    };
    if req.header("x-goog-api-key").is_none()
        && req.query_param("key").is_none_or(|k| k.trim().is_empty())
        && req.bearer().is_none()
    {
        return error(
            StatusCode::FORBIDDEN,
            "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.",
        );
    }
    match (req.method.as_str(), route) {
        ("GET", Route::List) => {
            let models: Vec<Value> = catalog::listed(ctx.service).map(model_info).collect();
            wire::json(StatusCode::OK, &json!({ "models": models }))
        }
        ("GET", Route::Model(m)) => {
            match catalog::find(ctx.service, m, ctx.model).filter(|i| i.kind != Kind::Retired) {
                Some(info) => wire::json(StatusCode::OK, &model_info(&info)),
                None => error(
                    StatusCode::NOT_FOUND,
                    &format!(
                        "models/{m} is not found for API version {}",
                        api_version(&req.path)
                    ),
                ),
            }
        }
        (
            "POST",
            Route::Call {
                model,
                method: m @ ("generateContent" | "streamGenerateContent"),
            },
        ) => generate(ctx, req, model, m == "streamGenerateContent"),
        _ => not_found(req),
    }
}

fn not_found(req: &Req) -> Response<Body> {
    error(
        StatusCode::NOT_FOUND,
        &format!("Requested entity was not found: {}", req.describe()),
    )
}

fn model_info(m: &Model) -> Value {
    let methods: &[&str] = match m.kind {
        Kind::Live => &["bidiGenerateContent"],
        Kind::Tts => &["generateContent", "countTokens"],
        _ => &["generateContent", "streamGenerateContent", "countTokens"],
    };
    json!({
        "name": format!("models/{}", m.id), "version": "001", "displayName": m.id,
        "supportedGenerationMethods": methods,
        "thinking": matches!(m.think, Think::Budget { .. }),
    })
}

/// The model, if it serves `method` with the modalities the request asks for; else the
/// service's own refusal.
fn serving_model(
    ctx: &Ctx,
    req: &Req,
    body: &Value,
    model: &str,
    method: &str,
) -> Result<Model, Box<Response<Body>>> {
    let not_found = || {
        Box::new(error(
            StatusCode::NOT_FOUND,
            &format!(
                "models/{model} is not found for API version {}, or is not supported for {method}. Call ListModels to see the list of available models and their supported methods.",
                api_version(&req.path)
            ),
        ))
    };
    let info = catalog::find(ctx.service, model, ctx.model).ok_or_else(not_found)?;
    let audio = wants_audio(body);
    let modalities = |asked: &str, accepts: &str| {
        Box::new(error(
            StatusCode::BAD_REQUEST,
            &format!(
                "The requested combination of response modalities ({asked}) is not supported by the model. models/{model} accepts the following combination of response modalities:\n* {accepts}\n"
            ),
        ))
    };
    match info.kind {
        Kind::Text if audio => Err(Box::new(error(
            StatusCode::BAD_REQUEST,
            "Model does not support the requested response modalities: audio",
        ))),
        Kind::Tts if !audio => Err(modalities("TEXT", "AUDIO")),
        Kind::Tts if method == "streamGenerateContent" => Err(not_found()),
        Kind::Text | Kind::Tts => Ok(info),
        Kind::Live | Kind::Retired | Kind::ResponsesOnly | Kind::NotChat => Err(not_found()),
    }
}

/// Google's error JSON: `{"error":{"code","message","status"}}`.
pub(crate) fn error(status: StatusCode, message: &str) -> Response<Body> {
    let code = status.as_u16();
    let name = match code {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ABORTED",
        429 => "RESOURCE_EXHAUSTED",
        499 => "CANCELLED",
        500 => "INTERNAL",
        501 => "UNIMPLEMENTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        s if s >= 500 => "UNKNOWN",
        _ => "FAILED_PRECONDITION",
    };
    wire::json(
        status,
        &json!({ "error": { "code": code, "message": message, "status": name } }),
    )
}

/// The answer to an `error:CODE` fault, with the message the real service gives.
pub(crate) fn fault_error(status: StatusCode) -> Response<Body> {
    let message = match status.as_u16() {
        400 => "Request contains an invalid argument.",
        401 => "Request had invalid authentication credentials.",
        403 => "The caller does not have permission",
        404 => "Requested entity was not found.",
        429 => "Resource has been exhausted (e.g. check quota).",
        503 => "The model is overloaded. Please try again later.",
        504 => "Deadline expired before operation could complete.",
        s if s >= 500 => {
            "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting"
        }
        _ => "Precondition check failed.",
    };
    error(status, message)
}

fn parts_text(content: Option<&Value>) -> String {
    wire::content_text(content.and_then(|c| c.get("parts")))
}

struct Answer {
    model: String,
    response_id: String,
    prompt_tokens: u64,
    thoughts: u64,
}

impl Answer {
    /// One `GenerateContentResponse`; `finish` on the last one. A candidate with nothing
    /// to say (the cap spent on thinking) has a content without parts, as the service sends it.
    fn chunk(&self, parts: Option<Value>, finish: Option<&str>, candidate_tokens: u64) -> Value {
        let content = match parts {
            Some(p) => json!({ "role": "model", "parts": p }),
            None => json!({ "role": "model" }),
        };
        let mut candidate = json!({ "content": content, "index": 0 });
        if let Some(f) = finish {
            candidate["finishReason"] = json!(f);
        }
        let mut usage = json!({
            "promptTokenCount": self.prompt_tokens,
            "totalTokenCount": self.prompt_tokens + candidate_tokens + self.thoughts,
        });
        if candidate_tokens > 0 {
            usage["candidatesTokenCount"] = json!(candidate_tokens);
        }
        if self.thoughts > 0 {
            usage["thoughtsTokenCount"] = json!(self.thoughts);
        }
        json!({
            "candidates": [candidate], "usageMetadata": usage,
            "modelVersion": self.model, "responseId": self.response_id,
        })
    }
}

/// `pieces` cut so that together they hold at most `chars` characters.
fn cut_pieces(pieces: Vec<String>, mut chars: usize) -> Vec<String> {
    let mut out = Vec::new();
    for p in pieces {
        if chars == 0 {
            break;
        }
        let n = p.chars().count();
        if n <= chars {
            chars -= n;
            out.push(p);
        } else {
            out.push(p.chars().take(chars).collect());
            chars = 0;
        }
    }
    out
}

fn generate(ctx: &Ctx, req: &Req, model: &str, stream: bool) -> Response<Body> {
    let body = match req.json() {
        Ok(b) => b,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("Invalid JSON payload received. {e}"),
            );
        }
    };
    let Some(contents) = body
        .get("contents")
        .and_then(Value::as_array)
        .filter(|c| !c.is_empty())
    else {
        return error(
            StatusCode::BAD_REQUEST,
            "* GenerateContentRequest.contents: contents is not specified\n",
        );
    };
    let method = if stream {
        "streamGenerateContent"
    } else {
        "generateContent"
    };
    let info = match serving_model(ctx, req, &body, model, method) {
        Ok(m) => m,
        Err(r) => return *r,
    };
    let budget = match thinking_budget(&body, info.think, model) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let cap = match output_cap(&body) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let system = parts_text(body.get("systemInstruction"));
    let user = parts_text(last_user_turn(contents));
    let prompt_tokens = wire::tokens(&system) + wire::tokens(&user);

    if info.kind == Kind::Tts {
        return speech(ctx, &body, model, &user, prompt_tokens);
    }
    let thinking = catalog::thinking_tokens(info.think, budget);
    let texts = if ctx.protocol == Protocol::GeminiStream {
        script::describe_scene(&user)
    } else {
        wire::word_chunks(&script::reply(&system, &user, &ctx.expert(model)), 4)
    };
    let fit = ctx.fit(cap, thinking, &texts.concat());
    ctx.meter.spend(prompt_tokens, fit.output(), fit.thinking);
    let a = Answer {
        model: model.to_string(),
        response_id: ctx.tag(),
        prompt_tokens,
        thoughts: fit.thinking,
    };
    let finish = if fit.cut { "MAX_TOKENS" } else { "STOP" };
    let texts = cut_pieces(texts, fit.text.chars().count());
    let texts = if stream { texts } else { vec![texts.concat()] };
    let texts: Vec<String> = texts.into_iter().filter(|t| !t.is_empty()).collect();
    let mut chunks = answer_chunks(&a, &texts, fit.visible, finish);
    if !stream {
        return wire::json(StatusCode::OK, &chunks[0]);
    }
    close_with_usage_only(&mut chunks);
    stream_chunks(req, &chunks)
}

/// `generationConfig.thinkingConfig.thinkingBudget`, when set: an integer the model accepts,
/// or the service's refusal.
fn thinking_budget(
    body: &Value,
    think: Think,
    model: &str,
) -> Result<Option<i64>, Box<Response<Body>>> {
    match body.pointer("/generationConfig/thinkingConfig/thinkingBudget") {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_i64() {
            Some(b) => match catalog::check_budget(think, b, model) {
                Ok(()) => Ok(Some(b)),
                Err(msg) => Err(Box::new(error(StatusCode::BAD_REQUEST, &msg))),
            },
            None => Err(Box::new(error(
                StatusCode::BAD_REQUEST,
                &format!(
                    "Invalid value at 'generation_config.thinking_config.thinking_budget' ({v}), expected an integer"
                ),
            ))),
        },
    }
}

/// `generationConfig.maxOutputTokens`, when set: a positive integer, or the service's refusal.
fn output_cap(body: &Value) -> Result<Option<u64>, Box<Response<Body>>> {
    match body
        .pointer("/generationConfig/maxOutputTokens")
        .filter(|v| !v.is_null())
    {
        None => Ok(None),
        Some(v) => match v.as_u64().filter(|n| *n > 0) {
            Some(n) => Ok(Some(n)),
            None => Err(Box::new(error(
                StatusCode::BAD_REQUEST,
                &format!("Invalid value at 'generation_config.max_output_tokens' ({v})"),
            ))),
        },
    }
}

/// The turn the model answers: the last user turn (a turn without a role is the user's),
/// else the last turn.
fn last_user_turn(contents: &[Value]) -> Option<&Value> {
    contents
        .iter()
        .rev()
        .find(|c| {
            c.get("role")
                .and_then(Value::as_str)
                .is_none_or(|r| r == "user")
        })
        .or(contents.last())
}

/// One response chunk per text piece with running candidate counts, the last exactly the
/// `visible` tokens billed and carrying `finish`; one chunk without parts when there is no
/// text.
fn answer_chunks(a: &Answer, texts: &[String], visible: u64, finish: &str) -> Vec<Value> {
    let mut chunks = Vec::new();
    let mut so_far = 0;
    for (i, t) in texts.iter().enumerate() {
        let last = i + 1 == texts.len();
        so_far = if last {
            visible
        } else {
            (so_far + wire::tokens(t)).min(visible)
        };
        chunks.push(a.chunk(Some(json!([{ "text": t }])), last.then_some(finish), so_far));
    }
    if chunks.is_empty() {
        chunks.push(a.chunk(None, Some(finish), 0));
    }
    chunks
}

/// Gemini may close a stream with a chunk that holds only the usage, no candidates; the
/// sandbox always does, so that clients must take it in their stride.
fn close_with_usage_only(chunks: &mut Vec<Value>) {
    if let Some(mut usage_only) = chunks.last().cloned()
        && let Some(o) = usage_only.as_object_mut()
    {
        o.remove("candidates");
        chunks.push(usage_only);
    }
}

/// Text-to-speech: PCM, or nothing at all when the `truncate` fault cuts it.
fn speech(ctx: &Ctx, body: &Value, model: &str, text: &str, prompt_tokens: u64) -> Response<Body> {
    let voice = body
        .pointer("/generationConfig/speechConfig/voiceConfig/prebuiltVoiceConfig/voiceName")
        .and_then(Value::as_str)
        .unwrap_or("Kore");
    let a = Answer {
        model: model.to_string(),
        response_id: ctx.tag(),
        prompt_tokens,
        thoughts: 0,
    };
    let pcm = pcm::synthesize(text, voice);
    ctx.made(crate::clock::Spent {
        audio_ms: pcm.len() as u64 * 1000 / (u64::from(pcm::SAMPLE_RATE) * 2),
        ..Default::default()
    });
    // Gemini counts 25 audio tokens per second.
    let tokens = (pcm.len() as u64 * 25 / (u64::from(pcm::SAMPLE_RATE) * 2)).max(1);
    let answer = if ctx.truncate {
        ctx.meter.spend(prompt_tokens, 0, 0);
        a.chunk(None, Some("MAX_TOKENS"), 0)
    } else {
        ctx.meter.spend(prompt_tokens, tokens, 0);
        let data = base64::engine::general_purpose::STANDARD.encode(&pcm);
        a.chunk(
            Some(json!([{ "inlineData": { "mimeType": pcm::MIME, "data": data } }])),
            Some("STOP"),
            tokens,
        )
    };
    wire::json(StatusCode::OK, &answer)
}

/// SSE with `alt=sse`, else one JSON array sent piece by piece.
fn stream_chunks(req: &Req, chunks: &[Value]) -> Response<Body> {
    if req.query_param("alt").as_deref() == Some("sse") {
        return wire::sse(SSE, chunks.iter().map(sse_chunk).collect());
    }
    let mut pieces: Vec<Bytes> = chunks
        .iter()
        .enumerate()
        .map(|(i, c)| Bytes::from(format!("{}{c}", if i == 0 { "[" } else { ",\r\n" })))
        .collect();
    if pieces.is_empty() {
        pieces.push(Bytes::from_static(b"["));
    }
    pieces.push(Bytes::from_static(b"]"));
    wire::with_type(
        StatusCode::OK,
        "application/json; charset=UTF-8",
        wire::paced(pieces),
    )
}

fn wants_audio(body: &Value) -> bool {
    body.pointer("/generationConfig/responseModalities")
        .and_then(Value::as_array)
        .is_some_and(|m| {
            m.iter()
                .any(|v| v.as_str().is_some_and(|s| s.eq_ignore_ascii_case("audio")))
        })
}

/// Google frames its SSE with CRLF.
fn sse_chunk(v: &Value) -> Bytes {
    Bytes::from(format!("data: {v}\r\n\r\n"))
}

/// The `drip` fault: a stream that starts like the real one and never finishes.
pub(crate) fn drip(ctx: &Ctx, req: &Req) -> Response<Body> {
    let model = match route(&req.path) {
        Some(Route::Call {
            model,
            method: "streamGenerateContent",
        }) => model.to_string(),
        _ => return wire::drip_plain("application/json; charset=UTF-8"),
    };
    let a = Answer {
        model,
        response_id: ctx.tag(),
        prompt_tokens: 1,
        thoughts: 0,
    };
    let tick = move |n: u64| a.chunk(Some(json!([{ "text": "." }])), None, n + 1);
    if req.query_param("alt").as_deref() == Some("sse") {
        let first = sse_chunk(&tick(0));
        let body = wire::endless(vec![first], move |n| sse_chunk(&tick(n + 1)));
        wire::with_type(StatusCode::OK, SSE, body)
    } else {
        let first = Bytes::from(format!("[{}", tick(0)));
        let body = wire::endless(vec![first], move |n| {
            Bytes::from(format!(",\r\n{}", tick(n + 1)))
        });
        wire::with_type(StatusCode::OK, "application/json; charset=UTF-8", body)
    }
}
