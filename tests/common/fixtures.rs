//! Fixed, made-up sessions for the snapshot tests and the render benchmark: the same data
//! and the same clock every time, so the screens are the same every time.
#![doc(hidden)]

use ratatui::layout::Rect;
use singularis_tui::config::Mode;
use singularis_tui::gameplay::stats::ActionRecord;
use singularis_tui::gameplay::{Action as GameAction, GameStats, World};
use singularis_tui::lifecycle::{
    CloseOutcome, CloseReport, ShutdownReport, SystemSnapshot, SystemState,
};
use singularis_tui::logging::LogLine;
use singularis_tui::session::report::{Reason, ReportStats, SessionReport, ShutdownSection};
use singularis_tui::systems::SystemId;
use singularis_tui::tui::action::Action;
use singularis_tui::tui::app::{App, Settings};
use singularis_tui::tui::theme::Theme;
use singularis_tui::tui::update;
use std::collections::BTreeMap;
use std::time::Duration;

pub fn settings(theme: Theme) -> Settings {
    Settings {
        backend: "sandbox".into(),
        mode: Mode::Parallel,
        grace: Duration::from_millis(500),
        step: Duration::from_millis(150),
        linger: Duration::from_secs(5),
        theme,
        metrics: None,
        serve: None,
    }
}

fn latencies(base: f64, n: usize, seed: usize) -> Vec<f64> {
    // A deterministic wobble around `base`, different for each system.
    (0..n)
        .map(|i| base * (1.0 + (((i + seed) * 7 % 11) as f64 - 5.0) / 12.0))
        .collect()
}

fn snapshot(id: SystemId, state: SystemState, done: u64) -> SystemSnapshot {
    SystemSnapshot {
        id,
        state,
        in_flight: 0,
        done,
        errors: 0,
        truncated: 0,
        retries: 0,
        usage: None,
        cost_usd: None,
        headroom: None,
        open_sockets: 0,
        connections_opened: 0,
        latency_p50_ms: None,
        latency_p99_ms: None,
        recent_latency_ms: Vec::new(),
        last_error: None,
        disabled_reason: None,
        late: 0,
        rate_limited: 0,
        last_rate_limit: None,
        cut: 0,
        outvoted: 0,
        budget_refused: 0,
        breaker_skipped: 0,
        breaker: singularis_tui::lifecycle::BreakerState::Closed,
        breaker_opens: 0,
        deadline_ms: 1000.0,
    }
}

fn with_latency(mut s: SystemSnapshot, p50: f64, p99: f64) -> SystemSnapshot {
    s.latency_p50_ms = Some(p50);
    s.latency_p99_ms = Some(p99);
    s.recent_latency_ms = latencies(p50, 24, s.id.index() * 3);
    s.connections_opened = 2;
    // Tokens in proportion to the answers, as a live service reports them.
    let u = singularis_tui::clients::Usage {
        input: s.done * 180,
        output: s.done * 42,
        reasoning: 0,
        ..Default::default()
    };
    s.usage = Some(u);
    s.cost_usd = Some(singularis_tui::config::Price::new(1.25, 10.0).cost(&u));
    s
}

