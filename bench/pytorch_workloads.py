#!/usr/bin/env python3
"""The workloads of WORKLOADS.md in PyTorch, the sgemm ceiling, and the side-by-side table.

Run by bench/compare.sh (which sets up the virtualenv); three modes:

  ceiling  [--reps 7]             2048^3 sgemm by numpy's OpenBLAS on 1 thread: GFLOP/s
  torch    [--workload W1,..]     PyTorch (CPU) train steps / batch-1 steps, JSON lines
           [--threads 1,2] [--steps 20] [--warmup 3] [--seed 0]
  table    RESULTS.jsonl          markdown table from the JSON lines of all three sources
           [--clock wall|cpu]     (cpu: 1-thread columns from thread CPU time, see below)

Definitions (the same as `tinyrnn bench`): a train step is forward over the whole sequence
(nn.LSTM / nn.GRU / nn.RNN, zero initial state) + nn.Linear head + loss, backward (BPTT), and one plain
SGD update of every parameter (torch.optim.SGD, lr 0.01, no momentum, no clipping); inputs
U(-1, 1), random targets, the same batch every step; the median over --steps steps after
--warmup steps; samples/s = B / median. W5a / W5b: nn.LSTMCell + nn.Linear, batch 1, under
torch.no_grad(), the state carried from step to step; ns per step = the median over blocks of
>= 5 ms. FLOPs per LSTM train step: 3 * 2 * 4H(I+H) * T * B; GRU: 3 * 2 * 3H(I+H) * T * B;
tanh RNN: 3 * 2 * H(I+H) * T * B; summed over layers and directions, a layer above the first
having input H (2H above a bidirectional layer).

W1g, W1s and W1b are W1 with nn.GRU, nn.LSTM(num_layers=2) and nn.LSTM(bidirectional=True)
(head Linear(2H, 10) on the last step's concatenated outputs, out[:, -1] in batch_first terms).
Their target (issue 13): each at least as far ahead of PyTorch as W1's row of the same run.

At 1 thread the CPU time of the (only) working thread per step is recorded too, by both sides
(time.thread_time here, CLOCK_THREAD_CPUTIME_ID in tinyrnn): on a machine busy with other work
the time slices lost to other processes do not count in it, so `table --clock cpu` gives the
steadier 1-thread comparison there. Wall-clock time is the definition of WORKLOADS.md.
"""

import argparse
import json
import os
import statistics
import sys
import time

LR = 0.01

# id -> (cell, I, H, O, T, B, head on every step?, loss, layers, bidirectional)
TRAIN = {
    "W1": ("lstm", 28, 128, 10, 28, 128, False, "ce", 1, False),
    "W2": ("lstm", 1, 32, 1, 100, 64, True, "mse", 1, False),
    "W2r": ("rnn", 1, 64, 1, 100, 64, True, "mse", 1, False),
    "W3": ("lstm", 10, 64, 10, 71, 32, True, "ce", 1, False),
    "W4": ("lstm", 1, 4, 2, 15, 5, True, "ce", 1, False),
    "W1g": ("gru", 28, 128, 10, 28, 128, False, "ce", 1, False),
    "W1s": ("lstm", 28, 128, 10, 28, 128, False, "ce", 2, False),
    "W1b": ("lstm", 28, 128, 10, 28, 128, False, "ce", 1, True),
}
W6_HIDDEN = (8, 16, 32, 64, 128, 256)
INFER = {"W5a": (1, 32, 1), "W5b": (28, 128, 10)}
# "all", in the order of `tinyrnn bench --workload all`.
ORDER = ["W1", "W2", "W2r", "W3", "W4", "W5a", "W5b", "W6", "W1g", "W1s", "W1b"]
# Table rows: the W1 variants right below W1, whose speed-up they are held to.
TABLE_ORDER = ["W1", "W1g", "W1s", "W1b", "W2", "W2r", "W3", "W4", "W5a", "W5b", "W6"]
GATES = {"lstm": 4, "gru": 3, "rnn": 1}


def workloads(arg):
    out = []
    for w in arg.split(","):
        w = w.strip()
        if w.lower() == "all":
            out += [x for x in ORDER if x not in out]
            continue
        match = [x for x in ORDER if x.lower() == w.lower()]
        if not match:
            sys.exit(f"unknown workload {w!r}; one of {', '.join(ORDER)}, all")
        if match[0] not in out:
            out.append(match[0])
    return out


