//! Anthropic Messages (`POST /v1/messages`).

use super::catalog::{self, Kind};
use super::script;
use super::wire::{self, Ctx, Req};
use axum::body::Body;
use bytes::Bytes;
use http::{Response, StatusCode};
use serde_json::{Value, json};

const SSE: &str = "text/event-stream; charset=utf-8";

pub(crate) fn respond(ctx: &Ctx, req: &Req) -> Response<Body> {
    let mut r = match (req.method.as_str(), req.path.as_str()) {
        ("POST", "/v1/messages") => messages(ctx, req),
        _ => error(
            ctx,
            StatusCode::NOT_FOUND,
            &format!("Not found: {}", req.describe()),
        ),
    };
    wire::set_header(&mut r, "request-id", &request_id(ctx));
    r
}

fn request_id(ctx: &Ctx) -> String {
    format!("req_{}", ctx.tag())
}

/// Anthropic's error JSON: `{"type":"error","error":{"type","message"},"request_id"}`,
/// with the id in the `request-id` header too.
pub(crate) fn error(ctx: &Ctx, status: StatusCode, message: &str) -> Response<Body> {
    let kind = match status.as_u16() {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        504 => "timeout_error",
        s if s >= 500 => "api_error",
        _ => "invalid_request_error",
    };
    let id = request_id(ctx);
    let mut r = wire::json(
        status,
        &json!({ "type": "error", "error": { "type": kind, "message": message }, "request_id": id }),
    );
    wire::set_header(&mut r, "request-id", &id);
    r
}

/// The answer to an `error:CODE` fault, with the message the real service gives.
pub(crate) fn fault_error(ctx: &Ctx, status: StatusCode) -> Response<Body> {
    let message = match status.as_u16() {
        401 => "invalid x-api-key",
        403 => "Your API key does not have permission to use the specified resource.",
        404 => "The requested resource could not be found.",
        429 => "Number of requests has exceeded your rate limit. Please try again later.",
        503 | 529 => "Overloaded",
        s if s >= 500 => "Internal server error",
        _ => "Invalid request (sandbox fault).",
    };
    error(ctx, status, message)
}

/// (system prompt, last user message). `system` is a string or an array of text blocks.
fn prompt(body: &Value, messages: &[Value]) -> (String, String) {
    let system = wire::content_text(body.get("system"));
    let user = messages
        .iter()
        .rev()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        .or(messages.last())
        .map(|m| wire::content_text(m.get("content")))
        .unwrap_or_default();
    (system, user)
}

