//! OpenAI Chat Completions (also spoken by Hyperbolic and LM Studio) and OpenAI Responses.

use super::script;
use super::wire::{self, Ctx, Req};
use crate::systems::Protocol;
use axum::body::Body;
use bytes::Bytes;
use http::{Response, StatusCode};
use serde_json::{Value, json};

const SSE: &str = "text/event-stream; charset=utf-8";

pub(crate) fn respond(ctx: &Ctx, req: &Req) -> Response<Body> {
    let mut r = match (req.method.as_str(), req.path.as_str(), ctx.protocol) {
        ("POST", "/v1/chat/completions", Protocol::OpenaiChat) => authed(ctx, req, chat),
        ("POST", "/v1/responses", Protocol::OpenaiResponses) => authed(ctx, req, responses),
        ("GET", "/v1/models", Protocol::OpenaiChat | Protocol::OpenaiResponses) => authed(ctx, req, models),
        _ => error(StatusCode::NOT_FOUND, &format!("Invalid URL ({})", req.describe()), None),
    };
    wire::set_header(&mut r, "x-request-id", &format!("req_{}", ctx.tag()));
    r
}

/// OpenAI's error JSON: `{"error":{"message","type","param","code"}}`.
pub(crate) fn error(status: StatusCode, message: &str, code: Option<&str>) -> Response<Body> {
    error_on(status, message, None, code)
}

fn error_on(status: StatusCode, message: &str, param: Option<&str>, code: Option<&str>) -> Response<Body> {
    let kind = match status.as_u16() {
        401 => "invalid_request_error",
        403 => "request_forbidden",
        429 => "requests",
        s if s >= 500 => "server_error",
        _ => "invalid_request_error",
    };
    let body = json!({ "error": { "message": message, "type": kind, "param": param, "code": code } });
    wire::json(status, &body)
}

/// The answer to an `error:CODE` fault, with the message the real service gives.
pub(crate) fn fault_error(status: StatusCode) -> Response<Body> {
    let (message, code) = match status.as_u16() {
        400 => ("Invalid request (sandbox fault).", None),
        401 => ("Incorrect API key provided.", Some("invalid_api_key")),
        403 => ("Country, region, or territory not supported.", Some("unsupported_country_region_territory")),
        404 => ("The model does not exist or you do not have access to it.", Some("model_not_found")),
        429 => ("Rate limit reached for requests. Please try again in 1s.", Some("rate_limit_exceeded")),
        503 => ("The server is overloaded or not ready yet.", None),
        s if s >= 500 => ("The server had an error while processing your request. Sorry about that!", None),
        _ => ("The request failed (sandbox fault).", None),
    };
    error(status, message, code)
}

fn authed(ctx: &Ctx, req: &Req, handler: fn(&Ctx, &Req) -> Response<Body>) -> Response<Body> {
    // LM Studio needs no key; every other OpenAI-compatible service wants a Bearer token.
    if ctx.id.key_optional() || req.bearer().is_some() {
        handler(ctx, req)
    } else {
        error(
            StatusCode::UNAUTHORIZED,
            "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            Some("invalid_api_key"),
        )
    }
}

fn models(ctx: &Ctx, _req: &Req) -> Response<Body> {
    let body = json!({ "object": "list", "data": [
        { "id": ctx.model, "object": "model", "created": 1_700_000_000, "owned_by": "sandbox" }
    ] });
    wire::json(StatusCode::OK, &body)
}

/// The body as JSON with a non-empty `model`, or the 400 the service would give.
fn parse_body(req: &Req) -> Result<(Value, String), Box<Response<Body>>> {
    let body = req.json().map_err(|e| {
        Box::new(error(
            StatusCode::BAD_REQUEST,
            &format!("We could not parse the JSON body of your request. ({e})"),
            None,
        ))
    })?;
    let model = body.get("model").and_then(Value::as_str).filter(|m| !m.is_empty()).map(str::to_string);
    let model =
        model.ok_or_else(|| Box::new(error(StatusCode::BAD_REQUEST, "you must provide a model parameter", None)))?;
    Ok((body, model))
}

fn missing(param: &str) -> Response<Body> {
    let message = format!("Missing required parameter: '{param}'.");
    error_on(StatusCode::BAD_REQUEST, &message, Some(param), Some("missing_required_parameter"))
}

fn wants_stream(body: &Value) -> bool {
    body.get("stream").and_then(Value::as_bool).unwrap_or(false)
}

// ---- Chat Completions ------------------------------------------------------------------

