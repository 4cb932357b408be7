//! The app's sections of `config.toml` (`[gameplay]`, `[sandbox]`, `[audio]`, `[ui]`,
//! `[metrics]`, `[serve]`, `[fleet]`), each read by serde into its own type with the range
//! of each key beside it, and the whole resolved config: the engine's and these.

use super::roles::{Roles, RolesFile};
use serde::{Deserialize, Deserializer, Serialize};
use singularis_engine::config::de::In;
use singularis_engine::systems::SystemId;
use singularis_sandbox::{Fault, Timing};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use toml::Spanned;

/// The whole resolved config: the engine's sections (which it reads and checks), and the
/// app's. It reads as the engine's too (`Deref`), so `config.systems` and
/// `Registry::new(&config, ..)` need no conversion.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Config {
    #[serde(flatten)]
    pub engine: singularis_engine::config::Config,
    pub gameplay: GameplayConfig,
    pub sandbox: SandboxConfig,
    pub audio: AudioConfig,
    pub ui: UiConfig,
    pub metrics: MetricsConfig,
    pub serve: ServeConfig,
    pub fleet: FleetConfig,
}

impl std::ops::Deref for Config {
    type Target = singularis_engine::config::Config;
    fn deref(&self) -> &Self::Target {
        &self.engine
    }
}

impl std::ops::DerefMut for Config {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.engine
    }
}

/// The app's part of the file, as written (the engine reads its own).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub(super) struct File {
    pub gameplay: GameplayConfig,
    pub sandbox: SandboxConfig,
    pub audio: AudioConfig,
    pub ui: UiConfig,
    pub metrics: MetricsConfig,
    pub serve: ServeConfig,
    pub fleet: FleetConfig,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, strum::IntoStaticStr,
)]
#[strum(serialize_all = "snake_case")]
#[serde(rename_all = "lowercase", try_from = "String")]
pub enum Mode {
    /// Independent calls of a cycle run at once.
    #[default]
    Parallel,
    /// Strictly one call after another.
    Sequential,
}

impl Mode {
    pub fn name(self) -> &'static str {
        self.into()
    }
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "parallel" => Ok(Mode::Parallel),
            "sequential" => Ok(Mode::Sequential),
            _ => Err(format!(
                "unknown mode {s:?} (expected parallel or sequential)"
            )),
        }
    }
}

impl TryFrom<String> for Mode {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

/// The most cycles a session may be asked for (`gameplay.cycles`, `--cycles`).
pub const MAX_CYCLES: u64 = 10_000_000;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GameplayConfig {
    pub mode: Mode,
    /// Quit after this many cycles; 0 = run until asked to quit.
    #[serde(deserialize_with = "In::<0, MAX_CYCLES>::de")]
    pub cycles: u64,
    #[serde(deserialize_with = "In::<0, 9_223_372_036_854_775_807>::de")]
    pub seed: u64,
    /// Pause between two cycles, so a human can follow the game.
    #[serde(deserialize_with = "In::<0, 60_000>::de")]
    pub cycle_delay_ms: u64,
    /// Which system fills each of the game's roles (`[gameplay.roles]`), resolved from
    /// `named_roles` once the config's systems are known.
    #[serde(skip_deserializing)]
    pub roles: Roles,
    /// `[gameplay.roles]` as written: names, each with where it is.
    #[serde(rename(deserialize = "roles"), skip_serializing)]
    pub(super) named_roles: RolesFile,
}

impl Default for GameplayConfig {
    fn default() -> Self {
        GameplayConfig {
            mode: Mode::Parallel,
            cycles: 0,
            seed: 42,
            cycle_delay_ms: 250,
            roles: Roles::default(),
            named_roles: RolesFile::default(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SandboxConfig {
    /// Loopback address the embedded sandbox binds its listeners to.
    #[serde(deserialize_with = "loopback")]
    pub listen: IpAddr,
    /// Resolved from `named_faults` once the config's systems are known.
    #[serde(skip_deserializing)]
    pub faults: BTreeMap<SystemId, Fault>,
    /// `[sandbox.faults]` as written.
    #[serde(rename(deserialize = "faults"), skip_serializing)]
    pub(super) named_faults: BTreeMap<Spanned<String>, Fault>,
    /// The sandbox's clock: at once (tests) or at the services' own pace.
    pub timing: Timing,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            listen: IpAddr::from([127, 0, 0, 1]),
            faults: BTreeMap::new(),
            named_faults: BTreeMap::new(),
            timing: Timing::Instant,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AudioConfig {
    pub enabled: bool,
}

impl Default for AudioConfig {
    fn default() -> Self {
        AudioConfig { enabled: true }
    }
}

/// Prometheus exposition (`[metrics]`, `--metrics`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Where `/metrics` is served; `None`: not at all.
    #[serde(
        deserialize_with = "socket_addr",
        skip_serializing_if = "Option::is_none"
    )]
    pub listen: Option<SocketAddr>,
    /// At shutdown, how long the endpoint waits for a scrape of the final figures before it
    /// closes (it closes as soon as one is served); 0: close at once.
    #[serde(deserialize_with = "In::<0, 600_000>::de")]
    pub final_scrape_ms: u64,
}

/// The control endpoint (`[serve]`, `--serve`): the live state stream and the commands.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServeConfig {
    /// Where it is served; `None`: not at all.
    #[serde(
        deserialize_with = "socket_addr",
        skip_serializing_if = "Option::is_none"
    )]
    pub listen: Option<SocketAddr>,
}

