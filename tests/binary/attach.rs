//! `singularis-tui attach`: the real binary's viewer in tmux, on headless agents with
//! `--serve`, over real TCP. The full round (watch, `x` on the agent, `d` detach and
//! reattach, a remote quit and its account), a killed agent (reconnecting, then resumed), and
//! a fleet of ten. Skipped (with a notice) only when tmux is not installed.

use crate::common::{BIN, KillOnDrop, cmd, one_at_a_time, start_served};
use crate::tui_e2e::{NAMES, Tmux, WAIT, cycles, quoted, row, wait_exit};
use serde_json::Value;
use std::path::Path;

/// A headless agent with `--json --serve LISTEN`: its URL and its JSON events.
struct Agent {
    child: KillOnDrop,
    url: String,
    events: crate::common::Events,
}

fn agent(dir: &Path, listen: &str, report: &str) -> Agent {
    agent_with(dir, listen, report, &[])
}

/// [`agent`] with more arguments (a fault).
fn agent_with(dir: &Path, listen: &str, report: &str, extra: &[&str]) -> Agent {
    let mut c = cmd(dir);
    c.args(extra);
    c.args([
        "--headless",
        "--json",
        "--mute",
        "--serve",
        listen,
        "--report",
        report,
        "--log-file",
        &format!("{report}.log"),
    ])
    .stderr(std::fs::File::create(dir.join(format!("{report}.stderr"))).unwrap());
    let (child, url, events) = start_served(c, WAIT);
    Agent { child, url, events }
}

impl Agent {
    /// The next `cycle` event's number.
    fn next_cycle(&self) -> u64 {
        let v = self
            .events
            .wait_for("a cycle event", WAIT, |v| v["event"] == "cycle");
        v["cycle"].as_u64().expect("a cycle number")
    }

    fn exit_code(mut self) -> i32 {
        self.events.rest(WAIT);
        self.child.wait_within().code().unwrap_or(-1)
    }
}

/// `singularis-tui attach ARGS` in the tmux pane, then `EXIT=<status>`.
fn attach(tmux: &Tmux, dir: &Path, args: &str) {
    tmux.type_line(&format!(
        "env -u SINGULARIS_CONTROL_TOKEN XDG_STATE_HOME={state} XDG_CONFIG_HOME={config} {bin} --log-file {log} attach {args}; echo EXIT=$?",
        state = quoted(&dir.join("state")),
        config = quoted(&dir.join("xdg-config")),
        bin = quoted(Path::new(BIN)),
        log = quoted(&dir.join("viewer.log")),
    ));
}

fn all_rows(s: &str) -> bool {
    NAMES.iter().all(|n| s.contains(n)) && s.contains("attached")
}

fn clear(tmux: &Tmux) {
    tmux.type_line("clear");
    tmux.wait_for("a clear pane", |s| !s.contains("EXIT="));
}

#[test]
fn the_full_round_watch_force_close_detach_reattach_and_a_remote_quit() {
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let Some(tmux) = Tmux::start(dir.path(), 160, 45) else {
        return;
    };
    let a = agent(dir.path(), "0", "agent.json");
    let token_file = dir.path().join("state/singularis-tui/control-token");
    assert!(token_file.is_file(), "the agent made its token file");

    attach(
        &tmux,
        dir.path(),
        &format!("{} --token-file {}", a.url, quoted(&token_file)),
    );
    let s = tmux.wait_for("all eleven rows, attached", all_rows);
    assert!(tmux.alternate_screen(), "the viewer owns the screen:\n{s}");
    tmux.wait_for("cycles going up", |s| cycles(s).is_some_and(|c| c >= 1));

    // `x` on the Claude client (the sixth row): force-closed on the agent.
    for _ in 0..5 {
        tmux.send(&["j"]);
    }
    tmux.send(&["x"]);
    tmux.wait_for("Claude client closed on the agent", |s| {
        row(s, "Claude client").contains("closed")
    });

    // `d`: the viewer leaves, the agent plays on.
    tmux.send(&["d"]);
    let s = wait_exit(&tmux);
    assert!(s.contains("EXIT=0"), "detach exits 0:\n{s}");
    assert!(s.contains("detached from"), "{s}");
    assert!(!tmux.alternate_screen(), "the terminal is back:\n{s}");
    let before = a.next_cycle();
    let after = a.next_cycle();
    assert!(after > before, "the agent keeps playing after a detach");

    // Reattach, then quit the agent from here: a question first, then its account.
    clear(&tmux);
    attach(
        &tmux,
        dir.path(),
        &format!("{} --token-file {}", a.url, quoted(&token_file)),
    );
    tmux.wait_for("all eleven rows again", all_rows);
    tmux.send(&["q"]);
    tmux.wait_for("the quit question", |s| s.contains("Quit the agent"));
    tmux.send(&["y"]);
    let s = tmux.wait_for("the agent's whole account and its exit", |s| {
        s.contains("agent exited") && s.contains("11 of 11 done")
    });
    for name in NAMES {
        let r = row(&s, name);
        assert!(
            r.contains(" ms") || r.contains("skipped"),
            "{name}: a measured time in the account:\n{s}"
        );
    }
    assert!(
        s.contains("steps clean, 0 not"),
        "every streamed step is clean:\n{s}"
    );
    tmux.send(&["Enter"]);
    let s = wait_exit(&tmux);
    assert!(s.contains("EXIT=0"), "a clean remote quit exits 0:\n{s}");
    assert!(s.contains("[CLEANUP]"), "the account is printed:\n{s}");

    assert_eq!(a.exit_code(), 0, "the agent ends cleanly");
    let r: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("agent.json")).unwrap()).unwrap();
    assert_eq!(r["shutdown"]["sockets_open_after"], 0, "{r}");
    let commands = r["commands"].as_array().unwrap();
    let by_viewer = |command: &str| {
        commands.iter().any(|c| {
            c["command"] == command && c["by"].as_str().is_some_and(|b| b.starts_with("viewer "))
        })
    };
    assert!(
        by_viewer("force_close"),
        "the viewer's x is in the report: {r}"
    );
    assert!(by_viewer("quit"), "the viewer's quit is in the report: {r}");
    let claude = r["shutdown"]["systems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "claude_client")
        .unwrap();
    assert!(
        claude["earlier"]["by"]
            .as_str()
            .is_some_and(|b| b.starts_with("viewer ")),
        "the Claude client's report names the viewer's command: {claude}"
    );
}