/// Every state at once: open, idle, error, closing, closed (by the user), disabled.
pub fn systems(scale: u64) -> Vec<SystemSnapshot> {
    use SystemState::*;
    let n = |v: u64| v * scale / 10;
    let mut out = vec![
        with_latency(
            snapshot(SystemId::VIDEO_INTERPRETER, Open, n(520)),
            41.0,
            88.0,
        ),
        with_latency(snapshot(SystemId::VOICE_SYSTEM, Idle, n(505)), 118.0, 243.0),
        with_latency(snapshot(SystemId::ORCHESTRATOR, Open, n(511)), 63.0, 140.0),
        with_latency(
            snapshot(SystemId::WOLFRAM_ANALYZER, Error, n(402)),
            12.0,
            35.0,
        ),
        with_latency(snapshot(SystemId::GEMINI_CLIENT, Idle, n(520)), 22.0, 51.0),
        with_latency(
            snapshot(SystemId::CLAUDE_CLIENT, Closed, n(301)),
            35.0,
            77.0,
        ),
        with_latency(
            snapshot(SystemId::OPENAI_CLIENT, Open, n(519)),
            28.0,
            1310.0,
        ),
        with_latency(
            snapshot(SystemId::HYPERBOLIC_CLIENT, Closing, n(498)),
            95.0,
            180.0,
        ),
        snapshot(SystemId::LMSTUDIO_CLIENT, Disabled, 0),
        with_latency(snapshot(SystemId::MOE, Idle, n(520)), 140.0, 260.0),
        with_latency(snapshot(SystemId::META_RL, Idle, n(517)), 30.0, 66.0),
    ];
    let mut set = |id: SystemId, f: &dyn Fn(&mut SystemSnapshot)| f(&mut out[id.index()]);
    set(SystemId::VIDEO_INTERPRETER, &|s| {
        (s.in_flight, s.open_sockets) = (1, 1)
    });
    set(SystemId::VOICE_SYSTEM, &|s| s.open_sockets = 1);
    set(SystemId::ORCHESTRATOR, &|s| {
        (s.in_flight, s.open_sockets) = (1, 2)
    });
    set(SystemId::WOLFRAM_ANALYZER, &|s| {
        s.errors = 3;
        s.open_sockets = 1;
        s.last_error =
            Some("HTTP 503 from wolfram_analyzer: upstream overloaded, retry later".into());
    });
    set(SystemId::GEMINI_CLIENT, &|s| s.open_sockets = 2);
    set(SystemId::OPENAI_CLIENT, &|s| {
        (s.in_flight, s.open_sockets) = (2, 2)
    });
    set(SystemId::HYPERBOLIC_CLIENT, &|s| {
        (s.in_flight, s.open_sockets) = (1, 1)
    });
    set(SystemId::LMSTUDIO_CLIENT, &|s| {
        s.disabled_reason = Some("disabled in config".into())
    });
    set(SystemId::META_RL, &|s| {
        s.errors = 1;
        s.open_sockets = 1;
        s.last_error = Some("timed out after 30000 ms".into());
    });
    out
}

