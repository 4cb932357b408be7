//! The systems of one session, built from the config (in its order) and the environment.

use super::system::{BreakerChange, Channels, Deadlines, StateChange, breaker_settings};
use super::system::{System, SystemSnapshot};
use crate::clients::ApiKey;
use crate::config::{BaseUrl, Config};
use crate::net::sockets;
use crate::sync::LockExt;
use crate::systems::{Protocol, SystemId};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, watch};

pub struct Registry {
    systems: Vec<Arc<System>>,
    /// Each system's place in `systems`, by `SystemId::index` (a config need not hold every
    /// registered name).
    places: Vec<Option<usize>>,
    /// The spend limit every paid call keeps within, when `[budget]` sets one.
    pub budget: Option<Arc<super::Budget>>,
    changed: watch::Sender<u64>,
    transitions: broadcast::Sender<StateChange>,
    breaker_changes: broadcast::Sender<BreakerChange>,
    /// Each system's own cut during the shutdown (`x` then), apart from everything's.
    cuts: std::sync::Mutex<BTreeMap<SystemId, Cut>>,
}

/// Where a system's close in the shutdown stands, for a cut asked of that system alone.
#[derive(Debug)]
enum Cut {
    /// Asked before the shutdown reached the system: its close starts forced.
    Asked,
    /// The shutdown is closing it (or waiting for its dependents): this cuts it now.
    Closing(tokio_util::sync::CancellationToken),
    /// Its close in the shutdown has ended.
    Closed,
}

/// Reads an environment variable; a seam so tests can supply keys without touching the
/// process environment.
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The key sent to the sandbox when none is set: the sandbox checks that auth is present,
/// like the real service, so the secret-handling path runs in every session.
const SANDBOX_KEY: &str = "sandbox-key";

/// Where a sandbox serves each system (for `base_url = "sandbox"`), and whether it answers
/// at once (a plain map: it does), which sets the first calls' deadline.
#[derive(Debug, Clone, Copy)]
pub struct SandboxUrls<'a> {
    pub urls: &'a BTreeMap<SystemId, url::Url>,
    /// Answers at once; `false`: at a service's pace, so the first calls get a live
    /// service's allowance.
    pub instant: bool,
}

impl<'a> From<&'a BTreeMap<SystemId, url::Url>> for SandboxUrls<'a> {
    fn from(urls: &'a BTreeMap<SystemId, url::Url>) -> Self {
        SandboxUrls {
            urls,
            instant: true,
        }
    }
}

