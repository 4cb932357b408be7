//! Config loading under arbitrary bytes: never a panic; every refusal names the file; every
//! accepted config renders (`check-config`) to text that, without its "(set, ****)" /
//! "(not set)" notes on the key variables, loads back to the same settings.
//!
//! `cargo fuzz run config` (cargo-fuzz; on a stable toolchain prefix `RUSTC_BOOTSTRAP=1`).

#![no_main]

use libfuzzer_sys::fuzz_target;
use singularis_engine::config::{parse, render_resolved};

fuzz_target!(|data: &[u8]| {
    match parse(data, "fuzz.toml") {
        Ok(cfg) => {
            let text: String = render_resolved(&cfg)
                .lines()
                .map(|l| match l.starts_with("api_key_env = ") {
                    true => l.rsplit_once(" (").map_or(l, |(kept, _)| kept),
                    false => l,
                })
                .flat_map(|l| [l, "\n"])
                .collect();
            let again = parse(text.as_bytes(), "rendered.toml")
                .unwrap_or_else(|e| panic!("the rendered config does not load: {e}\n{text}"));
            let (a, b) = (serde_json::to_value(&cfg).unwrap(), serde_json::to_value(&again).unwrap());
            assert_eq!(a, b, "rendering changed the settings:\n{text}");
        }
        Err(e) => {
            let shown = e.to_string();
            assert!(shown.starts_with("fuzz.toml"), "{shown}");
        }
    }
});
