//! Shutdown against the embedded sandbox over real loopback TCP: every socket measured.
//! Sessions count the whole process's sockets, so these tests run one at a time (`serial`).

use singularis_tui::config::{Config, Mode};
use singularis_tui::lifecycle::{CloseOutcome, CloseReport, SystemState};
use singularis_tui::sandbox::fault::Fault;
use singularis_tui::session::report::Reason;
use singularis_tui::session::{Session, SessionEnd};
use singularis_tui::systems::SystemId;
use std::time::Duration;

use crate::common::{serial, until};

fn config(faults: &[(SystemId, Fault)]) -> Config {
    let mut c = Config::default();
    c.gameplay.cycle_delay_ms = 0;
    for (id, f) in faults {
        c.sandbox.faults.insert(*id, *f);
    }
    c
}

/// The latest a shutdown with a grace of `grace_ms` may end when what the deadline cut
/// gets `budget_ms` to end by itself before it is forced: the deadline, that budget, the
/// engine's FORCE_BUDGET, and 250 ms for a loaded 2-core CI machine (scheduling, the
/// process-wide check, the report's write). A bound on behaviour (a close that waits for
/// anything else, a poll or a second deadline, breaks it), not a benchmark.
fn late_bound(grace_ms: f64, budget_ms: f64) -> f64 {
    grace_ms + budget_ms + singularis_tui::net::FORCE_BUDGET.as_secs_f64() * 1e3 + 250.0
}

async fn end(session: Session, grace_ms: u64) -> SessionEnd {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.json");
    session.quit.quit(Reason::Quit);
    let end = session
        .shutdown(
            Duration::from_millis(grace_ms),
            Mode::Parallel,
            Some(path.clone()),
            None,
        )
        .await;
    // The report on disk says what the struct says.
    let on_disk: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(
        on_disk["shutdown"]["sockets_open_after"],
        serde_json::json!(end.report.shutdown.report.sockets_open_after)
    );
    assert_eq!(on_disk["version"], 1);
    end
}

/// As [`end`], with the report as written on disk.
async fn end_with_json(session: Session, grace_ms: u64) -> (SessionEnd, serde_json::Value) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.json");
    session.quit.quit(Reason::Quit);
    let end = session
        .shutdown(
            Duration::from_millis(grace_ms),
            Mode::Parallel,
            Some(path.clone()),
            None,
        )
        .await;
    let on_disk = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    (end, on_disk)
}

fn outcome(end: &SessionEnd, id: SystemId) -> CloseOutcome {
    end.report
        .shutdown
        .report
        .systems
        .iter()
        .find(|r| r.name == id)
        .unwrap()
        .outcome
}

#[test]
fn all_idle_with_pooled_sockets_closes_every_system() {
    serial(async {
        let mut s = Session::start(config(&[])).await.unwrap();
        s.spawn_gameplay(Mode::Parallel, 3);
        s.quit.wait().await; // three cycles played
        let reg = s.registry.clone();
        until("every system idle", || {
            reg.snapshots().iter().all(|x| x.in_flight == 0)
        })
        .await;
        reg.measure_sockets();
        let pooled: u32 = reg.snapshots().iter().map(|x| x.open_sockets).sum();
        assert!(
            pooled > 0,
            "keep-alive sockets should be pooled before shutdown"
        );

        let end = end(s, 500).await;
        let sd = &end.report.shutdown.report;
        assert_eq!(sd.sockets_open_after, Some(0));
        assert_eq!(sd.systems.len(), 11);
        for r in &sd.systems {
            assert_eq!(r.outcome, CloseOutcome::Closed, "{:?}", r);
        }
        assert!(sd.systems.iter().map(|r| r.sockets_before).sum::<u32>() > 0);
        assert_eq!(end.exit_code(), 0);
        for snap in reg.snapshots() {
            assert_eq!(snap.state, SystemState::Closed);
            assert_eq!(snap.open_sockets, 0);
        }
    });
}

