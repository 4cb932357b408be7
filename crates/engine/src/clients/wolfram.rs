//! Wolfram|Alpha LLM API: `GET {base}/api/v1/llm-api?input=...`, answered in plain text.
//! The AppID goes in `Authorization: Bearer`, which the API accepts, so it stays out of URLs.

use super::ClientError;
use super::RequestCtx;
use super::wire::{self, endpoint};

/// Longest answer asked for; the service cuts its text there.
pub const MAXCHARS: usize = 1200;

pub async fn query(ctx: &RequestCtx, input: &str) -> Result<String, ClientError> {
    let mut req = ctx
        .client
        .get(endpoint(&ctx.base, "api/v1/llm-api"))
        .query(&[("input", input), ("maxchars", &MAXCHARS.to_string())]);
    if let Some(k) = &ctx.key {
        req = req.header(http::header::AUTHORIZATION, k.header("Bearer "));
    }
    let resp = wire::send(ctx, req).await?;
    wire::expect_content_type(&resp, "text/plain")?;
    let body = wire::read_limited(resp, wire::MAX_BODY).await?;
    let text =
        String::from_utf8(body).map_err(|_| ClientError::Protocol("answer is not UTF-8".into()))?;
    // The LLM API has no finish reason: an answer that fills maxchars was cut there.
    if text.chars().count() >= MAXCHARS {
        return Err(ClientError::Truncated {
            reason: format!("the answer filled maxchars={MAXCHARS}"),
            partial: text,
        });
    }
    Ok(text)
}

/// The first number under `Result:` (e.g. combat odds), if any.
pub fn result_number(answer: &str) -> Option<f64> {
    let after = answer.split_once("Result:")?.1;
    after
        .split(|c: char| c.is_whitespace() || c == '%')
        .find_map(|w| {
            w.trim_matches(|c: char| !c.is_ascii_digit() && c != '.' && c != '-')
                .parse::<f64>()
                .ok()
        })
}

#[cfg(test)]
mod tests {
    #[test]
    fn finds_the_result_number() {
        let a = "Query:\n\"odds\"\n\nResult:\n0.62 (62%)\n";
        assert_eq!(super::result_number(a), Some(0.62));
        assert_eq!(super::result_number("no result here"), None);
    }
}
