//! The deterministic game brain behind every sandbox answer, shared with other modules.
//!
//! Language models answer `ACTION: <action>\nREASON: <one sentence>` (or
//! `{"action":..,"reason":..}` when the prompt says "respond with json"). The action comes
//! from the last user message, first matching rule wins:
//!
//! 1. health below 35 % (`Health: 20/100`, `HP: 20%`) → `heal`; but with nothing to heal
//!    with (`potions 0` and magicka below 25 %): `sneak` away from an enemy, else `rest`
//! 2. an enemy / hostile → `attack`; a cautious expert (hyperbolic, qwen) with stamina below
//!    30 % → `block`; stamina below 15 % with magicka at 40 % or more → `cast`; poor odds (`Win odds: 20%`, below 35 %) against an enemy that has seen
//!    the player → `sneak` away (an `unaware` enemy is attacked: a sneak attack)
//! 3. loot / chest → `loot`
//! 4. npc / person / villager → `talk`
//! 5. stamina below 20 % → `rest`
//! 6. explicit scene cues: spell / rune / altar → `cast`; stealth / patrol / unseen → `sneak`;
//!    behind you / camera → `turn_camera`; door / corridor / bridge / exit, `travel to`,
//!    `nothing left to explore` → `move`
//! 7. otherwise → `explore`
//!
//! Negated mentions (`Enemies: none`, `no enemy`, `not hostile`) do not count, and a line
//! that lists the available actions (four or more action names) is ignored, so a menu in
//! the prompt does not trigger the loot or sneak rules; so are the game's `Exits:` line (a
//! list of roads, not a cue to leave) and an `Experts voted:` line (a tally, not a scene).
//! The expert (model or system name) only varies the wording of the reason, never the action.

use serde_json::json;

/// Every action the game understands.
pub const ACTIONS: [&str; 11] = [
    "explore",
    "move",
    "attack",
    "block",
    "cast",
    "heal",
    "sneak",
    "talk",
    "loot",
    "rest",
    "turn_camera",
];

/// The action for a game prompt and a one-sentence reason. `expert` is the model or system
/// name asking; it only changes the wording.
pub fn choose_action(prompt: &str, expert: &str) -> (&'static str, String) {
    let text = strip_action_menus(&prompt.to_lowercase());
    let expert = expert.to_lowercase();
    let health = ratio(&text, &["health", "hp"]);
    let stamina = ratio(&text, &["stamina"]);
    let cautious = expert.contains("hyperbolic") || expert.contains("qwen");

    let enemy = mentions(&text, &["enemy", "enemies", "hostile"]);
    let nothing_to_heal_with = count_after(&text, "potions") == Some(0)
        && ratio(&text, &["magicka"]).is_some_and(|m| m < 0.25);
    let poor_odds =
        ratio(&text, &["win odds"]).is_some_and(|p| p < 0.35) && !text.contains("unaware");
    let action = if health.is_some_and(|h| h < 0.35) {
        match (nothing_to_heal_with, enemy) {
            (false, _) => "heal",
            (true, true) => "sneak",
            (true, false) => "rest",
        }
    } else if enemy {
        if cautious && stamina.is_some_and(|s| s < 0.30) {
            "block"
        } else if stamina.is_some_and(|s| s < 0.15)
            && ratio(&text, &["magicka"]).is_some_and(|m| m >= 0.4)
        {
            // Too winded to swing a sword, not to cast.
            "cast"
        } else if poor_odds {
            "sneak"
        } else {
            "attack"
        }
    } else if mentions(&text, &["loot", "chest"]) {
        "loot"
    } else if mentions(&text, &["npc", "person", "villager"]) {
        "talk"
    } else if stamina.is_some_and(|s| s < 0.20) {
        "rest"
    } else if mentions(&text, &["spell", "rune", "altar"]) {
        "cast"
    } else if mentions(&text, &["stealth", "patrol", "unseen"]) {
        "sneak"
    } else if mentions(&text, &["behind you", "camera"]) {
        "turn_camera"
    } else if mentions(
        &text,
        &[
            "door",
            "corridor",
            "bridge",
            "exit",
            "travel to",
            "nothing left to explore",
        ],
    ) {
        "move"
    } else {
        "explore"
    };
    let variant = fnv1a(expert.as_bytes()) ^ fnv1a(text.as_bytes());
    (action, reason(action, variant, health, stamina))
}

