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
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
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
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    let (writer, guard) = writer::non_blocking(SaysFailure {
        file,
        path: path.to_path_buf(),
    })?;
    let _ = tracing_subscriber::registry()
        .with(filter())
        .with(
            tracing_subscriber::fmt::layer()
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
