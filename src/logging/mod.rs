//! Logs go to a file through `tracing`, never to the terminal the UI owns. The most recent
//! events are also kept in memory (`tui::log_buffer`) for the dashboard's log pane.

mod buffer;
mod redact;
mod writer;
pub(crate) use buffer::LogBuffer;
/// How many recent lines the log pane holds.
pub const LOG_CAPACITY: usize = buffer::DEFAULT_CAPACITY;
pub use buffer::LogLine;
pub(crate) use redact::Redactor;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use tracing::field::{Field, Visit};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::{self, FormatEvent, FormatFields};
use tracing_subscriber::fmt::{FmtContext, FormattedFields};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
pub use writer::WorkerGuard;

pub fn default_log_path() -> PathBuf {
    crate::config::paths::state_dir().join("singularis-tui.log")
}

fn filter() -> EnvFilter {
    EnvFilter::try_from_env("SINGULARIS_LOG").unwrap_or_else(|_| EnvFilter::new("info"))
}

/// Why `SINGULARIS_LOG` is not used, when it is set but not a filter (said once, at start,
/// before any screen is taken; the level is then `info`).
pub fn bad_filter() -> Option<String> {
    let value = std::env::var("SINGULARIS_LOG").ok()?;
    EnvFilter::try_new(&value).err().map(|e| {
        format!("SINGULARIS_LOG={value:?} is not a log filter ({e}); logging at info (e.g. SINGULARIS_LOG=debug)")
    })
}

/// Start logging to `path` (and to the in-memory ring). Keep the guard alive until exit:
/// dropping it flushes the log.
/// `traces`: the OTLP tracer, when trace export is on (see `telemetry::otlp`).
pub fn init(
    path: &Path,
    traces: Option<crate::telemetry::otlp::Tracer>,
) -> std::io::Result<WorkerGuard> {
    let file = open(path)?;
    let (writer, guard) = writer::non_blocking(SaysFailure {
        file,
        path: path.to_path_buf(),
    })?;
    let _ = tracing_subscriber::registry()
        .with(filter())
        .with(
            tracing_subscriber::fmt::layer()
                .event_format(LineFormat::new())
                .with_writer(writer)
                .with_ansi(false),
        )
        .with(RecentEvents {
            buffer: LogBuffer::global(),
        })
        .with(crate::telemetry::otlp::layer(traces))
        .try_init();
    Ok(guard)
}

/// This process's session id: eight hex digits, random, the same on every line of the log
/// file it writes (`session=…`, beside `pid=…`), so one run's lines can be told from another's
/// in the file all instances share, even when a pid is reused.
pub fn session_id() -> &'static str {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| {
        let mut bytes = [0u8; 4];
        // Without randomness (never on Linux), the clock's nanoseconds still tell runs apart.
        if getrandom::fill(&mut bytes).is_err() {
            bytes = chrono::Utc::now().timestamp_subsec_nanos().to_be_bytes();
        }
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    })
}

/// A line of the log file: UTC time, level, `pid=… session=…`, the spans, the target, then
/// the message and the fields.
struct LineFormat {
    pid: u32,
    session: &'static str,
}

impl LineFormat {
    fn new() -> LineFormat {
        LineFormat {
            pid: std::process::id(),
            session: session_id(),
        }
    }
}

impl<S, N> FormatEvent<S, N> for LineFormat
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let meta = event.metadata();
        write!(
            writer,
            "{} {:>5} pid={} session={} ",
            chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.6fZ"),
            meta.level(),
            self.pid,
            self.session
        )?;
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                write!(writer, "{}", span.name())?;
                if let Some(fields) = span.extensions().get::<FormattedFields<N>>()
                    && !fields.is_empty()
                {
                    write!(writer, "{{{fields}}}")?;
                }
                writer.write_char(':')?;
            }
            writer.write_char(' ')?;
        }
        write!(writer, "{}: ", meta.target())?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// The log file at `path`, for appending; made (with its directory) when missing, mode 0600
/// as the reports are: every instance of the user's appends to it, and it is nobody else's
/// to read, though nothing secret goes in (keys never reach a log line). A file that exists
/// keeps its mode.
fn open(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

/// The log file, saying once when a write fails. The writer thread (`writer`) drops
/// write errors without a word, so a full disk would silently lose the log.
struct SaysFailure {
    file: std::fs::File,
    path: PathBuf,
}

impl std::io::Write for SaysFailure {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.file
            .write(buf)
            .inspect_err(|e| write_failed(&self.path, e))
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file
            .flush()
            .inspect_err(|e| write_failed(&self.path, e))
    }
}

/// The first failed write to the log file, and whether it has been said.
#[derive(Default)]
struct WriteFailure {
    text: Option<String>,
    said: bool,
    /// The dashboard owns the terminal: stderr would scribble on it, so the dashboard says
    /// it (as a notice, through [`unsaid_write_failure`]).
    screen_owned: bool,
}

static WRITE_FAILURE: std::sync::Mutex<WriteFailure> = std::sync::Mutex::new(WriteFailure {
    text: None,
    said: false,
    screen_owned: false,
});

fn write_failure() -> std::sync::MutexGuard<'static, WriteFailure> {
    WRITE_FAILURE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Say it on stderr, as every other start-up problem is. Not `eprintln!`: with the terminal
/// gone (hangup) it would panic.
fn to_stderr(text: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "singularis-tui: {text}");
}

