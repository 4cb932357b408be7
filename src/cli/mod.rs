//! The command line (ARCHITECTURE.md, "Command line and exit status"): its definition here,
//! what each command does in `run`.

pub mod run;

use crate::config::Mode;
use crate::sandbox::fault::{Fault, parse_fault_arg};
use crate::systems::SystemId;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "singularis-tui",
    version = crate::VERSION,
    about = "An autonomous game-playing agent and the life of every connection it opens",
    after_help = "--help says more: the dashboard's keys, the environment, the exit statuses.",
    after_long_help = long_help()
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
    /// One JSON event per line on stdout instead of the text account. Only without the
    /// dashboard: a stdout that is not a terminal, or --headless
    #[arg(long)]
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
    /// How the calls of one cycle are made (config gameplay.mode)
    #[arg(long, value_name = "MODE", value_parser = mode_parser())]
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
    /// Print the completion script for SHELL, made from these very options, e.g.
    /// `singularis-tui completions bash > ~/.local/share/bash-completion/completions/singularis-tui`
    Completions {
        #[arg(value_name = "SHELL")]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), made from these very options: `singularis-tui man | man -l -`,
    /// or save it as singularis-tui.1 in a man directory
    Man,
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

impl Cli {
    /// The completion script for `shell`, as `completions SHELL` prints it.
    pub fn completions(shell: clap_complete::Shell, out: &mut dyn std::io::Write) {
        use clap::CommandFactory;
        clap_complete::generate(shell, &mut Cli::command(), "singularis-tui", out);
    }

    /// The manual page (roff), as `man` prints it.
    pub fn man_page(out: &mut dyn std::io::Write) -> std::io::Result<()> {
        use clap::CommandFactory;
        clap_mangen::Man::new(Cli::command()).render(out)
    }
}

/// `--mode`'s values, each with what it does, for --help and the completions.
fn mode_parser() -> impl clap::builder::TypedValueParser<Value = Mode> {
    use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
    PossibleValuesParser::new([
        PossibleValue::new(Mode::Parallel.name()).help("a cycle's independent calls at once"),
        PossibleValue::new(Mode::Sequential.name())
            .help("one call after another (the experts' vote ends once a majority agrees)"),
    ])
    .map(|s| s.parse::<Mode>().expect("every possible value is a mode"))
}

/// The end of `--help`: what the options do not say (the dashboard's keys, the environment,
/// the exit statuses).
fn long_help() -> String {
    use std::fmt::Write as _;
    let mut out = String::from("Dashboard keys:\n");
    for (key, what) in crate::tui::action::KEY_HELP {
        let _ = writeln!(out, "  {key:<12}{what}");
    }
    let keys: Vec<String> = {
        let config = crate::config::Config::default();
        let mut names: Vec<String> = Vec::new();
        for id in config.ids() {
            if let Some(name) = &config.system(id).api_key_env
                && !names.contains(name)
            {
                names.push(name.clone());
            }
        }
        names
    };
    out.push_str("\nEnvironment:\n");
    for (name, what) in [
        (
            keys.join(", ").as_str(),
            "the services' API keys (as the config's api_key_env names them); read, never written anywhere",
        ),
        (
            "SINGULARIS_LOG",
            "the log's filter, e.g. debug or singularis_engine=trace (default info)",
        ),
        ("SINGULARIS_MUTE=1", "no sound, as --mute"),
        (
            "SINGULARIS_AUDIO_DEVICE=none",
            "behave as if there were no audio device",
        ),
        (
            crate::control_token::TOKEN_ENV,
            "the control endpoint's token (--serve), and the one attach sends",
        ),
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "export traces over OTLP/HTTP (with the other OTEL_* variables)",
        ),
        (
            "XDG_CONFIG_HOME",
            "where config.toml is looked for (after ./config.toml)",
        ),
        (
            "XDG_STATE_HOME",
            "where the log, the reports and the control token go",
        ),
        ("NO_COLOR", "a dashboard without colour"),
        ("TERM=dumb", "no dashboard: the run is headless"),
    ] {
        let _ = writeln!(out, "  {name}\n      {what}");
    }
    out.push_str("\nExit status:\n");
    for (code, what) in EXIT_STATUS {
        let _ = writeln!(out, "  {code}  {what}");
    }
    out
}

