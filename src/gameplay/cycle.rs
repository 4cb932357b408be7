//! One cycle: perceive → reason → act → speak → learn, each through its systems.
//!
//! - perceive: `video_interpreter` streams a description of the frame (shown as it comes);
//! - reason: `moe` asks the five LLM clients at once and votes on the raw frame,
//!   `wolfram_analyzer` gives the odds, `orchestrator` makes the final choice from the
//!   frame, the description, the votes and the odds;
//! - act: a loop guard may overrule the choice; the world applies it and pays a reward;
//! - speak: `voice_system` says what happened and the PCM is played;
//! - learn: `meta_rl` hears the reward; the agent's preferences move with it.
//!
//! Every call is bounded by its system's own deadline and breaker (ARCHITECTURE.md,
//! "Deadlines and breakers"): a system that is disabled, closed, failing, late or behind an
//! open breaker is skipped (counted per system) and the game goes on: moe votes with the
//! experts that answered in time (a quorum), no orchestrator means the vote decides, no
//! answer at all means the safe action (counted as a fallback). A hung service costs one
//! deadline, then its breaker keeps it out, and a probe on the side brings it back.
//!
//! Modes: `parallel` runs a cycle's independent calls at once (perception, the experts,
//! the odds; then the orchestrator, who needs them all) and lets speech and learning
//! overlap the next cycle; `sequential` makes every call strictly after the previous one.
//! Both send the same prompts, so they play the same game at different speeds.

use super::guard::LoopGuard;
use super::learning::Preferences;
use super::moe::{self, ExpertAnswer, Verdict};
use super::stats::{ActionRecord, CriticalPath, Skip};
use super::{Action, GameStats, World};
use crate::audio::AudioOut;
use crate::clients::{self, ClientError, Prompt, gemini};
use crate::config::{Mode, Roles};
use crate::lifecycle::{Bounded, Registry, RequestCtx};
use crate::sync::LockExt;
use crate::systems::{Protocol, SystemId};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const AGENT_BRIEF: &str = "You are an agent playing a Skyrim-like game. Choose exactly one action from: \
explore, move, attack, block, cast, heal, sneak, talk, loot, rest, turn_camera. \
Answer as `ACTION: <action>` then `REASON: <one sentence>`.";

/// For an LLM in the odds role (Wolfram is sent the question alone): the game reads the
/// first number of the answer as a probability.
const ODDS_BRIEF: &str =
    "Estimate the probability asked for. Answer with one number between 0 and 1.";

/// The MoE vote's default quorum grace (config `resilience.quorum_grace_ms`).
pub(crate) const DEFAULT_QUORUM_GRACE: Duration = Duration::from_millis(250);
const VOICE: &str = "Kore";

/// Time during which at least one network call was in flight (overlapping calls count once).
#[derive(Default)]
pub(crate) struct NetClock {
    inner: Mutex<NetState>,
}

#[derive(Default)]
struct NetState {
    in_flight: u32,
    since: Option<Instant>,
    busy: Duration,
}

/// Marks a call in flight until dropped.
pub(crate) struct NetCall<'a>(&'a NetClock);

impl NetClock {
    pub(crate) fn enter(&self) -> NetCall<'_> {
        {
            let mut s = self.inner.locked();
            if s.in_flight == 0 {
                s.since = Some(Instant::now());
            }
            s.in_flight += 1;
        }
        NetCall(self)
    }

    /// Busy time so far, the current stretch included.
    pub(crate) fn busy(&self) -> Duration {
        let s = self.inner.locked();
        s.busy
            + s.since
                .filter(|_| s.in_flight > 0)
                .map(|t| t.elapsed())
                .unwrap_or_default()
    }
}

impl Drop for NetCall<'_> {
    fn drop(&mut self) {
        {
            let mut s = self.0.inner.locked();
            s.in_flight = s.in_flight.saturating_sub(1);
            if s.in_flight == 0
                && let Some(t) = s.since.take()
            {
                s.busy += t.elapsed();
            }
        }
    }
}

