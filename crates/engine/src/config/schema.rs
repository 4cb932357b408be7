//! The file's schema: walks the parsed (spanned) TOML tree over the defaults, checking every
//! key, type and range, then the cross-key rules (pool sizes, key over http, dependency graph).

use super::fault::Fault;
use super::source::{ConfigError, Src, join_key};
use super::types::{BaseUrl, Config, Mode, Price, SystemConfig};
use crate::systems::catalog::{self, RESPONSES_MIN_OUTPUT_TOKENS, Service, Think};
use crate::systems::{Effort, MAX_THINKING_BUDGET, Protocol, SystemId, TokenField};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::ops::Range;
use toml::Spanned;
use toml::de::{DeString, DeTable, DeValue};

mod roles;

type Val<'i> = Spanned<DeValue<'i>>;
type Result<T> = std::result::Result<T, ConfigError>;

const ROOT: &[&str] = &[
    "shutdown",
    "gameplay",
    "ui",
    "audio",
    "sandbox",
    "metrics",
    "serve",
    "fleet",
    "resilience",
    "pricing",
    "budget",
    "systems",
];
const RESILIENCE: &[&str] = &[
    "deadline_multiplier",
    "deadline_floor_ms",
    "deadline_ceiling_ms",
    "deadline_initial_ms",
    "stream_idle_ms",
    "breaker_failures",
    "breaker_backoff_ms",
    "breaker_backoff_max_ms",
    "quorum_grace_ms",
];
const PRICE: &[&str] = &["input", "output", "cached_input"];
/// Dearer than any model sold today by far: a typo guard, not a market forecast.
const MAX_PRICE: f64 = 10_000.0;
const SHUTDOWN: &[&str] = &["grace_ms"];
const BUDGET: &[&str] = &["max_usd", "max_usd_per_hour", "allow_unpriced", "systems"];
/// A million dollars: a typo guard.
const MAX_BUDGET: f64 = 1_000_000.0;
const GAMEPLAY: &[&str] = &["mode", "cycles", "seed", "cycle_delay_ms", "roles"];
const UI: &[&str] = &["refresh_ms", "shutdown_step_ms", "linger_s"];
const AUDIO: &[&str] = &["enabled"];
const METRICS: &[&str] = &["listen", "final_scrape_ms"];
const SERVE: &[&str] = &["listen"];
const SANDBOX: &[&str] = &["listen", "faults", "timing"];
const SYSTEM: &[&str] = &[
    "enabled",
    "display_name",
    "protocol",
    "base_url",
    "model",
    "api_key_env",
    "timeout_ms",
    "connect_timeout_ms",
    "pool_max",
    "pool_max_per_host",
    "retries",
    "depends_on",
    "max_output_tokens",
    "token_field",
    "reasoning_effort",
    "thinking_budget",
];

/// Where each cross-checked value of one system was given, for locating errors.
#[derive(Default)]
struct Given {
    /// Where the system's own table names it (`[systems.NAME]`).
    header: Option<Range<usize>>,
    base_url: Option<Range<usize>>,
    pool_max: Option<Range<usize>>,
    pool_max_per_host: Option<Range<usize>>,
    /// The file's `depends_on` entries (they replace the default list), with their spans.
    depends_on: Option<Vec<(SystemId, Range<usize>)>>,
    protocol: Option<Range<usize>>,
    model: Option<Range<usize>>,
    max_output_tokens: Option<Range<usize>>,
    token_field: Option<Range<usize>>,
    reasoning_effort: Option<Range<usize>>,
    thinking_budget: Option<Range<usize>>,
}

