//! The systems the agent holds: their names (a registry of data, not a fixed list), the
//! protocol each speaks, and the seed's eleven with the defaults that make a fresh install
//! play on the embedded sandbox.

pub mod catalog;
mod model;
mod names;

pub use model::{Effort, MAX_THINKING_BUDGET, ModelParams, TokenField};

use serde::{Deserialize, Serialize};
use std::fmt;

/// A system: a small `Copy` handle on a name of the process-wide registry of system names
/// (`names`), so it can key maps everywhere. The seed's eleven names are registered first
/// (indices 0..=10, the default catalog's order); a config's own systems are added when it is
/// loaded. Ordered by index: maps keyed by it list the systems in the config's order (the
/// seed's eleven first, then the file's new ones as written). Serialized as its snake_case
/// name (ARCHITECTURE.md, "Systems").
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SystemId(u16);

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
    /// A live service that works without a key (LM Studio runs locally).
    pub key_optional: bool,
}

impl SystemId {
    pub const VIDEO_INTERPRETER: SystemId = SystemId(0);
    pub const VOICE_SYSTEM: SystemId = SystemId(1);
    pub const ORCHESTRATOR: SystemId = SystemId(2);
    pub const WOLFRAM_ANALYZER: SystemId = SystemId(3);
    pub const GEMINI_CLIENT: SystemId = SystemId(4);
    pub const CLAUDE_CLIENT: SystemId = SystemId(5);
    pub const OPENAI_CLIENT: SystemId = SystemId(6);
    pub const HYPERBOLIC_CLIENT: SystemId = SystemId(7);
    pub const LMSTUDIO_CLIENT: SystemId = SystemId(8);
    pub const MOE: SystemId = SystemId(9);
    pub const META_RL: SystemId = SystemId(10);

    /// The seed's eleven, in the order the default config (and so the dashboard) lists them.
    /// The default catalog's list: code that runs a config takes the config's systems.
    pub const SEED: [SystemId; 11] = [
        SystemId::VIDEO_INTERPRETER,
        SystemId::VOICE_SYSTEM,
        SystemId::ORCHESTRATOR,
        SystemId::WOLFRAM_ANALYZER,
        SystemId::GEMINI_CLIENT,
        SystemId::CLAUDE_CLIENT,
        SystemId::OPENAI_CLIENT,
        SystemId::HYPERBOLIC_CLIENT,
        SystemId::LMSTUDIO_CLIENT,
        SystemId::MOE,
        SystemId::META_RL,
    ];

    /// The seed's experts, which its `moe` fans a question out to (`[gameplay.roles] experts`).
    pub const SEED_EXPERTS: [SystemId; 5] = [
        SystemId::GEMINI_CLIENT,
        SystemId::CLAUDE_CLIENT,
        SystemId::OPENAI_CLIENT,
        SystemId::HYPERBOLIC_CLIENT,
        SystemId::LMSTUDIO_CLIENT,
    ];

