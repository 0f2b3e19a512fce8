#!/usr/bin/env bash
# Soak test (issues 7, 12): the real daemon under steady mixed load for MINUTES
# while a fake carbon goes through phases (up, refusing, resetting every
# connection mid-payload, accepting and never reading), then SIGTERM; checks that
# memory stays flat, that every counter unit sent reached carbon or is accounted
# for by the daemon's own stats, and that `published.lines` counts exactly the
# lines carbon confirmed.
#
#   scripts/soak.sh [MINUTES]          (default 10; fractions allowed)
#
# Load: `statsd-bench` (counters, gauges, timers, sets over 4000 names, 22-line
# datagrams) plus a small Python sender whose datagrams exercise the rest: sample
# rates, deltas, tags, multi-value lines, names that change every flush, one bad
# line each. Environment (optional): SOAK_RATE, statsd-bench lines per second
# (default 500000); SOAK_FEATURE_RATE, Python datagrams per second (default 1000);
# SOAK_WORKDIR, where the logs and the carbon capture are kept.
#
# The run and its checks are scripts/soak.py. Loopback only, every loop bounded
# by a deadline. Prints a report; exits 1 when a check fails, 2 on bad usage or
# when the daemon cannot be started.
set -euo pipefail

minutes=${1:-10}
if ! [[ $minutes =~ ^[0-9]+([.][0-9]+)?$ ]] || [[ $minutes =~ ^0+([.]0*)?$ ]]; then
    echo "usage: $0 [MINUTES]" >&2
    exit 2
fi
cd "$(dirname "$0")/.."
cargo build --release -p statsd -p statsd-bench --bin statsd --bin statsd-bench >&2
bin="${CARGO_TARGET_DIR:-$PWD/target}/release"
workdir=${SOAK_WORKDIR:-$(mktemp -d -t statsd-soak.XXXXXX)}
mkdir -p "$workdir"
echo "soak: ${minutes} min, logs in $workdir" >&2

exec python3 scripts/soak.py "$minutes" "$bin" "$workdir" "${SOAK_RATE:-500000}" "${SOAK_FEATURE_RATE:-1000}"