def flops(cell, i, h, t, b, layers=1, bidirectional=False):
    """WORKLOADS.md's nominal FLOPs of a train step: 3 x the forward matrix products, summed over
    layers and directions (layer k > 0 reads D*H inputs)."""
    d = 2 if bidirectional else 1
    per_row = sum(d * GATES[cell] * h * ((i if k == 0 else d * h) + h) for k in range(layers))
    return 3.0 * 2.0 * per_row * t * b


# ---------------------------------------------------------------------------------------------
# ceiling


def ceiling(args):
    # Before numpy loads OpenBLAS: one thread.
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    import numpy as np

    try:  # also pin it at run time if threadpoolctl happens to be installed
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:
        pass
    n = 2048
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    c = np.empty((n, n), dtype=np.float32)
    np.matmul(a, b, out=c)  # warm-up
    rates, cpu_rates = [], []
    for _ in range(args.reps):
        c0, t0 = time.thread_time(), time.perf_counter()
        np.matmul(a, b, out=c)
        t1, c1 = time.perf_counter(), time.thread_time()
        rates.append(2.0 * n**3 / (t1 - t0) * 1e-9)
        cpu_rates.append(2.0 * n**3 / (c1 - c0) * 1e-9)
    blas = "?"
    try:
        cfg = np.show_config(mode="dicts")
        blas = cfg["Build Dependencies"]["blas"]["name"]
    except Exception:  # older numpy: no dict mode
        pass
    print(
        json.dumps(
            {
                "impl": "ceiling",
                "what": f"{n}^3 sgemm, numpy {np.__version__} ({blas}), 1 thread",
                "median_gflops": round(statistics.median(rates), 2),
                "max_gflops": round(max(rates), 2),
                "cpu_median_gflops": round(statistics.median(cpu_rates), 2),
                "reps": args.reps,
            }
        ),
        flush=True,
    )


# ---------------------------------------------------------------------------------------------
# torch


def torch_train(torch, name, cell, i, h, o, t, b, every, loss, layers, bidir, threads, args):
    nn, F = torch.nn, torch.nn.functional
    torch.set_num_threads(threads)
    torch.manual_seed(args.seed)
    shape = dict(num_layers=layers, bidirectional=bidir)
    if cell == "lstm":
        rnn = nn.LSTM(i, h, **shape)
    elif cell == "gru":
        rnn = nn.GRU(i, h, **shape)
    else:
        rnn = nn.RNN(i, h, nonlinearity="tanh", **shape)
    head = nn.Linear((2 if bidir else 1) * h, o)  # on the top layer's (concatenated) outputs
    opt = torch.optim.SGD(list(rnn.parameters()) + list(head.parameters()), lr=LR)
    x = torch.rand(t, b, i) * 2 - 1  # (T, B, I), time-major like nn.LSTM's default
    rows = t * b if every else b
    if loss == "ce":
        target = torch.randint(0, o, (rows,))
    else:
        target = torch.rand(rows, o) * 2 - 1

    def step():
        opt.zero_grad(set_to_none=True)
        out, _ = rnn(x)  # zero initial state
        z = head(out) if every else head(out[-1])  # out[-1]: (B, D*H), the last step
        z = z.reshape(rows, o)
        value = F.cross_entropy(z, target) if loss == "ce" else F.mse_loss(z, target)
        value.backward()
        opt.step()
        return value

    times, cpu = [], []
    for k in range(args.warmup + args.steps):
        c0, t0 = time.thread_time(), time.perf_counter()
        value = step()
        t1, c1 = time.perf_counter(), time.thread_time()
        if k >= args.warmup:
            times.append(t1 - t0)
            cpu.append(c1 - c0)
    if not torch.isfinite(value).item():
        sys.exit(f"{name}: PyTorch's loss is not finite")
    med = statistics.median(times)
    f = flops(cell, i, h, t, b, layers, bidir)
    extra = {"cpu_ms": round(statistics.median(cpu) * 1e3, 5)} if threads == 1 else {}
    return {
        "impl": "pytorch",
        "workload": name,
        "cell": cell,
        "layers": layers,
        "bidirectional": bidir,
        "I": i,
        "H": h,
        "O": o,
        "T": t,
        "B": b,
        "threads": threads,
        "samples": args.steps,
        "median_ms": round(med * 1e3, 5),
        "min_ms": round(min(times) * 1e3, 5),
        **extra,
        "samples_per_s": round(b / med, 1),
        "gflop_per_step": round(f * 1e-9, 6),
        "gflops": round(f * 1e-9 / med, 3),
    }