#[test]
fn requests_in_flight_are_finished_or_cancelled_and_every_system_closes() {
    serial(async {
        // Every service slow; the video stream never ends (it must be cancelled, not awaited).
        let mut faults: Vec<_> = singularis_tui::config::Config::default()
            .ids()
            .iter()
            .map(|&id| (id, Fault::Slow(Duration::from_millis(150))))
            .collect();
        faults.push((SystemId::VIDEO_INTERPRETER, Fault::Drip));
        let mut s = Session::start(config(&faults)).await.unwrap();
        s.spawn_gameplay(Mode::Parallel, 0);
        let reg = s.registry.clone();
        // Polled for up to 10 s (a bound for a stuck test, not a timing claim).
        let mut last = None;
        for _ in 0..2000 {
            reg.measure_sockets();
            let video = reg.snapshots()[SystemId::VIDEO_INTERPRETER.index()].clone();
            let ready = video.in_flight > 0 && video.open_sockets > 0;
            last = Some(video);
            if ready {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let video = last.unwrap();
        assert!(
            video.in_flight > 0 && video.open_sockets > 0,
            "no video stream in flight on its own connection: {video:?}"
        );
        let end = end(s, 10_000).await;
        let sd = &end.report.shutdown.report;
        assert_eq!(sd.sockets_open_after, Some(0));
        for r in &sd.systems {
            assert_eq!(r.outcome, CloseOutcome::Closed, "{:?}", r);
        }
        // The endless stream was cut well before the 10 s deadline: closing is not waiting it out.
        let video = sd
            .systems
            .iter()
            .find(|r| r.name == SystemId::VIDEO_INTERPRETER)
            .unwrap();
        assert!(video.sockets_before >= 1);
        assert!(sd.total_ms < 10_000.0);
    });
}

/// Neither the call's own deadline nor the vote's quorum cuts a slow expert before the quit:
/// its request is still in flight at the grace deadline.
fn in_flight_at_quit(mut c: Config) -> Config {
    c.resilience.deadline_initial_ms = Some(60_000);
    c.resilience.quorum_grace_ms = 60_000;
    c
}

/// A request of this system is on the wire: in flight *and* connected. In flight alone is
/// not enough: a request still connecting when its system starts closing is refused its
/// connection and ends at once, cancelled, instead of holding the close.
fn on_the_wire(reg: &singularis_tui::lifecycle::Registry, id: SystemId) -> bool {
    let s = reg.get(id);
    s.snapshot().in_flight > 0 && s.ledger_open() > 0
}

fn report_of(end: &SessionEnd, id: SystemId) -> &CloseReport {
    end.report
        .shutdown
        .report
        .systems
        .iter()
        .find(|r| r.name == id)
        .unwrap()
}

/// A quit while a system waits on a hung service: the grace period still bounds it. At the
/// deadline its request is cancelled, its connection closes by itself, and the close is
/// normal (`closed`, the request counted), not forced.
#[test]
fn a_hung_call_at_quit_is_cancelled_at_the_deadline_and_its_system_closes() {
    serial(async {
        let mut s = Session::start(in_flight_at_quit(config(&[(
            SystemId::CLAUDE_CLIENT,
            Fault::Hang,
        )])))
        .await
        .unwrap();
        s.spawn_gameplay(Mode::Parallel, 0);
        let reg = s.registry.clone();
        until("claude request hanging", || {
            on_the_wire(&reg, SystemId::CLAUDE_CLIENT)
        })
        .await;
        let end = end(s, 300).await;
        let sd = &end.report.shutdown.report;
        let claude = report_of(&end, SystemId::CLAUDE_CLIENT);
        assert_eq!(claude.outcome, CloseOutcome::Closed, "{claude:?}");
        assert!(claude.cancelled >= 1, "{claude:?}");
        for r in sd
            .systems
            .iter()
            .filter(|r| r.name != SystemId::CLAUDE_CLIENT)
        {
            assert_eq!(r.outcome, CloseOutcome::Closed, "{:?}", r);
        }
        assert_eq!((sd.forced, sd.closed), (0, 11));
        assert_eq!(
            sd.cancelled,
            sd.systems.iter().map(|r| r.cancelled).sum::<u32>()
        );
        assert_eq!(sd.sockets_open_after, Some(0));
        assert!(sd.total_ms >= 300.0, "cut only at the deadline");
        // Its close's timeline: the deadline, the cut, the cancel, the request's end, the
        // pool's drop and the check, in that order, the cut not before the deadline.
        use singularis_tui::lifecycle::CloseStepKind as Step;
        let steps: Vec<Step> = claude.steps.iter().map(|s| s.step).collect();
        let at = |step: Step| claude.steps.iter().find(|s| s.step == step).map(|s| s.ms);
        for pair in [
            (Step::Deadline, Step::Cut),
            (Step::Cut, Step::CancelSent),
            (Step::CancelSent, Step::TasksEnded),
            (Step::TasksEnded, Step::PoolDropped),
            (Step::PoolDropped, Step::Checked),
        ] {
            let (a, b) = (at(pair.0), at(pair.1));
            assert!(
                matches!((a, b), (Some(a), Some(b)) if a <= b),
                "{pair:?} out of order or missing: {:?}",
                claude.steps
            );
        }
        assert_eq!(steps.last(), Some(&Step::Checked), "{steps:?}");
        // And soon after it: a close cut at the deadline ends within the cancel budget
        // (200 ms, `CANCEL_BUDGET` in lifecycle/system/close.rs) and FORCE_BUDGET of it.
        assert!(sd.total_ms <= late_bound(300.0, 200.0), "{}", sd.total_ms);
        assert_eq!(end.exit_code(), 0);
    });
}

/// A stream hung before its headers (the orchestrator's Responses stream) is the game's:
/// the game stopping ends it when its system starts closing, not at the grace deadline.
/// Its close drains (no cut, nothing cancelled at the deadline, not forced) and every
/// socket is gone. Waiting for the deadline instead (the stream's send not watching the
/// system's stop) fails it: the close would show a cut and a cancelled request.
#[test]
fn a_stream_hung_before_its_headers_ends_when_the_game_stops_not_at_the_deadline() {
    use singularis_tui::lifecycle::CloseStepKind as Step;
    serial(async {
        let orchestrator = SystemId::ORCHESTRATOR;
        let mut s = Session::start(in_flight_at_quit(config(&[(orchestrator, Fault::Hang)])))
            .await
            .unwrap();
        s.spawn_gameplay(Mode::Parallel, 0);
        let reg = s.registry.clone();
        until("the orchestrator's stream on the wire", || {
            on_the_wire(&reg, orchestrator)
        })
        .await;
        let end = end(s, 30_000).await;
        let sd = &end.report.shutdown.report;
        let report = report_of(&end, orchestrator);
        assert_eq!(report.outcome, CloseOutcome::Closed, "{report:?}");
        assert_eq!(
            report.cancelled, 0,
            "ended by the stop, not cut: {report:?}"
        );
        let steps: Vec<Step> = report.steps.iter().map(|s| s.step).collect();
        assert_eq!(
            steps.first(),
            Some(&Step::Drained),
            "its request ended before any deadline: {steps:?}"
        );
        assert!(!steps.contains(&Step::Cut), "{steps:?}");
        assert_eq!((sd.forced, sd.closed, sd.cancelled), (0, 11, 0), "{sd:?}");
        assert_eq!(sd.sockets_open_after, Some(0));
        // A bound on a hang (the grace is 30 s), not a benchmark.
        assert!(sd.total_ms < 15_000.0, "{}", sd.total_ms);
        assert_eq!(end.exit_code(), 0);
    });
}

/// The common case with real latencies: quit while an expert is still answering. Its
/// request is cancelled at the deadline and the system closes normally; the report says
/// how many requests were cut, per system and in all, and the account line says it too.
#[test]
fn a_slow_answer_in_flight_at_quit_is_cancelled_and_its_system_closed_not_forced() {
    serial(async {
        let mut s = Session::start(in_flight_at_quit(config(&[(
            SystemId::OPENAI_CLIENT,
            Fault::Slow(Duration::from_millis(5_000)),
        )])))
        .await
        .unwrap();
        s.spawn_gameplay(Mode::Parallel, 0);
        let reg = s.registry.clone();
        until("openai request in flight", || {
            on_the_wire(&reg, SystemId::OPENAI_CLIENT)
        })
        .await;
        let (end, on_disk) = end_with_json(s, 200).await;
        let sd = &end.report.shutdown.report;
        let openai = report_of(&end, SystemId::OPENAI_CLIENT);
        assert_eq!(openai.outcome, CloseOutcome::Closed, "{openai:?}");
        assert_eq!(openai.cancelled, 1, "{openai:?}");
        assert_eq!(sd.forced, 0, "{sd:?}");
        assert!(sd.cancelled >= 1, "{sd:?}");
        assert_eq!(sd.sockets_open_after, Some(0));
        assert_eq!(end.exit_code(), 0);
        // The report on disk: `cancelled` per system and in all.
        let systems = on_disk["shutdown"]["systems"].as_array().unwrap();
        let entry = systems
            .iter()
            .find(|r| r["name"] == "openai_client")
            .unwrap();
        assert_eq!(entry["outcome"], "closed", "{entry}");
        assert_eq!(entry["cancelled"], 1, "{entry}");
        assert_eq!(
            on_disk["shutdown"]["cancelled"],
            serde_json::json!(sd.cancelled)
        );
        // The account line: the usual shape, then what the deadline cut.
        let line = singularis_tui::session::summary::step_line(openai, 200, false);
        assert!(
            line.starts_with("[CLEANUP] ✓ OpenAI client closed (")
                && line.ends_with(" ms), 1 request cancelled at the grace deadline"),
            "{line}"
        );
        let complete = singularis_tui::session::summary::complete_line(sd);
        assert!(
            complete.contains(&format!(
                ", 0 forced, 0 errors, {} cancelled, 0 sockets left open (",
                singularis_tui::lifecycle::counted(sd.cancelled, "request")
            )),
            "{complete}"
        );
    });
}

#[test]
fn a_refused_system_shows_error_while_running_and_shutdown_is_still_clean() {
    serial(async {
        let mut s = Session::start(config(&[(SystemId::OPENAI_CLIENT, Fault::Refuse)]))
            .await
            .unwrap();
        s.spawn_gameplay(Mode::Parallel, 0);
        let reg = s.registry.clone();
        until("openai_client in error", || {
            reg.snapshots()[SystemId::OPENAI_CLIENT.index()].state == SystemState::Error
        })
        .await;
        let snap = &reg.snapshots()[SystemId::OPENAI_CLIENT.index()];
        let url = s
            .sandbox()
            .unwrap()
            .base_url(SystemId::OPENAI_CLIENT)
            .unwrap();
        let host_port = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap());
        assert_eq!(
            snap.last_error.as_deref(),
            Some(format!("connection refused by {host_port}").as_str()),
            "names where it was going"
        );
        // The game goes on without it.
        until("two cycles", || s.stats.lock().unwrap().cycles >= 2).await;
        let end = end(s, 500).await;
        assert_eq!(end.report.shutdown.report.sockets_open_after, Some(0));
        assert_eq!(end.exit_code(), 0);
        assert!(
            end.report
                .stats
                .skipped_calls
                .get(&SystemId::OPENAI_CLIENT)
                .copied()
                .unwrap_or(0)
                >= 1
        );
    });
}

/// With every system hung, a second quit (the force) ends a 60 s grace at once, and every
/// system is `forced`: the ten with a request on the wire have it cut, and moe, whose close
/// begins only after the force (it waits for the orchestrator), is forced as well.
#[test]
fn a_second_quit_forces_everything_at_once() {
    serial(async {
        let ids = Config::default().ids();
        let faults: Vec<_> = ids.iter().map(|&id| (id, Fault::Hang)).collect();
        let s = Session::start(config(&faults)).await.unwrap();
        // A hung request on every system with a wire of its own (moe only asks the others).
        let wired: Vec<SystemId> = ids
            .iter()
            .copied()
            .filter(|&id| id != SystemId::MOE)
            .collect();
        assert_eq!(wired.len(), 10);
        let calls: Vec<_> = wired
            .iter()
            .map(|&id| {
                let sys = s.registry.get(id).clone();
                tokio::spawn(async move {
                    sys.call(|c| async move { c.client.send(c.client.get(c.base.clone())).await })
                        .await
                })
            })
            .collect();
        let reg = s.registry.clone();
        until("a request in flight on every wired system", || {
            let snaps = reg.snapshots();
            wired.iter().all(|id| snaps[id.index()].in_flight == 1)
        })
        .await;
        let force = s.force.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            force.cancel();
        });
        let end = end(s, 60_000).await;
        let sd = &end.report.shutdown.report;
        assert!(
            sd.total_ms < 60_000.0,
            "the second quit did not wait for the deadline"
        );
        assert_eq!(sd.sockets_open_after, Some(0));
        assert_eq!(
            (sd.forced, sd.closed, sd.errors, sd.cancelled),
            (11, 0, 0, 10),
            "{sd:?}"
        );
        // A force asked for is force: a system whose requests it cut is `forced`, never
        // `closed` with its requests cancelled.
        for r in &sd.systems {
            let cut = if r.name == SystemId::MOE { 0 } else { 1 };
            assert_eq!(
                (r.outcome, r.cancelled),
                (CloseOutcome::Forced, cut),
                "{r:?}"
            );
        }
        for call in calls {
            let err = call.await.unwrap().expect_err("a hung call cannot answer");
            assert!(err.is_cancelled(), "{err:?}");
        }
    });
}

