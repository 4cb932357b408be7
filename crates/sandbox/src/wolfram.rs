//! Wolfram|Alpha LLM API (`GET /api/v1/llm-api?input=...`): plain-text answers.

use super::script;
use super::wire::{self, Ctx, Req};
use axum::body::Body;
use http::{Response, StatusCode};

/// The real API's default `maxchars`.
const DEFAULT_MAXCHARS: usize = 6800;

pub(crate) fn respond(ctx: &Ctx, req: &Req) -> Response<Body> {
    if req.path != "/api/v1/llm-api" {
        return wire::text(
            StatusCode::NOT_FOUND,
            format!("Error 404: {} not found", req.path),
        );
    }
    if req.method != http::Method::GET {
        return wire::text(
            StatusCode::METHOD_NOT_ALLOWED,
            "Error: only GET is supported",
        );
    }
    match req.query_param("appid") {
        Some(id) if !id.trim().is_empty() => {}
        _ if req.bearer().is_some() => {}
        Some(_) => return wire::text(StatusCode::FORBIDDEN, "Error 1: Invalid appid"),
        None => return wire::text(StatusCode::FORBIDDEN, "Error 2: Appid missing"),
    }
    let Some(input) = req.query_param("input") else {
        return wire::text(
            StatusCode::BAD_REQUEST,
            "Error: No input. Please specify the input using the 'input' query parameter.",
        );
    };
    let input = input.trim();
    if input.is_empty() {
        return wire::text(
            StatusCode::NOT_IMPLEMENTED,
            "Wolfram|Alpha could not understand: . \nYou could instead try: a question with numbers or units.",
        );
    }
    let (interpretation, result) = script::wolfram_answer(input);
    let link: String = url::form_urlencoded::byte_serialize(input.as_bytes()).collect();
    let answer = format!(
        "Query:\n\"{input}\"\n\nInput interpretation:\n{interpretation}\n\nResult:\n{result}\n\n\
         Wolfram|Alpha website result for \"{input}\":\nhttps://www.wolframalpha.com/input?i={link}\n"
    );
    let max = req
        .query_param("maxchars")
        .and_then(|m| m.parse::<usize>().ok())
        .unwrap_or(DEFAULT_MAXCHARS)
        .max(1);
    // The `truncate` fault: an answer long enough to be cut at maxchars.
    let answer = if ctx.truncate {
        answer.repeat(max.div_ceil(answer.len().max(1)) + 1)
    } else {
        answer
    };
    wire::text(StatusCode::OK, answer.chars().take(max).collect::<String>())
}

/// The answer to an `error:CODE` fault: plain text, like the real service.
pub(crate) fn fault_error(status: StatusCode) -> Response<Body> {
    let reason = status.canonical_reason().unwrap_or("Error");
    wire::text(status, format!("Error {}: {reason}", status.as_u16()))
}
