//! Closing on the engine alone: systems of a test config against a tiny HTTP server of the
//! test's own on loopback, closed one by one (`System::close`) and all together
//! (`shutdown_all`), and the process-wide check (`verify`). Each assertion is one that a
//! mutant of lifecycle/shutdown.rs, lifecycle/system/close.rs or net/closing.rs made fail
//! (TESTING.md, "Mutation testing"); none bounds how long anything took.
//!
//! These count the whole process's TCP sockets, so the tests take turns (`one_at_a_time`).

use singularis_engine::clients::ClientError;
use singularis_engine::config;
use singularis_engine::lifecycle::{
    CloseOutcome, CloseReport, CloseStepKind, EarlierClose, Registry, ShutdownEvent,
    ShutdownReport, StepReport, System, SystemState, counted, shutdown_all, sockets,
};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

fn one_at_a_time() -> MutexGuard<'static, ()> {
    static ONE: Mutex<()> = Mutex::new(());
    ONE.lock().unwrap_or_else(|p| p.into_inner())
}

/// Run `test` alone, on a runtime of two workers (as the app's).
fn serial(test: impl std::future::Future<Output = ()>) {
    let _one = one_at_a_time();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(test);
}

/// Run `test` alone on one thread: a spawned task runs only where `test` waits.
fn serial_one_thread(test: impl std::future::Future<Output = ()>) {
    let _one = one_at_a_time();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(test);
}

/// The server: HTTP/1.1 with keep-alive, by path: `/fast` answers at once, `/slow` after
/// 300 ms, `/hang` never, `/drip` sends a chunk every 20 ms for as long as it is read.
/// Its sockets (listener and accepted) all have its port, which the checks leave out.
async fn serve() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = Vec::new();
                loop {
                    let mut chunk = [0u8; 4096];
                    let n = match stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    buf.extend_from_slice(&chunk[..n]);
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_string();
                    buf.drain(..end + 4);
                    let path = head.split(' ').nth(1).unwrap_or("/").to_string();
                    match path.as_str() {
                        "/hang" => std::future::pending::<()>().await,
                        "/drip" => {
                            let head = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n";
                            if stream.write_all(head.as_bytes()).await.is_err() {
                                return;
                            }
                            loop {
                                if stream.write_all(b"1\r\nx\r\n").await.is_err() {
                                    return;
                                }
                                tokio::time::sleep(Duration::from_millis(20)).await;
                            }
                        }
                        "/slow" => tokio::time::sleep(Duration::from_millis(300)).await,
                        _ => {}
                    }
                    let answer = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                    if stream.write_all(answer.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

/// A registry of `systems` (`name = "depends_on list"`, or `None` for a disabled one), all
/// pointed at the server on `port`.
fn registry(port: u16, systems: &[(&str, Option<&str>)]) -> Arc<Registry> {
    let mut text = String::from("[shutdown]\ngrace_ms = 1000\n");
    for (name, deps) in systems {
        text.push_str(&format!(
            "[systems.{name}]\nprotocol = \"openai_chat\"\nbase_url = \"http://127.0.0.1:{port}/\"\n\
             model = \"m\"\napi_key_env = \"\"\ntimeout_ms = 60000\nretries = 0\n"
        ));
        match deps {
            Some(d) => text.push_str(&format!("depends_on = [{d}]\n")),
            None => text.push_str("enabled = false\n"),
        }
    }
    let mut cfg = config::parse(text.as_bytes(), "closing.toml").unwrap();
    cfg.systems.retain(|id, _| !id.is_seed());
    Arc::new(Registry::new(&cfg, &BTreeMap::new(), &|_| None))
}

fn system<'a>(reg: &'a Registry, name: &str) -> &'a Arc<System> {
    reg.all()
        .iter()
        .find(|s| s.id.name() == name)
        .unwrap_or_else(|| panic!("no system {name}"))
}

/// One GET of `path` on `sys`, its body read in the call.
async fn get(sys: &Arc<System>, path: &'static str) -> Result<String, ClientError> {
    sys.call(move |c| async move {
        let url = c.base.join(path).unwrap();
        let resp = c.client.send(c.client.get(url)).await?;
        let body = resp
            .text()
            .await
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        Ok(body)
    })
    .await
}

/// Poll `cond` every 5 ms for up to 10 s (a bound for a stuck test, not a timing claim).
async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..2000 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("gave up waiting for: {what}");
}

fn kinds(r: &CloseReport) -> Vec<CloseStepKind> {
    r.steps.iter().map(|s| s.step).collect()
}

/// `shutdown_all` as most tests here call it: no force, no baseline, no events, no steps
/// after the systems; the test server's port left out of the process check.
async fn close_all(reg: Arc<Registry>, grace: Duration, port: u16) -> ShutdownReport {
    shutdown_all(
        reg,
        grace,
        CancellationToken::new(),
        None,
        vec![port],
        None,
        Vec::new(),
    )
    .await
}

