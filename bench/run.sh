#!/usr/bin/env bash
# One command benchmark: our statsd against Etsy's statsd 0.9.0, collectd's statsd
# plugin and the kernel floor (bench/floor), all unprivileged as deployed.
# bench/setup.sh installs the peers (run as root).
#
#   bench/run.sh                # full run (~15 min): 6 loads x 3 runs, 100k and 1M names
#   bench/run.sh --quick        # ~2 min: 3 loads x 1 run of 2 s, 100k names
#   bench/run.sh --servers etsy # some servers (ours,etsy,collectd,floor)
#   bench/run.sh --loads 20x4m,1x500k --reps 2 --duration 5 --no-names
#   bench/run.sh --ours-args '--workers 2' --output /tmp/B.md
#   bench/run.sh --quiet-cores 0.3 --quiet-wait 60   # wait longer for a quiet machine
#   python3 bench/compare.py --render-only target/bench/results.json  # redo the Markdown
#
# See `python3 bench/compare.py --help` for every flag. Writes BENCHMARKS.md and
# target/bench/results.json. Loopback only; every step is time-bounded.
set -euo pipefail
cd "$(dirname "$0")/.."

ETSY_DIR="${ETSY_DIR:-bench/.etsy}"
ETSY_DIR="$ETSY_DIR" bench/setup.sh

echo "[bench] building release binaries" >&2
# statsd-bench is a package of its own in the workspace (bench/statsd-bench).
timeout 1200 cargo build --release -p statsd -p statsd-bench --bin statsd --bin statsd-bench >&2

exec timeout 3600 python3 bench/compare.py \
    --etsy "$ETSY_DIR/node_modules/statsd/stats.js" "--argv=$*" "$@"
