//! `--headless`: the session without a terminal UI; the shutdown account goes to stdout, as
//! text (ARCHITECTURE.md, "Shutdown") or, with `--json`, as one JSON event per line.

use crate::config::Config;
use crate::lifecycle::{BreakerChange, ShutdownEvent, StateChange};
use crate::session::control::CommandRecord;
use crate::session::events::{self, Event, EventWriter, SessionInfo};
use crate::session::summary::Account;
use crate::session::{
    CycleEvent, QuitSignal, RunOptions, Session, SessionEnd, spawn_signal_listener,
};
use anyhow::Result;
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

pub async fn run(config: Config, opts: RunOptions) -> Result<SessionEnd> {
    // Signals first: a quit that arrives while the session starts is not lost.
    let (quit, force) = (QuitSignal::default(), CancellationToken::new());
    let signals = spawn_signal_listener(quit.clone(), force.clone())?;
    let mut session = Session::start_with(config, quit, force, opts.record.as_deref()).await?;
    let served = match crate::serve::serve(&session).await {
        Ok(served) => served,
        Err(e) => {
            session.abandon().await;
            return Err(crate::session::BadSetting(e).into());
        }
    };
    session.apply_test_hooks(&opts);
    let metrics_url = session
        .metrics_addr()
        .map(|a| format!("http://{a}/metrics"));
    let serve_url = served.as_ref().map(|(a, _)| format!("http://{a}"));
    let serve_text = served
        .map(|(a, token)| {
            format!(
                ", control at http://{a} ({token}{})",
                if a.ip().is_loopback() {
                    ""
                } else {
                    "; open to the network"
                }
            )
        })
        .unwrap_or_default();
    eprintln!(
        "singularis-tui: playing on the {} backend, {} mode, sound {}{}{serve_text}; Ctrl+C to quit",
        session.config.backend(),
        opts.mode.name(),
        session.audio.state().name(),
        metrics_url
            .as_deref()
            .map(|u| {
                let open = session
                    .metrics_addr()
                    .is_some_and(|a| !a.ip().is_loopback());
                format!(
                    ", metrics at {u}{}",
                    if open { " (open to the network)" } else { "" }
                )
            })
            .unwrap_or_default()
    );
    let grace_ms = opts.grace.as_millis() as u64;
    let (tx, rx) = mpsc::unbounded_channel();

    let mut rx = Some(rx);
    let follower = opts.json.then(|| {
        let rx = rx.take().expect("the shutdown channel is taken once");
        let mut out = EventWriter::new(std::io::stdout());
        let info = SessionInfo {
            version: env!("CARGO_PKG_VERSION").to_string(),
            mode: opts.mode.name().to_string(),
            backend: session.config.backend().to_string(),
            cycles: opts.cycles,
            grace_ms,
            metrics: metrics_url.clone(),
            serve: serve_url,
        };
        out.emit(&events::session_started(
            info,
            &session.registry.snapshots(),
        ));
        let states = session.registry.subscribe_transitions();
        let breakers = session.registry.subscribe_breakers();
        let cycles = session.subscribe_cycles();
        let commands = session.control.subscribe();
        tokio::spawn(follow(
            out,
            states,
            breakers,
            cycles,
            commands,
            rx,
            session.quit.clone(),
        ))
    });
    let printer = rx.map(|rx| {
        tokio::spawn(print_steps(
            rx,
            grace_ms,
            session.force.clone(),
            session.control.clone(),
        ))
    });

    session.spawn_gameplay(opts.mode, opts.cycles);
    session.quit.wait().await;
    let mut end = session
        .shutdown(opts.grace, opts.mode, opts.report, Some(tx))
        .await;
    signals.abort();

    if let Some(follower) = follower {
        let mut out = follower.await?;
        out.emit(&events::shutdown_complete(&end.report));
        out.emit(&events::session_ended(&end));
        end.output_error = out
            .failure()
            .map(|e| format!("cannot write the event stream to stdout: {e}"));
        return Ok(end);
    }
    let mut account = match printer {
        Some(printer) => printer
            .await
            .unwrap_or_else(|_| Account::new(std::io::stdout(), grace_ms)),
        None => Account::new(std::io::stdout(), grace_ms),
    };
    account.end(&end.report, end.report_path.as_deref());
    end.output_error = account
        .failure()
        .map(|e| format!("cannot write the shutdown account to stdout: {e}"));
    Ok(end)
}

