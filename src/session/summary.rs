//! The shutdown account and final statistics in words: the `--headless` lines, also printed
//! after the dashboard restores the terminal. [`Account`] prints them, for both.

use super::report::SessionReport;
use crate::lifecycle::{CloseOutcome, CloseReport, ShutdownReport, StepReport, counted};
use std::io::Write;
use std::path::Path;

pub(crate) const BEGIN_LINE: &str = "[CLEANUP] Closing all connections...";

/// One system's step, e.g. `[CLEANUP] ✓ Video interpreter closed (2.1 ms)`.
pub fn step_line(r: &CloseReport, grace_ms: u64, forced_by_user: bool) -> String {
    let name = r.name.display_name();
    if let Some(e) = &r.earlier {
        let mark = match r.outcome {
            CloseOutcome::Closed | CloseOutcome::Skipped => "✓",
            CloseOutcome::Forced => "✗",
            CloseOutcome::Error => "⚠️",
            CloseOutcome::Unverified => "?",
        };
        let again = match (&r.error, &e.error) {
            (Some(now), None) => format!("close error at shutdown: {now}"),
            _ => format!("closed again at shutdown ({:.1} ms)", r.close_ms),
        };
        return format!(
            "[CLEANUP] {mark} {name} {}, {again}",
            earlier_words(e, grace_ms)
        );
    }
    let line = match r.outcome {
        CloseOutcome::Closed => format!("[CLEANUP] ✓ {name} closed ({:.1} ms)", r.close_ms),
        CloseOutcome::Forced if forced_by_user => {
            format!(
                "[CLEANUP] ✗ {name} force-closed on request ({:.1} ms)",
                r.close_ms
            )
        }
        CloseOutcome::Forced => {
            format!("[CLEANUP] ✗ {name} force-closed at the {grace_ms} ms grace deadline")
        }
        CloseOutcome::Error => format!(
            "[CLEANUP] ⚠️ {name} close error: {}",
            r.error.as_deref().unwrap_or("unknown")
        ),
        CloseOutcome::Skipped => format!("[CLEANUP] - {name} skipped (disabled)"),
        CloseOutcome::Unverified => format!(
            "[CLEANUP] ? {name} closed by the ledger's account, unverified: {} ({:.1} ms)",
            r.unverified_reason
                .as_deref()
                .unwrap_or("no second witness"),
            r.close_ms
        ),
    };
    // After the line's usual shape, which scripts read.
    match cancelled_words(r.cancelled, r.outcome) {
        Some(words) => format!("{line}, {words}"),
        None => line,
    }
}

/// Requests a close cancelled, in words: "1 request cancelled at the grace deadline" on a
/// close that is otherwise normal, "2 requests cancelled" on a forced one (its line already
/// says when); `None` for none.
pub(crate) fn cancelled_words(n: u32, outcome: CloseOutcome) -> Option<String> {
    if n == 0 {
        return None;
    }
    let n = counted(n, "request");
    Some(match outcome {
        CloseOutcome::Forced => format!("{n} cancelled"),
        _ => format!("{n} cancelled at the grace deadline"),
    })
}

/// A close asked for while the session ran, in words: "force-closed by you at 0:00:08".
pub(crate) fn earlier_words(e: &crate::lifecycle::EarlierClose, grace_ms: u64) -> String {
    let who = format!("by {} at {}", e.by, super::control::clock(e.at_s));
    match e.outcome {
        CloseOutcome::Forced if e.forced_on_request => format!("force-closed {who}"),
        CloseOutcome::Forced => {
            format!("closed {who}, forced at its {grace_ms} ms grace deadline")
        }
        CloseOutcome::Error => format!(
            "closed {who} with an error: {}",
            e.error.as_deref().unwrap_or("unknown")
        ),
        CloseOutcome::Unverified => format!("closed {who}, unverified"),
        CloseOutcome::Closed if e.cancelled > 0 => format!(
            "closed {who}, {} cancelled at its {grace_ms} ms grace deadline",
            counted(e.cancelled, "request")
        ),
        CloseOutcome::Closed | CloseOutcome::Skipped => format!("closed {who}"),
    }
}

