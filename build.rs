//! `--version` names the commit when the binary is built from a git checkout:
//! `singularis-tui 0.1.0 (1a2b3c4d5e)`; from a crate tarball (no checkout of its own), the
//! version alone. Never fails the build: whatever git cannot say is left out. Reruns only when
//! the checkout's HEAD or the branch it points to moves, so an ordinary build does not ask git.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let text = match commit(&dir) {
        Some(hash) => format!("{version} ({hash})"),
        None => version,
    };
    println!("cargo::rustc-env=SINGULARIS_VERSION={text}");
}

/// The short hash of HEAD when `dir` is the top of a git checkout (not a tarball unpacked
/// inside someone else's repository), with what to watch for it to change.
fn commit(dir: &Path) -> Option<String> {
    let top = git(dir, &["rev-parse", "--show-toplevel"])?;
    if std::fs::canonicalize(&top).ok()? != std::fs::canonicalize(dir).ok()? {
        return None;
    }
    // HEAD (in a worktree's own git dir), and the branch it names (in the common dir: loose,
    // or packed once `git pack-refs` ran).
    let git_dir = absolute(dir, git(dir, &["rev-parse", "--git-dir"])?);
    watch(&git_dir.join("HEAD"));
    if let Some(branch) = git(dir, &["symbolic-ref", "-q", "HEAD"]) {
        let common = absolute(dir, git(dir, &["rev-parse", "--git-common-dir"])?);
        watch(&common.join(branch));
        watch(&common.join("packed-refs"));
    }
    git(dir, &["rev-parse", "--short=10", "HEAD"])
}

fn watch(path: &Path) {
    if path.exists() {
        println!("cargo::rerun-if-changed={}", path.display());
    }
}

fn absolute(dir: &Path, path: String) -> PathBuf {
    let path = PathBuf::from(path);
    if path.is_absolute() {
        path
    } else {
        dir.join(path)
    }
}

/// What `git ARGS` prints in `dir`, trimmed; `None` when git is missing or says no.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let text = text.trim();
    (out.status.success() && !text.is_empty()).then(|| text.to_string())
}
