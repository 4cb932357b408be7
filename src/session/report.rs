//! The session report: JSON, written atomically (temp file + rename), readable only by the
//! user (mode 0600).

use super::to_protocol::ToProtocol;
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
    /// The session's spend limit (`[budget] max_usd`, `--budget-usd`) stopped a call.
    Budget,
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

/// The parts of the report's `stats` the event stream carries as they are (the protocol's
/// types: one declaration for the report, `--json` and viewers).
pub use singularis_protocol::{CallAccount, UsageLine, UsageSection};

/// Tokens and cost over every system that reported any.
pub fn usage_section(systems: &[crate::lifecycle::SystemSnapshot]) -> UsageSection {
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

/// What a system spent: its answers' usage at its price. A system that used no tokens spent
/// $0, priced or not (it is not unpriced: nothing was bought); `None`, unknown, only for
/// tokens without a price, or answers that never said what they used.
fn spent(s: &crate::lifecycle::SystemSnapshot) -> Option<f64> {
    match s.usage {
        Some(u) if u.total() == 0 => Some(0.0),
        Some(_) => s.cost_usd,
        None if s.done + s.truncated == 0 => Some(0.0),
        None => s.cost_usd,
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
                cache_read: u.cache_read,
                cache_write: u.cache_write,
                cost_usd: spent(s),
                headroom: s.headroom.as_ref().map(ToProtocol::to_protocol),
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
    /// The status the process exits with ([`exit_status`]; README.md, "Exit codes").
    pub exit_status: i32,
    /// What ran, on what: the build, the config, the clock, the faults.
    #[serde(flatten)]
    pub run: RunInfo,
    pub started_at: String,
    pub ended_at: String,
    pub session_s: f64,
    pub mode: String,
    pub backend: String,
    pub stats: ReportStats,
    pub shutdown: ShutdownSection,
    /// Why the session ended in error (reason `error`), else null.
    pub error: Option<String>,
    /// What was asked of the session while it ran (keys, viewers): who, what, when, outcome.
    pub commands: Vec<singularis_protocol::CommandRecord>,
    /// The sound output's closing step (state, notice, chime); `None` in fixtures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audio: Option<crate::audio::AudioReport>,
    /// How OTLP trace export went, when it was on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traces: Option<crate::telemetry::otlp::TraceExport>,
}

/// The exit status of a session that ended as `shutdown` says (README.md, "Exit codes"), its
/// report written (`report_written`) or not: the one rule, for the process's status and the
/// report's own `exit_status` (which, written, can only say it was written).
pub fn exit_status(shutdown: &ShutdownSection, report_written: bool) -> i32 {
    let s = &shutdown.report;
    if s.leaked() {
        3
    } else if !s.is_clean() {
        4
    } else if shutdown.reason == Reason::Error || !report_written || s.errors > 0 {
        // A closing step that failed (the trace exporter lost spans) is not a leak, but the
        // session did not end well: a script must not read it as clean.
        1
    } else if shutdown.reason == Reason::Budget {
        // Clean, but cut short by the spend limit: a script must not read it as done.
        super::EXIT_BUDGET
    } else {
        0
    }
}

/// What ran, on what (the report's `app`, `config`, `timing` and `faults`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunInfo {
    pub app: AppBuild,
    /// The config file (absolute), or `"built-in"` when none was read.
    pub config: String,
    /// The embedded sandbox's clock: `instant`, `live` or `replay:DIR`.
    pub timing: String,
    /// The sandbox faults injected, by system (`--fault`, `[sandbox.faults]`).
    pub faults: BTreeMap<String, String>,
}

/// This build: the package version, and the commit when built from a checkout.
#[derive(Debug, Clone, Serialize)]
pub struct AppBuild {
    pub version: String,
    /// `SINGULARIS_GIT_HASH` at build time (a build script sets it from the checkout's
    /// commit); null when it was not set.
    pub git_hash: Option<String>,
}

impl Default for AppBuild {
    fn default() -> AppBuild {
        AppBuild {
            version: env!("CARGO_PKG_VERSION").to_string(),
            git_hash: option_env!("SINGULARIS_GIT_HASH")
                .filter(|h| !h.is_empty())
                .map(str::to_string),
        }
    }
}

impl RunInfo {
    pub fn of(config: &crate::config::Config) -> RunInfo {
        RunInfo {
            app: AppBuild::default(),
            config: match &config.source {
                Some(p) => std::path::absolute(p)
                    .unwrap_or_else(|_| p.clone())
                    .display()
                    .to_string(),
                None => "built-in".to_string(),
            },
            timing: config.sandbox.timing.to_string(),
            faults: config
                .sandbox
                .faults
                .iter()
                .map(|(id, f)| (id.name().to_string(), f.to_string()))
                .collect(),
        }
    }
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
            usage: usage_section(systems),
            calls: systems
                .iter()
                .map(|s| {
                    (
                        s.id.name().to_string(),
                        CallAccount {
                            answered: s.done + s.truncated,
                            late: s.late,
                            rate_limited: s.rate_limited,
                            last_rate_limit: s.last_rate_limit.clone(),
                            cut: s.cut,
                            truncated: s.truncated,
                            outvoted: s.outvoted,
                            skipped_by_breaker: s.breaker_skipped,
                            skipped: game.skipped_why.get(&s.id).cloned().unwrap_or_default(),
                            errors: s.errors,
                            breaker: s.breaker.to_protocol(),
                            breaker_opens: s.breaker_opens,
                            deadline_ms: s.deadline_ms,
                            p50_ms: s.latency_p50_ms,
                            p99_ms: s.latency_p99_ms,
                        },
                    )
                })
                .collect(),
        }
    }
}