#[test]
fn one_system_force_closed_mid_game_leaves_the_rest_playing_and_can_reopen() {
    serial(async {
        let mut s = Session::start(config(&[])).await.unwrap();
        s.spawn_gameplay(Mode::Parallel, 0);
        let reg = s.registry.clone();
        until("one cycle", || s.stats.lock().unwrap().cycles >= 1).await;
        let claude = reg.get(SystemId::CLAUDE_CLIENT).clone();
        // The dashboard's `x`: a force asked for is `forced`, whatever was in flight.
        let r = claude.force_close().await;
        assert_eq!(r.outcome, CloseOutcome::Forced, "{r:?}");
        assert_eq!(r.error, None, "{r:?}");
        assert_eq!(claude.state(), SystemState::Closed);
        let cycles = s.stats.lock().unwrap().cycles;
        until("the game goes on", || {
            s.stats.lock().unwrap().cycles >= cycles + 2
        })
        .await;
        assert_eq!(claude.snapshot().open_sockets, 0);
        assert!(claude.reopen());
        let done = claude.snapshot().done;
        until("claude used again", || claude.snapshot().done > done).await;
        let end = end(s, 500).await;
        assert_eq!(end.report.shutdown.report.sockets_open_after, Some(0));
    });
}

#[test]
fn a_ledger_lock_poisoned_mid_session_is_unverified_exit_4_and_nothing_else_is_lost() {
    serial(async {
        let mut s = Session::start(config(&[])).await.unwrap();
        s.spawn_gameplay(Mode::Parallel, 2);
        s.quit.wait().await;
        let reg = s.registry.clone();
        until("every system idle", || {
            reg.snapshots().iter().all(|x| x.in_flight == 0)
        })
        .await;
        reg.get(SystemId::CLAUDE_CLIENT).poison_ledger();

        let end = end(s, 500).await;
        let sd = &end.report.shutdown.report;
        // The poisoned system is not called closed; the others are, by both witnesses.
        assert_eq!(
            outcome(&end, SystemId::CLAUDE_CLIENT),
            CloseOutcome::Unverified
        );
        let claude = sd
            .systems
            .iter()
            .find(|r| r.name == SystemId::CLAUDE_CLIENT)
            .unwrap();
        assert!(
            claude
                .unverified_reason
                .as_deref()
                .unwrap()
                .contains("poisoned"),
            "{claude:?}"
        );
        for r in sd
            .systems
            .iter()
            .filter(|r| r.name != SystemId::CLAUDE_CLIENT)
        {
            assert_eq!(r.outcome, CloseOutcome::Closed, "{r:?}");
        }
        assert!(!sd.verified);
        assert_eq!(sd.unverified, 1);
        assert_eq!(end.exit_code(), 4);
        // Nothing else lost: the game's figures and the report (checked on disk by `end`).
        assert_eq!(end.report.stats.cycles, 2);
        assert!(end.report.stats.requests > 0);
        assert!(end.report_path.is_some(), "{:?}", end.report_error);
    });
}