pub fn game() -> GameStats {
    let mut world = World::new(42);
    world.place = "Bleak Falls Barrow";
    world.health = 72;
    world.stamina = 45;
    world.magicka = 90;
    world.enemy = Some("a draugr");
    world.npc_here = None;
    let mut g = GameStats {
        cycles: 52,
        scene: "A narrow stone hall lit by braziers. A draugr stirs in an alcove to the left; \
                a chest sits beyond a pressure plate."
            .into(),
        world: Some(world.view()),
        audio: "on".into(),
        ..GameStats::default()
    };
    let records = [
        (
            48,
            GameAction::Explore,
            "orchestrator (votes: explore=4, move=1; odds 62%)",
            0.3,
        ),
        (49, GameAction::Talk, "expert vote (talk=3, explore=2)", 0.4),
        (
            50,
            GameAction::Explore,
            "orchestrator (votes: explore=3, sneak=2; odds 55%)",
            0.3,
        ),
        (51, GameAction::Block, "no usable answer: safe action", 0.1),
        (
            52,
            GameAction::Attack,
            "orchestrator (votes: attack=4, cast=1; odds 71%)",
            1.0,
        ),
    ];
    for (cycle, action, why, reward) in records {
        g.record(ActionRecord {
            cycle,
            action,
            why: why.into(),
            reward,
        });
    }
    // Earlier cycles, only counted.
    g.actions = 52;
    g.actions_by_kind = [
        ("explore", 21),
        ("attack", 11),
        ("talk", 7),
        ("block", 6),
        ("heal", 4),
        ("loot", 3),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    g
}

pub fn logs() -> Vec<LogLine> {
    use tracing::Level;
    let l = |time: &str, level: Level, text: &str| LogLine {
        time: time.into(),
        level,
        text: text.into(),
    };
    vec![
        l(
            "14:02:11",
            Level::INFO,
            "session started backend=sandbox mode=parallel",
        ),
        l(
            "14:02:11",
            Level::INFO,
            "disabled system=lmstudio_client reason=disabled in config",
        ),
        l(
            "14:02:40",
            Level::WARN,
            "request failed system=meta_rl error=timed out after 30000 ms",
        ),
        l(
            "14:03:05",
            Level::WARN,
            "request failed system=wolfram_analyzer error=HTTP 503",
        ),
        l(
            "14:03:21",
            Level::INFO,
            "force-close requested from the dashboard system=claude_client",
        ),
        l(
            "14:03:21",
            Level::INFO,
            "closed system=claude_client outcome=Forced ms=2.1",
        ),
        l(
            "14:03:30",
            Level::ERROR,
            "request failed system=wolfram_analyzer error=HTTP 503",
        ),
        l(
            "14:03:33",
            Level::INFO,
            "close requested from the dashboard system=hyperbolic_client",
        ),
    ]
}

/// The live dashboard at `area`, 83 s into the session, Claude force-closed by the user.
pub fn dashboard(area: Rect, theme: Theme) -> App {
    let mut app = App::new(settings(theme), area);
    update(&mut app, Action::Tick(Duration::from_secs(78)));
    update(&mut app, Action::Systems(systems(9)));
    update(&mut app, Action::Tick(Duration::from_secs(83)));
    update(&mut app, Action::Systems(systems(10)));
    update(&mut app, Action::Game(Box::new(game())));
    update(&mut app, Action::Logs(logs()));
    // The user force-closed Claude a moment ago and is closing Hyperbolic.
    let report = close_report(SystemId::CLAUDE_CLIENT, CloseOutcome::Forced, 2.14);
    update(
        &mut app,
        Action::UserCloseDone {
            report,
            forced: true,
        },
    );
    app.closing_by_user.insert(SystemId::HYPERBOLIC_CLIENT);
    app.selected = SystemId::CLAUDE_CLIENT.index();
    update(&mut app, Action::Tick(Duration::from_millis(83_400)));
    app
}

pub fn close_report(id: SystemId, outcome: CloseOutcome, close_ms: f64) -> CloseReport {
    CloseReport {
        name: id,
        outcome,
        close_ms,
        sockets_before: if outcome == CloseOutcome::Skipped {
            0
        } else {
            1
        },
        error: (outcome == CloseOutcome::Error)
            .then(|| "1 socket still open after force-close".to_string()),
        verified: outcome != CloseOutcome::Unverified,
        unverified_reason: (outcome == CloseOutcome::Unverified)
            .then(|| "cannot read this process's socket table (/proc/self/fd: No such file or directory (os error 2))".to_string()),
        // A close that lasted to the 500 ms grace deadline cut the request it waited on.
        cancelled: if close_ms >= 500.0 { 1 } else { 0 },
        earlier: None,
        steps: Vec::new(),
    }
}

/// The order a real shutdown reports them: dependents first, then what they use.
pub fn shutdown_order() -> Vec<(SystemId, CloseOutcome, f64)> {
    use CloseOutcome::*;
    vec![
        (SystemId::LMSTUDIO_CLIENT, Skipped, 0.0),
        (SystemId::VIDEO_INTERPRETER, Closed, 2.1),
        (SystemId::VOICE_SYSTEM, Closed, 1.4),
        (SystemId::ORCHESTRATOR, Closed, 3.2),
        (SystemId::META_RL, Closed, 1.1),
        (SystemId::MOE, Closed, 0.3),
        (SystemId::WOLFRAM_ANALYZER, Closed, 1.9),
        (SystemId::GEMINI_CLIENT, Closed, 1.2),
        (SystemId::CLAUDE_CLIENT, Closed, 0.0),
        (SystemId::OPENAI_CLIENT, Closed, 2.6),
        // Quit mid-call: its request cancelled at the deadline, the close still normal.
        (SystemId::HYPERBOLIC_CLIENT, Closed, 500.4),
    ]
}

/// Shutdown from the dashboard fixture: `Closing`/`Closed` events for the first `closed`
/// systems of [`shutdown_order`] (and `Closing` for the next one), arriving 1 ms apart from
/// 90 s; the clock then at `now_ms` after 90 s.
pub fn shutting_down(area: Rect, theme: Theme, closed: usize, now_ms: u64) -> App {
    let mut app = dashboard(area, theme);
    let t0 = Duration::from_secs(90);
    update(&mut app, Action::Tick(t0));
    update(&mut app, Action::Quit);
    update(&mut app, Action::ShutdownStarted(Reason::Quit));
    update(
        &mut app,
        Action::ShutdownBegin {
            grace: Duration::from_millis(500),
            deadline_in: Duration::from_millis(500),
        },
    );
    let order = shutdown_order();
    for (i, (id, outcome, ms)) in order.iter().enumerate().take(closed + 1) {
        update(&mut app, Action::Tick(t0 + Duration::from_millis(i as u64)));
        if *outcome != CloseOutcome::Skipped {
            update(&mut app, Action::SystemClosing(*id));
        }
        if i < closed {
            let mut report = close_report(*id, *outcome, *ms);
            // The user closed Claude with `c` a minute in; it was still closed at shutdown.
            if *id == SystemId::CLAUDE_CLIENT {
                report.earlier = Some(singularis_tui::lifecycle::EarlierClose {
                    by: "you".into(),
                    at_s: 62.0,
                    forced_on_request: false,
                    outcome: CloseOutcome::Closed,
                    close_ms: 1.3,
                    error: None,
                    cancelled: 0,
                });
            }
            update(
                &mut app,
                Action::SystemClosed {
                    report,
                    forced_by_user: false,
                },
            );
        }
    }
    update(&mut app, Action::Tick(t0 + Duration::from_millis(now_ms)));
    app
}

pub fn report() -> SessionReport {
    let systems: Vec<CloseReport> = shutdown_order()
        .into_iter()
        .map(|(id, outcome, ms)| close_report(id, outcome, ms))
        .collect();
    let count = |o: CloseOutcome| systems.iter().filter(|r| r.outcome == o).count();
    let game = game();
    SessionReport {
        version: 1,
        exit_status: 0,
        run: Default::default(),
        started_at: "2026-11-25T14:02:11.000Z".into(),
        ended_at: "2026-11-25T14:03:41.512Z".into(),
        session_s: 90.5,
        mode: "parallel".into(),
        backend: "sandbox".into(),
        stats: ReportStats {
            game: GameStats {
                skipped_calls: BTreeMap::from([(SystemId::LMSTUDIO_CLIENT, 52)]),
                fallbacks: 1,
                guard_fired: 2,
                speech_clips: 88,
                speech_played: 0,
                total_reward: 21.4,
                ..game
            },
            requests: 4832,
            errors: 4,
            calls_by_system: BTreeMap::new(),
            errors_by_system: BTreeMap::new(),
            connections_opened_by_system: BTreeMap::new(),
            truncated: 3,
            truncated_by_system: BTreeMap::from([("orchestrator".to_string(), 3)]),
            usage: singularis_tui::session::report::usage_section(&self::systems(10)),
            calls: BTreeMap::new(),
        },
        shutdown: ShutdownSection {
            reason: Reason::Quit,
            report: ShutdownReport {
                grace_ms: 500,
                total_ms: 503.8,
                closed: count(CloseOutcome::Closed),
                forced: count(CloseOutcome::Forced),
                errors: count(CloseOutcome::Error),
                skipped: count(CloseOutcome::Skipped),
                unverified: count(CloseOutcome::Unverified),
                cancelled: systems.iter().map(|r| r.cancelled).sum(),
                sockets_open_after: Some(0),
                check_ms: 0.3,
                verified: true,
                unverified_reason: None,
                systems,
                endpoints: Vec::new(),
            },
        },
        commands: Vec::new(),
        error: None,
        audio: None,
        traces: None,
    }
}

/// Everything closed, verified and reported: the final panel, 1 s into its linger.
pub fn final_panel(area: Rect, theme: Theme) -> App {
    final_panel_with_report(
        area,
        theme,
        Ok("/home/player/.local/state/singularis-tui/sessions/20261125T140341.512Z.json"),
    )
}

/// The final panel, the report written to the path (`Ok`) or not, for a reason (`Err`).
pub fn final_panel_with_report(area: Rect, theme: Theme, written: Result<&str, &str>) -> App {
    final_panel_of(area, theme, written, report())
}

/// The final panel of `report`.
pub fn final_panel_of(
    area: Rect,
    theme: Theme,
    written: Result<&str, &str>,
    report: SessionReport,
) -> App {
    let all = shutdown_order().len();
    let mut app = shutting_down(area, theme, all, 505);
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
            report: Box::new(report),
            report_path: written.ok().map(str::to_string),
            report_error: written.err().map(str::to_string),
        },
    );
    // Long enough for every step to be revealed at its pace, plus one.
    let t = Duration::from_secs(90) + Duration::from_millis(150 * (2 * all as u64 + 2));
    update(&mut app, Action::Tick(t));
    update(&mut app, Action::Tick(t + Duration::from_secs(1)));
    app
}