fn report_of<'a>(report: &'a ShutdownReport, name: &str) -> &'a CloseReport {
    report
        .systems
        .iter()
        .find(|r| r.name.name() == name)
        .unwrap_or_else(|| panic!("no report for {name}: {report:?}"))
}

/// What holds for every close report: its timeline is in time order and within its
/// `close_ms`, the last step is the check.
fn timeline_is_consistent(r: &CloseReport) {
    let ms: Vec<f64> = r.steps.iter().map(|s| s.ms).collect();
    assert!(ms.is_sorted(), "steps in time order: {r:?}");
    if let Some(last) = r.steps.last() {
        assert_eq!(last.step, CloseStepKind::Checked, "{r:?}");
        assert!(
            last.ms <= r.close_ms,
            "the check is within the close: {r:?}"
        );
        assert!(last.ms > 0.0, "{r:?}");
    }
}

/// A shutdown with a pooled connection on each system: the users close before what they
/// use, a disabled system is skipped (and has no `Closing` event), every count adds up and
/// every figure is one of the whole.
#[test]
fn dependents_close_first_a_disabled_system_is_skipped_and_the_counts_add_up() {
    serial(async {
        let port = serve().await;
        let baseline = sockets::count_process_sockets(&[port]).ok();
        let reg = registry(
            port,
            &[
                ("base", Some("")),
                ("users", Some("\"base\"")),
                ("off", None),
            ],
        );
        for name in ["base", "users"] {
            assert_eq!(get(system(&reg, name), "/fast").await.unwrap(), "ok");
            assert_eq!(system(&reg, name).ledger_open(), 1, "a pooled connection");
        }
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let outer = Instant::now();
        let report = shutdown_all(
            reg.clone(),
            Duration::from_secs(5),
            CancellationToken::new(),
            baseline,
            vec![port],
            Some(singularis_engine::lifecycle::to_channel(tx)),
            Vec::new(),
        )
        .await;
        let outer_ms = outer.elapsed().as_secs_f64() * 1e3;

        let mut events = Vec::new();
        while let Ok(e) = rx.try_recv() {
            events.push(match e {
                ShutdownEvent::Begin { .. } => "begin".to_string(),
                ShutdownEvent::Closing(id) => format!("closing {id}"),
                ShutdownEvent::Released(id) => format!("released {id}"),
                ShutdownEvent::Closed(r) => format!("closed {}", r.name),
                ShutdownEvent::StepClosed(r) => format!("step {}", r.name),
                ShutdownEvent::Verified(v) => format!("verified {:?}", v.sockets_open_after),
            });
        }
        let at = |e: &str| events.iter().position(|x| x == e);
        assert_eq!(at("begin"), Some(0), "{events:?}");
        assert!(at("closing off").is_none(), "{events:?}");
        let (users_released, base_closing) = (at("released users"), at("closing base"));
        assert!(
            users_released.is_some() && base_closing.is_some() && users_released < base_closing,
            "users stop using base before base starts closing: {events:?}"
        );
        assert!(at("closing users") < users_released, "{events:?}");
        assert!(at("released base") < at("closed base"), "{events:?}");
        assert!(at("closing users").is_some() && at("closed off").is_some());
        assert_eq!(events.last().unwrap(), "verified Some(0)", "{events:?}");
        // begin, two closings, two releases (not the disabled one), three closes, verified.
        assert_eq!(events.len(), 1 + 2 + 2 + 3 + 1, "{events:?}");
        assert_eq!(
            (report.closed, report.skipped, report.forced, report.errors),
            (2, 1, 0, 0),
            "{report:?}"
        );
        assert_eq!((report.unverified, report.cancelled), (0, 0), "{report:?}");
        assert!(report.verified, "{report:?}");
        assert_eq!(report.unverified_reason, None);
        assert_eq!(report.sockets_open_after, Some(0));
        assert!(report.is_clean() && !report.leaked());
        assert_eq!(report.grace_ms, 5000);
        assert!(report.endpoints.is_empty());

        for name in ["base", "users"] {
            let r = report_of(&report, name);
            assert_eq!(r.outcome, CloseOutcome::Closed, "{r:?}");
            assert_eq!((r.sockets_before, r.cancelled), (1, 0), "{r:?}");
            assert!(r.verified && r.unverified_reason.is_none(), "{r:?}");
            assert_eq!(r.error, None);
            let k = kinds(r);
            for step in [
                CloseStepKind::Drained,
                CloseStepKind::PoolDropped,
                CloseStepKind::FdsClosed,
                CloseStepKind::Checked,
            ] {
                assert!(k.contains(&step), "{step:?} in {r:?}");
            }
            assert!(!k.contains(&CloseStepKind::Cut), "{r:?}");
            timeline_is_consistent(r);
            assert!(r.close_ms <= report.total_ms, "{r:?} within {report:?}");
            assert_eq!(system(&reg, name).state(), SystemState::Closed);
            assert_eq!(system(&reg, name).ledger_open(), 0);
        }
        let off = report_of(&report, "off");
        assert_eq!(off.outcome, CloseOutcome::Skipped);
        assert!(off.verified && off.steps.is_empty(), "{off:?}");
        assert_eq!(system(&reg, "off").state(), SystemState::Disabled);

        assert!(report.check_ms <= report.total_ms, "{report:?}");
        assert!(report.total_ms <= outer_ms, "{report:?} in {outer_ms} ms");
    });
}