#[test]
fn commands_act_on_the_real_state_and_a_runtime_close_is_told_at_shutdown() {
    use singularis_tui::session::control::Reply;
    serial(async {
        let mut c = config(&[(SystemId::CLAUDE_CLIENT, Fault::Hang)]);
        // The hung call stays in flight (no deadline cuts it first), so `c` meets it.
        c.resilience.deadline_initial_ms = Some(60_000);
        c.shutdown.grace_ms = 200;
        let mut s = Session::start(c).await.unwrap();
        s.spawn_gameplay(Mode::Parallel, 0);
        let reg = s.registry.clone();
        until("claude request hanging", || {
            on_the_wire(&reg, SystemId::CLAUDE_CLIENT)
        })
        .await;
        let control = s.control.clone();
        let claude = SystemId::CLAUDE_CLIENT;

        // `c`: graceful, so the hung request holds it to the grace deadline; there it is
        // cancelled, its connection closes by itself, and the close is normal.
        let Reply::Closing(close) = control.close(claude, "you", false) else {
            panic!("c on an open system was refused");
        };
        match control.close(claude, "you", false) {
            Reply::Refused(why) => assert!(why.contains("already closing"), "{why}"),
            _ => panic!("a second c while closing was taken"),
        }
        let first = close.await;
        assert_eq!(first.outcome, CloseOutcome::Closed, "{first:?}");
        assert_eq!(first.cancelled, 1, "{first:?}");
        match control.close(claude, "you", true) {
            Reply::Refused(why) => assert!(why.contains("already closed"), "{why}"),
            _ => panic!("x on a closed system was taken"),
        }
        // `r`, then `x` at once: no refresh between them, and the `x` still acts.
        assert!(matches!(control.reopen(claude, "you"), Reply::Done(_)));
        let Reply::Closing(close) = control.close(claude, "you", true) else {
            panic!("x right after r was refused: judged on a stale state");
        };
        let second = close.await;
        assert_eq!(second.outcome, CloseOutcome::Forced);
        match control.reopen(SystemId::VIDEO_INTERPRETER, "you") {
            Reply::Refused(why) => assert!(why.contains("only a closed system"), "{why}"),
            _ => panic!("an open system was reopened"),
        }

        let end = end(s, 300).await;
        let sd = &end.report.shutdown.report;
        let r = sd.systems.iter().find(|r| r.name == claude).unwrap();
        assert_eq!(r.outcome, CloseOutcome::Forced, "{r:?}");
        let earlier = r.earlier.as_ref().expect("the runtime close is told");
        assert_eq!(earlier.by, "you");
        assert!(earlier.forced_on_request, "{earlier:?}");
        assert_eq!(sd.forced, 1, "the runtime force counts at shutdown");
        assert_eq!(sd.sockets_open_after, Some(0));
        let asked: Vec<(&str, Option<SystemId>, &str)> = end
            .report
            .commands
            .iter()
            .map(|c| {
                let system = c.system.as_deref().and_then(SystemId::from_name);
                (c.command.into(), system, c.outcome.as_str())
            })
            .collect();
        assert_eq!(
            asked,
            [
                ("close", Some(claude), "closed"),
                ("close", Some(claude), "refused"),
                ("force_close", Some(claude), "refused"),
                ("reopen", Some(claude), "reopened"),
                ("force_close", Some(claude), "forced"),
                ("reopen", Some(SystemId::VIDEO_INTERPRETER), "refused"),
            ]
        );
        assert!(end.report.commands.iter().all(|c| c.by == "you"));
        assert_eq!(end.exit_code(), 0);
    });
}

