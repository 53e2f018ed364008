#!/usr/bin/env bash
# Measures wfadmin on a large SQLite database: time from start to the first full
# workflows screen, key latency while scrolling, and peak memory (VmHWM).
#
#   tui/scripts/measure.sh [COUNT] [DB]      (defaults: 100000, /tmp/wfadmin-COUNT.db)
#
# Needs tmux and a built binary (cargo build -p llm-state-admin; honours CARGO_TARGET_DIR,
# or WFADMIN=/path/to/wfadmin).
set -euo pipefail
count=${1:-100000}
db=${2:-/tmp/wfadmin-$count.db}
bin=${WFADMIN:-${CARGO_TARGET_DIR:-$(dirname "$0")/../../target}/debug/wfadmin}
if [ ! -x "$bin" ]; then
    echo "binary not found: $bin (build it with cargo build -p llm-state-admin, or set WFADMIN)" >&2
    exit 1
fi
command -v tmux >/dev/null || { echo "tmux not found on PATH" >&2; exit 1; }
socket=wfadmin-measure-$$
tmux() { command tmux -L "$socket" "$@"; }
socket_path=${TMUX_TMPDIR:-/tmp}/tmux-$(id -u)/$socket
trap 'tmux kill-server 2>/dev/null || true; rm -f "$socket_path"' EXIT

if [ ! -f "$db" ]; then
    echo "seeding $count workflows into $db ..."
    /usr/bin/time -f "seeded in %e s" "$bin" --database-url "$db" demo --count "$count"
fi
wait_for() { # wait_for TEXT: polls the screen, prints milliseconds waited
    local start=$(date +%s%N)
    until tmux capture-pane -p -t m | grep -q -- "$1"; do
        sleep 0.01
        if (( ($(date +%s%N) - start) > 30000000000 )); then echo "timeout waiting for $1" >&2; exit 1; fi
    done
    echo $(( ($(date +%s%N) - start) / 1000000 ))
}

start=$(date +%s%N)
tmux new-session -d -s m -x 160 -y 45 "exec env -u DATABASE_URL $bin --database-url $db"
wait_for "refreshed" >/dev/null
first=$(( ($(date +%s%N) - start) / 1000000 ))
echo "first screen (process start to table with counts): ${first} ms"

selected() { tmux capture-pane -p -t m | grep -- '│> ' || true; }
key_latency() { # key_latency KEY: ms until the selected row changes after one key
    local before=$(selected) start=$(date +%s%N)
    tmux send-keys -t m "$1"
    until [ "$(selected)" != "$before" ]; do
        sleep 0.005
        if (( ($(date +%s%N) - start) > 5000000000 )); then echo "no change after 5 s"; return; fi
    done
    echo $(( ($(date +%s%N) - start) / 1000000 ))
}
echo "one key (j), redrawn: $(key_latency j) ms"
# Scroll 1,000 rows down, 20 per key: pages of 200 load in tasks as the end comes near.
for i in $(seq 1 50); do
    key_latency PageDown >/dev/null
done
echo "after scrolling 1,000 rows, one more key: $(key_latency j) ms"
tmux send-keys -t m Enter
detail=$(wait_for "Steps (")
echo "open a workflow's detail: ${detail} ms"
tmux send-keys -t m c
checkpoints=$(wait_for "Checkpoints of")
echo "open its checkpoints: ${checkpoints} ms"
pid=$(tmux display-message -p -t m '#{pane_pid}')
grep -E 'VmHWM|VmRSS' "/proc/$pid/status"
tmux send-keys -t m q q q