/// A socket opened outside every system after the baseline is a leak: counted, and told.
/// The check looks twice before saying so (the second look after its 20 ms re-check).
#[test]
fn a_socket_beyond_the_baseline_is_reported_left_open() {
    serial(async {
        let port = serve().await;
        let baseline = sockets::count_process_sockets(&[port]).ok();
        let reg = registry(port, &[("lone", Some(""))]);
        let stray = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let report = shutdown_all(
            reg,
            Duration::from_millis(500),
            CancellationToken::new(),
            baseline,
            vec![port],
            None,
            Vec::new(),
        )
        .await;
        assert_eq!(report.sockets_open_after, Some(1), "{report:?}");
        assert!(report.leaked() && !report.is_clean(), "{report:?}");
        assert!(report.check_ms >= 20.0, "looked again: {report:?}");
        assert!(report.check_ms <= report.total_ms, "{report:?}");
        assert_eq!(report.sockets_left_text(), "1 socket left open");
        drop(stray);
    });
}

/// A request still running at the quit, within the grace: the close waits for it, and
/// nothing is cut.
#[test]
fn a_request_in_flight_within_the_grace_is_waited_for_not_cut() {
    serial(async {
        let port = serve().await;
        let reg = registry(port, &[("slowpoke", Some(""))]);
        let sys = system(&reg, "slowpoke").clone();
        let done = Arc::new(AtomicBool::new(false));
        // A request that holds no connection: only the system's tracker knows it runs.
        let call = {
            let (sys, done) = (sys.clone(), done.clone());
            tokio::spawn(async move {
                sys.call(move |_| async move {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    done.store(true, Ordering::SeqCst);
                    Ok(())
                })
                .await
            })
        };
        until("the request is in flight", || sys.snapshot().in_flight == 1).await;
        let report = close_all(reg, Duration::from_secs(10), port).await;
        assert!(
            done.load(Ordering::SeqCst),
            "the close waited for the request"
        );
        let r = &report.systems[0];
        assert_eq!((r.outcome, r.cancelled), (CloseOutcome::Closed, 0), "{r:?}");
        assert!(kinds(r).contains(&CloseStepKind::Drained), "{r:?}");
        assert!(!kinds(r).contains(&CloseStepKind::Cut), "{r:?}");
        timeline_is_consistent(r);
        assert!(r.close_ms <= report.total_ms);
        // No baseline: the check cannot vouch for the process, and says why.
        assert!(!report.verified && report.unverified_reason.is_some());
        assert!(call.await.unwrap().is_ok());
    });
}

/// A request that never gets its answer is cut at the grace deadline: counted cancelled;
/// its connection ends with it, so the close is `closed`, not forced.
#[test]
fn a_hung_request_is_cut_at_the_deadline_and_its_system_still_closes() {
    serial(async {
        let port = serve().await;
        let baseline = sockets::count_process_sockets(&[port]).ok();
        let reg = registry(port, &[("stuck", Some(""))]);
        let sys = system(&reg, "stuck").clone();
        let call = {
            let sys = sys.clone();
            tokio::spawn(async move { get(&sys, "/hang").await })
        };
        until("the request is on the wire", || sys.ledger_open() == 1).await;
        let report = shutdown_all(
            reg,
            Duration::from_millis(300),
            CancellationToken::new(),
            baseline,
            vec![port],
            None,
            Vec::new(),
        )
        .await;
        let r = &report.systems[0];
        assert_eq!((r.outcome, r.cancelled), (CloseOutcome::Closed, 1), "{r:?}");
        assert_eq!(report.cancelled, 1);
        let k = kinds(r);
        for step in [
            CloseStepKind::Deadline,
            CloseStepKind::Cut,
            CloseStepKind::CancelSent,
            CloseStepKind::TasksEnded,
            CloseStepKind::PoolDropped,
            CloseStepKind::FdsClosed,
        ] {
            assert!(k.contains(&step), "{step:?} in {r:?}");
        }
        assert!(!k.contains(&CloseStepKind::Drained), "{r:?}");
        let deadline = r.steps.iter().find(|s| s.step == CloseStepKind::Deadline);
        // Where the 300 ms grace ended, in the close's own time (it began a moment after
        // the shutdown did).
        assert!(deadline.unwrap().ms > 150.0, "the deadline mark: {r:?}");
        timeline_is_consistent(r);
        assert!(report.is_clean(), "{report:?}");
        assert!(matches!(call.await.unwrap(), Err(ClientError::Cancelled)));
    });
}