impl ToProtocol for ReportStats {
    type Protocol = singularis_protocol::ReportStats;
    fn to_protocol(&self) -> singularis_protocol::ReportStats {
        singularis_protocol::ReportStats {
            game: self.game.to_protocol(),
            requests: self.requests,
            errors: self.errors,
            calls_by_system: self.calls_by_system.clone(),
            errors_by_system: self.errors_by_system.clone(),
            connections_opened_by_system: self.connections_opened_by_system.clone(),
            truncated: self.truncated,
            truncated_by_system: self.truncated_by_system.clone(),
            usage: self.usage.clone(),
            calls: self.calls.clone(),
        }
    }
}

/// `$XDG_STATE_HOME/singularis-tui/sessions/<UTC timestamp>-<pid>.json`: sessions that end
/// in the same millisecond are different processes (and [`write_new`] never replaces one).
pub(crate) fn default_path(ended: chrono::DateTime<chrono::Utc>) -> PathBuf {
    crate::config::paths::state_dir()
        .join("sessions")
        .join(format!(
            "{}-{}.json",
            ended.format("%Y%m%dT%H%M%S%.3fZ"),
            std::process::id()
        ))
}

/// Write `bytes` as a new file at `path`, atomically, never replacing one that is there: a
/// temp file, fsync, then a hard link to the name (which fails if the name exists, where a
/// rename would replace it); a name that is taken gets `-2`, `-3`… Returns where it went.
pub(crate) fn write_new(path: &Path, bytes: &[u8]) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir_of(path))?;
    let tmp = temp_beside(path);
    let result = (|| {
        let mut f = create_private(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        let stem = path.with_extension("");
        for n in 1..=1000u32 {
            let name = match n {
                1 => path.to_path_buf(),
                n => PathBuf::from(format!("{}-{n}.json", stem.display())),
            };
            match std::fs::hard_link(&tmp, &name) {
                Ok(()) => return Ok(name),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            "a thousand reports of the same name",
        ))
    })();
    let _ = std::fs::remove_file(&tmp);
    result
}

