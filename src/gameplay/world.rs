//! A small Skyrim-like world, deterministic from a seed: six places joined by roads, the
//! player's vitals and level, enemies with levels, people to talk to, loot, and two quests.
//! [`World::frame`] is what the player "sees", as text a model (or the sandbox's script)
//! reads; [`World::apply`] plays one action and returns its reward.
//!
//! The frame's wording is a contract with `sandbox::script`: `Health: 20/100`,
//! `Enemy: a wolf, level 2 (hostile) in view`, `No enemy in view`, `Person nearby: X`,
//! `A chest with loot nearby`, `Objective: travel to X`, `Nothing left to explore here`,
//! `Something moves behind you`. Scenery sentences avoid the script's cue words (door,
//! rune, patrol, camera...) so that only the game state drives the answers.

use super::Action;
use serde::Serialize;

/// One place on the map.
#[derive(Debug)]
pub struct Place {
    pub name: &'static str,
    pub kind: &'static str,
    /// Places one `move` away.
    pub exits: &'static [&'static str],
    /// How dangerous it is (0–100): a third of it is the chance, per action, that an enemy
    /// turns up when none is in view.
    pub danger: u64,
    /// Who lives here: (name, base level).
    pub enemies: &'static [(&'static str, u32)],
    pub residents: &'static [&'static str],
    /// How many `explore` actions it takes to see all of it.
    pub areas: u8,
    pub scenery: &'static str,
}

pub const RIVERWOOD: &str = "Riverwood";
pub const BLEAK_FALLS: &str = "Bleak Falls Barrow";
pub(crate) const EMBERSHARD: &str = "Embershard Mine";
pub const LUCAN: &str = "Lucan the trader";
pub(crate) const GERDUR: &str = "Gerdur";

pub(crate) const PLACES: [Place; 6] = [
    Place {
        name: "Helgen ruins",
        kind: "ruins",
        exits: &[EMBERSHARD],
        danger: 30,
        enemies: &[("a wolf", 2), ("a bandit", 3)],
        residents: &[],
        areas: 2,
        scenery: "Charred timbers and a broken keep under a grey sky.",
    },
    Place {
        name: EMBERSHARD,
        kind: "cave",
        exits: &["Helgen ruins", RIVERWOOD],
        danger: 40,
        enemies: &[("a bandit", 3), ("a bandit archer", 4)],
        residents: &[],
        areas: 3,
        scenery: "Torches gutter along damp mine tunnels.",
    },
    Place {
        name: RIVERWOOD,
        kind: "village",
        exits: &[EMBERSHARD, "Whiterun plains", BLEAK_FALLS],
        danger: 5,
        enemies: &[("a wolf", 2)],
        residents: &[LUCAN, GERDUR, "Sven the bard"],
        areas: 2,
        scenery: "A mill wheel turns beside the river; smoke rises from the smithy.",
    },
    Place {
        name: "Whiterun plains",
        kind: "plains",
        exits: &[RIVERWOOD, "Whiterun"],
        danger: 30,
        enemies: &[("a wolf", 2), ("a sabre cat", 5), ("a bandit", 3)],
        residents: &[],
        areas: 2,
        scenery: "Tundra grass rolls toward a city on a hill.",
    },
    Place {
        name: "Whiterun",
        kind: "town",
        exits: &["Whiterun plains"],
        danger: 0,
        enemies: &[],
        residents: &[
            "a Whiterun guard",
            "Farengar Secret-Fire",
            "Adrianne the smith",
        ],
        areas: 2,
        scenery: "Market stalls crowd the square below Dragonsreach.",
    },
    Place {
        name: BLEAK_FALLS,
        kind: "barrow",
        exits: &[RIVERWOOD],
        danger: 45,
        enemies: &[
            ("a draugr", 4),
            ("a frostbite spider", 3),
            ("a draugr wight", 5),
        ],
        residents: &[],
        areas: 3,
        scenery: "Cold stone halls lined with burial niches.",
    },
];