/// The full text a language model answers with. `system` is the system prompt (only read
/// for "respond with json"), `prompt` the last user message.
pub fn reply(system: &str, prompt: &str, expert: &str) -> String {
    let lower = prompt.to_lowercase();
    if lower.contains("reward") {
        // Meta-RL feedback: acknowledge, echoing the reward value when there is one.
        let value = number_after(&lower, "reward")
            .map(|v| format!(" {v}"))
            .unwrap_or_default();
        return format!("ACK reward{value}\nPolicy updated toward the last action.");
    }
    let (action, reason) = choose_action(prompt, expert);
    let wants_json =
        lower.contains("respond with json") || system.to_lowercase().contains("respond with json");
    if wants_json {
        json!({ "action": action, "reason": reason }).to_string()
    } else {
        format!("ACTION: {action}\nREASON: {reason}")
    }
}

/// What the video interpreter "sees" in a frame description: 3 to 6 short sentences, each
/// ending in a space or newline so that the pieces concatenate into readable text.
pub fn describe_scene(frame: &str) -> Vec<String> {
    let text = strip_action_menus(&frame.to_lowercase());
    // A `Location: X` line names the place; else a landscape word from the frame.
    let named = frame.lines().find_map(|l| {
        let (key, value) = l.split_once(':')?;
        (key.trim().eq_ignore_ascii_case("location") && !value.trim().is_empty())
            .then(|| value.trim().to_string())
    });
    const PLACES: [&str; 9] = [
        "forest", "cave", "dungeon", "village", "castle", "ruins", "swamp", "mountain", "town",
    ];
    let place = named.unwrap_or_else(|| {
        let kind = PLACES
            .iter()
            .find(|p| text.contains(*p))
            .copied()
            .unwrap_or("open field");
        // "an open field", "a forest".
        let article = if kind.starts_with(['a', 'e', 'i', 'o', 'u']) {
            "an"
        } else {
            "a"
        };
        format!("{article} {kind}")
    });
    let mut out = vec![format!("The scene shows {place}. ")];
    if mentions(&text, &["enemy", "enemies", "hostile"]) {
        out.push("An enemy is visible and approaching the player. ".to_string());
    } else {
        out.push("No threats are visible. ".to_string());
    }
    if let Some(h) = ratio(&text, &["health", "hp"]) {
        let state = if h < 0.35 {
            "low"
        } else if h < 0.7 {
            "moderate"
        } else {
            "high"
        };
        out.push(format!("The health bar is {state} ({:.0}%). ", h * 100.0));
    }
    if mentions(&text, &["loot", "chest"]) {
        out.push("A chest lies within reach. ".to_string());
    }
    if mentions(&text, &["npc", "person", "villager"]) {
        out.push("A villager stands nearby. ".to_string());
    }
    let (action, _) = choose_action(frame, "video_interpreter");
    out.push(format!("Suggested focus: {action}.\n"));
    out
}

/// The Wolfram|Alpha answer to `input`: (input interpretation, result). Combat odds
/// ("odds ... level 5 vs ... level 3": the first two numbers) give a win probability from
/// the level difference; other probability questions a fixed value between 0.2 and 0.8
/// derived from the text; plain arithmetic is evaluated; anything else a short fixed answer.
pub fn wolfram_answer(input: &str) -> (String, String) {
    let lower = input.to_lowercase();
    let asks_odds = ["odds", "probability", "chance"]
        .iter()
        .any(|w| lower.contains(w));
    let numbers = numbers_in(&lower);
    if asks_odds {
        if let [a, b, ..] = numbers.as_slice() {
            let p = combat_odds(*a, *b);
            return (
                format!("win probability | level {a} versus level {b}"),
                format!("{p:.2}"),
            );
        }
        let p = 0.2 + (fnv1a(lower.trim().as_bytes()) % 61) as f64 / 100.0;
        return (format!("probability | {}", lower.trim()), format!("{p:.2}"));
    }
    if let Some(v) = eval_arithmetic(&lower) {
        let shown = if v.fract() == 0.0 && v.abs() < 1e15 {
            format!("{v:.0}")
        } else {
            format!("{v}")
        };
        return (lower.trim().to_string(), shown);
    }
    (lower.trim().to_string(), "(data not available)".to_string())
}