/// Calling systems the way the game does: within each system's deadline, behind its
/// breaker; count what was skipped; say what the cycle waits for.
#[derive(Clone)]
struct Calls {
    registry: Arc<Registry>,
    /// Which system fills each of the game's roles (`[gameplay.roles]`).
    roles: Arc<Roles>,
    stats: Arc<Mutex<GameStats>>,
    net: Arc<NetClock>,
}

/// Marks "the cycle waits on this system" in the stats (the dashboard shows the longest
/// wait) until dropped.
struct Waiting<'a> {
    stats: &'a Mutex<GameStats>,
    id: SystemId,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.stats.locked().waiting.remove(&self.id);
    }
}

impl Calls {
    fn skipped(&self, id: SystemId, why: Skip) {
        self.stats.locked().skipped(id, why);
    }

    /// Call `id`; `None` (counted as skipped) if it cannot take work, fails, is late,
    /// rate-limited or behind its breaker. A truncated answer is an answer: what came.
    async fn call<T, F, Fut>(&self, id: SystemId, f: F) -> Option<T>
    where
        F: FnOnce(RequestCtx) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, ClientError>> + Send + 'static,
        T: Send + 'static + Partial,
    {
        self.call_with(id, f, CancellationToken::new()).await
    }

    /// As [`Calls::call`]; `cancel` cuts the request (a vote that closed without it).
    async fn call_with<T, F, Fut>(&self, id: SystemId, f: F, cancel: CancellationToken) -> Option<T>
    where
        F: FnOnce(RequestCtx) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, ClientError>> + Send + 'static,
        T: Send + 'static + Partial,
    {
        match self.bounded(id, f, cancel).await {
            Bounded::Answered(v) => Some(v),
            // The answer hit its cap: what came goes to the game like an answer.
            Bounded::Truncated(partial) => T::from_partial(partial),
            _ => None,
        }
    }

    /// As [`Calls::call`], saying how it ended (a cut stream's partial text included).
    async fn bounded<T, F, Fut>(&self, id: SystemId, f: F, cancel: CancellationToken) -> Bounded<T>
    where
        F: FnOnce(RequestCtx) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, ClientError>> + Send + 'static,
        T: Send + 'static,
    {
        let sys = self.registry.get(id).clone();
        // moe has no wire: its time is its experts' calls, which count themselves.
        let wire = sys.config.protocol != Protocol::Moe;
        let _in_flight = wire.then(|| self.net.enter());
        let _waiting = wire.then(|| {
            self.stats.locked().waiting.insert(id, Instant::now());
            Waiting {
                stats: &self.stats,
                id,
            }
        });
        let outcome = if wire {
            sys.call_bounded_with(f, cancel).await
        } else {
            // moe's time is its experts', each bounded by its own deadline and the vote by
            // its quorum: a deadline of its own would cut the vote short in sequential mode.
            match sys.call(f).await {
                Ok(v) => Bounded::Answered(v),
                Err(ClientError::Cancelled) | Err(ClientError::Unavailable(_)) => {
                    Bounded::Unavailable
                }
                Err(e) => Bounded::Failed(e),
            }
        };
        match &outcome {
            Bounded::Answered(_) | Bounded::Cut(_) | Bounded::Truncated(_) => {}
            Bounded::Failed(e) => {
                tracing::debug!(system = %id, error = %e, "skipped this cycle");
                self.skipped(id, Skip::Failed);
            }
            Bounded::Late => self.skipped(id, Skip::Late),
            Bounded::RateLimited(_) => self.skipped(id, Skip::RateLimited),
            Bounded::Skipped => self.skipped(id, Skip::BreakerOpen),
            Bounded::Unavailable => self.skipped(id, Skip::Unavailable),
        }
        outcome
    }