/// A force (a second quit) cuts at once, whatever the grace: the close is `forced`, with no
/// deadline in its timeline.
#[test]
fn a_force_cuts_at_once_and_the_close_is_forced() {
    serial(async {
        let port = serve().await;
        let reg = registry(port, &[("stuck", Some(""))]);
        let sys = system(&reg, "stuck").clone();
        let call = {
            let sys = sys.clone();
            tokio::spawn(async move { get(&sys, "/hang").await })
        };
        until("the request is on the wire", || sys.ledger_open() == 1).await;
        let force = CancellationToken::new();
        force.cancel();
        let report = shutdown_all(
            reg,
            Duration::from_secs(30),
            force,
            None,
            vec![port],
            None,
            Vec::new(),
        )
        .await;
        let r = &report.systems[0];
        assert_eq!((r.outcome, r.cancelled), (CloseOutcome::Forced, 1), "{r:?}");
        assert_eq!((report.forced, report.closed), (1, 0));
        let k = kinds(r);
        assert!(k.contains(&CloseStepKind::Cut), "{r:?}");
        assert!(!k.contains(&CloseStepKind::Deadline), "{r:?}");
        assert_eq!(sys.ledger_open(), 0);
        timeline_is_consistent(r);
        assert!(call.await.unwrap().is_err());
    });
}

/// An answer still streaming to a reader outside the system keeps its connection busy, so
/// dropping the pool does not close it: at the deadline it is shut under its owner, and
/// that is force.
#[test]
fn a_connection_that_does_not_close_by_itself_is_shut_and_the_close_is_forced() {
    serial(async {
        let port = serve().await;
        let baseline = sockets::count_process_sockets(&[port]).ok();
        let reg = registry(port, &[("drip", Some(""))]);
        let sys = system(&reg, "drip").clone();
        let resp = sys
            .call(|c| async move {
                let url = c.base.join("/drip").unwrap();
                c.client.send(c.client.get(url)).await
            })
            .await
            .unwrap();
        let reader = tokio::spawn(async move {
            let mut resp = resp;
            while let Ok(Some(_)) = resp.chunk().await {}
        });
        let report = shutdown_all(
            reg,
            Duration::from_millis(200),
            CancellationToken::new(),
            baseline,
            vec![port],
            None,
            Vec::new(),
        )
        .await;
        let r = &report.systems[0];
        assert_eq!((r.outcome, r.cancelled), (CloseOutcome::Forced, 0), "{r:?}");
        assert_eq!(r.sockets_before, 1);
        assert_eq!(report.sockets_open_after, Some(0), "{report:?}");
        timeline_is_consistent(r);
        // The shut socket ended the body.
        reader.await.unwrap();
    });
}

/// A system that can no longer use what it depends on (its calls ended, its pool dropped)
/// releases it: what it used closes while its own sockets settle. Here its last answer is
/// still streaming to a reader outside its tasks, so its own close lasts until the deadline
/// shuts that socket; the idle system it used has long closed by then.
#[test]
fn what_a_system_used_closes_once_released_not_after_its_sockets_settle() {
    serial(async {
        let port = serve().await;
        let baseline = sockets::count_process_sockets(&[port]).ok();
        let reg = registry(port, &[("base", Some("")), ("users", Some("\"base\""))]);
        assert_eq!(get(system(&reg, "base"), "/fast").await.unwrap(), "ok");
        let resp = system(&reg, "users")
            .call(|c| async move {
                let url = c.base.join("/drip").unwrap();
                c.client.send(c.client.get(url)).await
            })
            .await
            .unwrap();
        let reader = tokio::spawn(async move {
            let mut resp = resp;
            while let Ok(Some(_)) = resp.chunk().await {}
        });
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let report = shutdown_all(
            reg,
            Duration::from_millis(200),
            CancellationToken::new(),
            baseline,
            vec![port],
            Some(singularis_engine::lifecycle::to_channel(tx)),
            Vec::new(),
        )
        .await;
        let mut events = Vec::new();
        while let Ok(e) = rx.try_recv() {
            match e {
                ShutdownEvent::Closing(id) => events.push(format!("closing {id}")),
                ShutdownEvent::Released(id) => events.push(format!("released {id}")),
                ShutdownEvent::Closed(r) => events.push(format!("closed {}", r.name)),
                _ => {}
            }
        }
        assert_eq!(
            events,
            [
                "closing users",
                "released users",
                "closing base",
                "released base",
                "closed base",
                "closed users"
            ],
            "{report:?}"
        );
        assert_eq!(report_of(&report, "base").outcome, CloseOutcome::Closed);
        // Its busy connection was shut at the deadline: force, as before.
        assert_eq!(report_of(&report, "users").outcome, CloseOutcome::Forced);
        assert_eq!(report.sockets_open_after, Some(0), "{report:?}");
        reader.await.unwrap();
    });
}

