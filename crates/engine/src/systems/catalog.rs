//! The model catalog: what each service serves, its model ids by family, how each model
//! thinks, and how the service answers a thinking setting that does not fit the model. One
//! copy: the sandbox serves and judges by it, and the config checks a file against it before
//! any request is sent (ARCHITECTURE.md, "The sandbox").
//!
//! Ids and messages as the services' references and the official SDKs show them; checked
//! on the date in `config.toml`. A model missing here is answered by the sandbox as an
//! unknown one (add it), and left to the live service by the config.

use super::{Effort, Protocol, SystemId};

/// The service behind a system's listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    OpenAi,
    Hyperbolic,
    LmStudio,
    /// An OpenAI-compatible service the catalog does not list (Mistral, Together, a local
    /// vLLM, ...): it serves the model its system's config declares, as Hyperbolic and LM
    /// Studio serve their own catalogs.
    OpenAiCompatible,
    Anthropic,
    Gemini,
    Wolfram,
}

impl Service {
    /// The service a system talks to: by its protocol, and for the OpenAI-compatible ones,
    /// the seed's by name (wherever its base URL points: a test's sandbox is still
    /// "OpenAI"), a new system's by the host of its live URL. A new `openai_chat` system
    /// on the sandbox is a third party (`OpenAiCompatible`); `openai_responses` is OpenAI's.
    pub fn of(id: SystemId, protocol: Protocol, live: Option<&url::Url>) -> Service {
        match protocol {
            Protocol::OpenaiChat | Protocol::OpenaiResponses | Protocol::Moe => {
                let host = match id.defaults() {
                    Some(d) => url::Url::parse(d.live_base_url)
                        .ok()
                        .and_then(|u| u.host_str().map(str::to_string)),
                    None => live.and_then(|u| u.host_str().map(str::to_string)),
                };
                match host.as_deref() {
                    Some("api.openai.com") => Service::OpenAi,
                    Some("api.hyperbolic.xyz") => Service::Hyperbolic,
                    Some("localhost") if id.is_seed() => Service::LmStudio,
                    _ if id.is_seed() || protocol != Protocol::OpenaiChat => Service::OpenAi,
                    _ => Service::OpenAiCompatible,
                }
            }
            Protocol::AnthropicMessages => Service::Anthropic,
            Protocol::GeminiGenerate | Protocol::GeminiStream | Protocol::GeminiTts => {
                Service::Gemini
            }
            Protocol::WolframLlm => Service::Wolfram,
        }
    }
}

/// What a model is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Text in, text out, on every text endpoint of its service.
    Text,
    /// OpenAI: served by `/v1/responses` only.
    ResponsesOnly,
    /// OpenAI: not a chat model at all (completions, embeddings, speech).
    NotChat,
    /// Gemini: speech out only (`responseModalities: ["AUDIO"]`).
    Tts,
    /// Gemini: the Live API only (WebSocket), not `generateContent`.
    Live,
    /// Once served, now shut down.
    Retired,
}

