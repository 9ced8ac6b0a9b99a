#!/usr/bin/env bash
# Builds the sine firmware (src/bin/sine.rs: the model exported from `tinyrnn sine`) for Cortex-M
# and runs it under QEMU. The firmware compares each of the 70 samples it generates with the
# host's (src/golden.rs, written by `tinyrnn export --golden`) and exits 0 only if all are within
# 1e-5. Then the same for the int8 model (src/bin/sine_int8.rs, src/qmodel.rs, src/qgolden.rs
# from `tinyrnn quantize` and `export`): every sample the same f32 as the host's, bit for bit;
# then a 2-layer GRU(1 -> 16) x 2 + Linear (build.rs) in f32 (src/bin/gru2.rs: the core's
# `Model::step`, within 1e-5 of the host's) and int8 (src/bin/gru2_int8.rs: the core's
# `QStack::step`, bit for bit); then the kernels check (src/bin/kernels.rs). This script fails if a build fails, QEMU's exit
# status is not 0, or a firmware's last line is not "... firmware: ok". The kernels check runs the
# microcontroller kernels (`tinyrnn::kernels::mcu`, `tinyrnn::quant`'s dot products: asm inner
# loops on the Cortex-M4F) against their naive twins on the device, for shapes that take every
# path of the loops.
#
#   Cortex-M4F: thumbv7em-none-eabihf on qemu-system-arm -machine mps2-an386 -cpu cortex-m4
#   Cortex-M0:  thumbv6m-none-eabi    on qemu-system-arm -machine microbit (no FPU: soft float)
#
# Installs what it needs by package name if missing (Debian 12, root): rustc-web, cargo-web and
# rust-web-src (a Rust toolchain whose library sources match its compiler, for -Zbuild-std=core),
# qemu-system-arm, lld. Then prints the static panic-path analysis of one `step` (informational).
#
# Usage: embedded/firmware/run.sh [m4] [m0]     (default: both; ~1 min of apt, ~2 min per target
#        cold, seconds warm)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(m4 m0)
start=$SECONDS

echo "== firmware: system packages"
missing=()
for pkg in rustc-web cargo-web rust-web-src qemu-system-arm lld; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$pkg")
    fi
done
if [[ ${#missing[@]} -gt 0 ]]; then
    echo "installing: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
/usr/bin/rustc -V
/usr/bin/cargo -V
qemu-system-arm --version | head -n 1

# Debian's toolchain, scoped to these commands (exported, it would redirect the rustup cargo too).
# RUSTC_BOOTSTRAP=1 allows -Zbuild-std (see .cargo/config.toml) on a stable compiler.
# Run from this directory: cargo reads .cargo/config.toml (target, linker, build-std) from the
# current directory's ancestors, not from the manifest's.
fw_cargo() {
    cd "$here" && env -u RUSTFLAGS -u CARGO_BUILD_TARGET -u CARGO_TARGET_DIR \
        RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc RUSTC_BOOTSTRAP=1 \
        /usr/bin/cargo "$@" --locked --manifest-path "$here/Cargo.toml" --target-dir "$here/target"
}

# run_bin NAME TRIPLE BIN QEMU-ARGS...: builds BIN, runs it under QEMU, fails unless QEMU exits 0
# and the last line is "<what> firmware: ok" (prints the whole output for sine, its tail else).
run_bin() {
    local name="$1" triple="$2" bin="$3"
    shift 3
    local elf="$here/target/$triple/release/$bin" out rc=0
    echo "== firmware ($name): cargo build --release --bin $bin --target $triple"
    # --locked: if the core's dependencies changed, refresh the lock file with
    #   RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 /usr/bin/cargo update -p tinyrnn (in this directory)
    if ! fw_cargo build --release --bin "$bin" --target "$triple"; then
        echo "firmware ($name): FAILED: build of $bin" >&2
        return 1
    fi
    size -A "$elf" | awk '/^\.(vector_table|text|rodata|data|bss) /{ printf "%s %s  ", $1, $2 } END { print "" }'
    echo "== firmware ($name): qemu-system-arm $* -kernel $elf"
    out="$(timeout 120 qemu-system-arm "$@" -nographic -monitor none -serial none \
        -semihosting-config enable=on,target=native -kernel "$elf" 2>&1)" || rc=$?
    if [[ $bin == sine ]]; then printf '%s\n' "$out"; else printf '%s\n' "$out" | tail -n 4; fi
    if [[ $rc -ne 0 ]]; then
        echo "firmware ($name): FAILED: $bin: QEMU exited with status $rc (device output differs from the host's, a panic, or a timeout)" >&2
        return 1
    fi
    if [[ "$(printf '%s\n' "$out" | tail -n 1)" != *" firmware: ok" ]]; then
        echo "firmware ($name): FAILED: $bin did not end with '... firmware: ok'" >&2
        return 1
    fi
}

# The f32 sine model (within 1e-5 of the host), the int8 one (bit for bit), the 2-layer GRU in
# f32 and int8 (likewise), and the kernels' own check on the device (src/bin/kernels.rs: every
# path of the inner loops).
run_target() {
    local name="$1" triple="$2" t0=$SECONDS
    shift 2
    for bin in sine sine_int8 gru2 gru2_int8 kernels; do
        run_bin "$name" "$triple" "$bin" "$@" || return 1
    done
    echo "firmware ($name): passed in $((SECONDS - t0)) s"
}

for t in "${targets[@]}"; do
    case "$t" in
        m4) run_target "Cortex-M4F" thumbv7em-none-eabihf -machine mps2-an386 -cpu cortex-m4 ;;
        m0) run_target "Cortex-M0" thumbv6m-none-eabi -machine microbit ;;
        *) echo "usage: $0 [m4] [m0]" >&2; exit 2 ;;
    esac
done

echo "== firmware: panic paths reachable from one step (static call graph; informational)"
python3 "$here/panic_paths.py" "$here/target/thumbv7em-none-eabihf/release/sine" \
    'LstmModel<.*>>::step$' 'sine::__cortex_m_rt_main::\{closure#0\}$' || true

echo "firmware: ${targets[*]} passed in $((SECONDS - start)) s"
