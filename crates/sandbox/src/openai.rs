//! OpenAI Chat Completions (also spoken by Hyperbolic and LM Studio) and OpenAI Responses.

use super::catalog::{self, Kind, Model, Service, Think};
use super::script;
use super::wire::{self, Ctx, Fit, Req};
use axum::body::Body;
use bytes::Bytes;
use http::{Response, StatusCode};
use serde_json::{Value, json};
use singularis_engine::systems::Effort;
use singularis_engine::systems::Protocol;

const SSE: &str = "text/event-stream; charset=utf-8";

pub(crate) fn respond(ctx: &Ctx, req: &Req) -> Response<Body> {
    let mut r = match (req.method.as_str(), req.path.as_str(), ctx.protocol) {
        ("POST", "/v1/chat/completions", Protocol::OpenaiChat) => authed(ctx, req, chat),
        ("POST", "/v1/responses", Protocol::OpenaiResponses) => authed(ctx, req, responses),
        ("GET", "/v1/models", Protocol::OpenaiChat | Protocol::OpenaiResponses) => {
            authed(ctx, req, models)
        }
        _ => error(
            StatusCode::NOT_FOUND,
            &format!("Invalid URL ({})", req.describe()),
            None,
        ),
    };
    wire::set_header(&mut r, "x-request-id", &format!("req_{}", ctx.tag()));
    r
}

/// OpenAI's error JSON: `{"error":{"message","type","param","code"}}`.
pub(crate) fn error(status: StatusCode, message: &str, code: Option<&str>) -> Response<Body> {
    error_on(status, message, None, code)
}

fn error_on(
    status: StatusCode,
    message: &str,
    param: Option<&str>,
    code: Option<&str>,
) -> Response<Body> {
    let kind = match status.as_u16() {
        401 => "invalid_request_error",
        403 => "request_forbidden",
        429 => "requests",
        s if s >= 500 => "server_error",
        _ => "invalid_request_error",
    };
    let body =
        json!({ "error": { "message": message, "type": kind, "param": param, "code": code } });
    wire::json(status, &body)
}