/// `x` during the shutdown is obeyed: the system whose close waits on a hung call is cut
/// now, not at the (minute-long) grace deadline; the others close as usual; and every key
/// of the shutdown is in the report's `commands`: the cut with how the close ended, an `x`
/// on a system already closed and a `c` refused, with why.
#[test]
fn x_during_the_shutdown_cuts_that_systems_close_now_and_is_recorded() {
    use singularis_tui::session::control::Reply;
    serial(async {
        let mut c = in_flight_at_quit(config(&[(SystemId::CLAUDE_CLIENT, Fault::Hang)]));
        c.shutdown.grace_ms = 60_000;
        let mut s = Session::start(c).await.unwrap();
        s.spawn_gameplay(Mode::Parallel, 0);
        let reg = s.registry.clone();
        let claude = SystemId::CLAUDE_CLIENT;
        until("claude request hanging", || on_the_wire(&reg, claude)).await;
        let control = s.control.clone();
        control.quit("you");
        let dir = tempfile::tempdir().unwrap();
        let shutdown = tokio::spawn(s.shutdown(
            Duration::from_secs(60),
            Mode::Parallel,
            Some(dir.path().join("report.json")),
            None,
        ));
        // Claude's close holds for its hung call; the video interpreter closes at once.
        until("claude closing and the video interpreter closed", || {
            reg.get(claude).state() == SystemState::Closing
                && reg.get(SystemId::VIDEO_INTERPRETER).state() == SystemState::Closed
        })
        .await;
        match control.close(claude, "you", true) {
            Reply::Done(text) => assert!(text.contains("Claude client"), "{text}"),
            _ => panic!("x during the shutdown was not taken"),
        }
        assert!(control.cut_at_shutdown(claude));
        match control.close(SystemId::VIDEO_INTERPRETER, "you", true) {
            Reply::Refused(why) => assert!(why.contains("already closed"), "{why}"),
            _ => panic!("x on a system already closed was taken"),
        }
        match control.close(SystemId::GEMINI_CLIENT, "you", false) {
            Reply::Refused(why) => assert!(why.contains("shutting down"), "{why}"),
            _ => panic!("c during the shutdown was taken"),
        }
        let end = shutdown.await.unwrap();
        let sd = &end.report.shutdown.report;
        // Cut now, not at the grace deadline a minute away.
        assert!(sd.total_ms < 30_000.0, "{sd:?}");
        let r = report_of(&end, claude);
        assert_eq!(r.outcome, CloseOutcome::Forced, "{r:?}");
        assert_eq!(r.cancelled, 1, "{r:?}");
        assert_eq!(sd.forced, 1, "only the system cut: {sd:?}");
        assert_eq!(sd.sockets_open_after, Some(0));
        let asked: Vec<(&str, Option<SystemId>, &str)> = end
            .report
            .commands
            .iter()
            .map(|c| {
                let system = c.system.as_deref().and_then(SystemId::from_name);
                (c.command.into(), system, c.outcome.as_str())
            })
            .collect();
        assert_eq!(
            asked,
            [
                ("quit", None, "quit"),
                ("force_close", Some(claude), "forced"),
                ("force_close", Some(SystemId::VIDEO_INTERPRETER), "refused"),
                ("close", Some(SystemId::GEMINI_CLIENT), "refused"),
            ],
            "{:#?}",
            end.report.commands
        );
        let cut = &end.report.commands[1];
        assert!(cut.close_ms.is_some(), "{cut:?}");
        assert_eq!(end.exit_code(), 0);
    });
}

