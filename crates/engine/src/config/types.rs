//! The engine's resolved configuration: every system present, every default filled in.
//! The sections without a rule across keys are read straight into these types (serde, with
//! the range of each key beside it); `resolve` reads the systems and checks the rest.

use super::de::{In, Upto};
use crate::systems::{ModelParams, Protocol, SystemId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// Where a system's requests go; written `"sandbox"` or as its URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BaseUrl {
    /// The embedded (or `sandbox`-subcommand) emulator; its address is known at start-up.
    Sandbox,
    /// A real service.
    Live(url::Url),
}

impl BaseUrl {
    pub fn is_sandbox(&self) -> bool {
        matches!(self, BaseUrl::Sandbox)
    }
}

impl Serialize for BaseUrl {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl std::fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BaseUrl::Sandbox => f.write_str("sandbox"),
            BaseUrl::Live(u) => f.write_str(u.as_str().trim_end_matches('/')),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct SystemConfig {
    pub enabled: bool,
    pub protocol: Protocol,
    pub base_url: BaseUrl,
    pub model: String,
    /// Name of the environment variable holding the key; `None` (written `""`): the
    /// system needs no key.
    #[serde(serialize_with = "none_as_empty")]
    pub api_key_env: Option<String>,
    pub timeout_ms: u64,
    pub connect_timeout_ms: u64,
    /// Most connections this system may hold at once.
    pub pool_max: u32,
    /// Most connections to one host (also the idle connections kept per host).
    pub pool_max_per_host: u32,
    /// Retries of a request that failed with 429, 5xx or a broken connection.
    pub retries: u32,
    pub depends_on: Vec<SystemId>,
    /// Output cap, its field name, reasoning effort, thinking budget.
    #[serde(flatten)]
    pub params: ModelParams,
}

fn none_as_empty<S: serde::Serializer>(v: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(v.as_deref().unwrap_or(""))
}

impl SystemConfig {
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }
    /// Concurrent requests (and so connections) this system allows: it talks to one host.
    pub fn max_connections(&self) -> usize {
        self.pool_max.min(self.pool_max_per_host).max(1) as usize
    }

    /// The seed's settings for `id`, on the embedded sandbox; for a system a config brings,
    /// the same limits with no protocol or model of its own yet (the file must give them).
    pub fn default_for(id: SystemId) -> SystemConfig {
        let Some(d) = id.defaults() else {
            return SystemConfig {
                protocol: Protocol::OpenaiChat,
                model: String::new(),
                api_key_env: None,
                depends_on: Vec::new(),
                params: ModelParams {
                    max_output_tokens: 256,
                    token_field: crate::systems::TokenField::MaxTokens,
                    reasoning_effort: None,
                    thinking_budget: None,
                },
                ..SystemConfig::default_for(SystemId::CLAUDE_CLIENT)
            };
        };
        SystemConfig {
            enabled: true,
            protocol: d.protocol,
            base_url: BaseUrl::Sandbox,
            model: d.model.to_string(),
            api_key_env: d.api_key_env.map(str::to_string),
            timeout_ms: 30_000,
            connect_timeout_ms: 10_000,
            pool_max: 10,
            pool_max_per_host: 5,
            retries: 2,
            depends_on: d.depends_on.to_vec(),
            params: d.params,
        }
    }

