//! The shutdown screen: the grace gauge, the account (where the table was), and the log
//! while closing, then the final statistics.

use super::layout::ShutdownAreas;
use super::{ms, pane, pane_title, shorten};
use crate::lifecycle::{CloseOutcome, CloseReport};
use crate::session::summary;
use crate::tui::app::{AccountRow, App, Phase, ShutdownState};
use crate::tui::theme::{SPINNER, Theme, outcome_symbol};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{
    Block, BorderType, Cell, Gauge, HighlightSpacing, Paragraph, Row, Table, TableState, Wrap,
};
use std::time::Duration;

const SPIN_EVERY: Duration = Duration::from_millis(80);

/// Narrower than this, the final panel takes the account's place too: the verdict, what
/// was not clean and the statistics matter more then than eleven rows of "closed".
const SIDE_BY_SIDE_MIN_WIDTH: u16 = 100;

pub fn render(app: &App, frame: &mut Frame, a: ShutdownAreas) {
    let Some(sd) = &app.shutdown else { return };
    if app.phase() != Phase::Final {
        gauge(app, sd, frame, a.gauge);
        account(app, sd, frame, a.account);
        // A remote agent that exited sends no report: its last figures say how its
        // systems' calls went, where the final statistics would be.
        if app.connection == crate::tui::app::Connection::Ended && sd.report.is_none() {
            streamed_statistics(app, frame, a.side);
        } else {
            super::log::render(app, frame, a.side, false);
        }
        return;
    }
    // Everything between the header and the footer.
    let all = a.gauge.union(a.account).union(a.side);
    // Where the report went, whole on a line of its own (wrapped only when wider than the
    // terminal), so it can be read and copied; it takes the grace gauge's place, whose
    // outcome the final panel's first line says.
    let body = match &sd.report_path {
        Some(path) => {
            let inner = all.width.saturating_sub(2).max(1) as usize;
            let height = path.chars().count().div_ceil(inner).max(1) as u16 + 2;
            let [top, body] = all.layout(&Layout::vertical([
                Constraint::Length(height),
                Constraint::Min(0),
            ]));
            report_path(app, path, frame, top);
            body
        }
        None => {
            gauge(app, sd, frame, a.gauge);
            Rect {
                y: a.account.y,
                height: all.bottom().saturating_sub(a.account.y),
                ..all
            }
        }
    };
    if all.width >= SIDE_BY_SIDE_MIN_WIDTH {
        let [account_area, side] = body.layout(&Layout::horizontal([
            Constraint::Length(a.account.width),
            Constraint::Min(0),
        ]));
        account(app, sd, frame, account_area);
        final_panel(app, sd, frame, side, false);
    } else {
        final_panel(app, sd, frame, body, true);
    }
}

