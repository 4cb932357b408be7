//! One hung or dripping provider must not stall the agent: the real binary on the sandbox,
//! each system hung and each dripping in turn; then a breaker that closes again once its
//! service is back (a standalone sandbox restarted without the fault).

use crate::common::{cmd, run_expecting};
use std::path::Path;
use std::time::Duration;

/// The systems with a wire of their own (moe has none: it is its experts), from the default
/// config's list.
fn wired() -> Vec<&'static str> {
    let c = singularis_tui::config::Config::default();
    c.ids()
        .into_iter()
        .filter(|id| c.system(*id).protocol != singularis_tui::systems::Protocol::Moe)
        .map(|id| id.name())
        .collect()
}

const CYCLES: u64 = 6;

use crate::common::report;

/// A headless session of `CYCLES` cycles with `fault` on `system`; its report.
fn session_with(system: &str, fault: &str) -> serde_json::Value {
    session_in(system, fault, "parallel")
}

fn session_in(system: &str, fault: &str, mode: &str) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("fast.toml"),
        format!("[gameplay]\ncycle_delay_ms = 0\nmode = \"{mode}\"\n[audio]\nenabled = false\n"),
    )
    .unwrap();
    run_expecting(
        cmd(dir.path())
            .args(["--headless", "--config", "fast.toml", "--cycles"])
            .arg(CYCLES.to_string())
            .args(["--fault", &format!("{system}={fault}")])
            .args(["--report", "r.json"]),
        0,
    );
    report(&dir.path().join("r.json"))
}

fn check(system: &str, fault: &str, r: &serde_json::Value) {
    let what = format!("{system}={fault}");
    assert_eq!(
        r["stats"]["cycles"], CYCLES,
        "{what}: the session completes"
    );
    assert_eq!(r["shutdown"]["sockets_open_after"], 0, "{what}");
    assert_eq!(r["shutdown"]["verified"], true, "{what}");
    let calls = r["stats"]["calls"].as_object().unwrap();
    let faulty = &calls[system];
    assert!(
        faulty["breaker_opens"].as_u64().unwrap() >= 1,
        "{what}: its breaker opened: {faulty}"
    );
    assert_eq!(faulty["answered"], 0, "{what}: {faulty}");
    // Every call it was given is accounted for: late, cut, or skipped by its breaker.
    let accounted = ["late", "cut", "skipped_by_breaker", "errors"]
        .iter()
        .map(|k| faulty[*k].as_u64().unwrap())
        .sum::<u64>();
    assert!(accounted >= 1, "{what}: {faulty}");
    assert_eq!(
        r["stats"]["calls_by_system"][system].as_u64().unwrap(),
        faulty["late"].as_u64().unwrap()
            + faulty["cut"].as_u64().unwrap()
            + faulty["errors"].as_u64().unwrap(),
        "{what}: every request it sent ended late, cut or failed: {faulty}"
    );
    for (name, c) in calls {
        if name == system {
            continue;
        }
        assert_eq!(c["late"], 0, "{what}: {name} was never late: {c}");
        assert_eq!(c["cut"], 0, "{what}: {name} was never cut: {c}");
        assert_eq!(
            c["breaker_opens"], 0,
            "{what}: {name}'s breaker stayed closed: {c}"
        );
    }
}

#[test]
fn each_hung_or_dripping_system_is_cut_off_by_its_breaker_and_the_game_goes_on() {
    // Two sessions at a time: each is short, and the machine has few cores.
    let cases: Vec<(&str, &str)> = wired()
        .iter()
        .flat_map(|s| [(*s, "hang"), (*s, "drip")])
        .collect();
    for pair in cases.chunks(2) {
        std::thread::scope(|scope| {
            let runs: Vec<_> = pair
                .iter()
                .map(|(s, f)| scope.spawn(move || (s, f, session_with(s, f))))
                .collect();
            for run in runs {
                let (s, f, r) = run.join().expect("a session");
                check(s, f, &r);
            }
        });
    }
}

#[test]
fn sequential_mode_follows_the_same_rules() {
    for (system, fault) in [
        ("claude_client", "hang"),
        ("video_interpreter", "drip"),
        ("wolfram_analyzer", "hang"),
    ] {
        let r = session_in(system, fault, "sequential");
        assert_eq!(r["mode"], "sequential");
        check(system, fault, &r);
    }
}