    /// The experts that can take work; the others (closed, disabled or failing for good)
    /// are not asked and are counted as skipped.
    fn live_experts(&self, experts: Vec<SystemId>) -> Vec<SystemId> {
        let (live, out): (Vec<SystemId>, Vec<SystemId>) = experts
            .into_iter()
            .partition(|id| self.registry.get(*id).is_available());
        for id in out {
            self.skipped(id, Skip::Unavailable);
        }
        live
    }

    /// Ask one expert and read the action its reply names (an unparsable reply is counted).
    async fn ask_expert(self, id: SystemId, question: Prompt) -> ExpertAnswer {
        // Nothing cuts an expert's call from outside: the vote that goes on
        // without it leaves it to its own deadline.
        let cancel = CancellationToken::new();
        let protocol = self.registry.get(id).config.protocol;
        let reply = self
            .call_with(
                id,
                move |c| async move { clients::ask(&c, protocol, &question).await },
                cancel,
            )
            .await;
        let action = reply.as_deref().and_then(Action::parse_reply);
        let error = match (&reply, action) {
            (None, _) => Some("no answer".to_string()),
            (Some(text), None) => {
                self.stats.locked().unparsable(id);
                tracing::info!(system = %id, reply = %clients::shorten(text, 80), "reply named no action");
                Some("reply named no action".to_string())
            }
            _ => None,
        };
        ExpertAnswer {
            expert: id,
            action,
            error,
        }
    }

    /// Sequential vote: ask the experts one after another, and stop asking once a
    /// majority (`need`) has answered.
    async fn ask_experts_in_turn(
        &self,
        live: &[SystemId],
        need: usize,
        question: &Prompt,
    ) -> Vec<ExpertAnswer> {
        let mut out = Vec::new();
        for id in live.iter().copied() {
            if out
                .iter()
                .filter(|a: &&ExpertAnswer| a.action.is_some())
                .count()
                >= need
            {
                // Not asked: the vote already has its majority. Counted, so
                // an expert never asked is not a silent one.
                self.skipped(id, Skip::MajorityReached);
                continue;
            }
            out.push(self.clone().ask_expert(id, question.clone()).await);
        }
        out
    }

    /// Parallel vote: ask every expert at once, gather answers until the vote closes, and
    /// count the experts still out then as outvoted.
    async fn ask_experts_at_once(
        &self,
        live: &[SystemId],
        need: usize,
        grace: Duration,
        question: &Prompt,
    ) -> Vec<ExpertAnswer> {
        // Each expert's own measure of normal, as it stood when asked: the vote
        // waits for a provider that is slower than the others but usual for itself.
        let asked = tokio::time::Instant::now();
        let usual: BTreeMap<SystemId, Duration> = live
            .iter()
            .map(|id| (*id, self.registry.get(*id).usual_latency()))
            .collect();
        let mut pending: futures::stream::FuturesUnordered<_> = live
            .iter()
            .copied()
            .map(|id| self.clone().ask_expert(id, question.clone()))
            .collect();
        let mut out =
            gather_until_vote_closes(live, need, grace, asked, &usual, &mut pending).await;
        self.outvote(live, &usual, pending, &mut out);
        out
    }

    /// Count the experts that did not answer before the vote closed as outvoted (which
    /// opens no breaker) and add their answers to `out`; their calls run on.
    fn outvote<F>(
        &self,
        live: &[SystemId],
        usual: &BTreeMap<SystemId, Duration>,
        pending: futures::stream::FuturesUnordered<F>,
        out: &mut Vec<ExpertAnswer>,
    ) where
        F: Future<Output = ExpertAnswer> + Send + 'static,
    {
        let outvoted: Vec<SystemId> = live
            .iter()
            .copied()
            .filter(|id| !out.iter().any(|a| a.expert == *id))
            .collect();
        // The vote goes on without them, but their calls run on to their own
        // end: an answer still counts for its system, and a hung service is
        // late at its own deadline, where its breaker hears of it.
        if !outvoted.is_empty() {
            tokio::spawn(async move {
                let mut rest = pending;
                while futures::StreamExt::next(&mut rest).await.is_some() {}
            });
        }
        for id in outvoted {
            self.registry.get(id).outvoted();
            self.stats.locked().outvoted_expert(id);
            out.push(ExpertAnswer {
                expert: id,
                action: None,
                error: Some(format!(
                    "outvoted: the vote went on without it, past its usual {} ms",
                    usual[&id].as_millis()
                )),
            });
        }
    }
}

