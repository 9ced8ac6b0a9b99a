#!/usr/bin/env bash
# Mutation testing of the core's numeric files with cargo-mutants (issue 16). Not part of CI: a
# full pass of every file below is ~2,000 mutants, each a rebuild and a run of the core's tests
# (tens of seconds on 2 cores), so it is a job of hours; pass a subset or a shard.
#
#   tests/mutants.sh                         every numeric file of the core
#   tests/mutants.sh core/src/cell/gru.rs    only these files
#   SHARD=0/7 tests/mutants.sh               one shard of seven (round-robin), as in issue 16
#
# Equivalent mutants (no result can change) are listed, with the reason, in
# .cargo/mutants.toml (`exclude_re`); any other missed mutant is a missing test. Results land
# in mutants.out/ (caught.txt, missed.txt, unviable.txt, timeout.txt; ignored by git).
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo-mutants >/dev/null || cargo install cargo-mutants --locked

files=("$@")
if [[ ${#files[@]} -eq 0 ]]; then
    files=(
        core/src/cell/lstm.rs core/src/cell/gru.rs core/src/cell/rnn.rs core/src/cell/mod.rs
        core/src/layer.rs core/src/stack.rs core/src/spec.rs
        core/src/lstm.rs core/src/rnn.rs core/src/model.rs core/src/linear.rs
        core/src/loss.rs core/src/optim.rs core/src/init.rs core/src/params.rs
        core/src/kernels/naive.rs
        core/src/quant/mod.rs core/src/quant/lstm.rs core/src/quant/gru.rs core/src/quant/rnn.rs
        core/src/quant/fixed.rs core/src/quant/dot.rs core/src/quant/quantize.rs
    )
fi
args=()
for f in "${files[@]}"; do args+=(--file "$f"); done
[[ -n "${SHARD:-}" ]] && args+=(--shard "$SHARD" --sharding round-robin)

# Mutants of the core only; its tests (see .cargo/mutants.toml for the test packages).
exec cargo mutants --package tinyrnn --no-shuffle "${args[@]}" --timeout-multiplier 3
