//! OpenAI Chat Completions (also Hyperbolic and LM Studio) and OpenAI Responses.

use super::RequestCtx;
use super::sse;
use super::wire::{self, endpoint, str_at};
use super::{ClientError, Prompt, Usage};
use serde_json::{Value, json};

fn authed(ctx: &RequestCtx, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    match &ctx.key {
        Some(k) => req.header(http::header::AUTHORIZATION, k.header("Bearer ")),
        None => req,
    }
}

/// The Chat Completions request: the cap under the name the service documents, and the
/// reasoning effort when one is set.
pub fn chat_body(ctx: &RequestCtx, prompt: &Prompt, stream: bool) -> Value {
    let mut messages = Vec::new();
    if !prompt.system.is_empty() {
        messages.push(json!({"role": "system", "content": prompt.system}));
    }
    messages.push(json!({"role": "user", "content": prompt.user}));
    let p = &ctx.params;
    let mut body = json!({ "model": ctx.model, "messages": messages });
    body[p.token_field.name()] = json!(p.max_output_tokens);
    if let Some(effort) = p.reasoning_effort {
        body["reasoning_effort"] = json!(effort.name());
    }
    if stream {
        body["stream"] = json!(true);
        // The last chunk then carries the usage.
        body["stream_options"] = json!({"include_usage": true});
    }
    body
}

/// What a finished choice means: `length` is the cap, `content_filter` a refusal.
fn finish(ctx: &RequestCtx, reason: Option<&str>) -> Result<(), ClientError> {
    match reason {
        Some("length") => Err(ClientError::truncated(
            "finish_reason length",
            ctx.params.max_output_tokens,
        )),
        Some("content_filter") => Err(ClientError::Protocol(
            "the answer was withheld by the content filter".into(),
        )),
        _ => Ok(()),
    }
}

/// `POST {base}/chat/completions`; with `stream`, SSE `data:` chunks until `data: [DONE]`.
pub async fn chat(ctx: &RequestCtx, prompt: &Prompt, stream: bool) -> Result<String, ClientError> {
    let req = ctx
        .client
        .post(endpoint(&ctx.base, "chat/completions"))
        .json(&chat_body(ctx, prompt, stream));
    let resp = wire::send_stream(ctx, authed(ctx, req), stream).await?;
    if !stream {
        let v = wire::read_json(resp).await?;
        if let Some(u) = v.get("usage").and_then(Usage::from_openai_chat) {
            ctx.usage.add(u);
        }
        // A truncated answer keeps the text that came.
        finish(ctx, str_at(&v, "/choices/0/finish_reason")).map_err(|e| {
            e.with_partial(str_at(&v, "/choices/0/message/content").unwrap_or_default())
        })?;
        if let Some(refusal) = str_at(&v, "/choices/0/message/refusal") {
            return Err(ClientError::Protocol(format!(
                "the model refused: {}",
                wire::shorten(refusal, 120)
            )));
        }
        return str_at(&v, "/choices/0/message/content")
            .map(str::to_string)
            .ok_or_else(|| {
                ClientError::Protocol("chat completion without choices[0].message.content".into())
            });
    }
    wire::expect_content_type(&resp, "text/event-stream")?;
    let mut text = String::new();
    let mut finish_reason = None;
    let mut usage = None;
    let read = sse::read_json_events(resp.bytes_stream(), &ctx.stop, ctx.stream_limits(), |ev| {
        let v = match ev {
            sse::JsonEvent::Done => return Ok(sse::Step::End),
            sse::JsonEvent::Json(v) => v,
        };
        if let Some(err) = str_at(&v, "/error/message") {
            return Err(ClientError::Protocol(format!(
                "stream error: {}",
                wire::shorten(err, 120)
            )));
        }
        if let Some(u) = v.get("usage").and_then(Usage::from_openai_chat) {
            usage = Some(u);
        }
        if let Some(r) = str_at(&v, "/choices/0/finish_reason") {
            finish_reason = Some(r.to_string());
        }
        match str_at(&v, "/choices/0/delta/content").filter(|d| !d.is_empty()) {
            Some(delta) => {
                text.push_str(delta);
                Ok(sse::Step::Content)
            }
            None => Ok(sse::Step::Go),
        }
    })
    .await;
    if let Some(u) = usage {
        ctx.usage.add(u);
    }
    let ended = read.map_err(|e| e.with_partial(&text))?;
    // Whole once a choice has finished or `[DONE]` came, as the SDK reads it (the usage
    // chunk, when asked for, comes between the two); neither is a stream cut short.
    if finish_reason.is_none() && ended != sse::Ended::Terminator {
        return Err(ClientError::Protocol(format!(
            "stream ended before a finish_reason or [DONE]{}",
            ended.cut_note()
        )));
    }
    finish(ctx, finish_reason.as_deref()).map_err(|e| e.with_partial(&text))?;
    Ok(text)
}

