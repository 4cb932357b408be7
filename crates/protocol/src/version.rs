//! The protocol's version, `"MAJOR.MINOR"`, in the events that open a stream.

#[cfg(feature = "schema")]
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// The version this crate writes and reads. 1.1: cycles carry their critical path. 1.2:
/// each system's rate-limited calls, the calls skipped by why, truncated answers per system.
/// 1.3: the game pane (`game` in `snapshot` and `refresh`) and the agent's log (`logs` in
/// `snapshot`, then `log` events).
pub const PROTOCOL: Version = Version { major: 1, minor: 3 };

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    pub major: u32,
    pub minor: u32,
}

/// A stream this reader cannot read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionError {
    pub theirs: Version,
    pub ours: Version,
}

impl std::fmt::Display for VersionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "speaks protocol {}.x; this viewer reads {}.x",
            self.theirs.major, self.ours.major
        )
    }
}

impl std::error::Error for VersionError {}

impl Version {
    /// Whether a reader of [`PROTOCOL`] can read a stream of this version: the same major
    /// (a newer minor only adds what the reader ignores).
    pub fn check(self) -> Result<(), VersionError> {
        if self.major == PROTOCOL.major {
            Ok(())
        } else {
            Err(VersionError {
                theirs: self,
                ours: PROTOCOL,
            })
        }
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl std::str::FromStr for Version {
    type Err = String;
    fn from_str(s: &str) -> Result<Version, String> {
        let bad = || format!("not a protocol version (MAJOR.MINOR): {s:?}");
        let (major, minor) = s.split_once('.').ok_or_else(bad)?;
        Ok(Version {
            major: major.parse().map_err(|_| bad())?,
            minor: minor.parse().map_err(|_| bad())?,
        })
    }
}

impl Serialize for Version {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Version {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Version, D::Error> {
        let s = Cow::<str>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(feature = "schema")]
impl JsonSchema for Version {
    fn schema_name() -> Cow<'static, str> {
        "Version".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "The protocol's version, \"MAJOR.MINOR\": a reader of another major version stops; a newer minor only adds events and fields.",
            "type": "string",
            "pattern": "^[0-9]+\\.[0-9]+$"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_back_and_checks_the_major() {
        let v: Version = serde_json::from_str("\"1.7\"").unwrap();
        assert_eq!(v, Version { major: 1, minor: 7 });
        assert_eq!(serde_json::to_string(&PROTOCOL).unwrap(), "\"1.3\"");
        assert!(v.check().is_ok());
        let two: Version = "2.0".parse().unwrap();
        assert_eq!(
            two.check().unwrap_err().to_string(),
            "speaks protocol 2.x; this viewer reads 1.x"
        );
        assert!(serde_json::from_str::<Version>("\"1\"").is_err());
    }
}