/// The dashboard of a remote agent (`attach URL`), as its stream left it.
pub fn remote_dashboard(area: Rect, theme: Theme, url: &str) -> App {
    let mut app = App::remote(settings(theme), area, url.to_string(), true);
    update(&mut app, Action::Tick(Duration::from_secs(754)));
    // The agent has run longer than this viewer: 1:06:40 when its snapshot came.
    update(&mut app, Action::AgentClock(Duration::from_secs(4000)));
    update(&mut app, Action::Systems(systems(10)));
    update(&mut app, Action::Game(Box::new(game())));
    update(&mut app, Action::Tick(Duration::from_secs(755)));
    update(&mut app, Action::Systems(systems(11)));
    app
}

/// A remote agent whose connection was lost: the third try is 1 s away.
pub fn reconnecting(area: Rect, theme: Theme) -> App {
    use singularis_tui::tui::app::Connection;
    let mut app = remote_dashboard(area, theme, "http://127.0.0.1:7070");
    update(
        &mut app,
        Action::Connection(Connection::Reconnecting {
            attempt: 3,
            next_in: Duration::from_secs(1),
            since: Duration::from_millis(755_400),
            why: "Connection refused (os error 111)".into(),
        }),
    );
    update(&mut app, Action::Tick(Duration::from_millis(755_600)));
    app
}

