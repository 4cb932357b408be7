//! The engine's sections of a config file (`[systems.*]`, `[shutdown]`, `[resilience]`,
//! `[pricing]`, `[budget]`), read by serde into their types, then checked in one pass: the
//! rules a value has with other keys (pool sizes, a key over plain http, each model setting
//! and its protocol, what the services refuse, the dependency graph), each located.

use super::de::{Budget, In, Upto, fields_of};
use super::document::Document;
use super::source::{ConfigError, join_key};
use super::types::SystemConfig;
use super::types::{BaseUrl, BudgetConfig, Config, Price, ResilienceConfig, ShutdownConfig};
use crate::systems::catalog::{self, RESPONSES_MIN_OUTPUT_TOKENS, Service, Think};
use crate::systems::{Effort, Protocol, SystemId, TokenField};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::ops::Range;
use toml::Spanned;

type Result<T> = std::result::Result<T, ConfigError>;

/// The engine's part of the file, as written.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct File {
    shutdown: ShutdownConfig,
    resilience: ResilienceConfig,
    /// USD per million tokens, by model name; added to (or replacing) the shipped prices.
    pricing: BTreeMap<String, Price>,
    budget: BudgetFile,
    systems: BTreeMap<Spanned<String>, SystemFile>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct BudgetFile {
    #[serde(deserialize_with = "Upto::<1_000_000>::some")]
    max_usd: Option<f64>,
    #[serde(deserialize_with = "Upto::<1_000_000>::some")]
    max_usd_per_hour: Option<f64>,
    allow_unpriced: bool,
    systems: BTreeMap<Spanned<String>, Upto<1_000_000>>,
}

/// One `[systems.NAME]` table as written: what it does not give, the system's defaults give.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct SystemFile {
    enabled: Option<bool>,
    /// 1 to 64 bytes of printable text.
    display_name: Option<Spanned<String>>,
    protocol: Option<Spanned<String>>,
    /// `"sandbox"` or an absolute http(s) URL.
    base_url: Option<Spanned<String>>,
    model: Option<Spanned<String>>,
    /// An environment variable's name; `""`: no key.
    api_key_env: Option<Spanned<String>>,
    #[serde(default, deserialize_with = "In::<1, 3_600_000>::some")]
    timeout_ms: Option<u64>,
    #[serde(default, deserialize_with = "In::<1, 600_000>::some")]
    connect_timeout_ms: Option<u64>,
    pool_max: Option<Spanned<In<1, 1_000>>>,
    pool_max_per_host: Option<Spanned<In<1, 1_000>>>,
    #[serde(default, deserialize_with = "In::<0, 10>::some")]
    retries: Option<u32>,
    /// Replaces the default list.
    depends_on: Option<Spanned<Vec<Spanned<String>>>>,
    max_output_tokens: Option<Spanned<In<1, 1_000_000>>>,
    token_field: Option<Spanned<String>>,
    /// `""`: the model's default.
    reasoning_effort: Option<Spanned<String>>,
    thinking_budget: Option<Spanned<Budget>>,
}

/// Where each cross-checked value of one system was given, for locating errors (here, and
/// in the rules of the program that adopts the engine, such as the game's roles).
#[derive(Debug, Clone, Default)]
pub struct Given {
    /// Where the system's own table names it (`[systems.NAME]`).
    pub header: Option<Range<usize>>,
    pub base_url: Option<Range<usize>>,
    pub pool_max: Option<Range<usize>>,
    pub pool_max_per_host: Option<Range<usize>>,
    /// The file's `depends_on` entries (they replace the default list), with their spans.
    pub depends_on: Option<Vec<(SystemId, Range<usize>)>>,
    pub protocol: Option<Range<usize>>,
    pub model: Option<Range<usize>>,
    pub max_output_tokens: Option<Range<usize>>,
    pub token_field: Option<Range<usize>>,
    pub reasoning_effort: Option<Range<usize>>,
    pub thinking_budget: Option<Range<usize>>,
}

/// The engine's part of a file, resolved, with where each system's keys were written.
pub struct Resolved {
    pub config: Config,
    pub given: BTreeMap<SystemId, Given>,
}

/// Edges a file made besides its `depends_on` lists (a vote that follows its experts): from
/// one system to each of these, blamed on `key` at each span.
pub struct Derived {
    pub from: SystemId,
    pub to: Vec<(SystemId, Range<usize>)>,
    pub key: String,
}

