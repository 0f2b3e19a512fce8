#!/usr/bin/env bash
# Installs what bench/run.sh compares against (not needed by the test suite):
# Etsy's statsd 0.9.0 (npm), collectd's statsd plugin (Debian collectd-core),
# the unprivileged `statsd` system user the daemons run as (as deployed under
# runit's chpst -u statsd), and the kernel-floor receiver (bench/floor).
# Idempotent; run as root for the apt and user steps. Called by bench/run.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

ETSY_DIR="${ETSY_DIR:-bench/.etsy}"
if [ ! -f "$ETSY_DIR/node_modules/statsd/stats.js" ]; then
    echo "[bench setup] installing statsd@0.9.0 into $ETSY_DIR" >&2
    mkdir -p "$ETSY_DIR"
    # Optional deps (syslog, hashring) are native or unused by the graphite backend.
    timeout 300 npm install --prefix "$ETSY_DIR" --no-save --omit=optional \
        --no-audit --no-fund --loglevel=error statsd@0.9.0 >&2
fi

if [ "$(id -u)" = 0 ]; then
    if ! command -v collectd >/dev/null || [ ! -f /usr/lib/collectd/statsd.so ]; then
        echo "[bench setup] installing collectd-core" >&2
        DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y --no-install-recommends \
            collectd-core=5.12.0-14 >&2
    fi
    if ! id statsd >/dev/null 2>&1; then
        echo "[bench setup] adding the statsd system user" >&2
        adduser --system --group --no-create-home --home /nonexistent statsd >&2 ||
            useradd --system --user-group --no-create-home --shell /usr/sbin/nologin statsd
    fi
fi

mkdir -p target/floor
cc -O2 -Wall -Wextra -o target/floor/floor bench/floor/floor.c