/// One system closed at runtime: a second close has nothing to do, a reopen makes a fresh
/// pool that works, a close asked for earlier is told at the next one and counts, and `x`
/// forces.
#[test]
fn closing_twice_reopening_and_an_earlier_close_are_each_told() {
    serial(async {
        let port = serve().await;
        let reg = registry(port, &[("one", Some("")), ("off", None)]);
        let sys = system(&reg, "one").clone();
        let never = CancellationToken::new();
        let soon = || tokio::time::Instant::now() + Duration::from_secs(2);
        assert!(!sys.reopen(), "an open system is not reopened");
        assert_eq!(get(&sys, "/fast").await.unwrap(), "ok");

        let first = sys.close(soon(), &never).await;
        assert_eq!(first.outcome, CloseOutcome::Closed, "{first:?}");
        assert_eq!(first.sockets_before, 1);
        assert!(first.verified && !first.steps.is_empty(), "{first:?}");
        timeline_is_consistent(&first);
        assert_eq!(sys.state(), SystemState::Closed);
        assert!(get(&sys, "/fast").await.is_err(), "a closed system refuses");

        let again = sys.close(soon(), &never).await;
        assert_eq!(again.outcome, CloseOutcome::Closed, "{again:?}");
        assert_eq!(again.sockets_before, 0);
        assert!(
            again.verified && again.steps.is_empty(),
            "nothing to do: {again:?}"
        );
        assert!(again.earlier.is_none());

        assert!(sys.reopen());
        assert_eq!(sys.state(), SystemState::Idle);
        assert!(!sys.reopen(), "reopened once");
        assert_eq!(get(&sys, "/fast").await.unwrap(), "ok", "a fresh pool");

        // An idle system with no connection still closes for real.
        let idle = system(&reg, "off");
        assert_eq!(idle.state(), SystemState::Disabled);
        let skipped = idle.close(soon(), &never).await;
        assert_eq!(skipped.outcome, CloseOutcome::Skipped);
        assert!(skipped.verified);

        let earlier = EarlierClose {
            by: "you".into(),
            at_s: 1.0,
            forced_on_request: true,
            outcome: CloseOutcome::Forced,
            close_ms: 3.0,
            error: None,
            cancelled: 0,
        };
        sys.note_earlier_close(earlier.clone());
        let told = sys.close(soon(), &never).await;
        assert_eq!(
            told.outcome,
            CloseOutcome::Forced,
            "the worse of both: {told:?}"
        );
        assert_eq!(told.earlier, Some(earlier));

        assert!(sys.reopen());
        let forced = sys.force_close().await;
        assert_eq!(forced.outcome, CloseOutcome::Forced, "{forced:?}");
        assert!(
            forced.earlier.is_none(),
            "a reopen forgets the earlier close"
        );
        assert!(!kinds(&forced).contains(&CloseStepKind::Deadline));
        assert_eq!(sys.state(), SystemState::Closed);
    });
}

/// An idle system that never connected still goes through a real close: its state ends
/// `closed` and its timeline has the steps.
#[test]
fn an_idle_system_that_never_connected_is_closed_for_real() {
    serial(async {
        let port = serve().await;
        let reg = registry(port, &[("fresh", Some(""))]);
        let sys = system(&reg, "fresh").clone();
        assert_eq!(sys.state(), SystemState::Idle);
        let r = sys
            .close(
                tokio::time::Instant::now() + Duration::from_secs(1),
                &CancellationToken::new(),
            )
            .await;
        assert_eq!(r.outcome, CloseOutcome::Closed, "{r:?}");
        assert_eq!(sys.state(), SystemState::Closed);
        assert!(kinds(&r).contains(&CloseStepKind::Drained), "{r:?}");
        assert!(!kinds(&r).contains(&CloseStepKind::FdsClosed), "{r:?}");
        timeline_is_consistent(&r);
    });
}

/// The process-wide check without a baseline: never a zero that was not measured, but a
/// leak the ledger alone sees is one.
#[test]
fn verify_without_a_baseline_is_unverified_and_still_reports_the_ledgers_leak() {
    serial_one_thread(async {
        let v = singularis_engine::lifecycle::verify(None, 0, &[]).await;
        assert_eq!(v.sockets_open_after, None);
        assert!(v.unverified_reason.is_some());
        let v = singularis_engine::lifecycle::verify(None, 2, &[]).await;
        assert_eq!(v.sockets_open_after, Some(2));
        assert!(v.unverified_reason.is_some());
    });
}

/// The log lines of this thread (a subscriber of the test's own: the engine has no other).
#[derive(Clone, Default)]
struct Logged(Arc<Mutex<Vec<String>>>);

