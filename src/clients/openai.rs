//! OpenAI Chat Completions (also Hyperbolic and LM Studio) and OpenAI Responses.

use super::wire::{self, endpoint, str_at};
use super::sse;
use super::{ClientError, Prompt};
use crate::lifecycle::RequestCtx;
use serde_json::json;

fn authed(ctx: &RequestCtx, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    match &ctx.key {
        Some(k) => req.header(http::header::AUTHORIZATION, k.header("Bearer ")),
        None => req,
    }
}

/// `POST {base}/chat/completions`; with `stream`, SSE `data:` chunks until `data: [DONE]`.
pub async fn chat(ctx: &RequestCtx, prompt: &Prompt, stream: bool) -> Result<String, ClientError> {
    let mut messages = Vec::new();
    if !prompt.system.is_empty() {
        messages.push(json!({"role": "system", "content": prompt.system}));
    }
    messages.push(json!({"role": "user", "content": prompt.user}));
    let mut body = json!({
        "model": ctx.model,
        "messages": messages,
        "max_completion_tokens": prompt.max_tokens,
    });
    if stream {
        body["stream"] = json!(true);
    }
    let req = ctx.client.post(endpoint(&ctx.base, "chat/completions")).json(&body);
    let resp = wire::send(ctx, authed(ctx, req)).await?;
    if !stream {
        let v = wire::read_json(resp).await?;
        return str_at(&v, "/choices/0/message/content")
            .map(str::to_string)
            .ok_or_else(|| ClientError::Protocol("chat completion without choices[0].message.content".into()));
    }
    wire::expect_content_type(&resp, "text/event-stream")?;
    let mut text = String::new();
    let mut done = false;
    sse::read_events(resp.bytes_stream(), &ctx.stop, |ev| {
        if ev.data == "[DONE]" {
            done = true;
            return Ok(false);
        }
        let v: serde_json::Value = serde_json::from_str(&ev.data)
            .map_err(|e| ClientError::Protocol(format!("invalid chunk JSON: {e}")))?;
        if let Some(err) = str_at(&v, "/error/message") {
            return Err(ClientError::Protocol(format!("stream error: {}", wire::shorten(err, 120))));
        }
        if let Some(delta) = str_at(&v, "/choices/0/delta/content") {
            text.push_str(delta);
        }
        Ok(true)
    })
    .await?;
    if !done {
        return Err(ClientError::Protocol("stream ended without [DONE]".into()));
    }
    Ok(text)
}

/// `POST {base}/responses`; with `stream`, typed SSE events ending with `response.completed`.
pub async fn responses(ctx: &RequestCtx, prompt: &Prompt, stream: bool) -> Result<String, ClientError> {
    let mut body = json!({
        "model": ctx.model,
        "input": [{"role": "user", "content": prompt.user}],
        "max_output_tokens": prompt.max_tokens,
    });
    if !prompt.system.is_empty() {
        body["instructions"] = json!(prompt.system);
    }
    if stream {
        body["stream"] = json!(true);
    }
    let req = ctx.client.post(endpoint(&ctx.base, "responses")).json(&body);
    let resp = wire::send(ctx, authed(ctx, req)).await?;
    if !stream {
        let v = wire::read_json(resp).await?;
        return output_text(&v).ok_or_else(|| ClientError::Protocol("response without output_text".into()));
    }
    wire::expect_content_type(&resp, "text/event-stream")?;
    let mut text = String::new();
    let mut completed = None;
    sse::read_events(resp.bytes_stream(), &ctx.stop, |ev| {
        let v: serde_json::Value = serde_json::from_str(&ev.data)
            .map_err(|e| ClientError::Protocol(format!("invalid event JSON: {e}")))?;
        match str_at(&v, "/type").unwrap_or_default() {
            "response.output_text.delta" => text.push_str(str_at(&v, "/delta").unwrap_or_default()),
            "response.completed" => {
                completed = v.get("response").and_then(output_text);
                return Ok(false);
            }
            "response.failed" | "error" => {
                let msg = str_at(&v, "/response/error/message").or_else(|| str_at(&v, "/message")).unwrap_or("failed");
                return Err(ClientError::Protocol(format!("response failed: {}", wire::shorten(msg, 120))));
            }
            _ => {}
        }
        Ok(true)
    })
    .await?;
    // The final object is authoritative; the deltas are what we show while streaming.
    completed
        .or(Some(text).filter(|t| !t.is_empty()))
        .ok_or_else(|| ClientError::Protocol("stream ended without response.completed".into()))
}

/// The concatenated `output_text` parts of a Response object.
fn output_text(v: &serde_json::Value) -> Option<String> {
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