def torch_infer(torch, name, i, h, o, args):
    nn = torch.nn
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    cell = nn.LSTMCell(i, h)
    head = nn.Linear(h, o)
    xs = torch.rand(1024, 1, i) * 2 - 1
    state = [torch.zeros(1, h), torch.zeros(1, h)]

    def run(n):
        hx, cx = state
        t0 = time.perf_counter()
        for k in range(n):
            hx, cx = cell(xs[k % 1024], (hx, cx))
            y = head(hx)
        dt = time.perf_counter() - t0
        state[0], state[1] = hx, cx
        del y
        return dt

    with torch.no_grad():
        per_block = 16
        while run(per_block) < 5e-3 and per_block < 1 << 24:
            per_block *= 2
        times, cpu = [], []
        for k in range(args.warmup + args.steps):
            c0 = time.thread_time()
            dt = run(per_block) / per_block
            dc = (time.thread_time() - c0) / per_block
            if k >= args.warmup:
                times.append(dt)
                cpu.append(dc)
    return {
        "impl": "pytorch",
        "workload": name,
        "cell": "lstm",
        "I": i,
        "H": h,
        "O": o,
        "T": 1,
        "B": 1,
        "threads": 1,
        "samples": args.steps,
        "ns_per_step": round(statistics.median(times) * 1e9, 2),
        "min_ns": round(min(times) * 1e9, 2),
        "cpu_ns": round(statistics.median(cpu) * 1e9, 2),
        "per_block": per_block,
    }


def torch_mode(args):
    import torch

    print(
        f"# torch {torch.__version__}, mkldnn {torch.backends.mkldnn.is_available()}, "
        f"default threads {torch.get_num_threads()}",
        file=sys.stderr,
    )
    threads = [int(n) for n in args.threads.split(",")]
    for w in workloads(args.workload):
        if w in INFER:
            if 1 in threads:
                print(json.dumps(torch_infer(torch, w, *INFER[w], args)), flush=True)
            continue
        for n in threads:
            if w == "W6":
                for h in W6_HIDDEN:
                    shape = ("lstm", h, h, 1, 32, 32, False, "mse", 1, False)
                    r = torch_train(torch, w, *shape, n, args)
                    print(json.dumps(r), flush=True)
            else:
                print(json.dumps(torch_train(torch, w, *TRAIN[w], n, args)), flush=True)


# ---------------------------------------------------------------------------------------------
# table


def fmt_time(r):
    if r is None:
        return "-"
    if "ns_per_step" in r:
        ns = r["ns_per_step"]
        return f"{ns:.0f} ns" if ns < 10_000 else f"{ns / 1e3:.1f} us"
    ms = r["median_ms"]
    return f"{ms * 1e3:.1f} us" if ms < 1 else f"{ms:.2f} ms"


def speed(r):
    """Work per second: samples/s for training, steps/s for inference."""
    if r is None:
        return None
    if "ns_per_step" in r:
        return 1e9 / r["ns_per_step"]
    return r["samples_per_s"]


def ratio(a, b):
    sa, sb = speed(a), speed(b)
    return None if sa is None or sb is None else sa / sb


def x(v, digits=2):
    return "-" if v is None else f"{v:.{digits}f}x"


def pct(r, ceiling, threads=1):
    if r is None or ceiling is None or "gflops" not in r:
        return None
    return 100.0 * r["gflops"] / (ceiling * threads)


def p(v):
    return "-" if v is None else f"{v:.0f}%"


# W5b's weights, read once per step: LSTM 4H(I + H) + Linear H*10, f32 (the L2 bound's bytes).
W5B_BYTES = 4 * (4 * 128 * (28 + 128) + 10 * 128)


def l2_bound_pct(r, l2_gbps):
    """A batch-1 step's time at the L2 read bound (W5B_BYTES at `l2_gbps`) over its real time."""
    if r is None or not l2_gbps or "ns_per_step" not in r:
        return None
    return 100.0 * (W5B_BYTES / l2_gbps) / r["ns_per_step"]