pub(super) fn build(src: &Src, root: &DeTable) -> Result<Config> {
    let mut cfg = Config::default();
    let mut given: BTreeMap<SystemId, Given> = BTreeMap::new();
    // Every name may be used before its table (a fault, a role, a dependency): the file's
    // systems are known before anything is read.
    let known = declared(src, root)?;
    let mut roles = None;
    for e in entries(root, "") {
        let (key, v) = (&e.key, e.v);
        match e.name {
            "shutdown" => {
                for e in src.table(v, key)? {
                    let (key, v) = (&e.key, e.v);
                    match e.name {
                        "grace_ms" => {
                            cfg.shutdown.grace_ms = src.int(v, key, 1, super::MAX_GRACE_MS)?
                        }
                        _ => return Err(src.unknown(&e, SHUTDOWN)),
                    }
                }
            }
            "gameplay" => {
                let g = &mut cfg.gameplay;
                for e in src.table(v, key)? {
                    let (key, v) = (&e.key, e.v);
                    match e.name {
                        "mode" => {
                            g.mode = src
                                .str(v, key)?
                                .parse::<Mode>()
                                .map_err(|e| src.at(v, key, e))?
                        }
                        "cycles" => g.cycles = src.int(v, key, 0, super::MAX_CYCLES)?,
                        "seed" => g.seed = src.int(v, key, 0, i64::MAX as u64)?,
                        "cycle_delay_ms" => g.cycle_delay_ms = src.int(v, key, 0, 60_000)?,
                        "roles" => roles = Some(src.roles(&e, &known)?),
                        _ => return Err(src.unknown(&e, GAMEPLAY)),
                    }
                }
            }
            "ui" => {
                let u = &mut cfg.ui;
                for e in src.table(v, key)? {
                    let (key, v) = (&e.key, e.v);
                    match e.name {
                        "refresh_ms" => u.refresh_ms = src.int(v, key, 16, 5_000)?,
                        "shutdown_step_ms" => u.shutdown_step_ms = src.int(v, key, 0, 5_000)?,
                        "linger_s" => u.linger_s = src.int(v, key, 0, 3_600)?,
                        _ => return Err(src.unknown(&e, UI)),
                    }
                }
            }
            "audio" => {
                for e in src.table(v, key)? {
                    let (key, v) = (&e.key, e.v);
                    match e.name {
                        "enabled" => cfg.audio.enabled = src.bool(v, key)?,
                        _ => return Err(src.unknown(&e, AUDIO)),
                    }
                }
            }
            "metrics" => {
                for e in src.table(v, key)? {
                    let (key, v) = (&e.key, e.v);
                    match e.name {
                        "listen" => cfg.metrics.listen = Some(src.socket_addr(v, key)?),
                        "final_scrape_ms" => {
                            cfg.metrics.final_scrape_ms = src.int(v, key, 0, 600_000)?
                        }
                        _ => return Err(src.unknown(&e, METRICS)),
                    }
                }
            }
            "serve" => {
                for e in src.table(v, key)? {
                    let (key, v) = (&e.key, e.v);
                    match e.name {
                        "listen" => cfg.serve.listen = Some(src.socket_addr(v, key)?),
                        _ => return Err(src.unknown(&e, SERVE)),
                    }
                }
            }
            "fleet" => {
                for e in src.table(v, key)? {
                    let (key, v) = (&e.key, e.v);
                    match e.name {
                        "agents" => cfg.fleet.agents = src.agent_urls(v, key)?,
                        _ => return Err(src.unknown(&e, &["agents"])),
                    }
                }
            }
            "resilience" => {
                let r = &mut cfg.resilience;
                let mut at = BTreeMap::new();
                for e in src.table(v, key)? {
                    let (key, v) = (&e.key, e.v);
                    match e.name {
                        "deadline_multiplier" => {
                            r.deadline_multiplier = src.non_negative(v, key, 100.0)?;
                            if r.deadline_multiplier < 1.0 {
                                return Err(src.at(
                                    v,
                                    key,
                                    "must be at least 1 (a call gets at least its p99)",
                                ));
                            }
                        }
                        "deadline_floor_ms" => r.deadline_floor_ms = src.int(v, key, 1, 600_000)?,
                        "deadline_ceiling_ms" => {
                            r.deadline_ceiling_ms = src.int(v, key, 1, 3_600_000)?
                        }
                        "deadline_initial_ms" => {
                            r.deadline_initial_ms = Some(src.int(v, key, 1, 3_600_000)?)
                        }
                        "stream_idle_ms" => r.stream_idle_ms = src.int(v, key, 1, 600_000)?,
                        "breaker_failures" => r.breaker_failures = src.int(v, key, 1, 100)? as u32,
                        "breaker_backoff_ms" => {
                            r.breaker_backoff_ms = src.int(v, key, 1, 3_600_000)?
                        }
                        "breaker_backoff_max_ms" => {
                            r.breaker_backoff_max_ms = src.int(v, key, 1, 86_400_000)?
                        }
                        "quorum_grace_ms" => r.quorum_grace_ms = src.int(v, key, 0, 600_000)?,
                        _ => return Err(src.unknown(&e, RESILIENCE)),
                    }
                    at.insert(e.name, (v, key.clone()));
                }
                if r.deadline_ceiling_ms < r.deadline_floor_ms {
                    let (v, key) = at
                        .get("deadline_ceiling_ms")
                        .or_else(|| at.get("deadline_floor_ms"))
                        .expect("one of the two was given");
                    return Err(src.at(
                        v,
                        key,
                        format!(
                            "deadline_ceiling_ms ({}) must not be below deadline_floor_ms ({})",
                            r.deadline_ceiling_ms, r.deadline_floor_ms
                        ),
                    ));
                }
                if r.breaker_backoff_max_ms < r.breaker_backoff_ms {
                    let (v, key) = at
                        .get("breaker_backoff_max_ms")
                        .or_else(|| at.get("breaker_backoff_ms"))
                        .expect("one of the two was given");
                    return Err(src.at(
                        v,
                        key,
                        format!(
                            "breaker_backoff_max_ms ({}) must not be below breaker_backoff_ms ({})",
                            r.breaker_backoff_max_ms, r.breaker_backoff_ms
                        ),
                    ));
                }
            }
            "sandbox" => {
                for e in src.table(v, key)? {
                    let (key, v) = (&e.key, e.v);
                    match e.name {
                        "listen" => cfg.sandbox.listen = src.listen(v, key)?,
                        "timing" => {
                            cfg.sandbox.timing = src
                                .str(v, key)?
                                .parse()
                                .map_err(|e: super::timing::ParseTimingError| src.at(v, key, e))?
                        }
                        "faults" => {
                            for e in src.table(v, key)? {
                                let (key, v) = (&e.key, e.v);
                                let id = src.system(e.at.clone(), key, e.name, &known)?;
                                let fault = src
                                    .str(v, key)?
                                    .parse::<Fault>()
                                    .map_err(|e| src.at(v, key, e))?;
                                cfg.sandbox.faults.insert(id, fault);
                            }
                        }
                        _ => return Err(src.unknown(&e, SANDBOX)),
                    }
                }
            }
            "pricing" => {
                for e in src.table(v, key)? {
                    let price = src.price(e.v, &e.key)?;
                    cfg.pricing.insert(e.name.to_string(), price);
                }
            }
            "budget" => {
                let b = &mut cfg.budget;
                for e in src.table(v, key)? {
                    let (key, v) = (&e.key, e.v);
                    match e.name {
                        "max_usd" => b.max_usd = Some(src.non_negative(v, key, MAX_BUDGET)?),
                        "max_usd_per_hour" => {
                            b.max_usd_per_hour = Some(src.non_negative(v, key, MAX_BUDGET)?)
                        }
                        "allow_unpriced" => b.allow_unpriced = src.bool(v, key)?,
                        "systems" => {
                            for e in src.table(v, key)? {
                                let id = src.system(e.at.clone(), &e.key, e.name, &known)?;
                                let usd = src.non_negative(e.v, &e.key, MAX_BUDGET)?;
                                b.systems.insert(id, usd);
                            }
                        }
                        _ => return Err(src.unknown(&e, BUDGET)),
                    }
                }
            }
            "systems" => {
                for e in src.table(v, key)? {
                    let (key, v) = (&e.key, e.v);
                    let id = src.system(e.at.clone(), key, e.name, &known)?;
                    let sys = cfg
                        .systems
                        .entry(id)
                        .or_insert_with(|| SystemConfig::default_for(id));
                    let g = given.entry(id).or_default();
                    g.header = Some(e.at.clone());
                    src.system_table(id, sys, g, v, key, &known)?;
                }
            }
            _ => return Err(src.unknown(&e, ROOT)),
        }
    }
    let derived = roles::apply(src, &mut cfg, &given, roles)?;
    check_graph(src, &cfg, &given, derived)?;
    Ok(cfg)
}

