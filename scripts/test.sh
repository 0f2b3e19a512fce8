#!/usr/bin/env bash
# The whole test suite, set-up included: installs the real peers the tests
# talk to (Debian's nsca, graphite-carbon, carbon-c-relay, python3-whisper, runit), then runs
# every test. Needs root (or sudo) for apt-get on a fresh Debian machine.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(nsca graphite-carbon carbon-c-relay python3-whisper runit python3 python3-venv procps adduser binutils)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update
  "${sudo_cmd[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
fi
# Debian's graphite-carbon may start a system carbon-cache; the tests run
# their own on free ports and need none of it.
command -v cargo-nextest >/dev/null || cargo install cargo-nextest --locked
# cargo-deb builds the .deb that contrib/test-deb.sh installs and runs.
command -v cargo-deb >/dev/null || cargo install cargo-deb --locked

# The real client libraries the dialect tests drive (tests/clients.rs), pinned:
# PyPI statsd and datadog in a venv, npm hot-shots and Etsy's statsd. Found by the tests under
# target/peers; a missing one fails its test, never skips it.
peers=target/peers
# The venv's own pip is bootstrapped offline by ensurepip, which the machine's
# pip settings (PIP_* variables, pip.conf) can break, so it runs without them.
# If that still fails, the venv is made without pip and pip is installed into it
# by the base interpreter's pip from the registry; ensurepip's error is shown.
make_venv() {
  local py unset_pip=()
  while IFS='=' read -r name _; do unset_pip+=(-u "$name"); done < <(env | grep '^PIP_' || true)
  for py in python3 /usr/bin/python3; do
    command -v "$py" >/dev/null || continue
    rm -rf "$peers/venv"
    env "${unset_pip[@]}" PIP_CONFIG_FILE=/dev/null "$py" -m venv "$peers/venv" && return 0
    echo "test.sh: '$py -m venv' failed; ensurepip says:" >&2
    env "${unset_pip[@]}" PIP_CONFIG_FILE=/dev/null "$peers/venv/bin/python3" -m ensurepip --default-pip >&2 || true
  done
  rm -rf "$peers/venv"
  python3 -m venv --without-pip "$peers/venv"
  python3 -m pip --python "$peers/venv/bin/python3" install --quiet pip
}
[ -x "$peers/venv/bin/pip" ] || make_venv
"$peers/venv/bin/python3" -m pip install --quiet --disable-pip-version-check statsd==4.0.1 datadog==0.56.0
command -v npm >/dev/null || { apt-get install -y --no-install-recommends npm; }
[ -f "$peers/node/node_modules/hot-shots/package.json" ] ||
  npm install --prefix "$peers/node" --no-audit --no-fund --loglevel=error hot-shots@17.1.1
# Etsy's statsd itself, for the differential tests (tests/etsy_differential.rs: its flush
# output; tests/mgmt_etsy.rs: its mgmt console;
# tests/proxy_etsy.rs: its proxy.js, with the hashring 3.2.0 it pins).
[ -f "$peers/node/node_modules/statsd/package.json" ] ||
  npm install --prefix "$peers/node" --no-audit --no-fund --loglevel=error statsd@0.9.0
# And for its own test suite (tests/etsy_suite.rs), with the
# nodeunit its package.json names and the modules its tests require.
[ -f "$peers/node/node_modules/statsd/test/graphite_tests.js" ] &&
  [ -f "$peers/node/node_modules/nodeunit/package.json" ] ||
  npm install --prefix "$peers/node" --no-audit --no-fund --loglevel=error \
    statsd@0.9.0 nodeunit@0.11.3 underscore@1.4.4 temp@0.4.0
# proxy.js needs hashring, an optional dependency of statsd: an install that
# omits optional packages prunes it.
[ -f "$peers/node/node_modules/hashring/package.json" ] ||
  { echo "test.sh: statsd's hashring is missing under $peers/node" >&2; exit 1; }

# --workspace: the load generator (bench/statsd-bench) is a package of its own.
cargo build --workspace --all-targets
# The Debian package: build, dpkg -i, run under runsv, purge (needs root).
if [ "$(id -u)" -eq 0 ]; then
  bash contrib/test-deb.sh
else
  sudo bash contrib/test-deb.sh
fi
# Every Rust test: unit, golden, property, black box against the real binary
# and the real peers (nsca, carbon, runit, Python's xmlrpc.client).
cargo nextest run --workspace --no-fail-fast "$@"
