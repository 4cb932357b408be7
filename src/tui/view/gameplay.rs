//! The game: where the player is, what they see, what the agent did and why.

use super::{field, pane, pane_title, shorten};
use crate::gameplay::GameStats;
use crate::gameplay::world::WorldView;
use crate::tui::app::{App, Pane};
use crate::tui::theme::Theme;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use std::time::Duration;

/// Scene text beyond this is not worth the space.
const SCENE_MAX: usize = 400;

pub fn render(app: &App, frame: &mut Frame, area: Rect) {
    let t = app.settings.theme;
    let focused = app.focus == Pane::Gameplay;
    let inner_width = area.width.saturating_sub(2) as usize;
    let g = &app.game;
    // The place with the scene that describes it: the world as the cycle saw it, else (no
    // scene yet) as of the last action.
    let mut lines: Vec<Line> = match g.seen.as_ref().or(g.world.as_ref()) {
        Some(w) => world_lines(t, w),
        None => vec![Line::from(Span::styled(
            "waiting for the first cycle…",
            t.dim(),
        ))],
    };
    // What the cycle waits for, once the wait is long enough to notice.
    if let Some((id, waited)) = app
        .waiting
        .filter(|(_, w)| *w >= Duration::from_millis(300))
    {
        lines.push(Line::from(vec![
            Span::styled("waiting on ", t.dim()),
            Span::styled(id.display_name(), t.warn()),
            Span::styled(format!(" {:.1} s", waited.as_secs_f64()), t.warn()),
        ]));
    }
    // What the agent had to do without: shown, not just counted.
    if g.cycles > 0 {
        lines.push(did_without(t, g));
    }
    lines.extend(scene_lines(t, g, inner_width, area.height));
    lines.extend(recent_lines(t, g, inner_width));
    // A line wider than the pane ends at a word, marked `…`, not wherever the border falls.
    let lines: Vec<Line> = lines
        .into_iter()
        .map(|l| super::fit_line(l, inner_width))
        .collect();
    // Keep the scroll within what there is to see.
    let visible = area.height.saturating_sub(2) as usize;
    let scroll = (app.gameplay_scroll as usize).min(lines.len().saturating_sub(visible)) as u16;
    let mut title = pane_title(t, "Gameplay", focused);
    if app.paused {
        title.spans.push(Span::styled("[paused] ", t.warn()));
    }
    if !g.audio.is_empty() {
        let style = if g.audio == "on" { t.dim() } else { t.warn() };
        title
            .spans
            .push(Span::styled(format!("· sound {} ", g.audio), style));
    }
    frame.render_widget(
        Paragraph::new(lines)
            .scroll((scroll, 0))
            .block(pane(t, title, focused)),
        area,
    );
}

/// The place, the enemy, and the player's vitals with who and what is here.
fn world_lines(t: Theme, w: &WorldView) -> Vec<Line<'static>> {
    let mut place = vec![
        Span::styled(w.place.clone(), t.accent()),
        Span::styled(" · ", t.dim()),
    ];
    match &w.enemy {
        Some(e) => place.push(Span::styled(format!("{e} (hostile)"), t.bad())),
        None => place.push(Span::styled("no enemy in view", t.dim())),
    }
    let mut vitals_line = [
        field(t, "health ", w.health.to_string(), vitals(t, w.health)),
        vec![Span::raw("  ")],
        field(t, "stamina ", w.stamina.to_string(), vitals(t, w.stamina)),
        vec![Span::raw("  ")],
        field(t, "magicka ", w.magicka.to_string(), vitals(t, w.magicka)),
    ]
    .concat();
    if let Some(p) = &w.npc_here {
        vitals_line.push(Span::styled(format!(" · {p} nearby"), t.plain()));
    }
    if w.loot_here {
        vitals_line.push(Span::styled(" · loot here", t.good()));
    }
    vec![Line::from(place), Line::from(vitals_line)]
}

/// Skipped calls, fallbacks, guards fired, and the last odds.
fn did_without(t: Theme, g: &GameStats) -> Line<'static> {
    let mut health = [
        field(
            t,
            "skipped ",
            g.skipped_total().to_string(),
            if g.skipped_total() > 0 {
                t.warn()
            } else {
                t.plain()
            },
        ),
        vec![Span::raw("  ")],
        field(
            t,
            "fallbacks ",
            g.fallbacks.to_string(),
            if g.fallbacks > 0 { t.warn() } else { t.plain() },
        ),
        vec![Span::raw("  ")],
        field(t, "guards ", g.guard_fired.to_string(), t.plain()),
    ]
    .concat();
    if let Some(odds) = g.last_odds {
        health.push(Span::styled(
            format!("  odds {:.0}%", odds * 100.0),
            t.dim(),
        ));
    }
    Line::from(health)
}

/// The scene, wrapped to a few lines (the actions below matter as much).
fn scene_lines(t: Theme, g: &GameStats, inner_width: usize, height: u16) -> Vec<Line<'static>> {
    let scene = g.scene.split_whitespace().collect::<Vec<_>>().join(" ");
    if scene.is_empty() {
        return Vec::new();
    }
    let scene = shorten(&scene, SCENE_MAX);
    let width = inner_width.saturating_sub(7).max(10);
    let max_lines = if height < 12 { 2 } else { 4 };
    let mut wrapped = wrap(&scene, width);
    if wrapped.len() > max_lines {
        wrapped.truncate(max_lines);
        if let Some(last) = wrapped.last_mut() {
            *last = shorten(&format!("{last} …"), width);
            if !last.ends_with('…') {
                last.push('…');
            }
        }
    }
    wrapped
        .into_iter()
        .enumerate()
        .map(|(i, l)| {
            let label = if i == 0 { "scene: " } else { "       " };
            Line::from(vec![Span::styled(label, t.dim()), Span::raw(l)])
        })
        .collect()
}

/// The last actions, newest first, each with its reward and why.
fn recent_lines(t: Theme, g: &GameStats, inner_width: usize) -> Vec<Line<'_>> {
    let mut lines = Vec::new();
    if !g.recent.is_empty() {
        lines.push(Line::from(Span::styled(
            "last actions, newest first:",
            t.dim(),
        )));
    }
    for rec in g.recent.iter().rev() {
        let reward = Span::styled(
            format!("{:+.1}", rec.reward),
            if rec.reward > 0.0 {
                t.good()
            } else if rec.reward < 0.0 {
                t.bad()
            } else {
                t.plain()
            },
        );
        let head = format!("#{} ", rec.cycle);
        let used = head.chars().count() + rec.action.name().len() + 8;
        lines.push(Line::from(vec![
            Span::styled(head, t.dim()),
            Span::styled(rec.action.name(), t.title()),
            Span::raw(" "),
            reward,
            Span::styled(
                format!(" {}", shorten(&rec.why, inner_width.saturating_sub(used))),
                t.dim(),
            ),
        ]));
    }
    lines
}

fn vitals(t: crate::tui::theme::Theme, v: i32) -> ratatui::style::Style {
    if v < 30 {
        t.bad()
    } else if v < 60 {
        t.warn()
    } else {
        t.plain()
    }
}

/// Word-wrap to `width` columns (long words are cut).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let word: String = word.chars().take(width).collect();
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            out.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(&word);
    }
    if !line.is_empty() {
        out.push(line);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn wraps_on_words() {
        assert_eq!(super::wrap("a bb ccc dddd", 6), ["a bb", "ccc", "dddd"]);
        assert_eq!(super::wrap("abcdefgh", 4), ["abcd"]);
    }
}
