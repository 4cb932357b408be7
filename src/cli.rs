//! The command line (ARCHITECTURE.md, "Command line and exit status").

use crate::config::Mode;
use crate::sandbox::fault::{Fault, parse_fault_arg};
use crate::systems::SystemId;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "singularis-tui",
    version,
    about = "An autonomous game-playing agent and the life of every connection it opens"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub run: RunArgs,
}

impl Cli {
    /// What clap cannot say from one argument alone: a second `--fault` for a system would
    /// silently replace the first.
    pub fn check(&self) -> Result<(), String> {
        let faults = match &self.command {
            Some(Command::Sandbox(args)) => &args.faults,
            _ => &self.run.faults,
        };
        let mut seen = std::collections::BTreeMap::new();
        for (id, fault) in faults {
            if let Some(first) = seen.insert(*id, *fault) {
                return Err(format!(
                    "--fault is given twice for {} ({first}, then {fault}); a system takes one fault",
                    id.name()
                ));
            }
        }
        Ok(())
    }

    /// The systems the command line names (faults, probes) must be the config's.
    pub fn check_names(&self, config: &crate::config::Config) -> Result<(), String> {
        let named: Vec<SystemId> = match &self.command {
            Some(Command::Sandbox(args)) => args.faults.iter().map(|(id, _)| *id).collect(),
            Some(Command::Probe(args)) => args.systems.clone(),
            _ => (self.run.faults.iter().map(|(id, _)| *id))
                .chain(self.run.test_leak_socket)
                .collect(),
        };
        config.check_names(named)
    }
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Config file (default: ./config.toml, then $XDG_CONFIG_HOME/singularis-tui/config.toml, then built-in)
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Run without the terminal UI, printing the shutdown account to stdout
    #[arg(long)]
    pub headless: bool,
    /// With --headless: one JSON event per line on stdout instead of the text account
    #[arg(long, requires = "headless")]
    pub json: bool,
    /// Serve Prometheus metrics at http://ADDR/metrics (config metrics.listen); a bare PORT
    /// means 127.0.0.1:PORT; port 0: any free port
    #[arg(long, value_name = "IP:PORT|PORT", value_parser = parse_metrics_listen)]
    pub metrics: Option<std::net::SocketAddr>,
    /// Serve the control endpoint at http://ADDR (config serve.listen): a live event stream
    /// for viewers and commands for whoever has the control token; a bare PORT means
    /// 127.0.0.1:PORT; port 0: any free port. Off loopback it needs SINGULARIS_CONTROL_TOKEN
    #[arg(long, value_name = "IP:PORT|PORT", value_parser = parse_metrics_listen)]
    pub serve: Option<std::net::SocketAddr>,
    /// Quit after N gameplay cycles (0: run until asked to quit)
    #[arg(long, value_name = "N", allow_negative_numbers = true,
          value_parser = |s: &str| whole_number(s, 0, crate::config::MAX_CYCLES, "0 runs until asked to quit"))]
    pub cycles: Option<u64>,
    /// How the calls of one cycle are made
    #[arg(long, value_name = "MODE")]
    pub mode: Option<Mode>,
    /// Grace period for closing connections, in milliseconds
    #[arg(long, value_name = "N", allow_negative_numbers = true,
          value_parser = |s: &str| whole_number(s, 1, crate::config::MAX_GRACE_MS, "as in shutdown.grace_ms"))]
    pub grace_ms: Option<u64>,
    /// Where to write the session report (JSON)
    #[arg(long, value_name = "PATH")]
    pub report: Option<PathBuf>,
    /// No sound (also SINGULARIS_MUTE=1)
    #[arg(long, env = "SINGULARIS_MUTE", hide_env_values = true,
          value_parser = clap::builder::FalseyValueParser::new())]
    pub mute: bool,
    /// Log file (default: $XDG_STATE_HOME/singularis-tui/singularis-tui.log)
    #[arg(long, value_name = "PATH")]
    pub log_file: Option<PathBuf>,
    /// Inject a sandbox fault: SYSTEM=hang|reset|slow:MS|error:CODE|ratelimit[:SECS]|drip|refuse|truncate|overloaded (repeatable)
    #[arg(long = "fault", value_name = "SYSTEM=KIND", value_parser = parse_fault_arg)]
    pub faults: Vec<(SystemId, Fault)>,
    /// The embedded sandbox's clock: instant (answers at once), live (each model's published
    /// pace: first token, silent reasoning, tokens per second) or replay:DIR (a recording,
    /// with its own timing) (config sandbox.timing)
    #[arg(long, value_name = "instant|live|replay:DIR")]
    pub timing: Option<crate::config::Timing>,
    /// Spend limit for the session in USD (config budget.max_usd): a call whose worst cost
    /// would cross it is not made, and the session ends (exit status 5)
    #[arg(long, value_name = "USD", value_parser = parse_usd)]
    pub budget_usd: Option<f64>,
    /// Record every system's exchanges in DIR (one JSON-lines file per system; keys never
    /// written), to serve back later with --timing replay:DIR
    #[arg(long, value_name = "DIR")]
    pub record: Option<PathBuf>,
    /// Test hook: the game task panics after N cycles (proves a crash still shuts down cleanly)
    #[arg(long, value_name = "N", hide = true)]
    pub crash_after_cycles: Option<u64>,
    /// Test hook: SYSTEM's first connection is duplicated (dup(2)) and the duplicate held
    /// open past the system's close, outside its pool, so the shutdown meets a real leak
    /// (the system `error`, exit status 3). Why it cannot be set by accident: a hidden flag
    /// (not in --help, and no environment variable, which a shell or a parent process could
    /// leave set), named for what it does, refused unless SYSTEM talks to the embedded
    /// sandbox (the leaked socket is one to our own loopback server, never a service's), and
    /// announced on stderr and in the log when given (see `session::TestHooks`).
    #[arg(long, value_name = "SYSTEM", hide = true, value_parser = parse_system)]
    pub test_leak_socket: Option<SystemId>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the sandbox alone, in the foreground, for other processes to use
    Sandbox(SandboxArgs),
    /// Validate the config and print the resolved settings (keys masked)
    CheckConfig,
    /// One minimal real call per system off the sandbox (or per named system): keys, hosts
    /// and models checked before a session; exit 0 when all answer, 1 when any fails
    Probe(ProbeArgs),
    /// Watch and steer running agents through their control endpoints (`--serve`): one URL
    /// opens its dashboard; two or more (or `[fleet] agents`) open the fleet table
    Attach(AttachArgs),
}