impl Config {
    /// The top-level sections the engine reads.
    pub fn sections() -> &'static [&'static str] {
        fields_of::<File>()
    }

    /// The engine's sections of `doc`, over the defaults, each key checked. The file's new
    /// systems are registered first, so any name may be used before its table. The
    /// dependency graph is checked by [`Resolved::check_graph`], once the adopting program
    /// has added its edges.
    pub fn from_document(doc: &Document) -> Result<Resolved> {
        let file: File = doc.part()?;
        let mut cfg = Config::default();
        let mut tables: Vec<(Spanned<String>, SystemFile)> = file.systems.into_iter().collect();
        tables.sort_by_key(|(name, _)| name.span().start);
        let mut known = SystemId::SEED.to_vec();
        for (name, _) in &tables {
            if SystemId::from_name(name.get_ref()).is_some_and(SystemId::is_seed) {
                continue;
            }
            let key = join_key("systems", name.get_ref());
            let id = SystemId::intern(name.get_ref()).map_err(|m| doc.err(name.span(), &key, m))?;
            known.push(id);
        }
        let mut given = BTreeMap::new();
        for (name, table) in tables {
            let id = system(doc, &name, "systems", &known)?;
            let key = join_key("systems", name.get_ref());
            let sys = cfg
                .systems
                .entry(id)
                .or_insert_with(|| SystemConfig::default_for(id));
            let g = merge(doc, id, sys, table, &key, &known, name.span())?;
            check_system(doc, id, sys, &g, &key)?;
            given.insert(id, g);
        }
        cfg.shutdown = file.shutdown;
        check_resilience(doc, &file.resilience)?;
        cfg.resilience = file.resilience;
        cfg.pricing.extend(file.pricing);
        let b = file.budget;
        let mut systems = BTreeMap::new();
        for (name, usd) in b.systems {
            systems.insert(system(doc, &name, "budget.systems", &known)?, usd.0);
        }
        cfg.budget = BudgetConfig {
            max_usd: b.max_usd,
            max_usd_per_hour: b.max_usd_per_hour,
            systems,
            allow_unpriced: b.allow_unpriced,
        };
        Ok(Resolved { config: cfg, given })
    }
}

/// A name the file uses for a system (a table, a limit, a role, a fault): one of `known`,
/// located at the name, about `prefix.name` when the name is a key.
pub fn system(
    doc: &Document,
    name: &Spanned<String>,
    prefix: &str,
    known: &[SystemId],
) -> Result<SystemId> {
    SystemId::parse_among(name.get_ref(), known)
        .map_err(|e| doc.err(name.span(), &join_key(prefix, name.get_ref()), e))
}

/// A name written as a value (a dependency, a role): one of `known`, about `key`.
pub fn system_value(
    doc: &Document,
    name: &Spanned<String>,
    key: &str,
    known: &[SystemId],
) -> Result<SystemId> {
    SystemId::parse_among(name.get_ref(), known).map_err(|e| doc.err(name.span(), key, e))
}

fn check_resilience(doc: &Document, r: &ResilienceConfig) -> Result<()> {
    let at = |name: &str| {
        let span = doc.span_of(&["resilience", name]).unwrap_or(0..0);
        (span, join_key("resilience", name))
    };
    if r.deadline_multiplier < 1.0 {
        let (span, key) = at("deadline_multiplier");
        return Err(doc.err(
            span,
            &key,
            "must be at least 1 (a call gets at least its p99)",
        ));
    }
    // Blame the upper value if it was given, else the lower one (the defaults agree).
    let pairs = [
        (
            "deadline_ceiling_ms",
            r.deadline_ceiling_ms,
            "deadline_floor_ms",
            r.deadline_floor_ms,
        ),
        (
            "breaker_backoff_max_ms",
            r.breaker_backoff_max_ms,
            "breaker_backoff_ms",
            r.breaker_backoff_ms,
        ),
    ];
    for (hi, hi_v, lo, lo_v) in pairs {
        if hi_v < lo_v {
            let name = if doc.span_of(&["resilience", hi]).is_some() {
                hi
            } else {
                lo
            };
            let (span, key) = at(name);
            return Err(doc.err(
                span,
                &key,
                format!("{hi} ({hi_v}) must not be below {lo} ({lo_v})"),
            ));
        }
    }
    Ok(())
}

