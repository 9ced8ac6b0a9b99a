#!/usr/bin/env bash
# Proves that the tinyrnn core builds and runs with no std, no alloc and no libc: builds
# embedded/nostd-check (a #![no_std] #![no_main] static binary with its own _start and mem*
# functions, linked with -nostdlib) in release and dev, runs each, and fails if a build fails,
# the program exits non-zero, or it does not print "nostd-check: ok".
# The check compares the default (SIMD) kernels against the naive ones on a fixed LSTM model.
#
# Usage: embedded/nostd-check/run.sh        (from any directory; ~30 s cold, ~1 s warm)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
manifest="$here/Cargo.toml"
target_dir="$here/target" # keep artifacts inside this crate, whatever CARGO_TARGET_DIR says
start=$SECONDS

run_profile() {
    local profile="$1" dir="$2"
    echo "== nostd-check: cargo build --profile $profile"
    # --locked: the committed Cargo.lock must match. If the core's dependencies changed, refresh
    # it with: cargo update --manifest-path embedded/nostd-check/Cargo.toml -p tinyrnn
    if ! cargo build --locked --manifest-path "$manifest" --target-dir "$target_dir" \
        --profile "$profile"; then
        echo "nostd-check: FAILED: build ($profile). The core (or a dependency) may be using std," >&2
        echo "  alloc or libc, or embedded/nostd-check/Cargo.lock is stale (see run.sh)." >&2
        return 1
    fi
    local bin="$target_dir/$dir/nostd-check" out rc=0
    echo "== nostd-check: run $bin"
    out="$("$bin")" || rc=$?
    printf '%s\n' "$out"
    if [[ $rc -ne 0 ]]; then
        echo "nostd-check: FAILED: $profile binary exited with status $rc" >&2
        return 1
    fi
    if [[ "$(printf '%s\n' "$out" | tail -n 1)" != "nostd-check: ok" ]]; then
        echo "nostd-check: FAILED: $profile binary did not print 'nostd-check: ok'" >&2
        return 1
    fi
}

run_profile release release
run_profile dev debug
echo "nostd-check: release and dev passed in $((SECONDS - start)) s"
