#!/usr/bin/env bash
# Usage: fuzz/run.sh [--dev] SECONDS [TARGET...]
#
# --dev: build without optimization (1.5 min instead of about 6 for every target on 2 cores; about
# 20x fewer executions per second): CI's short regression run. The long runs use the default.
#
# Builds the fuzz targets (cargo-fuzz: libFuzzer, AddressSanitizer, debug assertions and overflow
# checks on) and runs each TARGET (default: all of them) for SECONDS, one after the other, from a
# scratch copy of its seed corpus in fuzz/corpus/TARGET (the committed corpus does not grow).
# Prints per target the executions, the coverage (libFuzzer's cov: and ft:) and the crashes;
# exits non-zero if any target crashed, panicked, timed out (10 s for one input) or ran out of
# memory (2 GB resident, 1 GB for one allocation). A failing input is kept in
# fuzz/artifacts/TARGET/; rerun it with `RUSTC_BOOTSTRAP=1 cargo fuzz run TARGET FILE`.
#
# Needs cargo-fuzz (`cargo install cargo-fuzz --locked`); RUSTC_BOOTSTRAP=1 lets the stable
# compiler take the nightly flags it passes. Builds in $CARGO_TARGET_DIR if set, else fuzz/target.
set -euo pipefail
cd "$(dirname "$0")/.."

build=(--target-dir "${CARGO_TARGET_DIR:-fuzz/target}")
if [ "${1:-}" = --dev ]; then
    build+=(--dev)
    shift
fi
if [ $# -lt 1 ] || ! [[ $1 =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: fuzz/run.sh [--dev] SECONDS [TARGET...]  (SECONDS: a whole number >= 1)" >&2
    exit 2
fi
seconds=$1
shift
export RUSTC_BOOTSTRAP=1
fuzz=(cargo fuzz)
if [ $# -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <("${fuzz[@]}" list)
fi
for t in "${targets[@]}"; do
    [ -d "fuzz/corpus/$t" ] || { echo "fuzz/run.sh: no target or no seed corpus fuzz/corpus/$t" >&2; exit 2; }
done

echo "== building ${targets[*]}"
"${fuzz[@]}" build "${build[@]}"

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
failed=()
summary=()
for t in "${targets[@]}"; do
    mkdir -p "$scratch/$t/tmp" "fuzz/artifacts/$t"
    cp -r "fuzz/corpus/$t" "$scratch/$t/corpus"
    log="$scratch/$t/log"
    echo "== $t: ${seconds} s"
    status=0
    # TMPDIR: the targets that read a path write their scratch file there.
    TMPDIR="$scratch/$t/tmp" "${fuzz[@]}" run "${build[@]}" "$t" "$scratch/$t/corpus" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=1024 \
        -max_len=65536 -print_final_stats=1 -artifact_prefix="fuzz/artifacts/$t/" \
        >"$log" 2>&1 || status=$?
    # libFuzzer's last status line: "#EXECS DONE cov: C ft: F corp: ..." (or the last "#EXECS ...").
    last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
    execs=$(grep -oE 'stat::number_of_executed_units: [0-9]+' "$log" | grep -oE '[0-9]+$' || true)
    execs=${execs:-$(sed -nE 's/^#([0-9]+).*/\1/p' <<<"$last")}
    cov=$(grep -oE 'cov: [0-9]+' <<<"$last" | grep -oE '[0-9]+' || echo "?")
    ft=$(grep -oE 'ft: [0-9]+' <<<"$last" | grep -oE '[0-9]+' || echo "?")
    if [ "$status" -eq 0 ]; then
        crashes=0
    else
        kind=$(grep -m1 -oE 'ERROR: (libFuzzer|AddressSanitizer): [a-z -]+' "$log" || echo "exit status $status")
        artifact=$(sed -nE 's/.*Test unit written to ([^ ]+).*/\1/p' "$log" | head -1)
        crashes="1 ($kind; input: ${artifact:-none})"
        failed+=("$t")
        echo "-- last lines of libFuzzer's output:"
        tail -n 40 "$log"
    fi
    line="$t: ${execs:-?} executions in ${seconds} s, cov: $cov ft: $ft, crashes: $crashes"
    echo "$line"
    summary+=("$line")
done

echo "== summary"
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz/run.sh: ${#failed[@]} target(s) failed: ${failed[*]}" >&2
    exit 1
fi