/// The file's table over the system's defaults; each value checked on its own.
fn merge(
    doc: &Document,
    id: SystemId,
    sys: &mut SystemConfig,
    t: SystemFile,
    prefix: &str,
    known: &[SystemId],
    header: Range<usize>,
) -> Result<Given> {
    let key = |name: &str| join_key(prefix, name);
    let mut g = Given {
        header: Some(header),
        ..Given::default()
    };
    if let Some(v) = t.enabled {
        sys.enabled = v;
    }
    if let Some(d) = t.display_name {
        let text = d.get_ref().trim();
        if text.is_empty() || text.len() > 64 || text.chars().any(char::is_control) {
            let msg = "must be 1 to 64 bytes of printable text";
            return Err(doc.err(d.span(), &key("display_name"), msg));
        }
        id.set_display_name(text);
    }
    if let Some(p) = t.protocol {
        sys.protocol = Protocol::from_name(p.get_ref()).ok_or_else(|| {
            let names = <Protocol as strum::VariantNames>::VARIANTS;
            let msg = format!(
                "unknown protocol {:?} (expected one of: {})",
                p.get_ref(),
                names.join(", ")
            );
            doc.err(p.span(), &key("protocol"), msg)
        })?;
        g.protocol = Some(p.span());
    }
    if let Some(u) = t.base_url {
        sys.base_url =
            parse_base_url(u.get_ref()).map_err(|e| doc.err(u.span(), &key("base_url"), e))?;
        g.base_url = Some(u.span());
    }
    if let Some(m) = t.model {
        if m.get_ref().trim().is_empty() {
            return Err(doc.err(m.span(), &key("model"), "must not be empty"));
        }
        g.model = Some(m.span());
        sys.model = m.into_inner();
    }
    if let Some(e) = t.api_key_env {
        sys.api_key_env =
            env_name(e.get_ref()).map_err(|m| doc.err(e.span(), &key("api_key_env"), m))?;
    }
    sys.timeout_ms = t.timeout_ms.unwrap_or(sys.timeout_ms);
    sys.connect_timeout_ms = t.connect_timeout_ms.unwrap_or(sys.connect_timeout_ms);
    sys.retries = t.retries.unwrap_or(sys.retries);
    // Ranges fit u32, so the casts cannot truncate.
    if let Some(n) = t.pool_max {
        g.pool_max = Some(n.span());
        sys.pool_max = n.get_ref().0 as u32;
    }
    if let Some(n) = t.pool_max_per_host {
        g.pool_max_per_host = Some(n.span());
        sys.pool_max_per_host = n.get_ref().0 as u32;
    }
    if let Some(n) = t.max_output_tokens {
        g.max_output_tokens = Some(n.span());
        sys.params.max_output_tokens = n.get_ref().0 as u32;
    }
    if let Some(deps) = t.depends_on {
        let deps = depends_on(doc, id, deps.into_inner(), &key("depends_on"), known)?;
        sys.depends_on = deps.iter().map(|(d, _)| *d).collect();
        g.depends_on = Some(deps);
    }
    if let Some(f) = t.token_field {
        sys.params.token_field = TokenField::from_name(f.get_ref()).ok_or_else(|| {
            let msg = format!(
                "unknown token field {:?} (expected max_completion_tokens or max_tokens)",
                f.get_ref()
            );
            doc.err(f.span(), &key("token_field"), msg)
        })?;
        g.token_field = Some(f.span());
    }
    if let Some(e) = t.reasoning_effort {
        sys.params.reasoning_effort = match e.get_ref().as_str() {
            "" => None,
            s => Some(Effort::from_name(s).ok_or_else(|| {
                let names = <Effort as strum::VariantNames>::VARIANTS;
                let msg = format!(
                    "unknown effort {s:?} (expected one of: {}; \"\" for the model's default)",
                    names.join(", ")
                );
                doc.err(e.span(), &key("reasoning_effort"), msg)
            })?),
        };
        g.reasoning_effort = Some(e.span());
    }
    if let Some(b) = t.thinking_budget {
        sys.params.thinking_budget = Some(b.get_ref().0);
        g.thinking_budget = Some(b.span());
    }
    Ok(g)
}

fn depends_on(
    doc: &Document,
    id: SystemId,
    items: Vec<Spanned<String>>,
    key: &str,
    known: &[SystemId],
) -> Result<Vec<(SystemId, Range<usize>)>> {
    let mut out: Vec<(SystemId, Range<usize>)> = Vec::new();
    for item in items {
        let dep = system_value(doc, &item, key, known)?;
        if dep == id {
            let msg = format!("dependency cycle: {id} depends on itself");
            return Err(doc.err(item.span(), key, msg));
        }
        if out.iter().any(|(d, _)| *d == dep) {
            return Err(doc.err(item.span(), key, format!("{dep} is listed twice")));
        }
        out.push((dep, item.span()));
    }
    Ok(out)
}

