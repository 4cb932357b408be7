#!/usr/bin/env bash
# Idle CPU of a running dashboard: the release binary in a detached 120x40 tmux pane, the
# game paused with `p` (a quiet dashboard), CPU time from /proc/PID/stat (utime+stime) and
# per thread (the UI runs on the main thread) over SECONDS (default 30). Then `q`.
# Usage: benches/dashboard_idle_cpu.sh [SECONDS] [play]   ("play": measure without pausing)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-30}
mode=${2:-paused}
cargo build --release --quiet
bin=$(mktemp -d)/singularis-tui
cp target/release/singularis-tui "$bin"   # a private copy: the shared target dir can change under us
state=$(mktemp -d)
sock="idle-cpu-$$"
tmux -L "$sock" new-session -d -x 120 -y 40 \
  "exec env XDG_STATE_HOME=$state $bin --report $state/report.json --log-file $state/log"
trap 'tmux -L "$sock" kill-server 2>/dev/null || true' EXIT
pid=$(tmux -L "$sock" display-message -p '#{pane_pid}')
sleep 5
[ "$mode" = play ] || tmux -L "$sock" send-keys p
sleep 2
hz=$(getconf CLK_TCK)
ticks() { awk '{print $14+$15}' "$1"; }
t0=$(ticks /proc/$pid/stat); ui0=$(ticks /proc/$pid/task/$pid/stat)
sleep "$secs"
t1=$(ticks /proc/$pid/stat); ui1=$(ticks /proc/$pid/task/$pid/stat)
awk -v p=$((t1 - t0)) -v u=$((ui1 - ui0)) -v hz="$hz" -v s="$secs" -v m="$mode" 'BEGIN {
  printf "dashboard (%s), %d s: process %.2f%% of one core, UI thread %.2f%%\n", m, s, 100*p/hz/s, 100*u/hz/s }'
tmux -L "$sock" send-keys q
sleep 8
tmux -L "$sock" send-keys Space
sleep 1
grep -o '"sockets_open_after": [0-9]*' "$state/report.json"