fn messages(ctx: &Ctx, req: &Req) -> Response<Body> {
    // The official SDKs send either header.
    if req.header("x-api-key").is_none() && req.bearer().is_none() {
        return error(
            ctx,
            StatusCode::UNAUTHORIZED,
            "x-api-key header is required",
        );
    }
    if req.header("anthropic-version").is_none() {
        return error(
            ctx,
            StatusCode::BAD_REQUEST,
            "anthropic-version: header is required",
        );
    }
    let body = match req.json() {
        Ok(b) => b,
        Err(e) => {
            return error(
                ctx,
                StatusCode::BAD_REQUEST,
                &format!("The request body is not valid JSON: {e}"),
            );
        }
    };
    let Some(model) = body
        .get("model")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty())
    else {
        return error(ctx, StatusCode::BAD_REQUEST, "model: Field required");
    };
    let Some(cap) = body.get("max_tokens").and_then(Value::as_u64) else {
        return error(ctx, StatusCode::BAD_REQUEST, "max_tokens: Field required");
    };
    if cap == 0 {
        return error(
            ctx,
            StatusCode::BAD_REQUEST,
            "max_tokens: Input should be greater than or equal to 1",
        );
    }
    let Some(messages) = body.get("messages").and_then(Value::as_array) else {
        return error(ctx, StatusCode::BAD_REQUEST, "messages: Field required");
    };
    // Unknown and retired models alike: the service names the model it could not find.
    if catalog::find(ctx.service, model, ctx.model).is_none_or(|m| m.kind != Kind::Text) {
        return error(ctx, StatusCode::NOT_FOUND, &format!("model: {model}"));
    }
    let (system, user) = prompt(&body, messages);
    let fit = ctx.fit(
        Some(cap),
        0,
        &script::reply(&system, &user, &ctx.expert(model)),
    );
    let text = fit.text.clone();
    let (input_tokens, output_tokens) = (wire::tokens(&system) + wire::tokens(&user), fit.output());
    ctx.meter.spend(input_tokens, output_tokens, 0);
    let stop_reason = if fit.cut { "max_tokens" } else { "end_turn" };
    let m = Msg {
        id: format!("msg_{}", ctx.tag()),
        model: model.to_string(),
        input_tokens,
    };

    if !body.get("stream").and_then(Value::as_bool).unwrap_or(false) {
        return wire::json(
            StatusCode::OK,
            &json!({
                "id": m.id, "type": "message", "role": "assistant", "model": m.model,
                "content": [{ "type": "text", "text": text }],
                "stop_reason": stop_reason, "stop_sequence": null,
                "usage": {
                    "input_tokens": input_tokens, "output_tokens": output_tokens,
                    "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
                },
            }),
        );
    }
    let mut events = m.opening();
    events.extend(
        wire::word_chunks(&text, 3)
            .iter()
            .map(|piece| m.delta(piece)),
    );
    events.push(wire::sse_event(
        "content_block_stop",
        &json!({ "type": "content_block_stop", "index": 0 }),
    ));
    events.push(wire::sse_event(
        "message_delta",
        &json!({
            "type": "message_delta",
            "delta": { "stop_reason": stop_reason, "stop_sequence": null },
            "usage": { "output_tokens": output_tokens },
        }),
    ));
    events.push(wire::sse_event(
        "message_stop",
        &json!({ "type": "message_stop" }),
    ));
    wire::sse(SSE, events)
}

struct Msg {
    id: String,
    model: String,
    input_tokens: u64,
}

impl Msg {
    /// message_start, content_block_start and a ping: everything before the first delta.
    fn opening(&self) -> Vec<Bytes> {
        vec![
            wire::sse_event(
                "message_start",
                &json!({ "type": "message_start", "message": {
                "id": self.id, "type": "message", "role": "assistant", "model": self.model, "content": [],
                "stop_reason": null, "stop_sequence": null,
                "usage": {
                    "input_tokens": self.input_tokens, "output_tokens": 1,
                    "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
                },
            } }),
            ),
            wire::sse_event(
                "content_block_start",
                &json!({
                    "type": "content_block_start", "index": 0, "content_block": { "type": "text", "text": "" },
                }),
            ),
            wire::sse_event("ping", &json!({ "type": "ping" })),
        ]
    }

    fn delta(&self, piece: &str) -> Bytes {
        wire::sse_event(
            "content_block_delta",
            &json!({
                "type": "content_block_delta", "index": 0, "delta": { "type": "text_delta", "text": piece },
            }),
        )
    }
}

/// The `drip` fault: a stream that starts like the real one and never finishes.
pub(crate) fn drip(ctx: &Ctx, req: &Req) -> Response<Body> {
    let body = req.json().unwrap_or(Value::Null);
    if !body.get("stream").and_then(Value::as_bool).unwrap_or(false) {
        return wire::drip_plain("application/json");
    }
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or(ctx.model)
        .to_string();
    let m = Msg {
        id: format!("msg_{}", ctx.tag()),
        model,
        input_tokens: 1,
    };
    let opening = m.opening();
    let mut r = wire::with_type(
        StatusCode::OK,
        SSE,
        wire::endless(opening, move |_| m.delta(".")),
    );
    wire::set_header(&mut r, "request-id", &request_id(ctx));
    r
}