impl Registry {
    pub fn new<'a>(
        config: &Config,
        sandbox: impl Into<SandboxUrls<'a>>,
        env: EnvLookup<'_>,
    ) -> Registry {
        let sandbox = sandbox.into();
        let sandbox_urls = sandbox.urls;
        let (changed, _) = watch::channel(0u64);
        // Room for bursts (every system flipping open/idle each cycle); a follower that
        // falls further behind is told how many it missed.
        let (transitions, _) = broadcast::channel(4096);
        let (breaker_changes, _) = broadcast::channel(1024);
        let systems: Vec<Arc<System>> = config
            .ids()
            .into_iter()
            .map(|id| {
                let cfg = config.system(id).clone();
                let key_env = cfg.api_key_env.clone().filter(|k| !k.is_empty());
                let key = key_env.as_deref().and_then(env).map(ApiKey::new);
                let (base, key, disabled) = if !cfg.enabled {
                    (None, None, Some("disabled in config".to_string()))
                } else if cfg.protocol == Protocol::Moe {
                    (None, None, None)
                } else {
                    match &cfg.base_url {
                        BaseUrl::Sandbox => match sandbox_urls.get(&id) {
                            Some(u) => (
                                Some(u.clone()),
                                Some(key.unwrap_or_else(|| ApiKey::new(SANDBOX_KEY.into()))),
                                None,
                            ),
                            None => (None, None, Some("no sandbox endpoint".to_string())),
                        },
                        BaseUrl::Live(u) => match (key, &key_env) {
                            (Some(k), _) => (Some(u.clone()), Some(k), None),
                            (None, _) if id.key_optional() => (Some(u.clone()), None, None),
                            (None, Some(var)) => (None, None, Some(format!("{var} not set"))),
                            (None, None) => (Some(u.clone()), None, None),
                        },
                    }
                };
                let sys = System::new(
                    id,
                    cfg,
                    base,
                    key,
                    disabled,
                    Channels {
                        changed: changed.clone(),
                        transitions: transitions.clone(),
                        breaker_changes: breaker_changes.clone(),
                    },
                );
                if let Some(price) = config.price(id) {
                    sys.set_price(price);
                }
                // The live sandbox takes seconds, as the services do: the first calls get
                // the same allowance as on a real service.
                let instant =
                    matches!(config.system(id).base_url, BaseUrl::Sandbox) && sandbox.instant;
                sys.set_resilience(
                    Deadlines::from_config(&config.resilience, instant),
                    breaker_settings(&config.resilience),
                );
                sys
            })
            .collect();
        let budget = config
            .budget
            .is_set()
            .then(|| super::Budget::new(config.budget.clone()));
        if let Some(b) = &budget {
            for s in &systems {
                s.keep_within(b.clone());
            }
        }
        let mut places = Vec::new();
        for (place, s) in systems.iter().enumerate() {
            let i = s.id.index();
            if places.len() <= i {
                places.resize(i + 1, None);
            }
            places[i] = Some(place);
        }
        Registry {
            cuts: std::sync::Mutex::new(BTreeMap::new()),
            systems,
            places,
            budget,
            changed,
            transitions,
            breaker_changes,
        }
    }

    /// Record every system's exchanges in `dir` from now on (`--record DIR`): one file per
    /// system with a wire of its own. Every system's key is masked in every file.
    pub fn record_to(&self, dir: &std::path::Path) -> std::io::Result<()> {
        let epoch = std::time::Instant::now();
        let secrets: Vec<String> = self
            .systems
            .iter()
            .filter_map(|s| s.key_for_masking())
            .collect();
        for s in self
            .systems
            .iter()
            .filter(|s| s.config.protocol != crate::systems::Protocol::Moe)
        {
            let r = crate::net::record::Recorder::create(dir, s.id.name(), epoch, secrets.clone())?;
            s.record_to(r);
        }
        Ok(())
    }

    /// `id`, which must be one of the config's systems (the roles and the config's lists
    /// are); [`Registry::find`] for a name from outside.
    pub fn get(&self, id: SystemId) -> &Arc<System> {
        match self.find(id) {
            Some(s) => s,
            None => panic!("{id} is not one of this session's systems"),
        }
    }

    pub fn find(&self, id: SystemId) -> Option<&Arc<System>> {
        let place = (*self.places.get(id.index())?)?;
        self.systems.get(place)
    }

    /// Force `id`'s close in the shutdown now, alone (`x` during the shutdown): a close
    /// under way is cut, one still waiting for its dependents starts at once, forced.
    /// `false` when its close in the shutdown has already ended.
    pub fn cut_in_shutdown(&self, id: SystemId) -> bool {
        let mut cuts = self.cuts.locked();
        match cuts.get(&id) {
            Some(Cut::Closed) => false,
            Some(Cut::Closing(cut)) => {
                cut.cancel();
                true
            }
            Some(Cut::Asked) | None => {
                cuts.insert(id, Cut::Asked);
                true
            }
        }
    }

    /// The token `id`'s close in the shutdown obeys: `force` (everything's), or a cut of
    /// `id` alone ([`Registry::cut_in_shutdown`]), already fired if one was asked.
    pub(crate) fn arm_cut(
        &self,
        id: SystemId,
        force: &tokio_util::sync::CancellationToken,
    ) -> tokio_util::sync::CancellationToken {
        let cut = force.child_token();
        if let Some(Cut::Asked) = self.cuts.locked().insert(id, Cut::Closing(cut.clone())) {
            cut.cancel();
        }
        cut
    }

    /// `id`'s close in the shutdown has ended: a cut asked now comes too late.
    pub(crate) fn disarm_cut(&self, id: SystemId) {
        self.cuts.locked().insert(id, Cut::Closed);
    }

    /// The systems, in the config's order.
    pub fn ids(&self) -> Vec<SystemId> {
        self.systems.iter().map(|s| s.id).collect()
    }

    pub fn all(&self) -> &[Arc<System>] {
        &self.systems
    }

    pub fn snapshots(&self) -> Vec<SystemSnapshot> {
        self.systems.iter().map(|s| s.snapshot()).collect()
    }

    /// Bumps whenever any system's state or counters change.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Every breaker change of every system from now on.
    pub fn subscribe_breakers(&self) -> broadcast::Receiver<BreakerChange> {
        self.breaker_changes.subscribe()
    }

    /// Every state change of every system from now on.
    pub fn subscribe_transitions(&self) -> broadcast::Receiver<StateChange> {
        self.transitions.subscribe()
    }

    /// Refresh every system's measured socket count from one read of the socket table.
    pub fn measure_sockets(&self) {
        if let Ok(table) = sockets::process_tcp_sockets() {
            for s in &self.systems {
                s.measure_sockets(&table);
            }
        }
    }

    /// Measure again only if something that could change the counts did: the process's
    /// sockets (opened or closed) or the connections the systems recorded. Keeps an idle
    /// session from reading the socket table, which is costly, several times a second.
    pub fn measure_sockets_if_changed(&self, last: &mut Option<(Vec<u64>, u64)>) {
        let opened: u64 = self.systems.iter().map(|s| s.connections_opened()).sum();
        let now = sockets::socket_inodes().ok().map(|inodes| (inodes, opened));
        if now.is_some() && now == *last {
            return;
        }
        self.measure_sockets();
        *last = now;
    }

    /// Keep socket counts fresh until `stop` fires.
    pub fn spawn_socket_sampler(
        self: &Arc<Self>,
        every: Duration,
        stop: tokio_util::sync::CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            let mut last = None;
            loop {
                tokio::select! {
                    _ = tick.tick() => me.measure_sockets_if_changed(&mut last),
                    _ = stop.cancelled() => return,
                }
            }
        })
    }
}