/// (system prompt, last user message) of a `messages` array.
fn chat_prompt(messages: &[Value]) -> (String, String) {
    let role = |m: &Value| m.get("role").and_then(Value::as_str).unwrap_or("").to_string();
    let system = messages
        .iter()
        .filter(|m| matches!(role(m).as_str(), "system" | "developer"))
        .map(|m| wire::content_text(m.get("content")))
        .collect::<Vec<_>>()
        .join("\n");
    let user = messages
        .iter()
        .rev()
        .find(|m| role(m) == "user")
        .or(messages.last())
        .map(|m| wire::content_text(m.get("content")))
        .unwrap_or_default();
    (system, user)
}

struct ChatStream {
    id: String,
    created: u64,
    model: String,
}

impl ChatStream {
    fn chunk(&self, delta: Value, finish: Value) -> Bytes {
        wire::sse_data(&json!({
            "id": self.id, "object": "chat.completion.chunk", "created": self.created,
            "model": self.model, "system_fingerprint": null,
            "choices": [{ "index": 0, "delta": delta, "logprobs": null, "finish_reason": finish }],
        }))
    }
}

fn chat(ctx: &Ctx, req: &Req) -> Response<Body> {
    let (body, model) = match parse_body(req) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let Some(messages) = body.get("messages").and_then(Value::as_array) else {
        return missing("messages");
    };
    if messages.is_empty() {
        return error(StatusCode::BAD_REQUEST, "'messages' must contain at least one message.", None);
    }
    let (system, user) = chat_prompt(messages);
    let text = script::reply(&system, &user, &ctx.expert(&model));
    let (prompt_tokens, completion_tokens) = (wire::tokens(&system) + wire::tokens(&user), wire::tokens(&text));
    let usage = json!({
        "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    });
    let s = ChatStream { id: format!("chatcmpl-{}", ctx.tag()), created: wire::unix_now(), model };

    if !wants_stream(&body) {
        return wire::json(
            StatusCode::OK,
            &json!({
                "id": s.id, "object": "chat.completion", "created": s.created, "model": s.model,
                "system_fingerprint": null,
                "choices": [{ "index": 0, "message": { "role": "assistant", "content": text, "refusal": null },
                              "logprobs": null, "finish_reason": "stop" }],
                "usage": usage,
            }),
        );
    }
    let mut chunks = vec![s.chunk(json!({ "role": "assistant", "content": "" }), Value::Null)];
    chunks.extend(wire::word_chunks(&text, 3).iter().map(|piece| s.chunk(json!({ "content": piece }), Value::Null)));
    chunks.push(s.chunk(json!({}), json!("stop")));
    if body.pointer("/stream_options/include_usage").and_then(Value::as_bool) == Some(true) {
        chunks.push(wire::sse_data(&json!({
            "id": s.id, "object": "chat.completion.chunk", "created": s.created, "model": s.model,
            "choices": [], "usage": usage,
        })));
    }
    chunks.push(Bytes::from_static(b"data: [DONE]\n\n"));
    wire::sse(SSE, chunks)
}

// ---- Responses -------------------------------------------------------------------------

/// (instructions + system items, last user message) of a Responses request.
fn responses_prompt(body: &Value) -> (String, String) {
    let mut system = body.get("instructions").and_then(Value::as_str).unwrap_or("").to_string();
    let user = match body.get("input") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => {
            let role = |m: &Value| m.get("role").and_then(Value::as_str).unwrap_or("").to_string();
            for m in items.iter().filter(|m| matches!(role(m).as_str(), "system" | "developer")) {
                system.push('\n');
                system.push_str(&wire::content_text(m.get("content")));
            }
            items
                .iter()
                .rev()
                .find(|m| role(m) == "user")
                .or(items.last())
                .map(|m| wire::content_text(m.get("content")))
                .unwrap_or_default()
        }
        _ => String::new(),
    };
    (system, user)
}

struct ResponseParts {
    id: String,
    item_id: String,
    created: u64,
    model: String,
    instructions: Value,
}

impl ResponseParts {
    fn object(&self, status: &str, output: Value, usage: Value) -> Value {
        json!({
            "id": self.id, "object": "response", "created_at": self.created, "status": status,
            "error": null, "incomplete_details": null, "instructions": self.instructions,
            "max_output_tokens": null, "model": self.model, "output": output,
            "parallel_tool_calls": true, "previous_response_id": null,
            "reasoning": { "effort": null, "summary": null }, "store": false, "temperature": 1.0,
            "text": { "format": { "type": "text" } }, "tool_choice": "auto", "tools": [], "top_p": 1.0,
            "truncation": "disabled", "usage": usage, "metadata": {},
        })
    }

    fn message(&self, status: &str, text: Option<&str>) -> Value {
        let content = match text {
            Some(t) => json!([{ "type": "output_text", "text": t, "annotations": [], "logprobs": [] }]),
            None => json!([]),
        };
        json!({ "type": "message", "id": self.item_id, "status": status, "role": "assistant", "content": content })
    }

    /// `event: TYPE` + `data: {"type":TYPE,"sequence_number":n,...fields}`.
    fn event(&self, kind: &str, seq: u64, mut fields: Value) -> Bytes {
        if let Some(map) = fields.as_object_mut() {
            map.insert("type".into(), json!(kind));
            map.insert("sequence_number".into(), json!(seq));
        }
        wire::sse_event(kind, &fields)
    }

    /// The events before the first text delta.
    fn opening(&self) -> Vec<Bytes> {
        let pending = self.object("in_progress", json!([]), Value::Null);
        vec![
            self.event("response.created", 0, json!({ "response": pending })),
            self.event("response.in_progress", 1, json!({ "response": pending })),
            self.event(
                "response.output_item.added",
                2,
                json!({ "output_index": 0, "item": self.message("in_progress", None) }),
            ),
            self.event(
                "response.content_part.added",
                3,
                json!({
                    "item_id": self.item_id, "output_index": 0, "content_index": 0,
                    "part": { "type": "output_text", "text": "", "annotations": [] },
                }),
            ),
        ]
    }

    fn delta(&self, seq: u64, piece: &str) -> Bytes {
        self.event(
            "response.output_text.delta",
            seq,
            json!({
                "item_id": self.item_id, "output_index": 0, "content_index": 0, "delta": piece, "logprobs": [],
            }),
        )
    }
}

fn response_parts(ctx: &Ctx, body: &Value, model: String) -> ResponseParts {
    ResponseParts {
        id: format!("resp_{}", ctx.tag()),
        item_id: format!("msg_{}", ctx.tag()),
        created: wire::unix_now(),
        model,
        instructions: body.get("instructions").cloned().unwrap_or(Value::Null),
    }
}

fn responses(ctx: &Ctx, req: &Req) -> Response<Body> {
    let (body, model) = match parse_body(req) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    if body.get("input").is_none_or(Value::is_null) {
        return missing("input");
    }
    let (system, user) = responses_prompt(&body);
    let text = script::reply(&system, &user, &ctx.expert(&model));
    let (input_tokens, output_tokens) = (wire::tokens(&system) + wire::tokens(&user), wire::tokens(&text));
    let usage = json!({
        "input_tokens": input_tokens, "input_tokens_details": { "cached_tokens": 0 },
        "output_tokens": output_tokens, "output_tokens_details": { "reasoning_tokens": 0 },
        "total_tokens": input_tokens + output_tokens,
    });
    let p = response_parts(ctx, &body, model);
    let done = p.message("completed", Some(&text));
    let full = p.object("completed", json!([done]), usage);
    if !wants_stream(&body) {
        return wire::json(StatusCode::OK, &full);
    }

    let mut events = p.opening();
    let mut seq = events.len() as u64;
    let mut next = || {
        seq += 1;
        seq - 1
    };
    for piece in wire::word_chunks(&text, 3) {
        events.push(p.delta(next(), &piece));
    }
    let part = json!({ "type": "output_text", "text": text, "annotations": [] });
    events.push(p.event(
        "response.output_text.done",
        next(),
        json!({
            "item_id": p.item_id, "output_index": 0, "content_index": 0, "text": text, "logprobs": [],
        }),
    ));
    events.push(p.event(
        "response.content_part.done",
        next(),
        json!({
            "item_id": p.item_id, "output_index": 0, "content_index": 0, "part": part,
        }),
    ));
    events.push(p.event("response.output_item.done", next(), json!({ "output_index": 0, "item": done })));
    events.push(p.event("response.completed", next(), json!({ "response": full })));
    wire::sse(SSE, events)
}

/// The `drip` fault: a stream that starts like the real one and never finishes.
pub(crate) fn drip(ctx: &Ctx, req: &Req) -> Response<Body> {
    let body = req.json().unwrap_or(Value::Null);
    if !wants_stream(&body) {
        return wire::drip_plain("application/json");
    }
    let model = body.get("model").and_then(Value::as_str).unwrap_or(ctx.model).to_string();
    let body = if ctx.protocol == Protocol::OpenaiResponses {
        let p = response_parts(ctx, &body, model);
        let opening = p.opening();
        let first = opening.len() as u64;
        wire::endless(opening, move |n| p.delta(first + n, "."))
    } else {
        let s = ChatStream { id: format!("chatcmpl-{}", ctx.tag()), created: wire::unix_now(), model };
        let opening = vec![s.chunk(json!({ "role": "assistant", "content": "" }), Value::Null)];
        wire::endless(opening, move |_| s.chunk(json!({ "content": "." }), Value::Null))
    };
    wire::with_type(StatusCode::OK, SSE, body)
}