/// Agents a viewer follows (`[fleet] agents`, `singularis-tui attach` without URLs): their
/// control endpoints' URLs (http or https, with a host), each once.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FleetConfig {
    #[serde(deserialize_with = "agent_urls")]
    pub agents: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UiConfig {
    /// Fastest redraw interval (the frame cap).
    #[serde(deserialize_with = "In::<16, 5_000>::de")]
    pub refresh_ms: u64,
    /// Pace at which the shutdown account reveals its steps.
    #[serde(deserialize_with = "In::<0, 5_000>::de")]
    pub shutdown_step_ms: u64,
    /// How long the final panel stays before the terminal is restored.
    #[serde(deserialize_with = "In::<0, 3_600>::de")]
    pub linger_s: u64,
}

impl Default for UiConfig {
    fn default() -> Self {
        UiConfig {
            refresh_ms: 100,
            shutdown_step_ms: 150,
            linger_s: 5,
        }
    }
}

/// The sandbox's one rule for where it may listen, for the config and the command line alike:
/// loopback only (127.0.0.0/8, ::1). It has no auth of its own to offer another host.
pub fn sandbox_listen_ip(ip: IpAddr) -> Result<IpAddr, String> {
    if ip.is_loopback() {
        Ok(ip)
    } else {
        Err(format!(
            "{ip} is not a loopback address (the sandbox listens only on loopback, e.g. 127.0.0.1 or ::1)"
        ))
    }
}

fn loopback<'de, D: Deserializer<'de>>(d: D) -> Result<IpAddr, D::Error> {
    let s = String::deserialize(d)?;
    let ip = s.parse::<IpAddr>().map_err(|_| {
        serde::de::Error::custom(format!(
            "{s:?} is not an IP address (expected a loopback address, e.g. 127.0.0.1 or ::1)"
        ))
    })?;
    sandbox_listen_ip(ip).map_err(serde::de::Error::custom)
}

fn socket_addr<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
    let s = String::deserialize(d)?;
    s.parse().map(Some).map_err(|_| {
        serde::de::Error::custom(format!(
            "{s:?} is not IP:PORT (expected e.g. \"127.0.0.1:9464\" or \"[::1]:9464\"; host names are not looked up)"
        ))
    })
}

/// One control endpoint URL, checked where it is written.
struct AgentUrl(String);

impl<'de> Deserialize<'de> for AgentUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Checked in the visitor, so the toml reader locates an error at this item.
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = AgentUrl;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a URL (string)")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<AgentUrl, E> {
                let url = url::Url::parse(s).map_err(|e| {
                    E::custom(format!(
                        "{s:?} is not a URL ({e}); e.g. \"http://127.0.0.1:7070\""
                    ))
                })?;
                if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
                    return Err(E::custom(format!(
                        "{s:?} is not an http(s) URL with a host"
                    )));
                }
                Ok(AgentUrl(s.trim_end_matches('/').to_string()))
            }
        }
        d.deserialize_str(V)
    }
}

fn agent_urls<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let mut out: Vec<String> = Vec::new();
    for AgentUrl(s) in Vec::<AgentUrl>::deserialize(d)? {
        if out.contains(&s) {
            return Err(serde::de::Error::custom(format!("{s:?} is listed twice")));
        }
        out.push(s);
    }
    Ok(out)
}
