//! How the state is drawn: `view` is a pure function of [`App`], so the same state always
//! draws the same screen (which is what the snapshot tests rely on).

mod gameplay;
pub(crate) mod help;
pub mod layout;
mod log;
mod remote;
mod shutdown;
mod table;

use super::app::{App, Phase};
use super::theme::Theme;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Paragraph};
use std::time::Duration;

pub fn view(app: &App, frame: &mut Frame) {
    let area = frame.area();
    match app.phase() {
        Phase::Running => {
            let a = layout::dashboard(area, app.systems.len());
            header(app, frame, a.header);
            table::render(app, frame, a.table);
            gameplay::render(app, frame, a.gameplay);
            log::render(app, frame, a.log, app.focus == super::app::Pane::Log);
            footer(app, frame, a.footer);
        }
        Phase::ShuttingDown | Phase::Final => {
            let a = layout::shutdown(area);
            header(app, frame, a.header);
            shutdown::render(app, frame, a);
            footer(app, frame, a.footer);
        }
    }
    if app.help_open {
        help::render(app, frame, area);
    }
    if app.confirm_quit {
        remote::confirm_quit(app, frame, area);
    }
}

fn header(app: &App, frame: &mut Frame, area: Rect) {
    if remote::banner(app, frame, area) {
        return;
    }
    let t = app.settings.theme;
    // Each item with its rank: when the width runs short the highest ranks go first, whole,
    // and a `…` says some did (never a figure cut in two: "· 9" for "97.0 req/s").
    let mut items: Vec<(u8, Vec<Span>)> = Vec::new();
    if let super::app::Source::Remote { url, can_command } = &app.source {
        items.push((0, vec![Span::styled(format!("attached {url}"), t.accent())]));
        if !can_command {
            items.push((0, vec![Span::styled("watch only", t.warn())]));
        }
    }
    if let Some(sd) = &app.shutdown {
        items.push((
            0,
            vec![Span::styled(
                format!("shutting down ({})", sd.reason.name()),
                t.warn(),
            )],
        ));
    }
    items.extend([
        (
            2,
            vec![Span::styled(app.settings.backend.clone(), t.accent())],
        ),
        (6, vec![Span::raw(app.settings.mode.name())]),
        (
            3,
            vec![Span::raw(match app.session_uptime() {
                Some(up) => format!("up {}", uptime(up)),
                None => "up —".to_string(),
            })],
        ),
        (1, vec![Span::raw(format!("cycles {}", app.game.cycles))]),
        (5, vec![Span::raw(format!("actions {}", app.game.actions))]),
    ]);
    if app.shutdown.is_none() {
        items.push((
            4,
            vec![Span::raw(format!("{:.1} req/s", app.requests_per_s))],
        ));
        let served = [
            ("metrics", &app.settings.metrics),
            ("control", &app.settings.serve),
        ];
        for (what, addr) in served {
            let Some(addr) = addr else { continue };
            let mut item = vec![Span::styled(format!("{what} {addr}"), t.dim())];
            // Off loopback the endpoint is open to the network: say so where it is seen.
            let public = addr
                .parse::<std::net::SocketAddr>()
                .is_ok_and(|a| !a.ip().is_loopback());
            if public {
                item.push(Span::styled(" (open to the network)", t.warn()));
            }
            // Open to the network matters as much as the pause.
            items.push((if public { 0 } else { 7 }, item));
        }
        if let Some(why) = &app.traces_failing {
            items.push((
                0,
                vec![Span::styled(
                    format!("traces: export failing ({why})"),
                    t.warn(),
                )],
            ));
        }
        if app.paused {
            items.push((0, vec![Span::styled("[PAUSED]", t.warn())]));
        }
    }
    let width = area.width as usize;
    let mut spans = fit_items(items, Span::styled(" · ", t.dim()), width);
    let brand = Span::styled("singularis-tui  ", t.title());
    let used: usize = spans.iter().map(Span::width).sum();
    if used + brand.width() <= width {
        spans.insert(0, brand);
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// Whole items, in their order, joined by `sep`, within `width` columns: when they do not
/// all fit, the least important (highest rank; the later of equals) are left out, and a
/// last `…` says some were.
pub(crate) fn fit_items<'a>(
    items: Vec<(u8, Vec<Span<'a>>)>,
    sep: Span<'a>,
    width: usize,
) -> Vec<Span<'a>> {
    let item_width = |i: &Vec<Span>| i.iter().map(Span::width).sum::<usize>();
    let widths: Vec<usize> = items.iter().map(|(_, i)| item_width(i)).collect();
    let mut kept = vec![true; items.len()];
    let total = |kept: &[bool], more: bool| {
        let n = kept.iter().filter(|k| **k).count() + usize::from(more);
        let items: usize = widths
            .iter()
            .zip(kept)
            .filter(|(_, k)| **k)
            .map(|(w, _)| w)
            .sum();
        items + usize::from(more) + n.saturating_sub(1) * sep.width()
    };
    if total(&kept, false) > width {
        let mut order: Vec<usize> = (0..items.len()).collect();
        // The first to go: the highest rank, the later one of equal ranks.
        order.sort_by_key(|i| (std::cmp::Reverse(items[*i].0), std::cmp::Reverse(*i)));
        for i in order {
            if total(&kept, true) <= width {
                break;
            }
            kept[i] = false;
        }
    }
    let cut = kept.iter().any(|k| !k);
    let mut out = Vec::new();
    for ((_, item), _) in items.into_iter().zip(&kept).filter(|(_, k)| **k) {
        if !out.is_empty() {
            out.push(sep.clone());
        }
        out.extend(item);
    }
    if cut && total(&kept, true) <= width {
        if !out.is_empty() {
            out.push(sep.clone());
        }
        out.push(Span::styled("…", sep.style));
    }
    out
}

fn footer(app: &App, frame: &mut Frame, area: Rect) {
    let t = app.settings.theme;
    // Each hint with its rank: the most important are kept when the width runs short (`? help`
    // right after `q quit`, since it lists everything left out); shown in their own order.
    let keys: Vec<(u8, &str, String)> = match app.phase() {
        Phase::Running => vec![
            (0, "q", "quit".into()),
            (3, "↑↓", "select".into()),
            (2, "x", "force-close".into()),
            (4, "c", "close".into()),
            (5, "r", "reopen".into()),
            (
                6,
                "p",
                if app.paused {
                    "resume".into()
                } else {
                    "pause".into()
                },
            ),
            (1, "?", "help".into()),
            (7, "Tab", "focus".into()),
            (
                8,
                "m",
                if app.mouse_capture {
                    "mouse off".into()
                } else {
                    "mouse".into()
                },
            ),
        ],
        Phase::ShuttingDown => {
            let sd = app.shutdown.as_ref();
            let forcing = sd.is_some_and(|s| s.force_requested);
            let paced = sd.is_some_and(|s| !s.skipped) && !app.hurry;
            let mut k = vec![];
            if !forcing {
                k.push((0, "q", "force the rest and exit".into()));
            }
            if paced {
                k.push((1, "any key", "show it all now".into()));
            }
            if !forcing {
                k.push((3, "↑↓ x", "cut the selected one".into()));
            }
            k.push((2, "?", "help".into()));
            k
        }
        Phase::Final => {
            let left = app
                .shutdown
                .as_ref()
                .and_then(|s| s.final_since)
                .map(|since| (since + app.linger()).saturating_sub(app.uptime))
                .unwrap_or_default();
            vec![
                (0, "any key", "to exit".into()),
                (
                    1,
                    "",
                    format!(
                        "· exits by itself in {} s",
                        left.as_secs_f64().ceil() as u64
                    ),
                ),
            ]
        }
    };
    let mut keys = keys;
    if app.is_remote() && app.phase() == Phase::Running {
        keys.insert(1, (1, "d", "detach".into()));
    }
    if app.is_remote() && app.connection == super::app::Connection::Ended {
        keys = vec![(0, "any key", "leave".into())];
    }
    // A bare note has no key before it.
    let text = |key: &str, what: &str| {
        if key.is_empty() {
            what.to_string()
        } else {
            format!(" {what}")
        }
    };
    let mut by_rank: Vec<usize> = (0..keys.len()).collect();
    by_rank.sort_by_key(|i| keys[*i].0);
    let mut kept = vec![false; keys.len()];
    let mut width = 0;
    // Two spaces between hints; one before a bare note, which goes with the hint before it.
    let gap = |key: &str| if key.is_empty() { 1 } else { 2 };
    for i in by_rank {
        let (_, key, what) = &keys[i];
        let gap = if width == 0 { 0 } else { gap(key) };
        let item = gap + Span::raw(*key).width() + text(key, what).chars().count();
        if width + item <= area.width as usize {
            width += item;
            kept[i] = true;
        }
    }
    let mut spans = Vec::new();
    for (_, key, what) in keys.iter().zip(&kept).filter(|(_, k)| **k).map(|(k, _)| k) {
        let text = text(key, what);
        if !spans.is_empty() {
            spans.push(Span::raw(" ".repeat(gap(key))));
        }
        spans.push(Span::styled(*key, t.key()));
        spans.push(Span::styled(
            text,
            if key.is_empty() { t.dim() } else { t.plain() },
        ));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// A pane's frame: thick border when focused (visible without colour too).
fn pane<'a>(theme: Theme, title: Line<'a>, focused: bool) -> Block<'a> {
    Block::bordered()
        .border_type(if focused {
            BorderType::Thick
        } else {
            BorderType::Rounded
        })
        .border_style(theme.border(focused))
        .title(title)
}

fn pane_title(theme: Theme, text: &str, focused: bool) -> Line<'static> {
    let style = if focused {
        theme.title().patch(theme.accent())
    } else {
        theme.title()
    };
    Line::from(Span::styled(format!(" {text} "), style))
}