    /// The service behind it (`catalog::Service::of`).
    pub fn service(&self, id: SystemId) -> crate::systems::catalog::Service {
        let live = match &self.base_url {
            BaseUrl::Live(u) => Some(u),
            BaseUrl::Sandbox => None,
        };
        crate::systems::catalog::Service::of(id, self.protocol, live)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShutdownConfig {
    #[serde(deserialize_with = "In::<1, MAX_GRACE_MS>::de")]
    pub grace_ms: u64,
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        ShutdownConfig { grace_ms: 500 }
    }
}

/// The longest grace period (`shutdown.grace_ms`, `--grace-ms`): ten minutes.
pub const MAX_GRACE_MS: u64 = 600_000;

/// How long a call may take, and when a failing system sits out (`[resilience]`,
/// ARCHITECTURE.md "Deadlines and breakers").
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ResilienceConfig {
    /// A call may take this many times the system's recent p99 latency (at least 1)...
    #[serde(deserialize_with = "Upto::<100>::de")]
    pub deadline_multiplier: f64,
    /// ...but never less than this...
    #[serde(deserialize_with = "In::<1, 600_000>::de")]
    pub deadline_floor_ms: u64,
    /// ...nor more than this.
    #[serde(deserialize_with = "In::<1, 3_600_000>::de")]
    pub deadline_ceiling_ms: u64,
    /// The deadline before a system has answered enough calls to have a p99; `None`: 1 s on
    /// the sandbox, the ceiling on a live service.
    #[serde(
        deserialize_with = "In::<1, 3_600_000>::some",
        skip_serializing_if = "Option::is_none"
    )]
    pub deadline_initial_ms: Option<u64>,
    /// A stream that sends nothing for this long is cut (what it said is used).
    #[serde(deserialize_with = "In::<1, 600_000>::de")]
    pub stream_idle_ms: u64,
    /// Failures in a row that open a system's breaker (a call past its deadline opens it
    /// at once).
    #[serde(deserialize_with = "In::<1, 100>::de")]
    pub breaker_failures: u32,
    /// How long an open breaker waits before its first probe; each failed probe doubles it.
    #[serde(deserialize_with = "In::<1, 3_600_000>::de")]
    pub breaker_backoff_ms: u64,
    #[serde(deserialize_with = "In::<1, 86_400_000>::de")]
    pub breaker_backoff_max_ms: u64,
    /// The MoE vote closes this long after its first answer at the latest (or as soon as a
    /// majority of the live experts answered).
    #[serde(deserialize_with = "In::<0, 600_000>::de")]
    pub quorum_grace_ms: u64,
}

impl Default for ResilienceConfig {
    fn default() -> Self {
        ResilienceConfig {
            deadline_multiplier: 4.0,
            deadline_floor_ms: 1_000,
            deadline_ceiling_ms: 15_000,
            deadline_initial_ms: None,
            stream_idle_ms: 2_000,
            breaker_failures: 3,
            breaker_backoff_ms: 1_000,
            breaker_backoff_max_ms: 60_000,
            quorum_grace_ms: 250,
        }
    }
}

impl ResilienceConfig {
    /// The deadline before a system has a p99 of its own.
    /// `instant_sandbox`: the system is on a sandbox that answers at once; on the live
    /// clock (a real service, or the sandbox keeping one) a first call may take seconds.
    pub fn initial_deadline(&self, instant_sandbox: bool) -> std::time::Duration {
        let ms = self.deadline_initial_ms.unwrap_or(if instant_sandbox {
            1_000
        } else {
            self.deadline_ceiling_ms
        });
        std::time::Duration::from_millis(ms)
    }
}

/// What the engine reads of a config file: its systems, its shutdown, its deadlines and
/// breakers, its prices and spend limits. A program that adopts the engine adds its own
/// sections to the same file (see `Document::part`).
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    /// The file it came from; `None`: the built-in default.
    pub source: Option<PathBuf>,
    pub systems: BTreeMap<SystemId, SystemConfig>,
    pub shutdown: ShutdownConfig,
    pub resilience: ResilienceConfig,
    /// USD per million tokens, by model name (`[pricing]`).
    pub pricing: BTreeMap<String, Price>,
    /// Spend limits (`[budget]`, `--budget-usd`).
    pub budget: BudgetConfig,
}

/// A model's list price, USD per million tokens. Reasoning tokens are billed as output.
/// Each is at most 10 000 USD: dearer than any model sold today by far, a typo guard.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    #[serde(deserialize_with = "Upto::<10_000>::de")]
    pub input: f64,
    #[serde(deserialize_with = "Upto::<10_000>::de")]
    pub output: f64,
    /// Input read from the prompt cache; `None`: [`CACHE_READ_FACTOR`] of `input`.
    #[serde(
        default,
        deserialize_with = "Upto::<10_000>::some",
        skip_serializing_if = "Option::is_none"
    )]
    pub cached_input: Option<f64>,
}

/// What a cache read costs when `[pricing]` names no `cached_input`: 0.1x the input price,
/// Anthropic's cache-hit rate and OpenAI's cached-input price for the gpt-5.x models.
pub const CACHE_READ_FACTOR: f64 = 0.1;
/// Anthropic bills a cache write (the default 5-minute cache) at 1.25x the input price.
pub const CACHE_WRITE_FACTOR: f64 = 1.25;