fn env_name(s: &str) -> std::result::Result<Option<String>, String> {
    if s.is_empty() {
        return Ok(None);
    }
    let mut chars = s.chars();
    let ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !ok {
        return Err(format!(
            "{s:?} is not an environment variable name ([A-Za-z_][A-Za-z0-9_]*; \"\" for no key)"
        ));
    }
    Ok(Some(s.to_string()))
}

/// The rules between one system's keys, after its table is merged.
fn check_system(
    doc: &Document,
    id: SystemId,
    sys: &mut SystemConfig,
    g: &Given,
    prefix: &str,
) -> Result<()> {
    check_new(doc, id, sys, g, prefix)?;
    check_params(doc, id, sys, g, prefix)?;
    if sys.pool_max_per_host > sys.pool_max {
        let msg = format!(
            "pool_max_per_host ({}) must not exceed pool_max ({})",
            sys.pool_max_per_host, sys.pool_max
        );
        // Blame the per-host value if it was given, else the pool_max that undercut it
        // (one of them was: the defaults are consistent).
        let (name, span) = match (&g.pool_max_per_host, &g.pool_max) {
            (Some(span), _) => ("pool_max_per_host", span.clone()),
            (None, span) => ("pool_max", span.clone().unwrap_or_default()),
        };
        return Err(doc.err(span, &join_key(prefix, name), msg));
    }
    if let (BaseUrl::Live(u), Some(env), Some(span)) =
        (&sys.base_url, &sys.api_key_env, &g.base_url)
    {
        if u.scheme() == "http" && !is_loopback(u) {
            return Err(doc.err(
                span.clone(),
                &join_key(prefix, "base_url"),
                format!(
                    "plain http:// to non-loopback host {:?} would send the key in clear text (${env}); \
                     use https://, or set api_key_env = \"\" if the service needs no key",
                    u.host_str().unwrap_or("")
                ),
            ));
        }
    }
    Ok(())
}

/// Each model setting belongs to the protocols that send it: given for another, it is
/// an error (it would be ignored); left at a default that does not apply, it is dropped.
fn check_params(
    doc: &Document,
    id: SystemId,
    sys: &mut SystemConfig,
    g: &Given,
    prefix: &str,
) -> Result<()> {
    let p = sys.protocol;
    let uses_effort = matches!(p, Protocol::OpenaiChat | Protocol::OpenaiResponses);
    let uses_thinking = matches!(p, Protocol::GeminiGenerate | Protocol::GeminiStream);
    let wrong = |span: &Range<usize>, name: &str, who: &str| {
        doc.err(
            span.clone(),
            &join_key(prefix, name),
            format!(
                "{name} applies only to {who}, not to protocol {:?}",
                p.name()
            ),
        )
    };
    if let (Some(span), false) = (&g.token_field, p == Protocol::OpenaiChat) {
        return Err(wrong(
            span,
            "token_field",
            "protocol \"openai_chat\" (the others have one fixed name)",
        ));
    }
    if let (Some(span), false, Some(_)) = (
        &g.reasoning_effort,
        uses_effort,
        sys.params.reasoning_effort,
    ) {
        return Err(wrong(
            span,
            "reasoning_effort",
            "protocols \"openai_chat\" and \"openai_responses\"",
        ));
    }
    if let (Some(span), false) = (&g.thinking_budget, uses_thinking) {
        return Err(wrong(
            span,
            "thinking_budget",
            "protocols \"gemini_generate\" and \"gemini_stream\"",
        ));
    }
    // The defaults follow the model: another model than the system's own keeps none of
    // the effort or budget tuned for that one (gpt-5.1's "none" is refused by gpt-4.1),
    // but takes its family's default; a model the catalog does not judge gets none sent.
    let known = catalog::rules(sys.service(id), &sys.model);
    if id.defaults().is_none_or(|d| sys.model != d.model) {
        if g.reasoning_effort.is_none() {
            sys.params.reasoning_effort = known.and_then(|m| catalog::default_effort(m.think));
        }
        if g.thinking_budget.is_none() {
            sys.params.thinking_budget = None;
        }
    }
    if !uses_effort {
        sys.params.reasoning_effort = None;
    }
    if !uses_thinking {
        sys.params.thinking_budget = None;
    }
    check_model(doc, sys, g, prefix, known)
}