/// Gather the experts' answers as they come until the vote closes: when every expert has
/// answered or, once a majority (`need`) has, `grace` after the first answer and no sooner
/// than every expert still out is late by its own `usual` latency since `asked`.
async fn gather_until_vote_closes<F>(
    live: &[SystemId],
    need: usize,
    grace: Duration,
    asked: tokio::time::Instant,
    usual: &BTreeMap<SystemId, Duration>,
    pending: &mut futures::stream::FuturesUnordered<F>,
) -> Vec<ExpertAnswer>
where
    F: Future<Output = ExpertAnswer>,
{
    let mut out = Vec::new();
    let mut first: Option<tokio::time::Instant> = None;
    let mut quorum: Option<tokio::time::Instant> = None;
    loop {
        // Once a majority answered: `grace` after the first answer, and no
        // sooner than every expert still out is late by its own measure.
        let closes_at = quorum.map(|q| {
            live.iter()
                .filter(|id| !out.iter().any(|a: &ExpertAnswer| a.expert == **id))
                .map(|id| asked + usual[id])
                .fold(q, std::cmp::max)
        });
        let next = match closes_at {
            Some(t) => tokio::select! {
                a = futures::StreamExt::next(&mut *pending) => a,
                _ = tokio::time::sleep_until(t) => break,
            },
            None => futures::StreamExt::next(&mut *pending).await,
        };
        let Some(answer) = next else { break };
        if answer.action.is_some() && first.is_none() {
            first = Some(tokio::time::Instant::now());
        }
        out.push(answer);
        if quorum.is_none() && out.iter().filter(|a| a.action.is_some()).count() >= need {
            quorum = first.map(|t| t + grace);
        }
    }
    out
}

/// What a truncated answer gives the game: text, what came of it; anything else (speech),
/// nothing.
trait Partial: Sized {
    fn from_partial(text: String) -> Option<Self>;
}

impl Partial for String {
    fn from_partial(text: String) -> Option<String> {
        Some(text)
    }
}

impl Partial for gemini::Pcm {
    fn from_partial(_: String) -> Option<gemini::Pcm> {
        None
    }
}

impl Partial for moe::Verdict {
    fn from_partial(_: String) -> Option<moe::Verdict> {
        None
    }
}

/// What a cycle saw before deciding: the scene, the experts' verdict and the odds.
struct Seen {
    scene: String,
    verdict: Option<Verdict>,
    odds: Option<f64>,
}

/// The action chosen, why, and whether it is the safe action for want of any answer.
struct Decision {
    action: Action,
    why: String,
    fallback: bool,
}

/// Speech and learning of one cycle, possibly still running during the next one.
struct Pending(tokio::task::JoinHandle<Option<Action>>);

impl Drop for Pending {
    fn drop(&mut self) {
        // The requests belong to their systems; only our waiting on them stops.
        self.0.abort();
    }
}

pub struct Agent {
    pub registry: Arc<Registry>,
    pub world: World,
    pub mode: Mode,
    pub stats: Arc<Mutex<GameStats>>,
    /// Learned preference per action; its order breaks ties in the experts' vote.
    pub preferences: Preferences,
    pub guard: LoopGuard,
    /// The vote closes this long after its first answer at the latest.
    pub quorum_grace: Duration,
    audio: AudioOut,
    calls: Calls,
    pending: Option<Pending>,
}

