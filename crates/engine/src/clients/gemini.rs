//! Gemini: `models/{model}:generateContent`, `:streamGenerateContent?alt=sse`, and
//! text-to-speech (generateContent with `responseModalities: ["AUDIO"]`). The key goes in
//! the `x-goog-api-key` header, never in the query string.

use super::RequestCtx;
use super::wire::{self, endpoint, str_at};
use super::{ClientError, Prompt, Usage, sse};
use base64::Engine;
use serde_json::json;

const API_VERSION: &str = "v1beta";

fn request(ctx: &RequestCtx, method: &str, body: &serde_json::Value) -> reqwest::RequestBuilder {
    let url = endpoint(
        &ctx.base,
        &format!("{API_VERSION}/models/{}:{method}", ctx.model),
    );
    let req = ctx.client.post(url).json(body);
    match &ctx.key {
        Some(k) => req.header("x-goog-api-key", k.header("")),
        None => req,
    }
}

/// The request: the cap (thinking counts against it on 2.5 models) and the thinking budget.
pub fn text_body(ctx: &RequestCtx, prompt: &Prompt) -> serde_json::Value {
    let p = &ctx.params;
    let mut body = json!({
        "contents": [{"role": "user", "parts": [{"text": prompt.user}]}],
        "generationConfig": {"maxOutputTokens": p.max_output_tokens},
    });
    if let Some(budget) = p.thinking_budget {
        body["generationConfig"]["thinkingConfig"] = json!({"thinkingBudget": budget});
    }
    if !prompt.system.is_empty() {
        body["systemInstruction"] = json!({"parts": [{"text": prompt.system}]});
    }
    body
}

/// Why a candidate ended, when that is not a plain stop: `MAX_TOKENS` is the cap; the
/// others are the service withholding the answer.
fn finish_reason(ctx: &RequestCtx, v: &serde_json::Value) -> Result<Option<String>, ClientError> {
    let reason = str_at(v, "/candidates/0/finishReason");
    match reason {
        None | Some("STOP") => Ok(reason.map(str::to_string)),
        Some("MAX_TOKENS") => Err(ClientError::truncated(
            "finishReason MAX_TOKENS",
            ctx.params.max_output_tokens,
        )),
        Some(other) => Err(ClientError::Protocol(format!(
            "the answer was withheld: finishReason {}",
            wire::shorten(other, 40)
        ))),
    }
}

/// The text parts of one GenerateContentResponse (a final one may have none); `None` for
/// one without candidates at all.
fn candidate_text(v: &serde_json::Value) -> Result<Option<String>, ClientError> {
    if let Some(msg) = str_at(v, "/error/message") {
        return Err(ClientError::Protocol(wire::shorten(msg, 120)));
    }
    if let Some(block) = str_at(v, "/promptFeedback/blockReason") {
        return Err(ClientError::Protocol(format!(
            "the prompt was blocked: {}",
            wire::shorten(block, 40)
        )));
    }
    let Some(candidate) = v.pointer("/candidates/0") else {
        return Ok(None);
    };
    let parts = candidate
        .pointer("/content/parts")
        .and_then(|p| p.as_array());
    Ok(Some(
        parts
            .into_iter()
            .flatten()
            .filter(|p| p.get("thought") != Some(&json!(true)))
            .filter_map(|p| str_at(p, "/text"))
            .collect(),
    ))
}

fn record_usage(ctx: &RequestCtx, v: &serde_json::Value) {
    if let Some(u) = v.get("usageMetadata").and_then(Usage::from_gemini) {
        ctx.usage.add(u);
    }
}

pub async fn generate(ctx: &RequestCtx, prompt: &Prompt) -> Result<String, ClientError> {
    let resp = wire::send(
        ctx,
        request(ctx, "generateContent", &text_body(ctx, prompt)),
    )
    .await?;
    let v = wire::read_json(resp).await?;
    record_usage(ctx, &v);
    // A truncated answer keeps the text that came.
    finish_reason(ctx, &v).map_err(|e| {
        let partial = candidate_text(&v).ok().flatten().unwrap_or_default();
        e.with_partial(&partial)
    })?;
    let text = candidate_text(&v)?
        .ok_or_else(|| ClientError::Protocol("answer without candidates".into()))?;
    if text.is_empty() {
        return Err(ClientError::Protocol(
            "answer without text (finishReason STOP, no parts)".into(),
        ));
    }
    Ok(text)
}

