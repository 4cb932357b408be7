//! The actions the agent can take, and reading one out of a model's free-form reply.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
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
        match self {
            Action::Explore => "explore",
            Action::Move => "move",
            Action::Attack => "attack",
            Action::Block => "block",
            Action::Cast => "cast",
            Action::Heal => "heal",
            Action::Sneak => "sneak",
            Action::Talk => "talk",
            Action::Loot => "loot",
            Action::Rest => "rest",
            Action::TurnCamera => "turn_camera",
        }
    }

    pub fn from_name(s: &str) -> Option<Action> {
        let s = s.trim().to_ascii_lowercase().replace([' ', '-'], "_");
        match s.as_str() {
            "turn" | "camera" | "look" | "look_around" => Some(Action::TurnCamera),
            "fight" => Some(Action::Attack),
            "speak" => Some(Action::Talk),
            _ => Action::ALL.into_iter().find(|a| a.name() == s),
        }
    }

    /// The action to take when a reply cannot be understood.
    pub const SAFE: Action = Action::Block;

    /// Read an action from a model's reply: `ACTION: x`, JSON `{"action": "x"}`, or the
    /// first action word in the text. `None` when nothing in it names an action.
    pub fn parse_reply(reply: &str) -> Option<Action> {
        let trimmed = reply.trim().trim_start_matches("```json").trim_start_matches("```").trim_end_matches("```");
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(trimmed.trim())
            && let Some(a) = v.get("action").and_then(|a| a.as_str()).and_then(Action::from_name)
        {
            return Some(a);
        }
        for line in reply.lines() {
            let l = line.trim().trim_start_matches(['*', '#', '-', ' ']);
            let lower = l.to_ascii_lowercase();
            if let Some(rest) = lower.strip_prefix("action") {
                let rest = rest.trim_start_matches(['*', ':', ' ', '=']);
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

fn first_action_word(text: &str) -> Option<Action> {
    text.split(|c: char| !(c.is_ascii_alphabetic() || c == '_'))
        .find_map(|w| Action::ALL.into_iter().find(|a| a.name() == w))
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
        assert_eq!(Action::parse_reply("ACTION: attack\nREASON: bandit"), Some(Action::Attack));
        assert_eq!(Action::parse_reply("**Action:** Turn Camera"), Some(Action::TurnCamera));
        assert_eq!(Action::parse_reply("```json\n{\"action\": \"heal\", \"reason\": \"low\"}\n```"), Some(Action::Heal));
        assert_eq!(Action::parse_reply("I think we should loot the chest."), Some(Action::Loot));
        assert_eq!(Action::parse_reply("no idea"), None);
        assert_eq!(Action::parse_reply(""), None);
    }
}
