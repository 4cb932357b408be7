//! The connections table: one row per system, live.

use super::layout::{table_offset, table_rows_visible};
use super::{count, ms, pane, pane_title, shorten, sparkline};
use crate::lifecycle::{SystemSnapshot, SystemState};
use crate::tui::app::{App, Pane};
use crate::tui::theme::{Theme, state_symbol};
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Block, Cell, HighlightSpacing, Row, Table, TableState};

const SPARK_WIDTH: usize = 8;
/// Name, state, in flight, done, errors, truncated, tokens, sockets, p50/p99, sparkline;
/// the last error gets the rest.
const WIDTHS: [u16; 10] = [18, 10, 3, 5, 3, 3, 5, 4, 9, SPARK_WIDTH as u16];
/// The order in which columns earn their place when the width runs short (indices in
/// [`WIDTHS`]; [`ERROR_COLUMN`] is the last error). A column is shown whole or not at all, so
/// a narrow terminal never shows one column's digits under another's header. The state
/// already says whether requests are in flight, and p50/p99 says what the sparkline draws,
/// so those go before the last error does; the selected row's detail line has it in full.
const PRIORITY: [usize; 11] = [0, 1, 4, 7, 8, ERROR_COLUMN, 3, 2, 9, 6, 5];
const ERROR_COLUMN: usize = WIDTHS.len();
/// Narrowest the last error is worth showing at ("HTTP 503 from wolfr…").
const MIN_ERROR_WIDTH: u16 = 20;
const MARKER: &str = "> ";

/// Which of [`WIDTHS`] fit in a table `width` wide, and the width left for the last error
/// (0: not shown).
fn columns(width: u16) -> (Vec<usize>, u16) {
    // Borders and the selection marker; each column then costs its width and the space
    // before it (the first has none: hence the + 1).
    let mut left = (width + 1).saturating_sub(2 + MARKER.len() as u16);
    let mut shown = Vec::new();
    let mut error = false;
    for i in PRIORITY {
        let need = if i == ERROR_COLUMN {
            MIN_ERROR_WIDTH
        } else {
            WIDTHS[i]
        } + 1;
        if need <= left {
            left -= need;
            if i == ERROR_COLUMN {
                error = true;
            } else {
                shown.push(i);
            }
        }
    }
    shown.sort_unstable();
    // The error column takes whatever the other columns left.
    (shown, if error { left + MIN_ERROR_WIDTH } else { 0 })
}

pub fn render(app: &App, frame: &mut Frame, area: Rect) {
    let t = app.settings.theme;
    let focused = app.focus == Pane::Table;
    let (shown, error_width) = columns(area.width);
    let widths_shown: Vec<u16> = shown.iter().map(|i| WIDTHS[*i]).collect();
    let error_width = error_width as usize;
    let pick = |cells: Vec<Cell<'static>>| -> Vec<Cell<'static>> {
        let last = cells.len() - 1;
        cells
            .into_iter()
            .enumerate()
            .filter(|(i, _)| *i == last || shown.contains(i))
            .map(|(_, c)| c)
            .collect()
    };

    let rows = app
        .systems
        .iter()
        .map(|s| Row::new(pick(cells(app, s, error_width))));
    let names = [
        "System",
        "State",
        "Run",
        "Done",
        "Err",
        "Cut",
        "Tok",
        "Sock",
        "p50/p99ms",
        "Latency",
        if error_width > 0 { "Last error" } else { "" },
    ];
    let header = Row::new(pick(names.map(Cell::from).to_vec())).style(t.title());
    let widths = widths_shown
        .iter()
        .map(|w| Constraint::Length(*w))
        .chain([Constraint::Length(error_width as u16)]);

    let block = block(app, area, focused);
    let table = Table::new(rows, widths)
        .header(header)
        .block(block)
        .column_spacing(1)
        .highlight_symbol(MARKER)
        .highlight_spacing(HighlightSpacing::Always)
        .row_highlight_style(t.selected_row());
    let visible = table_rows_visible(area);
    let mut state = TableState::default()
        .with_offset(table_offset(app.selected, visible))
        .with_selected((!app.systems.is_empty()).then_some(app.selected));
    frame.render_stateful_widget(table, area, &mut state);
}