/// `H:MM:SS`.
pub fn uptime(d: Duration) -> String {
    let s = d.as_secs();
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// A span of time in the largest units that say it: `45 s`, `12 min`, `3.5 h`.
pub fn duration_words(secs: f64) -> String {
    if secs < 90.0 {
        format!("{:.0} s", secs.max(0.0))
    } else if secs < 5400.0 {
        format!("{:.0} min", secs / 60.0)
    } else {
        format!("{:.1} h", secs / 3600.0)
    }
}

/// Milliseconds in at most 5 characters.
pub fn ms(v: f64) -> String {
    if v < 10.0 {
        format!("{v:.1}")
    } else if v < 1000.0 {
        format!("{v:.0}")
    } else if v < 100_000.0 {
        format!("{:.1}s", v / 1000.0)
    } else {
        format!("{:.0}s", v / 1000.0)
    }
}

/// A count in at most 5 characters.
pub fn count(n: u64) -> String {
    match n {
        0..=99_999 => n.to_string(),
        100_000..=9_999_999 => format!("{}k", n / 1000),
        _ => format!("{}M", n / 1_000_000),
    }
}

/// At most `max` characters, the first line only, `…` where it was cut: at the end of a
/// word when one ends in the second half of the room, so a word is not cut in two ("reque…").
pub(crate) fn shorten(text: &str, max: usize) -> String {
    let line = text.lines().next().unwrap_or("").trim();
    if max == 0 {
        return String::new();
    }
    if line.chars().count() <= max && !text.trim().contains('\n') {
        return line.to_string();
    }
    let chars: Vec<char> = line.chars().collect();
    let keep = max.saturating_sub(1).min(chars.len());
    let mid_word = keep > 0
        && keep < chars.len()
        && !chars[keep - 1].is_whitespace()
        && !chars[keep].is_whitespace();
    let keep = if mid_word {
        chars[..keep]
            .iter()
            .rposition(|c| c.is_whitespace())
            .filter(|at| *at >= keep / 2)
            .map_or(keep, |at| at + 1)
    } else {
        keep
    };
    let mut out: String = chars[..keep].iter().collect();
    out.push('…');
    out
}

/// `line` within `width` columns: whole when it fits, else cut after a whole word (one that
/// ends in the second half of the room; a word is cut only when none does) and marked ` …`.
pub(crate) fn fit_line(line: Line<'_>, width: usize) -> Line<'_> {
    if line.width() <= width {
        return line;
    }
    let all: Vec<(char, Style)> = line
        .spans
        .iter()
        .flat_map(|s| {
            let style = line.style.patch(s.style);
            s.content.chars().map(move |c| (c, style))
        })
        .collect();
    let wide = |c: char| Span::raw(c.to_string()).width();
    // As many characters as fit in `room` columns.
    let fit = |room: usize| {
        let mut used = 0;
        all.iter()
            .take_while(|(c, _)| {
                used += wide(*c);
                used <= room
            })
            .count()
    };
    // Room for " …" after the last whole word: back to the end of the word the room cuts.
    let n = fit(width.saturating_sub(2));
    let mid_word =
        n > 0 && n < all.len() && !all[n - 1].0.is_whitespace() && !all[n].0.is_whitespace();
    let at_word = if mid_word {
        all[..n]
            .iter()
            .rposition(|(c, _)| c.is_whitespace())
            .filter(|at| *at >= n / 2)
    } else {
        Some(n)
    };
    let (mut kept, mark) = match at_word {
        Some(at) => {
            // Without a dangling separator: "Bleak Falls Barrow …", not "Barrow · …".
            let mut kept = all[..at].to_vec();
            while kept
                .last()
                .is_some_and(|(c, _)| c.is_whitespace() || *c == '·')
            {
                kept.pop();
            }
            (kept, " …")
        }
        // One word longer than half the room: cut in it.
        None => (all[..fit(width.saturating_sub(1))].to_vec(), "…"),
    };
    let style = kept.last().map(|(_, s)| *s).unwrap_or_default();
    kept.extend(mark.chars().map(|c| (c, style)));
    let mut spans: Vec<Span> = Vec::new();
    for (c, style) in kept {
        match spans.last_mut() {
            Some(last) if last.style == style => last.content.to_mut().push(c),
            _ => spans.push(Span::styled(c.to_string(), style)),
        }
    }
    Line::from(spans)
}

/// Word-wrap `text` to `first` columns on the first line and `rest` on the others; a word
/// that does not fit the first line but fits the others starts on the second (the first
/// is left short), and only a word longer than a whole line is broken across lines (a path
/// or a `key=value` is shown whole).
pub(crate) fn wrap_words(text: &str, first: usize, rest: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut line = String::new();
    let mut used = 0;
    let width = |out: &Vec<String>| if out.is_empty() { first } else { rest }.max(1);
    for word in text.split_whitespace() {
        let len = word.chars().count();
        if (used > 0 && used + 1 + len > width(&out))
            || (used == 0 && out.is_empty() && len > width(&out) && len <= rest.max(1))
        {
            out.push(std::mem::take(&mut line));
            used = 0;
        }
        if used > 0 {
            line.push(' ');
            used += 1;
        }
        for c in word.chars() {
            if used == width(&out) {
                out.push(std::mem::take(&mut line));
                used = 0;
            }
            line.push(c);
            used += 1;
        }
    }
    if !line.is_empty() || out.is_empty() {
        out.push(line);
    }
    out
}

const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// The last `width` samples as bars, scaled to the highest of them.
pub(crate) fn sparkline(samples: &[f64], width: usize) -> String {
    let tail = &samples[samples.len().saturating_sub(width)..];
    let max = tail.iter().copied().fold(0.0_f64, f64::max);
    tail.iter()
        .map(|v| {
            if max <= 0.0 {
                BARS[0]
            } else {
                BARS[((v / max) * (BARS.len() - 1) as f64)
                    .round()
                    .clamp(0.0, 7.0) as usize]
            }
        })
        .collect()
}

/// `key: value` with the key dimmed.
fn field<'a>(theme: Theme, key: &'a str, value: String, value_style: Style) -> Vec<Span<'a>> {
    vec![
        Span::styled(key, theme.dim()),
        Span::styled(value, value_style),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_short() {
        assert_eq!(uptime(Duration::from_secs(3723)), "1:02:03");
        assert_eq!(ms(2.14), "2.1");
        assert_eq!(ms(123.4), "123");
        assert_eq!(ms(1234.0), "1.2s");
        assert_eq!(count(123_456), "123k");
        assert_eq!(
            shorten("connection refused (os error 111)", 12),
            "connection …"
        );
        assert_eq!(shorten("two\nlines", 20), "two…");
        assert_eq!(shorten("fits", 20), "fits");
        // A word is not cut in two when another ends in the room's second half.
        assert_eq!(shorten("request failed system=x", 12), "request …");
        assert_eq!(shorten("supercalifragilistic", 8), "superca…");
    }

    #[test]
    fn fit_line_cuts_at_a_word_and_marks_the_cut() {
        let line = Line::from(vec![
            Span::raw("Bleak Falls Barrow · "),
            Span::raw("a draugr (hostile)"),
        ]);
        assert_eq!(fit_line(line.clone(), 40).to_string(), line.to_string());
        assert_eq!(
            fit_line(line.clone(), 29).to_string(),
            "Bleak Falls Barrow · a …"
        );
        assert_eq!(fit_line(line, 21).to_string(), "Bleak Falls Barrow …");
        assert_eq!(fit_line(Line::from("abcdefghij"), 5).to_string(), "abcd…");
    }

    #[test]
    fn fit_items_drops_whole_items_least_needed_first_and_says_so() {
        let items = |v: &[(u8, &'static str)]| -> Vec<(u8, Vec<Span<'static>>)> {
            v.iter().map(|(r, t)| (*r, vec![Span::raw(*t)])).collect()
        };
        let text = |spans: Vec<Span>| Line::from(spans).to_string();
        let all = items(&[(0, "sandbox"), (2, "up 0:01:23"), (1, "97.0 req/s")]);
        assert_eq!(
            text(fit_items(all.clone(), Span::raw(" · "), 80)),
            "sandbox · up 0:01:23 · 97.0 req/s"
        );
        // No room for all: the highest rank goes, whole, and `…` says so.
        assert_eq!(
            text(fit_items(all.clone(), Span::raw(" · "), 30)),
            "sandbox · 97.0 req/s · …"
        );
        assert_eq!(
            text(fit_items(all.clone(), Span::raw(" · "), 12)),
            "sandbox · …"
        );
        assert_eq!(text(fit_items(all, Span::raw(" · "), 3)), "…");
    }

    #[test]
    fn wrap_words_breaks_only_what_does_not_fit() {
        assert_eq!(wrap_words("a bb ccc dddd", 6, 6), ["a bb", "ccc", "dddd"]);
        assert_eq!(wrap_words("abcdefgh", 4, 4), ["abcd", "efgh"]);
        assert_eq!(
            wrap_words("x /a/long/path", 6, 6),
            ["x", "/a/lon", "g/path"]
        );
        assert_eq!(
            wrap_words("key=value more", 3, 8),
            ["key", "=value", "more"]
        );
        assert_eq!(wrap_words("", 6, 6), [""]);
        // A word too long for a short first line starts on the next one, whole (at 45
        // columns the log's first line has room for 5: "reque" was cut from "request").
        assert_eq!(wrap_words("request failed", 5, 18), ["", "request failed"]);
    }

    #[test]
    fn sparkline_scales_to_the_highest_sample() {
        assert_eq!(sparkline(&[1.0, 2.0, 4.0, 8.0], 8), "▂▃▅█");
        assert_eq!(sparkline(&[5.0; 20], 3), "███");
        assert_eq!(sparkline(&[], 8), "");
    }
}
