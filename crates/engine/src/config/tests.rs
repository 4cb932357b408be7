//! The engine's own reading of a file of only its sections. The whole file (the engine's
//! sections and the app's) is tested where it is read whole, in the app (`src/config`).

use super::*;
use crate::systems::SystemId;

#[test]
fn an_engine_only_file_loads_and_refuses_what_is_not_the_engines() {
    let c = parse(
        b"[shutdown]\ngrace_ms = 250\n[systems.claude_client]\ntimeout_ms = 1_000\n",
        "engine.toml",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.shutdown.grace_ms, 250);
    assert_eq!(c.system(SystemId::CLAUDE_CLIENT).timeout_ms, 1_000);
    let err = parse(b"\n[ui]\nrefresh_ms = 100\n", "engine.toml").unwrap_err();
    assert_eq!((err.line, err.key.as_str()), (2, "ui"), "{err}");
    assert!(
        err.message.starts_with(
            "unknown key (expected one of: shutdown, resilience, pricing, budget, systems)"
        ),
        "{err}"
    );
}

#[test]
fn the_sections_are_the_file_types_fields() {
    assert_eq!(
        Config::sections(),
        ["shutdown", "resilience", "pricing", "budget", "systems"]
    );
}

#[test]
fn a_cycle_the_file_makes_is_located() {
    let err = parse(
        b"[systems.claude_client]\ndepends_on = [\"moe\"]\n",
        "cycle.toml",
    )
    .unwrap_err();
    assert_eq!(
        (err.line, err.key.as_str()),
        (2, "systems.claude_client.depends_on")
    );
    assert!(
        err.message
            .contains("claude_client -> moe -> claude_client"),
        "{err}"
    );
}
