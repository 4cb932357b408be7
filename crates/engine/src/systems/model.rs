//! How a system's model is asked: the output cap and the name the service gives it, the
//! reasoning effort of OpenAI's reasoning models, and Gemini's thinking budget.
//!
//! Reasoning models spend their thinking out of the same output budget, so a cap that fits
//! a short answer can leave nothing for the answer itself: these settings exist so that each
//! model family gets what it needs (see `config.toml`).

use serde::{Deserialize, Serialize};
use std::fmt;

/// The name of the output cap in an OpenAI-compatible Chat Completions request.
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
)]
#[strum(serialize_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum TokenField {
    /// OpenAI's own name; the only one its reasoning models accept.
    MaxCompletionTokens,
    /// The name third parties document (Hyperbolic, LM Studio); OpenAI's older name.
    MaxTokens,
}

impl TokenField {
    pub fn name(self) -> &'static str {
        self.into()
    }

    pub fn from_name(s: &str) -> Option<TokenField> {
        s.parse().ok()
    }
}

/// OpenAI reasoning effort (`reasoning_effort` in Chat, `reasoning.effort` in Responses).
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
    strum::VariantNames,
)]
#[strum(serialize_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum Effort {
    None,
    Minimal,
    Low,
    Medium,
    High,
}

impl Effort {
    pub fn name(self) -> &'static str {
        self.into()
    }

    pub fn from_name(s: &str) -> Option<Effort> {
        s.parse().ok()
    }
}

impl fmt::Display for Effort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Largest Gemini thinking budget any 2.5 model accepts.
pub const MAX_THINKING_BUDGET: i64 = 32_768;

/// What a request to the system's model carries besides the prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ModelParams {
    /// Most tokens the answer may use, thinking included where the model thinks.
    pub max_output_tokens: u32,
    /// How an `openai_chat` request names that cap.
    pub token_field: TokenField,
    /// Sent to OpenAI reasoning models; `None`: not sent (the model's default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_effort: Option<Effort>,
    /// Gemini `thinkingConfig.thinkingBudget`: 0 off (Flash), -1 dynamic; `None`: not sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thinking_budget: Option<i64>,
}
