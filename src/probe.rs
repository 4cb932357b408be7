//! `singularis-tui probe`: before a session, one minimal real call per system, to learn
//! whether the keys, the hosts and the models work, in the services' own words.
//!
//! The calls go through the same systems a session builds (pool, gate, retries off, usage),
//! and their connections are closed and verified at the end as a session's are.

use crate::clients::{self, Prompt, Usage};
use crate::config::{BaseUrl, Config};
use crate::lifecycle::{self, Registry};
use crate::logging::Redactor;
use crate::sandbox::{Sandbox, SandboxSystem};
use crate::systems::{Protocol, SystemId};
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// One line of the table.
#[derive(Debug, Clone)]
pub(crate) struct ProbeRow {
    pub system: SystemId,
    pub host: String,
    pub model: String,
    /// `Ok(what came back)` or `Err(the service's message, or why no call was made)`.
    pub outcome: std::result::Result<String, String>,
    pub latency_ms: Option<f64>,
    pub usage: Option<Usage>,
}

/// A probe's request, at its largest (a one-line prompt in the protocol's JSON), for the
/// worst case said before the calls.
const PROBE_BODY_BYTES: usize = 600;

/// Exit statuses: 0 every probe answered, 1 any failed, 3 a socket was left open; 0 too when
/// the user declines the billed calls (nothing was called).
pub async fn run(
    config: Config,
    named: &[SystemId],
    yes: bool,
    out: &mut dyn Write,
) -> Result<i32> {
    let selected = selected_systems(&config, named);
    if selected.is_empty() {
        writeln!(
            out,
            "Every enabled system plays on the embedded sandbox: nothing to probe.\n\
             Set a system's base_url to its service (see config.toml), or name systems to probe them on the sandbox."
        )?;
        return Ok(0);
    }

    // Real calls cost money: say so, and what they can cost at most, before making them.
    if !agreed_to_bill(&config, &selected, yes, out).await? {
        writeln!(out, "No call made.")?;
        return Ok(0);
    }

    let config = probe_config(config, &selected);
    let baseline = lifecycle::sockets::count_process_sockets(&[]).ok();
    let sandbox = start_sandbox(&config, &selected).await?;
    let urls = crate::session::sandbox_urls(&config, sandbox.as_ref());
    let registry = crate::session::build_registry(&config, &urls);
    let rows = probe_all(&config, &registry, &urls, &selected).await;
    print_table(out, &rows, &config)?;

    let missing = missing_keys(&config, &registry, &selected);
    if !missing.is_empty() {
        writeln!(
            out,
            "\nNo key in the environment: set {} (keys are read from the environment only).",
            missing.join(", ")
        )?;
    }

    let report = close_probed(&config, registry, sandbox, baseline, &selected, out).await?;
    Ok(if report.leaked() {
        3
    } else if !report.is_clean() {
        4
    } else if rows.iter().any(|r| r.outcome.is_err()) {
        1
    } else {
        0
    })
}

/// `config` with the `selected` systems enabled and without retries: one call each, as a
/// failure is what we came to see, not something to hide by retrying.
fn probe_config(mut config: Config, selected: &[SystemId]) -> Config {
    for id in selected {
        let c = config
            .systems
            .get_mut(id)
            .expect("every system is configured");
        c.retries = 0;
        c.enabled = true;
    }
    config
}

/// The embedded sandbox, serving the selected systems whose base URL is the sandbox; none
/// when none is.
async fn start_sandbox(config: &Config, selected: &[SystemId]) -> Result<Option<Sandbox>> {
    let on_sandbox: Vec<SystemId> = selected
        .iter()
        .copied()
        .filter(|id| config.system(*id).base_url.is_sandbox())
        .collect();
    if on_sandbox.is_empty() {
        return Ok(None);
    }
    let systems = on_sandbox
        .iter()
        .map(|id| SandboxSystem::from_config(config, *id, config.sandbox.faults.get(id).copied()))
        .collect();
    Ok(Some(
        Sandbox::start_with(
            config.sandbox.listen,
            0,
            systems,
            crate::session::sandbox_clock(config),
        )
        .await
        .context("starting the embedded sandbox")?,
    ))
}

