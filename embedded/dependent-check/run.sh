#!/usr/bin/env bash
# Proves that a crate depending on `tinyrnn` gets the fast kernels and the workspace's bits with
# no compile flags: builds embedded/dependent-check (outside the workspace) twice, with no
# rustflags at all and with `-C target-cpu=x86-64-v3`, runs both, and fails unless each prints
# "dependent-check: ok" (its hash at 8 and 16 lanes equals workload::EXPECTED, which
# tests/lane_width.rs checks inside the workspace) and the plain build really was compiled
# without AVX2 / FMA.
#
# No flags: CARGO_ENCODED_RUSTFLAGS, when set (even empty), overrides RUSTFLAGS and every
# config file's rustflags (cargo's documented precedence), so neither the environment nor any
# .cargo/config.toml above this directory can add a target-cpu.
#
# Usage: embedded/dependent-check/run.sh [--print] [--w1 STEPS]   (arguments go to both runs;
# ~1 min cold per build, ~1 s warm)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"
target_dir="$here/target" # keep artifacts inside this crate, whatever CARGO_TARGET_DIR says
start=$SECONDS

run() {
    local name="$1" flags="$2"
    shift 2
    echo "== dependent-check ($name): CARGO_ENCODED_RUSTFLAGS='$flags' cargo build --release"
    # --locked: the committed Cargo.lock must match. If the core's dependencies changed, refresh
    # it with: cargo update --manifest-path embedded/dependent-check/Cargo.toml -p tinyrnn
    if ! env -u RUSTFLAGS CARGO_ENCODED_RUSTFLAGS="$flags" cargo build --locked --release \
        --target-dir "$target_dir/$name"; then
        echo "dependent-check: FAILED: build ($name)" >&2
        return 1
    fi
    local out rc=0
    out="$("$target_dir/$name/release/dependent-check" "$@")" || rc=$?
    printf '%s\n' "$out"
    if [[ $rc -ne 0 || "$(printf '%s\n' "$out" | tail -n 1)" != "dependent-check: ok" ]]; then
        echo "dependent-check: FAILED: $name build (exit status $rc)" >&2
        return 1
    fi
    if [[ "$name" == plain ]] && ! grep -q "compiled with avx2=false fma=false" <<<"$out"; then
        echo "dependent-check: FAILED: the plain build was compiled with AVX2 / FMA enabled" >&2
        return 1
    fi
}

run plain "" "$@"
run x86-64-v3 "-Ctarget-cpu=x86-64-v3" "$@"
echo "dependent-check: both builds passed in $((SECONDS - start)) s"
