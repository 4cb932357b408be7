//! One cycle: perceive → reason → act → speak → learn, each through its systems. A system
//! that is disabled, closed or failing is skipped and the game goes on without it.

use super::stats::ActionRecord;
use super::{Action, GameStats, World};
use crate::clients::moe::{self, ExpertAnswer, Verdict};
use crate::clients::{self, ClientError, Prompt, gemini};
use crate::config::Mode;
use crate::lifecycle::{Registry, System};
use crate::systems::SystemId;
use std::sync::{Arc, Mutex};

const AGENT_BRIEF: &str = "You are an agent playing a Skyrim-like game. Choose exactly one action from: \
explore, move, attack, block, cast, heal, sneak, talk, loot, rest, turn_camera. \
Answer as `ACTION: <action>` then `REASON: <one sentence>`.";

/// How long the vote waits for one expert.
const EXPERT_BUDGET: std::time::Duration = std::time::Duration::from_secs(5);

pub struct Agent {
    pub registry: Arc<Registry>,
    pub world: World,
    pub mode: Mode,
    pub stats: Arc<Mutex<GameStats>>,
    /// Learned order of preference among actions (meta-RL), best first.
    pub preference: Vec<Action>,
}

/// Call `id` if it can take work; `None` (counted as skipped) if it cannot or fails.
async fn use_system<T, F, Fut>(agent_stats: &Mutex<GameStats>, sys: &Arc<System>, f: F) -> Option<T>
where
    F: FnOnce(crate::lifecycle::RequestCtx) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<T, ClientError>> + Send + 'static,
    T: Send + 'static,
{
    if !sys.is_available() {
        if let Ok(mut s) = agent_stats.lock() {
            s.skipped(sys.id);
        }
        return None;
    }
    match sys.call(f).await {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::debug!(system = %sys.id, error = %e, "skipped this cycle");
            if let Ok(mut s) = agent_stats.lock() {
                s.skipped(sys.id);
            }
            None
        }
    }
}

impl Agent {
    pub fn new(registry: Arc<Registry>, seed: u64, mode: Mode, stats: Arc<Mutex<GameStats>>) -> Agent {
        Agent { registry, world: World::new(seed), mode, stats, preference: Vec::new() }
    }

    fn sys(&self, id: SystemId) -> Arc<System> {
        self.registry.get(id).clone()
    }

