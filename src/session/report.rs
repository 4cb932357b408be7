//! The session report: JSON, written atomically (temp file + rename), readable only by the
//! user (mode 0600).

use crate::gameplay::GameStats;
use crate::lifecycle::ShutdownReport;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, strum::IntoStaticStr, strum::EnumString)]
#[strum(serialize_all = "snake_case")]
#[serde(rename_all = "lowercase")]
pub enum Reason {
    Quit,
    Signal,
    Cycles,
    Error,
}

impl Reason {
    pub fn name(self) -> &'static str {
        self.into()
    }
}

/// The game's own figures (as the game keeps them: one home), with the systems' figures
/// beside them, flattened into one JSON object.
#[derive(Debug, Clone, Serialize)]
pub struct ReportStats {
    #[serde(flatten)]
    pub game: GameStats,
    pub requests: u64,
    pub errors: u64,
    pub calls_by_system: BTreeMap<String, u64>,
    pub errors_by_system: BTreeMap<String, u64>,
    pub connections_opened_by_system: BTreeMap<String, u64>,
    /// Answers cut at their output cap (counted in `requests`, not in `errors`).
    pub truncated: u64,
    pub truncated_by_system: BTreeMap<String, u64>,
    /// Tokens, estimated cost and rate-limit headroom, per system that reported any.
    pub usage: UsageSection,
    /// Every call the game made, per system, by how it ended.
    pub calls: BTreeMap<String, CallAccount>,
}

impl std::ops::Deref for ReportStats {
    type Target = GameStats;
    fn deref(&self) -> &GameStats {
        &self.game
    }
}

/// How one system's calls ended (ARCHITECTURE.md, "Deadlines and breakers").
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallAccount {
    /// Answered within the deadline (truncated answers included).
    pub answered: u64,
    /// No answer by the deadline: cancelled.
    pub late: u64,
    /// Streams cut at the deadline or a silence; what they said was used.
    pub cut: u64,
    /// Not made: the breaker was open (or this call went out as its probe).
    pub skipped_by_breaker: u64,
    pub errors: u64,
    pub breaker: crate::lifecycle::BreakerState,
    pub breaker_opens: u64,
    /// The deadline the next call would have had.
    pub deadline_ms: f64,
}

/// One system's usage as its service reported it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UsageLine {
    pub input: u64,
    pub output: u64,
    /// Part of `output` spent thinking.
    pub reasoning: u64,
    /// `None`: the model has no price in `[pricing]`.
    pub cost_usd: Option<f64>,
    /// The service's rate-limit headers on its last answer; `None`: it sends none.
    pub headroom: Option<crate::clients::Headroom>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UsageSection {
    pub systems: BTreeMap<String, UsageLine>,
    pub input: u64,
    pub output: u64,
    pub reasoning: u64,
    /// The sum over systems whose price is known.
    pub cost_usd: f64,
    /// Systems that used tokens at no known price (their cost is not in `cost_usd`).
    pub cost_unknown_for: Vec<String>,
}

impl UsageSection {
    pub fn new(systems: &[crate::lifecycle::SystemSnapshot]) -> UsageSection {
        let lines: BTreeMap<String, UsageLine> = usage_by_system(systems);
        UsageSection {
            input: lines.values().map(|l| l.input).sum(),
            output: lines.values().map(|l| l.output).sum(),
            reasoning: lines.values().map(|l| l.reasoning).sum(),
            cost_usd: lines.values().filter_map(|l| l.cost_usd).sum(),
            cost_unknown_for: lines
                .iter()
                .filter(|(_, l)| l.cost_usd.is_none())
                .map(|(k, _)| k.clone())
                .collect(),
            systems: lines,
        }
    }
}

/// Each system that reported tokens or rate-limit headroom.
pub(crate) fn usage_by_system(
    systems: &[crate::lifecycle::SystemSnapshot],
) -> BTreeMap<String, UsageLine> {
    systems
        .iter()
        .filter(|s| s.usage.is_some() || s.headroom.is_some())
        .map(|s| {
            let u = s.usage.unwrap_or_default();
            let line = UsageLine {
                input: u.input,
                output: u.output,
                reasoning: u.reasoning,
                cost_usd: s.cost_usd,
                headroom: s.headroom,
            };
            (s.id.name().to_string(), line)
        })
        .collect()
}

#[derive(Debug, Clone, Serialize)]
pub struct ShutdownSection {
    pub reason: Reason,
    #[serde(flatten)]
    pub report: ShutdownReport,
}

#[derive(Debug, Clone, Serialize)]
pub struct SessionReport {
    pub version: u32,
    pub started_at: String,
    pub ended_at: String,
    pub session_s: f64,
    pub mode: String,
    pub backend: String,
    pub stats: ReportStats,
    pub shutdown: ShutdownSection,
    /// Why the session ended in error (reason `error`), else null.
    pub error: Option<String>,
    /// The sound output's closing step (state, notice, chime); `None` in fixtures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audio: Option<crate::audio::AudioReport>,
}

impl ReportStats {
    pub fn new(game: &GameStats, systems: &[crate::lifecycle::SystemSnapshot]) -> ReportStats {
        ReportStats {
            game: game.clone(),
            requests: systems.iter().map(|s| s.requests()).sum(),
            errors: systems.iter().map(|s| s.errors).sum(),
            calls_by_system: systems
                .iter()
                .map(|s| (s.id.name().to_string(), s.requests()))
                .collect(),
            errors_by_system: systems
                .iter()
                .map(|s| (s.id.name().to_string(), s.errors))
                .collect(),
            connections_opened_by_system: systems
                .iter()
                .map(|s| (s.id.name().to_string(), s.connections_opened))
                .collect(),
            truncated: systems.iter().map(|s| s.truncated).sum(),
            truncated_by_system: systems
                .iter()
                .map(|s| (s.id.name().to_string(), s.truncated))
                .collect(),
            usage: UsageSection::new(systems),
            calls: systems
                .iter()
                .map(|s| {
                    (
                        s.id.name().to_string(),
                        CallAccount {
                            answered: s.done + s.truncated,
                            late: s.late,
                            cut: s.cut,
                            skipped_by_breaker: s.breaker_skipped,
                            errors: s.errors,
                            breaker: s.breaker,
                            breaker_opens: s.breaker_opens,
                            deadline_ms: s.deadline_ms,
                        },
                    )
                })
                .collect(),
        }
    }
}

/// `$XDG_STATE_HOME/singularis-tui/sessions/<UTC timestamp>.json`.
pub(crate) fn default_path(ended: chrono::DateTime<chrono::Utc>) -> PathBuf {
    crate::config::paths::state_dir()
        .join("sessions")
        .join(format!("{}.json", ended.format("%Y%m%dT%H%M%S%.3fZ")))
}

/// Write `bytes` to `path` atomically: a temp file in the same directory, fsync, rename.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("report");
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts.open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

impl SessionReport {
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let mut json = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        json.push(b'\n');
        write_atomic(path, &json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_and_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temp file left"
        );
    }
}
