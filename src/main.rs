//! The binary: everything is in the library (`cli::run`), so its async code is compiled once.

fn main() -> std::process::ExitCode {
    singularis_tui::cli::run::main()
}