/// The Responses request: `max_output_tokens` and `reasoning.effort`.
pub fn responses_body(ctx: &RequestCtx, prompt: &Prompt, stream: bool) -> Value {
    let p = &ctx.params;
    let mut body = json!({
        "model": ctx.model,
        "input": [{"role": "user", "content": prompt.user}],
        "max_output_tokens": p.max_output_tokens,
    });
    if !prompt.system.is_empty() {
        body["instructions"] = json!(prompt.system);
    }
    if let Some(effort) = p.reasoning_effort {
        body["reasoning"] = json!({"effort": effort.name()});
    }
    if stream {
        body["stream"] = json!(true);
    }
    body
}

/// A final Response object: its text, or why there is none.
fn response_outcome(ctx: &RequestCtx, v: &Value) -> Result<String, ClientError> {
    if let Some(u) = v.get("usage").and_then(Usage::from_openai_responses) {
        ctx.usage.add(u);
    }
    match str_at(v, "/status").unwrap_or("completed") {
        "incomplete" => {
            let reason = str_at(v, "/incomplete_details/reason").unwrap_or("unknown");
            if reason == "max_output_tokens" {
                // The text that came before the cap, if any: still an answer.
                Err(ClientError::truncated(
                    "incomplete: max_output_tokens",
                    ctx.params.max_output_tokens,
                )
                .with_partial(&output_text(v).unwrap_or_default()))
            } else {
                Err(ClientError::Protocol(format!(
                    "response incomplete: {}",
                    wire::shorten(reason, 60)
                )))
            }
        }
        "failed" => {
            let msg = str_at(v, "/error/message").unwrap_or("failed");
            Err(ClientError::Protocol(format!(
                "response failed: {}",
                wire::shorten(msg, 120)
            )))
        }
        _ => output_text(v)
            .ok_or_else(|| ClientError::Protocol("response without output_text".into())),
    }
}

/// `POST {base}/responses`; with `stream`, typed SSE events ending with `response.completed`
/// (or `response.incomplete` / `response.failed`).
pub async fn responses(
    ctx: &RequestCtx,
    prompt: &Prompt,
    stream: bool,
) -> Result<String, ClientError> {
    let req = ctx
        .client
        .post(endpoint(&ctx.base, "responses"))
        .json(&responses_body(ctx, prompt, stream));
    let resp = wire::send_stream(ctx, authed(ctx, req), stream).await?;
    if !stream {
        let v = wire::read_json(resp).await?;
        return response_outcome(ctx, &v);
    }
    wire::expect_content_type(&resp, "text/event-stream")?;
    let mut text = String::new();
    let mut last = None;
    let ended = sse::read_json_events(resp.bytes_stream(), &ctx.stop, ctx.stream_limits(), |ev| {
        let sse::JsonEvent::Json(v) = ev else {
            return Ok(sse::Step::End);
        };
        match str_at(&v, "/type").unwrap_or_default() {
            "response.output_text.delta" => {
                text.push_str(str_at(&v, "/delta").unwrap_or_default());
                return Ok(sse::Step::Content);
            }
            "response.completed" | "response.incomplete" | "response.failed" => {
                last = v.get("response").cloned();
                return Ok(sse::Step::End);
            }
            "error" => {
                let msg = str_at(&v, "/message").unwrap_or("failed");
                return Err(ClientError::Protocol(format!(
                    "response failed: {}",
                    wire::shorten(msg, 120)
                )));
            }
            _ => {}
        }
        Ok(sse::Step::Go)
    })
    .await
    .map_err(|e| e.with_partial(&text))?;
    // The final object is authoritative; the deltas are what we show while streaming.
    match last {
        Some(v) => response_outcome(ctx, &v).or_else(|e| match e {
            ClientError::Protocol(_)
                if !text.is_empty() && str_at(&v, "/status") == Some("completed") =>
            {
                Ok(text)
            }
            // The final object may carry no output; the deltas said what came.
            ClientError::Truncated { reason, partial } if partial.is_empty() => {
                Err(ClientError::Truncated {
                    reason,
                    partial: text.clone(),
                })
            }
            e => Err(e),
        }),
        // The SDK's final response needs this event too.
        None => Err(ClientError::Protocol(format!(
            "stream ended without response.completed{}",
            ended.cut_note()
        ))),
    }
}

/// The concatenated `output_text` parts of a Response object.
fn output_text(v: &Value) -> Option<String> {
    let items = v.get("output")?.as_array()?;
    let text: String = items
        .iter()
        .filter(|i| str_at(i, "/type") == Some("message"))
        .filter_map(|i| i.get("content")?.as_array())
        .flatten()
        .filter(|c| str_at(c, "/type") == Some("output_text"))
        .filter_map(|c| str_at(c, "/text"))
        .collect();
    (!text.is_empty()).then_some(text)
}
