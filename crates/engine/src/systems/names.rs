//! The process-wide registry behind `SystemId`: append-only, so an index once given names
//! the same system for the life of the process, and a name is leaked once (a `&'static str`
//! every log line, label and report can borrow).

use std::sync::{LazyLock, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// The seed's names and display names, at indices 0..=10 (`SystemId`'s constants).
const SEED: [(&str, &str); 11] = [
    ("video_interpreter", "Video interpreter"),
    ("voice_system", "Voice system"),
    ("orchestrator", "GPT-5 orchestrator"),
    ("wolfram_analyzer", "Wolfram analyzer"),
    ("gemini_client", "Gemini client"),
    ("claude_client", "Claude client"),
    ("openai_client", "OpenAI client"),
    ("hyperbolic_client", "Hyperbolic client"),
    ("lmstudio_client", "LMStudio client"),
    ("moe", "MoE orchestrator"),
    ("meta_rl", "GPT-5 Meta RL"),
];

/// A bound on what a config, a command line or a remote stream can register: each name is
/// leaked, and indices are u16.
const MAX_SYSTEMS: usize = 1024;
const MAX_NAME: usize = 64;

struct Entry {
    name: &'static str,
    display: &'static str,
}

static NAMES: LazyLock<RwLock<Vec<Entry>>> = LazyLock::new(|| {
    RwLock::new(
        SEED.iter()
            .map(|&(name, display)| Entry { name, display })
            .collect(),
    )
});

// The registry only grows by whole entries, so a panic elsewhere cannot leave it half-written.
fn read() -> RwLockReadGuard<'static, Vec<Entry>> {
    NAMES.read().unwrap_or_else(|e| e.into_inner())
}

fn write() -> RwLockWriteGuard<'static, Vec<Entry>> {
    NAMES.write().unwrap_or_else(|e| e.into_inner())
}

pub(super) fn name(i: u16) -> &'static str {
    read().get(usize::from(i)).map_or("unknown", |e| e.name)
}

pub(super) fn display_name(i: u16) -> &'static str {
    read().get(usize::from(i)).map_or("unknown", |e| e.display)
}

pub(super) fn find(name: &str) -> Option<u16> {
    read()
        .iter()
        .position(|e| e.name == name)
        .and_then(|i| u16::try_from(i).ok())
}

pub(super) fn intern(name: &str) -> Result<u16, String> {
    check(name)?;
    if let Some(i) = find(name) {
        return Ok(i);
    }
    let mut names = write();
    // Another thread may have registered it between the two locks.
    if let Some(i) = names.iter().position(|e| e.name == name) {
        return u16::try_from(i).map_err(|e| e.to_string());
    }
    if names.len() >= MAX_SYSTEMS {
        return Err(format!(
            "too many systems: at most {MAX_SYSTEMS} names in one process"
        ));
    }
    let i = u16::try_from(names.len()).map_err(|e| e.to_string())?;
    names.push(Entry {
        name: Box::leak(name.to_string().into_boxed_str()),
        display: Box::leak(made_display(name).into_boxed_str()),
    });
    Ok(i)
}

pub(super) fn set_display_name(i: u16, display: &str) {
    let mut names = write();
    if let Some(e) = names.get_mut(usize::from(i))
        && e.display != display
    {
        e.display = Box::leak(display.to_string().into_boxed_str());
    }
}

/// snake_case, as the seed's names: a metric label, a file name (`--record`) and a word on
/// the command line without quoting.
fn check(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= MAX_NAME;
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a system name (snake_case: a lowercase letter, then lowercase letters, digits or _; at most {MAX_NAME} bytes)"
        ))
    }
}

/// "mistral_client" → "Mistral client".
fn made_display(name: &str) -> String {
    let spaced = name.replace('_', " ");
    let mut chars = spaced.chars();
    chars
        .next()
        .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_registered_once_and_checked() {
        let a = intern("names_test_system").unwrap();
        assert_eq!(intern("names_test_system").unwrap(), a);
        assert_eq!(name(a), "names_test_system");
        assert_eq!(display_name(a), "Names test system");
        assert_eq!(find("claude_client"), Some(5));
        for bad in ["", "Claude", "9lives", "a-b", "a b", &"x".repeat(65)] {
            assert!(intern(bad).is_err(), "{bad:?}");
        }
    }
}
