//! The dashboard's screens, drawn on ratatui's `TestBackend` from fixed data and a fixed
//! clock (`tui::fixtures`), compared with the reviewed snapshots in `tests/snapshots/`.
//! To update after an intended change: `INSTA_UPDATE=always cargo test --test tui_snapshots`,
//! then read the `.snap` diffs before committing them.

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier};
use singularis_tui::tui::action::Action;
use singularis_tui::tui::app::{App, update};
use singularis_tui::tui::fixtures;
use singularis_tui::tui::theme::Theme;
use singularis_tui::tui::view::view;

fn area(width: u16, height: u16) -> Rect {
    Rect::new(0, 0, width, height)
}

fn draw(app: &App) -> Terminal<TestBackend> {
    let mut terminal =
        Terminal::new(TestBackend::new(app.area.width, app.area.height)).expect("test backend");
    terminal.draw(|f| view(app, f)).expect("draw");
    terminal
}

fn screen(app: &App) -> String {
    draw(app).backend().to_string()
}

#[test]
fn dashboard_with_mixed_states() {
    let app = fixtures::dashboard(area(120, 40), Theme::COLOR);
    insta::assert_snapshot!(screen(&app));
}

#[test]
fn dashboard_at_80x24() {
    let app = fixtures::dashboard(area(80, 24), Theme::COLOR);
    insta::assert_snapshot!(screen(&app));
}

#[test]
fn dashboard_follows_a_resize() {
    let mut app = fixtures::dashboard(area(120, 40), Theme::COLOR);
    update(
        &mut app,
        Action::Resize {
            width: 100,
            height: 30,
        },
    );
    let text = screen(&app);
    assert_eq!(text.lines().count(), 30);
    assert!(
        text.lines().all(|l| l.chars().count() == 100 + 2),
        "every line is the new width"
    );
    assert!(
        text.contains("GPT-5 Meta RL"),
        "all eleven rows still shown:\n{text}"
    );
}

#[test]
fn help_popup() {
    let mut app = fixtures::dashboard(area(80, 24), Theme::COLOR);
    update(&mut app, Action::ToggleHelp);
    insta::assert_snapshot!(screen(&app));
}

#[test]
fn shutdown_mid_close() {
    // Four steps revealed (at 0, 150, 300, 450 ms), 40 ms before the deadline.
    let app = fixtures::shutting_down(area(120, 40), Theme::COLOR, 5, 460);
    insta::assert_snapshot!(screen(&app));
}

#[test]
fn shutdown_mid_close_at_80x24() {
    let app = fixtures::shutting_down(area(80, 24), Theme::COLOR, 5, 460);
    insta::assert_snapshot!(screen(&app));
}

#[test]
fn shutdown_at_the_deadline_with_one_forced() {
    // Every step revealed (21 events at 150 ms), the last one forced at the deadline; the
    // check for leftover sockets not done yet.
    let app = fixtures::shutting_down(area(120, 40), Theme::COLOR, 11, 3_200);
    insta::assert_snapshot!(screen(&app));
}

#[test]
fn final_statistics_panel() {
    let app = fixtures::final_panel(area(120, 40), Theme::COLOR);
    insta::assert_snapshot!(screen(&app));
}

#[test]
fn final_statistics_panel_at_80x24() {
    let app = fixtures::final_panel(area(80, 24), Theme::COLOR);
    insta::assert_snapshot!(screen(&app));
}

#[test]
fn no_color_means_no_colour_and_the_selection_still_shows() {
    let app = fixtures::dashboard(area(120, 40), Theme::PLAIN);
    let terminal = draw(&app);
    let buffer = terminal.backend().buffer();
    for cell in buffer.content() {
        assert_eq!(cell.fg, Color::Reset, "a coloured cell {cell:?}");
        assert_eq!(cell.bg, Color::Reset, "a coloured cell {cell:?}");
        assert!(
            cell.modifier.is_empty() || cell.modifier == Modifier::empty(),
            "styled cell {cell:?}"
        );
    }
    let text = terminal.backend().to_string();
    assert!(
        text.contains("> Claude client"),
        "the `>` marker shows the selection:\n{text}"
    );
    assert!(
        text.contains("■ closed") && text.contains("⚠ error") && text.contains("– disabled"),
        "{text}"
    );
    // The same text with colour: colour only adds.
    assert_eq!(
        text,
        screen(&fixtures::dashboard(area(120, 40), Theme::COLOR))
    );
}

