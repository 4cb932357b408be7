//! `[gameplay.roles]`: which system fills each of the game's roles, and the rules that tie
//! the systems to them (each role's protocols, every enabled system in a role, the vote's
//! dependencies following its experts). The engine knows nothing of roles: the game calls
//! them, and this is where a file's roles are read and judged.

use serde::{Deserialize, Serialize};
use singularis_engine::config::{
    ConfigError, Derived, Document, Given, Resolved, join_key, system_value,
};
use singularis_engine::systems::{Protocol, SystemId};
use std::collections::BTreeMap;
use std::ops::Range;
use toml::Spanned;

type Result<T> = std::result::Result<T, ConfigError>;

/// The game's roles and the systems that fill them (`[gameplay.roles]`): the game calls
/// roles, never a system by name, so a provider is a config table, not code. Which
/// protocols can fill each role: [`Role::can_use`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Roles {
    /// Streams its description of each frame into the scene.
    pub perceive: SystemId,
    /// Speaks the last event.
    pub voice: SystemId,
    /// Makes the final choice from the scene, the vote and the odds.
    pub decide: SystemId,
    /// The odds of a fight or of a find.
    pub odds: SystemId,
    /// Suggests, from each reward, the action to prefer.
    pub learn: SystemId,
    /// Asks the experts and votes.
    pub vote: SystemId,
    /// The systems the vote asks, in order.
    pub experts: Vec<SystemId>,
}

impl Default for Roles {
    /// The seed's assignment.
    fn default() -> Self {
        Roles {
            perceive: SystemId::VIDEO_INTERPRETER,
            voice: SystemId::VOICE_SYSTEM,
            decide: SystemId::ORCHESTRATOR,
            odds: SystemId::WOLFRAM_ANALYZER,
            learn: SystemId::META_RL,
            vote: SystemId::MOE,
            experts: SystemId::SEED_EXPERTS.to_vec(),
        }
    }
}

/// One of the game's roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr, strum::VariantArray)]
#[strum(serialize_all = "snake_case")]
pub enum Role {
    Perceive,
    Voice,
    Decide,
    Odds,
    Learn,
    Vote,
    Experts,
}

impl Role {
    pub fn name(self) -> &'static str {
        self.into()
    }

    /// Whether a system speaking `p` can fill the role. Perceiving streams the description
    /// into the scene as it comes (Gemini's stream is the one reader with a per-piece
    /// callback); the voice is speech (`gemini_tts`); the vote has no wire (`moe`, and only
    /// the vote); the odds are Wolfram's number or an LLM's estimate; deciding, learning and
    /// voting as an expert need an LLM that names an action.
    pub fn can_use(self, p: Protocol) -> bool {
        let llm = matches!(
            p,
            Protocol::OpenaiChat
                | Protocol::OpenaiResponses
                | Protocol::AnthropicMessages
                | Protocol::GeminiGenerate
                | Protocol::GeminiStream
        );
        match self {
            Role::Perceive => p == Protocol::GeminiStream,
            Role::Voice => p == Protocol::GeminiTts,
            Role::Vote => p == Protocol::Moe,
            Role::Odds => llm || p == Protocol::WolframLlm,
            Role::Decide | Role::Learn | Role::Experts => llm,
        }
    }

    /// The protocols that can fill it, for messages.
    pub fn protocols(self) -> Vec<&'static str> {
        <Protocol as strum::VariantNames>::VARIANTS
            .iter()
            .copied()
            .filter(|n| Protocol::from_name(n).is_some_and(|p| self.can_use(p)))
            .collect()
    }
}

impl Roles {
    /// Every system that fills a role, each once, in role order.
    pub fn systems(&self) -> Vec<SystemId> {
        let mut out = vec![
            self.perceive,
            self.voice,
            self.decide,
            self.odds,
            self.learn,
            self.vote,
        ];
        out.extend(&self.experts);
        let mut seen = Vec::new();
        out.retain(|id| {
            let new = !seen.contains(id);
            seen.push(*id);
            new
        });
        out
    }
}

