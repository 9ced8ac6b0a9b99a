#!/usr/bin/env bash
# Instructions per recurrent step on Cortex-M under QEMU, with the step's code size, the
# firmware's flash and the step's stack. Prints one line per measurement, exactly:
#
#   bench target=<m4f|m0> model=<name> precision=<f32|int8> i=<I> h=<H> instructions_per_step=<N> macs=<M> step_code_bytes=<C> flash_bytes=<F> stack_bytes=<S>
#
# for each target, model shape (sine: LSTM I=1, H=32; classifier: I=28, H=128; gru_sine and
# gru_classifier: a GRU of those shapes; pseudo-random weights from build.rs) and precision (one
# bin per precision: src/bin/bench_<precision>.rs). The f32 GRU step is the run-time engine's
# `Model::step` (generic path: per-step matrix product, then the pointwise step; it includes the
# head, O·H MACs more); the f32 LSTM step is the typed `Lstm::step` (the mcu kernels, no head);
# int8 is `QLayer::step` for both (no head).
#
# Method (src/lib.rs `bench`): QEMU with `-icount shift=0` advances virtual time by 1 ns per guest
# instruction; SysTick runs from the processor clock (CSR = CLKSOURCE | ENABLE, RVR = 0xFFFFFF,
# 24-bit modular difference of CVR); its scale is calibrated by 1,000,000 iterations of a
# 3-instruction asm loop (75,000 ticks on mps2-an386: 40 instructions per tick); 100 steps, each
# timed on its own, summed, minus 100 timed calls of an empty closure, scaled, divided by 100.
# macs = G·H(I + H) (G = 4 for the LSTM, 3 for the GRU). These are instruction counts, not cycles (a VFMA takes 3 cycles on a
# Cortex-M4, a load 2).
#   step_code_bytes: sum of the symbol sizes (llvm-nm -S) of `bench_<precision>::step` (an
#                    #[inline(never)] wrapper of the model's step) and of every function it reaches
#                    by direct branches (step_code.py, the call graph of panic_paths.py)
#   flash_bytes:     .vector_table + .text + .rodata of that ELF (size -A), weights included
#   stack_bytes:     the stack one step uses (firmware::stack_used: painted stack)
#
#   m4f: thumbv7em-none-eabihf on qemu-system-arm -machine mps2-an386 -cpu cortex-m4
#   m0:  thumbv6m-none-eabi    on qemu-system-arm -machine microbit (256K flash, 16K RAM). The
#        f32 classifier's 329 KB of weights do not fit the microbit (its int8 ones, 82 KB, do): that ELF (still thumbv6m, linked
#        with the 1M/64K map) runs on mps2-an386, whose Cortex-M4 executes the same ARMv6-M
#        instructions, so the count is the M0 code's (QEMU offers no Cortex-M0 board with more
#        memory). A note on stderr says so.
#
# Usage: embedded/firmware/bench.sh [m4f] [m0]     (default both; run.sh installs the packages)
# Adding a precision: a bin `bench_<p>` (listed in build.rs BENCH_BINS and Cargo.toml) and <p> in
# `precisions` below.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="$here/target/bench"
mkdir -p "$out"
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(m4f m0)
precisions=(f32 int8)
models=(sine classifier gru_sine gru_classifier)

# As run.sh: Debian's toolchain scoped to the command, run from this directory.
fw_cargo() {
    cd "$here" && env -u RUSTFLAGS -u CARGO_BUILD_TARGET -u CARGO_TARGET_DIR \
        RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc RUSTC_BOOTSTRAP=1 \
        /usr/bin/cargo "$@" --locked --manifest-path "$here/Cargo.toml" --target-dir "$here/target"
}

section() { size -A "$1" | awk -v s="$2" '$1 == s { print $2; found = 1 } END { if (!found) print 0 }'; }
field() { printf '%s\n' "$1" | tr ' ' '\n' | awk -F= -v k="$2" '$1 == k { print $2 }'; }

measure() {
    local target="$1" triple="$2" model="$3" precision="$4"
    shift 4
    local bin="bench_$precision" elf="$out/bench_$precision-$model-$target.elf" dev rc=0
    BENCH_MODEL="$model" fw_cargo build -q --release --bin "$bin" --target "$triple" >&2
    cp "$here/target/$triple/release/$bin" "$elf"
    dev="$(timeout 900 qemu-system-arm "$@" -icount shift=0 -nographic -monitor none -serial none \
        -semihosting-config enable=on,target=native -kernel "$elf" 2>&1)" || rc=$?
    dev="$(printf '%s\n' "$dev" | grep '^bench-device ' || true)"
    if [[ $rc -ne 0 || -z "$dev" ]]; then
        echo "bench: $target $model $precision: FAILED (QEMU status $rc)" >&2
        return 1
    fi
    local code flash
    code="$(python3 "$here/step_code.py" "$elf" "^$bin::step\$" 2>/dev/null)"
    flash=$(( $(section "$elf" .vector_table) + $(section "$elf" .text) + $(section "$elf" .rodata) ))
    echo "bench: $target $model $precision: SysTick calibration $(field "$dev" calibration_ticks) ticks for 3,000,000 instructions" >&2
    echo "bench target=$target model=$model precision=$precision i=$(field "$dev" i) h=$(field "$dev" h) instructions_per_step=$(field "$dev" instructions_per_step) macs=$(field "$dev" macs) step_code_bytes=$code flash_bytes=$flash stack_bytes=$(field "$dev" stack_bytes)"
}

for t in "${targets[@]}"; do
    for m in "${models[@]}"; do
        for p in "${precisions[@]}"; do
            case "$t/$m" in
                m4f/*) measure m4f thumbv7em-none-eabihf "$m" "$p" -machine mps2-an386 -cpu cortex-m4 ;;
                m0/*classifier) [[ $p == f32 ]] || { measure m0 thumbv6m-none-eabi "$m" "$p" -machine microbit; continue; }
                    echo "bench: m0 $m f32: its weights (LSTM 329 KB, GRU 248 KB) do not fit the microbit's 256K flash; the thumbv6m ELF runs on mps2-an386 (same ARMv6-M instructions)" >&2
                    measure m0 thumbv6m-none-eabi "$m" "$p" -machine mps2-an386 -cpu cortex-m4 ;;
                m0/*) measure m0 thumbv6m-none-eabi "$m" "$p" -machine microbit ;;
                *) echo "usage: $0 [m4f] [m0]" >&2; exit 2 ;;
            esac
        done
    done
done