/// Stream a description, calling `on_text` with each piece as it arrives.
pub async fn stream(
    ctx: &RequestCtx,
    prompt: &Prompt,
    mut on_text: impl FnMut(&str),
) -> Result<String, ClientError> {
    let req =
        request(ctx, "streamGenerateContent", &text_body(ctx, prompt)).query(&[("alt", "sse")]);
    let resp = wire::send_stream(ctx, req, true).await?;
    wire::expect_content_type(&resp, "text/event-stream")?;
    let mut text = String::new();
    let mut finished = None;
    // Each chunk's usageMetadata is the running total: the last one counts.
    let mut usage = None;
    let read = sse::read_json_events(resp.bytes_stream(), &ctx.stop, ctx.stream_limits(), |ev| {
        let sse::JsonEvent::Json(v) = ev else {
            return Ok(sse::Step::End);
        };
        if let Some(u) = v.get("usageMetadata").and_then(Usage::from_gemini) {
            usage = Some(u);
        }
        // A chunk without candidates (usage only, or safety ratings) says nothing: the
        // service sends them mid-stream and last, and google-genai passes them on.
        let Some(piece) = candidate_text(&v)? else {
            return Ok(sse::Step::Go);
        };
        on_text(&piece);
        text.push_str(&piece);
        let step = if piece.is_empty() {
            sse::Step::Go
        } else {
            sse::Step::Content
        };
        if str_at(&v, "/candidates/0/finishReason").is_some() {
            finished = Some(v);
        }
        Ok(step)
    })
    .await;
    if let Some(u) = usage {
        ctx.usage.add(u);
    }
    let ended = read.map_err(|e| e.with_partial(&text))?;
    let Some(last) = finished else {
        return Err(ClientError::Protocol(format!(
            "stream ended without a finishReason{}",
            ended.cut_note()
        )));
    };
    finish_reason(ctx, &last).map_err(|e| e.with_partial(&text))?;
    Ok(text)
}

/// PCM audio as the TTS model returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct Pcm {
    pub sample_rate: u32,
    pub channels: u16,
    pub samples: Vec<i16>,
}

impl Pcm {
    pub fn duration_ms(&self) -> u64 {
        if self.sample_rate == 0 || self.channels == 0 {
            return 0;
        }
        self.samples.len() as u64 * 1000 / (self.sample_rate as u64 * self.channels as u64)
    }
}

/// Decode `audio/L16;codec=pcm;rate=24000` base64 data: signed 16-bit little-endian.
pub fn decode_pcm(mime: &str, b64: &str) -> Result<Pcm, ClientError> {
    let mime_l = mime.to_ascii_lowercase();
    if !(mime_l.starts_with("audio/l16") || mime_l.starts_with("audio/pcm")) {
        return Err(ClientError::Protocol(format!(
            "unexpected audio type {:?}",
            wire::shorten(mime, 60)
        )));
    }
    let rate = mime_l
        .split(';')
        .filter_map(|p| p.trim().strip_prefix("rate="))
        .find_map(|r| r.parse::<u32>().ok())
        .unwrap_or(24_000);
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|e| ClientError::Protocol(format!("audio is not base64: {e}")))?;
    if bytes.len() % 2 != 0 {
        return Err(ClientError::Protocol("odd number of PCM bytes".into()));
    }
    let samples = bytes
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    Ok(Pcm {
        sample_rate: rate,
        channels: 1,
        samples,
    })
}

pub async fn speak(ctx: &RequestCtx, text: &str, voice: &str) -> Result<Pcm, ClientError> {
    let body = json!({
        "contents": [{"parts": [{"text": text}]}],
        "generationConfig": {
            "responseModalities": ["AUDIO"],
            "speechConfig": {"voiceConfig": {"prebuiltVoiceConfig": {"voiceName": voice}}},
        },
    });
    let resp = wire::send(ctx, request(ctx, "generateContent", &body)).await?;
    let v = wire::read_json(resp).await?;
    record_usage(ctx, &v);
    finish_reason(ctx, &v)?;
    let data = v
        .pointer("/candidates/0/content/parts/0/inlineData")
        .ok_or_else(|| ClientError::Protocol("speech answer without inlineData".into()))?;
    decode_pcm(
        str_at(data, "/mimeType").unwrap_or_default(),
        str_at(data, "/data").unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunk_without_candidates_is_no_text_not_an_error() {
        // A usage-only final chunk, as Gemini sends it on streamGenerateContent (the
        // shape of google-genai's GenerateContentResponse with only usage_metadata).
        let usage_only = json!({
            "usageMetadata": {"promptTokenCount": 9, "candidatesTokenCount": 12, "totalTokenCount": 21},
            "modelVersion": "gemini-2.5-flash-lite", "responseId": "abc",
        });
        assert_eq!(candidate_text(&usage_only).unwrap(), None);
        let text =
            json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "hi"}]}}]});
        assert_eq!(candidate_text(&text).unwrap().as_deref(), Some("hi"));
        let blocked = json!({"promptFeedback": {"blockReason": "SAFETY"}});
        assert!(
            candidate_text(&blocked).is_err(),
            "a blocked prompt still fails"
        );
    }

    #[test]
    fn decodes_little_endian_pcm() {
        let raw: Vec<u8> = [0i16, 1000, -1000, i16::MAX]
            .iter()
            .flat_map(|s| s.to_le_bytes())
            .collect();
        let b64 = base64::engine::general_purpose::STANDARD.encode(raw);
        let pcm = decode_pcm("audio/L16;codec=pcm;rate=24000", &b64).unwrap();
        assert_eq!(pcm.samples, vec![0, 1000, -1000, i16::MAX]);
        assert_eq!(pcm.sample_rate, 24_000);
        assert!(decode_pcm("audio/mpeg", &b64).is_err());
        assert!(decode_pcm("audio/L16;rate=24000", "AAE").is_err()); // 2 bytes? no: odd after decode
    }
}
