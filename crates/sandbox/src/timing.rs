//! The sandbox's clock (ARCHITECTURE.md, "The sandbox"): `instant` answers as fast as the
//! machine can (the tests' clock), `live` keeps each model family's published pace, so the
//! agent's deadlines, quorum and dashboard run at the speed a user with keys will see;
//! `replay:DIR` serves a recording (`--record DIR`) back with its own timing.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Timing {
    /// Answer at once.
    #[default]
    Instant,
    /// Answer at each model family's measured pace: time to first token, silent reasoning,
    /// tokens per second, a seeded long tail.
    Live,
    /// Serve the recording in this directory, with its own timing.
    Replay(PathBuf),
}

impl Timing {
    pub fn is_live(&self) -> bool {
        *self == Timing::Live
    }

    /// Answers at once: the sandbox's own clock, not a service's.
    pub fn is_instant(&self) -> bool {
        *self == Timing::Instant
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown timing {0:?} (expected instant, live or replay:DIR)")]
pub struct ParseTimingError(String);

impl FromStr for Timing {
    type Err = ParseTimingError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "instant" => Ok(Timing::Instant),
            "live" => Ok(Timing::Live),
            _ => match s.strip_prefix("replay:") {
                Some(dir) if !dir.is_empty() => Ok(Timing::Replay(PathBuf::from(dir))),
                _ => Err(ParseTimingError(s.to_string())),
            },
        }
    }
}

impl fmt::Display for Timing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Timing::Instant => f.write_str("instant"),
            Timing::Live => f.write_str("live"),
            Timing::Replay(dir) => write!(f, "replay:{}", dir.display()),
        }
    }
}

impl TryFrom<String> for Timing {
    type Error = ParseTimingError;
    fn try_from(s: String) -> Result<Self, ParseTimingError> {
        s.parse()
    }
}

impl From<Timing> for String {
    fn from(t: Timing) -> String {
        t.to_string()
    }
}