/// The request runs in its caller's task, but it is the system's: a caller that stops
/// waiting leaves it to finish on its own, counted, and the system idle again after.
#[test]
fn a_request_whose_caller_stops_waiting_still_completes_as_the_systems() {
    use singularis_tui::clients::{self, Prompt};
    serial(async {
        let s = Session::start(config(&[(
            SystemId::OPENAI_CLIENT,
            Fault::Slow(Duration::from_millis(200)),
        )]))
        .await
        .unwrap();
        let sys = s.registry.get(SystemId::OPENAI_CLIENT).clone();
        let proto = sys.config.protocol;
        let call = {
            let sys = sys.clone();
            async move {
                let q = Prompt::new("test", "Health: 90/100");
                sys.call(move |c| async move { clients::ask(&c, proto, &q).await })
                    .await
            }
        };
        // The caller gives up once the request is on the wire.
        let watcher = sys.clone();
        tokio::select! {
            _ = call => panic!("the slow answer came before the caller gave up"),
            _ = until("the request in flight", || watcher.snapshot().in_flight == 1) => {}
        }
        assert_eq!(sys.snapshot().done, 0);
        until("the dropped request finished as the system's own", || {
            let snap = sys.snapshot();
            snap.done == 1 && snap.in_flight == 0 && snap.state == SystemState::Idle
        })
        .await;
        assert_eq!(sys.snapshot().errors, 0);
        let end = end(s, 500).await;
        assert_eq!(end.report.shutdown.report.sockets_open_after, Some(0));
    });
}

