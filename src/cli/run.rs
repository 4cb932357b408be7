//! What the binary does: parse the command line, load the config, start the runtime and run
//! the asked-for command. It lives in the library, not in `main.rs`, so the async code it
//! drives is compiled once, here, where the rest of it already is: a binary that awaited it
//! compiled every async body it reached a second time (BENCHMARKS.md, "Build").

use crate::cli::{Cli, Command, SandboxArgs};
use crate::config::{self, Config};
use crate::sandbox::{Sandbox, SandboxSystem};
use crate::systems::Protocol;
use crate::telemetry::otlp;
use crate::{headless, logging};
use anyhow::{Context, Result};
use clap::Parser;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

/// ARCHITECTURE.md exit statuses.
const EXIT_FATAL: u8 = 1;
const EXIT_USAGE: u8 = 2;

/// The whole program; `main.rs` calls it and exits with what it returns.
pub fn main() -> ExitCode {
    crate::net::transport::install_crypto_provider();
    let cli = Cli::parse();
    if let Err(why) = cli.check() {
        use clap::CommandFactory;
        Cli::command()
            .error(clap::error::ErrorKind::ArgumentConflict, why)
            .exit();
    }
    // Made from the command line alone: no config, no log, no runtime.
    if let Some(done) = from_the_command_line_alone(&cli) {
        return done;
    }
    let config = match config::load(config::resolve_path(cli.run.config.as_deref()).as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("singularis-tui: bad config: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    if let Err(why) = cli.check_names(&config) {
        use clap::CommandFactory;
        Cli::command()
            .error(clap::error::ErrorKind::InvalidValue, why)
            .exit();
    }
    let log_path = cli
        .run
        .log_file
        .clone()
        .unwrap_or_else(logging::default_log_path);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("singularis-tui: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_FATAL);
        }
    };
    // A build without the `otlp` feature says so when export is asked for (here, before any
    // screen is taken, and in the log once it is open), and runs on without traces.
    let no_otlp = match (&cli.command, otlp::requested()) {
        (None, true) => otlp::not_built_in(),
        _ => None,
    };
    if let Some(why) = no_otlp {
        eprintln!("singularis-tui: warning: {why}");
    }
    let traces = match (&cli.command, otlp::requested()) {
        (None, true) if no_otlp.is_none() => match otlp::start() {
            Ok(t) => Some(t),
            Err(e) => {
                eprintln!("singularis-tui: bad trace export settings: {e}");
                return ExitCode::from(EXIT_USAGE);
            }
        },
        _ => None,
    };
    if let Some(why) = logging::bad_filter() {
        eprintln!("singularis-tui: {why}");
    }
    let _log_guard = match logging::init(&log_path, traces.clone()) {
        Ok(g) => Some(g),
        Err(e) => {
            eprintln!(
                "singularis-tui: cannot open the log file {}: {e} (logging off)",
                log_path.display()
            );
            // The dashboard's log pane still gets the events.
            logging::init_memory_only(traces);
            None
        }
    };
    if let Some(why) = no_otlp {
        tracing::warn!("{why}");
    }
    let result = runtime.block_on(async move {
        match cli.command {
            Some(Command::CheckConfig) => {
                write_stdout(config::render_resolved(&config).as_bytes())
                    .context("cannot write the settings to stdout")?;
                Ok(0)
            }
            Some(Command::Completions { .. } | Command::Man) => Ok(0),
            Some(Command::Sandbox(args)) => run_sandbox(config, args).await.map(|_| 0),
            Some(Command::Probe(args)) => {
                crate::probe::run(config, &args.systems, args.yes, &mut std::io::stdout()).await
            }
            Some(Command::Attach(args)) => run_attach(&config, args).await,
            None => run_session(config, cli.run).await,
        }
    });
    // Requests cut at shutdown may still be unwinding; don't wait for them.
    runtime.shutdown_timeout(Duration::from_millis(100));
    match result {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            // The cause chain in one line, in the log as on the terminal (a backtrace is for
            // a panic, whose report std's hook prints). A setting that cannot be honoured (a
            // port in use) is the user's to change: the status of bad usage.
            tracing::error!("fatal: {e:#}");
            use std::io::Write as _;
            let _ = writeln!(std::io::stderr(), "singularis-tui: {e:#}");
            let bad_setting = e.downcast_ref::<crate::session::BadSetting>().is_some();
            ExitCode::from(if bad_setting { EXIT_USAGE } else { EXIT_FATAL })
        }
    }
}

