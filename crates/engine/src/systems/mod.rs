//! The eleven systems the agent holds: their names, the protocol each speaks, and the
//! defaults that make a fresh install play on the embedded sandbox.

pub mod catalog;
mod model;

pub use model::{Effort, MAX_THINKING_BUDGET, ModelParams, TokenField};

use serde::{Deserialize, Serialize};
use std::fmt;

/// One of the eleven systems. The snake_case name is the one used in config, CLI, report
/// and logs (ARCHITECTURE.md).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::EnumString,
)]
#[strum(serialize_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum SystemId {
    VideoInterpreter,
    VoiceSystem,
    Orchestrator,
    WolframAnalyzer,
    GeminiClient,
    ClaudeClient,
    OpenaiClient,
    HyperbolicClient,
    LmstudioClient,
    Moe,
    MetaRl,
}

/// The wire protocol a system speaks.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::VariantNames,
)]
#[strum(serialize_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// OpenAI Chat Completions (`POST {base}/chat/completions`), also Hyperbolic and LM Studio.
    OpenaiChat,
    /// OpenAI Responses (`POST {base}/responses`), typed SSE events.
    OpenaiResponses,
    /// Anthropic Messages (`POST {base}/v1/messages`).
    AnthropicMessages,
    /// Gemini `models/{model}:generateContent`.
    GeminiGenerate,
    /// Gemini `models/{model}:streamGenerateContent?alt=sse`.
    GeminiStream,
    /// Gemini text-to-speech: generateContent with `responseModalities: ["AUDIO"]`.
    GeminiTts,
    /// Wolfram|Alpha LLM API (`GET {base}/api/v1/llm-api?input=...`).
    WolframLlm,
    /// Mixture of experts: no wire of its own; fans out to other systems and votes.
    Moe,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        self.into()
    }

    pub fn from_name(s: &str) -> Option<Protocol> {
        s.parse().ok()
    }

    /// The path under `base_url` where the sandbox mounts this protocol, so that a sandbox
    /// base URL looks like the real service's (`.../v1` for OpenAI-compatible services).
    pub fn sandbox_base_path(self) -> &'static str {
        match self {
            Protocol::OpenaiChat | Protocol::OpenaiResponses => "/v1",
            _ => "",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Defaults for one system: what it speaks and where the real service lives.
#[derive(Debug, Clone, Copy)]
pub struct SystemDefaults {
    pub protocol: Protocol,
    pub live_base_url: &'static str,
    pub model: &'static str,
    pub api_key_env: Option<&'static str>,
    pub depends_on: &'static [SystemId],
    pub params: ModelParams,
}

impl SystemId {
    /// In the order the dashboard lists them.
    pub const ALL: [SystemId; 11] = [
        SystemId::VideoInterpreter,
        SystemId::VoiceSystem,
        SystemId::Orchestrator,
        SystemId::WolframAnalyzer,
        SystemId::GeminiClient,
        SystemId::ClaudeClient,
        SystemId::OpenaiClient,
        SystemId::HyperbolicClient,
        SystemId::LmstudioClient,
        SystemId::Moe,
        SystemId::MetaRl,
    ];

    /// The experts `moe` fans a question out to.
    pub const MOE_EXPERTS: [SystemId; 5] = [
        SystemId::GeminiClient,
        SystemId::ClaudeClient,
        SystemId::OpenaiClient,
        SystemId::HyperbolicClient,
        SystemId::LmstudioClient,
    ];

    pub fn name(self) -> &'static str {
        self.into()
    }

    pub fn display_name(self) -> &'static str {
        match self {
            SystemId::VideoInterpreter => "Video interpreter",
            SystemId::VoiceSystem => "Voice system",
            SystemId::Orchestrator => "GPT-5 orchestrator",
            SystemId::WolframAnalyzer => "Wolfram analyzer",
            SystemId::GeminiClient => "Gemini client",
            SystemId::ClaudeClient => "Claude client",
            SystemId::OpenaiClient => "OpenAI client",
            SystemId::HyperbolicClient => "Hyperbolic client",
            SystemId::LmstudioClient => "LMStudio client",
            SystemId::Moe => "MoE orchestrator",
            SystemId::MetaRl => "GPT-5 Meta RL",
        }
    }

    pub fn from_name(s: &str) -> Option<SystemId> {
        s.parse().ok()
    }

    /// As [`SystemId::from_name`], with an error that lists the names a person can use.
    pub fn parse_name(s: &str) -> Result<SystemId, String> {
        SystemId::from_name(s).ok_or_else(|| {
            let names: Vec<&str> = SystemId::ALL.iter().map(|id| id.name()).collect();
            format!(
                "unknown system {s:?} (expected one of: {})",
                names.join(", ")
            )
        })
    }

    pub fn index(self) -> usize {
        self as usize
    }

    /// The shipped settings; `config.toml` says why each model was chosen, and when.
    pub fn defaults(self) -> SystemDefaults {
        use SystemId::*;
        const GEMINI: &str = "https://generativelanguage.googleapis.com";
        const OPENAI: &str = "https://api.openai.com/v1";
        // A game's answers are one action and one sentence: about 40 tokens.
        const SHORT: u32 = 256;
        let params =
            |max_output_tokens, token_field, reasoning_effort, thinking_budget| ModelParams {
                max_output_tokens,
                token_field,
                reasoning_effort,
                thinking_budget,
            };
        use TokenField::{MaxCompletionTokens as OpenaiCap, MaxTokens as ThirdPartyCap};
        let d = |protocol, live_base_url, model, api_key_env, depends_on, params| SystemDefaults {
            protocol,
            live_base_url,
            model,
            api_key_env,
            depends_on,
            params,
        };
        match self {
            // streamGenerateContent serves 2.5 Flash-Lite; thinking off keeps the scene fast
            // and the whole budget for the description.
            VideoInterpreter => d(
                Protocol::GeminiStream,
                GEMINI,
                "gemini-2.5-flash-lite",
                Some("GEMINI_API_KEY"),
                &[],
                params(SHORT, OpenaiCap, None, Some(0)),
            ),
            VoiceSystem => d(
                Protocol::GeminiTts,
                GEMINI,
                "gemini-2.5-pro-preview-tts",
                Some("GEMINI_API_KEY"),
                &[],
                params(SHORT, OpenaiCap, None, None),
            ),
            // Low effort: the choice is among eleven actions, and reasoning tokens come out
            // of the same cap.
            Orchestrator => d(
                Protocol::OpenaiResponses,
                OPENAI,
                "gpt-5.1",
                Some("OPENAI_API_KEY"),
                &[Moe, WolframAnalyzer, MetaRl],
                params(1024, OpenaiCap, Some(Effort::Low), None),
            ),
            WolframAnalyzer => d(
                Protocol::WolframLlm,
                "https://www.wolframalpha.com",
                "llm-api",
                Some("WOLFRAM_APP_ID"),
                &[],
                params(SHORT, OpenaiCap, None, None),
            ),
            GeminiClient => d(
                Protocol::GeminiGenerate,
                GEMINI,
                "gemini-2.5-flash-lite",
                Some("GEMINI_API_KEY"),
                &[],
                params(SHORT, OpenaiCap, None, Some(0)),
            ),
            ClaudeClient => d(
                Protocol::AnthropicMessages,
                "https://api.anthropic.com",
                "claude-sonnet-4-6",
                Some("ANTHROPIC_API_KEY"),
                &[],
                params(SHORT, OpenaiCap, None, None),
            ),
            OpenaiClient => d(
                Protocol::OpenaiChat,
                OPENAI,
                "gpt-5.1",
                Some("OPENAI_API_KEY"),
                &[],
                params(SHORT, OpenaiCap, Some(Effort::None), None),
            ),
            HyperbolicClient => d(
                Protocol::OpenaiChat,
                "https://api.hyperbolic.xyz/v1",
                "Qwen/Qwen3-235B-A22B-Instruct-2507",
                Some("HYPERBOLIC_API_KEY"),
                &[],
                params(SHORT, ThirdPartyCap, None, None),
            ),
            // A reasoning model: its thinking needs room before the answer.
            LmstudioClient => d(
                Protocol::OpenaiChat,
                "http://localhost:1234/v1",
                "microsoft/phi-4-mini-reasoning",
                // LM Studio needs no key; one is sent when LMSTUDIO_API_KEY is set.
                Some("LMSTUDIO_API_KEY"),
                &[],
                params(2048, ThirdPartyCap, None, None),
            ),
            Moe => d(
                Protocol::Moe,
                "",
                "vote",
                None,
                &SystemId::MOE_EXPERTS,
                params(SHORT, OpenaiCap, None, None),
            ),
            MetaRl => d(
                Protocol::OpenaiChat,
                OPENAI,
                "gpt-5.1",
                Some("OPENAI_API_KEY"),
                &[],
                params(512, OpenaiCap, Some(Effort::None), None),
            ),
        }
    }

    /// A live service that works without a key (LM Studio runs locally).
    pub fn key_optional(self) -> bool {
        matches!(self, SystemId::LmstudioClient)
    }
}

impl fmt::Display for SystemId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