const START: usize = 2;

/// A quest and how far the player got.
#[derive(Debug, Clone, Serialize)]
pub struct Quest {
    pub name: &'static str,
    pub giver: &'static str,
    /// 0: not started; `last stage + 1`: done.
    pub stage: u8,
    /// Kills counted toward the current stage, where it asks for some.
    pub count: u32,
}

pub const GOLDEN_CLAW: usize = 0;
pub(crate) const BANDITS: usize = 1;
const BANDITS_TO_CLEAR: u32 = 3;

impl Quest {
    pub fn is_done(&self) -> bool {
        self.stage >= self.stages()
    }
    pub(crate) fn is_active(&self) -> bool {
        self.stage > 0 && !self.is_done()
    }
    /// Stages after "not started", the last being "done".
    fn stages(&self) -> u8 {
        if self.name == "The Golden Claw" { 4 } else { 3 }
    }
    /// Where the current stage happens and what to do there.
    pub fn objective(&self) -> Option<(&'static str, String)> {
        match (self.name, self.stage) {
            ("The Golden Claw", 1) => Some((BLEAK_FALLS, "reach Bleak Falls Barrow".into())),
            ("The Golden Claw", 2) => Some((
                BLEAK_FALLS,
                "search Bleak Falls Barrow for the Golden Claw".into(),
            )),
            ("The Golden Claw", 3) => {
                Some((RIVERWOOD, format!("bring the Golden Claw to {LUCAN}")))
            }
            ("Bandits of Embershard", 1) => Some((
                EMBERSHARD,
                format!(
                    "defeat the bandits of Embershard Mine ({}/{BANDITS_TO_CLEAR})",
                    self.count
                ),
            )),
            ("Bandits of Embershard", 2) => Some((RIVERWOOD, format!("report to {GERDUR}"))),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct World {
    pub tick: u64,
    pub place: &'static str,
    pub health: i32,
    pub stamina: i32,
    pub magicka: i32,
    pub level: u32,
    pub xp: u32,
    pub gold: u32,
    pub potions: u32,
    pub enemy: Option<&'static str>,
    pub enemy_level: u32,
    pub enemy_health: i32,
    /// An unaware enemy does not strike, and the first blow on it is a sneak attack.
    pub enemy_aware: bool,
    pub loot_here: bool,
    pub npc_here: Option<&'static str>,
    pub sneaking: bool,
    /// 0 north, 1 east, 2 south, 3 west.
    pub facing: u8,
    /// Something is behind the player; turning the camera reveals it, ignoring it for long
    /// lets it strike.
    pub noise_behind: u8,
    pub quests: Vec<Quest>,
    /// Per place (index in [`PLACES`]): areas left to explore.
    pub unexplored: Vec<u8>,
    /// Per place: tick of the last visit (0: never).
    pub last_visit: Vec<u64>,
    pub kills: u32,
    pub deaths: u32,
    /// No newcomer attacks before this tick (a breather after a fight).
    pub calm_until: u64,
    /// What the last action did, in words (for the dashboard and the agent's voice).
    pub last_event: String,
    rng: u64,
}

/// The world as the dashboard's game pane shows it (owned, so a remote agent's reads into
/// it as a local one's does): where the player is, who is there, their vitals.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorldView {
    pub place: String,
    pub enemy: Option<String>,
    pub health: i32,
    pub stamina: i32,
    pub magicka: i32,
    pub npc_here: Option<String>,
    pub loot_here: bool,
}

fn place_index(name: &str) -> usize {
    PLACES.iter().position(|p| p.name == name).unwrap_or(START)
}

/// Win probability of a fighter of level `a` against level `b` (the sandbox's Wolfram uses
/// the same curve): equal levels 0.5, two levels down 0.31.
pub(crate) fn combat_odds(a: u32, b: u32) -> f64 {
    1.0 / (1.0 + (-(f64::from(a) - f64::from(b)) * 0.4).exp())
}

/// How many cycles a place stays explored before its areas (and dangers) come back.
const RESPAWN_TICKS: u64 = 25;
const POTION_HEAL: i32 = 40;
const SPELL_HEAL: i32 = 30;
const HEAL_COST: i32 = 25;
const CAST_COST: i32 = 20;

impl World {
    /// What the game pane shows of it.
    pub fn view(&self) -> WorldView {
        WorldView {
            place: self.place.to_string(),
            enemy: self.enemy.map(str::to_string),
            health: self.health,
            stamina: self.stamina,
            magicka: self.magicka,
            npc_here: self.npc_here.map(str::to_string),
            loot_here: self.loot_here,
        }
    }

    pub fn new(seed: u64) -> World {
        World {
            tick: 0,
            place: PLACES[START].name,
            health: 100,
            stamina: 100,
            magicka: 100,
            level: 3,
            xp: 0,
            gold: 10,
            potions: 2,
            enemy: None,
            enemy_level: 0,
            enemy_health: 0,
            enemy_aware: false,
            loot_here: false,
            npc_here: Some(LUCAN),
            sneaking: false,
            facing: 0,
            noise_behind: 0,
            quests: vec![
                Quest {
                    name: "The Golden Claw",
                    giver: LUCAN,
                    stage: 0,
                    count: 0,
                },
                Quest {
                    name: "Bandits of Embershard",
                    giver: GERDUR,
                    stage: 0,
                    count: 0,
                },
            ],
            unexplored: PLACES.iter().map(|p| p.areas).collect(),
            last_visit: PLACES
                .iter()
                .enumerate()
                .map(|(i, _)| u64::from(i == START))
                .collect(),
            kills: 0,
            deaths: 0,
            calm_until: 0,
            last_event: "You stand in Riverwood.".into(),
            // xorshift must not start at zero.
            rng: seed.max(1),
        }
    }

    fn next(&mut self) -> u64 {
        // xorshift64: deterministic from the seed, no dependency.
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }

    fn roll(&mut self) -> u64 {
        self.next() % 100
    }

    pub fn here(&self) -> &'static Place {
        &PLACES[place_index(self.place)]
    }

    fn areas_left(&self) -> u8 {
        self.unexplored[place_index(self.place)]
    }

    /// The first active quest's objective: (quest, where, what).
    pub fn objective(&self) -> Option<(&Quest, &'static str, String)> {
        self.quests
            .iter()
            .filter(|q| q.is_active())
            .find_map(|q| q.objective().map(|(p, t)| (q, p, t)))
    }

    /// Odds of winning the current fight (0.5 with no enemy).
    pub fn odds(&self) -> f64 {
        match self.enemy {
            Some(_) => combat_odds(self.level, self.enemy_level),
            None => 0.5,
        }
    }

    /// What the player sees, as text a model can read.
    pub fn frame(&self) -> String {
        let here = self.here();
        let mut f = format!(
            "Location: {} ({})\n{}\nExits: {}\nHealth: {}/100\nStamina: {}/100\nMagicka: {}/100\n\
             Level: {}, gold {}, potions {}\n",
            here.name,
            here.kind,
            here.scenery,
            here.exits.join(", "),
            self.health,
            self.stamina,
            self.magicka,
            self.level,
            self.gold,
            self.potions,
        );
        match self.enemy {
            Some(e) => {
                let state = if self.enemy_aware {
                    "hostile"
                } else {
                    "hostile, unaware of you"
                };
                f.push_str(&format!(
                    "Enemy: {e}, level {} ({state}) in view\n",
                    self.enemy_level
                ));
            }
            None => f.push_str("No enemy in view\n"),
        }
        if self.loot_here {
            f.push_str("A chest with loot nearby\n");
        }
        if let Some(p) = self.npc_here {
            f.push_str(&format!("Person nearby: {p}\n"));
        }
        if self.noise_behind > 0 {
            f.push_str("Something moves behind you\n");
        }
        if self.sneaking {
            f.push_str("You are sneaking\n");
        }
        for q in self.quests.iter().filter(|q| q.is_active()) {
            if let Some((_, task)) = q.objective() {
                f.push_str(&format!("Quest: {} - {task}\n", q.name));
            }
        }
        match self.objective() {
            Some((_, place, _)) if place != self.place => {
                f.push_str(&format!("Objective: travel to {place}\n"))
            }
            _ if self.areas_left() == 0 => f.push_str("Nothing left to explore here\n"),
            _ => f.push_str("Parts of this place are still unexplored\n"),
        }
        f
    }

    /// A sensible action from the state alone, never one of `excluded` (when another
    /// exists): what the loop guard forces and what a cycle with no usable answer falls
    /// back on.
    pub(crate) fn suggest(&self, excluded: &[Action]) -> Action {
        let can_heal = self.potions > 0 || self.magicka >= HEAL_COST;
        let mut wishes = Vec::with_capacity(6);
        if self.health < 35 && can_heal {
            wishes.push(Action::Heal);
        }
        if self.enemy.is_some() {
            if self.enemy_aware && self.odds() < 0.35 && self.enemy_health > 20 {
                wishes.push(Action::Sneak);
            }
            wishes.extend([Action::Attack, Action::Cast, Action::Block, Action::Move]);
        }
        if self.noise_behind > 0 {
            wishes.push(Action::TurnCamera);
        }
        if self.loot_here {
            wishes.push(Action::Loot);
        }
        if self.npc_here.is_some() {
            wishes.push(Action::Talk);
        }
        if self.health < 60 || self.stamina < 30 || self.magicka < 30 {
            wishes.push(Action::Rest);
        }
        let travelling = self.objective().is_some_and(|(_, p, _)| p != self.place);
        if travelling || self.areas_left() == 0 {
            wishes.extend([Action::Move, Action::Explore]);
        } else {
            wishes.extend([Action::Explore, Action::Move]);
        }
        wishes
            .into_iter()
            .find(|a| !excluded.contains(a))
            .unwrap_or(Action::Move)
    }

    /// The cautious choice when nobody could say what to do: guard while a foe is near,
    /// catch one's breath otherwise.
    pub(crate) fn safe_action(&self) -> Action {
        if self.enemy.is_some() && self.enemy_aware {
            Action::Block
        } else {
            Action::Rest
        }
    }

    /// Apply an action; returns the reward it earned. Rewards: a won fight +1, a quest step
    /// +0.5 to +2, finding or taking something +0.3 to +0.6, a useless action -0.1 to
    /// -0.3, dying -1.
    pub fn apply(&mut self, action: Action) -> f64 {
        self.tick += 1;
        let had_enemy = self.enemy.is_some();
        let turn = match action {
            Action::Attack | Action::Cast if self.enemy.is_some() => self.fight(action),
            Action::Block if self.enemy.is_some() && self.enemy_aware => self.block(),
            Action::Heal => Turn::exposed(self.heal()),
            Action::Loot if self.loot_here => Turn::exposed(self.loot()),
            Action::Talk if self.npc_here.is_some() => {
                let who = self.npc_here.take().unwrap_or("someone");
                self.sneaking = false;
                Turn::exposed(self.talk_to(who))
            }
            Action::Rest if self.enemy.is_none() => Turn::exposed(self.rest()),
            Action::Explore => {
                self.stamina = (self.stamina - 5).max(0);
                Turn::exposed(self.explore())
            }
            Action::Move => self.flee_or_travel(),
            Action::Sneak => self.sneak(),
            Action::TurnCamera => Turn::exposed(self.turn_camera()),
            // Attack, cast or block with no foe, loot with nothing to take, talk to nobody,
            // rest with an enemy near: wasted time.
            _ => {
                self.last_event = format!("You {action}, to no effect.");
                Turn::exposed(if action == Action::Rest { -0.5 } else { -0.3 })
            }
        };
        let mut reward = turn.reward;
        if had_enemy && !turn.safe && self.enemy.is_some() {
            self.enemy_strikes(turn.blocked);
        }
        self.world_turn();
        if self.health <= 0 {
            self.respawn();
            reward -= 1.0;
        }
        reward
    }

    /// Attack or cast at the enemy here.
    fn fight(&mut self, action: Action) -> Turn {
        let name = self.enemy.unwrap_or("the enemy");
        let cost_ok = action == Action::Attack || self.magicka >= CAST_COST;
        let sneak_attack = !self.enemy_aware;
        let mut damage = if !cost_ok {
            0
        } else if action == Action::Cast {
            self.magicka -= CAST_COST;
            16 + 3 * self.level as i32
        } else {
            let winded = self.stamina < 10;
            self.stamina = (self.stamina - 10).max(0);
            let hit_chance = (35.0 + 50.0 * self.odds()) as u64;
            let roll = self.roll();
            let base = 12 + 2 * self.level as i32 + (self.next() % 6) as i32;
            match (sneak_attack || roll < hit_chance, winded) {
                (false, _) => 0,
                (true, true) => base / 2,
                (true, false) => base,
            }
        };
        if sneak_attack && damage > 0 {
            damage *= 3;
        }
        self.enemy_aware = true;
        self.sneaking = false;
        if damage == 0 {
            self.last_event = if cost_ok {
                format!("You miss {name}.")
            } else {
                "Not enough magicka to cast.".into()
            };
            return Turn::exposed(if cost_ok { -0.1 } else { -0.3 });
        }
        self.enemy_health -= damage;
        if self.enemy_health <= 0 {
            return Turn::safe(1.0 + self.defeat_enemy(name));
        }
        self.last_event = format!("You hit {name} for {damage}.");
        Turn::exposed(0.2)
    }

    fn block(&mut self) -> Turn {
        self.stamina = (self.stamina - 5).max(0);
        self.last_event = "You raise your shield.".into();
        Turn {
            reward: 0.1,
            safe: false,
            blocked: true,
        }
    }

    fn heal(&mut self) -> f64 {
        let before = self.health;
        let healed = if self.potions > 0 {
            self.potions -= 1;
            POTION_HEAL
        } else if self.magicka >= HEAL_COST {
            self.magicka -= HEAL_COST;
            SPELL_HEAL
        } else {
            0
        };
        self.health = (self.health + healed).min(100);
        self.last_event = if healed == 0 {
            "Nothing left to heal with.".into()
        } else {
            format!("You heal to {}.", self.health)
        };
        match (healed, before) {
            (0, _) => -0.3,
            (_, b) if b < 50 => 0.8,
            (_, b) if b < 80 => 0.2,
            _ => -0.2,
        }
    }

    fn loot(&mut self) -> f64 {
        self.loot_here = false;
        let gold = 5 + (self.next() % 20) as u32;
        self.gold += gold;
        let mut reward = 0.6;
        self.last_event = format!("You take {gold} gold.");
        if self.roll() < 40 {
            self.potions += 1;
            self.last_event = format!("You take {gold} gold and a potion.");
        }
        let claw = &mut self.quests[GOLDEN_CLAW];
        if self.place == BLEAK_FALLS && claw.stage == 2 {
            claw.stage = 3;
            reward += 1.0;
            self.last_event = "You find the Golden Claw!".into();
        }
        reward
    }

    fn rest(&mut self) -> f64 {
        let low = self.health < 50 || self.stamina < 50 || self.magicka < 50;
        self.health = (self.health + 15).min(100);
        self.stamina = (self.stamina + 40).min(100);
        self.magicka = (self.magicka + 25).min(100);
        self.last_event = "You rest a while.".into();
        if low { 0.3 } else { -0.1 }
    }

    /// Leave: an aware enemy may cut off the escape.
    fn flee_or_travel(&mut self) -> Turn {
        self.stamina = (self.stamina - 5).max(0);
        if self.enemy.is_some() && self.enemy_aware && self.roll() >= 50 {
            self.last_event = format!(
                "{} cuts off your escape.",
                self.enemy.unwrap_or("The enemy")
            );
            return Turn::exposed(-0.2);
        }
        Turn::safe(self.travel())
    }

    fn sneak(&mut self) -> Turn {
        match self.enemy {
            Some(name) if self.enemy_aware => {
                if self.roll() < 55 {
                    self.enemy = None;
                    self.sneaking = true;
                    self.last_event = format!("You slip away from {name}.");
                    Turn::safe(0.3)
                } else {
                    self.last_event = format!("{name} spots you.");
                    Turn::exposed(-0.1)
                }
            }
            _ if self.sneaking => {
                self.last_event = "You are already sneaking.".into();
                Turn::exposed(-0.1)
            }
            _ => {
                self.sneaking = true;
                self.last_event = "You crouch into the shadows.".into();
                Turn::exposed(0.05)
            }
        }
    }

    fn turn_camera(&mut self) -> f64 {
        self.facing = (self.facing + 1) % 4;
        if self.noise_behind == 0 {
            self.last_event = format!(
                "You look {}.",
                ["north", "east", "south", "west"][self.facing as usize]
            );
            return -0.05;
        }
        self.noise_behind = 0;
        if self.enemy.is_none() && self.roll() < 50 {
            self.spawn_enemy(false);
            self.last_event = format!(
                "You spot {} before it spots you.",
                self.enemy.unwrap_or("an enemy")
            );
        } else {
            self.loot_here = true;
            self.last_event = "Behind you: a fallen traveller's pack.".into();
        }
        0.2
    }

    /// An enemy still in view: an aware one strikes back (a raised shield takes most of
    /// it); an unaware one may notice the player.
    fn enemy_strikes(&mut self, blocked: bool) {
        if self.enemy_aware {
            let mut damage = 2 + self.enemy_level as i32 + (self.next() % 4) as i32;
            if blocked {
                damage /= 4;
            }
            self.health -= damage;
        } else if self.roll() < 30 {
            self.enemy_aware = true;
        }
    }

    /// Wake at the start, as the game would load the last save.
    fn respawn(&mut self) {
        self.health = 100;
        self.stamina = 100;
        self.magicka = 100;
        self.gold /= 2;
        self.place = PLACES[START].name;
        self.enemy = None;
        self.loot_here = false;
        self.noise_behind = 0;
        self.deaths += 1;
        self.last_event = "You fall, and wake in Riverwood.".into();
    }

    /// Regeneration, newcomers and noises: what happens around the player each turn.
    fn world_turn(&mut self) {
        self.stamina = (self.stamina + 3).min(100);
        self.magicka = (self.magicka + 2).min(100);
        let here = self.here();
        let calm = self.tick < self.calm_until;
        if self.enemy.is_none() && !calm && self.roll() < here.danger / 3 {
            self.spawn_enemy(!self.sneaking);
        } else if self.enemy.is_none()
            && self.noise_behind == 0
            && here.danger > 0
            && self.roll() < 8
        {
            self.noise_behind = 1;
        } else if self.noise_behind > 0 {
            self.noise_behind += 1;
            // Ignored too long: it was an enemy, and it strikes from behind.
            if self.noise_behind > 3 && self.enemy.is_none() {
                self.noise_behind = 0;
                self.spawn_enemy(true);
                self.health -= 5;
            }
        }
    }

    fn spawn_enemy(&mut self, aware: bool) {
        let here = self.here();
        if here.enemies.is_empty() {
            return;
        }
        let (name, base) = here.enemies[(self.next() % here.enemies.len() as u64) as usize];
        self.enemy = Some(name);
        // Foes grow a little with the player, as Skyrim's levelled lists do.
        self.enemy_level = base + self.level.saturating_sub(3) / 2 + (self.next() % 2) as u32;
        self.enemy_health = 15 + 8 * self.enemy_level as i32;
        self.enemy_aware = aware;
    }

    /// The enemy is down: experience, a body to search, quest progress. Returns extra reward.
    fn defeat_enemy(&mut self, name: &str) -> f64 {
        let mut extra = 0.0;
        self.xp += 10 * self.enemy_level;
        self.kills += 1;
        self.enemy = None;
        self.calm_until = self.tick + 3;
        self.loot_here = true;
        self.last_event = format!("You defeat {name}.");
        let bandits = &mut self.quests[BANDITS];
        if bandits.stage == 1 && self.place == EMBERSHARD && name.contains("bandit") {
            bandits.count += 1;
            if bandits.count >= BANDITS_TO_CLEAR {
                bandits.stage = 2;
                extra += 0.5;
                self.last_event = format!("You defeat {name}; the mine is clear.");
            }
        }
        if self.xp >= 50 * self.level {
            self.xp -= 50 * self.level;
            self.level += 1;
            self.health = 100;
            self.stamina = 100;
            self.magicka = 100;
            extra += 0.5;
            self.last_event = format!("You defeat {name} and reach level {}.", self.level);
        }
        extra
    }

    fn talk_to(&mut self, who: &'static str) -> f64 {
        let Some(q) = self.quests.iter_mut().find(|q| q.giver == who) else {
            self.last_event = format!("{who} shares the local gossip.");
            return 0.2;
        };
        match q.stage {
            0 => {
                q.stage = 1;
                self.last_event = format!("{who} asks for help: {}.", q.name);
                0.5
            }
            s if s + 1 == q.stages() => {
                q.stage += 1;
                let (gold, xp) = if q.name == "The Golden Claw" {
                    (100, 60)
                } else {
                    (60, 40)
                };
                self.gold += gold;
                self.xp += xp;
                self.last_event = format!("{who} thanks you: {} done, {gold} gold.", q.name);
                2.0
            }
            _ => {
                self.last_event = format!("{who} asks how {} is going.", q.name);
                0.05
            }
        }
    }

    fn explore(&mut self) -> f64 {
        let idx = place_index(self.place);
        let searching = self.objective().is_some_and(|(_, p, _)| p == self.place);
        if self.unexplored[idx] == 0 {
            self.last_event = "You find nothing new.".into();
            return -0.2;
        }
        // A quest site keeps its last corner until the quest is done there.
        if !(searching && self.unexplored[idx] == 1) {
            self.unexplored[idx] -= 1;
        }
        let claw_here = self.place == BLEAK_FALLS && self.quests[GOLDEN_CLAW].stage == 2;
        let roll = self.roll();
        let here = self.here();
        if (claw_here && (roll < 50 || self.unexplored[idx] <= 1)) || (!claw_here && roll < 30) {
            self.loot_here = true;
            self.last_event = "You find a chest.".into();
            return 0.3;
        }
        if roll < 55 && !here.residents.is_empty() && self.npc_here.is_none() {
            let who = here.residents[(self.next() % here.residents.len() as u64) as usize];
            self.npc_here = Some(who);
            self.last_event = format!("You meet {who}.");
            return 0.3;
        }
        if roll < 70 && self.enemy.is_none() && !here.enemies.is_empty() {
            self.spawn_enemy(!self.sneaking);
            self.last_event = format!("You come upon {}.", self.enemy.unwrap_or("an enemy"));
            return 0.2;
        }
        self.last_event = "You map another corner of the area.".into();
        0.1
    }

    /// Take the road toward the objective, else the least recently visited one.
    fn travel(&mut self) -> f64 {
        let from = self.here();
        let to = match self.objective() {
            Some((_, target, _)) if target != self.place => next_hop(self.place, target),
            _ => None,
        }
        .or_else(|| {
            from.exits
                .iter()
                .copied()
                .min_by_key(|e| self.last_visit[place_index(e)])
        })
        .unwrap_or(from.name);
        let idx = place_index(to);
        let first_visit = self.last_visit[idx] == 0;
        if self.tick.saturating_sub(self.last_visit[idx]) > RESPAWN_TICKS {
            self.unexplored[idx] = PLACES[idx].areas;
        }
        self.last_visit[idx] = self.tick;
        self.place = PLACES[idx].name;
        self.enemy = None;
        self.loot_here = false;
        self.noise_behind = 0;
        self.npc_here = None;
        // Whoever is waiting on the player's news is there to hear it.
        let giver_waiting = self
            .quests
            .iter()
            .filter(|q| q.is_active())
            .find_map(|q| q.objective().filter(|(p, _)| *p == to).map(|_| q.giver))
            .filter(|g| PLACES[idx].residents.contains(g));
        if let Some(g) = giver_waiting {
            self.npc_here = Some(g);
        }
        let mut reward = if first_visit { 0.4 } else { 0.1 };
        let claw = &mut self.quests[GOLDEN_CLAW];
        if claw.stage == 1 && to == BLEAK_FALLS {
            claw.stage = 2;
            reward += 0.5;
        }
        if self.objective().is_some_and(|(_, p, _)| p == to) {
            reward += 0.2;
        }
        self.last_event = format!("You travel to {to}.");
        reward
    }
}

/// The first step of a shortest road from `from` to `to` (breadth-first over the exits).
fn next_hop(from: &str, to: &str) -> Option<&'static str> {
    let start = place_index(from);
    let goal = place_index(to);
    let mut came_from: Vec<Option<usize>> = vec![None; PLACES.len()];
    let mut queue = std::collections::VecDeque::from([start]);
    let mut seen = vec![false; PLACES.len()];
    seen[start] = true;
    while let Some(i) = queue.pop_front() {
        if i == goal {
            let mut step = i;
            while let Some(prev) = came_from[step] {
                if prev == start {
                    return Some(PLACES[step].name);
                }
                step = prev;
            }
            return None;
        }
        for e in PLACES[i].exits {
            let j = place_index(e);
            if !seen[j] {
                seen[j] = true;
                came_from[j] = Some(i);
                queue.push_back(j);
            }
        }
    }
    None
}