    pub fn name(self) -> &'static str {
        names::name(self.0)
    }

    /// The name people read (dashboard, account): the config's `display_name`, else the
    /// seed's, else made from the name ("mistral_client" → "Mistral client").
    pub fn display_name(self) -> &'static str {
        names::display_name(self.0)
    }

    /// A registered name: one of the seed's, or one a loaded config (or a command line, or a
    /// remote agent's stream) brought.
    pub fn from_name(s: &str) -> Option<SystemId> {
        names::find(s).map(SystemId)
    }

    /// As [`SystemId::from_name`], with an error that lists the seed's names (the command
    /// line is read before any config; [`SystemId::parse_among`] judges by a config's list).
    pub fn parse_name(s: &str) -> Result<SystemId, String> {
        SystemId::parse_among(s, &SystemId::SEED)
    }

    /// `s` if it names one of `known`, else an error that lists them.
    pub fn parse_among(s: &str, known: &[SystemId]) -> Result<SystemId, String> {
        SystemId::from_name(s)
            .filter(|id| known.contains(id))
            .ok_or_else(|| unknown_system(s, known))
    }

    /// The system called `name`, registered now if it is new. Names are snake_case
    /// (`[a-z][a-z0-9_]*`, at most 64 bytes): they are metric labels, file names and
    /// command-line words.
    pub fn intern(name: &str) -> Result<SystemId, String> {
        names::intern(name).map(SystemId)
    }

    /// As [`SystemId::intern`], with an error that says "unknown system" (a command line's
    /// word, judged against the config once it is read).
    pub fn intern_named(name: &str) -> Result<SystemId, String> {
        SystemId::intern(name).map_err(|why| format!("unknown system {name:?}: {why}"))
    }

    /// Sets the name people read (a config's `display_name`); the last config loaded wins.
    pub fn set_display_name(self, display: &str) {
        names::set_display_name(self.0, display);
    }

    /// Its place in the registry: stable for the process (the sandbox's port offsets).
    pub fn index(self) -> usize {
        usize::from(self.0)
    }

    /// One of the seed's eleven (the default catalog has its settings).
    pub fn is_seed(self) -> bool {
        usize::from(self.0) < SystemId::SEED.len()
    }

    /// The shipped settings of one of the seed's eleven; `None` for a system a config
    /// brought, which gives its own. `config.toml` says why each model was chosen, and when.
    pub fn defaults(self) -> Option<SystemDefaults> {
        const GEMINI: &str = "https://generativelanguage.googleapis.com";
        const OPENAI: &str = "https://api.openai.com/v1";
        // A game's answers are one action and one sentence: about 40 tokens.
        const SHORT: u32 = 256;
        use TokenField::{MaxCompletionTokens as OpenaiCap, MaxTokens as ThirdPartyCap};
        Some(match self {
            // streamGenerateContent serves 2.5 Flash-Lite; thinking off keeps the scene fast
            // and the whole budget for the description.
            SystemId::VIDEO_INTERPRETER => d(
                Protocol::GeminiStream,
                GEMINI,
                "gemini-2.5-flash-lite",
                Some("GEMINI_API_KEY"),
                &[],
                params(SHORT, OpenaiCap, None, Some(0)),
            ),
            SystemId::VOICE_SYSTEM => d(
                Protocol::GeminiTts,
                GEMINI,
                "gemini-2.5-pro-preview-tts",
                Some("GEMINI_API_KEY"),
                &[],
                params(SHORT, OpenaiCap, None, None),
            ),
            // Low effort: the choice is among eleven actions, and reasoning tokens come out
            // of the same cap.
            SystemId::ORCHESTRATOR => d(
                Protocol::OpenaiResponses,
                OPENAI,
                "gpt-5.1",
                Some("OPENAI_API_KEY"),
                &[SystemId::MOE, SystemId::WOLFRAM_ANALYZER, SystemId::META_RL],
                params(1024, OpenaiCap, Some(Effort::Low), None),
            ),
            SystemId::WOLFRAM_ANALYZER => d(
                Protocol::WolframLlm,
                "https://www.wolframalpha.com",
                "llm-api",
                Some("WOLFRAM_APP_ID"),
                &[],
                params(SHORT, OpenaiCap, None, None),
            ),
            SystemId::GEMINI_CLIENT => d(
                Protocol::GeminiGenerate,
                GEMINI,
                "gemini-2.5-flash-lite",
                Some("GEMINI_API_KEY"),
                &[],
                params(SHORT, OpenaiCap, None, Some(0)),
            ),
            SystemId::CLAUDE_CLIENT => d(
                Protocol::AnthropicMessages,
                "https://api.anthropic.com",
                "claude-sonnet-4-6",
                Some("ANTHROPIC_API_KEY"),
                &[],
                params(SHORT, OpenaiCap, None, None),
            ),
            SystemId::OPENAI_CLIENT => d(
                Protocol::OpenaiChat,
                OPENAI,
                "gpt-5.1",
                Some("OPENAI_API_KEY"),
                &[],
                params(SHORT, OpenaiCap, Some(Effort::None), None),
            ),
            SystemId::HYPERBOLIC_CLIENT => d(
                Protocol::OpenaiChat,
                "https://api.hyperbolic.xyz/v1",
                "Qwen/Qwen3-235B-A22B-Instruct-2507",
                Some("HYPERBOLIC_API_KEY"),
                &[],
                params(SHORT, ThirdPartyCap, None, None),
            ),
            // A reasoning model: its thinking needs room before the answer.
            SystemId::LMSTUDIO_CLIENT => SystemDefaults {
                // LM Studio needs no key; one is sent when LMSTUDIO_API_KEY is set.
                key_optional: true,
                ..d(
                    Protocol::OpenaiChat,
                    "http://localhost:1234/v1",
                    "microsoft/phi-4-mini-reasoning",
                    Some("LMSTUDIO_API_KEY"),
                    &[],
                    params(2048, ThirdPartyCap, None, None),
                )
            },
            SystemId::MOE => d(
                Protocol::Moe,
                "",
                "vote",
                None,
                &SystemId::SEED_EXPERTS,
                params(SHORT, OpenaiCap, None, None),
            ),
            SystemId::META_RL => d(
                Protocol::OpenaiChat,
                OPENAI,
                "gpt-5.1",
                Some("OPENAI_API_KEY"),
                &[],
                params(512, OpenaiCap, Some(Effort::None), None),
            ),
            _ => return None,
        })
    }

    /// A live service that works without a key.
    pub fn key_optional(self) -> bool {
        self.defaults().is_some_and(|d| d.key_optional)
    }
}

fn params(
    max_output_tokens: u32,
    token_field: TokenField,
    reasoning_effort: Option<Effort>,
    thinking_budget: Option<i64>,
) -> ModelParams {
    ModelParams {
        max_output_tokens,
        token_field,
        reasoning_effort,
        thinking_budget,
    }
}

fn d(
    protocol: Protocol,
    live_base_url: &'static str,
    model: &'static str,
    api_key_env: Option<&'static str>,
    depends_on: &'static [SystemId],
    params: ModelParams,
) -> SystemDefaults {
    SystemDefaults {
        protocol,
        live_base_url,
        model,
        api_key_env,
        depends_on,
        params,
        key_optional: false,
    }
}

/// "unknown system "x" (expected one of: ...)".
pub fn unknown_system(s: &str, known: &[SystemId]) -> String {
    let names: Vec<&str> = known.iter().map(|id| id.name()).collect();
    format!(
        "unknown system {s:?} (expected one of: {})",
        names.join(", ")
    )
}

impl fmt::Display for SystemId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Debug for SystemId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for SystemId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// A name read back (a report, a remote agent's stream) is registered if new: a viewer
/// shows an agent's own systems without its config.
impl<'de> Deserialize<'de> for SystemId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = std::borrow::Cow::<'de, str>::deserialize(d)?;
        SystemId::intern(&name).map_err(serde::de::Error::custom)
    }
}

impl std::str::FromStr for SystemId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        SystemId::from_name(s).ok_or_else(|| unknown_system(s, &SystemId::SEED))
    }
}