/// One probe per selected system, all at once; the services' messages scrubbed of keys.
async fn probe_all(
    config: &Config,
    registry: &Arc<Registry>,
    urls: &BTreeMap<SystemId, url::Url>,
    selected: &[SystemId],
) -> Vec<ProbeRow> {
    let redactor = Redactor::from_config(config);
    let probes = selected
        .iter()
        .map(|&id| probe_one(config, registry, urls, id));
    let mut rows = futures::future::join_all(probes).await;
    for r in &mut rows {
        r.outcome = r.outcome.clone().map_err(|e| redactor.scrub(&e));
    }
    rows
}

/// Close every system and verify it, as a session's shutdown does, stop the sandbox, and
/// say how the probed systems closed.
async fn close_probed(
    config: &Config,
    registry: Arc<Registry>,
    sandbox: Option<Sandbox>,
    baseline: Option<usize>,
    selected: &[SystemId],
    out: &mut dyn Write,
) -> Result<lifecycle::ShutdownReport> {
    let excluded = sandbox.as_ref().map(|s| s.ports()).unwrap_or_default();
    let grace = Duration::from_millis(config.shutdown.grace_ms);
    let report = lifecycle::shutdown_all(
        registry,
        grace,
        CancellationToken::new(),
        baseline,
        excluded,
        None,
        Vec::new(),
    )
    .await;
    if let Some(sb) = sandbox {
        sb.stop().await;
    }
    // The probed systems only: the others were never opened (and moe has no wire).
    let probed = |o: lifecycle::CloseOutcome| {
        report
            .systems
            .iter()
            .filter(|r| selected.contains(&r.name) && r.outcome == o)
            .count()
    };
    writeln!(
        out,
        "\nSystems: {} closed, {} forced, {} ({:.1} ms)",
        probed(lifecycle::CloseOutcome::Closed),
        probed(lifecycle::CloseOutcome::Forced),
        report.sockets_left_text(),
        report.total_ms
    )?;
    out.flush()?;
    Ok(report)
}

/// The systems named, or every enabled one with a wire that is not on the sandbox.
fn selected_systems(config: &Config, named: &[SystemId]) -> Vec<SystemId> {
    if !named.is_empty() {
        return named.to_vec();
    }
    config
        .ids()
        .into_iter()
        .filter(|id| {
            let c = config.system(*id);
            c.enabled && c.protocol != Protocol::Moe && !c.base_url.is_sandbox()
        })
        .collect()
}

/// Say what the real calls among `selected` can cost at most, and ask (unless `yes`, or
/// stdin is not a terminal). `false`: the user declined.
async fn agreed_to_bill(
    config: &Config,
    selected: &[SystemId],
    yes: bool,
    out: &mut dyn Write,
) -> Result<bool> {
    let billed: Vec<SystemId> = selected
        .iter()
        .copied()
        .filter(|id| {
            let c = config.system(*id);
            c.protocol != Protocol::Moe && !c.base_url.is_sandbox()
        })
        .collect();
    if !billed.is_empty() {
        let mut worst = 0.0;
        let mut unpriced = Vec::new();
        for id in &billed {
            match config.price(*id) {
                Some(p) => {
                    worst += lifecycle::budget::worst_cost(
                        &p,
                        PROBE_BODY_BYTES,
                        config.system(*id).params.max_output_tokens,
                    )
                }
                None => unpriced.push(id.name()),
            }
        }
        let unknown = if unpriced.is_empty() {
            String::new()
        } else {
            format!(
                " + unknown for {} (no price in [pricing])",
                unpriced.join(", ")
            )
        };
        writeln!(
            out,
            "probe makes {} real call{}, billed by the services: at most ${worst:.4}{unknown} \
             (each answer at its whole output cap).",
            billed.len(),
            if billed.len() == 1 { "" } else { "s" },
        )?;
        out.flush()?;
        if !yes && std::io::IsTerminal::is_terminal(&std::io::stdin()) {
            write!(out, "Make them? [y/N] ")?;
            out.flush()?;
            let answer = tokio::task::spawn_blocking(|| {
                let mut line = String::new();
                std::io::stdin().read_line(&mut line).map(|_| line)
            })
            .await
            .context("reading the answer")?
            .context("reading the answer")?;
            return Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "Yes"));
        }
    }

    Ok(true)
}

/// The key variables of the selected systems that were disabled for want of their key.
fn missing_keys(config: &Config, registry: &Registry, selected: &[SystemId]) -> Vec<String> {
    selected
        .iter()
        .filter(|id| {
            registry
                .get(**id)
                .snapshot()
                .disabled_reason
                .is_some_and(|r| r.ends_with(" not set"))
        })
        .filter_map(|id| config.system(*id).api_key_env.clone())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect()
}