/// `[gameplay.roles]` as written: each role's system names, each with where it is.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolesFile {
    perceive: Option<Spanned<String>>,
    voice: Option<Spanned<String>>,
    decide: Option<Spanned<String>>,
    odds: Option<Spanned<String>>,
    learn: Option<Spanned<String>>,
    vote: Option<Spanned<String>>,
    experts: Option<Spanned<Vec<Spanned<String>>>>,
}

/// Systems as the file names them, each with where it is written.
type Named = Vec<(SystemId, Range<usize>)>;

const KEY: &str = "gameplay.roles";

impl RolesFile {
    /// The roles the file names, in role order, each with its systems (resolved among
    /// `known`, located).
    fn resolve(&self, doc: &Document, known: &[SystemId]) -> Result<Vec<(Role, Named)>> {
        let single = [
            (Role::Perceive, &self.perceive),
            (Role::Voice, &self.voice),
            (Role::Decide, &self.decide),
            (Role::Odds, &self.odds),
            (Role::Learn, &self.learn),
            (Role::Vote, &self.vote),
        ];
        let mut out = Vec::new();
        for (role, name) in single {
            if let Some(name) = name {
                let key = join_key(KEY, role.name());
                let id = system_value(doc, name, &key, known)?;
                out.push((role, vec![(id, name.span())]));
            }
        }
        if let Some(list) = &self.experts {
            let key = join_key(KEY, Role::Experts.name());
            if list.get_ref().is_empty() {
                return Err(doc.err(list.span(), &key, "the vote needs at least one expert"));
            }
            let mut ids: Named = Vec::new();
            for name in list.get_ref() {
                let id = system_value(doc, name, &key, known)?;
                if ids.iter().any(|(d, _)| *d == id) {
                    return Err(doc.err(name.span(), &key, format!("{id} is listed twice")));
                }
                ids.push((id, name.span()));
            }
            out.push((Role::Experts, ids));
        }
        Ok(out)
    }
}

/// Fill the roles from the file, then check every system against them; the vote's
/// dependencies follow its experts unless the file gives them. Returns the edges that
/// makes, for the engine's cycle check.
pub(super) fn apply(
    doc: &Document,
    resolved: &mut Resolved,
    file: &RolesFile,
) -> Result<(Roles, Option<Derived>)> {
    let known = resolved.config.ids();
    let given_roles = file.resolve(doc, &known)?;
    let mut r = Roles::default();
    for (role, ids) in &given_roles {
        let Some(&(first, _)) = ids.first() else {
            continue;
        };
        match role {
            Role::Perceive => r.perceive = first,
            Role::Voice => r.voice = first,
            Role::Decide => r.decide = first,
            Role::Odds => r.odds = first,
            Role::Learn => r.learn = first,
            Role::Vote => r.vote = first,
            Role::Experts => r.experts = ids.iter().map(|(id, _)| *id).collect(),
        }
    }
    let at = Blame {
        doc,
        cfg: &resolved.config,
        roles: &r,
        given: &resolved.given,
        named: &given_roles,
        table: doc.span_of(&["gameplay", "roles"]).unwrap_or(0..0),
    };
    at.protocols()?;
    at.moe_only_votes()?;
    at.every_system_plays()?;
    let vote = r.vote;
    let mut derived = None;
    if resolved
        .given
        .get(&vote)
        .is_none_or(|g| g.depends_on.is_none())
    {
        // The vote uses its experts: it closes before them, a new expert included.
        if let Some(s) = resolved.config.systems.get_mut(&vote) {
            s.depends_on = r.experts.clone();
        }
        if let Some((_, ids)) = given_roles.iter().find(|(role, _)| *role == Role::Experts) {
            derived = Some(Derived {
                from: vote,
                to: ids.clone(),
                key: join_key(KEY, Role::Experts.name()),
            });
        }
    }
    Ok((r, derived))
}