/// The seed's systems and the file's new ones, in that order (the new ones registered).
fn declared(src: &Src, root: &DeTable) -> Result<Vec<SystemId>> {
    let mut known = SystemId::SEED.to_vec();
    let Some(DeValue::Table(t)) = root.get("systems").map(Spanned::get_ref) else {
        return Ok(known);
    };
    for e in entries(t, "systems") {
        if SystemId::from_name(e.name).is_some_and(SystemId::is_seed) {
            continue;
        }
        let id = SystemId::intern(e.name).map_err(|m| src.err(e.at.clone(), &e.key, m))?;
        known.push(id);
    }
    Ok(known)
}

/// One `name = value` of a table, with its dotted key and where the name is written.
struct Entry<'t, 'i> {
    name: &'t str,
    key: String,
    at: Range<usize>,
    v: &'t Val<'i>,
}

/// A table's entries in file order (the map itself is sorted by name).
fn entries<'t, 'i>(t: &'t DeTable<'i>, prefix: &str) -> Vec<Entry<'t, 'i>> {
    let mut out: Vec<(&Spanned<DeString>, &Val)> = t.iter().collect();
    out.sort_by_key(|(k, _)| k.span().start);
    out.into_iter()
        .map(|(k, v)| Entry {
            name: k.get_ref(),
            key: join_key(prefix, k.get_ref()),
            at: k.span(),
            v,
        })
        .collect()
}

