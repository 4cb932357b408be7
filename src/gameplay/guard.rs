//! Loop guards: a real agent gets stuck (the camera turning forever, the same useless action
//! again and again, nothing working for a long while). Each guard notices one such loop and
//! breaks it by forcing a different, sensible action.

use super::{Action, World};

/// Consecutive camera turns without progress before the next is refused (a full circle).
pub(crate) const CAMERA_LIMIT: u32 = 3;
/// The same action this many times in a row without progress: the next one is replaced.
pub const REPEAT_LIMIT: u32 = 3;
/// Cycles without any progress at all before the guard changes the scene.
pub const STALL_LIMIT: u32 = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr, strum::EnumString)]
#[strum(serialize_all = "snake_case")]
pub enum GuardKind {
    /// The camera kept turning and nothing new came into view.
    Camera,
    /// The same action kept earning nothing.
    Repeat,
    /// Nothing at all earned anything for a long while.
    Stall,
}

impl GuardKind {
    pub fn name(self) -> &'static str {
        self.into()
    }
}

/// What the guard remembers of recent cycles. "Progress" is a positive reward.
#[derive(Debug, Clone, Default)]
pub struct LoopGuard {
    last: Option<Action>,
    /// How many times in a row `last` was taken without progress.
    repeats: u32,
    camera_turns: u32,
    idle: u32,
}

impl LoopGuard {
    /// `None` if `chosen` may go ahead; else the action to take instead and which guard fired.
    pub fn check(&self, chosen: Action, world: &World) -> Option<(Action, GuardKind)> {
        let kind = if chosen == Action::TurnCamera && self.camera_turns >= CAMERA_LIMIT {
            GuardKind::Camera
        } else if self.last == Some(chosen) && self.repeats >= REPEAT_LIMIT {
            GuardKind::Repeat
        } else if self.idle >= STALL_LIMIT && chosen != Action::Move {
            GuardKind::Stall
        } else {
            return None;
        };
        let forced = match kind {
            // A new place is the surest way out of a rut, unless a fight holds the player.
            GuardKind::Stall if world.enemy.is_none() => Action::Move,
            _ => world.suggest(&[chosen]),
        };
        (forced != chosen).then_some((forced, kind))
    }

    /// Remember what was done and what it earned.
    pub fn observe(&mut self, action: Action, reward: f64) {
        let progress = reward > 0.0;
        if self.last == Some(action) && !progress {
            self.repeats += 1;
        } else {
            self.repeats = u32::from(!progress);
        }
        self.last = Some(action);
        self.camera_turns = match (action, progress) {
            (Action::TurnCamera, false) => self.camera_turns + 1,
            _ => 0,
        };
        self.idle = if progress { 0 } else { self.idle + 1 };
    }
}