/// Where a report given as `path` really goes: through symlinks to their target (so that the
/// link stays a link), refused when that is not a regular file (a FIFO, a device, a
/// directory: replacing it would lose it).
fn target(path: &Path) -> std::io::Result<PathBuf> {
    let mut path = path.to_path_buf();
    // The kernel's own bound on a chain of links.
    for _ in 0..40 {
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let link = std::fs::read_link(&path)?;
                path = match path.parent() {
                    Some(dir) => dir.join(link),
                    None => link,
                };
            }
            Ok(meta) => {
                return match crate::config::paths::not_regular(meta.file_type()) {
                    None => Ok(path),
                    Some(kind) => Err(std::io::Error::other(format!(
                        "{} is {kind}; a report is only written to a regular file",
                        path.display()
                    ))),
                };
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(path),
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other("too many levels of symbolic links"))
}

fn dir_of(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

fn temp_beside(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("report");
    dir_of(path).join(format!(".{name}.{}.tmp", std::process::id()))
}

fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    opts.open(path)
}

/// Check, before a session starts, that its report can be written: `path` (`--report`), or
/// else the default directory. The directory is made, and a temp file is created and removed
/// in it, which is the only test that tells a read-only or pseudo file system.
pub fn check_destination(path: Option<&Path>) -> Result<(), String> {
    let probe = |file: &Path| -> std::io::Result<()> {
        std::fs::create_dir_all(dir_of(file)).map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("cannot make the directory {}: {e}", dir_of(file).display()),
            )
        })?;
        let tmp = temp_beside(file);
        create_private(&tmp).map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("cannot create a file in {}: {e}", dir_of(file).display()),
            )
        })?;
        std::fs::remove_file(&tmp)
    };
    match path {
        Some(path) => target(path)
            .and_then(|t| probe(&t))
            .map_err(|e| format!("cannot write the report to {}: {e}", path.display())),
        None => {
            let file = default_path(chrono::Utc::now());
            probe(&file).map_err(|e| {
                format!(
                    "cannot write session reports in {}: {e} (choose another place with --report PATH)",
                    dir_of(&file).display()
                )
            })
        }
    }
}