def check(name, h, ours1, ours2, theirs1, ceiling, theirs2=None, w1=(None, None), peak=None, l2=None):
    """The issues' acceptance targets for this row: (text, met) pairs. `w1`: W1's speed-ups over
    PyTorch on the same run at 1 and 2 threads, the bar of the W1 variants (issue 13); `peak`:
    one core's FMA peak at the widest width, GFLOP/s; `l2`: its L2 read bandwidth, GB/s."""
    out = []
    r1 = ratio(ours1, theirs1)
    c1 = pct(ours1, ceiling)
    f1 = pct(ours1, peak)
    scale = ratio(ours2, ours1)

    def want(text, value, limit, higher=True):
        if value is not None:
            out.append((text, value >= limit if higher else value <= limit))

    if name == "W1":
        want(">=80% FMA peak", f1, 80.0)
        want(">=1.5x PyTorch", r1, 1.5)
        want("2t >=1.9x 1t", scale, 1.9)
    elif name in ("W1g", "W1s", "W1b"):
        for n, r, bar in ((1, r1, w1[0]), (2, ratio(ours2, theirs2), w1[1])):
            if bar is not None:
                want(f"{n}t speed-up >= W1's {bar:.2f}x ({x(r)})", r, bar)
    elif name in ("W2", "W3"):
        want(">=2x PyTorch", r1, 2.0)
    elif name == "W4":
        want(">=50x PyTorch", r1, 50.0)
    elif name == "W6" and h == 256:
        want(">=80% ceiling", c1, 80.0)
    elif name == "W5a":
        want(">=150x PyTorch", r1, 150.0)
    elif name == "W5b":
        want(">=70% of L2 bound", l2_bound_pct(ours1, l2), 70.0)
    return out


def on_cpu_clock(r):
    """A 1-thread record with its times replaced by the thread CPU times."""
    r = dict(r)
    if "cpu_ns" in r:
        r["ns_per_step"] = r["cpu_ns"]
    elif "cpu_ms" in r:
        r["median_ms"] = r["cpu_ms"]
        r["samples_per_s"] = r["B"] / (r["cpu_ms"] * 1e-3)
        r["gflops"] = r["gflop_per_step"] / (r["cpu_ms"] * 1e-3)
    else:
        return None
    return r