/// A system's row, every column (`render` picks those that fit).
fn cells(app: &App, s: &SystemSnapshot, error_width: usize) -> Vec<Cell<'static>> {
    let t = app.settings.theme;
    let right = |s: String| Cell::from(Text::from(Line::from(s).right_aligned()));
    // The breaker beside the state: ⊘ open (skipped), ◌ half-open (probing).
    let breaker = match s.breaker {
        crate::lifecycle::BreakerState::Closed => "",
        crate::lifecycle::BreakerState::Open => " ⊘",
        crate::lifecycle::BreakerState::HalfOpen => " ◌",
    };
    let state = Span::styled(
        format!("{} {}{breaker}", state_symbol(s.state), s.state.name()),
        t.state(s.state),
    );
    // A call cut while it waited out a 429 is the service refusing, not slowness: an error
    // here, named in the detail line.
    let failed = s.errors + s.rate_limited;
    let errors = Span::styled(count(failed), if failed > 0 { t.bad() } else { t.plain() });
    let cut = Span::styled(
        count(s.truncated),
        if s.truncated > 0 { t.warn() } else { t.plain() },
    );
    // Unknown until the service reports usage: a dash, never a made-up 0.
    let tokens = s
        .usage
        .map(|u| count(u.total()))
        .unwrap_or_else(|| "–".to_string());
    let latency = match (s.latency_p50_ms, s.latency_p99_ms) {
        (Some(p50), Some(p99)) => format!("{}/{}", ms(p50), ms(p99)),
        _ => "–".to_string(),
    };
    vec![
        Cell::from(s.id.display_name()),
        Cell::from(state),
        right(s.in_flight.to_string()),
        right(count(s.done)),
        Cell::from(Text::from(Line::from(errors).right_aligned())),
        Cell::from(Text::from(Line::from(cut).right_aligned())),
        right(tokens),
        right(s.open_sockets.to_string()),
        right(latency),
        Cell::from(Span::styled(
            sparkline(&s.recent_latency_ms, SPARK_WIDTH),
            t.accent(),
        )),
        Cell::from(last_error(app, s, error_width)),
    ]
}

/// The pane's border: the tally, the spend and the mouse in the title; at the bottom, the
/// answer to the last key, else the selected row in full.
fn block(app: &App, area: Rect, focused: bool) -> Block<'static> {
    let t = app.settings.theme;
    let mut title = pane_title(t, "Connections", focused);
    // Whole parts, the least needed left out first, `…` where any were: the corners and
    // the space after the last part take 3 columns.
    let mut items: Vec<(u8, Vec<Span>)> = tally(&app.systems)
        .into_iter()
        .map(|(rank, text)| (rank, vec![Span::styled(text, t.dim())]))
        .collect();
    if let Some(b) = &app.game.budget {
        let (text, style) = budget(b);
        items.push((0, vec![Span::styled(text, style(t))]));
    }
    if app.mouse_capture {
        items.push((5, vec![Span::styled("mouse on", t.dim())]));
    }
    let room = (area.width as usize).saturating_sub(3 + title.width());
    title
        .spans
        .extend(super::fit_items(items, Span::styled(" · ", t.dim()), room));
    title.spans.push(Span::raw(" "));
    let mut block = pane(t, title, focused);
    // The bottom border: the answer to the last key, else the selected row in full.
    let room = (area.width as usize).saturating_sub(4);
    if let Some(n) = app.visible_notice() {
        let style = if n.bad { t.bad() } else { t.warn() };
        block = block.title_bottom(Line::from(Span::styled(
            format!(" {} ", shorten(&n.text, room)),
            style,
        )));
    } else if let Some(s) = app.selected_system() {
        let detail = last_error(app, s, usize::MAX);
        // The problem first: it is what the user selected the row for.
        let parts: Vec<String> = (!detail.content.is_empty())
            .then(|| detail.content.to_string())
            .into_iter()
            .chain(calls_detail(app, s))
            .chain(usage_detail(s))
            .collect();
        if !parts.is_empty() {
            let text = format!("{}: {}", s.id.display_name(), parts.join(" · "));
            let style = if detail.content.is_empty() {
                t.dim()
            } else {
                detail.style
            };
            block = block.title_bottom(Line::from(Span::styled(
                format!(" {} ", shorten(&text, room)),
                style,
            )));
        }
    }
    block
}

/// How the selected system's calls went when not simply answered: rate-limited (with the
/// service's status and retry time), late, and the calls the game went on without, by why.
fn calls_detail(app: &App, s: &SystemSnapshot) -> Option<String> {
    let mut parts = Vec::new();
    if s.rate_limited > 0 {
        let said = s
            .last_rate_limit
            .as_deref()
            .map(|w| format!(" ({w})"))
            .unwrap_or_default();
        parts.push(format!("{} rate-limited{said}", s.rate_limited));
    }
    if s.late > 0 {
        parts.push(format!("{} late", s.late));
    }
    if let Some(why) = app.game.skipped_why.get(&s.id).filter(|w| !w.is_empty()) {
        let why: Vec<String> = why.iter().map(|(w, n)| format!("{n} {w}")).collect();
        parts.push(format!("skipped {}", why.join(", ")));
    }
    (!parts.is_empty()).then(|| parts.join(" · "))
}