/// Locates a rule broken by a system in a role: at the role's value when the file named it,
/// else at what the file changed about the system (its protocol), else at its table.
struct Blame<'a> {
    doc: &'a Document<'a>,
    cfg: &'a singularis_engine::config::Config,
    roles: &'a Roles,
    given: &'a BTreeMap<SystemId, Given>,
    named: &'a [(Role, Named)],
    /// Where `[gameplay.roles]` is, if written.
    table: Range<usize>,
}

impl Blame<'_> {
    fn role_value(&self, role: Role, id: SystemId) -> Option<(Range<usize>, String)> {
        let (_, ids) = self.named.iter().find(|(r, _)| *r == role)?;
        let (_, span) = ids.iter().find(|(d, _)| *d == id)?;
        Some((span.clone(), join_key(KEY, role.name())))
    }

    fn system(&self, id: SystemId) -> (Range<usize>, String) {
        let key = join_key("systems", id.name());
        let g = self.given.get(&id);
        match (
            g.and_then(|g| g.protocol.clone()),
            g.and_then(|g| g.header.clone()),
        ) {
            (Some(span), _) => (span, join_key(&key, "protocol")),
            (None, Some(span)) => (span, key),
            (None, None) => (self.table.clone(), KEY.to_string()),
        }
    }

    fn err(&self, (span, key): (Range<usize>, String), msg: String) -> ConfigError {
        self.doc.err(span, &key, msg)
    }

    /// "moe" has no wire: only the vote may use it.
    fn moe_only_votes(&self) -> Result<()> {
        let vote = self.roles.vote;
        for (id, s) in &self.cfg.systems {
            if s.protocol == Protocol::Moe && *id != vote {
                return Err(self.err(
                    self.system(*id),
                    format!(
                        "only the {vote} system (the vote role) can use protocol \"moe\"; {id} needs a wire protocol"
                    ),
                ));
            }
        }
        Ok(())
    }

    fn protocols(&self) -> Result<()> {
        let r = &self.roles;
        let mut filled = vec![
            (Role::Vote, r.vote),
            (Role::Perceive, r.perceive),
            (Role::Voice, r.voice),
            (Role::Decide, r.decide),
            (Role::Odds, r.odds),
            (Role::Learn, r.learn),
        ];
        filled.extend(r.experts.iter().map(|id| (Role::Experts, *id)));
        for (role, id) in filled {
            let p = self.cfg.system(id).protocol;
            // A wire system on "moe" is told so by `moe_only_votes`, whatever its role.
            if role.can_use(p) || (role != Role::Vote && p == Protocol::Moe) {
                continue;
            }
            let named = self.role_value(role, id);
            let by_role = named.is_some();
            let at = named.unwrap_or_else(|| self.system(id));
            let msg = if role == Role::Vote && !by_role {
                format!(
                    "{id} can only use protocol \"moe\" (it fills the vote role, which has no wire of its own), not {:?}",
                    p.name()
                )
            } else {
                format!(
                    "{id} speaks {:?}, which cannot fill the {} role (it needs one of: {})",
                    p.name(),
                    role.name(),
                    role.protocols().join(", ")
                )
            };
            return Err(self.err(at, msg));
        }
        Ok(())
    }

    /// A system in no role would hold a pool the game never calls.
    fn every_system_plays(&self) -> Result<()> {
        let playing = self.roles.systems();
        for (id, s) in &self.cfg.systems {
            if !s.enabled || playing.contains(id) {
                continue;
            }
            let at = match self.given.get(id).and_then(|g| g.header.clone()) {
                Some(span) => (span, join_key("systems", id.name())),
                None => (self.table.clone(), KEY.to_string()),
            };
            return Err(self.err(
                at,
                format!(
                    "{id} is in no role: name it in [gameplay.roles] (e.g. experts = [..., \"{id}\"]) or set enabled = false"
                ),
            ));
        }
        Ok(())
    }
}