/// How a model thinks before it answers; its thinking is billed as output and comes out of
/// the same cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Think {
    No,
    /// OpenAI reasoning: the efforts the model accepts and the one it uses by default.
    Effort {
        default: Effort,
        allowed: &'static [Effort],
    },
    /// Gemini thinking: the budget range, whether 0 turns it off, and the tokens a dynamic
    /// budget spends on a short game question.
    Budget {
        min: i64,
        max: i64,
        can_off: bool,
        off_by_default: bool,
        dynamic: u64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Model {
    pub id: &'static str,
    pub kind: Kind,
    pub think: Think,
}

use Effort::{High, Low, Medium, Minimal, None as NoEffort};
const GPT5: Think = Think::Effort {
    default: Medium,
    allowed: &[Minimal, Low, Medium, High],
};
const GPT51: Think = Think::Effort {
    default: NoEffort,
    allowed: &[NoEffort, Low, Medium, High],
};
const O_SERIES: Think = Think::Effort {
    default: Medium,
    allowed: &[Low, Medium, High],
};
const PRO: Think = Think::Effort {
    default: High,
    allowed: &[High],
};
const FLASH: Think = Think::Budget {
    min: 1,
    max: 24_576,
    can_off: true,
    off_by_default: false,
    dynamic: 320,
};
const FLASH_LITE: Think = Think::Budget {
    min: 512,
    max: 24_576,
    can_off: true,
    off_by_default: true,
    dynamic: 600,
};
const GEMINI_PRO: Think = Think::Budget {
    min: 128,
    max: 32_768,
    can_off: false,
    off_by_default: false,
    dynamic: 900,
};
const GEMINI_3: Think = Think::Budget {
    min: 128,
    max: 32_768,
    can_off: false,
    off_by_default: false,
    dynamic: 600,
};

const fn m(id: &'static str, kind: Kind, think: Think) -> Model {
    Model { id, kind, think }
}

const OPENAI: &[Model] = &[
    m("gpt-5", Kind::Text, GPT5),
    m("gpt-5-2025-08-07", Kind::Text, GPT5),
    m("gpt-5-mini", Kind::Text, GPT5),
    m("gpt-5-mini-2025-08-07", Kind::Text, GPT5),
    m("gpt-5-nano", Kind::Text, GPT5),
    m("gpt-5-nano-2025-08-07", Kind::Text, GPT5),
    m("gpt-5.1", Kind::Text, GPT51),
    m("gpt-5.1-2025-11-13", Kind::Text, GPT51),
    m("gpt-5.2", Kind::Text, GPT51),
    m("gpt-4o", Kind::Text, Think::No),
    m("gpt-4o-2024-08-06", Kind::Text, Think::No),
    m("gpt-4o-2024-11-20", Kind::Text, Think::No),
    m("gpt-4o-mini", Kind::Text, Think::No),
    m("gpt-4.1", Kind::Text, Think::No),
    m("gpt-4.1-mini", Kind::Text, Think::No),
    m("o3", Kind::Text, O_SERIES),
    m("gpt-5-pro", Kind::ResponsesOnly, PRO),
    m("gpt-5-codex", Kind::ResponsesOnly, GPT5),
    m("o3-pro", Kind::ResponsesOnly, O_SERIES),
    m("gpt-3.5-turbo-instruct", Kind::NotChat, Think::No),
    m("text-embedding-3-small", Kind::NotChat, Think::No),
    m("gpt-4o-mini-tts", Kind::NotChat, Think::No),
    // Shut down on 2026-10-23 (OpenAI's deprecations page).
    m("gpt-3.5-turbo", Kind::Retired, Think::No),
    m("gpt-4", Kind::Retired, Think::No),
    m("gpt-4-turbo", Kind::Retired, Think::No),
    m("gpt-4o-2024-05-13", Kind::Retired, Think::No),
    m("gpt-4.1-nano", Kind::Retired, Think::No),
    m("o1", Kind::Retired, O_SERIES),
    m("o1-pro", Kind::Retired, O_SERIES),
    m("o3-mini", Kind::Retired, O_SERIES),
    m("o4-mini", Kind::Retired, O_SERIES),
    m("codex-mini-latest", Kind::Retired, O_SERIES),
    m("gpt-4.5-preview", Kind::Retired, Think::No),
    m("gpt-4-32k", Kind::Retired, Think::No),
    m("gpt-4-vision-preview", Kind::Retired, Think::No),
    m("o1-preview", Kind::Retired, O_SERIES),
    m("text-davinci-003", Kind::Retired, Think::No),
];

const HYPERBOLIC: &[Model] = &[
    m("Qwen/Qwen3-235B-A22B-Instruct-2507", Kind::Text, Think::No),
    m("Qwen/Qwen3-235B-A22B", Kind::Text, Think::No),
    m("Qwen/Qwen3-Coder-480B-A35B-Instruct", Kind::Text, Think::No),
    m("Qwen/Qwen2.5-72B-Instruct", Kind::Text, Think::No),
    m("deepseek-ai/DeepSeek-V3", Kind::Text, Think::No),
    m("deepseek-ai/DeepSeek-R1", Kind::Text, Think::No),
    m("meta-llama/Llama-3.3-70B-Instruct", Kind::Text, Think::No),
    m(
        "meta-llama/Meta-Llama-3.1-8B-Instruct",
        Kind::Text,
        Think::No,
    ),
    m(
        "meta-llama/Meta-Llama-3.1-70B-Instruct",
        Kind::Text,
        Think::No,
    ),
    m("openai/gpt-oss-120b", Kind::Text, Think::No),
    m("openai/gpt-oss-20b", Kind::Text, Think::No),
];

const ANTHROPIC: &[Model] = &[
    m("claude-sonnet-4-6", Kind::Text, Think::No),
    m("claude-opus-4-6", Kind::Text, Think::No),
    m("claude-opus-4-5", Kind::Text, Think::No),
    m("claude-opus-4-5-20251101", Kind::Text, Think::No),
    m("claude-sonnet-4-5", Kind::Text, Think::No),
    m("claude-sonnet-4-5-20250929", Kind::Text, Think::No),
    m("claude-haiku-4-5", Kind::Text, Think::No),
    m("claude-haiku-4-5-20251001", Kind::Text, Think::No),
    m("claude-opus-4-1", Kind::Text, Think::No),
    m("claude-opus-4-1-20250805", Kind::Text, Think::No),
    // Retired on 2026-06-15 (Anthropic's release notes), and earlier.
    m("claude-opus-4-0", Kind::Retired, Think::No),
    m("claude-opus-4-20250514", Kind::Retired, Think::No),
    m("claude-sonnet-4-0", Kind::Retired, Think::No),
    m("claude-sonnet-4-20250514", Kind::Retired, Think::No),
    m("claude-3-haiku-20240307", Kind::Retired, Think::No),
    m("claude-3-opus-20240229", Kind::Retired, Think::No),
    m("claude-3-5-sonnet-20240620", Kind::Retired, Think::No),
    m("claude-3-5-sonnet-20241022", Kind::Retired, Think::No),
    m("claude-3-sonnet-20240229", Kind::Retired, Think::No),
    m("claude-2.1", Kind::Retired, Think::No),
    m("claude-2.0", Kind::Retired, Think::No),
    m("claude-instant-1.2", Kind::Retired, Think::No),
];

const GEMINI: &[Model] = &[
    m("gemini-2.5-flash-lite", Kind::Text, FLASH_LITE),
    // Gemini 3 models take thinkingLevel; thinkingBudget is accepted for compatibility, and
    // thinking cannot be turned off.
    m("gemini-3-flash-preview", Kind::Text, GEMINI_3),
    m("gemini-3.1-pro-preview", Kind::Text, GEMINI_3),
    m("gemini-3.1-flash-lite-preview", Kind::Text, GEMINI_3),
    m("gemini-3.5-flash", Kind::Text, GEMINI_3),
    m("gemini-3.5-flash-lite", Kind::Text, GEMINI_3),
    m("gemini-3.8-flash", Kind::Text, GEMINI_3),
    m("gemini-2.5-flash-preview-tts", Kind::Tts, Think::No),
    m("gemini-2.5-pro-preview-tts", Kind::Tts, Think::No),
    m("gemini-3.1-flash-tts-preview", Kind::Tts, Think::No),
    m("gemini-3.8-flash-tts", Kind::Tts, Think::No),
    m("gemini-3.8-flash-lite-tts", Kind::Tts, Think::No),
    // Shut down: 2.5 Flash and Pro on 2026-12-01, 2.0 Flash on 2026-06-01, 3 Pro Preview on
    // 2026-03-09 (Gemini's deprecations page).
    m("gemini-2.5-flash", Kind::Retired, FLASH),
    m("gemini-2.5-pro", Kind::Retired, GEMINI_PRO),
    m("gemini-3-pro-preview", Kind::Retired, GEMINI_PRO),
    m("gemini-2.0-flash", Kind::Retired, Think::No),
    m("gemini-2.0-flash-001", Kind::Retired, Think::No),
    m("gemini-2.0-flash-lite", Kind::Retired, Think::No),
    m(
        "gemini-2.5-flash-native-audio-preview-09-2025",
        Kind::Live,
        Think::No,
    ),
    m("gemini-live-2.5-flash-preview", Kind::Live, Think::No),
    m("gemini-2.0-flash-live-001", Kind::Live, Think::No),
    m("gemini-1.5-flash", Kind::Retired, Think::No),
    m("gemini-1.5-flash-8b", Kind::Retired, Think::No),
    m("gemini-1.5-pro", Kind::Retired, Think::No),
    m("gemini-1.0-pro", Kind::Retired, Think::No),
    m("gemini-pro", Kind::Retired, Think::No),
];

/// The least `max_output_tokens` the Responses API accepts (a 400 below it).
pub const RESPONSES_MIN_OUTPUT_TOKENS: u64 = 16;

/// Every model `service` knows, current or not.
pub fn models(service: Service) -> &'static [Model] {
    match service {
        Service::OpenAi => OPENAI,
        Service::Hyperbolic => HYPERBOLIC,
        Service::Anthropic => ANTHROPIC,
        Service::Gemini => GEMINI,
        // LM Studio serves whatever the user loaded, a third party what its config
        // declares; Wolfram has no models.
        Service::LmStudio | Service::OpenAiCompatible | Service::Wolfram => &[],
    }
}

