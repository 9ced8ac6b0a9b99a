#!/usr/bin/env bash
# tinyrnn beside PyTorch on the workloads of WORKLOADS.md, in one run on this machine.
#
#   bench/compare.sh [--venv DIR] [--workload W1,W2,...|all] [--steps N] [--warmup N]
#                    [--threads 1,2] [--lanes auto|8] [--no-build] [--out FILE.jsonl]
#
# 1. A virtualenv OUTSIDE the repository (default $HOME/.cache/tinyrnn-bench-venv, or
#    $TINYRNN_BENCH_VENV, or --venv) with torch and numpy; created and filled by pip on first
#    use only, from PyPI (whose Linux torch wheel also pulls CUDA libraries, ~5 GB, unused here)
#    or from $TINYRNN_TORCH_INDEX, e.g. https://download.pytorch.org/whl/cpu for the CPU-only
#    wheel where that index is reachable. CI never runs this script.
# 2. cargo build --release -p host.
# 3. The limits, before and after the workloads: the 2048^3 sgemm of numpy's OpenBLAS on 1
#    thread (the sgemm ceiling), one core's FMA peak (bench/fma_peak.c) and its read bandwidth
#    from L2 over W5b's 324,608 bytes of weights (bench/l2_read.c), both built with gcc.
# 4. Per workload, PyTorch and then `tinyrnn bench --json`, each at 1 and 2 threads, so that the
#    two sides of a row run close together in time. tinyrnn uses its 16-lane AVX-512 kernels where
#    the CPU has them (as PyTorch's oneDNN does), or 8 lanes with --lanes 8.
# 5. Markdown tables (stdout, and FILE.md beside the raw JSON lines FILE.jsonl, default
#    runs/bench/compare-<date>.jsonl): wall clock, as WORKLOADS.md defines the numbers, and the
#    1-thread columns again by thread CPU time, which time slices lost to other processes do not
#    inflate. Re-render with: python bench/pytorch_workloads.py table [--clock cpu] FILE.jsonl
#
# The numbers are only as quiet as the machine: check `uptime` first.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
venv=${TINYRNN_BENCH_VENV:-$HOME/.cache/tinyrnn-bench-venv}
workload=all
steps=20
warmup=3
threads=1,2
lanes=auto
build=1
out=
torch_index=${TINYRNN_TORCH_INDEX:-}

usage() { sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; }
need() { [ $# -ge 2 ] || { echo "error: $1 needs a value" >&2; exit 2; }; }
while [ $# -gt 0 ]; do
    case $1 in
        --venv) need "$@"; venv=$2; shift 2 ;;
        --workload) need "$@"; workload=$2; shift 2 ;;
        --steps) need "$@"; steps=$2; shift 2 ;;
        --warmup) need "$@"; warmup=$2; shift 2 ;;
        --threads) need "$@"; threads=$2; shift 2 ;;
        --out) need "$@"; out=$2; shift 2 ;;
        --lanes) need "$@"; lanes=$2; shift 2 ;;
        --no-build) build=0; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "error: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done
case $lanes in auto|8) ;; *) echo "error: --lanes takes auto or 8" >&2; exit 2 ;; esac
for n in "$steps" "$warmup"; do
    case $n in ''|*[!0-9]*) echo "error: --steps and --warmup take whole numbers" >&2; exit 2 ;; esac
done

venv=$(mkdir -p "$venv" && cd "$venv" && pwd)
case "$venv/" in
    "$root"/*) echo "error: the virtualenv must live outside the repository ($venv)" >&2; exit 2 ;;
esac
py=$venv/bin/python
if [ ! -x "$py" ]; then
    echo "== creating virtualenv $venv" >&2
    python3 -m venv "$venv"
fi
if ! "$py" -c 'import torch, numpy' 2>/dev/null; then
    echo "== installing torch (CPU) and numpy into $venv" >&2
    "$py" -m pip install --quiet --upgrade pip
    if [ -n "$torch_index" ]; then
        "$py" -m pip install --quiet --index-url "$torch_index" torch
    else
        "$py" -m pip install --quiet torch
    fi
    "$py" -m pip install --quiet numpy
fi

cd "$root"
if [ "$build" = 1 ]; then
    echo "== cargo build --release -p host" >&2
    cargo build --release -p host >&2
fi
built=${CARGO_TARGET_DIR:-target}/release/tinyrnn  # cargo's own rule (relative: to the root)
case $built in /*) ;; *) built=$root/$built ;; esac
[ -x "$built" ] || { echo "error: $built not built (drop --no-build)" >&2; exit 1; }
# A private copy: a rebuild of the workspace during the run cannot swap the binary under it.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
bin=$tmp/tinyrnn
cp "$built" "$bin"

if [ -z "$out" ]; then
    mkdir -p runs/bench
    out=runs/bench/compare-$(date +%Y%m%d-%H%M%S).jsonl
fi
: > "$out"
script=$root/bench/pytorch_workloads.py
meta() { printf '{"impl":"meta","what":"%s"}\n' "$1" >> "$out"; }

cpuid() { grep -m1 "^$1" /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'; }
# Family and model tell the microarchitecture where a VM hides the name (AMD family 25 = Zen 3/4,
# 26 = Zen 5; Intel family 6, model 143 = Sapphire Rapids, 207 = Emerald Rapids).
meta "Machine: $(cpuid 'model name') (family $(cpuid 'cpu family'), model $(cpuid 'model\s')) x $(nproc); $("$py" -c 'import torch; print("torch", torch.__version__)'); $(rustc -V); load at start: $(cut -d' ' -f1-3 /proc/loadavg)."
gcc -O3 -funroll-loops "$root/bench/fma_peak.c" -o "$tmp/fma_peak"
gcc -O3 -funroll-loops "$root/bench/l2_read.c" -o "$tmp/l2_read"
limits() {
    echo "== limits: sgemm ceiling (2048^3, 1 thread), FMA peak, L2 read bandwidth" >&2
    "$py" "$script" ceiling | tee -a "$out" >&2
    "$tmp/fma_peak" --json | tee -a "$out" >&2
    "$tmp/l2_read" --json | tee -a "$out" >&2
}
limits

# Workload list in the bench's own order ("all" expanded).
if [ "$workload" = all ]; then workload=W1,W2,W2r,W3,W4,W5a,W5b,W6,W1g,W1s,W1b; fi
IFS=, read -r -a list <<< "$workload"
for w in "${list[@]}"; do
    echo "== $w: PyTorch" >&2
    "$py" "$script" torch --workload "$w" --threads "$threads" --steps "$steps" --warmup "$warmup" \
        | tee -a "$out" >&2
    echo "== $w: tinyrnn" >&2
    "$bin" bench --json --lanes "$lanes" --workload "$w" --threads "$threads" --steps "$steps" --warmup "$warmup" \
        | grep '^{' | tee -a "$out" >&2
done

limits
meta "Load at end: $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min; 2 cores)."

md=${out%.jsonl}.md
{
    echo "### Wall clock (the definition of WORKLOADS.md)"
    echo
    "$py" "$script" table "$out"
    echo
    echo "### 1 thread by thread CPU time (steadier on a busy machine)"
    echo
    "$py" "$script" table --clock cpu "$out"
} | tee "$md"
echo "== raw results: $out, table: $md" >&2