/// The commands that need nothing but the command line (completions, the man page), and the
/// one conflict only the terminal can tell (`--json` onto the dashboard's stdout): their
/// exit, or `None` to go on.
fn from_the_command_line_alone(cli: &Cli) -> Option<ExitCode> {
    match &cli.command {
        Some(Command::Completions { shell }) => {
            let mut text = Vec::new();
            Cli::completions(*shell, &mut text);
            Some(print_or_exit(&text))
        }
        Some(Command::Man) => {
            let mut text = Vec::new();
            Some(match Cli::man_page(&mut text) {
                Ok(()) => print_or_exit(&text),
                Err(e) => {
                    eprintln!("singularis-tui: cannot render the manual page: {e}");
                    ExitCode::from(EXIT_FATAL)
                }
            })
        }
        None if cli.run.json && !cli.run.headless && dashboard_possible() => {
            use clap::CommandFactory;
            Cli::command()
                .error(
                    clap::error::ErrorKind::ArgumentConflict,
                    "--json writes its events to stdout, and stdout is a terminal, which gets \
                     the dashboard: add --headless, or send stdout elsewhere (> events.jsonl, | jq)",
                )
                .exit();
        }
        _ => None,
    }
}

/// The dashboard can be drawn: stdout is a terminal, and not a dumb one (an editor's shell,
/// a serial console). Otherwise the run is headless.
fn dashboard_possible() -> bool {
    std::io::stdout().is_terminal() && !std::env::var("TERM").is_ok_and(|t| t == "dumb")
}

/// Write `bytes` to stdout. A reader that went away (`| head -1`) is not a failure; any
/// other (`> /dev/full`) is.
fn write_stdout(bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        written => written,
    }
}

/// [`write_stdout`] for a command that prints and ends: exit 0, or 1 with the cause.
fn print_or_exit(bytes: &[u8]) -> ExitCode {
    match write_stdout(bytes) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("singularis-tui: cannot write to stdout: {e}");
            ExitCode::from(EXIT_FATAL)
        }
    }
}

async fn run_session(mut config: Config, args: crate::cli::RunArgs) -> Result<i32> {
    for (id, fault) in &args.faults {
        config.sandbox.faults.insert(*id, *fault);
    }
    if let Some(timing) = args.timing {
        config.sandbox.timing = timing;
    }
    if args.mute {
        config.audio.enabled = false;
    }
    if let Some(usd) = args.budget_usd {
        config.budget.max_usd = Some(usd);
    }
    if let Some(addr) = args.metrics {
        config.metrics.listen = Some(addr);
    }
    if let Some(addr) = args.serve {
        config.serve.listen = Some(addr);
    }
    // Runtime closes (keys, viewers) get the same grace as the shutdown.
    if let Some(ms) = args.grace_ms {
        config.shutdown.grace_ms = ms;
    }
    // A control endpoint open to the network without a token chosen for it: refused now.
    if let Some(listen) = config.serve.listen
        && let Err(why) = crate::control_token::check(listen)
    {
        eprintln!("singularis-tui: {why}");
        return Ok(EXIT_USAGE.into());
    }
    // Found now, not after an hour of play: a report that has nowhere to go.
    if let Err(why) = crate::session::report::check_destination(args.report.as_deref()) {
        eprintln!("singularis-tui: {why}");
        return Ok(EXIT_USAGE.into());
    }
    if let Some(id) = args.test_leak_socket {
        match crate::session::check_leak_hook(&config, id) {
            Ok(notice) => eprintln!("singularis-tui: {notice}"),
            Err(why) => {
                eprintln!("singularis-tui: {why}");
                return Ok(EXIT_USAGE.into());
            }
        }
    }
    let opts = crate::session::RunOptions {
        mode: args.mode.unwrap_or(config.gameplay.mode),
        cycles: args.cycles.unwrap_or(config.gameplay.cycles),
        grace: Duration::from_millis(args.grace_ms.unwrap_or(config.shutdown.grace_ms)),
        report: args.report.clone(),
        crash_after: args.crash_after_cycles,
        leak_socket: args.test_leak_socket,
        json: args.json,
        record: args.record.clone(),
    };
    // The dashboard only on a terminal that can draw one; pipes, scripts and a dumb terminal
    // (an editor's shell, a serial console) get the plain summary.
    let terminal = std::io::stdout().is_terminal();
    let dumb = std::env::var("TERM").is_ok_and(|t| t == "dumb");
    if !args.headless && terminal && dumb {
        eprintln!("singularis-tui: TERM=dumb cannot draw the dashboard; running headless");
    }
    let end = if !args.headless && terminal && !dumb {
        crate::tui::run(config, opts).await?
    } else {
        headless::run(config, opts).await?
    };
    if let Some(e) = &end.report_error {
        // Not `eprintln!`: after a hangup the terminal is gone and it would panic.
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), "singularis-tui: {e}");
    }
    if let Some(e) = &end.output_error {
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), "singularis-tui: {e}");
    }
    Ok(end.exit_code())
}