#[test]
fn colour_marks_states_and_levels() {
    let app = fixtures::dashboard(area(120, 40), Theme::COLOR);
    let terminal = draw(&app);
    let coloured = terminal
        .backend()
        .buffer()
        .content()
        .iter()
        .filter(|c| c.fg != Color::Reset)
        .count();
    assert!(coloured > 100, "only {coloured} coloured cells");
}

#[test]
fn the_selected_rows_detail_shows_in_full_once_the_notice_fades() {
    let mut app = fixtures::dashboard(area(80, 24), Theme::COLOR);
    update(&mut app, Action::Tick(std::time::Duration::from_secs(95)));
    update(&mut app, Action::Up);
    update(&mut app, Action::Up);
    let text = screen(&app);
    assert!(
        text.contains("┗ Wolfram analyzer: HTTP 503 from wolfram_analyzer: upstream overloaded, r"),
        "{text}"
    );
}

#[test]
fn the_final_panel_says_what_ended_a_session_in_error() {
    let mut app = fixtures::final_panel(area(120, 40), Theme::COLOR);
    if let Some(sd) = app.shutdown.as_mut()
        && let Some(report) = sd.report.as_mut()
    {
        report.error = Some("gameplay task panicked: boom".into());
    }
    let text = screen(&app);
    assert!(
        text.contains("Ended by: gameplay task panicked: boom"),
        "{text}"
    );
}

#[test]
fn the_header_names_the_metrics_endpoint() {
    let mut app = fixtures::dashboard(area(160, 40), Theme::COLOR);
    assert!(!screen(&app).lines().next().unwrap().contains("metrics"));
    app.settings.metrics = Some("127.0.0.1:9464".into());
    let first = screen(&app).lines().next().unwrap().to_string();
    assert!(first.contains("metrics 127.0.0.1:9464"), "{first}");
}

#[test]
fn the_shutdown_account_shows_the_metrics_endpoint_after_the_systems() {
    let all = fixtures::shutdown_order().len();
    let mut app = fixtures::shutting_down(area(120, 40), Theme::COLOR, all, 400);
    let report = singularis_tui::lifecycle::StepReport {
        name: "metrics endpoint".into(),
        outcome: singularis_tui::lifecycle::CloseOutcome::Closed,
        close_ms: 0.7,
        sockets_before: 2,
        error: None,
        cancelled_requests: 0,
        verified: true,
        unverified_reason: None,
    };
    update(&mut app, Action::EndpointClosed(report));
    update(&mut app, Action::Tick(std::time::Duration::from_secs(120)));
    let text = screen(&app);
    let endpoint = text
        .lines()
        .position(|l| l.contains("Metrics endpoint"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        text.lines().nth(endpoint).unwrap().contains("0.7 ms"),
        "{text}"
    );
    let lines: Vec<&str> = text.lines().collect();
    let last_system = lines
        .iter()
        .rposition(|l| l.contains("Gemini client") || l.contains("Claude client"))
        .unwrap();
    assert!(endpoint > last_system, "after the systems:\n{text}");
}

#[test]
fn the_game_pane_says_what_the_cycle_waits_for_and_the_table_marks_an_open_breaker() {
    let mut app = fixtures::dashboard(area(120, 40), Theme::PLAIN);
    let mut game = app.game.clone();
    game.waiting.insert(
        singularis_tui::systems::SystemId::ClaudeClient,
        std::time::Instant::now() - std::time::Duration::from_millis(3_200),
    );
    update(&mut app, Action::Game(Box::new(game)));
    let mut systems = app.systems.clone();
    let claude = singularis_tui::systems::SystemId::ClaudeClient.index();
    systems[claude].breaker = singularis_tui::lifecycle::BreakerState::Open;
    update(&mut app, Action::Systems(systems));
    let text = screen(&app);
    let waiting = text
        .lines()
        .find(|l| l.contains("waiting on Claude client"))
        .unwrap_or_else(|| panic!("no wait shown:\n{text}"));
    assert!(
        waiting.contains("3.2 s") || waiting.contains("3.3 s"),
        "{waiting}"
    );
    let row = text
        .lines()
        .find(|l| l.contains("Claude client") && !l.contains("waiting"))
        .unwrap();
    assert!(row.contains('⊘'), "the open breaker is marked: {row}");
    // A short wait is not worth a line.
    let mut game = app.game.clone();
    game.waiting.clear();
    update(&mut app, Action::Game(Box::new(game)));
    assert!(!screen(&app).contains("waiting on"));
}
