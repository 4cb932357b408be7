//! The dashboard's screens, drawn on ratatui's `TestBackend` from fixed data and a fixed
//! clock (`tui::fixtures`), compared with the reviewed snapshots in `tests/snapshots/`.
//! To update after an intended change: `INSTA_UPDATE=always cargo test --test tui_snapshots`,
//! then read the `.snap` diffs before committing them.

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier};
use singularis_tui::tui::action::Action;
use singularis_tui::tui::app::App;
use singularis_tui::tui::update;
#[path = "common/fixtures.rs"]
#[allow(dead_code)]
mod fixtures;
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
fn shutdown_at_the_deadline_with_one_request_cancelled() {
    // Every step revealed (21 events at 150 ms), the last one closed at the deadline with
    // its request cancelled (a quit mid-call: closed, not forced); the check for leftover
    // sockets not done yet.
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
fn a_report_that_could_not_be_written_is_said_on_the_final_panel() {
    let why = "cannot write the session report out/r.json: Not a directory (os error 20)";
    let app = fixtures::final_panel_with_report(area(120, 40), Theme::PLAIN, Err(why));
    let screen = screen(&app);
    assert!(
        screen.contains("Report: not written: cannot write the session report")
            && screen.contains("out/r.json: Not a directory"),
        "{screen}"
    );
    assert!(
        !screen.contains(" Report "),
        "no report box without a report: {screen}"
    );
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
        text.contains("┗ Wolfram analyzer: HTTP 503 from wolfram_analyzer: upstream overloaded, …"),
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

/// Issue #27 item 6: trace export that fails is said where it is seen, with its cause, and
/// the warning goes once it works again.
#[test]
fn the_header_says_when_trace_export_fails() {
    let mut app = fixtures::dashboard(area(160, 40), Theme::COLOR);
    assert!(!screen(&app).lines().next().unwrap().contains("traces"));
    update(
        &mut app,
        Action::TracesFailing(Some("connection refused".into())),
    );
    let first = screen(&app).lines().next().unwrap().to_string();
    assert!(
        first.contains("traces: export failing (connection refused)"),
        "{first}"
    );
    update(&mut app, Action::TracesFailing(None));
    assert!(!screen(&app).lines().next().unwrap().contains("traces"));
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
        cancelled: 0,
        verified: true,
        unverified_reason: None,
        earlier: None,
        steps: Vec::new(),
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
        singularis_tui::systems::SystemId::CLAUDE_CLIENT,
        std::time::Instant::now() - std::time::Duration::from_millis(3_200),
    );
    update(&mut app, Action::Game(Box::new(game)));
    let mut systems = app.systems.clone();
    let claude = singularis_tui::systems::SystemId::CLAUDE_CLIENT.index();
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

const REPORT_PATH: &str =
    "/home/player/.local/state/singularis-tui/sessions/20261125T140341.512Z.json";

/// The screen's text without the borders' quoting: one string per row.
fn rows(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.trim_matches('"').to_string())
        .collect()
}

#[test]
fn dashboard_at_60x20() {
    let app = fixtures::dashboard(area(60, 20), Theme::COLOR);
    let text = screen(&app);
    insta::assert_snapshot!(text);
    let footer = rows(&text).pop().unwrap_or_default();
    assert!(
        footer.contains("? help"),
        "the footer keeps `? help`: {footer}"
    );
    assert!(footer.contains("q quit"), "{footer}");
}

#[test]
fn dashboard_at_45_columns_drops_whole_columns() {
    let app = fixtures::dashboard(area(45, 24), Theme::COLOR);
    let text = screen(&app);
    insta::assert_snapshot!(text);
    let lines = rows(&text);
    let header = lines
        .iter()
        .find(|l| l.contains("System"))
        .unwrap_or_else(|| panic!("{text}"));
    // A latency column, if shown at all, is shown whole: OpenAI's p99 is 1.3 s.
    let openai = lines
        .iter()
        .find(|l| l.contains("OpenAI client"))
        .unwrap_or_else(|| panic!("{text}"));
    if header.contains("p50") {
        assert!(openai.contains("28/1.3s"), "{openai}");
    } else {
        assert!(
            !openai.contains("1.3s") && !openai.contains("/1."),
            "{openai}"
        );
    }
    // Every row's cells line up under the header: no cell runs into the next column.
    assert!(lines.iter().all(|l| l.chars().count() == 45), "{text}");
}

#[test]
fn the_last_error_uses_the_free_width_and_log_lines_wrap_at_80x24() {
    let app = fixtures::dashboard(area(80, 24), Theme::PLAIN);
    let text = screen(&app);
    let lines = rows(&text);
    let wolfram = lines
        .iter()
        .find(|l| l.contains("Wolfram analyzer"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        wolfram.contains("HTTP 503 from"),
        "room for the error: {wolfram}"
    );
    // The newest log line is readable to its end, wrapped in its pane.
    let log: String = lines
        .iter()
        .filter_map(|l| {
            l.split_once("││")
                .map(|(_, r)| r.trim_end_matches('│').trim().to_string())
        })
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        log.contains("close requested from the dashboard")
            && log.contains("system=hyperbolic_client"),
        "{text}"
    );
}

#[test]
fn help_popup_at_60x20() {
    let mut app = fixtures::dashboard(area(60, 20), Theme::COLOR);
    update(&mut app, Action::ToggleHelp);
    let text = screen(&app);
    insta::assert_snapshot!(text);
    // Every key and the end of every description are on screen.
    for needle in [
        "gracefully",
        "force the rest and exit",
        "its close is cut now",
        "focused pane",
        "(g/G) jump",
        "(when closed)",
        "terminal's text",
        "selection",
        "the whole account now",
        "on the final panel: exit now",
        "Esc or ? closes",
    ] {
        assert!(text.contains(needle), "{needle}:\n{text}");
    }
}

#[test]
fn help_popup_scrolled_at_80x12() {
    let mut app = fixtures::dashboard(area(80, 12), Theme::COLOR);
    update(&mut app, Action::ToggleHelp);
    update(&mut app, Action::PageDown);
    let text = screen(&app);
    insta::assert_snapshot!(text);
    // Where the view is, of how many lines, and how to move it.
    assert!(
        text.contains(" of 16 · ↑↓ PgUp PgDn scroll · Esc closes"),
        "{text}"
    );
    assert!(!text.contains("more: a taller terminal"), "{text}");
}

/// The items of a header-like line: between ` · `, the corners and title padding dropped.
fn items(line: &str) -> Vec<String> {
    line.trim_matches(|c: char| "┏┓━ ".contains(c))
        .split(" · ")
        .map(|i| i.trim().to_string())
        .collect()
}

#[test]
fn a_narrow_header_and_table_title_drop_whole_items_and_mark_the_cut() {
    let wide = rows(&screen(&fixtures::dashboard(area(200, 40), Theme::PLAIN)));
    let whole_header = items(wide[0].trim_start_matches("singularis-tui  "));
    let whole_title = items(wide[1].trim_start_matches("┏ Connections "));
    for (w, h) in [(60, 20), (45, 24), (80, 24)] {
        let text = screen(&fixtures::dashboard(area(w, h), Theme::PLAIN));
        let lines = rows(&text);
        let header = items(lines[0].trim_start_matches("singularis-tui  "));
        let title = items(lines[1].trim_start_matches("┏ Connections "));
        // Every item is one of the wide screen's, whole (never "9" of "97.0 req/s", "1 d"
        // of "1 disabled"), or the `…` that says some were left out.
        for (shown, whole) in [(&header, &whole_header), (&title, &whole_title)] {
            for item in shown {
                assert!(
                    item == "…" || whole.contains(item),
                    "{w}x{h}: {item:?} is not a whole item of {whole:?}:\n{text}"
                );
            }
        }
        if w < 80 {
            assert_eq!(header.last().map(String::as_str), Some("…"), "{text}");
            assert_eq!(title.last().map(String::as_str), Some("…"), "{text}");
        }
    }
}

#[test]
fn at_45_columns_no_word_that_fits_a_line_is_cut() {
    let text = screen(&fixtures::dashboard(area(45, 24), Theme::PLAIN));
    let words: Vec<String> = fixtures::logs()
        .iter()
        .flat_map(|l| {
            [l.time.clone(), l.level.as_str().to_string()]
                .into_iter()
                .chain(l.text.split_whitespace().map(str::to_string))
        })
        .collect();
    // The log pane: right of the gameplay pane's border, inside its own.
    let log: Vec<String> = rows(&text)
        .iter()
        .filter_map(|l| {
            l.split_once("││")
                .map(|(_, r)| r.trim_end_matches('│').to_string())
        })
        .collect();
    assert!(!log.is_empty(), "{text}");
    let inner = log[0].chars().count();
    for token in log.iter().flat_map(|l| l.split_whitespace()) {
        let token = token.trim_end_matches('…');
        // A word longer than a line is broken across lines (a `key=value`); any other is
        // whole.
        let whole = words.iter().any(|w| w == token);
        let part_of_long = words
            .iter()
            .any(|w| w.chars().count() > inner - 2 && w.contains(token));
        assert!(
            token.is_empty() || whole || part_of_long,
            "{token:?} is a cut word:\n{text}"
        );
    }
}

#[test]
fn final_statistics_panel_at_60x20() {
    let app = fixtures::final_panel(area(60, 20), Theme::COLOR);
    let text = screen(&app);
    insta::assert_snapshot!(text);
    assert_final_panel_essentials(&text);
}

#[test]
fn the_final_panel_shows_the_whole_report_path_on_one_line_from_80_columns() {
    for (w, h) in [(80, 24), (120, 40)] {
        let text = screen(&fixtures::final_panel(area(w, h), Theme::COLOR));
        assert!(
            rows(&text).iter().any(|l| l.contains(REPORT_PATH)),
            "{w}x{h}:\n{text}"
        );
        assert_final_panel_essentials(&text);
    }
}

/// The verdict, the report's full path, the requests and the sockets left.
fn assert_final_panel_essentials(text: &str) {
    // The rows' insides, borders dropped, end to end: a path wrapped at the edge reads whole.
    let inside: String = rows(text)
        .iter()
        .map(|l| l.trim_matches(|c: char| "│║┃ ".contains(c)))
        .collect();
    assert!(
        inside.contains(REPORT_PATH),
        "the whole report path:\n{text}"
    );
    assert!(text.contains("Report"), "{text}");
    assert!(text.contains("0 sockets left open"), "{text}");
    assert!(text.contains("Requests: 4832"), "{text}");
    assert!(text.contains("Shutdown: 503.8 ms"), "{text}");
}

#[test]
fn the_game_pane_names_the_place_its_scene_describes() {
    use singularis_tui::gameplay::world::{BLEAK_FALLS, RIVERWOOD};
    let mut app = fixtures::dashboard(area(120, 40), Theme::PLAIN);
    let mut game = app.game.clone();
    // The scene was taken in Riverwood; the last action then walked to Bleak Falls, and
    // the next cycle has not looked yet.
    let mut seen = game.world.clone().expect("fixture world");
    seen.place = RIVERWOOD.into();
    seen.enemy = None;
    let mut now = seen.clone();
    now.place = BLEAK_FALLS.into();
    game.seen = Some(seen);
    game.world = Some(now);
    game.scene = "The scene shows Riverwood. No threats are visible.".into();
    update(&mut app, Action::Game(Box::new(game)));
    let text = screen(&app);
    let place = text
        .lines()
        .find(|l| l.contains("no enemy in view") || l.contains("(hostile)"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(place.contains("Riverwood · no enemy in view"), "{place}");
    assert!(!place.contains("Bleak Falls"), "{place}");
}

/// The dashboard's update logic, key by key (formerly the lib's own unit tests: the fixtures
/// live with the tests, out of every build of the binary).
mod updates {
    // `update` without a terminal: keys and engine events in, state and commands out.

    use crate::fixtures;
    use ratatui::layout::Rect;
    use singularis_tui::lifecycle::{CloseOutcome, SystemState};
    use singularis_tui::session::report::Reason;
    use singularis_tui::systems::SystemId;
    use singularis_tui::tui::action::{Action, Command};
    use singularis_tui::tui::app::{AccountRow, App, Pane, Phase};
    use singularis_tui::tui::theme::Theme;
    use singularis_tui::tui::update;
    use std::time::Duration;

    fn app() -> App {
        fixtures::dashboard(Rect::new(0, 0, 120, 40), Theme::PLAIN)
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn select(app: &mut App, id: SystemId) {
        update(app, Action::Home);
        for _ in 0..id.index() {
            update(app, Action::Down);
        }
        assert_eq!(app.selected_system().map(|s| s.id), Some(id));
    }

    fn set_state(app: &mut App, id: SystemId, state: SystemState) {
        let mut systems = app.systems.clone();
        systems[id.index()].state = state;
        update(app, Action::Systems(systems));
    }

    #[test]
    fn arrows_and_vim_keys_move_the_selection_within_the_table() {
        let mut app = app();
        update(&mut app, Action::Home);
        assert_eq!(app.selected, 0);
        update(&mut app, Action::Up);
        assert_eq!(app.selected, 0, "stays at the top");
        update(&mut app, Action::Down);
        update(&mut app, Action::Down);
        assert_eq!(app.selected, 2);
        update(&mut app, Action::End);
        assert_eq!(app.selected, 10);
        update(&mut app, Action::Down);
        assert_eq!(app.selected, 10, "stays at the bottom");
        update(&mut app, Action::PageUp);
        assert_eq!(app.selected, 0, "a page is the whole table here");
    }

    #[test]
    fn x_force_closes_the_selected_system_and_the_result_shows() {
        let mut app = app();
        select(&mut app, SystemId::OPENAI_CLIENT);
        assert_eq!(
            update(&mut app, Action::ForceClose),
            Some(Command::ForceClose(SystemId::OPENAI_CLIENT))
        );
        // The session took it.
        update(
            &mut app,
            Action::UserCloseStarted {
                id: SystemId::OPENAI_CLIENT,
                forced: true,
            },
        );
        assert!(app.closing_by_user.contains(&SystemId::OPENAI_CLIENT));
        assert!(
            app.visible_notice()
                .is_some_and(|n| n.text.contains("force-closing OpenAI client"))
        );

        let report = fixtures::close_report(SystemId::OPENAI_CLIENT, CloseOutcome::Forced, 3.25);
        update(
            &mut app,
            Action::UserCloseDone {
                report,
                forced: true,
            },
        );
        assert!(!app.closing_by_user.contains(&SystemId::OPENAI_CLIENT));
        assert_eq!(
            app.closed_by_user.get(&SystemId::OPENAI_CLIENT),
            Some(&true)
        );
        let notice = app
            .visible_notice()
            .map(|n| n.text.clone())
            .unwrap_or_default();
        assert_eq!(notice, "✗ OpenAI client force-closed on request (3.2 ms)");

        // The notice fades; the game (and the other rows) go on.
        let later = app.uptime + Duration::from_secs(7);
        update(&mut app, Action::Tick(later));
        assert!(app.visible_notice().is_none());
        assert_eq!(app.phase(), Phase::Running);
    }

    #[test]
    fn c_and_r_ask_the_session_which_judges_them_on_the_real_state() {
        let mut app = app();
        select(&mut app, SystemId::GEMINI_CLIENT);
        assert_eq!(
            update(&mut app, Action::Close),
            Some(Command::Close(SystemId::GEMINI_CLIENT))
        );
        update(
            &mut app,
            Action::UserCloseStarted {
                id: SystemId::GEMINI_CLIENT,
                forced: false,
            },
        );
        assert!(
            app.visible_notice()
                .is_some_and(|n| n.text == "closing Gemini client…")
        );
        // Not judged here on a table that may be a refresh behind: the session answers.
        assert_eq!(
            update(&mut app, Action::Close),
            Some(Command::Close(SystemId::GEMINI_CLIENT))
        );
        update(
            &mut app,
            Action::Notice("Gemini client is already closing (x forces it)".into()),
        );
        assert!(
            app.visible_notice()
                .is_some_and(|n| n.text.contains("already closing") && !n.bad)
        );

        set_state(&mut app, SystemId::GEMINI_CLIENT, SystemState::Closed);
        let report = fixtures::close_report(SystemId::GEMINI_CLIENT, CloseOutcome::Closed, 1.0);
        update(
            &mut app,
            Action::UserCloseDone {
                report,
                forced: false,
            },
        );
        assert_eq!(
            app.closed_by_user.get(&SystemId::GEMINI_CLIENT),
            Some(&false)
        );
        assert_eq!(
            update(&mut app, Action::Reopen),
            Some(Command::Reopen(SystemId::GEMINI_CLIENT))
        );
        update(
            &mut app,
            Action::Reopened {
                id: SystemId::GEMINI_CLIENT,
            },
        );
        assert!(!app.closed_by_user.contains_key(&SystemId::GEMINI_CLIENT));
        assert!(
            app.visible_notice()
                .is_some_and(|n| n.text == "Gemini client reopened")
        );
        // And `x` right after `r` goes to the session, whatever the table still says.
        assert_eq!(
            update(&mut app, Action::ForceClose),
            Some(Command::ForceClose(SystemId::GEMINI_CLIENT))
        );
    }

    #[test]
    fn q_quits_then_forces_everything_once() {
        let mut app = app();
        assert_eq!(update(&mut app, Action::Quit), Some(Command::Quit));
        assert!(app.quit_requested);
        update(&mut app, Action::ShutdownStarted(Reason::Quit));
        assert_eq!(app.phase(), Phase::ShuttingDown);
        assert_eq!(update(&mut app, Action::Quit), Some(Command::ForceAll));
        assert!(app.shutdown.as_ref().is_some_and(|s| s.force_requested));
        assert_eq!(
            update(&mut app, Action::Quit),
            None,
            "forcing is already under way"
        );
    }

    #[test]
    fn a_signal_shutdown_also_turns_a_second_quit_into_force() {
        let mut app = app();
        update(&mut app, Action::ShutdownStarted(Reason::Signal));
        assert!(app.quit_requested);
        assert_eq!(update(&mut app, Action::Quit), Some(Command::ForceAll));
    }

    #[test]
    fn during_shutdown_x_c_and_r_go_to_the_session_which_judges_and_records_them() {
        let mut app = app();
        select(&mut app, SystemId::VIDEO_INTERPRETER);
        update(&mut app, Action::ShutdownStarted(Reason::Cycles));
        // `x` cuts the selected system's close now; `c` and `r` are the session's to refuse
        // (and record): none is dropped here unheard.
        assert_eq!(
            update(&mut app, Action::ForceClose),
            Some(Command::ForceClose(SystemId::VIDEO_INTERPRETER))
        );
        assert_eq!(
            update(&mut app, Action::Close),
            Some(Command::Close(SystemId::VIDEO_INTERPRETER))
        );
        assert_eq!(
            update(&mut app, Action::Reopen),
            Some(Command::Reopen(SystemId::VIDEO_INTERPRETER))
        );
        assert_eq!(update(&mut app, Action::TogglePause), None);
    }

    #[test]
    fn during_shutdown_the_arrows_select_in_the_accounts_order() {
        let mut app = fixtures::shutting_down(Rect::new(0, 0, 120, 40), Theme::PLAIN, 3, 0);
        let rows = app
            .shutdown
            .as_ref()
            .map(|s| s.system_rows())
            .unwrap_or_default();
        assert_eq!(rows.len(), 11);
        // The first key shows the whole account; the selection goes to its first row, then
        // down it, whatever the session's order.
        update(&mut app, Action::Home);
        assert_eq!(app.selected_system().map(|s| s.id), Some(rows[0]));
        update(&mut app, Action::Down);
        assert_eq!(app.selected_system().map(|s| s.id), Some(rows[1]));
        assert_eq!(
            update(&mut app, Action::ForceClose),
            Some(Command::ForceClose(rows[1]))
        );
        update(&mut app, Action::End);
        assert_eq!(app.selected_system().map(|s| s.id), Some(rows[10]));
        let text = crate::screen(&app);
        let marked = text
            .lines()
            .find(|l| l.contains("> "))
            .unwrap_or_else(|| panic!("the selection is marked:\n{text}"));
        assert!(marked.contains(rows[10].display_name()), "{marked}");
    }

    /// The shutdown account of `fixtures::shutting_down` with every system closed, verified
    /// and the report in, at 505 ms: steps still being revealed at the 150 ms pace.
    fn paced_with_the_report_in() -> App {
        let mut app = fixtures::shutting_down(Rect::new(0, 0, 120, 40), Theme::PLAIN, 11, 505);
        update(
            &mut app,
            Action::Verified(singularis_tui::lifecycle::Verification {
                sockets_open_after: Some(0),
                unverified_reason: None,
            }),
        );
        update(
            &mut app,
            Action::Finished {
                report: Box::new(fixtures::report()),
                report_path: None,
                report_error: None,
            },
        );
        assert_eq!(app.phase(), Phase::ShuttingDown, "the account is paced");
        app
    }

    #[test]
    fn any_key_during_the_paced_account_shows_the_final_panel_then_a_key_exits() {
        for key in [
            Action::OtherKey,
            Action::Confirm,
            Action::Down,
            Action::Escape,
        ] {
            let mut app = paced_with_the_report_in();
            let sd = app.shutdown.as_ref().expect("shutting down");
            assert!(sd.revealed < sd.steps.len(), "{key:?}: not all shown yet");
            // The key shows everything at once: no exit yet, the final panel.
            assert_eq!(update(&mut app, key.clone()), None, "{key:?}");
            let sd = app.shutdown.as_ref().expect("shutting down");
            assert_eq!(sd.revealed, sd.steps.len(), "{key:?}");
            assert_eq!(app.phase(), Phase::Final, "{key:?}");
            // The final panel lingers as usual, and says how to leave...
            let later = app.uptime + ms(4_900);
            assert_eq!(update(&mut app, Action::Tick(later)), None, "{key:?}");
            let text = crate::screen(&app);
            let footer = text.lines().last().unwrap_or_default();
            assert!(
                footer.contains("any key to exit") && footer.contains("exits by itself in 1 s"),
                "{footer}"
            );
            // ...and a key on it exits at once.
            assert_eq!(update(&mut app, Action::OtherKey), Some(Command::Exit));
        }
    }

    #[test]
    fn a_key_before_the_shutdown_ends_shows_each_step_as_it_arrives() {
        let mut app = fixtures::shutting_down(Rect::new(0, 0, 120, 40), Theme::PLAIN, 5, 200);
        let sd = app.shutdown.as_ref().expect("shutting down");
        assert!(sd.revealed < sd.steps.len());
        update(&mut app, Action::OtherKey);
        let sd = app.shutdown.as_ref().expect("shutting down");
        assert_eq!(sd.revealed, sd.steps.len());
        // A step that arrives now shows on the next tick, not a pace later.
        let report = fixtures::close_report(SystemId::OPENAI_CLIENT, CloseOutcome::Closed, 1.0);
        update(
            &mut app,
            Action::SystemClosed {
                report,
                forced_by_user: false,
            },
        );
        let now = app.uptime;
        update(&mut app, Action::Tick(now));
        let sd = app.shutdown.as_ref().expect("shutting down");
        assert_eq!(sd.revealed, sd.steps.len());
        assert_eq!(app.phase(), Phase::ShuttingDown, "no report yet");
        update(
            &mut app,
            Action::Finished {
                report: Box::new(fixtures::report()),
                report_path: None,
                report_error: None,
            },
        );
        assert_eq!(update(&mut app, Action::Tick(now)), None);
        assert_eq!(app.phase(), Phase::Final, "the final panel at once");
    }

    #[test]
    fn a_second_quit_forces_shows_all_and_exits_as_soon_as_the_shutdown_is_done() {
        let mut app = fixtures::shutting_down(Rect::new(0, 0, 120, 40), Theme::PLAIN, 11, 300);
        assert_eq!(update(&mut app, Action::Quit), Some(Command::ForceAll));
        assert!(app.hurry, "no pacing, no linger");
        let sd = app.shutdown.as_ref().expect("shutting down");
        assert_eq!(sd.revealed, sd.steps.len());
        assert_eq!(app.phase(), Phase::ShuttingDown, "the session is not done");
        update(
            &mut app,
            Action::Finished {
                report: Box::new(fixtures::report()),
                report_path: None,
                report_error: None,
            },
        );
        let now = app.uptime;
        assert_eq!(
            update(&mut app, Action::Tick(now)),
            Some(Command::Exit),
            "exits once done, without the linger"
        );
        // Once the shutdown is done, the same: q q leaves at once.
        let mut app = paced_with_the_report_in();
        assert_eq!(update(&mut app, Action::Quit), Some(Command::ForceAll));
        let now = app.uptime;
        assert_eq!(update(&mut app, Action::Tick(now)), Some(Command::Exit));
    }

    #[test]
    fn the_help_scrolls_with_the_arrows_and_pages_and_other_keys_close_it() {
        let mut app = fixtures::dashboard(Rect::new(0, 0, 80, 12), Theme::PLAIN);
        update(&mut app, Action::ToggleHelp);
        let selected = app.selected;
        update(&mut app, Action::Down);
        assert_eq!(app.help_scroll, 1);
        assert!(app.help_open, "an arrow scrolls, it does not close");
        assert_eq!(app.selected, selected, "the table under it does not move");
        update(&mut app, Action::PageDown);
        update(&mut app, Action::End);
        let end = app.help_scroll;
        assert!(end > 1);
        update(&mut app, Action::Down);
        assert_eq!(app.help_scroll, end, "no further than the last line");
        let text = crate::screen(&app);
        assert!(text.contains("on the final panel: exit now"), "{text}");
        update(&mut app, Action::PageUp);
        assert!(app.help_scroll < end);
        update(&mut app, Action::Home);
        assert_eq!(app.help_scroll, 0);
        update(&mut app, Action::OtherKey);
        assert!(!app.help_open);
        update(&mut app, Action::ToggleHelp);
        assert_eq!(app.help_scroll, 0, "opens at the top");
    }

    #[test]
    fn p_pauses_and_resumes_the_game() {
        let mut app = app();
        assert_eq!(
            update(&mut app, Action::TogglePause),
            Some(Command::SetPaused(true))
        );
        assert!(app.paused);
        assert_eq!(
            update(&mut app, Action::TogglePause),
            Some(Command::SetPaused(false))
        );
        assert!(!app.paused);
    }

    #[test]
    fn help_is_modal_and_esc_closes_it() {
        let mut app = app();
        let before = app.selected;
        update(&mut app, Action::ToggleHelp);
        assert!(app.help_open);
        assert_eq!(
            update(&mut app, Action::ForceClose),
            None,
            "keys under the popup do nothing"
        );
        assert!(!app.help_open, "but close it");
        assert_eq!(app.selected, before);
        update(&mut app, Action::ToggleHelp);
        update(&mut app, Action::Escape);
        assert!(!app.help_open);
        update(&mut app, Action::ToggleHelp);
        assert_eq!(
            update(&mut app, Action::Quit),
            Some(Command::Quit),
            "q still quits"
        );
        assert!(!app.help_open);
    }

    #[test]
    fn tab_moves_focus_and_arrows_scroll_the_focused_pane() {
        let mut app = app();
        assert_eq!(app.focus, Pane::Table);
        update(&mut app, Action::FocusNext);
        assert_eq!(app.focus, Pane::Gameplay);
        update(&mut app, Action::Down);
        assert_eq!(app.gameplay_scroll, 1);
        update(&mut app, Action::FocusNext);
        assert_eq!(app.focus, Pane::Log);
        let selected = app.selected;
        update(&mut app, Action::Up);
        update(&mut app, Action::Up);
        assert_eq!(app.log_scroll, 2, "up goes back in the log");
        assert_eq!(app.selected, selected, "the table is not touched");
        update(&mut app, Action::End);
        assert_eq!(app.log_scroll, 0, "End follows the newest line again");
        update(&mut app, Action::FocusPrev);
        assert_eq!(app.focus, Pane::Gameplay);
    }

    #[test]
    fn mouse_is_opt_in_and_a_click_selects_the_row_under_it() {
        let mut app = app();
        assert!(!app.mouse_capture);
        assert_eq!(
            update(&mut app, Action::ToggleMouse),
            Some(Command::SetMouseCapture(true))
        );
        // At 120x40 the table starts on line 1: border, header row, then the rows.
        update(
            &mut app,
            Action::Click {
                column: 10,
                row: 3 + 4,
            },
        );
        assert_eq!(app.selected, 4);
        assert_eq!(app.focus, Pane::Table);
        update(
            &mut app,
            Action::Click {
                column: 100,
                row: 30,
            },
        );
        assert_eq!(app.focus, Pane::Log);
        assert_eq!(app.selected, 4);
        assert_eq!(
            update(&mut app, Action::ToggleMouse),
            Some(Command::SetMouseCapture(false))
        );
    }

    #[test]
    fn a_resize_moves_the_click_targets() {
        let mut app = app();
        update(
            &mut app,
            Action::Resize {
                width: 80,
                height: 24,
            },
        );
        update(&mut app, Action::Click { column: 5, row: 13 });
        assert_eq!(app.selected, 10, "the last row at 80x24");
    }

    #[test]
    fn requests_per_second_come_from_the_counters() {
        // The fixture adds 10% to every counter over 5 s.
        let app = app();
        let total: u64 = fixtures::systems(10)
            .iter()
            .map(|s| s.done + s.errors)
            .sum();
        let before: u64 = fixtures::systems(9).iter().map(|s| s.done + s.errors).sum();
        let expected = (total - before) as f64 / 5.0;
        assert!(
            (app.requests_per_s - expected).abs() < 0.01,
            "{} vs {expected}",
            app.requests_per_s
        );
    }

    #[test]
    fn shutdown_steps_are_revealed_at_the_configured_pace_in_arrival_order() {
        let mut app = app();
        let t0 = Duration::from_secs(90);
        update(&mut app, Action::Tick(t0));
        update(&mut app, Action::ShutdownStarted(Reason::Quit));
        update(
            &mut app,
            Action::ShutdownBegin {
                grace: ms(500),
                deadline_in: ms(500),
            },
        );
        // Everything arrives at once...
        update(&mut app, Action::SystemClosing(SystemId::MOE));
        update(&mut app, Action::SystemClosing(SystemId::VIDEO_INTERPRETER));
        let report = fixtures::close_report(SystemId::MOE, CloseOutcome::Closed, 0.4);
        update(
            &mut app,
            Action::SystemClosed {
                report,
                forced_by_user: false,
            },
        );
        let sd = app.shutdown.as_ref().expect("shutting down");
        assert_eq!(sd.revealed, 0);

        // ...and is shown one step per 150 ms.
        update(&mut app, Action::Tick(t0));
        assert_eq!(app.shutdown.as_ref().map(|s| s.revealed), Some(1));
        update(&mut app, Action::Tick(t0 + ms(149)));
        assert_eq!(app.shutdown.as_ref().map(|s| s.revealed), Some(1));
        update(&mut app, Action::Tick(t0 + ms(150)));
        assert_eq!(app.shutdown.as_ref().map(|s| s.revealed), Some(2));
        let rows = app.shutdown.as_ref().map(|s| s.rows()).unwrap_or_default();
        assert!(matches!(rows[0], AccountRow::Closing(SystemId::MOE)));
        assert!(matches!(
            rows[1],
            AccountRow::Closing(SystemId::VIDEO_INTERPRETER)
        ));
        assert!(matches!(
            rows[2],
            AccountRow::Waiting(SystemId::VOICE_SYSTEM)
        ));
        assert_eq!(rows.len(), 11);

        update(&mut app, Action::Tick(t0 + ms(300)));
        let rows = app.shutdown.as_ref().map(|s| s.rows()).unwrap_or_default();
        assert!(
            matches!(&rows[0], AccountRow::Done { report, .. } if report.close_ms == 0.4),
            "measured time kept"
        );
        assert_eq!(
            app.phase(),
            Phase::ShuttingDown,
            "no final panel before the session ended"
        );
    }

    #[test]
    fn the_final_panel_waits_for_the_last_step_then_lingers_until_a_key() {
        let mut app = fixtures::shutting_down(Rect::new(0, 0, 120, 40), Theme::PLAIN, 11, 505);
        update(
            &mut app,
            Action::Verified(singularis_tui::lifecycle::Verification {
                sockets_open_after: Some(0),
                unverified_reason: None,
            }),
        );
        update(
            &mut app,
            Action::Finished {
                report: Box::new(fixtures::report()),
                report_path: None,
                report_error: None,
            },
        );
        assert_eq!(
            app.phase(),
            Phase::ShuttingDown,
            "steps are still being revealed"
        );
        let t = Duration::from_secs(90) + ms(150 * 22);
        update(&mut app, Action::Tick(t));
        assert_eq!(app.phase(), Phase::Final);
        // Linger: the wake-ups count it down; it ends on its own...
        assert_eq!(app.next_wake(ms(100)), Some(Duration::from_secs(94)));
        assert_eq!(update(&mut app, Action::Tick(t + ms(4_900))), None);
        assert_eq!(
            update(&mut app, Action::Tick(t + Duration::from_secs(5))),
            Some(Command::Exit)
        );
        // ...or on any key.
        assert_eq!(update(&mut app, Action::OtherKey), Some(Command::Exit));
        assert_eq!(update(&mut app, Action::Quit), Some(Command::Exit));
    }

    #[test]
    fn wake_ups_are_rare_when_nothing_moves() {
        let mut app = app();
        update(&mut app, Action::Tick(ms(83_400)));
        assert_eq!(
            app.next_wake(ms(100)),
            Some(Duration::from_secs(84)),
            "once a second for the uptime"
        );
        update(&mut app, Action::ShutdownStarted(Reason::Quit));
        assert_eq!(
            app.next_wake(ms(100)),
            Some(ms(83_500)),
            "animation runs at the frame cap"
        );
    }

    #[test]
    fn a_reopened_system_is_no_longer_marked_as_closed_by_the_user() {
        let mut app = app();
        assert!(app.closed_by_user.contains_key(&SystemId::CLAUDE_CLIENT));
        set_state(&mut app, SystemId::CLAUDE_CLIENT, SystemState::Idle);
        assert!(!app.closed_by_user.contains_key(&SystemId::CLAUDE_CLIENT));
    }

    #[test]
    fn x_during_a_graceful_close_forces_it() {
        let mut app = app();
        select(&mut app, SystemId::GEMINI_CLIENT);
        assert_eq!(
            update(&mut app, Action::Close),
            Some(Command::Close(SystemId::GEMINI_CLIENT))
        );
        set_state(&mut app, SystemId::GEMINI_CLIENT, SystemState::Closing);
        assert_eq!(
            update(&mut app, Action::ForceClose),
            Some(Command::ForceClose(SystemId::GEMINI_CLIENT))
        );
        let report = fixtures::close_report(SystemId::GEMINI_CLIENT, CloseOutcome::Forced, 12.0);
        update(
            &mut app,
            Action::UserCloseDone {
                report,
                forced: true,
            },
        );
        assert!(
            app.visible_notice()
                .is_some_and(|n| n.text == "✗ Gemini client force-closed on request (12.0 ms)")
        );
    }

    #[test]
    fn a_graceful_close_forced_at_its_deadline_is_not_called_closed_by_you() {
        let mut app = app();
        select(&mut app, SystemId::GEMINI_CLIENT);
        update(&mut app, Action::Close);
        set_state(&mut app, SystemId::GEMINI_CLIENT, SystemState::Closed);
        // No `x`: the grace deadline forced it.
        let report = fixtures::close_report(SystemId::GEMINI_CLIENT, CloseOutcome::Forced, 500.2);
        update(
            &mut app,
            Action::UserCloseDone {
                report,
                forced: false,
            },
        );
        assert_eq!(
            app.closed_by_user.get(&SystemId::GEMINI_CLIENT),
            Some(&true)
        );
        let later = app.uptime + Duration::from_secs(7);
        update(&mut app, Action::Tick(later));
        let text = crate::screen(&app);
        let row = text
            .lines()
            .find(|l| l.contains("Gemini client"))
            .unwrap_or_else(|| panic!("{text}"));
        assert!(row.contains("force-closed by you"), "{row}");
        assert!(!row.contains(" closed by you"), "{row}");
    }

    #[test]
    fn the_sound_notice_is_shown_once() {
        let mut app = app();
        let mut game = fixtures::game();
        game.audio = "off: no audio device".into();
        game.audio_notice = Some("sound off: no audio device found".into());
        update(&mut app, Action::Game(Box::new(game.clone())));
        assert_eq!(
            app.visible_notice().map(|n| n.text.as_str()),
            Some("sound off: no audio device found")
        );
        app.notice = None;
        update(&mut app, Action::Game(Box::new(game)));
        assert!(app.notice.is_none());
    }
}

fn fleet_screen(fleet: &singularis_tui::attach::fleet::Fleet, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("test backend");
    terminal
        .draw(|f| singularis_tui::attach::fleet::view(fleet, f))
        .expect("draw");
    terminal.backend().to_string()
}

#[test]
fn a_remote_agents_dashboard_names_the_agent_and_offers_detach() {
    let app = fixtures::remote_dashboard(area(120, 40), Theme::COLOR, "http://127.0.0.1:7070");
    let text = screen(&app);
    assert!(text.contains("attached http://127.0.0.1:7070"), "{text}");
    assert!(text.contains("d detach"), "{text}");
    assert!(text.contains("GPT-5 Meta RL"), "all eleven rows:\n{text}");
}

#[test]
fn the_reconnecting_banner() {
    let app = fixtures::reconnecting(area(120, 40), Theme::COLOR);
    insta::assert_snapshot!(screen(&app));
}

#[test]
fn the_remote_quit_question() {
    let app = fixtures::quit_question(area(120, 40), Theme::COLOR);
    insta::assert_snapshot!(screen(&app));
}

#[test]
fn the_fleet_table() {
    let fleet = fixtures::fleet(area(160, 20), Theme::COLOR, 5);
    insta::assert_snapshot!(fleet_screen(&fleet, 160, 20));
}

#[test]
fn enter_opens_an_agents_dashboard_in_the_fleet() {
    let mut fleet = fixtures::fleet(area(120, 40), Theme::COLOR, 3);
    fleet.open = Some(0);
    let text = fleet_screen(&fleet, 120, 40);
    assert!(text.contains("attached http://127.0.0.1:7070"), "{text}");
    assert!(text.contains("Claude client"), "{text}");
}

mod remote_updates {
    use super::*;
    use singularis_tui::tui::action::Command;
    use singularis_tui::tui::app::{Connection, Phase};

    fn remote(can_command: bool) -> App {
        let mut app = App::remote(
            fixtures::settings(Theme::COLOR),
            area(120, 40),
            "http://127.0.0.1:7070".into(),
            can_command,
        );
        update(&mut app, Action::Systems(fixtures::systems(10)));
        app
    }

    #[test]
    fn q_asks_first_and_only_a_yes_quits_the_agent() {
        let mut app = remote(true);
        assert_eq!(update(&mut app, Action::Quit), None);
        assert!(app.confirm_quit);
        // Anything else is a no.
        assert_eq!(update(&mut app, Action::Down), None);
        assert!(!app.confirm_quit && !app.quit_requested);
        update(&mut app, Action::Quit);
        assert_eq!(update(&mut app, Action::Confirm), Some(Command::Quit));
        assert!(app.quit_requested);
    }

    #[test]
    fn d_detaches_from_a_remote_agent_only() {
        let mut app = remote(true);
        assert_eq!(update(&mut app, Action::Detach), Some(Command::Detach));
        let mut local = App::new(fixtures::settings(Theme::COLOR), area(120, 40));
        assert_eq!(update(&mut local, Action::Detach), None);
    }

    #[test]
    fn without_a_token_keys_that_command_say_so_and_send_nothing() {
        let mut app = remote(false);
        for key in [Action::ForceClose, Action::TogglePause, Action::Quit] {
            assert_eq!(update(&mut app, key), None);
            let notice = app.notice.clone().expect("a notice");
            assert!(notice.text.contains("watching only"), "{notice:?}");
        }
        assert!(!app.paused && !app.confirm_quit);
    }

    #[test]
    fn a_snapshot_of_a_new_agent_clears_the_old_ones_shutdown() {
        let mut app = remote(true);
        update(
            &mut app,
            Action::ShutdownStarted(singularis_tui::session::report::Reason::Quit),
        );
        assert_eq!(app.phase(), Phase::ShuttingDown);
        update(
            &mut app,
            Action::Resync {
                shutting_down: false,
            },
        );
        assert_eq!(app.phase(), Phase::Running);
        assert!(!app.quit_requested);
    }

    #[test]
    fn after_the_agent_exited_any_key_leaves() {
        let mut app = remote(true);
        update(&mut app, Action::Connection(Connection::Ended));
        assert_eq!(update(&mut app, Action::Down), Some(Command::Exit));
    }
}

#[test]
fn the_dashboard_shows_the_spend_its_pace_and_warns_near_the_limit() {
    let mut app = fixtures::dashboard(area(160, 40), Theme::COLOR);
    app.game.budget = Some(singularis_tui::lifecycle::BudgetSnapshot {
        spent_usd: 0.0171,
        limit_usd: Some(0.02),
        hour_usd: 0.0171,
        burn_usd_per_hour: 1.8,
        time_left_s: Some(5.8),
        warn: true,
        ..Default::default()
    });
    let text = screen(&app);
    let title = text
        .lines()
        .find(|l| l.contains("Connections"))
        .unwrap_or("");
    assert!(
        title.contains("⚠ budget $0.0171/$0.0200 · $1.80/h · 6 s left"),
        "{title}"
    );
    // Yellow from 80 % of the limit.
    let buf = draw(&app).backend().buffer().clone();
    let y = text
        .lines()
        .position(|l| l.contains("Connections"))
        .unwrap_or(0) as u16;
    let x = title.chars().position(|c| c == '⚠').unwrap_or(0) as u16;
    assert_eq!(buf[(x, y)].fg, Color::Yellow);
    insta::assert_snapshot!(text);
    // Spent: said in red.
    if let Some(b) = app.game.budget.as_mut() {
        b.exhausted = true;
    }
    let text = screen(&app);
    assert!(text.contains("⚠ spent: budget $0.0171/$0.0200"), "{text}");
}

/// Issue #27 item 2: the selected system's detail line says its calls were rate-limited,
/// with the service's status and retry time, and its `Err` column counts them; item 5: the
/// calls the game went on without, by why (the experts sequential mode did not ask).
#[test]
fn the_detail_line_says_rate_limited_and_why_calls_were_skipped() {
    use singularis_tui::gameplay::stats::Skip;
    use singularis_tui::systems::SystemId;
    let mut app = App::new(fixtures::settings(Theme::PLAIN), area(200, 30));
    let mut systems = fixtures::systems(10);
    let claude = &mut systems[SystemId::CLAUDE_CLIENT.index()];
    claude.state = singularis_tui::lifecycle::SystemState::Idle;
    claude.done = 0;
    claude.errors = 0;
    claude.rate_limited = 4;
    claude.last_rate_limit = Some("HTTP 429 Too Many Requests, retry in 1 s".into());
    claude.last_error = Some(
        "rate-limited: HTTP 429 Too Many Requests, retry in 1 s (cut at its 1000 ms deadline while waiting)"
            .into(),
    );
    update(&mut app, Action::Systems(systems));
    let mut game = fixtures::game();
    for _ in 0..4 {
        game.skipped(SystemId::HYPERBOLIC_CLIENT, Skip::MajorityReached);
    }
    update(&mut app, Action::Game(Box::new(game)));

    app.selected = SystemId::CLAUDE_CLIENT.index();
    let text = screen(&app);
    let bottom = text
        .lines()
        .rev()
        .find(|l| l.contains("Claude client:"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        bottom.contains("4 rate-limited (HTTP 429 Too Many Requests, retry in 1 s)"),
        "{bottom}"
    );
    let row = text
        .lines()
        .find(|l| l.contains("Claude client") && !l.contains("Claude client:"))
        .unwrap();
    assert!(
        row.split_whitespace().any(|w| w == "4"),
        "the Err column counts the rate-limited calls: {row}"
    );

    app.selected = SystemId::HYPERBOLIC_CLIENT.index();
    let text = screen(&app);
    assert!(text.contains("skipped 4 majority reached"), "{text}");
}

/// Issue #27 item 3: the dashboard's final panel names a system that answered nothing, with
/// how its calls ended, as the headless account does.
#[test]
fn the_final_panel_names_a_system_that_answered_nothing() {
    use singularis_tui::session::report::CallAccount;
    let mut report = fixtures::report();
    let claude = CallAccount {
        answered: 0,
        late: 4,
        rate_limited: 0,
        last_rate_limit: None,
        cut: 0,
        truncated: 0,
        outvoted: 0,
        skipped_by_breaker: 7,
        skipped: Default::default(),
        errors: 0,
        breaker: singularis_protocol::BreakerState::Open,
        breaker_opens: 2,
        deadline_ms: 1000.0,
        p50_ms: None,
        p99_ms: None,
    };
    report.stats.calls.insert("claude_client".into(), claude);
    let app = fixtures::final_panel_of(area(220, 50), Theme::PLAIN, Ok("r.json"), report);
    let text = screen(&app);
    assert!(
        text.contains(
            "Claude client: answered none of its 11 calls: 4 late, 7 skipped by its breaker"
        ),
        "{text}"
    );
}