/// ARCHITECTURE.md, "Command line and exit status".
pub const EXIT_STATUS: [(u8, &str); 6] = [
    (
        0,
        "clean: every socket verified closed (force-closed systems are allowed and reported)",
    ),
    (
        1,
        "another fatal error, or the report or the account could not be written",
    ),
    (
        2,
        "bad usage or bad config, a report path that cannot take a report, or a listen address \
         that cannot be served",
    ),
    (3, "sockets still open after shutdown"),
    (
        4,
        "shutdown could not be verified (never reported as closed)",
    ),
    (5, "clean, but stopped by the session's spend limit"),
];

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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn text(bytes: Vec<u8>) -> String {
        String::from_utf8(bytes).expect("UTF-8")
    }

    #[test]
    fn the_definition_holds_together() {
        Cli::command().debug_assert();
    }

    #[test]
    fn completions_are_made_from_the_options() {
        for shell in [
            clap_complete::Shell::Bash,
            clap_complete::Shell::Zsh,
            clap_complete::Shell::Fish,
        ] {
            let mut out = Vec::new();
            Cli::completions(shell, &mut out);
            let script = text(out);
            for word in [
                "check-config",
                "completions",
                "headless",
                "grace-ms",
                "sequential",
            ] {
                assert!(script.contains(word), "{shell}: no {word}:\n{script}");
            }
        }
        assert!(
            Cli::try_parse_from(["singularis-tui", "completions", "tcsh"]).is_err(),
            "a shell clap_complete does not know is refused"
        );
    }

    #[test]
    fn the_man_page_is_made_from_the_options() {
        let mut out = Vec::new();
        Cli::man_page(&mut out).unwrap();
        let page = text(out);
        assert!(page.starts_with(".ie \\n(.g .ds Aq"), "{page}");
        assert!(page.contains(".TH singularis-tui 1"), "{page}");
        // Options (roff escapes their dashes), subcommands, and the long help's sections.
        for word in [
            "\\-\\-headless",
            "check\\-config",
            "Dashboard keys:",
            "SINGULARIS_LOG",
            "Exit status:",
        ] {
            assert!(page.contains(word), "no {word}:\n{page}");
        }
    }

    /// `--help` says what the options cannot: the modes, the keys, the environment and the
    /// exit statuses; `-h` stays short and says where the rest is.
    #[test]
    fn long_help_lists_modes_keys_environment_and_exit_statuses() {
        let long = Cli::command().render_long_help().to_string();
        for mode in ["parallel", "sequential"] {
            assert!(long.contains(&format!("- {mode}:")), "{mode}:\n{long}");
        }
        for (key, what) in crate::tui::action::KEY_HELP {
            assert!(long.contains(key) && long.contains(what), "{key}:\n{long}");
        }
        for var in [
            "ANTHROPIC_API_KEY",
            "OPENAI_API_KEY",
            "SINGULARIS_LOG",
            "SINGULARIS_MUTE",
            "SINGULARIS_CONTROL_TOKEN",
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "XDG_STATE_HOME",
            "NO_COLOR",
        ] {
            assert!(long.contains(var), "{var}:\n{long}");
        }
        for (code, what) in EXIT_STATUS {
            assert!(
                long.contains(&format!("  {code}  {what}")),
                "{code}:\n{long}"
            );
        }
        let short = Cli::command().render_help().to_string();
        assert!(!short.contains("Dashboard keys"), "{short}");
        assert!(short.contains("--help says more"), "{short}");
    }

    /// The exit statuses `--help` gives are ARCHITECTURE.md's.
    #[test]
    fn the_exit_statuses_are_the_documented_ones() {
        let doc = include_str!("../../ARCHITECTURE.md");
        let documented: Vec<u8> = doc
            .lines()
            .skip_while(|l| !l.starts_with("## Command line and exit status"))
            .skip(1)
            .take_while(|l| !l.starts_with("## "))
            .filter_map(|l| l.strip_prefix("| ")?.split(' ').next()?.parse().ok())
            .collect();
        let ours: Vec<u8> = EXIT_STATUS.iter().map(|(c, _)| *c).collect();
        assert_eq!(documented, ours);
    }

    #[test]
    fn the_modes_are_the_configs() {
        for (arg, mode) in [
            ("parallel", Mode::Parallel),
            ("sequential", Mode::Sequential),
        ] {
            let cli = Cli::try_parse_from(["singularis-tui", "--mode", arg]).unwrap();
            assert_eq!(cli.run.mode, Some(mode));
        }
        let err = Cli::try_parse_from(["singularis-tui", "--mode", "serial"])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("[possible values: parallel, sequential]"),
            "{err}"
        );
    }

    /// Whether the run has a dashboard is for main to say (stdout a terminal or not), not
    /// the parser: `--json` alone parses.
    #[test]
    fn json_alone_parses() {
        let cli = Cli::try_parse_from(["singularis-tui", "--json"]).unwrap();
        assert!(cli.run.json && !cli.run.headless);
    }

    #[test]
    fn version_is_the_packages_with_the_commit_in_a_checkout() {
        let version = Cli::command().get_version().unwrap().to_string();
        assert_eq!(version, crate::VERSION);
        assert!(version.starts_with(env!("CARGO_PKG_VERSION")), "{version}");
        let checkout = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(".git")
            .exists();
        if checkout {
            let hash = version
                .strip_prefix(concat!(env!("CARGO_PKG_VERSION"), " ("))
                .and_then(|rest| rest.strip_suffix(')'))
                .unwrap_or_else(|| panic!("no commit in {version:?}"));
            assert!(
                hash.len() >= 7 && hash.chars().all(|c| c.is_ascii_hexdigit()),
                "{version}"
            );
        }
    }
}
