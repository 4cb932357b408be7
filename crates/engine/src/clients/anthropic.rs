//! Anthropic Messages: `POST {base}/v1/messages` with `x-api-key` and `anthropic-version`.

use super::RequestCtx;
use super::wire::{self, endpoint, str_at};
use super::{ClientError, Prompt, Usage, sse};
use serde_json::json;

/// The API version this client is written against.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

/// `max_tokens` is the cap; `refusal` is the model declining.
fn stop_reason(ctx: &RequestCtx, reason: Option<&str>) -> Result<(), ClientError> {
    match reason {
        Some("max_tokens") => Err(ClientError::truncated(
            "stop_reason max_tokens",
            ctx.params.max_output_tokens,
        )),
        Some("refusal") => Err(ClientError::Protocol(
            "the model declined to answer (stop_reason refusal)".into(),
        )),
        _ => Ok(()),
    }
}

pub async fn messages(
    ctx: &RequestCtx,
    prompt: &Prompt,
    stream: bool,
) -> Result<String, ClientError> {
    let mut body = json!({
        "model": ctx.model,
        "max_tokens": ctx.params.max_output_tokens,
        "messages": [{"role": "user", "content": prompt.user}],
    });
    if !prompt.system.is_empty() {
        body["system"] = json!(prompt.system);
    }
    if stream {
        body["stream"] = json!(true);
    }
    let mut req = ctx
        .client
        .post(endpoint(&ctx.base, "v1/messages"))
        .header("anthropic-version", ANTHROPIC_VERSION)
        .json(&body);
    if let Some(k) = &ctx.key {
        req = req.header("x-api-key", k.header(""));
    }
    let resp = wire::send_stream(ctx, req, stream).await?;
    if !stream {
        let v = wire::read_json(resp).await?;
        if let Some(u) = v.get("usage").and_then(Usage::from_anthropic) {
            ctx.usage.add(u);
        }
        let text: String = v
            .get("content")
            .and_then(|c| c.as_array())
            .map(|blocks| {
                blocks
                    .iter()
                    .filter(|b| str_at(b, "/type") == Some("text"))
                    .filter_map(|b| str_at(b, "/text"))
                    .collect()
            })
            .unwrap_or_default();
        // A truncated answer keeps the text that came.
        stop_reason(ctx, str_at(&v, "/stop_reason")).map_err(|e| e.with_partial(&text))?;
        if v.get("content").and_then(|c| c.as_array()).is_none() {
            return Err(ClientError::Protocol("message without content".into()));
        }
        return Ok(text);
    }
    wire::expect_content_type(&resp, "text/event-stream")?;
    let mut text = String::new();
    let mut reason = None;
    // message_start carries the input tokens; each message_delta the output so far.
    let mut usage = serde_json::Map::new();
    let read = sse::read_json_events(resp.bytes_stream(), &ctx.stop, ctx.stream_limits(), |ev| {
        let sse::JsonEvent::Json(v) = ev else {
            return Ok(sse::Step::End);
        };
        let u = v.pointer("/message/usage").or_else(|| v.get("usage"));
        if let Some(u) = u.and_then(|u| u.as_object()) {
            usage.extend(
                u.iter()
                    .filter(|(_, n)| n.is_u64())
                    .map(|(k, n)| (k.clone(), n.clone())),
            );
        }
        match str_at(&v, "/type").unwrap_or_default() {
            "message_delta" => reason = str_at(&v, "/delta/stop_reason").map(str::to_string),
            "content_block_delta" => {
                if let Some(t) = str_at(&v, "/delta/text").filter(|t| !t.is_empty()) {
                    text.push_str(t);
                    return Ok(sse::Step::Content);
                }
            }
            "message_stop" => return Ok(sse::Step::End),
            "error" => {
                let msg = str_at(&v, "/error/message").unwrap_or("stream error");
                return Err(ClientError::Protocol(wire::shorten(msg, 120)));
            }
            _ => {}
        }
        Ok(sse::Step::Go)
    })
    .await;
    if let Some(u) = Usage::from_anthropic(&serde_json::Value::Object(usage)) {
        ctx.usage.add(u);
    }
    let ended = read.map_err(|e| e.with_partial(&text))?;
    // Whole once message_delta has said why it stopped or message_stop came, as the SDK's
    // accumulated message is; neither is a stream cut short.
    if reason.is_none() && ended != sse::Ended::Terminator {
        return Err(ClientError::Protocol(format!(
            "stream ended before a stop_reason or message_stop{}",
            ended.cut_note()
        )));
    }
    stop_reason(ctx, reason.as_deref()).map_err(|e| e.with_partial(&text))?;
    Ok(text)
}