def table_mode(args):
    rows = []
    with open(args.results) as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    pass
    cpu = args.clock == "cpu"
    ceilings = [r for r in rows if r.get("impl") == "ceiling"]
    key = "cpu_median_gflops" if cpu else "median_gflops"
    ceilings = [r for r in ceilings if key in r]
    ceiling = statistics.median(r[key] for r in ceilings) if ceilings else None
    # The limits measured beside the workloads (bench/fma_peak.c, bench/l2_read.c), widest width.
    peaks = [max(r["avx2_gflops"], r["avx512_gflops"]) for r in rows if r.get("impl") == "fma_peak"]
    peak = statistics.median(peaks) if peaks else None
    l2s = [max(r["avx2_gbps"], r["avx512_gbps"]) for r in rows if r.get("impl") == "l2_read"]
    l2 = statistics.median(l2s) if l2s else None
    meta = [r for r in rows if r.get("impl") == "meta"]
    index = {}
    for r in rows:
        if r.get("impl") in ("tinyrnn", "pytorch"):
            if cpu:
                r = on_cpu_clock(r) if r["threads"] == 1 else None
                if r is None:
                    continue
            index[(r["impl"], r["workload"], r["H"], r["threads"])] = r  # the last one wins
    keys = []
    for r in rows:
        k = (r.get("workload"), r.get("H"))
        if r.get("impl") in ("tinyrnn", "pytorch") and k not in keys:
            keys.append(k)
    keys.sort(key=lambda k: (TABLE_ORDER.index(k[0]) if k[0] in TABLE_ORDER else 99, k[1]))

    cols = [
        "workload", "tinyrnn 1t", "PyTorch 1t", "tinyrnn samples/s", "PyTorch samples/s",
        "speed-up 1t", "tinyrnn % FMA peak", "tinyrnn % ceiling", "PyTorch % ceiling",
    ]
    if not cpu:
        cols += ["tinyrnn 2t", "PyTorch 2t", "speed-up 2t", "tinyrnn 2t/1t", "PyTorch 2t/1t"]
    cols.append("targets (issues 13, 14)")
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    missed = []
    w1 = tuple(
        ratio(index.get(("tinyrnn", "W1", 128, n)), index.get(("pytorch", "W1", 128, n))) for n in (1, 2)
    )
    for name, h in keys:
        g = lambda impl, n: index.get((impl, name, h, n))  # noqa: E731
        o1, o2, t1, t2 = g("tinyrnn", 1), g("tinyrnn", 2), g("pytorch", 1), g("pytorch", 2)
        label = f"W6 H{h}" if name == "W6" else name
        sp = lambda r: "-" if r is None or "samples_per_s" not in r else f"{r['samples_per_s']:,.0f}"  # noqa: E731
        targets = check(name, h, o1, o2, t1, ceiling, t2, w1, peak, l2)
        verdict = ", ".join(f"{t} {'ok' if ok else 'MISSED'}" for t, ok in targets)
        missed += [f"{label}: {t}" for t, ok in targets if not ok]
        cells = [
            label, fmt_time(o1), fmt_time(t1), sp(o1), sp(t1), x(ratio(o1, t1), 1),
            p(pct(o1, peak) if name != "W5b" else l2_bound_pct(o1, l2)) + (" of L2" if name == "W5b" and l2 else ""),
            p(pct(o1, ceiling)), p(pct(t1, ceiling)),
        ]
        if not cpu:
            cells += [
                fmt_time(o2), fmt_time(t2), x(ratio(o2, t2), 1), x(ratio(o2, o1)), x(ratio(t2, t1)),
            ]
        cells.append(verdict)
        print("| " + " | ".join(cells) + " |")
    print()
    clock = (
        "thread CPU time per step at 1 thread (time lost to other processes excluded)"
        if cpu
        else "wall-clock medians per step"
    )
    if ceiling is not None:
        c = ceilings[0]
        print(
            f"Ceiling: {c['what']}: median {ceiling:.1f} GFLOP/s per core by {'CPU' if cpu else 'wall'} time "
            f"(runs: {', '.join(str(r[key]) for r in ceilings)}). "
            "% ceiling = GFLOP/s at 1 thread / ceiling, FLOPs as in WORKLOADS.md."
        )
    print(
        f"Times: {clock} (train: forward + BPTT + plain SGD; W5: one batch-1 inference step). "
        "speed-up = tinyrnn samples/s / PyTorch samples/s (W5: steps/s)."
        + ("" if cpu else " 2t/1t = an implementation's 2-thread speed over its own 1-thread speed.")
    )
    if peak is not None:
        runs = ", ".join(
            f"AVX2 {r['avx2_gflops']} / AVX-512 {r['avx512_gflops']}" for r in rows if r.get("impl") == "fma_peak"
        )
        print(f"FMA peak (bench/fma_peak.c, widest width, best of 3 per run): {peak:.1f} GFLOP/s (runs: {runs}).")
    if l2 is not None:
        print(
            f"L2 read bandwidth (bench/l2_read.c, {W5B_BYTES:,} bytes = W5b's weights): {l2:.1f} GB/s, "
            f"so W5b's bound is {W5B_BYTES / l2:.0f} ns per step; W5b's \"% FMA peak\" cell is its % of that bound."
        )
    lanes = sorted({r["lanes"] for r in rows if r.get("impl") == "tinyrnn" and "lanes" in r})
    if lanes:
        print(f"tinyrnn SIMD kernels: {' and '.join(map(str, lanes))} lanes (from its JSON lines).")
    for m in meta:
        print(f"{m.get('what', '')}")
    if missed:
        print()
        print("Missed targets: " + "; ".join(missed) + ".")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="mode", required=True)
    c = sub.add_parser("ceiling", help="2048^3 sgemm GFLOP/s on 1 thread (numpy/OpenBLAS)")
    c.add_argument("--reps", type=int, default=7)
    t = sub.add_parser("torch", help="PyTorch workloads as JSON lines")
    t.add_argument("--workload", default="all")
    t.add_argument("--threads", default="1,2")
    t.add_argument("--steps", type=int, default=20)
    t.add_argument("--warmup", type=int, default=3)
    t.add_argument("--seed", type=int, default=0)
    m = sub.add_parser("table", help="markdown table from the JSON lines")
    m.add_argument("results")
    m.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    args = ap.parse_args()
    if args.mode == "ceiling":
        ceiling(args)
    elif args.mode == "torch":
        if args.steps < 1 or args.warmup < 0:
            sys.exit("--steps must be >= 1 and --warmup >= 0")
        torch_mode(args)
    else:
        table_mode(args)


if __name__ == "__main__":
    main()