/// What the services are known to refuse, judged before any request is sent: the
/// Responses API's least output cap, and the efforts and thinking budgets the catalog
/// says the model takes.
fn check_model(
    doc: &Document,
    sys: &SystemConfig,
    g: &Given,
    prefix: &str,
    known: Option<catalog::Model>,
) -> Result<()> {
    // The value itself when the file gave it, else what made the default apply (the
    // shipped defaults pass these checks, so one of them was given).
    let blame = |name: &str, own: &Option<Range<usize>>, msg: String| {
        let (name, span) = match (own, &g.model, &g.protocol) {
            (Some(s), _, _) => (name, s.clone()),
            (None, Some(s), _) => ("model", s.clone()),
            (None, None, Some(s)) => ("protocol", s.clone()),
            (None, None, None) => (name, 0..0),
        };
        doc.err(span, &join_key(prefix, name), msg)
    };
    let p = &sys.params;
    let model = &sys.model;
    if sys.protocol == Protocol::OpenaiResponses
        && u64::from(p.max_output_tokens) < RESPONSES_MIN_OUTPUT_TOKENS
    {
        return Err(blame(
            "max_output_tokens",
            &g.max_output_tokens,
            format!(
                "{} is below {RESPONSES_MIN_OUTPUT_TOKENS}, the least the Responses API accepts (protocol \"openai_responses\")",
                p.max_output_tokens
            ),
        ));
    }
    let Some(m) = known else {
        return Ok(());
    };
    match (p.reasoning_effort, m.think) {
        (Some(e), Think::No) => {
            return Err(blame(
                "reasoning_effort",
                &g.reasoning_effort,
                format!(
                    "{model:?} does not reason and refuses any reasoning effort (found {:?}); remove the key or set \"\"",
                    e.name()
                ),
            ));
        }
        (Some(e), Think::Effort { default, allowed }) if !allowed.contains(&e) => {
            let names: Vec<&str> = allowed.iter().map(|e| e.name()).collect();
            return Err(blame(
                "reasoning_effort",
                &g.reasoning_effort,
                format!(
                    "{model:?} does not take effort {:?} (it takes {}; \"\" for its default, {})",
                    e.name(),
                    names.join(", "),
                    default.name()
                ),
            ));
        }
        _ => {}
    }
    if let Some(b) = p.thinking_budget {
        catalog::check_budget(m.think, b, model).map_err(|msg| {
            blame(
                "thinking_budget",
                &g.thinking_budget,
                format!("{model:?} refuses thinking_budget = {b}: {msg}"),
            )
        })?;
    }
    Ok(())
}

/// A system the seed does not have gives what the catalog would: its protocol, and its
/// model (but Wolfram's and the vote's, which have one use). Its output cap's field
/// follows its service: OpenAI's name for OpenAI, the one third parties document else.
fn check_new(
    doc: &Document,
    id: SystemId,
    sys: &mut SystemConfig,
    g: &Given,
    prefix: &str,
) -> Result<()> {
    if id.is_seed() {
        return Ok(());
    }
    let at = g.header.clone().unwrap_or_default();
    if g.protocol.is_none() {
        let defaults: Vec<&str> = SystemId::SEED.iter().map(|id| id.name()).collect();
        let protocols = <Protocol as strum::VariantNames>::VARIANTS;
        return Err(doc.err(
            at,
            prefix,
            format!(
                "unknown system {:?}: a new system (not one of {}) needs a protocol: missing key protocol (one of: {})",
                id.name(),
                defaults.join(", "),
                protocols.join(", ")
            ),
        ));
    }
    if g.model.is_none() {
        match sys.protocol {
            Protocol::WolframLlm => sys.model = "llm-api".into(),
            Protocol::Moe => sys.model = "vote".into(),
            p => {
                return Err(doc.err(
                    at,
                    prefix,
                    format!(
                        "a new system needs a model: missing key model (the name its service knows, for protocol {:?})",
                        p.name()
                    ),
                ));
            }
        }
    }
    if g.token_field.is_none() && sys.service(id) == Service::OpenAi {
        sys.params.token_field = TokenField::MaxCompletionTokens;
    }
    Ok(())
}