/// What the selected system's answers cost: tokens, price, rate-limit headroom.
fn usage_detail(s: &SystemSnapshot) -> Option<String> {
    let u = s.usage?;
    let mut out = format!("tokens in {} out {}", u.input, u.output);
    if u.reasoning > 0 {
        out.push_str(&format!(" (reasoning {})", u.reasoning));
    }
    match s.cost_usd {
        Some(c) => out.push_str(&format!(" · ${c:.4}")),
        None => out.push_str(" · cost unknown (no [pricing])"),
    }
    if s.truncated > 0 {
        out.push_str(&format!(" · {} truncated", s.truncated));
    }
    if let Some(left) = s.headroom.and_then(|h| h.fraction_left()) {
        out.push_str(&format!(" · rate limit {:.0}% left", left * 100.0));
    }
    Some(out)
}

/// `9 up`, `1 closed`, `1 disabled`, `$0.0123`: the tally's parts, each with its rank (the
/// highest is left out first on a narrow terminal).
fn tally(systems: &[SystemSnapshot]) -> Vec<(u8, String)> {
    let n = |f: &dyn Fn(SystemState) -> bool| systems.iter().filter(|s| f(s.state)).count();
    let up = n(&|s| matches!(s, SystemState::Open | SystemState::Idle));
    let mut parts = vec![(0, format!("{up} up"))];
    for (rank, state, word) in [
        (1, SystemState::Error, "failing"),
        (3, SystemState::Closing, "closing"),
        (3, SystemState::Closed, "closed"),
        (4, SystemState::Disabled, "disabled"),
    ] {
        let k = n(&|s| s == state);
        if k > 0 {
            parts.push((rank, format!("{k} {word}")));
        }
    }
    let costs: Vec<f64> = systems.iter().filter_map(|s| s.cost_usd).collect();
    if !costs.is_empty() {
        // A system with tokens but no price makes the sum a floor.
        let partial = systems
            .iter()
            .any(|s| s.usage.is_some() && s.cost_usd.is_none());
        parts.push((
            2,
            format!(
                "${:.4}{}",
                costs.iter().sum::<f64>(),
                if partial { "+" } else { "" }
            ),
        ));
    }
    parts
}

/// The spend against the session's limit, its pace and the time left at that pace; a
/// warning (`⚠`, so it shows without colour too) from 80 % of a limit.
fn budget(b: &crate::lifecycle::BudgetSnapshot) -> (String, fn(Theme) -> Style) {
    let mut parts = Vec::new();
    match b.limit_usd {
        Some(l) => parts.push(format!("budget ${:.4}/${l:.4}", b.spent_usd)),
        None => parts.push(format!("spent ${:.4}", b.spent_usd)),
    }
    if let Some(l) = b.hour_limit_usd {
        parts.push(format!("${:.4}/${l:.4} this hour", b.hour_usd));
    }
    if b.burn_usd_per_hour > 0.0 {
        parts.push(format!("${:.2}/h", b.burn_usd_per_hour));
    }
    if let Some(left) = b.time_left_s {
        parts.push(format!("{} left", super::duration_words(left)));
    }
    let (mark, style): (&str, fn(Theme) -> Style) = if b.exhausted {
        ("⚠ spent: ", Theme::bad)
    } else if b.warn {
        ("⚠ ", Theme::warn)
    } else {
        ("", Theme::dim)
    };
    (format!("{mark}{}", parts.join(" · ")), style)
}

/// The last error, short; why a system is disabled; or that the user closed it.
fn last_error(app: &App, s: &SystemSnapshot, width: usize) -> Span<'static> {
    let t = app.settings.theme;
    if s.state == SystemState::Disabled {
        let why = s.disabled_reason.as_deref().unwrap_or("disabled");
        return Span::styled(shorten(why, width), t.dim());
    }
    if let Some(forced) = app.closed_by_user.get(&s.id)
        && matches!(s.state, SystemState::Closed | SystemState::Closing)
    {
        let by = if *forced {
            "force-closed by you (r reopens)"
        } else {
            "closed by you (r reopens)"
        };
        return Span::styled(shorten(by, width), t.dim());
    }
    match &s.last_error {
        // A system that recovered keeps its last error, dimmed.
        Some(e) => Span::styled(
            shorten(e, width),
            if s.state == SystemState::Error {
                t.bad()
            } else {
                t.dim()
            },
        ),
        None => Span::raw(""),
    }
}