/// A close that needs force stays `forced`: an answer still streaming to a reader outside
/// the system's tasks keeps its connection busy, so dropping the pool does not close it;
/// at the deadline the socket is shut under its owner (shutdown(2)), and that is force.
#[test]
fn a_connection_that_does_not_close_by_itself_is_shut_and_the_close_is_forced() {
    serial(async {
        let s = Session::start(config(&[(SystemId::WOLFRAM_ANALYZER, Fault::Drip)]))
            .await
            .unwrap();
        let sys = s.registry.get(SystemId::WOLFRAM_ANALYZER).clone();
        let resp = sys
            .call(|c| async move { c.client.send(c.client.get(c.base.clone())).await })
            .await
            .unwrap();
        // Read by a task of the test's, not the system's: the system's tracker is empty.
        let reader = tokio::spawn(async move {
            let mut resp = resp;
            while let Ok(Some(_)) = resp.chunk().await {}
        });
        let end = end(s, 200).await;
        let wolfram = report_of(&end, SystemId::WOLFRAM_ANALYZER);
        assert_eq!(wolfram.outcome, CloseOutcome::Forced, "{wolfram:?}");
        // Forced at the deadline, not before (the answer kept streaming until then), and
        // within FORCE_BUDGET of it, not only some time after.
        let total = end.report.shutdown.report.total_ms;
        assert!(total >= 200.0, "forced before the deadline: {total} ms");
        assert!(total <= late_bound(200.0, 0.0), "forced late: {total} ms");
        assert_eq!(wolfram.cancelled, 0, "{wolfram:?}");
        assert_eq!(end.report.shutdown.report.sockets_open_after, Some(0));
        assert_eq!(end.exit_code(), 0);
        // The shut socket ended the body.
        reader.await.unwrap();
    });
}