/// A write to the log file failed: said once, however many lines fail after it. Also a line
/// in the log pane (pushed directly: an event through `tracing` would go to the failing file).
fn write_failed(path: &Path, e: &std::io::Error) {
    let text = {
        let mut f = write_failure();
        if f.text.is_some() {
            return;
        }
        let text = format!(
            "cannot write the log file {}: {e}; log lines are being lost",
            path.display()
        );
        f.text = Some(text.clone());
        if !f.screen_owned {
            f.said = true;
            to_stderr(&text);
        }
        text
    };
    LogBuffer::global().push(LogLine {
        time: chrono::Local::now().format("%H:%M:%S").to_string(),
        level: tracing::Level::WARN,
        text,
    });
}

/// The dashboard takes (`true`) or gives back (`false`) the terminal. Given back with a
/// failure it never said, the failure goes to stderr then, so it is never lost.
pub(crate) fn screen_owned(owned: bool) {
    let mut f = write_failure();
    f.screen_owned = owned;
    if !owned
        && !f.said
        && let Some(text) = f.text.clone()
    {
        f.said = true;
        to_stderr(&text);
    }
}

/// A failed log-file write not yet said, for the dashboard to show; `None` once taken.
pub(crate) fn unsaid_write_failure() -> Option<String> {
    let mut f = write_failure();
    if f.said {
        return None;
    }
    let text = f.text.clone()?;
    f.said = true;
    Some(text)
}

/// When the log file cannot be opened: still keep recent events for the dashboard.
pub fn init_memory_only(traces: Option<crate::telemetry::otlp::Tracer>) {
    let _ = tracing_subscriber::registry()
        .with(filter())
        .with(RecentEvents {
            buffer: LogBuffer::global(),
        })
        .with(crate::telemetry::otlp::layer(traces))
        .try_init();
}

/// A layer that copies each event into a [`LogBuffer`].
pub(crate) struct RecentEvents {
    pub buffer: &'static LogBuffer,
}

impl<S: tracing::Subscriber> Layer<S> for RecentEvents {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let mut text = EventText::default();
        event.record(&mut text);
        self.buffer.push(LogLine {
            time: chrono::Local::now().format("%H:%M:%S").to_string(),
            level: *event.metadata().level(),
            text: text.finish(),
        });
    }
}

/// The message first, then `name=value` for each other field, on one line.
#[derive(Default)]
struct EventText {
    message: String,
    fields: String,
}

impl EventText {
    fn finish(self) -> String {
        let mut out = self.message;
        out.push_str(&self.fields);
        // One event, one line in the pane.
        out.replace(['\n', '\r'], " ")
    }
}

impl Visit for EventText {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={value}", field.name());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_reach_the_ring_as_one_line_each() {
        static BUFFER: std::sync::OnceLock<LogBuffer> = std::sync::OnceLock::new();
        let buffer = BUFFER.get_or_init(|| LogBuffer::new(10));
        let subscriber = tracing_subscriber::registry().with(RecentEvents { buffer });
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(
                system = "claude_client",
                code = 429,
                "request failed\nretrying"
            );
        });
        let lines = buffer.lines();
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].level, tracing::Level::WARN);
        assert_eq!(
            lines[0].text,
            "request failed retrying system=claude_client code=429"
        );
    }

    /// A new log file is the user's alone (0600), as the reports are.
    #[test]
    fn a_new_log_file_is_0600() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/singularis-tui.log");
        drop(open(&path).unwrap());
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    }

    /// Every line of the log file names its process and session (all instances share the
    /// file), then the spans, the target, the message and the fields.
    #[test]
    fn a_line_names_its_pid_and_session() {
        #[derive(Clone, Default)]
        struct Buf(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Buf {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buf = Buf::default();
        let out = buf.clone();
        let subscriber = tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer()
                .event_format(LineFormat::new())
                .with_writer(move || out.clone())
                .with_ansi(false),
        );
        tracing::subscriber::with_default(subscriber, || {
            let _span = tracing::info_span!("cycle", n = 3).entered();
            tracing::warn!(system = %"claude_client", ms = 0.28, "late");
        });
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let (time, rest) = text.split_once(' ').unwrap();
        assert!(
            chrono::DateTime::parse_from_rfc3339(time).is_ok(),
            "{time:?} in {text:?}"
        );
        let session = session_id();
        assert!(
            session.len() == 8 && session.chars().all(|c| c.is_ascii_hexdigit()),
            "{session}"
        );
        assert_eq!(
            rest,
            format!(
                " WARN pid={} session={session} cycle{{n=3}}: singularis_tui::logging::tests: \
                 late system=claude_client ms=0.28\n",
                std::process::id()
            )
        );
    }

    /// While the dashboard owns the terminal, a failing log file is for it to say (once),
    /// not stderr's; every later failure is silent. (The only test that touches this state.)
    #[test]
    fn a_write_failure_under_the_dashboard_is_its_to_say_once() {
        screen_owned(true);
        let full = std::io::Error::from_raw_os_error(libc::ENOSPC);
        write_failed(Path::new("/var/log/x.log"), &full);
        write_failed(Path::new("/var/log/x.log"), &full);
        let said = unsaid_write_failure().expect("the dashboard gets it");
        assert!(
            said.starts_with("cannot write the log file /var/log/x.log: "),
            "{said}"
        );
        assert_eq!(unsaid_write_failure(), None, "once");
        assert!(
            LogBuffer::global()
                .lines()
                .iter()
                .filter(|l| l.text == said)
                .count()
                == 1,
            "one line in the log pane"
        );
        screen_owned(false);
        assert!(write_failure().said);
    }
}
