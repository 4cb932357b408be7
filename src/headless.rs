//! `--headless`: the session without a terminal UI; the shutdown account goes to stdout.

use crate::config::{Config, Mode};
use crate::lifecycle::ShutdownEvent;
use crate::session::{QuitSignal, Session, SessionEnd, spawn_signal_listener, summary};
use tokio_util::sync::CancellationToken;
use color_eyre::eyre::Result;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

pub struct RunOptions {
    pub mode: Mode,
    pub cycles: u64,
    pub grace: Duration,
    pub report: Option<PathBuf>,
    pub crash_after: Option<u64>,
}

pub async fn run(config: Config, opts: RunOptions) -> Result<SessionEnd> {
    // Signals first: a quit that arrives while the session starts is not lost.
    let (quit, force) = (QuitSignal::default(), CancellationToken::new());
    let signals = spawn_signal_listener(quit.clone(), force.clone())?;
    let mut session = Session::start_with(config, quit, force).await?;
    session.crash_after = opts.crash_after;
    eprintln!(
        "singularis-tui: playing on the {} backend, {} mode, sound {}; Ctrl+C to quit",
        session.config.backend(),
        opts.mode.name(),
        session.audio.state().name()
    );
    session.spawn_gameplay(opts.mode, opts.cycles);
    session.quit.wait().await;

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let grace_ms = opts.grace.as_millis() as u64;
    let force = session.force.clone();
    let print_steps = async move {
        println!("{}", summary::BEGIN_LINE);
        while let Some(ev) = rx.recv().await {
            if let ShutdownEvent::Closed(r) = ev {
                println!("{}", summary::step_line(&r, grace_ms, force.is_cancelled()));
            }
        }
    };
    let (end, ()) = tokio::join!(session.shutdown(opts.grace, opts.mode, opts.report, Some(tx)), print_steps);
    signals.abort();
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", summary::complete_line(&end.report.shutdown.report));
    for line in summary::final_statistics(&end.report) {
        let _ = writeln!(out, "{line}");
    }
    if let Some(p) = &end.report_path {
        let _ = writeln!(out, "Report: {}", p.display());
    }
    Ok(end)
}