impl Agent {
    /// `roles`: which of `registry`'s systems fill the game's roles.
    pub fn new(
        registry: Arc<Registry>,
        roles: Roles,
        seed: u64,
        mode: Mode,
        stats: Arc<Mutex<GameStats>>,
    ) -> Agent {
        let calls = Calls {
            registry: registry.clone(),
            roles: Arc::new(roles),
            stats: stats.clone(),
            net: Arc::default(),
        };
        Agent {
            registry,
            world: World::new(seed),
            mode,
            stats,
            preferences: Preferences::default(),
            guard: LoopGuard::default(),
            quorum_grace: DEFAULT_QUORUM_GRACE,
            audio: AudioOut::muted(),
            calls,
            pending: None,
        }
    }

    /// Play speech on `audio` (the default is silent).
    pub(crate) fn with_audio(mut self, audio: AudioOut) -> Agent {
        self.audio = audio;
        self
    }

    /// Ask the experts and vote, as the `moe` system. The vote closes when every live
    /// expert has answered or, once a majority has, `quorum_grace` after the first answer
    /// and once every expert still out is past its own usual latency (its recent p99; each
    /// is bounded by its own deadline besides); experts still out then are cancelled and
    /// counted as outvoted, which opens no breaker. Sequential mode asks one after another
    /// and stops asking once a majority answered.
    async fn ask_experts(&self, question: Prompt) -> Option<Verdict> {
        let preference = self.preferences.order();
        let sequential = self.mode == Mode::Sequential;
        let calls = self.calls.clone();
        let grace = self.quorum_grace;
        let roles = self.calls.roles.clone();
        let experts = roles.experts.clone();
        self.calls
            .call(roles.vote, move |ctx| async move {
                let live = calls.live_experts(experts);
                let need = live.len() / 2 + 1;
                let gather = async {
                    if sequential {
                        calls.ask_experts_in_turn(&live, need, &question).await
                    } else {
                        calls
                            .ask_experts_at_once(&live, need, grace, &question)
                            .await
                    }
                };
                // Closing moe stops the waiting; the experts' own requests are theirs to finish.
                let answers = tokio::select! {
                    a = gather => a,
                    _ = ctx.stop.cancelled() => return Err(ClientError::Cancelled),
                };
                Ok(moe::vote(&answers, &preference))
            })
            .await
    }

    /// Perceive: the video interpreter streams its description into the dashboard's scene.
    async fn perceive(&self, frame: &str) -> String {
        let see = Prompt::new(
            "Describe this game frame for a player in two sentences.",
            frame.to_string(),
        );
        let stats = self.stats.clone();
        // The world this frame shows: published with the scene, never apart from it.
        let seen = self.world.view();
        let streamed = seen.clone();
        let scene = self
            .calls
            .bounded(
                self.calls.roles.perceive,
                move |ctx| async move {
                    let mut first = true;
                    gemini::stream(&ctx, &see, move |piece| {
                        let mut s = stats.locked();
                        if first {
                            s.scene.clear();
                            s.seen = Some(streamed.clone());
                            first = false;
                        }
                        s.scene.push_str(piece);
                    })
                    .await
                },
                CancellationToken::new(),
            )
            .await;
        // A dripping stream is cut at its deadline: a partial description is still one.
        let scene = match scene {
            Bounded::Answered(s) | Bounded::Cut(s) | Bounded::Truncated(s) => Some(s),
            _ => None,
        };
        let scene = scene
            .filter(|s| !s.trim().is_empty())
            .unwrap_or_else(|| frame.to_string());
        {
            let mut s = self.stats.locked();
            s.scene = scene.clone();
            s.seen = Some(seen);
        }
        scene
    }

    /// The question for Wolfram: combat odds in a fight, else the chance of a find.
    fn odds_question(&self) -> String {
        let w = &self.world;
        match w.enemy {
            Some(e) => format!(
                "combat odds player level {} vs {e} level {}, health {}",
                w.level, w.enemy_level, w.health
            ),
            None => format!("probability of finding loot while exploring {}", w.place),
        }
    }