#[derive(Debug, Args)]
pub struct AttachArgs {
    /// The agents' control endpoints, e.g. http://127.0.0.1:7070 (default: [fleet] agents)
    #[arg(value_name = "URL")]
    pub urls: Vec<String>,
    /// A file holding the control token (default: SINGULARIS_CONTROL_TOKEN, else the
    /// agent's token file under the state directory when it exists); without one, watch only
    #[arg(long, value_name = "PATH")]
    pub token_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// Systems to probe (default: every enabled system that is not on the sandbox)
    #[arg(value_name = "SYSTEM", value_parser = parse_system)]
    pub systems: Vec<SystemId>,
    /// Make the real, billed calls without asking (a stdin that is not a terminal never asks)
    #[arg(long, short = 'y')]
    pub yes: bool,
}

/// A count from the command line, held to the same range as its config key; a negative or
/// huge number is named as out of range rather than taken for a flag or a typo.
fn whole_number(s: &str, min: u64, max: u64, hint: &str) -> Result<u64, String> {
    let n: i128 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a whole number"))?;
    u64::try_from(n)
        .ok()
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| format!("{n} is out of range: from {min} to {max} ({hint})"))
}

fn parse_usd(s: &str) -> Result<f64, String> {
    s.trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && (0.0..=1_000_000.0).contains(v))
        .ok_or_else(|| format!("{s:?} is not an amount of USD from 0 to 1000000"))
}

/// Any well-formed name: [`Cli::check_names`] holds it to the config once that is read.
fn parse_system(s: &str) -> Result<SystemId, String> {
    SystemId::intern_named(s)
}

#[derive(Debug, Args)]
pub struct SandboxArgs {
    /// Address of the first system's listener; the others take the next ports (port 0: any free ports)
    #[arg(long, value_name = "IP:PORT", default_value = "127.0.0.1:0", value_parser = parse_sandbox_listen)]
    pub listen: std::net::SocketAddr,
    /// Inject a fault: SYSTEM=KIND (repeatable)
    #[arg(long = "fault", value_name = "SYSTEM=KIND", value_parser = parse_fault_arg)]
    pub faults: Vec<(SystemId, Fault)>,
    /// The clock: instant (answers at once) or live (each model's published pace)
    #[arg(long, value_name = "instant|live", conflicts_with = "replay")]
    pub timing: Option<crate::config::Timing>,
    /// Serve the recording in DIR (made with --record) with its own timing
    #[arg(long, value_name = "DIR")]
    pub replay: Option<PathBuf>,
}

/// `--listen` of `sandbox`: IP:PORT on loopback, by the same rule as `[sandbox] listen`.
fn parse_sandbox_listen(s: &str) -> Result<std::net::SocketAddr, String> {
    let addr: std::net::SocketAddr = s
        .parse()
        .map_err(|_| format!("{s:?} is not IP:PORT (e.g. 127.0.0.1:0)"))?;
    crate::config::sandbox_listen_ip(addr.ip())?;
    Ok(addr)
}

/// `--metrics` and `--serve`: IP:PORT, or a bare PORT on loopback (another host sees the
/// endpoint only when asked for by address).
fn parse_metrics_listen(s: &str) -> Result<std::net::SocketAddr, String> {
    if let Ok(port) = s.parse::<u16>() {
        return Ok(std::net::SocketAddr::from(([127, 0, 0, 1], port)));
    }
    s.parse().map_err(|_| {
        format!("{s:?} is neither IP:PORT nor PORT (e.g. 9464, 127.0.0.1:9464 or [::1]:9464)")
    })
}