async fn run_attach(config: &Config, args: crate::cli::AttachArgs) -> Result<i32> {
    use crate::attach;
    let agents: Vec<(String, String)> = if args.urls.is_empty() {
        config
            .fleet
            .agents
            .iter()
            .map(|u| (attach::fleet::name_of(u), u.clone()))
            .collect()
    } else {
        args.urls
            .iter()
            .map(|u| {
                (
                    attach::fleet::name_of(u),
                    u.trim_end_matches('/').to_string(),
                )
            })
            .collect()
    };
    if agents.is_empty() {
        eprintln!("singularis-tui: attach needs a URL (or [fleet] agents in the config)");
        return Ok(EXIT_USAGE.into());
    }
    if let Some(bad) = agents
        .iter()
        .find(|(_, u)| !(u.starts_with("http://") || u.starts_with("https://")))
    {
        eprintln!(
            "singularis-tui: {:?} is not a control endpoint URL (http://HOST:PORT)",
            bad.1
        );
        return Ok(EXIT_USAGE.into());
    }
    if !std::io::stdout().is_terminal() {
        eprintln!("singularis-tui: attach draws a dashboard: run it in a terminal");
        return Ok(EXIT_USAGE.into());
    }
    attach::run(
        config,
        attach::AttachOptions {
            agents,
            token_file: args.token_file,
        },
    )
    .await
}

async fn run_sandbox(mut config: Config, args: SandboxArgs) -> Result<()> {
    for (id, fault) in &args.faults {
        config.sandbox.faults.insert(*id, *fault);
    }
    if let Some(timing) = args.timing {
        config.sandbox.timing = timing;
    }
    if let Some(dir) = args.replay {
        config.sandbox.timing = crate::config::Timing::Replay(dir);
    }
    let systems = config
        .ids()
        .into_iter()
        .filter(|id| config.system(*id).protocol != Protocol::Moe)
        .map(|id| SandboxSystem::from_config(&config, id, config.sandbox.faults.get(&id).copied()))
        .collect();
    let sandbox = Sandbox::start_with(
        args.listen.ip(),
        args.listen.port(),
        systems,
        crate::session::sandbox_clock(&config),
    )
    .await
    .with_context(|| format!("starting the sandbox on {}", args.listen))?;
    use std::io::Write;
    // A reader that went away (`| head -1`) is not the sandbox's failure: it keeps serving.
    let mut out = std::io::stdout().lock();
    for id in config.ids() {
        if let Some(url) = sandbox.base_url(id) {
            let _ = writeln!(out, "{} {}", id.name(), url.as_str().trim_end_matches('/'));
        }
    }
    let _ = out.flush();
    drop(out);
    let quit = crate::session::QuitSignal::default();
    let signals = crate::session::spawn_signal_listener(quit.clone(), Default::default())?;
    quit.wait().await;
    signals.abort();
    sandbox.stop().await;
    Ok(())
}