fn report_path(app: &App, path: &str, frame: &mut Frame, area: Rect) {
    let t = app.settings.theme;
    let block = Block::bordered()
        .border_type(BorderType::Rounded)
        .border_style(t.dim())
        .title(Line::from(Span::styled(" Report ", t.title())));
    let inner = area.width.saturating_sub(2).max(1) as usize;
    // Cut at the width, not at words: a path has none.
    let chars: Vec<char> = path.chars().collect();
    let lines: Vec<Line> = chars
        .chunks(inner)
        .map(|c| Line::from(c.iter().collect::<String>()))
        .collect();
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

fn gauge(app: &App, sd: &ShutdownState, frame: &mut Frame, area: Rect) {
    let t = app.settings.theme;
    let grace_ms = sd.grace.as_millis();
    let (ratio, label, style) = match (sd.deadline_at, sd.verified.as_ref()) {
        (None, _) => (1.0, "stopping the game…".to_string(), t.good()),
        (Some(deadline), Some((check, at))) => {
            let at = *at;
            let ratio = ratio_left(deadline.saturating_sub(at), sd.grace);
            let took = sd.report.as_ref().map_or_else(
                || at.saturating_sub(sd.started_at).as_secs_f64() * 1e3,
                |r| r.shutdown.report.total_ms,
            );
            let forced = sd.report.as_ref().map_or(0, |r| r.shutdown.report.forced);
            let mut label = format!("done in {took:.1} ms of the {grace_ms} ms grace period");
            if forced > 0 {
                label.push_str(&format!(" · {forced} forced"));
            }
            let cancelled = sd
                .report
                .as_ref()
                .map_or(0, |r| r.shutdown.report.cancelled);
            if cancelled > 0 {
                label.push_str(&format!(
                    " · {} cancelled",
                    crate::lifecycle::counted(cancelled, "request")
                ));
            }
            let style = match (check.sockets_open_after, &check.unverified_reason) {
                (Some(n), None) => {
                    label.push_str(&format!(
                        " · {} left open",
                        crate::lifecycle::counted(n, "socket")
                    ));
                    if n > 0 { t.bad() } else { t.good() }
                }
                (n, _) => {
                    let n = n.map_or(String::new(), |n| format!("{n} open, "));
                    label.push_str(&format!(" · sockets {n}unverified"));
                    t.bad()
                }
            };
            (ratio, label, style)
        }
        // A remote agent that exited: no socket check comes over the stream (it ends first);
        // what is known is the steps and the times the agent measured.
        (_, None) if app.connection == crate::tui::app::Connection::Ended => {
            let (mut clean, mut not_clean) = (0, 0);
            for step in &sd.steps {
                let outcome = match &step.kind {
                    crate::tui::app::StepKind::Closed { report, .. } => report.outcome,
                    crate::tui::app::StepKind::Endpoint(r) => r.outcome,
                    crate::tui::app::StepKind::Closing(_) => continue,
                };
                match outcome {
                    CloseOutcome::Closed | CloseOutcome::Forced | CloseOutcome::Skipped => {
                        clean += 1
                    }
                    _ => not_clean += 1,
                }
            }
            let mut label = format!(
                "the agent exited: {clean} steps clean, {not_clean} not · times as the agent measured them · its socket check is in its report"
            );
            if not_clean == 0 {
                (1.0, std::mem::take(&mut label), t.good())
            } else {
                (1.0, label, t.bad())
            }
        }
        (Some(deadline), None) => {
            let left = deadline.saturating_sub(app.uptime);
            if sd.force_requested {
                (0.0, "forcing every system closed now".to_string(), t.bad())
            } else if left.is_zero() {
                (
                    0.0,
                    "deadline reached: cancelling what is still running".to_string(),
                    t.bad(),
                )
            } else {
                let label = format!(
                    "{} ms left of the {grace_ms} ms grace period",
                    left.as_millis()
                );
                (ratio_left(left, sd.grace), label, t.warn())
            }
        }
    };
    let block = Block::bordered()
        .border_type(BorderType::Rounded)
        .border_style(t.dim())
        .title(Line::from(Span::styled(" Grace period ", t.title())));
    let gauge = Gauge::default()
        .block(block)
        .gauge_style(style)
        .ratio(ratio)
        .label(Span::styled(label, t.title()));
    frame.render_widget(gauge, area);
}

fn ratio_left(left: Duration, grace: Duration) -> f64 {
    if grace.is_zero() {
        0.0
    } else {
        (left.as_secs_f64() / grace.as_secs_f64()).clamp(0.0, 1.0)
    }
}

fn account(app: &App, sd: &ShutdownState, frame: &mut Frame, area: Rect) {
    let t = app.settings.theme;
    let grace_ms = sd.grace.as_millis();
    let spinner =
        SPINNER[(app.uptime.as_millis() / SPIN_EVERY.as_millis()) as usize % SPINNER.len()];
    let note_width = area.width.saturating_sub(2 + 2 + 1 + 18 + 8 + 9 + 4) as usize;
    let rows: Vec<Row> = sd
        .rows()
        .into_iter()
        .map(|row| account_row(row, t, spinner, note_width, grace_ms))
        .collect();
    let widths = [
        Constraint::Length(1),
        Constraint::Length(18),
        Constraint::Length(8),
        Constraint::Length(9),
        Constraint::Fill(1),
    ];
    let done = sd.done_count();
    let mut title = pane_title(t, "Shutdown", false);
    title
        .spans
        .push(Span::styled("· dependents close first ", t.dim()));
    // The count, then the answer to the last key (`x` refused, the force under way).
    let mut bottom = vec![Span::styled(
        format!(" {done} of {} done ", sd.systems.len()),
        t.dim(),
    )];
    let room = (area.width as usize).saturating_sub(4 + bottom[0].width());
    let closing = app.phase() == Phase::ShuttingDown;
    if let Some(n) = app.visible_notice().filter(|_| closing && room > 8) {
        let style = if n.bad { t.bad() } else { t.warn() };
        bottom.push(Span::styled(
            format!("· {} ", shorten(&n.text, room - 3)),
            style,
        ));
    }
    let block = pane(t, title, false).title_bottom(Line::from(bottom));
    // While closing, the selected system is marked: `x` cuts its close now.
    let selected = (app.phase() == Phase::ShuttingDown)
        .then(|| app.selected_system().map(|s| s.id))
        .flatten()
        .and_then(|id| sd.rows().iter().position(|r| row_system(r) == Some(id)));
    let table = Table::new(rows, widths)
        .column_spacing(1)
        .block(block)
        .highlight_symbol(MARKER)
        .highlight_spacing(HighlightSpacing::Always)
        .row_highlight_style(t.selected_row());
    let mut state = TableState::default().with_selected(selected);
    frame.render_stateful_widget(table, area, &mut state);
}

/// One row of the account: a system waiting, closing or done, or an endpoint closed.
fn account_row(
    row: AccountRow,
    t: Theme,
    spinner: &'static str,
    note_width: usize,
    grace_ms: u128,
) -> Row<'static> {
    match row {
        AccountRow::Waiting(id) => Row::new(vec![
            Cell::from("·"),
            Cell::from(id.display_name()),
            Cell::from("waiting"),
            Cell::from(""),
            Cell::from(""),
        ])
        .style(t.dim()),
        AccountRow::Closing(id) => Row::new(vec![
            Cell::from(Span::styled(spinner, t.warn())),
            Cell::from(id.display_name()),
            Cell::from(Span::styled("closing", t.warn())),
            Cell::from(""),
            Cell::from(""),
        ]),
        AccountRow::Done {
            report,
            forced_by_user,
        } => {
            let style = t.outcome(report.outcome);
            let time = match report.outcome {
                CloseOutcome::Skipped => String::new(),
                _ => format!("{} ms", ms(report.close_ms)),
            };
            let note = done_note(&report, forced_by_user, grace_ms);
            Row::new(vec![
                Cell::from(Span::styled(outcome_symbol(report.outcome), style)),
                Cell::from(report.name.display_name()),
                Cell::from(Span::styled(report.outcome.name(), style)),
                right_aligned(time),
                Cell::from(Span::styled(shorten(&note, note_width), t.dim())),
            ])
        }
        AccountRow::Endpoint(report) => {
            let style = t.outcome(report.outcome);
            Row::new(vec![
                Cell::from(Span::styled(outcome_symbol(report.outcome), style)),
                Cell::from(report.display_name()),
                Cell::from(Span::styled(report.outcome.name(), style)),
                right_aligned(format!("{} ms", ms(report.close_ms))),
                Cell::from(Span::styled(
                    shorten(
                        report
                            .error
                            .as_deref()
                            .or(report.unverified_reason.as_deref())
                            .unwrap_or(""),
                        note_width,
                    ),
                    t.dim(),
                )),
            ])
        }
    }
}

