#!/usr/bin/env bash
# Mutation testing of the closing core (issue #28 item 5; the score is in TESTING.md,
# "Mutation testing"). Too long for CI: run it by hand after changing these files.
#
# What it runs: cargo-mutants (`cargo install cargo-mutants --locked`) on five files, one at
# a time, in order of importance:
#   crates/engine/src/lifecycle/shutdown.rs      closing every system, the process-wide check
#   crates/engine/src/lifecycle/system/close.rs  closing one system
#   crates/engine/src/net/closing.rs             settle: close then verify
#   crates/engine/src/net/sockets.rs             the two witnesses, the SocketLedger
#   crates/engine/src/lifecycle/breaker.rs       the circuit breaker
# Every mutant: the engine's own tests (its unit tests and crates/engine/tests/*.rs,
# among them tests/closing.rs; no doc tests). They build in seconds, so a mutant costs one
# engine build and ~5 s of tests.
# The app's tests/sessions (shutdown, metrics) are not run per mutant: cargo-mutants 27.1
# kept testing only the mutated package (`--package=singularis-engine`) whatever
# --test-package or --test-workspace said, and `cargo test --test sessions` needs the app's.
# See TESTING.md, "What is left".
#
# How long, here (2 cores shared with other builds, load 8-10): 208 mutants, 43 of which
# do not compile (unviable); one run over the five files took about 70 minutes (15-25 s a
# mutant: a 10-20 s engine build and 5 s of tests; a mutant that hangs a test costs the
# 60 s limit). A rerun with MUTANTS_ITERATE=1 takes a minute or two per file (a build of
# the workspace's crates, then only the survivors). The copy keeps their builds in target/mutants/, so
# only the first run builds the dependencies (~5 minutes more). MUTANTS_SINCE=979ebab (95
# mutants on the four files changed since) took 23 minutes, load 5-10.
#
# How: the tree (tracked and untracked files, less target/ and .git) is copied to
# target/mutants/src before each file and mutated there in place (`--in-place` on the
# copy), so this tree is never touched and one build directory (target/mutants/target)
# serves every file. One job: the tests count the
# whole process's sockets, and the machine has two cores.
#
# Usage: scripts/mutants.sh [FILE...]    (default: the five above)
# MUTANTS_ITERATE=1: test only the mutants an
# earlier run did not catch (after adding tests; mutants are matched by file, line and
# column, so edit below the code, not above it, between runs).
# MUTANTS_SINCE=REV: only the mutants on lines changed since the commit REV (the file as it
# is now, uncommitted edits included, against REV: `git diff REV -- FILE`, passed to
# cargo-mutants' --in-diff). Lines unchanged since REV keep the score of the run taken at
# REV. Its results go to mutants.out/<file>-since-<REV>/ (so a full run's are kept); with
# MUTANTS_ITERATE=1 too, only that run's survivors again. A file with no change since REV
# is skipped.
# Results: mutants.out/<file>/mutants.out/{caught,missed,timeout,unviable}.txt of the last
# run, mutants.out/<file>-full/ the last full one, and a score line per file on stdout.
set -euo pipefail

root=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
cd "$root"
command -v cargo-mutants >/dev/null || {
    echo "cargo-mutants is not installed: cargo install cargo-mutants --locked" >&2
    exit 2
}

since=${MUTANTS_SINCE:-}
if [ -n "$since" ]; then
    git rev-parse --verify --quiet "$since^{commit}" >/dev/null || {
        echo "MUTANTS_SINCE=$since: not a commit here" >&2
        exit 2
    }
    since=$(git rev-parse --short "$since^{commit}")
fi

files=("$@")
if [ ${#files[@]} -eq 0 ]; then
    files=(
        crates/engine/src/lifecycle/shutdown.rs
        crates/engine/src/lifecycle/system/close.rs
        crates/engine/src/net/closing.rs
        crates/engine/src/net/sockets.rs
        crates/engine/src/lifecycle/breaker.rs
    )
fi

work="$root/target/mutants"
src="$work/src"
out="$root/mutants.out"
mkdir -p "$src" "$out"

# The copy, refreshed before each file from the tree as it is then (uncommitted changes
# included; tests written meanwhile count from the next file on). The files get new times
# (a copy with the old times could look older than the last build of a mutant, and not be
# rebuilt), so each file's run starts with one build of the workspace's crates.
refresh() {
    mkdir -p "$1"
    git ls-files -z --cached --others --exclude-standard |
        tar --null -T - -cf - | tar -xmf - -C "$1"
}


count() { (grep -c . "$1" 2>/dev/null || true) | head -1; }

# The score: the first full run's unviable mutants, and the last run's missed and timed out
# (--iterate runs again only those, and counts the rest "previously caught", unviable
# included); every other mutant was caught, by the first run or a later one.
summary() {
    local full=$1-full/mutants.out last=$1/mutants.out file=$2 total unviable missed timeout
    if grep -q "failed in an unmutated tree" "$last/debug.log" 2>/dev/null; then
        echo "$file: the last run's baseline failed (its tests fail unmutated): no score"
        return
    fi
    local in_diff=()
    [ -n "${3:-}" ] && in_diff=(--in-diff "$3")
    total=$(cargo mutants --dir "$root" -p singularis-engine --file "$file" "${in_diff[@]}" \
        --list | grep -c . || true)
    unviable=$(count "$full/unviable.txt")
    missed=$(count "$last/missed.txt")
    timeout=$(count "$last/timeout.txt")
    printf '%-45s %3s mutants: caught %s, missed %s, timeout %s, unviable %s\n' "$file" \
        "$total" $((total - unviable - missed - timeout)) "$missed" "$timeout" "$unviable"
}

# The diff of one file since $since, for --in-diff; empty when the file did not change.
diff_of() {
    local diff="$out/$(basename "$1" .rs)-since-$since.diff"
    git diff "$since" -- "$1" >"$diff"
    [ -s "$diff" ] && echo "$diff"
}

scored=()
for file in "${files[@]}"; do
    name=$(basename "$file" .rs)
    dest="$out/$name"
    in_diff=()
    if [ -n "$since" ]; then
        dest="$out/$name-since-$since"
        diff=$(diff_of "$file") || {
            echo "== $file: no change since $since, skipped"
            continue
        }
        in_diff=(--in-diff "$diff")
    fi
    scored+=("$file")
    iterate=()
    if [ "${MUTANTS_ITERATE:-0}" = 1 ] && [ -d "$dest/mutants.out" ]; then
        iterate=(--iterate)
    fi
    echo "== $file: the engine's tests ${iterate[*]} ${since:+on the lines changed since $since}"
    refresh "$src"
    CARGO_TARGET_DIR="$work/target" nice -n 10 cargo mutants --dir "$src" --in-place \
        --no-shuffle --colors never -p singularis-engine --file "$file" \
        --minimum-test-timeout 60 --output "$dest" "${in_diff[@]}" "${iterate[@]}" -- --tests || true
    if [ ${#iterate[@]} -eq 0 ]; then
        rm -rf "$dest-full"
        cp -a "$dest" "$dest-full"
    fi
done

echo "== score ($(date -u +%F), cargo-mutants $(cargo mutants --version | awk '{print $2}')${since:+, the lines changed since $since})"
for file in "${scored[@]}"; do
    if [ -n "$since" ]; then
        summary "$out/$(basename "$file" .rs)-since-$since" "$file" "$(diff_of "$file")"
    else
        summary "$out/$(basename "$file" .rs)" "$file"
    fi
done