impl Src<'_> {
    fn at(&self, v: &Val, key: &str, msg: impl std::fmt::Display) -> ConfigError {
        self.err(v.span(), key, msg.to_string())
    }

    fn wrong_type(&self, v: &Val, key: &str, expected: &str) -> ConfigError {
        self.at(
            v,
            key,
            format!("expected {expected}, found {}", v.get_ref().type_str()),
        )
    }

    /// Located at the name itself, not its value.
    fn unknown(&self, e: &Entry, allowed: &[&str]) -> ConfigError {
        self.err(
            e.at.clone(),
            &e.key,
            format!("unknown key (expected one of: {})", allowed.join(", ")),
        )
    }

    fn table<'t, 'i>(&self, v: &'t Val<'i>, key: &str) -> Result<Vec<Entry<'t, 'i>>> {
        match v.get_ref() {
            DeValue::Table(t) => Ok(entries(t, key)),
            _ => Err(self.wrong_type(v, key, "a table")),
        }
    }

    fn str<'t>(&self, v: &'t Val, key: &str) -> Result<&'t str> {
        v.get_ref()
            .as_str()
            .ok_or_else(|| self.wrong_type(v, key, "a string"))
    }

    fn bool(&self, v: &Val, key: &str) -> Result<bool> {
        v.get_ref()
            .as_bool()
            .ok_or_else(|| self.wrong_type(v, key, "a boolean (true or false)"))
    }

    /// An integer within `lo..=hi`.
    fn int(&self, v: &Val, key: &str, lo: u64, hi: u64) -> Result<u64> {
        let range = || format!("allowed range {lo}..={hi}");
        let DeValue::Integer(i) = v.get_ref() else {
            return Err(self.wrong_type(v, key, &format!("an integer ({})", range())));
        };
        // TOML integers are 64-bit signed; larger literals are out of range too.
        let n = i64::from_str_radix(i.as_str(), i.radix())
            .map_err(|_| self.at(v, key, format!("{i} is too large ({})", range())))?;
        u64::try_from(n)
            .ok()
            .filter(|n| (lo..=hi).contains(n))
            .ok_or_else(|| self.at(v, key, format!("{n} is out of range ({})", range())))
    }

    /// A number (integer or float) within `0..=max`.
    fn non_negative(&self, v: &Val, key: &str, max: f64) -> Result<f64> {
        let range = || format!("allowed range 0..={max}");
        let n = match v.get_ref() {
            DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix())
                .ok()
                .map(|n| n as f64),
            DeValue::Float(f) => f.as_str().replace('_', "").parse::<f64>().ok(),
            _ => return Err(self.wrong_type(v, key, &format!("a number ({})", range()))),
        };
        n.filter(|n| n.is_finite() && (0.0..=max).contains(n))
            .ok_or_else(|| {
                self.at(
                    v,
                    key,
                    format!("{} is out of range ({})", self.snippet(v), range()),
                )
            })
    }

    /// `{ input = USD, output = USD, cached_input = USD }` per million tokens; input and
    /// output are required.
    fn price(&self, v: &Val, key: &str) -> Result<Price> {
        let (mut input, mut output, mut cached_input) = (None, None, None);
        for e in self.table(v, key)? {
            match e.name {
                "input" => input = Some(self.non_negative(e.v, &e.key, MAX_PRICE)?),
                "output" => output = Some(self.non_negative(e.v, &e.key, MAX_PRICE)?),
                "cached_input" => cached_input = Some(self.non_negative(e.v, &e.key, MAX_PRICE)?),
                _ => return Err(self.unknown(&e, PRICE)),
            }
        }
        match (input, output) {
            (Some(input), Some(output)) => Ok(Price {
                input,
                output,
                cached_input,
            }),
            (None, _) => Err(self.at(v, key, "missing key input (USD per million input tokens)")),
            (_, None) => Err(self.at(v, key, "missing key output (USD per million output tokens)")),
        }
    }

    /// The source text of a value, for messages.
    fn snippet(&self, v: &Val) -> String {
        self.text
            .get(v.span())
            .unwrap_or("value")
            .trim()
            .to_string()
    }

    /// One of the config's systems (`known`).
    fn system(
        &self,
        at: Range<usize>,
        key: &str,
        name: &str,
        known: &[SystemId],
    ) -> Result<SystemId> {
        SystemId::parse_among(name, known).map_err(|e| self.err(at, key, e))
    }

    fn listen(&self, v: &Val, key: &str) -> Result<IpAddr> {
        let s = self.str(v, key)?;
        match s.parse::<IpAddr>() {
            Ok(ip) => super::types::sandbox_listen_ip(ip).map_err(|e| self.at(v, key, e)),
            Err(_) => Err(self.at(v, key, format!("{s:?} is not an IP address (expected a loopback address, e.g. 127.0.0.1 or ::1)"))),
        }
    }

    fn socket_addr(&self, v: &Val, key: &str) -> Result<std::net::SocketAddr> {
        let s = self.str(v, key)?;
        s.parse().map_err(|_| {
            self.at(v, key, format!("{s:?} is not IP:PORT (expected e.g. \"127.0.0.1:9464\" or \"[::1]:9464\"; host names are not looked up)"))
        })
    }

    fn system_table(
        &self,
        id: SystemId,
        sys: &mut SystemConfig,
        g: &mut Given,
        v: &Val,
        prefix: &str,
        known: &[SystemId],
    ) -> Result<()> {
        for e in self.table(v, prefix)? {
            let (key, v) = (&e.key, e.v);
            match e.name {
                "enabled" => sys.enabled = self.bool(v, key)?,
                "display_name" => {
                    let d = self.str(v, key)?.trim();
                    if d.is_empty() || d.len() > 64 || d.chars().any(char::is_control) {
                        return Err(self.at(v, key, "must be 1 to 64 bytes of printable text"));
                    }
                    id.set_display_name(d);
                }
                "protocol" => {
                    sys.protocol = self.protocol(v, key)?;
                    g.protocol = Some(v.span());
                }
                "base_url" => {
                    sys.base_url =
                        parse_base_url(self.str(v, key)?).map_err(|e| self.at(v, key, e))?;
                    g.base_url = Some(v.span());
                }
                "model" => {
                    let m = self.str(v, key)?;
                    if m.trim().is_empty() {
                        return Err(self.at(v, key, "must not be empty"));
                    }
                    sys.model = m.to_string();
                    g.model = Some(v.span());
                }
                "api_key_env" => sys.api_key_env = self.env_name(v, key)?,
                "timeout_ms" => sys.timeout_ms = self.int(v, key, 1, 3_600_000)?,
                "connect_timeout_ms" => sys.connect_timeout_ms = self.int(v, key, 1, 600_000)?,
                // Ranges fit u32, so the casts cannot truncate.
                "pool_max" => {
                    sys.pool_max = self.int(v, key, 1, 1_000)? as u32;
                    g.pool_max = Some(v.span());
                }
                "retries" => sys.retries = self.int(v, key, 0, 10)? as u32,
                "pool_max_per_host" => {
                    sys.pool_max_per_host = self.int(v, key, 1, 1_000)? as u32;
                    g.pool_max_per_host = Some(v.span());
                }
                "depends_on" => {
                    let deps = self.depends_on(id, v, key, known)?;
                    sys.depends_on = deps.iter().map(|(d, _)| *d).collect();
                    g.depends_on = Some(deps);
                }
                "max_output_tokens" => {
                    sys.params.max_output_tokens = self.int(v, key, 1, 1_000_000)? as u32;
                    g.max_output_tokens = Some(v.span());
                }
                "token_field" => {
                    let s = self.str(v, key)?;
                    sys.params.token_field = TokenField::from_name(s).ok_or_else(|| {
                        self.at(v, key, format!("unknown token field {s:?} (expected max_completion_tokens or max_tokens)"))
                    })?;
                    g.token_field = Some(v.span());
                }
                "reasoning_effort" => {
                    let s = self.str(v, key)?;
                    sys.params.reasoning_effort = match s {
                        "" => None,
                        s => Some(Effort::from_name(s).ok_or_else(|| {
                            let names = <Effort as strum::VariantNames>::VARIANTS;
                            self.at(v, key, format!("unknown effort {s:?} (expected one of: {}; \"\" for the model's default)", names.join(", ")))
                        })?),
                    };
                    g.reasoning_effort = Some(v.span());
                }
                "thinking_budget" => {
                    sys.params.thinking_budget = Some(self.thinking_budget(v, key)?);
                    g.thinking_budget = Some(v.span());
                }
                _ => return Err(self.unknown(&e, SYSTEM)),
            }
        }
        self.check_new(id, sys, g, prefix)?;
        self.check_params(id, sys, g, prefix)?;
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
            return Err(self.err(span, &join_key(prefix, name), msg));
        }
        if let (BaseUrl::Live(u), Some(env), Some(span)) =
            (&sys.base_url, &sys.api_key_env, &g.base_url)
        {
            if u.scheme() == "http" && !is_loopback(u) {
                return Err(self.err(
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

    /// -1 (dynamic) or 0..=MAX_THINKING_BUDGET.
    fn thinking_budget(&self, v: &Val, key: &str) -> Result<i64> {
        let DeValue::Integer(i) = v.get_ref() else {
            return Err(self.wrong_type(
                v,
                key,
                "an integer (-1 for dynamic, 0 for off, or a token count)",
            ));
        };
        i64::from_str_radix(i.as_str(), i.radix())
            .ok()
            .filter(|n| *n == -1 || (0..=MAX_THINKING_BUDGET).contains(n))
            .ok_or_else(|| {
                self.at(
                    v,
                    key,
                    format!("{i} is out of range (-1 for dynamic, or 0..={MAX_THINKING_BUDGET})"),
                )
            })
    }

    /// Each model setting belongs to the protocols that send it: given for another, it is
    /// an error (it would be ignored); left at a default that does not apply, it is dropped.
    fn check_params(
        &self,
        id: SystemId,
        sys: &mut SystemConfig,
        g: &Given,
        prefix: &str,
    ) -> Result<()> {
        let p = sys.protocol;
        let uses_effort = matches!(p, Protocol::OpenaiChat | Protocol::OpenaiResponses);
        let uses_thinking = matches!(p, Protocol::GeminiGenerate | Protocol::GeminiStream);
        let wrong = |span: &Range<usize>, name: &str, who: &str| {
            self.err(
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
        self.check_model(sys, g, prefix, known)
    }

    /// What the services are known to refuse, judged before any request is sent: the
    /// Responses API's least output cap, and the efforts and thinking budgets the catalog
    /// says the model takes.
    fn check_model(
        &self,
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
            self.err(span, &join_key(prefix, name), msg)
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
        &self,
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
            return Err(self.err(
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
                    return Err(self.err(
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

    fn protocol(&self, v: &Val, key: &str) -> Result<Protocol> {
        let s = self.str(v, key)?;
        let Some(p) = Protocol::from_name(s) else {
            let names = <Protocol as strum::VariantNames>::VARIANTS;
            return Err(self.at(
                v,
                key,
                format!(
                    "unknown protocol {s:?} (expected one of: {})",
                    names.join(", ")
                ),
            ));
        };
        // Which system may use "moe" is the vote role's rule (`roles::apply`).
        Ok(p)
    }

    fn env_name(&self, v: &Val, key: &str) -> Result<Option<String>> {
        let s = self.str(v, key)?;
        if s.is_empty() {
            return Ok(None);
        }
        let mut chars = s.chars();
        let ok = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok {
            return Err(self.at(v, key, format!(
                "{s:?} is not an environment variable name ([A-Za-z_][A-Za-z0-9_]*; \"\" for no key)"
            )));
        }
        Ok(Some(s.to_string()))
    }

    /// `[fleet] agents`: control endpoint URLs (http or https, with a host), each once.
    fn agent_urls(&self, v: &Val, key: &str) -> Result<Vec<String>> {
        let DeValue::Array(items) = v.get_ref() else {
            return Err(self.wrong_type(v, key, "an array of URLs"));
        };
        let mut out: Vec<String> = Vec::new();
        for item in items.iter() {
            let s = item
                .get_ref()
                .as_str()
                .ok_or_else(|| self.wrong_type(item, key, "a URL (string)"))?;
            let url = url::Url::parse(s).map_err(|e| {
                self.at(
                    item,
                    key,
                    format!("{s:?} is not a URL ({e}); e.g. \"http://127.0.0.1:7070\""),
                )
            })?;
            if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
                return Err(self.at(
                    item,
                    key,
                    format!("{s:?} is not an http(s) URL with a host"),
                ));
            }
            let s = s.trim_end_matches('/').to_string();
            if out.contains(&s) {
                return Err(self.at(item, key, format!("{s:?} is listed twice")));
            }
            out.push(s);
        }
        Ok(out)
    }

    fn depends_on(
        &self,
        id: SystemId,
        v: &Val,
        key: &str,
        known: &[SystemId],
    ) -> Result<Vec<(SystemId, Range<usize>)>> {
        let DeValue::Array(items) = v.get_ref() else {
            return Err(self.wrong_type(v, key, "an array of system names"));
        };
        let mut out: Vec<(SystemId, Range<usize>)> = Vec::new();
        for item in items.iter() {
            let name = item
                .get_ref()
                .as_str()
                .ok_or_else(|| self.wrong_type(item, key, "a system name (string)"))?;
            let dep = self.system(item.span(), key, name, known)?;
            if dep == id {
                return Err(self.at(
                    item,
                    key,
                    format!("dependency cycle: {id} depends on itself"),
                ));
            }
            if out.iter().any(|(d, _)| *d == dep) {
                return Err(self.at(item, key, format!("{dep} is listed twice")));
            }
            out.push((dep, item.span()));
        }
        Ok(out)
    }
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
fn check_graph(
    src: &Src,
    cfg: &Config,
    given: &BTreeMap<SystemId, Given>,
    derived: roles::Derived,
) -> Result<()> {
    let mut graph: BTreeMap<SystemId, Vec<SystemId>> = cfg
        .systems
        .iter()
        .map(|(id, s)| {
            let from_file =
                given.get(id).is_some_and(|g| g.depends_on.is_some()) || derived.from == Some(*id);
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
    if let Some(from) = derived.from {
        for (to, span) in &derived.edges {
            edges.push((from, *to, span, "gameplay.roles.experts".to_string()));
        }
    }
    edges.sort_by_key(|(_, _, span, _)| span.start);
    for (from, to, span, key) in edges {
        if let Some(path) = path_between(&graph, to, from) {
            let cycle: Vec<&str> = std::iter::once(from)
                .chain(path)
                .map(SystemId::name)
                .collect();
            return Err(src.err(
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