/// A closing step that is not a system (the metrics endpoint).
pub(crate) fn endpoint_line(r: &crate::lifecycle::StepReport) -> String {
    let name = r.display_name();
    match r.outcome {
        CloseOutcome::Closed | CloseOutcome::Skipped => {
            format!("[CLEANUP] ✓ {name} closed ({:.1} ms)", r.close_ms)
        }
        CloseOutcome::Forced => format!("[CLEANUP] ✗ {name} force-closed ({:.1} ms)", r.close_ms),
        CloseOutcome::Error => format!(
            "[CLEANUP] ⚠️ {name} close error: {}",
            r.error.as_deref().unwrap_or("unknown")
        ),
        CloseOutcome::Unverified => format!(
            "[CLEANUP] ? {name} closed by the ledger's account, unverified: {} ({:.1} ms)",
            r.unverified_reason
                .as_deref()
                .unwrap_or("no second witness"),
            r.close_ms
        ),
    }
}

pub fn complete_line(s: &ShutdownReport) -> String {
    // The exact shape of ARCHITECTURE.md's line ("Shutdown"), which scripts read; skipped systems have lines of
    // their own. Unverified closes are named, never folded into "closed".
    let unverified = if s.unverified > 0 {
        format!(", {} unverified", s.unverified)
    } else {
        String::new()
    };
    let cancelled = if s.cancelled > 0 {
        format!(", {} cancelled", counted(s.cancelled, "request"))
    } else {
        String::new()
    };
    format!(
        "[CLEANUP] Complete - {} closed, {} forced, {}{unverified}{cancelled}, {} ({:.1} ms)",
        counted(s.closed, "system"),
        s.forced,
        counted(s.errors, "error"),
        s.sockets_left_text(),
        s.total_ms
    )
}

/// `Final Statistics:` and its lines.
pub(crate) fn final_statistics(r: &SessionReport) -> Vec<String> {
    let st = &r.stats;
    let mut out = vec![
        "Final Statistics:".to_string(),
        format!("  Cycles: {}", st.cycles),
        format!("  Actions: {}", st.actions),
    ];
    if !st.actions_by_kind.is_empty() {
        let mut kinds: Vec<_> = st.actions_by_kind.iter().collect();
        kinds.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let kinds: Vec<String> = kinds.iter().map(|(k, n)| format!("{k} {n}")).collect();
        out.push(format!("  Actions by kind: {}", kinds.join(", ")));
        out.push(format!(
            "  Action diversity: {} of 11 kinds",
            st.actions_by_kind.len()
        ));
    }
    out.push(format!("  Fallback actions: {}", st.fallbacks));
    out.push(format!("  Loop guards fired: {}", st.guard_fired));
    let truncated = if st.truncated > 0 {
        format!(", {} truncated", st.truncated)
    } else {
        String::new()
    };
    out.push(format!(
        "  Requests: {} ({}{truncated})",
        st.requests,
        counted(st.errors, "error"),
    ));
    out.extend(call_lines(st));
    let u = &st.usage;
    if !u.systems.is_empty() {
        let reasoning = if u.reasoning > 0 {
            format!(" ({} reasoning)", u.reasoning)
        } else {
            String::new()
        };
        // A system with tokens but no price makes the sum a floor: say which.
        let unknown = if u.cost_unknown_for.is_empty() {
            String::new()
        } else {
            format!(" + unpriced {}", u.cost_unknown_for.join(", "))
        };
        out.push(format!(
            "  Tokens: {} in, {} out{reasoning}, ${:.4}{unknown}",
            u.input, u.output, u.cost_usd
        ));
    }
    if let Some(b) = &st.game.budget {
        out.extend(budget_lines(b));
    }
    let skipped: u64 = st.skipped_calls.values().sum();
    out.push(format!("  Skipped calls: {skipped}"));
    if let Some(t) = &r.traces {
        out.push(traces_line(t));
    }
    out.push(format!(
        "  Session: {:.1} s, {} mode, {} backend",
        r.session_s, r.mode, r.backend
    ));
    out.push(format!(
        "  Shutdown: {:.1} ms ({}), {}",
        r.shutdown.report.total_ms,
        r.shutdown.reason.name(),
        r.shutdown.report.sockets_left_text()
    ));
    out
}