/// The answer to an `error:CODE` fault, with the message the real service gives.
pub(crate) fn fault_error(status: StatusCode) -> Response<Body> {
    let (message, code) = match status.as_u16() {
        400 => ("Invalid request (sandbox fault).", None),
        401 => ("Incorrect API key provided.", Some("invalid_api_key")),
        403 => (
            "Country, region, or territory not supported.",
            Some("unsupported_country_region_territory"),
        ),
        404 => (
            "The model does not exist or you do not have access to it.",
            Some("model_not_found"),
        ),
        429 => (
            "Rate limit reached for requests. Please try again in 1s.",
            Some("rate_limit_exceeded"),
        ),
        503 => ("The server is overloaded or not ready yet.", None),
        s if s >= 500 => (
            "The server had an error while processing your request. Sorry about that!",
            None,
        ),
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
    let owner = match ctx.service {
        Service::LmStudio => "organization_owner",
        Service::Hyperbolic => "hyperbolic",
        _ => "openai",
    };
    let ids: Vec<&str> = match ctx.service {
        Service::LmStudio | Service::OpenAiCompatible => vec![ctx.model],
        s => catalog::listed(s).map(|m| m.id).collect(),
    };
    let data: Vec<Value> = ids
        .into_iter()
        .map(|id| json!({ "id": id, "object": "model", "created": 1_700_000_000, "owned_by": owner }))
        .collect();
    wire::json(StatusCode::OK, &json!({ "object": "list", "data": data }))
}

/// The model as the service knows it, or the service's answer for a model it does not serve
/// on this endpoint.
fn known_model(ctx: &Ctx, model: &str, endpoint: &str) -> Result<Model, Box<Response<Body>>> {
    let not_found = |message: String| {
        Box::new(error(
            StatusCode::NOT_FOUND,
            &message,
            Some("model_not_found"),
        ))
    };
    let Some(m) = catalog::find(ctx.service, model, ctx.model) else {
        return Err(not_found(format!(
            "The model `{model}` does not exist or you do not have access to it."
        )));
    };
    match m.kind {
        Kind::Text => Ok(m),
        Kind::ResponsesOnly if endpoint == "v1/responses" => Ok(m),
        Kind::ResponsesOnly => Err(Box::new(error(
            StatusCode::NOT_FOUND,
            "This model is only supported in v1/responses and not in v1/chat/completions.",
            None,
        ))),
        Kind::Retired => Err(not_found(format!(
            "The model `{model}` has been deprecated, learn more here: https://platform.openai.com/docs/deprecations"
        ))),
        Kind::NotChat | Kind::Tts | Kind::Live => Err(Box::new(error(
            StatusCode::NOT_FOUND,
            &format!("This is not a chat model and thus not supported in the {endpoint} endpoint."),
            None,
        ))),
    }
}

fn unsupported_parameter(param: &str) -> Box<Response<Body>> {
    let message = format!("Unsupported parameter: '{param}' is not supported with this model.");
    Box::new(error_on(
        StatusCode::BAD_REQUEST,
        &message,
        Some(param),
        Some("unsupported_parameter"),
    ))
}

/// The reasoning tokens the request will spend, or the 400 for an effort the model does
/// not take. `param` names the field as the request spelled it.
fn reasoning(
    model: &Model,
    effort: Option<&Value>,
    param: &str,
) -> Result<u64, Box<Response<Body>>> {
    let Think::Effort { default, allowed } = model.think else {
        return match effort {
            None | Some(Value::Null) => Ok(0),
            // Chat Completions does not know the argument for such a model at all.
            Some(_) if param == "reasoning_effort" => Err(Box::new(error(
                StatusCode::BAD_REQUEST,
                "Unrecognized request argument supplied: reasoning_effort",
                None,
            ))),
            Some(_) => Err(unsupported_parameter(param)),
        };
    };
    let effort = match effort {
        None | Some(Value::Null) => default,
        Some(v) => {
            let name = v.as_str().unwrap_or("");
            let supported: Vec<String> =
                allowed.iter().map(|e| format!("'{}'", e.name())).collect();
            match Effort::from_name(name).filter(|e| allowed.contains(e)) {
                Some(e) => e,
                None => {
                    let message = format!(
                        "Unsupported value: '{param}' does not support '{name}' with this model. Supported values are: {}.",
                        supported.join(", ")
                    );
                    return Err(Box::new(error_on(
                        StatusCode::BAD_REQUEST,
                        &message,
                        Some(param),
                        Some("unsupported_value"),
                    )));
                }
            }
        }
    };
    Ok(catalog::reasoning_tokens(effort))
}

/// Reasoning models take only the default temperature.
fn check_temperature(model: &Model, body: &Value) -> Result<(), Box<Response<Body>>> {
    let t = body.get("temperature").and_then(Value::as_f64);
    match (model.think, t) {
        (Think::Effort { .. }, Some(t)) if t != 1.0 => {
            let message = format!(
                "Unsupported value: 'temperature' does not support {t} with this model. Only the default (1) value is supported."
            );
            Err(Box::new(error_on(
                StatusCode::BAD_REQUEST,
                &message,
                Some("temperature"),
                Some("unsupported_value"),
            )))
        }
        _ => Ok(()),
    }
}

/// The output cap of a Chat request, as each service reads it: OpenAI takes
/// `max_completion_tokens` (and refuses `max_tokens` on reasoning models); Hyperbolic and
/// LM Studio document `max_tokens` only and ignore the other name.
fn chat_cap(ctx: &Ctx, model: &Model, body: &Value) -> Result<Option<u64>, Box<Response<Body>>> {
    let field = |k: &str| body.get(k).filter(|v| !v.is_null());
    let (mct, mt) = (field("max_completion_tokens"), field("max_tokens"));
    for (name, v) in [("max_completion_tokens", mct), ("max_tokens", mt)] {
        if let Some(v) = v
            && v.as_u64().is_none_or(|n| n == 0)
        {
            let message = format!(
                "Invalid '{name}': integer below minimum value. Expected a value >= 1, but got {v} instead."
            );
            return Err(Box::new(error_on(
                StatusCode::BAD_REQUEST,
                &message,
                Some(name),
                Some("integer_below_min_value"),
            )));
        }
    }
    match ctx.service {
        Service::OpenAi => {
            if mt.is_some() && matches!(model.think, Think::Effort { .. }) {
                let message = "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.";
                return Err(Box::new(error_on(
                    StatusCode::BAD_REQUEST,
                    message,
                    Some("max_tokens"),
                    Some("unsupported_parameter"),
                )));
            }
            Ok(mct.or(mt).and_then(Value::as_u64))
        }
        _ => Ok(mt.and_then(Value::as_u64)),
    }
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
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty())
        .map(str::to_string);
    let model = model.ok_or_else(|| {
        Box::new(error(
            StatusCode::BAD_REQUEST,
            "you must provide a model parameter",
            None,
        ))
    })?;
    Ok((body, model))
}