/// `"sandbox"`, or an absolute http(s) URL with a host, its trailing slash stripped.
fn parse_base_url(s: &str) -> std::result::Result<BaseUrl, String> {
    if s == "sandbox" {
        return Ok(BaseUrl::Sandbox);
    }
    let expected = "expected \"sandbox\" or an absolute http(s) URL";
    let mut u = url::Url::parse(s).map_err(|e| format!("invalid URL {s:?}: {e} ({expected})"))?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err(format!(
            "unsupported scheme {:?} in {s:?} ({expected})",
            u.scheme()
        ));
    }
    if u.host_str().is_none_or(str::is_empty) {
        return Err(format!("{s:?} has no host ({expected})"));
    }
    // Secrets belong in the environment (api_key_env), where they are never printed.
    if !u.username().is_empty() || u.password().is_some() {
        return Err(
            "the URL must not carry credentials; name the key's variable in api_key_env".into(),
        );
    }
    if u.query().is_some() || u.fragment().is_some() {
        return Err(format!(
            "{s:?} must not have a query or fragment (request paths are appended to it)"
        ));
    }
    let path = u.path().trim_end_matches('/').to_string();
    u.set_path(&path);
    Ok(BaseUrl::Live(u))
}

/// 127.0.0.0/8, ::1 (also as IPv4-mapped) and `localhost` never leave the machine.
fn is_loopback(u: &url::Url) -> bool {
    match u.host() {
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => {
            a.is_loopback() || a.to_ipv4_mapped().is_some_and(|a| a.is_loopback())
        }
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// The dependency graph must be acyclic. The defaults are, so a cycle needs an edge from the
/// file (a `depends_on`, or an expert the file named, which the vote depends on): add those
/// in file order over the untouched defaults and blame the first that closes one.
impl Resolved {
    /// The dependency graph, with `derived`'s edges, must be acyclic.
    pub fn check_graph(&self, doc: &Document, derived: Option<&Derived>) -> Result<()> {
        check_graph(doc, &self.config, &self.given, derived)
    }
}

fn check_graph(
    doc: &Document,
    cfg: &Config,
    given: &BTreeMap<SystemId, Given>,
    derived: Option<&Derived>,
) -> Result<()> {
    let mut graph: BTreeMap<SystemId, Vec<SystemId>> = cfg
        .systems
        .iter()
        .map(|(id, s)| {
            let from_file = given.get(id).is_some_and(|g| g.depends_on.is_some())
                || derived.is_some_and(|d| d.from == *id);
            (
                *id,
                if from_file {
                    Vec::new()
                } else {
                    s.depends_on.clone()
                },
            )
        })
        .collect();
    let mut edges: Vec<(SystemId, SystemId, &Range<usize>, String)> = given
        .iter()
        .flat_map(|(id, g)| {
            g.depends_on.iter().flatten().map(move |(d, span)| {
                let key = join_key(&join_key("systems", id.name()), "depends_on");
                (*id, *d, span, key)
            })
        })
        .collect();
    if let Some(d) = derived {
        for (to, span) in &d.to {
            edges.push((d.from, *to, span, d.key.clone()));
        }
    }
    edges.sort_by_key(|(_, _, span, _)| span.start);
    for (from, to, span, key) in edges {
        if let Some(path) = path_between(&graph, to, from) {
            let cycle: Vec<&str> = std::iter::once(from)
                .chain(path)
                .map(SystemId::name)
                .collect();
            return Err(doc.err(
                span.clone(),
                &key,
                format!("dependency cycle: {}", cycle.join(" -> ")),
            ));
        }
        graph.entry(from).or_default().push(to);
    }
    Ok(())
}

/// A path `from -> ... -> to` (both included), depth first.
fn path_between(
    graph: &BTreeMap<SystemId, Vec<SystemId>>,
    from: SystemId,
    to: SystemId,
) -> Option<Vec<SystemId>> {
    fn go(
        g: &BTreeMap<SystemId, Vec<SystemId>>,
        at: SystemId,
        to: SystemId,
        seen: &mut Vec<SystemId>,
        path: &mut Vec<SystemId>,
    ) -> bool {
        path.push(at);
        if at == to {
            return true;
        }
        if !seen.contains(&at) {
            seen.push(at);
            for &next in g.get(&at).into_iter().flatten() {
                if go(g, next, to, seen, path) {
                    return true;
                }
            }
        }
        path.pop();
        false
    }
    let mut path = Vec::new();
    go(graph, from, to, &mut Vec::new(), &mut path).then_some(path)
}