/// `  Traces: 120 spans sent to URL` or, when some were lost, how many and why.
pub(crate) fn traces_line(t: &crate::telemetry::otlp::TraceExport) -> String {
    if t.lost_spans == 0 {
        return format!("  Traces: {} spans sent to {}", t.sent_spans, t.endpoint);
    }
    let cause = t
        .last_error
        .as_deref()
        .or(t.failing.as_deref())
        .map(|c| format!(" ({c})"))
        .unwrap_or_default();
    format!(
        "  Traces: {} of {} spans lost, not delivered to {}{cause}",
        t.lost_spans,
        t.lost_spans + t.sent_spans,
        t.endpoint
    )
}

/// Per system, every call that did not simply answer: late, rate-limited (with the
/// service's status and retry time), cut, failed, truncated, outvoted, skipped by its
/// breaker, refused by the budget, and not asked (the vote had its majority, the system was
/// closed); a system that answered nothing is named even when its calls all "closed"
/// cleanly.
pub(crate) fn call_lines(st: &super::report::ReportStats) -> Vec<String> {
    let mut lines = Vec::new();
    for (name, c) in &st.calls {
        let id = crate::systems::SystemId::from_name(name);
        let truncated = c
            .truncated
            .max(st.truncated_by_system.get(name).copied().unwrap_or(0));
        let refused = id
            .and_then(|id| st.game.budget.as_ref()?.refused.get(&id).copied())
            .unwrap_or(0);
        let asked = c.answered + c.late + c.rate_limited + c.cut + c.errors;
        let rate_limited = match (&c.last_rate_limit, c.rate_limited) {
            (_, 0) => String::new(),
            (Some(said), _) => format!("rate-limited ({said})"),
            (None, _) => "rate-limited".to_string(),
        };
        // The calls the game went on without that no outcome above counts: never asked.
        let not_asked: Vec<(u64, String)> = c
            .skipped
            .iter()
            .filter(|(why, _)| NOT_ASKED.contains(&why.as_str()))
            .map(|(why, n)| (*n, format!("skipped ({why})")))
            .collect();
        let mut parts = Vec::new();
        for (n, what) in [
            (c.late, "late"),
            (c.rate_limited, rate_limited.as_str()),
            (c.cut, "cut"),
            (c.errors, "failed"),
            (truncated, "truncated"),
            (c.outvoted, "outvoted"),
            (c.skipped_by_breaker, "skipped by its breaker"),
            (refused, "not made for the budget"),
        ]
        .into_iter()
        .chain(not_asked.iter().map(|(n, w)| (*n, w.as_str())))
        {
            if n > 0 {
                parts.push(format!("{n} {what}"));
            }
        }
        if parts.is_empty() && !(asked > 0 && c.answered == 0) {
            continue;
        }
        let who = id.map_or(name.as_str(), |id| id.display_name());
        let never_asked: u64 = not_asked.iter().map(|(n, _)| n).sum();
        let calls = asked + c.skipped_by_breaker + refused + never_asked;
        let answered = match (asked, c.answered) {
            (0, _) => format!("asked none of its {calls} calls"),
            (_, 0) => format!("answered none of its {calls} calls"),
            (_, n) => format!("answered {n} of {calls}"),
        };
        lines.push(format!("    {who}: {answered}: {}", parts.join(", ")));
    }
    if !lines.is_empty() {
        lines.insert(0, "  Calls that did not simply answer:".to_string());
    }
    lines
}