use crate::common::KillOnDrop;

/// A standalone sandbox on fixed ports (`base + system index`), so a restart serves the same
/// URLs; its config lines. `Err` with what it said when it did not start.
fn sandbox_at(dir: &Path, base: u16, fault: Option<&str>) -> Result<(KillOnDrop, String), String> {
    crate::common::standalone_sandbox(dir, &format!("127.0.0.1:{base}"), fault)
        .map(|(child, urls)| (child, crate::common::live_config(&urls)))
}

/// A port taken by another process: the one failure worth another try.
fn port_taken(why: &str) -> bool {
    why.contains("Address already in use")
}

#[test]
fn a_breaker_closes_again_once_its_service_is_back() {
    let dir = tempfile::tempdir().unwrap();
    // Fixed ports, so another process may hold some: another base, a few times. Any other
    // failure to start is the test's.
    const BASES: usize = 20;
    let mut base = 20_000 + (std::process::id() % 3_000) as u16 * 11;
    let mut hunt = Vec::new();
    let (sandbox, systems) = loop {
        match sandbox_at(dir.path(), base, Some("claude_client=hang")) {
            Ok(s) => break s,
            Err(why) if port_taken(&why) && hunt.len() < BASES => hunt.push(why),
            Err(why) => panic!("no standalone sandbox: {why} (after {hunt:#?})"),
        }
        base += 97;
    };
    // Live URLs: the deadline before a p99 is short, and probes come quickly.
    let config = format!(
        "[gameplay]\ncycle_delay_ms = 50\n[audio]\nenabled = false\n[resilience]\ndeadline_initial_ms = 1000\nbreaker_backoff_ms = 300\nbreaker_backoff_max_ms = 600\n{}",
        systems
    );
    std::fs::write(dir.path().join("live.toml"), config).unwrap();
    let (agent, events) = crate::common::spawn_json(
        cmd(dir.path())
            .args([
                "--headless",
                "--json",
                "--config",
                "live.toml",
                "--report",
                "r.json",
            ])
            .envs(crate::common::TEST_KEYS),
    );
    let wait_for = |what: &str, ok: &dyn Fn(&serde_json::Value) -> bool| {
        events.wait_for(what, Duration::from_secs(60), ok)
    };
    let is_claude_breaker = |e: &serde_json::Value, to: &str| {
        e["event"] == "breaker" && e["system"] == "claude_client" && e["to"] == to
    };
    wait_for("claude's breaker to open", &|e| {
        is_claude_breaker(e, "open")
    });
    // The service comes back: the same ports, without the fault.
    drop(sandbox);
    // Its ports are free once it is reaped, but a process elsewhere may take one meanwhile:
    // a few more tries, for a port taken only.
    let mut tries = Vec::new();
    let _back = loop {
        match sandbox_at(dir.path(), base, None) {
            Ok((s, _)) => break s,
            Err(why) if port_taken(&why) && tries.len() < 20 => tries.push(why),
            Err(why) => {
                panic!("the sandbox could not listen on its ports again: {why} (after {tries:#?})")
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let closed = wait_for("a probe to close claude's breaker", &|e| {
        is_claude_breaker(e, "closed")
    });
    assert_eq!(closed["from"], "half_open", "{closed}");
    // Used again: a cycle after the close.
    wait_for("two more cycles", &|e| e["event"] == "cycle");
    wait_for("one more cycle", &|e| e["event"] == "cycle");
    // SAFETY: kill(2) with a pid we started; it changes no memory of ours.
    unsafe { libc::kill(agent.0.id() as i32, libc::SIGTERM) };
    let ended = wait_for("the session to end", &|e| e["event"] == "session_ended");
    assert_eq!(ended["exit_code"], 0, "{ended}");
    let r = report(&dir.path().join("r.json"));
    let claude = &r["stats"]["calls"]["claude_client"];
    assert!(
        claude["answered"].as_u64().unwrap() > 0,
        "used again: {claude}"
    );
    assert_eq!(claude["breaker"], "closed", "{claude}");
    assert_eq!(r["shutdown"]["sockets_open_after"], 0);
}
