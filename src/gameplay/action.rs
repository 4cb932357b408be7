//! The actions the agent can take, and reading one out of a model's free-form reply.

use serde::{Deserialize, Serialize};

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::EnumString,
)]
#[strum(serialize_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Explore,
    Move,
    Attack,
    Block,
    Cast,
    Heal,
    Sneak,
    Talk,
    Loot,
    Rest,
    TurnCamera,
}

impl Action {
    pub const ALL: [Action; 11] = [
        Action::Explore,
        Action::Move,
        Action::Attack,
        Action::Block,
        Action::Cast,
        Action::Heal,
        Action::Sneak,
        Action::Talk,
        Action::Loot,
        Action::Rest,
        Action::TurnCamera,
    ];

    pub fn name(self) -> &'static str {
        self.into()
    }

    pub fn from_name(s: &str) -> Option<Action> {
        let s = s
            .trim()
            .trim_matches(|c: char| !c.is_ascii_alphanumeric())
            .to_ascii_lowercase()
            .replace([' ', '-'], "_");
        match s.as_str() {
            "turn" | "camera" | "turncamera" | "look" | "look_around" | "turn_around" => {
                Some(Action::TurnCamera)
            }
            "fight" | "strike" => Some(Action::Attack),
            "speak" | "talk_to" => Some(Action::Talk),
            "flee" | "retreat" | "travel" => Some(Action::Move),
            "hide" | "stealth" => Some(Action::Sneak),
            "defend" | "guard" | "parry" => Some(Action::Block),
            "spell" | "cast_spell" => Some(Action::Cast),
            "wait" | "sleep" => Some(Action::Rest),
            _ => s.parse().ok(),
        }
    }

    /// Safest first: how ties are broken when nothing has been learned yet.
    pub(crate) const CAUTION: [Action; 11] = [
        Action::Heal,
        Action::Block,
        Action::Rest,
        Action::Sneak,
        Action::Talk,
        Action::Loot,
        Action::Explore,
        Action::Move,
        Action::TurnCamera,
        Action::Cast,
        Action::Attack,
    ];

    /// Read an action from a model's reply: JSON `{"action": "x"}` (alone, fenced, or inside
    /// prose), an `ACTION: x` line (any case, bold or bulleted), or else the first action
    /// word that is not negated ("don't attack"). Reasoning blocks (`<think>…</think>`)
    /// are skipped: they weigh options the model then drops. `None` when nothing in the
    /// reply names an action.
    pub fn parse_reply(reply: &str) -> Option<Action> {
        let reply = strip_reasoning(reply);
        if let Some(a) = json_action(&reply) {
            return Some(a);
        }
        for line in reply.lines() {
            let l = line.trim().trim_start_matches(['*', '#', '-', ' ', '>']);
            let lower = l.to_ascii_lowercase();
            let rest = lower
                .strip_prefix("action")
                .or_else(|| lower.strip_prefix("final action"))
                .or_else(|| lower.strip_prefix("final answer"))
                .or_else(|| lower.strip_prefix("chosen action"));
            if let Some(rest) = rest {
                let rest = rest.trim_start_matches(['*', ':', ' ', '=', '`', '"', '\'', '_']);
                let word: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphabetic() || *c == '_' || *c == ' ')
                    .collect();
                if let Some(a) = Action::from_name(&word).or_else(|| first_action_word(&word)) {
                    return Some(a);
                }
            }
        }
        first_action_word(&reply.to_ascii_lowercase())
    }
}

/// The reply without `<think>…</think>` sections (an unclosed one runs to the end).
fn strip_reasoning(reply: &str) -> String {
    let mut out = String::with_capacity(reply.len());
    let mut rest = reply;
    while let Some(start) = rest.find("<think>") {
        out.push_str(&rest[..start]);
        match rest[start..].find("</think>") {
            Some(end) => rest = &rest[start + end + "</think>".len()..],
            None => return out,
        }
    }
    out.push_str(rest);
    out
}

/// `{"action": "x"}` anywhere in the reply (the outermost braces), key in any case.
fn json_action(reply: &str) -> Option<Action> {
    let open = reply.find('{')?;
    let close = reply.rfind('}')?;
    let v: serde_json::Value = serde_json::from_str(reply.get(open..=close)?).ok()?;
    let obj = v.as_object()?;
    obj.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("action"))
        .and_then(|(_, a)| a.as_str())
        .and_then(Action::from_name)
}

/// The first exact action name (or "turn camera") in `text` that no "not"/"don't"/"avoid"
/// comes right before.
fn first_action_word(text: &str) -> Option<Action> {
    let text = text
        .replace("turn camera", "turn_camera")
        .replace("turn the camera", "turn_camera");
    let words: Vec<&str> = text
        .split(|c: char| !(c.is_ascii_alphabetic() || c == '_' || c == '\''))
        .filter(|w| !w.is_empty())
        .collect();
    words.iter().enumerate().find_map(|(i, w)| {
        let action = Action::ALL.into_iter().find(|a| a.name() == *w)?;
        let negated = i > 0
            && matches!(
                words[i - 1],
                "not" | "don't" | "dont" | "never" | "avoid" | "no" | "without"
            );
        (!negated).then_some(action)
    })
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_messy_replies() {
        assert_eq!(
            Action::parse_reply("ACTION: attack\nREASON: bandit"),
            Some(Action::Attack)
        );
        assert_eq!(
            Action::parse_reply("**Action:** Turn Camera"),
            Some(Action::TurnCamera)
        );
        assert_eq!(
            Action::parse_reply("```json\n{\"action\": \"heal\", \"reason\": \"low\"}\n```"),
            Some(Action::Heal)
        );
        assert_eq!(
            Action::parse_reply("I think we should loot the chest."),
            Some(Action::Loot)
        );
        assert_eq!(Action::parse_reply("no idea"), None);
        assert_eq!(Action::parse_reply(""), None);
    }
}