/// The note beside a system's close: who closed it earlier and when, why it was forced,
/// its error, or why it is unverified; and the requests its close cut.
fn done_note(report: &CloseReport, forced_by_user: bool, grace_ms: u128) -> String {
    let mut note = match (&report.earlier, report.outcome) {
        // The outcome column already says what it was; the note says who and when.
        (Some(e), outcome) if e.outcome == outcome => {
            format!("by {} at {}", e.by, crate::session::control::clock(e.at_s))
        }
        (Some(e), _) => summary::earlier_words(e, grace_ms as u64),
        (None, CloseOutcome::Forced) if forced_by_user => "on request".to_string(),
        (None, CloseOutcome::Forced) => format!("at the {grace_ms} ms deadline"),
        (None, CloseOutcome::Error) => report.error.clone().unwrap_or_default(),
        (None, CloseOutcome::Skipped) => "disabled".to_string(),
        (None, CloseOutcome::Unverified) => report
            .unverified_reason
            .clone()
            .unwrap_or_else(|| "no second witness".into()),
        (None, CloseOutcome::Closed) => String::new(),
    };
    // A close that was normal but for the requests it cut at the deadline says
    // so; short, as the time beside it already says when.
    if report.cancelled > 0 {
        let n = crate::lifecycle::counted(report.cancelled, "request");
        let cut = format!("{n} cancelled");
        note = if note.is_empty() {
            cut
        } else {
            format!("{note}, {cut}")
        };
    }
    note
}