    /// Play one cycle; returns the action taken.
    pub async fn cycle(&mut self) -> Action {
        let started = Instant::now();
        let net_before = self.calls.net.busy();
        let cycle_no = self.stats.locked().cycles + 1;
        let frame = self.world.frame();
        let mut path = CriticalPath {
            parallel: self.mode == Mode::Parallel,
            ..CriticalPath::default()
        };

        // Perceive, and reason: the experts' vote and the numbers, then the orchestrator's
        // final choice.
        let seen = self.perceive_and_reason(&frame, &mut path).await;
        let decision = self.decide(&frame, &seen, &mut path).await;
        let (action, reward) = self.act(cycle_no, decision, seen.odds);
        self.speak_and_learn(action, reward, &mut path).await;

        let network = self.calls.net.busy().saturating_sub(net_before);
        {
            let mut s = self.stats.locked();
            s.timing.add(started.elapsed(), network, path.total());
        }
        action
    }

    /// Perception, the experts' vote and the odds: at once (parallel) or one after another.
    async fn perceive_and_reason(&self, frame: &str, path: &mut CriticalPath) -> Seen {
        let question = Prompt::new(AGENT_BRIEF, frame.to_string());
        let odds_q = Prompt::new(ODDS_BRIEF, self.odds_question());
        let calls = self.calls.clone();
        let odds_by = self.calls.roles.odds;
        let numbers = async move {
            // Wolfram takes the question alone; an LLM in the role takes the brief too.
            let proto = calls.registry.get(odds_by).config.protocol;
            calls
                .call(odds_by, move |ctx| async move {
                    clients::ask(&ctx, proto, &odds_q).await
                })
                .await
        };
        let ((scene, perceive), (verdict, vote), (odds, odds_took)) = match self.mode {
            Mode::Parallel => tokio::join!(
                timed(self.perceive(frame)),
                timed(self.ask_experts(question)),
                timed(numbers)
            ),
            Mode::Sequential => {
                let scene = timed(self.perceive(frame)).await;
                let v = timed(self.ask_experts(question)).await;
                (scene, v, timed(numbers).await)
            }
        };
        (path.perceive, path.vote, path.odds) = (perceive, vote, odds_took);
        let odds = odds
            .as_deref()
            .and_then(clients::wolfram::result_number)
            .filter(|p| (0.0..=1.0).contains(p));
        Seen {
            scene,
            verdict,
            odds,
        }
    }

    /// The orchestrator's final choice from the frame, the scene, the votes and the odds;
    /// without it the vote decides, without either the safe action.
    async fn decide(&self, frame: &str, seen: &Seen, path: &mut CriticalPath) -> Decision {
        // Without the video interpreter the "scene" is the frame itself: say it once.
        let scene_line = if seen.scene == frame {
            String::new()
        } else {
            format!("Scene: {}\n", seen.scene.trim())
        };
        let odds_text = seen
            .odds
            .map(|p| format!("{:.0}%", p * 100.0))
            .unwrap_or_else(|| "unknown".into());
        let vote = self.calls.roles.vote;
        let votes = seen.verdict.as_ref().map(votes_text).unwrap_or_default();
        let odds_line = if self.world.enemy.is_some() {
            format!("Win odds: {odds_text}")
        } else {
            format!("Chance of a find here: {odds_text}")
        };
        let final_q = Prompt::new(
            AGENT_BRIEF,
            format!(
                "{frame}{scene_line}Experts voted: {}\n{odds_line}\nMake the final choice.",
                if votes.is_empty() { "nobody" } else { &votes }
            ),
        );
        let decide = self.calls.roles.decide;
        let proto = self.registry.get(decide).config.protocol;
        let (choice, decided) = timed(self.calls.call(decide, move |ctx| async move {
            clients::ask(&ctx, proto, &final_q).await
        }))
        .await;
        path.decide = decided;
        let chosen = choice.as_deref().and_then(Action::parse_reply);
        if let (Some(text), None) = (&choice, chosen) {
            tracing::info!(reply = %clients::shorten(text, 80), "orchestrator reply named no action");
            self.stats.locked().unparsable(decide);
        }
        match (chosen, seen.verdict.as_ref().and_then(|v| v.action)) {
            (Some(a), _) => Decision {
                action: a,
                why: format!(
                    "orchestrator (votes: {}; odds {odds_text})",
                    votes_words(seen.verdict.as_ref(), vote, self.registry.get(vote).state())
                ),
                fallback: false,
            },
            (None, Some(a)) => Decision {
                action: a,
                why: format!("expert vote ({votes})"),
                fallback: false,
            },
            (None, None) => Decision {
                action: self.world.safe_action(),
                why: "no usable answer: safe action".to_string(),
                fallback: true,
            },
        }
    }