/// Win probability of a fighter of level `a` against level `b`: a logistic curve of the
/// difference (equal levels → 0.5, +2 levels → 0.69).
pub fn combat_odds(a: f64, b: f64) -> f64 {
    1.0 / (1.0 + (-(a - b) * 0.4).exp())
}

fn reason(action: &str, variant: u64, health: Option<f64>, stamina: Option<f64>) -> String {
    let pct = |r: Option<f64>| {
        r.map(|r| format!("{:.0}%", r * 100.0))
            .unwrap_or_else(|| "unknown".into())
    };
    let options: [String; 2] = match action {
        "heal" => [
            format!(
                "Health is down to {}, so recovering comes first.",
                pct(health)
            ),
            format!(
                "At {} health another hit could be fatal; heal now.",
                pct(health)
            ),
        ],
        "attack" => [
            "A hostile is in range and the player is fit to fight.".into(),
            "Striking first keeps the enemy from taking the initiative.".into(),
        ],
        "block" => [
            format!(
                "An enemy is close and stamina is only {}, so blocking is safer.",
                pct(stamina)
            ),
            "Too winded to trade blows; guard until stamina returns.".into(),
        ],
        "loot" => [
            "There is loot within reach and no threat nearby.".into(),
            "The chest is unguarded; take what it holds.".into(),
        ],
        "talk" => [
            "Someone nearby may have useful information.".into(),
            "A friendly character is close; a conversation could open a quest.".into(),
        ],
        "rest" => [
            format!(
                "Stamina is at {}; resting restores it safely.",
                pct(stamina)
            ),
            "Nothing threatens the player, a good moment to recover stamina.".into(),
        ],
        "cast" => [
            "Magic is at hand here; casting uses it.".into(),
            "The arcane cue in the scene calls for a spell.".into(),
        ],
        "sneak" => [
            "Staying unseen avoids a needless fight.".into(),
            "Moving quietly keeps the patrol unaware.".into(),
        ],
        "move" => [
            "The way ahead is open; moving on makes progress.".into(),
            "A passage leads onward; take it.".into(),
        ],
        "turn_camera" => [
            "Something may be behind the player; look around first.".into(),
            "A wider view reveals what the current angle hides.".into(),
        ],
        _ => [
            "Nothing demands attention, so exploring finds new opportunities.".into(),
            "The area is quiet; scouting ahead is the best use of time.".into(),
        ],
    };
    let [a, b] = options;
    if variant % 2 == 0 { a } else { b }
}

/// Drops lines that list the available actions (four or more action names), the game's
/// list of roads (`exits:`) and the experts' tally (`experts voted:`), so that none of them
/// triggers keyword rules.
fn strip_action_menus(text: &str) -> String {
    text.lines()
        .filter(|line| ACTIONS.iter().filter(|a| contains_word(line, a)).count() < 4)
        .filter(|line| {
            let l = line.trim_start();
            !(l.starts_with("exits:") || l.starts_with("experts voted:"))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn contains_word(text: &str, word: &str) -> bool {
    text.match_indices(word).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + word.len()..].chars().next();
        !before.is_some_and(|c| c.is_alphanumeric() || c == '_')
            && !after.is_some_and(|c| c.is_alphanumeric() || c == '_')
    })
}

/// True when one of `words` occurs (at a word start) without being negated: not preceded
/// by "no"/"not"/"without", not followed by ": none" / ": 0".
fn mentions(text: &str, words: &[&str]) -> bool {
    words.iter().any(|w| {
        text.match_indices(w).any(|(i, _)| {
            let before = &text[..i];
            if before
                .chars()
                .next_back()
                .is_some_and(|c| c.is_alphanumeric())
            {
                return false;
            }
            let prev_word = before
                .split(|c: char| !c.is_alphanumeric())
                .rfind(|s| !s.is_empty());
            if matches!(prev_word, Some("no" | "not" | "without" | "zero")) {
                return false;
            }
            let after = text[i + w.len()..]
                .trim_start_matches(|c: char| c.is_alphabetic())
                .trim_start_matches(|c: char| c.is_whitespace() || matches!(c, ':' | '=' | '-'));
            let next: String = after.chars().take_while(|c| c.is_alphanumeric()).collect();
            !matches!(next.as_str(), "none" | "0" | "no" | "nothing")
        })
    })
}