/// A cell whose text keeps to the right (the times).
fn right_aligned(s: String) -> Cell<'static> {
    Cell::from(Text::from(Line::from(s).right_aligned()))
}

/// The selection marker (the connections table's).
const MARKER: &str = "> ";

/// The system a row of the account is about (none for a step after the systems).
fn row_system(row: &AccountRow) -> Option<crate::systems::SystemId> {
    match row {
        AccountRow::Waiting(id) | AccountRow::Closing(id) => Some(*id),
        AccountRow::Done { report, .. } => Some(report.name),
        AccountRow::Endpoint(_) => None,
    }
}

/// A remote agent's calls that did not simply answer, per system, from its last streamed
/// figures (the lines `attach` prints once the terminal is back).
fn streamed_statistics(app: &App, frame: &mut Frame, area: Rect) {
    let t = app.settings.theme;
    let mut lines: Vec<Line> = summary::streamed_call_lines(&app.game, &app.systems)
        .into_iter()
        .skip(1)
        .map(|l| Line::from(Span::styled(l.trim_start().to_string(), t.plain())))
        .collect();
    if lines.is_empty() {
        lines.push(Line::from(Span::styled(
            "Every system answered its calls.",
            t.good(),
        )));
    }
    lines.insert(
        0,
        Line::from(Span::styled(
            "As the agent's last figures told them:",
            t.dim(),
        )),
    );
    let block = Block::bordered()
        .border_type(BorderType::Double)
        .border_style(t.accent())
        .title(Line::from(Span::styled(" Final statistics ", t.title())));
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(block),
        area,
    );
}

fn final_panel(app: &App, sd: &ShutdownState, frame: &mut Frame, area: Rect, alone: bool) {
    let t = app.settings.theme;
    let mut lines: Vec<Line> = Vec::new();
    if let Some(report) = &sd.report {
        // Essentials first, as a small screen cuts from the bottom: the verdict, what ended
        // the session, what was not clean, then the requests and the sockets.
        let shutdown = &report.shutdown.report;
        let complete = summary::complete_line(shutdown);
        let complete = complete
            .trim_start_matches("[CLEANUP] Complete - ")
            .to_string();
        let clean = shutdown.is_clean();
        lines.push(Line::from(Span::styled(
            complete,
            if clean { t.good() } else { t.bad() },
        )));
        if sd.report_path.is_none() {
            let why = sd.report_error.as_deref().unwrap_or("no report");
            lines.push(Line::from(vec![
                Span::styled("Report: ", t.dim()),
                Span::styled(format!("not written: {why}"), t.bad()),
            ]));
        }
        if let Some(error) = &report.error {
            lines.push(Line::from(vec![
                Span::styled("Ended by: ", t.dim()),
                Span::styled(error.clone(), t.bad()),
            ]));
        }
        // Without the account beside it, the steps that were not clean are named here.
        if alone {
            let grace_ms = shutdown.grace_ms;
            // A close that cancelled requests is named too: it was not quite normal.
            for r in shutdown.systems.iter().filter(|r| {
                !matches!(r.outcome, CloseOutcome::Closed | CloseOutcome::Skipped)
                    || r.cancelled > 0
            }) {
                let forced_by_user = app.closed_by_user.get(&r.name) == Some(&true);
                let line = summary::step_line(r, grace_ms, forced_by_user);
                lines.push(Line::from(Span::styled(
                    line.trim_start_matches("[CLEANUP] ").to_string(),
                    t.outcome(r.outcome),
                )));
            }
        }
        lines.push(Line::from(""));
        // The same lines as the headless summary, laid out as fields, requests and
        // shutdown first.
        let stats = summary::final_statistics(report);
        let first = |l: &&String| {
            let l = l.trim_start();
            !(l.starts_with("Requests:") || l.starts_with("Shutdown:"))
        };
        let mut ordered: Vec<&String> = stats.iter().skip(1).collect();
        ordered.sort_by_key(first);
        for l in ordered {
            let l = l.trim_start();
            match l.split_once(": ") {
                Some((k, v)) => lines.push(Line::from(vec![
                    Span::styled(format!("{k}: "), t.dim()),
                    Span::styled(v.to_string(), t.plain()),
                ])),
                None => lines.push(Line::from(l.to_string())),
            }
        }
    }
    let block = Block::bordered()
        .border_type(BorderType::Double)
        .border_style(t.accent())
        .title(Line::from(Span::styled(" Final statistics ", t.title())));
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(block),
        area,
    );
}