/// The text account: a line per step as it ends. Returns the account, for its last lines.
async fn print_steps(
    mut rx: mpsc::UnboundedReceiver<ShutdownEvent>,
    grace_ms: u64,
    force: CancellationToken,
    control: crate::session::control::Control,
) -> Account<std::io::Stdout> {
    let mut account = Account::new(std::io::stdout(), grace_ms);
    while let Some(ev) = rx.recv().await {
        account.begin();
        match ev {
            // Forced on request: everything (a second quit) or this system alone (`x`).
            ShutdownEvent::Closed(r) => {
                let asked = force.is_cancelled() || control.cut_at_shutdown(r.name);
                account.system(&r, asked)
            }
            ShutdownEvent::StepClosed(r) => account.endpoint(&r),
            _ => {}
        }
    }
    account
}

/// The JSON account: state changes and cycles as they happen, then the shutdown steps. Ends
/// when the shutdown is over (its channel closes), after what was still queued.
async fn follow(
    mut out: EventWriter<std::io::Stdout>,
    mut states: broadcast::Receiver<StateChange>,
    mut breakers: broadcast::Receiver<BreakerChange>,
    mut cycles: broadcast::Receiver<CycleEvent>,
    mut commands: broadcast::Receiver<CommandRecord>,
    mut shutdown: mpsc::UnboundedReceiver<ShutdownEvent>,
    quit: QuitSignal,
) -> EventWriter<std::io::Stdout> {
    loop {
        tokio::select! {
            r = states.recv() => forward(&mut out, r, events::state),
            r = breakers.recv() => forward(&mut out, r, events::breaker),
            r = cycles.recv() => forward(&mut out, r, Event::Cycle),
            r = commands.recv() => forward(&mut out, r, Event::Command),
            ev = shutdown.recv() => {
                // Queued state changes and cycles first, so the stream stays in order.
                drain(&mut out, &mut states, &mut cycles);
                drain_one(&mut out, &mut breakers, events::breaker);
                drain_one(&mut out, &mut commands, Event::Command);
                match ev {
                    Some(ev) => emit_shutdown(&mut out, ev, &quit),
                    None => return out,
                }
            }
        }
    }
}

/// One item received from a broadcast as its event; a lag as a `lagged` event.
fn forward<T>(
    out: &mut EventWriter<std::io::Stdout>,
    received: Result<T, broadcast::error::RecvError>,
    event: fn(T) -> Event,
) {
    match received {
        Ok(item) => out.emit(&event(item)),
        Err(broadcast::error::RecvError::Lagged(n)) => out.emit(&Event::Lagged { missed: n }),
        Err(broadcast::error::RecvError::Closed) => {}
    }
}

fn drain(
    out: &mut EventWriter<std::io::Stdout>,
    states: &mut broadcast::Receiver<StateChange>,
    cycles: &mut broadcast::Receiver<CycleEvent>,
) {
    drain_one(out, cycles, Event::Cycle);
    drain_one(out, states, events::state);
}

/// Everything queued on `rx`, a lag reported as such rather than ending the drain.
fn drain_one<T: Clone>(
    out: &mut EventWriter<std::io::Stdout>,
    rx: &mut broadcast::Receiver<T>,
    event: fn(T) -> Event,
) {
    loop {
        match rx.try_recv() {
            Ok(item) => out.emit(&event(item)),
            Err(broadcast::error::TryRecvError::Lagged(n)) => {
                out.emit(&Event::Lagged { missed: n })
            }
            Err(_) => break,
        }
    }
}

fn emit_shutdown(out: &mut EventWriter<std::io::Stdout>, ev: ShutdownEvent, quit: &QuitSignal) {
    out.emit(&events::from_shutdown(ev, quit.reason().name()));
}
