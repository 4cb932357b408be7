//! A small deterministic world for the agent to act in. (The full Skyrim-like world comes
//! with the gameplay issue; this one already reacts to every action.)

use super::Action;
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct World {
    pub tick: u64,
    pub place: &'static str,
    pub health: i32,
    pub stamina: i32,
    pub magicka: i32,
    pub enemy: Option<&'static str>,
    pub loot_here: bool,
    pub npc_here: Option<&'static str>,
    rng: u64,
}

const PLACES: [&str; 5] = ["Riverwood", "Bleak Falls Barrow", "Whiterun plains", "Helgen ruins", "Embershard Mine"];
const ENEMIES: [&str; 4] = ["a bandit", "a draugr", "a frostbite spider", "a wolf"];
const PEOPLE: [&str; 3] = ["Lucan the trader", "a Whiterun guard", "Gerdur"];

impl World {
    pub fn new(seed: u64) -> World {
        World {
            tick: 0,
            place: PLACES[0],
            health: 100,
            stamina: 100,
            magicka: 100,
            enemy: None,
            loot_here: false,
            npc_here: Some(PEOPLE[0]),
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

    /// What the player sees, as text a model can read.
    pub fn frame(&self) -> String {
        let mut f = format!(
            "Location: {}\nHealth: {}/100\nStamina: {}/100\nMagicka: {}/100\n",
            self.place, self.health, self.stamina, self.magicka
        );
        match self.enemy {
            Some(e) => f.push_str(&format!("Enemy: {e} (hostile) in view\n")),
            None => f.push_str("No enemy in view\n"),
        }
        if self.loot_here {
            f.push_str("A chest with loot nearby\n");
        }
        if let Some(p) = self.npc_here {
            f.push_str(&format!("Person nearby: {p}\n"));
        }
        f
    }

    /// Apply an action; returns the reward it earned.
    pub fn apply(&mut self, action: Action) -> f64 {
        self.tick += 1;
        let roll = self.next() % 100;
        let mut reward = 0.0;
        match action {
            Action::Attack | Action::Cast if self.enemy.is_some() => {
                if action == Action::Cast {
                    self.magicka = (self.magicka - 20).max(0);
                }
                self.stamina = (self.stamina - 15).max(0);
                if roll < 60 {
                    self.enemy = None;
                    self.loot_here = true;
                    reward = 1.0;
                } else {
                    self.health -= 10;
                    reward = -0.2;
                }
            }
            Action::Block if self.enemy.is_some() => {
                self.stamina = (self.stamina - 5).max(0);
                reward = 0.1;
            }
            Action::Heal => {
                let before = self.health;
                self.health = (self.health + 30).min(100);
                self.magicka = (self.magicka - 15).max(0);
                reward = if before < 50 { 0.8 } else { -0.1 };
            }
            Action::Loot if self.loot_here => {
                self.loot_here = false;
                reward = 0.6;
            }
            Action::Talk if self.npc_here.is_some() => {
                self.npc_here = None;
                reward = 0.4;
            }
            Action::Rest if self.enemy.is_none() => {
                self.stamina = (self.stamina + 40).min(100);
                self.magicka = (self.magicka + 20).min(100);
                reward = 0.2;
            }
            Action::Explore | Action::Move | Action::Sneak => {
                self.place = PLACES[(self.next() % PLACES.len() as u64) as usize];
                self.stamina = (self.stamina - 5).max(0);
                reward = 0.3;
            }
            _ => reward -= 0.3,
        }
        // An enemy still in view strikes back.
        if self.enemy.is_some() && action != Action::Block {
            self.health -= 5 + (roll % 10) as i32;
        }
        if self.enemy.is_none() && self.next() % 100 < 35 {
            self.enemy = Some(ENEMIES[(self.next() % ENEMIES.len() as u64) as usize]);
        }
        if self.npc_here.is_none() && self.next() % 100 < 15 {
            self.npc_here = Some(PEOPLE[(self.next() % PEOPLE.len() as u64) as usize]);
        }
        if self.health <= 0 {
            // Respawn at the start, as the game would load the last save.
            self.health = 100;
            self.place = PLACES[0];
            self.enemy = None;
            reward -= 1.0;
        }
        reward
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_story() {
        let mut a = World::new(7);
        let mut b = World::new(7);
        for act in [Action::Explore, Action::Attack, Action::Loot, Action::Rest, Action::Heal] {
            assert_eq!(a.apply(act), b.apply(act));
            assert_eq!(a.frame(), b.frame());
        }
    }

    #[test]
    fn healing_restores_health() {
        let mut w = World::new(1);
        w.health = 30;
        w.enemy = None;
        w.apply(Action::Heal);
        assert!(w.health >= 55, "health {}", w.health);
    }
}
