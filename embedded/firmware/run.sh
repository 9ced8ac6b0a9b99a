#!/usr/bin/env bash
# Builds the sine firmware (src/bin/sine.rs: the model exported from `tinyrnn sine`) for Cortex-M
# and runs it under QEMU. The firmware compares each of the 70 samples it generates with the
# host's (src/golden.rs, written by `tinyrnn export --golden`) and exits 0 only if all are within
# 1e-5; this script fails if a build fails, QEMU's exit status is not 0, or the last line is not
# "sine firmware: ok". Then runs src/bin/kernels.rs, which checks the microcontroller kernels
# (`tinyrnn::kernels::mcu`, on the Cortex-M4F an asm inner loop) against their naive twins on the
# device, for shapes that take every path of the loop; it must print "kernels firmware: ok".
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

run_target() {
    local name="$1" triple="$2"
    shift 2
    local elf="$here/target/$triple/release/sine" out rc=0 t0=$SECONDS
    echo "== firmware ($name): cargo build --release --bin sine --target $triple"
    # --locked: if the core's dependencies changed, refresh the lock file with
    #   RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 /usr/bin/cargo update -p tinyrnn (in this directory)
    if ! fw_cargo build --release --bin sine --target "$triple"; then
        echo "firmware ($name): FAILED: build" >&2
        return 1
    fi
    size -A "$elf" | awk '/^\.(vector_table|text|rodata|data|bss) /{ printf "%s %s  ", $1, $2 } END { print "" }'
    echo "== firmware ($name): qemu-system-arm $* -kernel $elf"
    out="$(timeout 120 qemu-system-arm "$@" -nographic -monitor none -serial none \
        -semihosting-config enable=on,target=native -kernel "$elf" 2>&1)" || rc=$?
    printf '%s\n' "$out"
    if [[ $rc -ne 0 ]]; then
        echo "firmware ($name): FAILED: QEMU exited with status $rc (device output differs from the host's, a panic, or a timeout)" >&2
        return 1
    fi
    if [[ "$(printf '%s\n' "$out" | tail -n 1)" != "sine firmware: ok" ]]; then
        echo "firmware ($name): FAILED: the firmware did not print 'sine firmware: ok'" >&2
        return 1
    fi
    # The kernels' own check on the device (src/bin/kernels.rs): every path of the inner loop.
    local kelf="$here/target/$triple/release/kernels"
    echo "== firmware ($name): kernels check (src/bin/kernels.rs)"
    if ! fw_cargo build --release --bin kernels --target "$triple"; then
        echo "firmware ($name): FAILED: build of the kernels check" >&2
        return 1
    fi
    rc=0
    out="$(timeout 120 qemu-system-arm "$@" -nographic -monitor none -serial none \
        -semihosting-config enable=on,target=native -kernel "$kelf" 2>&1)" || rc=$?
    printf '%s\n' "$out" | tail -n 2
    if [[ $rc -ne 0 || "$(printf '%s\n' "$out" | tail -n 1)" != "kernels firmware: ok" ]]; then
        echo "firmware ($name): FAILED: the kernels check (QEMU status $rc)" >&2
        return 1
    fi
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