async fn probe_one(
    config: &Config,
    registry: &Arc<Registry>,
    urls: &BTreeMap<SystemId, url::Url>,
    id: SystemId,
) -> ProbeRow {
    let c = config.system(id);
    let host = match (&c.base_url, urls.get(&id)) {
        (BaseUrl::Sandbox, Some(u)) => format!("sandbox {}", host_port(u)),
        (BaseUrl::Sandbox, None) => "sandbox".to_string(),
        (BaseUrl::Live(u), _) => host_port(u),
    };
    let mut row = ProbeRow {
        system: id,
        host,
        model: c.model.clone(),
        outcome: Ok(String::new()),
        latency_ms: None,
        usage: None,
    };
    if c.protocol == Protocol::Moe {
        row.outcome = Err("moe has no wire of its own: probe its experts".into());
        return row;
    }
    let sys = registry.get(id).clone();
    if let Some(why) = sys.snapshot().disabled_reason {
        row.outcome = Err(format!("no call made: {why}"));
        return row;
    }
    let protocol = c.protocol;
    let prompt = match protocol {
        Protocol::WolframLlm => Prompt::new("", "2+2"),
        Protocol::GeminiTts => Prompt::new("", "Ready."),
        _ => Prompt::new("Answer in one line.", "Reply with exactly: ACTION: explore"),
    };
    let started = Instant::now();
    let answer = sys
        .call(move |ctx| async move { clients::ask(&ctx, protocol, &prompt).await })
        .await;
    row.latency_ms = Some(started.elapsed().as_secs_f64() * 1e3);
    row.usage = sys.snapshot().usage;
    row.outcome = match answer {
        Ok(text) => Ok(format!("ok: {}", clients::shorten(&text, 40))),
        Err(e) => Err(e.to_string()),
    };
    row
}

fn host_port(u: &url::Url) -> String {
    match (u.host_str(), u.port_or_known_default()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_string(),
        _ => u.as_str().to_string(),
    }
}

fn print_table(out: &mut dyn Write, rows: &[ProbeRow], config: &Config) -> std::io::Result<()> {
    let cost = |r: &ProbeRow| r.usage.zip(config.price(r.system)).map(|(u, p)| p.cost(&u));
    let cells: Vec<[String; 7]> = rows
        .iter()
        .map(|r| {
            let tokens = match r.usage {
                Some(u) if u.reasoning > 0 => {
                    format!("{}/{} ({} reasoning)", u.input, u.output, u.reasoning)
                }
                Some(u) => format!("{}/{}", u.input, u.output),
                None => "–".into(),
            };
            let result = match &r.outcome {
                Ok(s) => s.clone(),
                Err(e) => format!("FAILED: {e}"),
            };
            let latency = r
                .latency_ms
                .map(|ms| format!("{ms:.0} ms"))
                .unwrap_or_else(|| "–".into());
            let spent = match (cost(r), r.usage) {
                (Some(c), _) => format!("${c:.6}"),
                (None, Some(_)) => "unpriced".into(),
                (None, None) => "–".into(),
            };
            [
                r.system.name().to_string(),
                r.host.clone(),
                r.model.clone(),
                latency,
                tokens,
                spent,
                result,
            ]
        })
        .collect();
    let header = [
        "SYSTEM",
        "HOST",
        "MODEL",
        "LATENCY",
        "TOKENS in/out",
        "COST",
        "RESULT",
    ];
    let mut widths = header.map(|h| h.chars().count());
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row.iter()) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cols: [&str; 7]| {
        let mut s = String::new();
        for (i, c) in cols.iter().enumerate() {
            if i + 1 == cols.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        s
    };
    writeln!(out, "{}", line(header))?;
    for row in &cells {
        writeln!(out, "{}", line(row.each_ref().map(String::as_str)))?;
    }
    let costs: Vec<f64> = rows.iter().filter_map(cost).collect();
    if !costs.is_empty() {
        let unknown = rows
            .iter()
            .filter(|r| r.usage.is_some() && cost(r).is_none())
            .count();
        writeln!(
            out,
            "Spent: ${:.6}{} (the answers' own usage at [pricing])",
            costs.iter().sum::<f64>(),
            if unknown > 0 { " + unpriced" } else { "" }
        )?;
    }
    Ok(())
}
