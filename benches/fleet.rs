//! Render time per frame of the fleet view (`attach URL1 URL2 …`): the table of 20 agents,
//! each row computed from its agent's `App` (states counted, tokens and cost summed, the
//! shutdown account read), drawn through ratatui's `Terminal` onto a `TestBackend` (no
//! terminal I/O), from the fixed data of `tests/common/fixtures.rs`, with the clock moving
//! each frame. `cargo bench --bench fleet`; figures go in BENCHMARKS.md.

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::layout::Rect;
use singularis_tui::attach::fleet::{Fleet, view};
use singularis_tui::tui::action::Action;
use singularis_tui::tui::update;
#[path = "../tests/common/fixtures.rs"]
#[allow(dead_code)]
mod fixtures;
use singularis_tui::tui::theme::Theme;
use std::time::{Duration, Instant};

const WARMUP: usize = 200;
const FRAMES: usize = 5_000;

/// Median and 99th percentile of `FRAMES` frames, in microseconds.
fn measure(mut fleet: Fleet, width: u16, height: u16) -> (f64, f64) {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("test backend");
    let start = Duration::from_secs(756);
    let mut times = Vec::with_capacity(FRAMES);
    for frame in 0..WARMUP + FRAMES {
        let now = start + Duration::from_millis(100 * frame as u64 % 400);
        for agent in &mut fleet.agents {
            update(&mut agent.app, Action::Tick(now));
        }
        let t = Instant::now();
        terminal.draw(|f| view(&fleet, f)).expect("draw");
        if frame >= WARMUP {
            times.push(t.elapsed().as_secs_f64() * 1e6);
        }
    }
    times.sort_by(f64::total_cmp);
    (times[times.len() / 2], times[times.len() * 99 / 100])
}

fn main() {
    let area = |w, h| Rect::new(0, 0, w, h);
    println!(
        "fleet view render time per frame, {FRAMES} frames each (TestBackend, no terminal I/O)"
    );
    for (name, n, w, h) in [
        ("20 agents 160x30", 20, 160, 30),
        ("20 agents 200x60", 20, 200, 60),
        ("20 agents 120x24 (cut)", 20, 120, 24),
    ] {
        let fleet = fixtures::fleet(area(w, h), Theme::COLOR, n);
        let (median, p99) = measure(fleet, w, h);
        println!("  {name:<28} median {median:>7.1} µs   p99 {p99:>7.1} µs");
    }
    // The same fleet with one agent's dashboard open (Enter): what a frame costs then.
    let mut fleet = fixtures::fleet(area(160, 40), Theme::COLOR, 20);
    fleet.open = Some(0);
    let (median, p99) = measure(fleet, 160, 40);
    println!(
        "  {:<28} median {median:>7.1} µs   p99 {p99:>7.1} µs",
        "20 agents, one open 160x40"
    );
}
