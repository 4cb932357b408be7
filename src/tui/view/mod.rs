//! How the state is drawn: `view` is a pure function of [`App`], so the same state always
//! draws the same screen (which is what the snapshot tests rely on).

mod gameplay;
mod help;
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
    let sep = || Span::styled(" · ", t.dim());
    let mut spans = vec![
        Span::styled(app.settings.backend.clone(), t.accent()),
        sep(),
        Span::raw(app.settings.mode.name()),
        sep(),
        Span::raw(format!("up {}", uptime(app.uptime))),
        sep(),
        Span::raw(format!("cycles {}", app.game.cycles)),
        sep(),
        Span::raw(format!("actions {}", app.game.actions)),
    ];
    match &app.shutdown {
        None => {
            spans.push(sep());
            spans.push(Span::raw(format!("{:.1} req/s", app.requests_per_s)));
            let served = [
                ("metrics", &app.settings.metrics),
                ("control", &app.settings.serve),
            ];
            for (what, addr) in served {
                let Some(addr) = addr else { continue };
                spans.push(sep());
                spans.push(Span::styled(format!("{what} {addr}"), t.dim()));
                // Off loopback the endpoint is open to the network: say so where it is seen.
                let public = addr
                    .parse::<std::net::SocketAddr>()
                    .is_ok_and(|a| !a.ip().is_loopback());
                if public {
                    spans.push(Span::styled(" (open to the network)", t.warn()));
                }
            }
            if let Some(why) = &app.traces_failing {
                spans.push(sep());
                spans.push(Span::styled(
                    format!("traces: export failing ({why})"),
                    t.warn(),
                ));
            }
            if app.paused {
                spans.push(Span::raw("  "));
                spans.push(Span::styled("[PAUSED]", t.warn()));
            }
        }
        Some(sd) => {
            spans.insert(
                0,
                Span::styled(format!("shutting down ({})", sd.reason.name()), t.warn()),
            );
            spans.insert(1, sep());
        }
    }
    if let super::app::Source::Remote { url, can_command } = &app.source {
        spans.insert(0, Span::styled(format!("attached {url}"), t.accent()));
        spans.insert(1, sep());
        if !can_command {
            spans.insert(2, Span::styled("watch only", t.warn()));
            spans.insert(3, sep());
        }
    }
    let brand = Span::styled("singularis-tui  ", t.title());
    let width: usize = spans.iter().map(Span::width).sum();
    if width + brand.width() <= area.width as usize {
        spans.insert(0, brand);
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
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
            let forcing = app.shutdown.as_ref().is_some_and(|s| s.force_requested);
            let mut k = vec![];
            if !forcing {
                k.push((0, "q", "force-close everything now".into()));
            }
            k.push((1, "?", "help".into()));
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
                (0, "any key", "exit now".into()),
                (
                    1,
                    "",
                    format!(
                        "(closes by itself in {} s)",
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
    for i in by_rank {
        let (_, key, what) = &keys[i];
        // Two spaces between hints.
        let gap = if width == 0 { 0 } else { 2 };
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
            spans.push(Span::raw("  "));
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

/// At most `max` characters, the first line only, `…` where it was cut.
pub(crate) fn shorten(text: &str, max: usize) -> String {
    let line = text.lines().next().unwrap_or("").trim();
    if max == 0 {
        return String::new();
    }
    if line.chars().count() <= max && !text.trim().contains('\n') {
        return line.to_string();
    }
    let mut out: String = line.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Word-wrap `text` to `first` columns on the first line and `rest` on the others; a word
/// longer than a line is broken across lines (a path or a `key=value` is shown whole).
pub(crate) fn wrap_words(text: &str, first: usize, rest: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut line = String::new();
    let mut used = 0;
    let width = |out: &Vec<String>| if out.is_empty() { first } else { rest }.max(1);
    for word in text.split_whitespace() {
        let len = word.chars().count();
        if used > 0 && used + 1 + len > width(&out) {
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
    }

    #[test]
    fn sparkline_scales_to_the_highest_sample() {
        assert_eq!(sparkline(&[1.0, 2.0, 4.0, 8.0], 8), "▂▃▅█");
        assert_eq!(sparkline(&[5.0; 20], 3), "███");
        assert_eq!(sparkline(&[], 8), "");
    }
}