    /// Act, unless a loop guard overrules the choice; the world pays a reward and the
    /// agent's preferences and statistics follow.
    fn act(&mut self, cycle_no: u64, decision: Decision, odds: Option<f64>) -> (Action, f64) {
        let Decision {
            mut action,
            mut why,
            fallback,
        } = decision;
        let guard = self.guard.check(action, &self.world);
        if let Some((forced, kind)) = guard {
            tracing::info!(chosen = %action, forced = %forced, guard = kind.name(), "loop guard");
            why = format!("loop guard ({}): {action} → {forced}", kind.name());
            action = forced;
        }
        let reward = self.world.apply(action);
        self.guard.observe(action, reward);
        self.preferences.update(action, reward);
        let mut s = self.stats.locked();
        s.record(ActionRecord {
            cycle: cycle_no,
            action,
            why,
            reward,
        });
        s.world = Some(self.world.view());
        s.preferences = self.preferences.by_name();
        if odds.is_some() && self.world.enemy.is_some() {
            s.last_odds = odds;
        }
        if fallback {
            s.fallbacks += 1;
        }
        if let Some((_, kind)) = guard {
            s.guard(kind.name());
        }
        (action, reward)
    }

    /// Speak and learn: now (sequential), or alongside the next cycle (parallel).
    async fn speak_and_learn(&mut self, action: Action, reward: f64, path: &mut CriticalPath) {
        let line = self.world.last_event.clone();
        let after = speak_and_learn(
            self.calls.clone(),
            self.audio.clone(),
            self.mode,
            line,
            action,
            reward,
        );
        match self.mode {
            Mode::Sequential => {
                let (hint, took) = timed(after).await;
                path.after = took;
                self.take_hint(hint);
            }
            Mode::Parallel => {
                // At most one cycle's speech and learning run behind: wait for the last one.
                path.after = timed(self.finish()).await.1;
                // Still part of this cycle's trace, though it ends after the cycle does.
                self.pending = Some(Pending(tokio::spawn(tracing::Instrument::in_current_span(
                    after,
                ))));
            }
        }
    }

    /// Wait (bounded) for speech and learning still running from the last cycle.
    pub async fn finish(&mut self) {
        if let Some(mut pending) = self.pending.take() {
            // Two calls, each within its deadline, plus slack.
            let roles = self.calls.roles.clone();
            let bound = [roles.voice, roles.learn]
                .into_iter()
                .map(|id| self.registry.get(id).deadline())
                .sum::<Duration>()
                + Duration::from_secs(1);
            match tokio::time::timeout(bound, &mut pending.0).await {
                Ok(Ok(hint)) => self.take_hint(hint),
                Ok(Err(e)) => tracing::warn!(error = %e, "speech/learning task ended abnormally"),
                Err(_) => tracing::warn!(
                    "speech/learning still running after {} ms; dropped",
                    bound.as_millis()
                ),
            }
        }
    }

    fn take_hint(&mut self, hint: Option<Action>) {
        if let Some(a) = hint {
            self.preferences.hint(a);
            {
                let mut s = self.stats.locked();
                s.preferences = self.preferences.by_name();
            }
        }
    }
}

