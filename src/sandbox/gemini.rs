//! Gemini `generateContent` / `streamGenerateContent` under `/v1/` and `/v1beta/`: text,
//! the video interpreter's scene descriptions, and TTS audio.

use super::wire::{self, Ctx, Req};
use super::{pcm, script};
use crate::systems::Protocol;
use axum::body::Body;
use base64::Engine as _;
use bytes::Bytes;
use http::{Response, StatusCode};
use serde_json::{Value, json};

const SSE: &str = "text/event-stream";

enum Route<'a> {
    List,
    Model(&'a str),
    Call { model: &'a str, method: &'a str },
}

fn route(path: &str) -> Option<Route<'_>> {
    let rest = path.strip_prefix("/v1beta/").or_else(|| path.strip_prefix("/v1/"))?;
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
        ("GET", Route::List) => wire::json(StatusCode::OK, &json!({ "models": [model_info(ctx.model)] })),
        ("GET", Route::Model(m)) => wire::json(StatusCode::OK, &model_info(m)),
        ("POST", Route::Call { model, method: "generateContent" }) => generate(ctx, req, model, false),
        ("POST", Route::Call { model, method: "streamGenerateContent" }) => generate(ctx, req, model, true),
        _ => not_found(req),
    }
}

fn not_found(req: &Req) -> Response<Body> {
    error(StatusCode::NOT_FOUND, &format!("Requested entity was not found: {}", req.describe()))
}

fn model_info(model: &str) -> Value {
    json!({
        "name": format!("models/{model}"), "version": "001", "displayName": model,
        "supportedGenerationMethods": ["generateContent", "streamGenerateContent", "countTokens"],
    })
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
    wire::json(status, &json!({ "error": { "code": code, "message": message, "status": name } }))
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
}

impl Answer {
    /// One `GenerateContentResponse`; `finish` on the last one.
    fn chunk(&self, parts: Value, finish: bool, candidate_tokens: u64) -> Value {
        let mut candidate = json!({ "content": { "role": "model", "parts": parts }, "index": 0 });
        if finish {
            candidate["finishReason"] = json!("STOP");
        }
        json!({
            "candidates": [candidate],
            "usageMetadata": {
                "promptTokenCount": self.prompt_tokens, "candidatesTokenCount": candidate_tokens,
                "totalTokenCount": self.prompt_tokens + candidate_tokens,
            },
            "modelVersion": self.model, "responseId": self.response_id,
        })
    }
}

fn generate(ctx: &Ctx, req: &Req, model: &str, stream: bool) -> Response<Body> {
    let body = match req.json() {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, &format!("Invalid JSON payload received. {e}")),
    };
    let Some(contents) = body.get("contents").and_then(Value::as_array).filter(|c| !c.is_empty()) else {
        return error(StatusCode::BAD_REQUEST, "* GenerateContentRequest.contents: contents is not specified\n");
    };
    let system = parts_text(body.get("systemInstruction"));
    let user = parts_text(
        contents
            .iter()
            .rev()
            .find(|c| c.get("role").and_then(Value::as_str).is_none_or(|r| r == "user"))
            .or(contents.last()),
    );
    let a = Answer {
        model: model.to_string(),
        response_id: ctx.tag(),
        prompt_tokens: wire::tokens(&system) + wire::tokens(&user),
    };

    // The pieces of the answer, each a `parts` array with its token count.
    let pieces: Vec<(Value, u64)> = if wants_audio(&body) {
        let voice = body
            .pointer("/generationConfig/speechConfig/voiceConfig/prebuiltVoiceConfig/voiceName")
            .and_then(Value::as_str)
            .unwrap_or("Kore");
        let pcm = pcm::synthesize(&user, voice);
        let data = base64::engine::general_purpose::STANDARD.encode(&pcm);
        // Gemini counts 25 audio tokens per second.
        let tokens = (pcm.len() as u64 * 25 / (u64::from(pcm::SAMPLE_RATE) * 2)).max(1);
        vec![(json!([{ "inlineData": { "mimeType": pcm::MIME, "data": data } }]), tokens)]
    } else {
        let texts = if ctx.protocol == Protocol::GeminiStream {
            script::describe_scene(&user)
        } else {
            wire::word_chunks(&script::reply(&system, &user, &ctx.expert(model)), 4)
        };
        let texts = if stream { texts } else { vec![texts.concat()] };
        texts.into_iter().map(|t| (json!([{ "text": t }]), wire::tokens(&t))).collect()
    };

    let last = pieces.len().saturating_sub(1);
    let mut total = 0;
    let chunks: Vec<Value> = pieces
        .into_iter()
        .enumerate()
        .map(|(i, (parts, tokens))| {
            total += tokens;
            a.chunk(parts, i == last, total)
        })
        .collect();
    if !stream {
        return match chunks.into_iter().next() {
            Some(c) => wire::json(StatusCode::OK, &c),
            None => error(StatusCode::INTERNAL_SERVER_ERROR, "empty answer"),
        };
    }
    if req.query_param("alt").as_deref() == Some("sse") {
        wire::sse(SSE, chunks.iter().map(sse_chunk).collect())
    } else {
        // Without alt=sse the stream is one JSON array, sent piece by piece.
        let n = chunks.len();
        let mut pieces: Vec<Bytes> = chunks
            .iter()
            .enumerate()
            .map(|(i, c)| Bytes::from(format!("{}{c}", if i == 0 { "[" } else { ",\r\n" })))
            .collect();
        if n == 0 {
            pieces.push(Bytes::from_static(b"["));
        }
        pieces.push(Bytes::from_static(b"]"));
        wire::with_type(StatusCode::OK, "application/json; charset=UTF-8", wire::paced(pieces))
    }
}

fn wants_audio(body: &Value) -> bool {
    body.pointer("/generationConfig/responseModalities")
        .and_then(Value::as_array)
        .is_some_and(|m| m.iter().any(|v| v.as_str().is_some_and(|s| s.eq_ignore_ascii_case("audio"))))
}

/// Google frames its SSE with CRLF.
fn sse_chunk(v: &Value) -> Bytes {
    Bytes::from(format!("data: {v}\r\n\r\n"))
}

/// The `drip` fault: a stream that starts like the real one and never finishes.
pub(crate) fn drip(ctx: &Ctx, req: &Req) -> Response<Body> {
    let model = match route(&req.path) {
        Some(Route::Call { model, method: "streamGenerateContent" }) => model.to_string(),
        _ => return wire::drip_plain("application/json; charset=UTF-8"),
    };
    let a = Answer { model, response_id: ctx.tag(), prompt_tokens: 1 };
    let tick = move |n: u64| a.chunk(json!([{ "text": "." }]), false, n + 1);
    if req.query_param("alt").as_deref() == Some("sse") {
        let first = sse_chunk(&tick(0));
        let body = wire::endless(vec![first], move |n| sse_chunk(&tick(n + 1)));
        wire::with_type(StatusCode::OK, SSE, body)
    } else {
        let first = Bytes::from(format!("[{}", tick(0)));
        let body = wire::endless(vec![first], move |n| Bytes::from(format!(",\r\n{}", tick(n + 1))));
        wire::with_type(StatusCode::OK, "application/json; charset=UTF-8", body)
    }
}
