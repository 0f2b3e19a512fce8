#!/usr/bin/env bash
# Proxy throughput: `statsd --proxy` against Etsy's proxy.js (statsd 0.9.0),
# each in front of three counting fake aggregators (proxy-sink), loaded by
# statsd-bench at fixed rates. Per run: lines offered, lines delivered (and
# lost), the proxy's CPU seconds per million lines.
#
#   bench/proxy.sh                        # default rates, 5 s each
#   bench/proxy.sh --ours 1e6,2e6,3e6 --etsy 20e3,40e3 --duration 5
#
# Loopback only; every step is time-bounded. Prints one Markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."
ETSY_DIR="${ETSY_DIR:-target/peers/node}"
if [ ! -f "$ETSY_DIR/node_modules/statsd/proxy.js" ]; then
    timeout 300 npm install --prefix "$ETSY_DIR" --no-audit --no-fund --loglevel=error statsd@0.9.0 >&2
fi
timeout 1200 cargo build --release -p statsd -p statsd-bench \
    --bin statsd --bin statsd-bench --bin proxy-sink >&2
exec timeout 1800 python3 bench/proxy.py --proxy-js "$ETSY_DIR/node_modules/statsd/proxy.js" "$@"