/// A remote agent with the quit question open.
pub fn quit_question(area: Rect, theme: Theme) -> App {
    let mut app = remote_dashboard(area, theme, "http://127.0.0.1:7070");
    update(&mut app, Action::Quit);
    app
}

/// A fleet of `n` agents in every state a row can show: playing, paused, reconnecting,
/// shutting down, exited.
pub fn fleet(area: Rect, theme: Theme, n: usize) -> singularis_tui::attach::fleet::Fleet {
    use singularis_tui::attach::fleet::{Agent, Fleet};
    use singularis_tui::tui::app::Connection;
    let agents = (0..n)
        .map(|i| {
            let url = format!("http://127.0.0.1:{}", 7070 + i);
            let mut app = remote_dashboard(area, theme, &url);
            let mut game = game();
            game.cycles += i as u64 * 7;
            update(&mut app, Action::Game(Box::new(game)));
            match i % 5 {
                1 => {
                    update(&mut app, Action::Paused(true));
                }
                2 => {
                    update(
                        &mut app,
                        Action::Connection(Connection::Reconnecting {
                            attempt: 2,
                            next_in: Duration::from_millis(500),
                            since: Duration::from_secs(755),
                            why: "connection refused".into(),
                        }),
                    );
                }
                3 | 4 => {
                    update(&mut app, Action::ShutdownStarted(Reason::Quit));
                    for (id, outcome, ms) in shutdown_order() {
                        update(&mut app, Action::SystemClosing(id));
                        update(
                            &mut app,
                            Action::SystemClosed {
                                report: close_report(id, outcome, ms),
                                forced_by_user: false,
                            },
                        );
                    }
                    if i % 5 == 4 {
                        update(&mut app, Action::Connection(Connection::Ended));
                    }
                }
                _ => {}
            }
            Agent {
                name: if i == 0 {
                    "eu-west-1".to_string()
                } else {
                    singularis_tui::attach::fleet::name_of(&url)
                },
                url,
                app,
            }
        })
        .collect();
    Fleet {
        agents,
        selected: 1.min(n.saturating_sub(1)),
        open: None,
        theme,
    }
}