/// [`call_lines`] from a session's figures as they stand (a viewer's, from the stream),
/// under a heading of their own.
pub(crate) fn streamed_call_lines(
    game: &crate::gameplay::GameStats,
    systems: &[crate::lifecycle::SystemSnapshot],
) -> Vec<String> {
    let lines = call_lines(&super::report::ReportStats::new(game, systems));
    if lines.is_empty() {
        return lines;
    }
    let mut out = vec!["Final Statistics (the agent's last figures):".to_string()];
    out.extend(lines);
    out
}

/// The game's reasons for a call it did not make at all (the others are outcomes of calls
/// made, counted on their own: late, rate-limited, failed, breaker open).
const NOT_ASKED: [&str; 2] = ["majority reached", "unavailable"];

/// The spend against its limits, and what the limits stopped.
pub(crate) fn budget_lines(b: &crate::lifecycle::BudgetSnapshot) -> Vec<String> {
    let limit = match b.limit_usd {
        Some(l) => format!(
            " of ${l:.4} ({:.0} %)",
            100.0 * b.spent_usd / l.max(f64::MIN_POSITIVE)
        ),
        None => String::new(),
    };
    let hour = match b.hour_limit_usd {
        Some(l) => format!(", ${:.4} of ${l:.4} this hour", b.hour_usd),
        None => String::new(),
    };
    let unknown = if b.unknown.is_empty() {
        String::new()
    } else {
        let names: Vec<&str> = b.unknown.iter().map(|id| id.name()).collect();
        format!(" + unknown for {}", names.join(", "))
    };
    let mut out = vec![format!(
        "  Budget: ${:.4} spent{limit}{hour}{unknown}",
        b.spent_usd
    )];
    let refused: u64 = b.refused.values().sum();
    if refused > 0 {
        let last = b.last_refusal.as_deref().unwrap_or("");
        out.push(format!(
            "  Calls not made for the budget: {refused} (last: {last})"
        ));
    }
    out
}

/// The text account on a writer (stdout): the begin line, a line per closing step, then
/// the Complete line, the final statistics and where the report went. `--headless` prints
/// the steps as they end; the dashboard prints them all once the terminal is back. The
/// same lines either way (scripts read them: ARCHITECTURE.md, "Shutdown").
pub(crate) struct Account<W: Write> {
    out: W,
    grace_ms: u64,
    begun: bool,
    output: Output,
}

impl<W: Write> Account<W> {
    pub(crate) fn new(out: W, grace_ms: u64) -> Account<W> {
        Account {
            out,
            grace_ms,
            begun: false,
            output: Output::default(),
        }
    }

    /// Why the account did not reach its reader (a full disk, say), if it did not; a
    /// reader that went away is not a failure ([`Output`]).
    pub(crate) fn failure(&self) -> Option<&std::io::Error> {
        self.output.failure()
    }

    /// `[CLEANUP] Closing all connections...`, once, before the first step.
    pub(crate) fn begin(&mut self) {
        if !self.begun {
            self.begun = true;
            self.say(BEGIN_LINE);
        }
    }

    /// A system's close (`forced_by_user`: a force was asked for it, a second quit or `x`).
    pub(crate) fn system(&mut self, report: &CloseReport, forced_by_user: bool) {
        self.begin();
        let line = step_line(report, self.grace_ms, forced_by_user);
        self.say(&line);
    }

    /// A closing step that is not a system (the metrics endpoint, the trace exporter...).
    pub(crate) fn endpoint(&mut self, report: &StepReport) {
        self.begin();
        self.say(&endpoint_line(report));
    }

