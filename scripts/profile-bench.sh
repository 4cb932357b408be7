#!/usr/bin/env bash
# Call graphs of a bench: `scripts/profile-bench.sh [BENCH] [-- BENCH ARGS]` (default: shutdown).
# Builds the bench in the `profiling` profile (release + line tables) with frame pointers,
# in target/profiling, records it with `perf record -g` (Debian: `apt-get install linux-perf`;
# as root, or with kernel.perf_event_paranoid <= 1), and prints the hottest call chains.
# The recording stays in target/profiling/<bench>.perf.data for `perf report -i`.
# `BENCH_ONLY=1 BENCH_RUNS=200 scripts/profile-bench.sh shutdown`: one shutdown row, profiled.
set -euo pipefail
cd "$(dirname "$0")/.."
bench=${1:-shutdown}
shift || true
[ "${1:-}" = "--" ] && shift
export CARGO_TARGET_DIR=target/profiling
export RUSTFLAGS="-C force-frame-pointers=yes"
bin=$(cargo bench --profile profiling --bench "$bench" --no-run --message-format=json 2>/dev/null |
  python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and "bench" in m["target"]["kind"]:
        print(m["executable"])' | tail -1)
[ -n "$bin" ] || { echo "could not build bench $bench" >&2; exit 1; }
data=target/profiling/$bench.perf.data
if [ "$bench" = shutdown ]; then
  # Only the shutdowns: the bench tells perf (paused, -D -1) to record from each quit to its
  # process-wide check, over every CPU (the sandbox's thread and the kernel's TCP work too).
  ctl=$(mktemp -d)/perf
  mkfifo "$ctl" "$ctl.ack"
  PERF_CTL=$ctl perf record -D -1 --control "fifo:$ctl,$ctl.ack" -a -e cpu-clock -g --call-graph fp \
    -F 20000 -o "$data" -- "$bin" --bench "$@"
  rm -r "$(dirname "$ctl")"
else
  perf record -g --call-graph fp -F 4999 -o "$data" -- "$bin" --bench "$@"
fi
perf report -i "$data" --no-children --stdio --percent-limit 1.5 2>/dev/null | head -120
