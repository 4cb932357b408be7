//! What `check-config` prints: the resolved settings, TOML-like, one `key = value` per line.
//! API keys are reported as set or not set, never shown.

use super::types::Config;
use std::ffi::OsString;
use std::fmt::Write;

/// The resolved configuration, with whether each system's key variable is set in this process.
pub fn render_resolved(cfg: &Config) -> String {
    render_with_env(cfg, &|name| std::env::var_os(name))
}

/// As [`render_resolved`], reading variables through `env` (tests avoid touching the process env).
pub(super) fn render_with_env(cfg: &Config, env: &dyn Fn(&str) -> Option<OsString>) -> String {
    let mut out = String::new();
    // `write!` into a String cannot fail; the results are ignored on purpose.
    let source = match &cfg.source {
        Some(p) => p.display().to_string(),
        None => "built-in default".to_string(),
    };
    let _ = writeln!(out, "# source: {source}");
    let _ = writeln!(out, "\n[shutdown]\ngrace_ms = {}", cfg.shutdown.grace_ms);
    let g = &cfg.gameplay;
    let _ = writeln!(
        out,
        "\n[gameplay]\nmode = {}\ncycles = {}\nseed = {}\ncycle_delay_ms = {}",
        quote(g.mode.name()),
        g.cycles,
        g.seed,
        g.cycle_delay_ms
    );
    let r = &g.roles;
    let experts: Vec<String> = r.experts.iter().map(|d| quote(d.name())).collect();
    let _ = writeln!(
        out,
        "\n[gameplay.roles]\nperceive = {}\nvoice = {}\ndecide = {}\nodds = {}\nlearn = {}\nvote = {}\nexperts = [{}]",
        quote(r.perceive.name()),
        quote(r.voice.name()),
        quote(r.decide.name()),
        quote(r.odds.name()),
        quote(r.learn.name()),
        quote(r.vote.name()),
        experts.join(", ")
    );
    let u = &cfg.ui;
    let _ = writeln!(
        out,
        "\n[ui]\nrefresh_ms = {}\nshutdown_step_ms = {}\nlinger_s = {}",
        u.refresh_ms, u.shutdown_step_ms, u.linger_s
    );
    let _ = writeln!(out, "\n[audio]\nenabled = {}", cfg.audio.enabled);
    let m = &cfg.metrics;
    let listen = match m.listen {
        Some(a) => format!("listen = {}", quote(&a.to_string())),
        None => "# listen: not set (no metrics endpoint)".to_string(),
    };
    let _ = writeln!(
        out,
        "\n[metrics]\n{listen}\nfinal_scrape_ms = {}",
        m.final_scrape_ms
    );
    let listen = match cfg.serve.listen {
        Some(a) => format!("listen = {}", quote(&a.to_string())),
        None => "# listen: not set (no control endpoint)".to_string(),
    };
    let _ = writeln!(out, "\n[serve]\n{listen}");
    let agents: Vec<String> = cfg.fleet.agents.iter().map(|a| quote(a)).collect();
    let _ = writeln!(out, "\n[fleet]\nagents = [{}]", agents.join(", "));
    let r = &cfg.resilience;
    let initial = r.deadline_initial_ms.map_or_else(
        || {
            "# deadline_initial_ms: not set (1000 on the instant sandbox; the ceiling on a live service or the live sandbox)"
                .to_string()
        },
        |ms| format!("deadline_initial_ms = {ms}"),
    );
    let _ = writeln!(
        out,
        "\n[resilience]\ndeadline_multiplier = {:?}\ndeadline_floor_ms = {}\ndeadline_ceiling_ms = {}\n{initial}\nstream_idle_ms = {}\nbreaker_failures = {}\nbreaker_backoff_ms = {}\nbreaker_backoff_max_ms = {}\nquorum_grace_ms = {}",
        r.deadline_multiplier,
        r.deadline_floor_ms,
        r.deadline_ceiling_ms,
        r.stream_idle_ms,
        r.breaker_failures,
        r.breaker_backoff_ms,
        r.breaker_backoff_max_ms,
        r.quorum_grace_ms,
    );
    let _ = writeln!(
        out,
        "\n[sandbox]\nlisten = {}\ntiming = {}",
        quote(&cfg.sandbox.listen.to_string()),
        quote(&cfg.sandbox.timing.to_string())
    );
    let _ = writeln!(out, "\n[sandbox.faults]");
    if cfg.sandbox.faults.is_empty() {
        let _ = writeln!(out, "# none");
    }
    for (id, fault) in &cfg.sandbox.faults {
        let _ = writeln!(out, "{id} = {}", quote(&fault.to_string()));
    }
    for (id, s) in &cfg.systems {
        let _ = writeln!(out, "\n[systems.{id}]  # {}", id.display_name());
        if !id.is_seed() {
            let _ = writeln!(out, "display_name = {}", quote(id.display_name()));
        }
        let _ = writeln!(out, "enabled = {}", s.enabled);
        let _ = writeln!(out, "protocol = {}", quote(s.protocol.name()));
        let _ = writeln!(out, "base_url = {}", quote(&s.base_url.to_string()));
        let _ = writeln!(out, "model = {}", quote(&s.model));
        let key = match &s.api_key_env {
            None => "\"\" (no key needed)".to_string(),
            Some(name) => {
                // Only whether it is set: no length, no prefix, nothing derived from the value.
                let state = match env(name) {
                    Some(v) if !v.is_empty() => "set, ****",
                    Some(_) => "set but empty",
                    None => "not set",
                };
                format!("{} ({state})", quote(name))
            }
        };
        let _ = writeln!(out, "api_key_env = {key}");
        let _ = writeln!(out, "timeout_ms = {}", s.timeout_ms);
        let _ = writeln!(out, "connect_timeout_ms = {}", s.connect_timeout_ms);
        let _ = writeln!(out, "pool_max = {}", s.pool_max);
        let _ = writeln!(out, "pool_max_per_host = {}", s.pool_max_per_host);
        let _ = writeln!(out, "retries = {}", s.retries);
        let deps: Vec<String> = s.depends_on.iter().map(|d| quote(d.name())).collect();
        let _ = writeln!(out, "depends_on = [{}]", deps.join(", "));
        let p = &s.params;
        let _ = writeln!(out, "max_output_tokens = {}", p.max_output_tokens);
        if s.protocol == crate::systems::Protocol::OpenaiChat {
            let _ = writeln!(out, "token_field = {}", quote(p.token_field.name()));
        }
        use crate::systems::Protocol::{OpenaiChat, OpenaiResponses};
        match (p.reasoning_effort, s.protocol) {
            (Some(e), _) => {
                let _ = writeln!(out, "reasoning_effort = {}", quote(e.name()));
            }
            // Written out: left out, another model would take its family's default.
            (None, OpenaiChat | OpenaiResponses) => {
                let _ = writeln!(out, "reasoning_effort = \"\"");
            }
            (None, _) => {}
        }
        if let Some(b) = p.thinking_budget {
            let _ = writeln!(out, "thinking_budget = {b}");
        }
    }
    let _ = writeln!(out, "\n[pricing]  # USD per million tokens");
    for (model, price) in &cfg.pricing {
        let _ = writeln!(
            out,
            "{} = {{ input = {:?}, output = {:?} }}",
            quote(model),
            price.input,
            price.output
        );
    }
    let b = &cfg.budget;
    let _ = writeln!(out, "\n[budget]  # USD");
    let limit = |name: &str, v: Option<f64>| match v {
        Some(usd) => format!("{name} = {usd:?}"),
        None => format!("# {name}: not set (no limit)"),
    };
    let _ = writeln!(out, "{}", limit("max_usd", b.max_usd));
    let _ = writeln!(out, "{}", limit("max_usd_per_hour", b.max_usd_per_hour));
    let _ = writeln!(out, "allow_unpriced = {}", b.allow_unpriced);
    let _ = writeln!(out, "\n[budget.systems]");
    if b.systems.is_empty() {
        let _ = writeln!(out, "# none");
    }
    for (id, usd) in &b.systems {
        let _ = writeln!(out, "{id} = {usd:?}");
    }
    out
}

/// A TOML basic string.
fn quote(s: &str) -> String {
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for c in s.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(q, "\\u{:04X}", c as u32);
            }
            c => q.push(c),
        }
    }
    q.push('"');
    q
}