/// The header's `up H:MM:SS`, in seconds.
fn header_uptime(screen: &str) -> Option<u64> {
    let header = screen.lines().next()?;
    let at = header.find(" up ")? + " up ".len();
    let hms = header[at..].split_whitespace().next()?;
    hms.split(':')
        .try_fold(0u64, |acc, n| Some(acc * 60 + n.parse::<u64>().ok()?))
}

/// Issue #27 item 3: a viewer's account after a remote quit names a system that answered
/// nothing, with how its calls ended, as the headless account does: here a hung Claude.
/// Item 10 on the way: attached late, the viewer draws the agent's game pane and log pane
/// (not "waiting for the first cycle"), and the header's uptime is the agent's.
#[test]
fn a_remote_quit_account_names_a_system_that_answered_nothing() {
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let Some(tmux) = Tmux::start(dir.path(), 160, 45) else {
        return;
    };
    let a = agent_with(
        dir.path(),
        "0",
        "agent.json",
        &["--fault", "claude_client=hang"],
    );
    // The agent has run at least this long (it started before).
    let agent_started = std::time::Instant::now();
    let token_file = dir.path().join("state/singularis-tui/control-token");
    // Past the hung calls' deadline, so the agent's figures have them late; and long
    // enough that the agent's uptime is not the new viewer's.
    while a.next_cycle() < 3 || agent_started.elapsed() < std::time::Duration::from_secs(2) {}
    let agent_up = agent_started.elapsed().as_secs();
    attach(
        &tmux,
        dir.path(),
        &format!("{} --token-file {}", a.url, quoted(&token_file)),
    );
    let s = tmux.wait_for(
        "all eleven rows, the game pane and the log, attached",
        |s| {
            all_rows(s)
                && s.contains("last actions, newest first")
                && s.contains("viewer connected")
        },
    );
    assert!(!s.contains("waiting for the first cycle"), "{s}");
    let up = header_uptime(&s).unwrap_or_else(|| panic!("an uptime in the header:\n{s}"));
    assert!(
        up >= agent_up,
        "the header's uptime ({up} s) is the agent's, at least {agent_up} s:\n{s}"
    );
    // A refresh (every second) after attaching: the figures of a few more cycles.
    let seen = a.next_cycle();
    while a.next_cycle() < seen + 2 {}
    tmux.send(&["q"]);
    tmux.wait_for("the quit question", |s| s.contains("Quit the agent"));
    tmux.send(&["y"]);
    let s = tmux.wait_for("the agent's account", |s| {
        s.contains("agent exited") && s.contains("11 of 11 done")
    });
    // On the viewer's screen too, where the final statistics would be.
    assert!(
        s.contains("Final statistics") && s.contains("Claude client: answered none of its"),
        "{s}"
    );
    tmux.send(&["Enter"]);
    let s = wait_exit(&tmux);
    assert!(s.contains("EXIT=0"), "{s}");
    let line = s
        .lines()
        .find(|l| l.starts_with("    Claude client: answered none of its "))
        .unwrap_or_else(|| panic!("the viewer's account names Claude:\n{s}"));
    assert!(line.contains(" late"), "{line}");
    assert!(s.contains("  Calls that did not simply answer:"), "{s}");
    assert!(!s.contains("    Gemini client: "), "{s}");
    assert_eq!(a.exit_code(), 0);
}