/// Write `bytes` to `path` atomically: a temp file in the same directory, fsync, rename. A
/// symlink is written through, to its target; anything else that is not a regular file is
/// refused. Returns where the bytes went.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<PathBuf> {
    let path = target(path)?;
    std::fs::create_dir_all(dir_of(&path))?;
    let tmp = temp_beside(&path);
    let result = (|| {
        let mut f = create_private(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map(|()| path)
}

impl SessionReport {
    pub fn write(&self, path: &Path) -> std::io::Result<PathBuf> {
        write_atomic(path, &self.json()?)
    }

    /// Under a name of its own: never replaces another session's report.
    pub fn write_new(&self, path: &Path) -> std::io::Result<PathBuf> {
        write_new(path, &self.json()?)
    }

    fn json(&self) -> std::io::Result<Vec<u8>> {
        let mut json = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        json.push(b'\n');
        Ok(json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clients::{Headroom, Usage};
    use crate::lifecycle::{SystemSnapshot, SystemState};
    use crate::systems::SystemId;

    fn blank(id: SystemId) -> SystemSnapshot {
        SystemSnapshot {
            id,
            state: SystemState::Idle,
            in_flight: 0,
            done: 0,
            errors: 0,
            truncated: 0,
            retries: 0,
            usage: None,
            cost_usd: None,
            headroom: None,
            open_sockets: 0,
            connections_opened: 0,
            latency_p50_ms: None,
            latency_p99_ms: None,
            recent_latency_ms: Vec::new(),
            last_error: None,
            disabled_reason: None,
            late: 0,
            rate_limited: 0,
            last_rate_limit: None,
            cut: 0,
            outvoted: 0,
            budget_refused: 0,
            breaker_skipped: 0,
            breaker: crate::lifecycle::BreakerState::Closed,
            breaker_opens: 0,
            deadline_ms: 1000.0,
        }
    }

    /// Issue #27 item 16: a system that used no tokens cost $0 and is not listed as unpriced,
    /// whether it never answered (a 429 still told its headroom) or answered with 0 tokens;
    /// one that used tokens without a price is.
    #[test]
    fn no_tokens_cost_nothing_and_only_tokens_without_a_price_are_unpriced() {
        let headroom = Headroom {
            requests_remaining: Some(0),
            requests_limit: Some(10_000),
            tokens_remaining: None,
            tokens_limit: None,
        };
        let never_answered = SystemSnapshot {
            rate_limited: 3,
            headroom: Some(headroom),
            ..blank(SystemId::CLAUDE_CLIENT)
        };
        let zero_tokens = SystemSnapshot {
            done: 2,
            usage: Some(Default::default()),
            ..blank(SystemId::GEMINI_CLIENT)
        };
        let priced = SystemSnapshot {
            done: 1,
            usage: Some(Usage {
                input: 1000,
                output: 100,
                ..Default::default()
            }),
            cost_usd: Some(0.5),
            ..blank(SystemId::OPENAI_CLIENT)
        };
        let unpriced = SystemSnapshot {
            done: 1,
            usage: Some(Usage {
                input: 10,
                output: 1,
                ..Default::default()
            }),
            ..blank(SystemId::HYPERBOLIC_CLIENT)
        };
        let u = usage_section(&[never_answered, zero_tokens, priced, unpriced]);
        assert_eq!(u.cost_unknown_for, vec!["hyperbolic_client".to_string()]);
        assert_eq!(u.systems["claude_client"].cost_usd, Some(0.0));
        assert_eq!(u.systems["gemini_client"].cost_usd, Some(0.0));
        assert_eq!(u.cost_usd, 0.5);
    }

    #[test]
    fn a_new_report_never_replaces_another() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir
            .path()
            .join("sessions")
            .join("20261206T013000.000Z-42.json");
        let first = write_new(&p, b"one").unwrap();
        let second = write_new(&p, b"two").unwrap();
        assert_eq!(first, p);
        assert_ne!(second, p);
        assert_eq!(std::fs::read(&first).unwrap(), b"one");
        assert_eq!(std::fs::read(&second).unwrap(), b"two");
        // No temp file is left beside them.
        assert_eq!(std::fs::read_dir(p.parent().unwrap()).unwrap().count(), 2);
    }

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

    /// Atomic, not merely correct at the end: each rewrite is a new file put in place (its
    /// inode changes), and a reader polling the path meanwhile only ever sees one whole
    /// version or the other, never an empty or a partial file. Truncate-and-write fails
    /// both halves.
    #[test]
    fn a_rewrite_is_a_new_file_and_a_reader_never_sees_it_half_written() {
        use std::os::unix::fs::MetadataExt;
        use std::sync::atomic::{AtomicBool, Ordering};
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.json");
        // Big enough that writing one takes many write calls' time.
        let version = |n: u8| vec![b'a' + n; 4 << 20];
        write_atomic(&p, &version(0)).unwrap();
        let writing = AtomicBool::new(true);
        let reads = std::thread::scope(|scope| {
            let reader = scope.spawn(|| {
                let mut reads = 0u32;
                while writing.load(Ordering::Relaxed) {
                    let bytes = std::fs::read(&p).expect("the path always holds a report");
                    let first = *bytes.first().expect("never an empty file");
                    assert!(
                        bytes.len() == 4 << 20 && bytes.iter().all(|&b| b == first),
                        "a partial report: {} bytes",
                        bytes.len()
                    );
                    reads += 1;
                }
                reads
            });
            // The reader stops when the writer is done, or fails: a failed check must end
            // the test, not leave the reader polling forever.
            struct StopReading<'a>(&'a AtomicBool);
            impl Drop for StopReading<'_> {
                fn drop(&mut self) {
                    self.0.store(false, Ordering::Relaxed);
                }
            }
            let stop = StopReading(&writing);
            let mut inode = std::fs::metadata(&p).unwrap().ino();
            for n in 1..8 {
                write_atomic(&p, &version(n)).unwrap();
                let now = std::fs::metadata(&p).unwrap().ino();
                assert_ne!(now, inode, "rewrite {n} replaced the file in place");
                inode = now;
            }
            drop(stop);
            reader.join().expect("the reader saw only whole reports")
        });
        assert!(reads > 0, "the reader read while the writer wrote");
        assert_eq!(std::fs::read(&p).unwrap(), version(7));
    }
}
