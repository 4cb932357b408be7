//! Faults the sandbox can inject for one system (ARCHITECTURE.md, "The sandbox").

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Fault {
    /// Read the request, never answer.
    Hang,
    /// Drop the connection mid-response.
    Reset,
    /// Answer after this long.
    Slow(Duration),
    /// Answer with this HTTP status and the service's error JSON.
    Error(u16),
    /// 429 with `Retry-After` of this many seconds (`ratelimit` alone: 1).
    RateLimit(u64),
    /// A response stream that never ends.
    Drip,
    /// Nothing listening for that system.
    Refuse,
    /// The answer hits its token cap, in the service's own truncated shape.
    Truncate,
    /// The service is overloaded: Anthropic 529, Gemini 503 `UNAVAILABLE`, OpenAI 503.
    Overloaded,
}

/// Why a fault did not parse, in words that say what would.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseFaultError(String);

/// The longest `slow:MS`: an hour.
pub const SLOW_MAX_MS: u64 = 3_600_000;

/// The longest `ratelimit:SECS`: a day, as a service could ask after a daily quota.
pub const RATELIMIT_MAX_SECS: u64 = 86_400;

impl FromStr for Fault {
    type Err = ParseFaultError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (kind, arg) = match s.split_once(':') {
            Some((k, a)) => (k, Some(a)),
            None => (s, None),
        };
        match (kind, arg) {
            ("hang", None) => Ok(Fault::Hang),
            ("reset", None) => Ok(Fault::Reset),
            ("ratelimit", None) => Ok(Fault::RateLimit(1)),
            ("ratelimit", Some(secs)) => secs
                .parse::<u64>()
                .ok()
                .filter(|s| (1..=RATELIMIT_MAX_SECS).contains(s))
                .map(Fault::RateLimit)
                .ok_or_else(|| {
                    ParseFaultError(format!(
                        "ratelimit:SECS takes a Retry-After in seconds from 1 to {RATELIMIT_MAX_SECS}, not {secs:?}"
                    ))
                }),
            ("drip", None) => Ok(Fault::Drip),
            ("refuse", None) => Ok(Fault::Refuse),
            ("truncate", None) => Ok(Fault::Truncate),
            ("overloaded", None) => Ok(Fault::Overloaded),
            ("slow", Some(ms)) => ms
                .parse::<u64>()
                .ok()
                .filter(|ms| *ms <= SLOW_MAX_MS)
                .map(|ms| Fault::Slow(Duration::from_millis(ms)))
                .ok_or_else(|| {
                    ParseFaultError(format!(
                        "slow:MS takes a delay in milliseconds from 0 to {SLOW_MAX_MS}, not {ms:?}"
                    ))
                }),
            ("error", Some(code)) => code
                .parse::<u16>()
                .ok()
                .filter(|code| (400..=599).contains(code))
                .map(Fault::Error)
                .ok_or_else(|| {
                    ParseFaultError(format!(
                        "error:CODE takes an HTTP error status from 400 to 599, not {code:?}"
                    ))
                }),
            _ => Err(ParseFaultError(format!(
                "unknown fault {s:?} (expected hang, reset, slow:MS, error:CODE, ratelimit, ratelimit:SECS, drip, refuse, truncate or overloaded)"
            ))),
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Hang => f.write_str("hang"),
            Fault::Reset => f.write_str("reset"),
            Fault::Slow(d) => write!(f, "slow:{}", d.as_millis()),
            Fault::Error(c) => write!(f, "error:{c}"),
            Fault::RateLimit(1) => f.write_str("ratelimit"),
            Fault::RateLimit(secs) => write!(f, "ratelimit:{secs}"),
            Fault::Drip => f.write_str("drip"),
            Fault::Refuse => f.write_str("refuse"),
            Fault::Truncate => f.write_str("truncate"),
            Fault::Overloaded => f.write_str("overloaded"),
        }
    }
}

impl TryFrom<String> for Fault {
    type Error = ParseFaultError;
    fn try_from(s: String) -> Result<Self, ParseFaultError> {
        s.parse()
    }
}

impl From<Fault> for String {
    fn from(f: Fault) -> String {
        f.to_string()
    }
}

/// `SYSTEM=KIND`, as given to `--fault`. The command line is read before the config, so
/// any well-formed name is taken here; `Config::check_names` then holds it to the config's.
pub fn parse_fault_arg(s: &str) -> Result<(singularis_engine::systems::SystemId, Fault), String> {
    let (name, kind) = s
        .split_once('=')
        .ok_or_else(|| "expected SYSTEM=KIND, e.g. claude_client=hang".to_string())?;
    let id = singularis_engine::systems::SystemId::intern_named(name.trim())?;
    let fault = kind.trim().parse::<Fault>().map_err(|e| e.to_string())?;
    Ok((id, fault))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_kind_and_round_trips() {
        for s in [
            "hang",
            "reset",
            "slow:250",
            "error:503",
            "ratelimit",
            "ratelimit:90",
            "drip",
            "refuse",
            "truncate",
            "overloaded",
        ] {
            let f: Fault = s.parse().unwrap();
            assert_eq!(f.to_string(), s);
        }
        assert_eq!("ratelimit".parse::<Fault>(), Ok(Fault::RateLimit(1)));
        assert_eq!("ratelimit:1".parse::<Fault>(), Ok(Fault::RateLimit(1)));
    }

    #[test]
    fn rejects_bad_kinds() {
        for s in [
            "",
            "slow",
            "slow:x",
            "error:200",
            "error:abc",
            "boom",
            "hang:1",
            "ratelimit:0",
            "ratelimit:soon",
        ] {
            assert!(s.parse::<Fault>().is_err(), "{s} should not parse");
        }
    }
}
