#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 300), on the stable toolchain.
#
#   fuzz/run.sh [SECONDS]
#
# Installs cargo-fuzz from crates.io if it is missing. Builds without a sanitizer
# (`--sanitizer none`): AddressSanitizer needs the unstable -Zsanitizer flag, and
# the code under test is safe Rust apart from one from_utf8_unchecked. Inputs that
# add coverage go to fuzz/corpus/<target> (kept between runs, not committed); a
# failing input goes to fuzz/artifacts/<target>/ and the script exits 1 after
# running the other targets. Seeds and past findings: tests/data/fuzz/<target>.
set -euo pipefail

seconds=${1:-300}
case $seconds in '' | *[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 2 ;; esac
cd "$(dirname "$0")"

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install --locked cargo-fuzz
fi

failed=()
for target in $(cargo fuzz list); do
    mkdir -p "corpus/$target"
    echo "== $target: ${seconds}s" >&2
    # -timeout: one input taking over 10 s is a hang; -rss_limit_mb: a leak.
    if ! cargo fuzz run --sanitizer none "$target" \
        "corpus/$target" "../tests/data/fuzz/$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -dict="dict/$target.dict" -print_final_stats=1; then
        failed+=("$target")
    fi
done

if ((${#failed[@]})); then
    echo "failed: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
echo "all targets ran ${seconds}s without a failure" >&2
