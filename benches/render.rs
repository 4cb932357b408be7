//! Render time per frame of the dashboard: `view` drawn through ratatui's `Terminal` onto a
//! `TestBackend` (layout, widgets, buffer diff; no terminal I/O), from the fixed data of
//! `tui::fixtures`, with the clock moving each frame so the header and the spinner change
//! as they do live. `cargo bench --bench render`; figures go in BENCHMARKS.md.

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::layout::Rect;
use singularis_tui::tui::action::Action;
use singularis_tui::tui::app::App;
use singularis_tui::tui::update;
#[path = "../tests/common/fixtures.rs"]
#[allow(dead_code)]
mod fixtures;
use singularis_tui::tui::theme::Theme;
use singularis_tui::tui::view::view;
use std::time::{Duration, Instant};

const WARMUP: usize = 200;
const FRAMES: usize = 5_000;

/// Median and 99th percentile of `FRAMES` frames, in microseconds.
fn measure(mut app: App) -> (f64, f64) {
    let mut terminal =
        Terminal::new(TestBackend::new(app.area.width, app.area.height)).expect("test backend");
    let start = app.uptime;
    let mut times = Vec::with_capacity(FRAMES);
    for frame in 0..WARMUP + FRAMES {
        update(
            &mut app,
            Action::Tick(start + Duration::from_millis(100 * frame as u64 % 400)),
        );
        let t = Instant::now();
        terminal.draw(|f| view(&app, f)).expect("draw");
        if frame >= WARMUP {
            times.push(t.elapsed().as_secs_f64() * 1e6);
        }
    }
    times.sort_by(f64::total_cmp);
    (times[times.len() / 2], times[times.len() * 99 / 100])
}

/// What ratatui costs for a frame that draws nothing (buffer swap and diff).
fn baseline(width: u16, height: u16) -> (f64, f64) {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("test backend");
    let mut times = Vec::with_capacity(FRAMES);
    for _ in 0..FRAMES {
        let t = Instant::now();
        terminal.draw(|_| {}).expect("draw");
        times.push(t.elapsed().as_secs_f64() * 1e6);
    }
    times.sort_by(f64::total_cmp);
    (times[times.len() / 2], times[times.len() * 99 / 100])
}

fn main() {
    let area = |w, h| Rect::new(0, 0, w, h);
    let cases: Vec<(&str, App)> = vec![
        (
            "dashboard 80x24",
            fixtures::dashboard(area(80, 24), Theme::COLOR),
        ),
        (
            "dashboard 120x40",
            fixtures::dashboard(area(120, 40), Theme::COLOR),
        ),
        (
            "dashboard 200x60",
            fixtures::dashboard(area(200, 60), Theme::COLOR),
        ),
        (
            "dashboard 120x40 NO_COLOR",
            fixtures::dashboard(area(120, 40), Theme::PLAIN),
        ),
        (
            "shutdown mid-close 120x40",
            fixtures::shutting_down(area(120, 40), Theme::COLOR, 5, 460),
        ),
        (
            "final panel 120x40",
            fixtures::final_panel(area(120, 40), Theme::COLOR),
        ),
    ];
    println!("render time per frame, {FRAMES} frames each (TestBackend, no terminal I/O)");
    let (median, p99) = baseline(120, 40);
    println!(
        "  {:<28} median {median:>7.1} µs   p99 {p99:>7.1} µs",
        "empty frame 120x40 (baseline)"
    );
    for (name, app) in cases {
        let (median, p99) = measure(app);
        println!("  {name:<28} median {median:>7.1} µs   p99 {p99:>7.1} µs");
    }
}
