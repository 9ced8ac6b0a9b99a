#!/usr/bin/env bash
# Measures the firmware's footprint and prints it as the README's Markdown table:
#   flash        = .vector_table + .text + .rodata (+ .data's load image) of the linked ELF (`size -A`)
#   static RAM   = .data + .bss + .uninit
#   stack / step = bytes of stack one `model.step` call uses, measured on the device (QEMU) by
#                  painting the free stack and finding the lowest overwritten word (src/lib.rs)
#   params       = the exported `MODEL` static (its symbol size: the raw f32 parameter bytes)
# for the sine model (LSTM(1 -> 32) + Linear(32 -> 1), 256K/16K memory map) on Cortex-M4F and
# Cortex-M0, and an LSTM(28 -> 128) + Linear(128 -> 10) classifier (1M/64K map on mps2-an386),
# each with and without the `print` feature (semihosting output).
#
# Usage: embedded/firmware/run.sh && embedded/firmware/footprint.sh
# (run.sh installs the packages and builds the standard library once per target.)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="$here/target/footprint"
mkdir -p "$out"

# Run from this directory: cargo reads .cargo/config.toml (target, linker, build-std) from the
# current directory's ancestors, not from the manifest's.
fw_cargo() {
    cd "$here" && env -u RUSTFLAGS -u CARGO_BUILD_TARGET -u CARGO_TARGET_DIR \
        RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc RUSTC_BOOTSTRAP=1 \
        /usr/bin/cargo "$@" --locked --manifest-path "$here/Cargo.toml" --target-dir "$here/target"
}

# build BIN TRIPLE FEATURES-FLAG... -> copies the ELF to $out/BIN-TRIPLE-{print,noprint}
build() {
    local bin="$1" triple="$2" variant="$3"
    local flags=()
    [[ "$variant" == noprint ]] && flags=(--no-default-features)
    fw_cargo build -q --release --bin "$bin" --target "$triple" "${flags[@]}" >&2
    cp "$here/target/$triple/release/$bin" "$out/$bin-$triple-$variant"
}

section() { size -A "$1" | awk -v s="$2" '$1 == s { print $2; found = 1 } END { if (!found) print 0 }'; }
flash() { echo $(( $(section "$1" .vector_table) + $(section "$1" .text) + $(section "$1" .rodata) + $(section "$1" .data) )); }
ram() { echo $(( $(section "$1" .data) + $(section "$1" .bss) + $(section "$1" .uninit) )); }
params() { echo $((16#$(llvm-nm -S -C "$1" | awk '$4 ~ /::MODEL$/ { print $2 }'))); }
# An int8 model is a QModel of slices (its symbol is not its size): the firmware prints its bytes.
qparams() {
    local elf="$1"
    shift
    timeout 300 qemu-system-arm "$@" -nographic -monitor none -serial none \
        -semihosting-config enable=on,target=native -kernel "$elf" |
        awk '/^parameter bytes:/ { print $3 }'
}
stack() {
    local elf="$1"
    shift
    timeout 300 qemu-system-arm "$@" -nographic -monitor none -serial none \
        -semihosting-config enable=on,target=native -kernel "$elf" |
        awk '/^stack of one step:/ { print $5 }'
}

# Parameters of the int8 classifier (the same model as the f32 one's, one int8 weight each).
int8_count() { echo $((4 * 128 * (28 + 128 + 2) + 10 * 129)); }

rows=()
measure() {
    local label="$1" bin="$2" triple="$3" target_name="$4"
    shift 4
    build "$bin" "$triple" print
    build "$bin" "$triple" noprint
    local p="$out/$bin-$triple-print" n="$out/$bin-$triple-noprint"
    local pb fl fl_n st
    if [[ "$bin" == *int8 ]]; then pb=$(qparams "$p" "$@"); else pb=$(params "$p"); fi
    fl=$(flash "$p")
    fl_n=$(flash "$n")
    st=$(stack "$p" "$@")
    local np=$((pb / 4))
    [[ "$bin" == *int8 ]] && np="$(int8_count)"
    rows+=("| $label | $target_name | $np | $pb | $fl | $((fl - pb)) | $((fl_n - pb)) | $(ram "$p") | ${st:-?} |")
}

measure "sine: LSTM(1 -> 32) + Linear(32 -> 1)" sine thumbv7em-none-eabihf "Cortex-M4F (mps2-an386)" \
    -machine mps2-an386 -cpu cortex-m4
measure "sine: LSTM(1 -> 32) + Linear(32 -> 1)" sine thumbv6m-none-eabi "Cortex-M0 (microbit)" \
    -machine microbit
measure "classifier: LSTM(28 -> 128) + Linear(128 -> 10)" classifier thumbv7em-none-eabihf \
    "Cortex-M4F (mps2-an386, 1M/64K map)" -machine mps2-an386 -cpu cortex-m4
measure "classifier int8: LSTM(28 -> 128) + Linear(128 -> 10)" classifier_int8 thumbv7em-none-eabihf \
    "Cortex-M4F (mps2-an386)" -machine mps2-an386 -cpu cortex-m4
measure "classifier int8: LSTM(28 -> 128) + Linear(128 -> 10)" classifier_int8 thumbv6m-none-eabi \
    "Cortex-M0 (microbit)" -machine microbit

echo "| firmware | target | parameters | parameter bytes | flash | flash - parameters | flash - parameters, no printing | static RAM | stack of one step |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---:|"
printf '%s\n' "${rows[@]}"