/// A gauge as a fraction: `Health: 20/100` → 0.2, `HP: 20%` → 0.2, `Stamina: 0.5` → 0.5,
/// `Health: 80` → 0.8 (out of 100).
fn ratio(text: &str, keys: &[&str]) -> Option<f64> {
    keys.iter().find_map(|key| {
        text.match_indices(key).find_map(|(i, _)| {
            if text[..i]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_alphanumeric())
            {
                return None;
            }
            let rest = text[i + key.len()..]
                .trim_start_matches(|c: char| c.is_whitespace() || matches!(c, ':' | '='));
            let (value, rest, fraction) = leading_number(rest)?;
            let rest = rest.trim_start();
            if let Some(max) = rest
                .strip_prefix('/')
                .and_then(|r| leading_number(r.trim_start()))
                .map(|(m, ..)| m)
            {
                return (max > 0.0).then(|| (value / max).clamp(0.0, 1.0));
            }
            // A bare `0.5` is a fraction; `50`, `50%` and `50.5` are percentages.
            if rest.starts_with('%') || !fraction || value > 1.0 {
                return Some((value / 100.0).clamp(0.0, 1.0));
            }
            Some(value.clamp(0.0, 1.0))
        })
    })
}

/// The number at the start of `s`, the rest, and whether it had a decimal point.
fn leading_number(s: &str) -> Option<(f64, &str, bool)> {
    let end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let n = s[..end].trim_end_matches('.');
    n.parse::<f64>()
        .ok()
        .map(|v| (v, &s[n.len()..], n.contains('.')))
}

/// The whole number right after `key` (`potions 2`, `potions: 0`).
fn count_after(text: &str, key: &str) -> Option<u64> {
    let i = text.find(key)?;
    let rest = text[i + key.len()..]
        .trim_start_matches(|c: char| c.is_whitespace() || c == ':' || c == '=');
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok()
}

fn number_after(text: &str, key: &str) -> Option<String> {
    let i = text.find(key)?;
    let rest =
        text[i + key.len()..].trim_start_matches(|c: char| !(c.is_ascii_digit() || c == '-'));
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-'))
        .unwrap_or(rest.len());
    let n = rest[..end].trim_end_matches('.');
    n.parse::<f64>().ok().map(|_| n.to_string())
}

fn numbers_in(text: &str) -> Vec<f64> {
    text.split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .filter_map(|s| s.trim_matches('.').parse::<f64>().ok())
        .collect()
}

/// `+ - * / ( )` over decimal numbers; `None` unless the whole input is such an expression.
fn eval_arithmetic(text: &str) -> Option<f64> {
    let tokens: Vec<char> = text.chars().filter(|c| !c.is_whitespace()).collect();
    if tokens.is_empty()
        || !tokens
            .iter()
            .all(|c| c.is_ascii_digit() || "+-*/().".contains(*c))
    {
        return None;
    }
    if !tokens.iter().any(|c| "+-*/".contains(*c)) {
        return None;
    }
    let mut pos = 0;
    let v = expr(&tokens, &mut pos)?;
    (pos == tokens.len() && v.is_finite()).then_some(v)
}

fn expr(t: &[char], pos: &mut usize) -> Option<f64> {
    let mut v = term(t, pos)?;
    while let Some(op) = t.get(*pos).filter(|c| **c == '+' || **c == '-').copied() {
        *pos += 1;
        let r = term(t, pos)?;
        v = if op == '+' { v + r } else { v - r };
    }
    Some(v)
}

fn term(t: &[char], pos: &mut usize) -> Option<f64> {
    let mut v = factor(t, pos)?;
    while let Some(op) = t.get(*pos).filter(|c| **c == '*' || **c == '/').copied() {
        *pos += 1;
        let r = factor(t, pos)?;
        v = if op == '*' { v * r } else { v / r };
    }
    Some(v)
}

fn factor(t: &[char], pos: &mut usize) -> Option<f64> {
    match t.get(*pos)? {
        '-' => {
            *pos += 1;
            factor(t, pos).map(|v| -v)
        }
        '(' => {
            *pos += 1;
            let v = expr(t, pos)?;
            (t.get(*pos) == Some(&')')).then(|| *pos += 1)?;
            Some(v)
        }
        _ => {
            let start = *pos;
            while t.get(*pos).is_some_and(|c| c.is_ascii_digit() || *c == '.') {
                *pos += 1;
            }
            t[start..*pos].iter().collect::<String>().parse().ok()
        }
    }
}