/// What one action did: its reward, and whether the enemy still gets its blow.
struct Turn {
    reward: f64,
    /// The action dealt with the threat this turn (won, fled, slipped away): no blow back.
    safe: bool,
    /// A raised shield: the blow back is mostly stopped.
    blocked: bool,
}

impl Turn {
    fn exposed(reward: f64) -> Turn {
        Turn {
            reward,
            safe: false,
            blocked: false,
        }
    }

    fn safe(reward: f64) -> Turn {
        Turn {
            reward,
            safe: true,
            blocked: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roads_lead_everywhere_and_back() {
        for a in &PLACES {
            for e in a.exits {
                let b = &PLACES[place_index(e)];
                assert_eq!(b.name, *e, "unknown exit {e}");
                assert!(
                    b.exits.contains(&a.name),
                    "{e} has no road back to {}",
                    a.name
                );
            }
            for b in &PLACES {
                if a.name != b.name {
                    assert!(
                        next_hop(a.name, b.name).is_some(),
                        "{} → {}",
                        a.name,
                        b.name
                    );
                }
            }
        }
        assert_eq!(next_hop("Helgen ruins", "Whiterun"), Some(EMBERSHARD));
        assert_eq!(next_hop("Whiterun", BLEAK_FALLS), Some("Whiterun plains"));
    }
}