/// A free loopback port, for an agent that must come back at the same address.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn a_killed_agent_shows_reconnecting_and_the_viewer_resumes_when_it_is_back() {
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let Some(tmux) = Tmux::start(dir.path(), 160, 45) else {
        return;
    };
    let listen = format!("127.0.0.1:{}", free_port());
    let mut a = agent(dir.path(), &listen, "first.json");
    attach(&tmux, dir.path(), &a.url);
    tmux.wait_for("all eleven rows", all_rows);

    // kill -9: no shutdown, no last word; the viewer keeps trying.
    a.child.0.kill().unwrap();
    a.child.wait_within();
    let s = tmux.wait_for("the reconnecting banner", |s| s.contains("reconnecting"));
    assert!(tmux.alternate_screen(), "the viewer is still up:\n{s}");
    assert!(!s.contains("EXIT="), "the viewer did not exit:\n{s}");

    // A new agent at the same address: the rows are back, the banner gone.
    let b = agent(dir.path(), &listen, "second.json");
    assert_eq!(b.url, a.url);
    tmux.wait_for("the dashboard resumed", |s| {
        all_rows(s) && !s.contains("reconnecting")
    });
    tmux.send(&["d"]);
    let s = wait_exit(&tmux);
    assert!(s.contains("EXIT=0"), "{s}");
}

#[test]
fn a_fleet_of_ten_agents_in_one_view_enter_opens_one_and_esc_comes_back() {
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let Some(tmux) = Tmux::start(dir.path(), 200, 45) else {
        return;
    };
    let agents: Vec<Agent> = (0..10)
        .map(|i| agent(dir.path(), "0", &format!("a{i}.json")))
        .collect();
    let urls: Vec<&str> = agents.iter().map(|a| a.url.as_str()).collect();
    attach(&tmux, dir.path(), &urls.join(" "));
    let s = tmux.wait_for("ten playing rows", |s| {
        s.contains("fleet of 10") && s.matches("playing").count() == 10
    });
    for url in &urls {
        let host = url.trim_start_matches("http://");
        assert!(s.contains(host), "{host} has its row:\n{s}");
    }
    // Enter: the selected agent's dashboard; Esc: the table again.
    tmux.send(&["Enter"]);
    tmux.wait_for("the first agent's dashboard", all_rows);
    tmux.send(&["Escape"]);
    tmux.wait_for("the fleet table again", |s| s.contains("fleet of 10"));
    // Issue #27 item 12: one agent killed; leaving names it as gone, not as running.
    let mut agents = agents;
    let mut gone = agents.pop().unwrap();
    gone.child.0.kill().unwrap();
    gone.child.wait_within();
    let host = gone.url.trim_start_matches("http://");
    tmux.wait_for("the killed agent's row reconnecting", |s| {
        s.lines()
            .any(|l| l.contains(host) && l.contains("reconnecting"))
    });
    tmux.send(&["q"]);
    let s = wait_exit(&tmux);
    assert!(s.contains("EXIT=0"), "{s}");
    assert!(s.contains("detached from"), "{s}");
    assert!(
        s.contains(&format!("{}: unreachable (", gone.url)),
        "the killed agent is named as gone:\n{s}"
    );
}

/// An agent of a newer protocol (a fake one on loopback, whose every event is version 2.0):
/// the viewer says which versions differ and stops with status 1, reading nothing of it.
#[test]
fn an_agent_of_a_newer_major_protocol_is_named_and_the_viewer_stops() {
    use std::io::{Read, Write};
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let Some(tmux) = Tmux::start(dir.path(), 160, 45) else {
        return;
    };
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for mut sock in listener.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = sock.read(&mut buf);
            let event = r#"{"ts":"2030-01-01T00:00:00Z","protocol":"2.0","event":"snapshot","systems":{"moe":"idle"}}"#;
            let _ = write!(
                sock,
                "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\ndata: {event}\n\n"
            );
            // The stream stays open, as a live agent's does.
            std::thread::spawn(move || {
                std::thread::sleep(std::time::Duration::from_secs(30));
                drop(sock);
            });
        }
    });
    attach(&tmux, dir.path(), &url);
    let s = wait_exit(&tmux);
    assert!(s.contains("EXIT=1"), "another major version exits 1:\n{s}");
    assert!(
        s.contains(&format!(
            "agent at {url} speaks protocol 2.x; this viewer reads 1.x"
        )),
        "the versions are named:\n{s}"
    );
    assert!(!tmux.alternate_screen(), "the terminal is back:\n{s}");
}