/// Dependency order on the real engine: every system starts closing, and stops using what
/// it depends on (its calls ended, its pool dropped: `Released`), before any system it
/// depends on starts closing; systems with no order between them close at the same time.
/// (A released system's own sockets settle while what it used closes: ARCHITECTURE.md,
/// "Shutdown order"; the engine's closing tests show that part.) Reversing `dependents()`
/// in lifecycle/shutdown.rs, or closing one system at a time, fails it.
#[test]
fn dependents_stop_using_what_they_use_before_it_starts_closing_and_independent_ones_overlap() {
    use singularis_tui::lifecycle::ShutdownEvent;
    serial(async {
        // Two systems with no order between them, each with a slow unary request on the wire
        // at the quit, so each close waits for its answer (a long grace: nothing is cut; a
        // stream would end at once, the game no longer needing it).
        let slow = Fault::Slow(Duration::from_millis(1_000));
        let (video, wolfram) = (SystemId::CLAUDE_CLIENT, SystemId::WOLFRAM_ANALYZER);
        let config = in_flight_at_quit(config(&[(video, slow), (wolfram, slow)]));
        let edges: Vec<(SystemId, SystemId)> = config
            .systems
            .iter()
            .flat_map(|(&user, s)| s.depends_on.iter().map(move |&used| (user, used)))
            .collect();
        assert!(
            edges.len() >= 8,
            "the default graph has its edges: {edges:?}"
        );
        let mut s = Session::start(config).await.unwrap();
        s.spawn_gameplay(Mode::Parallel, 0);
        let reg = s.registry.clone();
        until("a request on the wire on both slow systems", || {
            on_the_wire(&reg, video) && on_the_wire(&reg, wolfram)
        })
        .await;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        s.quit.quit(Reason::Quit);
        let end = s
            .shutdown(Duration::from_secs(10), Mode::Parallel, None, Some(tx))
            .await;
        assert!(end.report.shutdown.report.is_clean(), "{:?}", end.report);

        // Where in the one ordered stream of events each system started and ended closing.
        let (mut started, mut released, mut ended) = (
            std::collections::BTreeMap::new(),
            std::collections::BTreeMap::new(),
            std::collections::BTreeMap::new(),
        );
        let mut at = 0;
        while let Ok(e) = rx.try_recv() {
            match e {
                ShutdownEvent::Closing(id) => {
                    started.insert(id, at);
                }
                ShutdownEvent::Released(id) => {
                    released.insert(id, at);
                }
                ShutdownEvent::Closed(r) => {
                    ended.insert(r.name, at);
                }
                _ => {}
            }
            at += 1;
        }
        let all = end.report.shutdown.report.systems.len();
        assert_eq!(all, 11, "the default config's systems");
        assert_eq!(started.len(), all, "{started:?}");
        assert_eq!(released.len(), all, "{released:?}");
        assert_eq!(ended.len(), all, "{ended:?}");
        for (user, used) in &edges {
            assert!(
                started[user] < released[user] && released[user] < started[used],
                "{user} (which uses {used}) must stop using it before {used} starts closing: \
                 {user} started at event {}, released at {}; {used} started at event {}",
                started[user],
                released[user],
                started[used]
            );
        }
        // Each of the two slow systems started closing before the other one ended.
        assert!(
            started[&video] < ended[&wolfram] && started[&wolfram] < ended[&video],
            "independent systems close at the same time: claude {}..{}, wolfram {}..{}",
            started[&video],
            ended[&video],
            started[&wolfram],
            ended[&wolfram]
        );
        let closed = |id: SystemId| report_of(&end, id).outcome;
        assert_eq!(
            (closed(video), closed(wolfram)),
            (CloseOutcome::Closed, CloseOutcome::Closed)
        );
    });
}