/// `f`'s output and how long it took.
/// The votes as `attack=2, block=1` (empty when there are none).
fn votes_text(verdict: &Verdict) -> String {
    verdict
        .votes
        .iter()
        .map(|(a, n)| format!("{a}={n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The votes as a reason says them, whole: `attack=2, block=1`, or that there were none and
/// why (`vote`: the system that votes, in `state` now).
fn votes_words(
    verdict: Option<&Verdict>,
    vote: SystemId,
    state: crate::lifecycle::SystemState,
) -> String {
    use crate::lifecycle::SystemState;
    let name = vote.display_name();
    match verdict {
        Some(v) if !v.votes.is_empty() => votes_text(v),
        Some(_) => "none (no expert gave a usable answer)".to_string(),
        None => match state {
            SystemState::Closed | SystemState::Closing | SystemState::Disabled => {
                format!("none ({name} {})", state.name())
            }
            _ => format!("none ({name} gave no verdict)"),
        },
    }
}

async fn timed<T>(f: impl Future<Output = T>) -> (T, Duration) {
    let started = Instant::now();
    let out = f.await;
    (out, started.elapsed())
}

/// Speak the line (and play it), tell meta-RL the reward; returns the action meta-RL
/// suggests preferring, if its reply names one.
async fn speak_and_learn(
    calls: Calls,
    audio: AudioOut,
    mode: Mode,
    line: String,
    action: Action,
    reward: f64,
) -> Option<Action> {
    let speak = {
        let calls = calls.clone();
        async move {
            let voice = calls.roles.voice;
            let pcm = calls
                .call(voice, move |ctx| async move {
                    gemini::speak(&ctx, &line, VOICE).await
                })
                .await?;
            let played = audio.play(&pcm);
            {
                let mut s = calls.stats.locked();
                s.speech_clips += 1;
                s.speech_played += u64::from(played);
            }
            Some(())
        }
    };
    let learn = {
        let calls = calls.clone();
        let question = Prompt::new(
            "You tune an agent's action preferences from rewards.",
            format!(
                "Action {action} earned reward {reward:.2}. Which action should be preferred next?"
            ),
        );
        async move {
            let learn = calls.roles.learn;
            let proto = calls.registry.get(learn).config.protocol;
            let reply = calls
                .call(learn, move |ctx| async move {
                    clients::ask(&ctx, proto, &question).await
                })
                .await?;
            // An acknowledgement names no action; a real model may name one to prefer.
            Action::parse_reply(&reply)
        }
    };
    match mode {
        Mode::Parallel => tokio::join!(speak, learn).1,
        Mode::Sequential => {
            speak.await;
            learn.await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifecycle::SystemState;

    fn verdict(votes: &[(Action, u32)]) -> Verdict {
        Verdict {
            action: votes.first().map(|(a, _)| *a),
            votes: votes.iter().copied().collect(),
            voters: votes.iter().map(|(_, n)| *n as usize).sum(),
            missing: 0,
        }
    }

    #[test]
    fn a_reason_says_the_votes_or_why_there_were_none() {
        let moe = SystemId::MOE;
        let two = verdict(&[(Action::Attack, 2), (Action::Block, 1)]);
        assert_eq!(
            votes_words(Some(&two), moe, SystemState::Idle),
            "attack=2, block=1"
        );
        // The MoE orchestrator closed: no verdict, and the reason says so whole.
        assert_eq!(
            votes_words(None, moe, SystemState::Closed),
            "none (MoE orchestrator closed)"
        );
        assert_eq!(
            votes_words(None, moe, SystemState::Disabled),
            "none (MoE orchestrator disabled)"
        );
        assert_eq!(
            votes_words(None, moe, SystemState::Error),
            "none (MoE orchestrator gave no verdict)"
        );
        assert_eq!(
            votes_words(Some(&verdict(&[])), moe, SystemState::Idle),
            "none (no expert gave a usable answer)"
        );
        let why = format!(
            "orchestrator (votes: {}; odds 40%)",
            votes_words(None, moe, SystemState::Closed)
        );
        assert!(!why.contains("votes: ;"), "{why}");
    }
}