impl Price {
    pub fn new(input: f64, output: f64) -> Price {
        Price {
            input,
            output,
            cached_input: None,
        }
    }

    /// What `u` costs: plain input, cache reads and cache writes each at their own rate.
    pub fn cost(&self, u: &crate::clients::Usage) -> f64 {
        let cached = u.cache_read.saturating_add(u.cache_write);
        let plain = u.input.saturating_sub(cached);
        let read = self.cached_input.unwrap_or(self.input * CACHE_READ_FACTOR);
        (plain as f64 * self.input
            + u.cache_read as f64 * read
            + u.cache_write as f64 * self.input * CACHE_WRITE_FACTOR
            + u.output as f64 * self.output)
            / 1e6
    }
}

/// The shipped prices of the default models, as published on the date in `config.toml`.
pub fn default_pricing() -> BTreeMap<String, Price> {
    [
        ("gpt-5.1", 1.25, 10.0),
        ("claude-sonnet-4-6", 3.0, 15.0),
        ("gemini-2.5-flash-lite", 0.1, 0.4),
        ("gemini-2.5-pro-preview-tts", 1.0, 20.0),
        // Runs on your own machine.
        ("microsoft/phi-4-mini-reasoning", 0.0, 0.0),
    ]
    .into_iter()
    .map(|(m, input, output)| (m.to_string(), Price::new(input, output)))
    .collect()
}

impl Default for Config {
    /// The seed's eleven systems on the embedded sandbox, with the seed's limits.
    fn default() -> Self {
        Config {
            source: None,
            systems: SystemId::SEED
                .into_iter()
                .map(|id| (id, SystemConfig::default_for(id)))
                .collect(),
            shutdown: ShutdownConfig::default(),
            budget: BudgetConfig::default(),
            resilience: ResilienceConfig::default(),
            pricing: default_pricing(),
        }
    }
}

impl Config {
    pub fn system(&self, id: SystemId) -> &SystemConfig {
        &self.systems[&id]
    }

    /// Each of `named` (a command line's systems, read before the config) must be one of
    /// the config's.
    pub fn check_names(&self, named: impl IntoIterator<Item = SystemId>) -> Result<(), String> {
        let known = self.ids();
        for id in named {
            if !known.contains(&id) {
                return Err(crate::systems::unknown_system(id.name(), &known));
            }
        }
        Ok(())
    }

    /// The config's systems, in its order (the dashboard's and the report's).
    pub fn ids(&self) -> Vec<SystemId> {
        self.systems.keys().copied().collect()
    }

    /// The price of `id`'s model, when the config knows it.
    pub fn price(&self, id: SystemId) -> Option<Price> {
        self.pricing.get(&self.system(id).model).copied()
    }

    /// "sandbox" when every enabled system is on the sandbox, "live" when none is, else "mixed".
    pub fn backend(&self) -> &'static str {
        let enabled: Vec<_> = self
            .systems
            .values()
            .filter(|s| s.enabled && s.protocol != Protocol::Moe)
            .collect();
        let on_sandbox = enabled.iter().filter(|s| s.base_url.is_sandbox()).count();
        if on_sandbox == enabled.len() {
            "sandbox"
        } else if on_sandbox == 0 {
            "live"
        } else {
            "mixed"
        }
    }

    pub fn needs_sandbox(&self) -> bool {
        self.systems
            .values()
            .any(|s| s.enabled && s.protocol != Protocol::Moe && s.base_url.is_sandbox())
    }
}

/// `[budget]`: every limit is optional; none set, nothing is checked. A limit is at most a
/// million USD (a typo guard).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct BudgetConfig {
    /// The session's limit (`--budget-usd`): reached, the session shuts down (reason `budget`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_usd: Option<f64>,
    /// The limit over any rolling hour: calls wait for the hour to roll.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_usd_per_hour: Option<f64>,
    /// Per system (`[budget.systems] NAME = USD`): reached, that system's calls stop.
    pub systems: BTreeMap<SystemId, f64>,
    /// With a limit set, a model without a price is refused unless this is true (its spend
    /// is then unknown, never counted as $0).
    pub allow_unpriced: bool,
}

impl BudgetConfig {
    pub fn is_set(&self) -> bool {
        self.max_usd.is_some() || self.max_usd_per_hour.is_some() || !self.systems.is_empty()
    }
}