    /// After the steps: the Complete line, the final statistics, the report's path.
    pub(crate) fn end(&mut self, report: &SessionReport, report_path: Option<&Path>) {
        self.say(&complete_line(&report.shutdown.report));
        for line in final_statistics(report) {
            self.say(&line);
        }
        if let Some(p) = report_path {
            self.say(&format!("Report: {}", p.display()));
        }
        if self.output.open() {
            let flushed = self.out.flush();
            self.output.note(flushed);
        }
    }

    /// One line; after a failed one, nothing more ([`Output`]).
    fn say(&mut self, line: &str) {
        if self.output.open() {
            let written = writeln!(self.out, "{line}");
            self.output.note(written);
        }
    }
}

/// How writing to stdout went. A reader that went away (a closed pipe: `| head`) is not the
/// session's failure: what it would have read is dropped quietly, and the shutdown, the
/// report and the exit status go on. Any other failure (`> /dev/full`, a full disk) loses
/// what a script asked for: the first one is kept, to be said on stderr and to make the exit
/// status 1. Either way, nothing more is written after it.
#[derive(Debug, Default)]
pub(crate) struct Output {
    closed: bool,
    failure: Option<std::io::Error>,
}

impl Output {
    /// Still worth writing to.
    pub(crate) fn open(&self) -> bool {
        !self.closed
    }

    pub(crate) fn note(&mut self, written: std::io::Result<()>) {
        let Err(e) = written else { return };
        self.closed = true;
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            tracing::debug!(error = %e, "stdout closed by its reader; the rest is dropped");
        } else {
            tracing::error!(error = %e, "cannot write to stdout");
            self.failure.get_or_insert(e);
        }
    }

    pub(crate) fn failure(&self) -> Option<&std::io::Error> {
        self.failure.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that fails every write with `errno`.
    struct Failing(i32);

    impl Write for Failing {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::from_raw_os_error(self.0))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Err(std::io::Error::from_raw_os_error(self.0))
        }
    }

    /// `> /dev/full` loses the account: that is kept, to be said and to fail the exit
    /// status; a reader that went away (`| head -1`) is not a failure.
    #[test]
    fn a_full_disk_fails_the_account_and_a_closed_pipe_does_not() {
        let mut full = Account::new(Failing(libc::ENOSPC), 500);
        full.begin();
        full.say("a second line");
        let e = full.failure().expect("the failure is kept");
        assert_eq!(e.raw_os_error(), Some(libc::ENOSPC));
        let mut closed = Account::new(Failing(libc::EPIPE), 500);
        closed.begin();
        closed.say("a second line");
        assert!(closed.failure().is_none());
        let mut fine = Account::new(Vec::new(), 500);
        fine.begin();
        assert!(fine.failure().is_none());
        assert_eq!(fine.out, format!("{BEGIN_LINE}\n").into_bytes());
    }

    #[test]
    fn one_of_a_thing_is_singular() {
        let s = ShutdownReport {
            grace_ms: 500,
            total_ms: 2.0,
            closed: 1,
            forced: 0,
            errors: 1,
            skipped: 9,
            unverified: 0,
            cancelled: 0,
            sockets_open_after: Some(1),
            check_ms: 0.1,
            verified: true,
            unverified_reason: None,
            systems: Vec::new(),
            endpoints: Vec::new(),
        };
        assert_eq!(
            complete_line(&s),
            "[CLEANUP] Complete - 1 system closed, 0 forced, 1 error, 1 socket left open (2.0 ms)"
        );
        let s = ShutdownReport {
            closed: 11,
            errors: 0,
            sockets_open_after: Some(0),
            ..s
        };
        assert_eq!(
            complete_line(&s),
            "[CLEANUP] Complete - 11 systems closed, 0 forced, 0 errors, 0 sockets left open (2.0 ms)"
        );
        let s = ShutdownReport { cancelled: 2, ..s };
        assert_eq!(
            complete_line(&s),
            "[CLEANUP] Complete - 11 systems closed, 0 forced, 0 errors, 2 requests cancelled, 0 sockets left open (2.0 ms)"
        );
    }
}