    /// Ask every available expert at once and vote, as the `moe` system.
    async fn ask_experts(&self, question: Prompt) -> Option<Verdict> {
        let experts: Vec<Arc<System>> = SystemId::MOE_EXPERTS.iter().map(|&id| self.sys(id)).collect();
        let preference = self.preference.clone();
        let sequential = self.mode == Mode::Sequential;
        let stats = self.stats.clone();
        use_system(&self.stats, &self.sys(SystemId::Moe), move |ctx| async move {
            let ask_one = |sys: Arc<System>| {
                let q = question.clone();
                let stats = stats.clone();
                async move {
                    let protocol = sys.config.protocol;
                    let call = use_system(&stats, &sys, move |c| async move { clients::ask(&c, protocol, &q).await });
                    // A slow expert does not hold up the vote; its request is its system's to finish.
                    let reply = tokio::time::timeout(EXPERT_BUDGET, call).await.ok().flatten();
                    ExpertAnswer {
                        expert: sys.id,
                        action: reply.as_deref().and_then(Action::parse_reply),
                        error: reply.is_none().then(|| "no answer".to_string()),
                    }
                }
            };
            let gather = async {
                if sequential {
                    let mut out = Vec::new();
                    for e in experts {
                        out.push(ask_one(e).await);
                    }
                    out
                } else {
                    futures::future::join_all(experts.into_iter().map(ask_one)).await
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

    /// Play one cycle; returns the action taken.
    pub async fn cycle(&mut self) -> Action {
        let frame = self.world.frame();
        let cycle_no = self.stats.lock().map(|s| s.cycles + 1).unwrap_or(0);

        // Perceive.
        let video = self.sys(SystemId::VideoInterpreter);
        let see = Prompt::new("Describe this game frame for a player in two sentences.", frame.clone());
        let scene = use_system(&self.stats, &video, move |ctx| async move { gemini::stream(&ctx, &see, |_| {}).await })
            .await
            .unwrap_or_else(|| frame.clone());
        if let Ok(mut s) = self.stats.lock() {
            s.scene = scene.clone();
        }

        // Reason: the experts' vote and the numbers, then the orchestrator's final choice.
        let question = Prompt::new(AGENT_BRIEF, format!("{frame}\nScene: {scene}"));
        let odds_q = match self.world.enemy {
            Some(e) => format!("combat odds player level 5 vs {e} level 3, health {}", self.world.health),
            None => format!("probability of finding loot while exploring {}", self.world.place),
        };
        let wolfram = self.sys(SystemId::WolframAnalyzer);
        let stats = self.stats.clone();
        let numbers = move || async move {
            use_system(&stats, &wolfram, move |ctx| async move { clients::wolfram::query(&ctx, &odds_q).await }).await
        };
        let (verdict, odds) = match self.mode {
            Mode::Parallel => tokio::join!(self.ask_experts(question), numbers()),
            Mode::Sequential => {
                let v = self.ask_experts(question).await;
                (v, numbers().await)
            }
        };
        let odds_text = odds
            .as_deref()
            .and_then(clients::wolfram::result_number)
            .map(|p| format!("{:.0}%", p * 100.0))
            .unwrap_or_else(|| "unknown".into());
        let votes = verdict
            .as_ref()
            .map(|v| v.votes.iter().map(|(a, n)| format!("{a}={n}")).collect::<Vec<_>>().join(", "))
            .unwrap_or_default();
        let final_q = Prompt::new(
            AGENT_BRIEF,
            format!("{frame}\nExperts voted: {votes}\nOdds: {odds_text}\nMake the final choice."),
        );
        let orchestrator = self.sys(SystemId::Orchestrator);
        let proto = orchestrator.config.protocol;
        let choice = use_system(&self.stats, &orchestrator, move |ctx| async move { clients::ask(&ctx, proto, &final_q).await }).await;
        let (action, why, fallback) = match choice.as_deref().and_then(Action::parse_reply) {
            Some(a) => (a, format!("orchestrator (votes: {votes}; odds {odds_text})"), false),
            None => match verdict.as_ref().and_then(|v| v.action) {
                Some(a) => (a, format!("expert vote ({votes})"), false),
                None => (Action::SAFE, "no usable answer: safe action".to_string(), true),
            },
        };
        if let Some(t) = choice.as_deref()
            && Action::parse_reply(t).is_none()
        {
            tracing::info!(reply = %clients::wire::shorten(t, 80), "orchestrator reply named no action");
        }

        // Act.
        let reward = self.world.apply(action);
        if let Ok(mut s) = self.stats.lock() {
            s.record(ActionRecord { cycle: cycle_no, action, why: why.clone(), reward });
            s.world = Some(self.world.clone());
            if fallback {
                s.fallbacks += 1;
            }
        }

        // Speak and learn.
        let voice = self.sys(SystemId::VoiceSystem);
        let line = format!("I will {action}.");
        let speak = use_system(&self.stats, &voice, move |ctx| async move { gemini::speak(&ctx, &line, "Kore").await });
        let meta = self.sys(SystemId::MetaRl);
        let learn_q = Prompt::new(
            "You tune an agent's action preferences from rewards.",
            format!("Action {action} earned reward {reward:.2}. Which action should be preferred next?"),
        );
        let learn = use_system(&self.stats, &meta, move |ctx| async move {
            clients::openai::chat(&ctx, &learn_q, false).await
        });
        match self.mode {
            Mode::Parallel => {
                let _ = tokio::join!(speak, learn);
            }
            Mode::Sequential => {
                speak.await;
                learn.await;
            }
        }
        self.learn(action, reward);
        action
    }

    /// Move the action up or down the preference order by its reward.
    fn learn(&mut self, action: Action, reward: f64) {
        self.preference.retain(|a| *a != action);
        if reward > 0.0 {
            self.preference.insert(0, action);
        } else {
            self.preference.push(action);
        }
    }
}
