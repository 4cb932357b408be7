//! `[gameplay.roles]`: which system fills each of the game's roles, and the rules that tie
//! the systems to them (each role's protocols, every enabled system in a role, the vote's
//! dependencies following its experts).

use super::{Entry, Given, Result, Val};
use crate::config::source::{Src, join_key};
use crate::config::types::{Config, Role};
use crate::systems::{Protocol, SystemId};
use std::collections::BTreeMap;
use std::ops::Range;
use strum::VariantArray;
use toml::de::DeValue;

/// Systems as the file names them, each with where it is written.
type Named = Vec<(SystemId, Range<usize>)>;

/// The roles the file named, each with its systems.
pub(in crate::config) struct RawRoles {
    at: Range<usize>,
    given: Vec<(Role, Named)>,
}

/// The vote's dependencies the file made by naming the experts (for the cycle check).
#[derive(Default)]
pub(in crate::config) struct Derived {
    pub from: Option<SystemId>,
    pub edges: Named,
}

const KEY: &str = "gameplay.roles";

impl Src<'_> {
    pub(super) fn roles(&self, e: &Entry, known: &[SystemId]) -> Result<RawRoles> {
        let names: Vec<&str> = Role::VARIANTS.iter().map(|r| r.name()).collect();
        let mut given = Vec::new();
        for e in self.table(e.v, &e.key)? {
            let Some(role) = Role::VARIANTS.iter().copied().find(|r| r.name() == e.name) else {
                return Err(self.unknown(&e, &names));
            };
            let ids = if role == Role::Experts {
                self.experts(e.v, &e.key, known)?
            } else {
                let name = self.str(e.v, &e.key)?;
                vec![(self.system(e.v.span(), &e.key, name, known)?, e.v.span())]
            };
            given.push((role, ids));
        }
        Ok(RawRoles {
            at: e.at.clone(),
            given,
        })
    }

    fn experts(&self, v: &Val, key: &str, known: &[SystemId]) -> Result<Named> {
        let DeValue::Array(items) = v.get_ref() else {
            return Err(self.wrong_type(v, key, "an array of system names"));
        };
        if items.is_empty() {
            return Err(self.at(v, key, "the vote needs at least one expert"));
        }
        let mut out: Named = Vec::new();
        for item in items.iter() {
            let name = item
                .get_ref()
                .as_str()
                .ok_or_else(|| self.wrong_type(item, key, "a system name (string)"))?;
            let id = self.system(item.span(), key, name, known)?;
            if out.iter().any(|(d, _)| *d == id) {
                return Err(self.at(item, key, format!("{id} is listed twice")));
            }
            out.push((id, item.span()));
        }
        Ok(out)
    }
}

/// Fill `cfg`'s roles from the file, then check every system against them.
pub(super) fn apply(
    src: &Src,
    cfg: &mut Config,
    given: &BTreeMap<SystemId, Given>,
    raw: Option<RawRoles>,
) -> Result<Derived> {
    let raw = raw.unwrap_or(RawRoles {
        at: 0..0,
        given: Vec::new(),
    });
    let r = &mut cfg.gameplay.roles;
    for (role, ids) in &raw.given {
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
        src,
        cfg,
        given,
        raw: &raw,
    };
    at.protocols()?;
    at.moe_only_votes()?;
    at.every_system_plays()?;
    let vote = cfg.gameplay.roles.vote;
    let mut derived = Derived::default();
    if given.get(&vote).is_none_or(|g| g.depends_on.is_none()) {
        // The vote uses its experts: it closes before them, a new expert included.
        let experts = cfg.gameplay.roles.experts.clone();
        if let Some(s) = cfg.systems.get_mut(&vote) {
            s.depends_on = experts;
        }
        if let Some((_, ids)) = raw.given.iter().find(|(r, _)| *r == Role::Experts) {
            derived.from = Some(vote);
            derived.edges = ids.clone();
        }
    }
    Ok(derived)
}

/// Locates a rule broken by a system in a role: at the role's value when the file named it,
/// else at what the file changed about the system (its protocol), else at its table.
struct Blame<'a, 'b> {
    src: &'a Src<'b>,
    cfg: &'a Config,
    given: &'a BTreeMap<SystemId, Given>,
    raw: &'a RawRoles,
}

impl Blame<'_, '_> {
    fn role_value(&self, role: Role, id: SystemId) -> Option<(Range<usize>, String)> {
        let (_, ids) = self.raw.given.iter().find(|(r, _)| *r == role)?;
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
            (None, None) => (self.raw.at.clone(), KEY.to_string()),
        }
    }

    fn err(&self, (span, key): (Range<usize>, String), msg: String) -> crate::config::ConfigError {
        self.src.err(span, &key, msg)
    }

    /// "moe" has no wire: only the vote may use it.
    fn moe_only_votes(&self) -> Result<()> {
        let vote = self.cfg.gameplay.roles.vote;
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
        let r = &self.cfg.gameplay.roles;
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
        let playing = self.cfg.gameplay.roles.systems();
        for (id, s) in &self.cfg.systems {
            if !s.enabled || playing.contains(id) {
                continue;
            }
            let at = match self.given.get(id).and_then(|g| g.header.clone()) {
                Some(span) => (span, join_key("systems", id.name())),
                None => (self.raw.at.clone(), KEY.to_string()),
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
