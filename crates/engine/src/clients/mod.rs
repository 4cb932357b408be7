//! The wire protocols, one module each: build the request the real service expects, read
//! its answer (JSON or SSE), and turn failures into [`ClientError`]s fit for a screen.

pub mod anthropic;
mod ctx;
pub mod gemini;
pub mod openai;
mod sse;
mod usage;
mod wire;
pub mod wolfram;

pub use crate::error::ClientError;
pub use ctx::{ApiKey, BudgetCtx, RateLimitSlot, RequestCtx};
pub use sse::{SseEvent, SseParser};
pub use usage::{Headroom, Usage, UsageMeter};
pub use wire::shorten;

use crate::systems::Protocol;
use crate::systems::catalog::Service;

/// A question for a language model. Its output cap and the model's tuning come from the
/// system's config (`RequestCtx::params`).
#[derive(Debug, Clone)]
pub struct Prompt {
    pub system: String,
    pub user: String,
}

impl Prompt {
    pub fn new(system: impl Into<String>, user: impl Into<String>) -> Prompt {
        Prompt {
            system: system.into(),
            user: user.into(),
        }
    }
}

/// Ask any text-answering system, in the way that system talks to its service: LM Studio
/// and the orchestrator stream their answers, the others answer in one body.
pub async fn ask(
    ctx: &RequestCtx,
    protocol: Protocol,
    prompt: &Prompt,
) -> Result<String, ClientError> {
    match protocol {
        Protocol::OpenaiChat => {
            let lm_studio = Service::of(ctx.system, protocol, None) == Service::LmStudio;
            openai::chat(ctx, prompt, lm_studio).await
        }
        Protocol::OpenaiResponses => openai::responses(ctx, prompt, true).await,
        Protocol::AnthropicMessages => anthropic::messages(ctx, prompt, false).await,
        Protocol::GeminiGenerate => gemini::generate(ctx, prompt).await,
        Protocol::GeminiStream => gemini::stream(ctx, prompt, |_| {}).await,
        Protocol::WolframLlm => wolfram::query(ctx, &prompt.user).await,
        Protocol::GeminiTts => gemini::speak(ctx, &prompt.user, "Kore")
            .await
            .map(|pcm| format!("{} ms of speech", pcm.duration_ms())),
        Protocol::Moe => Err(ClientError::Unavailable(
            "moe answers through its experts".into(),
        )),
    }
}
