//! The checked-in schemas are the types' own: a change to a type that is not also a change
//! to `schema/` fails here. After a deliberate change:
//! `UPDATE_SCHEMA=1 cargo test -p singularis-protocol --test schema`.

use std::path::PathBuf;

fn check(file: &str, schema: serde_json::Value) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("schema")
        .join(file);
    let mut text = serde_json::to_string_pretty(&schema).unwrap();
    text.push('\n');
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(&path, &text).unwrap();
        return;
    }
    let checked_in =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let checked_in: serde_json::Value = serde_json::from_str(&checked_in).unwrap();
    if let Some(at) = first_difference(&checked_in, &schema, String::new()) {
        panic!(
            "{} is not the schema of the types (they differ at {at}): if the change is meant, \
             regenerate it with `UPDATE_SCHEMA=1 cargo test -p singularis-protocol --test \
             schema` (and think about the protocol's version)",
            path.display()
        );
    }
}

/// Where two JSON values first differ, as a JSON pointer.
fn first_difference(a: &serde_json::Value, b: &serde_json::Value, at: String) -> Option<String> {
    use serde_json::Value::{Array, Object};
    match (a, b) {
        (Object(x), Object(y)) => {
            x.keys()
                .chain(y.keys())
                .find_map(|k| match (x.get(k), y.get(k)) {
                    (Some(u), Some(v)) => first_difference(u, v, format!("{at}/{k}")),
                    _ => Some(format!("{at}/{k}")),
                })
        }
        (Array(x), Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (u, v))| first_difference(u, v, format!("{at}/{i}"))),
        _ => (a != b).then(|| if at.is_empty() { "/".to_string() } else { at }),
    }
}

#[test]
fn the_event_schema_is_the_types_schema() {
    check("events.schema.json", singularis_protocol::events_schema());
}

#[test]
fn the_command_schema_is_the_types_schema() {
    check(
        "commands.schema.json",
        singularis_protocol::commands_schema(),
    );
}
