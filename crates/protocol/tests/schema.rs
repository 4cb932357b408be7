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
    assert!(
        checked_in == schema,
        "{} is not the schema of the types: if the change is meant, regenerate it with \
         `UPDATE_SCHEMA=1 cargo test -p singularis-protocol --test schema` (and think about \
         the protocol's version)",
        path.display()
    );
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