/// `model` as `service` knows it. LM Studio answers any name with the one model it has
/// loaded (the one its listener was set up with), as LM Studio does with one model loaded;
/// a third-party service the catalog does not list serves the model its config declares
/// (`loaded`), and no other.
pub fn find(service: Service, model: &str, loaded: &str) -> Option<Model> {
    let served = Model {
        id: "loaded",
        kind: Kind::Text,
        think: Think::No,
    };
    match service {
        Service::LmStudio => Some(served),
        Service::OpenAiCompatible => (model == loaded).then_some(served),
        _ => models(service).iter().find(|m| m.id == model).copied(),
    }
}

/// `model` as the config may judge it: only where the catalog is the whole family list
/// (OpenAI, Anthropic, Gemini). Hyperbolic's list is partial and LM Studio serves what the
/// user loaded, so there, as for a model not listed, the live service is the judge.
pub fn rules(service: Service, model: &str) -> Option<Model> {
    match service {
        Service::OpenAi | Service::Anthropic | Service::Gemini => {
            models(service).iter().find(|m| m.id == model).copied()
        }
        Service::Hyperbolic | Service::LmStudio | Service::OpenAiCompatible | Service::Wolfram => {
            None
        }
    }
}

/// The effort a model uses when none is sent; `None` for a model that does not reason.
pub fn default_effort(think: Think) -> Option<Effort> {
    match think {
        Think::Effort { default, .. } => Some(default),
        Think::No | Think::Budget { .. } => None,
    }
}