/// FNV-1a: a stable hash (the std hasher may change between Rust versions).
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_place_gets_its_article() {
        assert!(describe_scene("nothing to see")[0].starts_with("The scene shows an open field."));
        assert!(describe_scene("a forest path")[0].starts_with("The scene shows a forest."));
    }

    #[test]
    fn gauges_parse_in_every_form() {
        assert_eq!(ratio("health: 20/100", &["health"]), Some(0.2));
        assert_eq!(ratio("hp: 30%", &["hp"]), Some(0.3));
        assert_eq!(ratio("stamina 0.5", &["stamina"]), Some(0.5));
        assert_eq!(ratio("health: 80", &["health"]), Some(0.8));
        assert_eq!(ratio("whip: 3/10", &["hp"]), None);
    }

    #[test]
    fn negations_do_not_count() {
        assert!(!mentions("enemies: none", &["enemies"]));
        assert!(!mentions("there is no enemy here", &["enemy"]));
        assert!(!mentions("the guard is not hostile", &["hostile"]));
        assert!(mentions("an enemy approaches", &["enemy"]));
        assert!(mentions("enemies: 2 goblins", &["enemies"]));
    }

    #[test]
    fn game_frames_drive_sensible_play() {
        let calm = "Location: Riverwood (village)\nA mill wheel turns beside the river; smoke rises from the smithy.\n\
                    Exits: Embershard Mine, Whiterun plains, Bleak Falls Barrow\nHealth: 100/100\nStamina: 90/100\n\
                    Magicka: 100/100\nLevel: 3, gold 10, potions 2\nNo enemy in view\n";
        let act = |extra: &str| choose_action(&format!("{calm}{extra}"), "gemini_client").0;
        // The list of roads is no cue to leave; unexplored parts are.
        assert_eq!(act("Parts of this place are still unexplored\n"), "explore");
        assert_eq!(act("Nothing left to explore here\n"), "move");
        assert_eq!(act("Objective: travel to Bleak Falls Barrow\n"), "move");
        assert_eq!(
            act("Something moves behind you\nObjective: travel to Whiterun\n"),
            "turn_camera"
        );
        // The experts' tally is not a scene.
        assert_eq!(
            act("Parts of this place are still unexplored\nExperts voted: loot=2, explore=3\n"),
            "explore"
        );

        let fight = |odds: &str, awareness: &str| {
            let f = format!(
                "Location: Bleak Falls Barrow (barrow)\nHealth: 80/100\nStamina: 80/100\nMagicka: 50/100\n\
                 Enemy: a draugr wight, level 6 ({awareness}) in view\n{odds}"
            );
            choose_action(&f, "orchestrator").0
        };
        assert_eq!(fight("Win odds: 69%\n", "hostile"), "attack");
        assert_eq!(fight("Win odds: 20%\n", "hostile"), "sneak");
        assert_eq!(
            fight("Win odds: 20%\n", "hostile, unaware of you"),
            "attack"
        );
        assert_eq!(fight("", "hostile"), "attack");
        let winded = "Health: 80/100\nStamina: 10/100\nMagicka: 60/100\nEnemy: a wolf, level 2 (hostile) in view\n";
        assert_eq!(choose_action(winded, "claude_client").0, "cast");
        assert_eq!(choose_action(winded, "hyperbolic_client").0, "block");

        // Low health with nothing to heal with: slip away, or rest when alone.
        let low = "Health: 20/100\nStamina: 50/100\nMagicka: 10/100\nLevel: 3, gold 0, potions 0\n";
        assert_eq!(
            choose_action(
                &format!("{low}Enemy: a wolf, level 2 (hostile) in view\n"),
                "x"
            )
            .0,
            "sneak"
        );
        assert_eq!(
            choose_action(&format!("{low}No enemy in view\n"), "x").0,
            "rest"
        );
        assert_eq!(
            choose_action(
                "Health: 20/100\nMagicka: 10/100\nLevel: 3, gold 0, potions 1\n",
                "x"
            )
            .0,
            "heal"
        );
        assert_eq!(
            count_after("level: 3, gold 10, potions 12", "potions"),
            Some(12)
        );
    }

    #[test]
    fn arithmetic_and_odds() {
        assert_eq!(wolfram_answer("2 + 3 * (4 - 1)").1, "11");
        assert_eq!(
            wolfram_answer("odds player level 5 vs enemy level 3").1,
            "0.69"
        );
        assert_eq!(wolfram_answer("odds level 4 vs level 4").1, "0.50");
    }
}
