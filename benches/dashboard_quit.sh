#!/usr/bin/env bash
# How long `q` takes to give the shell back: the release binary in a detached 120x40 tmux
# pane on the embedded sandbox (3 s into the game), then KEYS sent one by one, GAP s apart
# (default 0.15, a quick second press; the gaps are part of the figure), the first being
# `q`; the time from the first key to the shell's `EXIT=` line, read from the pane every
# 10 ms. RUNS runs; each prints its figure and exit status.
# Usage: benches/dashboard_quit.sh [RUNS] [KEYS...]   (default: 5 q q; e.g. 5 q Enter Enter)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
shift || true
keys=("$@")
[ ${#keys[@]} -gt 0 ] || keys=(q q)
gap=${GAP:-0.15}
target=${CARGO_TARGET_DIR:-target}
cargo build --release --quiet
bin=$(mktemp -d)/singularis-tui
cp "$target/release/singularis-tui" "$bin"   # a private copy: the shared target dir can change under us
for run in $(seq "$runs"); do
  state=$(mktemp -d)
  sock="quit-$$-$run"
  tmux -L "$sock" new-session -d -x 120 -y 40 sh
  trap 'tmux -L "$sock" kill-server 2>/dev/null || true' EXIT
  tmux -L "$sock" send-keys -l "env XDG_STATE_HOME=$state $bin --mute --report $state/report.json --log-file $state/log; echo EXIT=\$?"
  tmux -L "$sock" send-keys Enter
  sleep 3
  t0=$(date +%s%N)
  for i in "${!keys[@]}"; do
    [ "$i" -eq 0 ] || sleep "$gap"
    tmux -L "$sock" send-keys "${keys[$i]}"
  done
  until tmux -L "$sock" capture-pane -p | grep -q '^EXIT='; do
    sleep 0.01
    if [ $(( ($(date +%s%N) - t0) / 1000000 )) -gt 30000 ]; then echo "no exit within 30 s" >&2; break; fi
  done
  t1=$(date +%s%N)
  status=$(tmux -L "$sock" capture-pane -p | grep '^EXIT=' | head -1)
  echo "run $run: ${keys[*]} -> shell in $(( (t1 - t0) / 1000000 )) ms ($status)"
  tmux -L "$sock" kill-server 2>/dev/null || true
done