impl Logged {
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

impl tracing::Subscriber for Logged {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        struct Line(String);
        impl tracing::field::Visit for Line {
            fn record_debug(&mut self, f: &tracing::field::Field, v: &dyn std::fmt::Debug) {
                self.0.push_str(&format!("{}={:?} ", f.name(), v));
            }
        }
        let mut line = Line(String::new());
        event.record(&mut line);
        self.0.lock().unwrap().push(line.0);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// With a baseline: what is open beyond it (the excluded ports left out), or what the
/// ledgers count, whichever is more. A leak is logged socket by socket (the excluded ones
/// left out); a clean check logs none.
#[test]
fn verify_counts_sockets_beyond_the_baseline_less_the_excluded_ports() {
    let logged = Logged::default();
    let _log = tracing::subscriber::set_default(logged.clone());
    serial_one_thread(async {
        let verify = singularis_engine::lifecycle::verify;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        // A socket open before the baseline: part of it, never a leak.
        let before = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let baseline = sockets::count_process_sockets(&[port]).unwrap();
        let clean = verify(Some(baseline), 0, &[port]).await;
        assert_eq!(clean.sockets_open_after, Some(0));
        assert_eq!(clean.unverified_reason, None);
        assert_eq!(
            logged.take(),
            Vec::<String>::new(),
            "a clean check logs nothing"
        );
        assert_eq!(
            verify(Some(baseline), 3, &[port]).await.sockets_open_after,
            Some(3),
            "the ledgers' count when it is more"
        );
        // A connection: the client's socket counts, the accepted one has the excluded port.
        let client = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (server, _) = listener.accept().unwrap();
        logged.take();
        let leak = verify(Some(baseline), 0, &[port]).await;
        assert_eq!(leak.sockets_open_after, Some(1));
        assert_eq!(leak.unverified_reason, None);
        let lines = logged.take();
        let named = |addr: std::net::SocketAddr| {
            lines
                .iter()
                .any(|l| l.contains("still open") && l.contains(&format!("local={addr} ")))
        };
        assert!(named(client.local_addr().unwrap()), "{lines:?}");
        assert!(
            named(before.local_addr().unwrap()),
            "every socket is listed: {lines:?}"
        );
        assert!(
            !named(server.local_addr().unwrap()),
            "not the excluded: {lines:?}"
        );
        drop((client, server));
        assert_eq!(
            verify(Some(baseline), 0, &[port]).await.sockets_open_after,
            Some(0)
        );
    });
}

/// When the table cannot be read at the end (procfs gone mid-session, after the baseline),
/// the ledgers' count is all there is: it proves a leak, never its absence. The test runs
/// itself again in a private mount namespace (`unshare(1)`, root) and unmounts /proc there
/// after the baseline.
#[test]
fn verify_when_the_table_goes_unreadable_trusts_the_ledgers_only_for_a_leak() {
    const CHILD: &str = "CLOSING_TEST_PROC_GONE";
    const NAME: &str = "verify_when_the_table_goes_unreadable_trusts_the_ledgers_only_for_a_leak";
    if std::env::var_os(CHILD).is_some() {
        let baseline = sockets::count_process_sockets(&[]).expect("/proc at the start");
        let umount = std::process::Command::new("umount")
            .args(["-l", "/proc"])
            .status()
            .expect("umount runs");
        assert!(umount.success(), "umount /proc in the private namespace");
        // On a thread that never listed the fds: a thread that did keeps its open
        // /proc/self/fd, which still reads the table (truly) after a lazy unmount.
        let checks = std::thread::spawn(move || {
            assert!(sockets::process_tcp_sockets().is_err(), "the table is gone");
            serial_one_thread(async move {
                let verify = singularis_engine::lifecycle::verify;
                let none = verify(Some(baseline), 0, &[]).await;
                assert_eq!(none.sockets_open_after, None, "never an unmeasured zero");
                assert!(none.unverified_reason.is_some());
                let leak = verify(Some(baseline), 2, &[]).await;
                assert_eq!(leak.sockets_open_after, Some(2), "the ledgers' leak");
                assert!(leak.unverified_reason.is_some());
            });
        });
        if let Err(panic) = checks.join() {
            std::panic::resume_unwind(panic);
        }
        return;
    }
    let run = std::process::Command::new("unshare")
        .args(["--mount", "--propagation", "private"])
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", NAME, "--test-threads=1"])
        .env(CHILD, "1")
        .output();
    // The child's test failing exits 101; anything else is unshare missing or refused.
    let why = match run {
        Ok(out) if out.status.success() => {
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(stdout.contains("1 passed"), "{stdout}");
            return;
        }
        Ok(out) if out.status.code() == Some(101) => panic!(
            "in the private namespace: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        Ok(out) => String::from_utf8_lossy(&out.stderr).trim().to_string(),
        Err(e) => format!("unshare: {e}"),
    };
    if std::env::var_os("CI").is_some()
        || std::env::var_os("SINGULARIS_TESTS_REQUIRE_ALL").is_some_and(|v| v == "1")
    {
        panic!("{NAME} cannot run (needs unshare(1) and root): {why}");
    }
    println!("SKIPPED {NAME}: needs unshare(1) and root: {why}");
}

/// The check looks again, once, only when something is left: a socket that closes during
/// its re-check is not a leak, and when nothing is left it does not wait (a socket opened
/// by another task meanwhile is not this session's).
#[test]
fn verify_looks_again_only_when_something_is_left() {
    serial_one_thread(async {
        let verify = singularis_engine::lifecycle::verify;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let baseline = sockets::count_process_sockets(&[port]).unwrap();
        // One thread: the task runs only when verify waits, i.e. during its re-check.
        let closing = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        tokio::spawn(async move { drop(closing) });
        let v = verify(Some(baseline), 0, &[port]).await;
        assert_eq!(v.sockets_open_after, Some(0), "closed during the re-check");

        let opened = Arc::new(Mutex::new(None));
        let opener = {
            let opened = opened.clone();
            tokio::spawn(async move {
                *opened.lock().unwrap() =
                    Some(std::net::TcpStream::connect(("127.0.0.1", port)).unwrap());
            })
        };
        let v = verify(Some(baseline), 0, &[port]).await;
        assert_eq!(
            v.sockets_open_after,
            Some(0),
            "no wait when nothing is left"
        );
        opener.await.unwrap();
        assert!(opened.lock().unwrap().is_some());
    });
}

/// A close that starts after its deadline (the systems using it held it up) still gives
/// its dropped pool a moment to close its idle connection before anything is forced. One
/// thread: the pool's connection task runs only when the close waits.
#[test]
fn a_close_after_its_deadline_still_lets_the_pool_close_its_idle_connection() {
    serial_one_thread(async {
        let port = serve().await;
        let reg = registry(port, &[("late", Some(""))]);
        let sys = system(&reg, "late").clone();
        assert_eq!(get(&sys, "/fast").await.unwrap(), "ok");
        assert_eq!(sys.ledger_open(), 1);
        let past = tokio::time::Instant::now() - Duration::from_millis(1);
        let r = sys.close(past, &CancellationToken::new()).await;
        assert_eq!(
            (r.outcome, r.sockets_before),
            (CloseOutcome::Closed, 1),
            "{r:?}"
        );
        assert!(kinds(&r).contains(&CloseStepKind::FdsClosed), "{r:?}");
        timeline_is_consistent(&r);
    });
}

/// A request that does not end when cut (it blocks its thread, ignoring the cancel) does
/// not hold the close: the close waits for it only a moment, drops the pool, and ends by its
/// budget (260 ms after the deadline), before the request does (900 ms in). That close
/// needed force, and says so.
#[test]
fn a_request_that_ignores_the_cut_does_not_hold_the_close_and_makes_it_forced() {
    serial(async {
        let port = serve().await;
        let reg = registry(port, &[("stubborn", Some(""))]);
        let sys = system(&reg, "stubborn").clone();
        let ended = Arc::new(AtomicBool::new(false));
        let call = {
            let (sys, ended) = (sys.clone(), ended.clone());
            tokio::spawn(async move {
                sys.call(move |_| async move {
                    std::thread::sleep(Duration::from_millis(900));
                    ended.store(true, Ordering::SeqCst);
                    Ok(())
                })
                .await
            })
        };
        until("the request is in flight", || sys.snapshot().in_flight == 1).await;
        let report = close_all(reg, Duration::from_millis(100), port).await;
        assert!(
            !ended.load(Ordering::SeqCst),
            "the close ended before the request: {report:?}"
        );
        let r = &report.systems[0];
        assert_eq!((r.outcome, r.cancelled), (CloseOutcome::Forced, 1), "{r:?}");
        assert!(!kinds(r).contains(&CloseStepKind::TasksEnded), "{r:?}");
        timeline_is_consistent(r);
        let _ = call.await;
    });
}

/// A close cut at its deadline (a request hung) while an answer still streams to a reader
/// outside the system: the streaming connection is shut under its owner before the close's
/// bound, and given until the bound to go, so the close is forced, with nothing left open.
#[test]
fn a_cut_close_shuts_a_busy_connection_in_time_and_is_forced_not_an_error() {
    serial(async {
        let port = serve().await;
        let baseline = sockets::count_process_sockets(&[port]).ok();
        let reg = registry(port, &[("both", Some(""))]);
        let sys = system(&reg, "both").clone();
        let resp = sys
            .call(|c| async move {
                let url = c.base.join("/drip").unwrap();
                c.client.send(c.client.get(url)).await
            })
            .await
            .unwrap();
        let reader = tokio::spawn(async move {
            let mut resp = resp;
            while let Ok(Some(_)) = resp.chunk().await {}
        });
        let hung = {
            let sys = sys.clone();
            tokio::spawn(async move { get(&sys, "/hang").await })
        };
        until("both connections open", || sys.ledger_open() == 2).await;
        let report = shutdown_all(
            reg,
            Duration::from_millis(200),
            CancellationToken::new(),
            baseline,
            vec![port],
            None,
            Vec::new(),
        )
        .await;
        let r = &report.systems[0];
        assert_eq!((r.outcome, r.cancelled), (CloseOutcome::Forced, 1), "{r:?}");
        assert_eq!((r.sockets_before, r.error.as_deref()), (2, None), "{r:?}");
        assert_eq!(report.sockets_open_after, Some(0), "{report:?}");
        assert_eq!(report.errors, 0);
        timeline_is_consistent(r);
        reader.await.unwrap();
        assert!(hung.await.unwrap().is_err());
    });
}

/// `settle` on sockets no ledger records (a server's, picked by `also`, as the metrics
/// endpoint's are): each is shut under its owner, then looked at again, every millisecond
/// until `cut_by`, while something is left. One thread: the owner runs only while settle
/// waits.
#[test]
fn settle_gives_a_shut_socket_outside_the_ledger_until_the_bound_to_go() {
    use singularis_engine::net::{settle, sockets::SocketLedger};
    serial_one_thread(async {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let _client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        let (local, remote) = (server.local_addr().unwrap(), server.peer_addr().unwrap());
        server.set_nonblocking(true).unwrap();
        // The owner: reads until the shut makes it see EOF, then closes it.
        let owner = tokio::spawn(async move {
            let mut server = tokio::net::TcpStream::from_std(server).unwrap();
            let mut buf = [0u8; 64];
            while server.read(&mut buf).await.is_ok_and(|n| n > 0) {}
        });
        let ledger = SocketLedger::default();
        let now = tokio::time::Instant::now();
        let never = CancellationToken::new();
        let settled = settle(
            &ledger,
            Some(&|s| s.local == local && s.remote == remote),
            now,
            now + Duration::from_secs(5),
            &never,
        )
        .await;
        assert!(settled.shut_down);
        assert_eq!(settled.left, Vec::new(), "its owner closed it in time");
        assert_eq!(settled.unverified, None);
        owner.await.unwrap();

        // A socket whose owner never lets go (the listener, held here) is left, at the bound.
        let addr = listener.local_addr().unwrap();
        let now = tokio::time::Instant::now();
        let settled = tokio::time::timeout(
            Duration::from_secs(10),
            settle(
                &ledger,
                Some(&|s| s.local == addr && s.state == "unconnected"),
                now,
                now + Duration::from_millis(50),
                &never,
            ),
        )
        .await
        .expect("settle ends at its bound");
        assert!(settled.shut_down);
        assert_eq!(settled.left.len(), 1, "{settled:?}");
        assert_eq!(settled.left[0].local, addr);
        drop(listener);
    });
}

/// The words of the report.
#[test]
fn the_report_counts_in_words_and_never_calls_unmeasured_zero() {
    assert_eq!(counted(1, "socket"), "1 socket");
    assert_eq!(counted(0, "socket"), "0 sockets");
    assert_eq!(counted(4u32, "error"), "4 errors");
    let base = ShutdownReport {
        grace_ms: 500,
        total_ms: 1.0,
        closed: 0,
        forced: 0,
        errors: 0,
        skipped: 0,
        unverified: 0,
        cancelled: 0,
        sockets_open_after: Some(0),
        check_ms: 0.5,
        verified: true,
        unverified_reason: None,
        systems: Vec::new(),
        endpoints: Vec::new(),
    };
    let with = |open: Option<usize>, why: Option<&str>| ShutdownReport {
        sockets_open_after: open,
        verified: why.is_none(),
        unverified_reason: why.map(String::from),
        ..base.clone()
    };
    let clean = with(Some(0), None);
    assert!(clean.is_clean() && !clean.leaked());
    assert_eq!(clean.sockets_left_text(), "0 sockets left open");
    let one = with(Some(1), None);
    assert!(!one.is_clean() && one.leaked());
    assert_eq!(one.sockets_left_text(), "1 socket left open");
    let two = with(Some(2), Some("no /proc"));
    assert!(!two.is_clean() && two.leaked());
    assert_eq!(
        two.sockets_left_text(),
        "2 sockets left open, unverified: no /proc"
    );
    let zero_unverified = with(Some(0), Some("a poisoned ledger"));
    assert!(!zero_unverified.is_clean() && !zero_unverified.leaked());
    let unmeasured = with(None, Some("no /proc"));
    assert!(!unmeasured.is_clean() && !unmeasured.leaked());
    assert_eq!(
        unmeasured.sockets_left_text(),
        "sockets left open unverified: no /proc"
    );
    assert_eq!(
        with(None, None).sockets_left_text(),
        "sockets left open unverified"
    );
    let step = StepReport {
        name: "metrics endpoint".to_string(),
        outcome: CloseOutcome::Closed,
        close_ms: 1.0,
        sockets_before: 0,
        error: None,
        cancelled: 0,
        verified: true,
        unverified_reason: None,
        earlier: None,
        steps: Vec::new(),
    };
    assert_eq!(step.display_name(), "Metrics endpoint");
}