/// Models a listing endpoint shows: the current ones.
pub fn listed(service: Service) -> impl Iterator<Item = &'static Model> {
    models(service).iter().filter(|m| m.kind != Kind::Retired)
}

/// Reasoning tokens an OpenAI model spends at `effort` on a short game question.
pub fn reasoning_tokens(effort: Effort) -> u64 {
    match effort {
        Effort::None => 0,
        Effort::Minimal => 0,
        Effort::Low => 128,
        Effort::Medium => 384,
        Effort::High => 1_024,
    }
}

/// Thinking tokens a Gemini model spends with `budget` (`None`: not sent; -1: dynamic).
pub fn thinking_tokens(think: Think, budget: Option<i64>) -> u64 {
    let Think::Budget {
        dynamic,
        off_by_default,
        ..
    } = think
    else {
        return 0;
    };
    match budget {
        None if off_by_default => 0,
        None | Some(-1) => dynamic,
        Some(b) => dynamic.min(b.max(0) as u64),
    }
}

/// Why a Gemini thinking budget is refused, in the service's words.
pub fn check_budget(think: Think, budget: i64, model: &str) -> Result<(), String> {
    match think {
        Think::No => Err(format!(
            "Thinking is not supported by this model: models/{model}."
        )),
        Think::Budget { .. } if budget == -1 => Ok(()),
        Think::Budget { can_off: false, .. } if budget == 0 => {
            Err("Budget 0 is invalid. This model only works in thinking mode.".to_string())
        }
        Think::Budget { can_off: true, .. } if budget == 0 => Ok(()),
        Think::Budget { min, max, .. } if (min..=max).contains(&budget) => Ok(()),
        Think::Budget { min, max, .. } => Err(format!(
            "The thinking budget {budget} is invalid. Please choose a value between {min} and {max}."
        )),
        Think::Effort { .. } => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_model_exists_for_its_protocol() {
        for id in SystemId::SEED {
            let d = id.defaults().unwrap();
            let service = Service::of(id, d.protocol, None);
            if matches!(service, Service::LmStudio | Service::Wolfram)
                || d.protocol == Protocol::Moe
            {
                continue;
            }
            let model = find(service, d.model, d.model)
                .unwrap_or_else(|| panic!("{id}: {} unknown", d.model));
            let want = if d.protocol == Protocol::GeminiTts {
                Kind::Tts
            } else {
                Kind::Text
            };
            assert_eq!(model.kind, want, "{id}: {}", d.model);
            if let (Some(b), Think::Budget { .. }) = (d.params.thinking_budget, model.think) {
                check_budget(model.think, b, d.model).unwrap();
            }
            if let (Some(e), Think::Effort { allowed, .. }) =
                (d.params.reasoning_effort, model.think)
            {
                assert!(allowed.contains(&e), "{id}: effort {e}");
            }
        }
    }

    #[test]
    fn budgets_follow_each_family() {
        assert!(
            check_budget(GEMINI_PRO, 0, "gemini-2.5-pro")
                .unwrap_err()
                .contains("only works in thinking mode")
        );
        assert!(check_budget(FLASH, 0, "gemini-2.5-flash").is_ok());
        assert!(check_budget(FLASH_LITE, 0, "gemini-2.5-flash-lite").is_ok());
        assert!(check_budget(FLASH_LITE, 100, "gemini-2.5-flash-lite").is_err());
        assert!(check_budget(FLASH, 30_000, "gemini-2.5-flash").is_err());
        assert_eq!(thinking_tokens(FLASH, Some(0)), 0);
        assert_eq!(thinking_tokens(FLASH, None), 320);
        assert_eq!(thinking_tokens(FLASH, Some(100)), 100);
        assert_eq!(thinking_tokens(FLASH_LITE, None), 0);
    }
}