fn missing(param: &str) -> Response<Body> {
    let message = format!("Missing required parameter: '{param}'.");
    error_on(
        StatusCode::BAD_REQUEST,
        &message,
        Some(param),
        Some("missing_required_parameter"),
    )
}

fn wants_stream(body: &Value) -> bool {
    body.get("stream").and_then(Value::as_bool).unwrap_or(false)
}

// ---- Chat Completions ------------------------------------------------------------------

/// (system prompt, last user message) of a `messages` array.
fn chat_prompt(messages: &[Value]) -> (String, String) {
    let role = |m: &Value| {
        m.get("role")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
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
        return error(
            StatusCode::BAD_REQUEST,
            "'messages' must contain at least one message.",
            None,
        );
    }
    let info = match known_model(ctx, &model, "v1/chat/completions") {
        Ok(m) => m,
        Err(r) => return *r,
    };
    let checked = chat_cap(ctx, &info, &body)
        .and_then(|cap| {
            Ok((
                cap,
                reasoning(&info, body.get("reasoning_effort"), "reasoning_effort")?,
            ))
        })
        .and_then(|x| check_temperature(&info, &body).map(|()| x));
    let (cap, thinking) = match checked {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let (system, user) = chat_prompt(messages);
    let fit = ctx.fit(
        cap,
        thinking,
        &script::reply(&system, &user, &ctx.expert(&model)),
    );
    let text = fit.text.clone();
    let prompt_tokens = wire::tokens(&system) + wire::tokens(&user);
    let usage = chat_usage(ctx, prompt_tokens, &fit);
    let finish = if fit.cut { "length" } else { "stop" };
    let s = ChatStream {
        id: format!("chatcmpl-{}", ctx.tag()),
        created: wire::unix_now(),
        model,
    };

    if !wants_stream(&body) {
        return wire::json(
            StatusCode::OK,
            &json!({
                "id": s.id, "object": "chat.completion", "created": s.created, "model": s.model,
                "system_fingerprint": null,
                "choices": [{ "index": 0, "message": { "role": "assistant", "content": text, "refusal": null, "annotations": [] },
                              "logprobs": null, "finish_reason": finish }],
                "usage": usage,
            }),
        );
    }
    let mut chunks = vec![s.chunk(json!({ "role": "assistant", "content": "" }), Value::Null)];
    chunks.extend(
        wire::word_chunks(&text, 3)
            .iter()
            .map(|piece| s.chunk(json!({ "content": piece }), Value::Null)),
    );
    chunks.push(s.chunk(json!({}), json!(finish)));
    if body
        .pointer("/stream_options/include_usage")
        .and_then(Value::as_bool)
        == Some(true)
    {
        chunks.push(wire::sse_data(&json!({
            "id": s.id, "object": "chat.completion.chunk", "created": s.created, "model": s.model,
            "choices": [], "usage": usage,
        })));
    }
    chunks.push(Bytes::from_static(b"data: [DONE]\n\n"));
    wire::sse(SSE, chunks)
}

/// Chat `usage`, billed to the meter as sent.
fn chat_usage(ctx: &Ctx, prompt_tokens: u64, fit: &Fit) -> Value {
    ctx.meter.spend(prompt_tokens, fit.output(), fit.thinking);
    json!({
        "prompt_tokens": prompt_tokens, "completion_tokens": fit.output(),
        "total_tokens": prompt_tokens + fit.output(),
        // As the SDK's `PromptTokensDetails` (openai-python src/openai/types/completion_usage.py).
        "prompt_tokens_details": { "cached_tokens": 0, "cache_write_tokens": 0, "audio_tokens": 0 },
        "completion_tokens_details": {
            "reasoning_tokens": fit.thinking, "audio_tokens": 0,
            "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0,
        },
    })
}

// ---- Responses -------------------------------------------------------------------------

/// (instructions + system items, last user message) of a Responses request.
fn responses_prompt(body: &Value) -> (String, String) {
    let mut system = body
        .get("instructions")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let user = match body.get("input") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => {
            let role = |m: &Value| {
                m.get("role")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string()
            };
            for m in items
                .iter()
                .filter(|m| matches!(role(m).as_str(), "system" | "developer"))
            {
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
    reasoning_id: String,
    created: u64,
    model: String,
    instructions: Value,
    /// `reasoning` and `max_output_tokens` echoed as the request set them.
    reasoning: Value,
    max_output_tokens: Value,
    /// Where the message sits in `output`: after the reasoning item, when there is one.
    msg_index: u64,
}

impl ResponseParts {
    fn object(&self, status: &str, output: Value, usage: Value) -> Value {
        let incomplete = if status == "incomplete" {
            json!({ "reason": "max_output_tokens" })
        } else {
            Value::Null
        };
        json!({
            "id": self.id, "object": "response", "created_at": self.created, "status": status,
            "error": null, "incomplete_details": incomplete, "instructions": self.instructions,
            "max_output_tokens": self.max_output_tokens, "model": self.model, "output": output,
            "parallel_tool_calls": true, "previous_response_id": null,
            "reasoning": self.reasoning, "store": false, "temperature": 1.0,
            "text": { "format": { "type": "text" } }, "tool_choice": "auto", "tools": [], "top_p": 1.0,
            "truncation": "disabled", "usage": usage, "metadata": {},
        })
    }

    fn reasoning_item(&self) -> Value {
        json!({ "type": "reasoning", "id": self.reasoning_id, "summary": [] })
    }

    fn message(&self, status: &str, text: Option<&str>) -> Value {
        let content = match text {
            Some(t) => {
                json!([{ "type": "output_text", "text": t, "annotations": [], "logprobs": [] }])
            }
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

    /// The events before the first text delta (the reasoning item first, when there is one).
    fn opening(&self, with_message: bool) -> Vec<Bytes> {
        let pending = self.object("in_progress", json!([]), Value::Null);
        let mut out = vec![
            self.event("response.created", 0, json!({ "response": pending })),
            self.event("response.in_progress", 1, json!({ "response": pending })),
        ];
        if self.msg_index > 0 {
            let item = self.reasoning_item();
            out.push(self.event(
                "response.output_item.added",
                2,
                json!({ "output_index": 0, "item": item }),
            ));
            out.push(self.event(
                "response.output_item.done",
                3,
                json!({ "output_index": 0, "item": item }),
            ));
        }
        if with_message {
            let seq = out.len() as u64;
            out.push(self.event(
                "response.output_item.added",
                seq,
                json!({ "output_index": self.msg_index, "item": self.message("in_progress", None) }),
            ));
            out.push(self.event(
                "response.content_part.added",
                seq + 1,
                json!({
                    "item_id": self.item_id, "output_index": self.msg_index, "content_index": 0,
                    "part": { "type": "output_text", "text": "", "annotations": [] },
                }),
            ));
        }
        out
    }

    fn delta(&self, seq: u64, piece: &str) -> Bytes {
        self.event(
            "response.output_text.delta",
            seq,
            json!({
                "item_id": self.item_id, "output_index": self.msg_index, "content_index": 0, "delta": piece, "logprobs": [],
            }),
        )
    }
}

fn response_parts(ctx: &Ctx, body: &Value, model: String, reasoned: bool) -> ResponseParts {
    let effort = body
        .pointer("/reasoning/effort")
        .cloned()
        .unwrap_or(Value::Null);
    ResponseParts {
        id: format!("resp_{}", ctx.tag()),
        item_id: format!("msg_{}", ctx.tag()),
        reasoning_id: format!("rs_{}", ctx.tag()),
        created: wire::unix_now(),
        model,
        instructions: body.get("instructions").cloned().unwrap_or(Value::Null),
        reasoning: json!({ "effort": effort, "summary": null }),
        max_output_tokens: body
            .get("max_output_tokens")
            .cloned()
            .unwrap_or(Value::Null),
        msg_index: u64::from(reasoned),
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
    let info = match known_model(ctx, &model, "v1/responses") {
        Ok(m) => m,
        Err(r) => return *r,
    };
    let cap = match body.get("max_output_tokens").filter(|v| !v.is_null()) {
        None => None,
        Some(v) => match v
            .as_u64()
            .filter(|n| *n >= catalog::RESPONSES_MIN_OUTPUT_TOKENS)
        {
            Some(n) => Some(n),
            None => {
                let message = format!(
                    "Invalid 'max_output_tokens': integer below minimum value. Expected a value >= {}, but got {v} instead.",
                    catalog::RESPONSES_MIN_OUTPUT_TOKENS
                );
                return error_on(
                    StatusCode::BAD_REQUEST,
                    &message,
                    Some("max_output_tokens"),
                    Some("integer_below_min_value"),
                );
            }
        },
    };
    let thinking = match reasoning(&info, body.pointer("/reasoning/effort"), "reasoning.effort")
        .and_then(|t| check_temperature(&info, &body).map(|()| t))
    {
        Ok(t) => t,
        Err(r) => return *r,
    };
    let (system, user) = responses_prompt(&body);
    let fit = ctx.fit(
        cap,
        thinking,
        &script::reply(&system, &user, &ctx.expert(&model)),
    );
    let input_tokens = wire::tokens(&system) + wire::tokens(&user);
    ctx.meter.spend(input_tokens, fit.output(), fit.thinking);
    // `cache_write_tokens` is required in the SDK's `InputTokensDetails`
    // (openai-python src/openai/types/responses/response_usage.py).
    let usage = json!({
        "input_tokens": input_tokens,
        "input_tokens_details": { "cached_tokens": 0, "cache_write_tokens": 0 },
        "output_tokens": fit.output(), "output_tokens_details": { "reasoning_tokens": fit.thinking },
        "total_tokens": input_tokens + fit.output(),
    });
    let reasoned = matches!(info.think, Think::Effort { .. });
    let p = response_parts(ctx, &body, model, reasoned);
    let text = fit.text.as_str();
    let (status, item_status) = if fit.cut {
        ("incomplete", "incomplete")
    } else {
        ("completed", "completed")
    };
    let has_message = !text.is_empty();
    let mut output = Vec::new();
    if reasoned {
        output.push(p.reasoning_item());
    }
    let done = p.message(item_status, Some(text));
    if has_message {
        output.push(done.clone());
    }
    let full = p.object(status, json!(output), usage);
    if !wants_stream(&body) {
        return wire::json(StatusCode::OK, &full);
    }

    let mut events = p.opening(has_message);
    let mut seq = events.len() as u64;
    let mut next = || {
        seq += 1;
        seq - 1
    };
    if has_message {
        for piece in wire::word_chunks(text, 3) {
            events.push(p.delta(next(), &piece));
        }
        let part = json!({ "type": "output_text", "text": text, "annotations": [] });
        let at = p.msg_index;
        events.push(p.event(
            "response.output_text.done",
            next(),
            json!({ "item_id": p.item_id, "output_index": at, "content_index": 0, "text": text, "logprobs": [] }),
        ));
        events.push(p.event(
            "response.content_part.done",
            next(),
            json!({ "item_id": p.item_id, "output_index": at, "content_index": 0, "part": part }),
        ));
        events.push(p.event(
            "response.output_item.done",
            next(),
            json!({ "output_index": at, "item": done }),
        ));
    }
    let last = if fit.cut {
        "response.incomplete"
    } else {
        "response.completed"
    };
    events.push(p.event(last, next(), json!({ "response": full })));
    wire::sse(SSE, events)
}

/// The `drip` fault: a stream that starts like the real one and never finishes.
pub(crate) fn drip(ctx: &Ctx, req: &Req) -> Response<Body> {
    let body = req.json().unwrap_or(Value::Null);
    if !wants_stream(&body) {
        return wire::drip_plain("application/json");
    }
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or(ctx.model)
        .to_string();
    let body = if ctx.protocol == Protocol::OpenaiResponses {
        let p = response_parts(ctx, &body, model, false);
        let opening = p.opening(true);
        let first = opening.len() as u64;
        wire::endless(opening, move |n| p.delta(first + n, "."))
    } else {
        let s = ChatStream {
            id: format!("chatcmpl-{}", ctx.tag()),
            created: wire::unix_now(),
            model,
        };
        let opening = vec![s.chunk(json!({ "role": "assistant", "content": "" }), Value::Null)];
        wire::endless(opening, move |_| {
            s.chunk(json!({ "content": "." }), Value::Null)
        })
    };
    wire::with_type(StatusCode::OK, SSE, body)
}
