#!/usr/bin/env python3
"""Issue 11's classes of bad input, tried against a built `tinyrnn` binary (outside CI: it
times kills and concurrent runs, which a busy CI machine would make flaky; the Rust test suites
check each class on their own).

usage: cargo build --release -p host && python3 tests/trust_attack.py target/release/tinyrnn

Each case runs the binary in a scratch directory with a time limit and checks: the exit code is
1 or 2 (never a signal: abort 134, kill), stderr is one line, inputs are unchanged, and no output
(or partial output) was left. Prints one line per case and a closing `N passed, N failed`.
"""
import hashlib
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time

BIN = os.path.abspath(sys.argv[1])
results = []


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def safetensors(path, tensors, metadata=None):
    """Writes a safetensors file: tensors = {name: (shape, [floats])}."""
    header = {}
    if metadata:
        header["__metadata__"] = metadata
    data = b""
    for name in sorted(tensors):
        shape, values = tensors[name]
        blob = struct.pack("<%df" % len(values), *values)
        header[name] = {"dtype": "F32", "shape": shape,
                        "data_offsets": [len(data), len(data) + len(blob)]}
        data += blob
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + data)


def lstm_model(path, i=1, h=2, o=1, extra=None, metadata=None, poison=None):
    t = {
        "lstm.weight_ih_l0": ([4 * h, i], [0.1 * (k % 7 - 3) for k in range(4 * h * i)]),
        "lstm.weight_hh_l0": ([4 * h, h], [0.05 * (k % 5 - 2) for k in range(4 * h * h)]),
        "lstm.bias_ih_l0": ([4 * h], [0.01 * k for k in range(4 * h)]),
        "lstm.bias_hh_l0": ([4 * h], [-0.02 * k for k in range(4 * h)]),
        "head.weight": ([o, h], [0.3] * (o * h)),
        "head.bias": ([o], [0.1] * o),
    }
    if extra:
        t.update(extra)
    if poison:
        name, value = poison
        t[name][1][0] = value
    safetensors(path, t, metadata)


def run(args, cwd, timeout=60):
    start = time.time()
    try:
        p = subprocess.run([BIN] + args, cwd=cwd, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, "", time.time() - start
    return p.returncode, p.stderr.decode(errors="replace"), time.time() - start


def case(name, ok, detail=""):
    results.append(ok)
    print(("ok   " if ok else "FAIL ") + name + ("" if ok else ": " + detail), flush=True)


def refused(name, args, cwd, must_not_exist=(), unchanged=(), mention=None, timeout=60):
    before = {p: sha(os.path.join(cwd, p)) for p in unchanged}
    code, err, secs = run(args, cwd, timeout)
    lines = [l for l in err.splitlines() if l.strip()]
    problems = []
    if code is None:
        problems.append("hang (no exit in %d s)" % timeout)
    elif code not in (1, 2):
        problems.append("exit %d" % code)
    if code is not None and len(lines) != 1:
        problems.append("stderr has %d lines: %r" % (len(lines), err[:300]))
    if mention and mention.lower() not in err.lower():
        problems.append("message does not mention %r: %r" % (mention, err[:200]))
    for p in must_not_exist:
        full = os.path.join(cwd, p)
        if os.path.exists(full):
            problems.append("%s was written" % p)
            shutil.rmtree(full) if os.path.isdir(full) else os.remove(full)
    for p, h in before.items():
        if sha(os.path.join(cwd, p)) != h:
            problems.append("input %s changed" % p)
    leftovers = [f for f in os.listdir(cwd) if f.startswith(".tmp")]
    if leftovers:
        problems.append("temporaries left: %s" % leftovers)
    case(name, not problems, "; ".join(problems))
    return err


def main():
    d = tempfile.mkdtemp(prefix="attack-")
    j = lambda *p: os.path.join(d, *p)
    lstm_model(j("m.safetensors"), metadata={"task": "sine"})
    lstm_model(j("m2.safetensors"), i=2)
    with open(j("x.csv"), "w") as f:
        f.write("x\n0.5\n-0.25\n1\n")

    # code injection
    evil = "sine\npub static EVIL: u8 = 1;\n//"
    for value, label in [(evil, "newline"), ("a\r\npub static EVIL: u8 = 1;", "CR LF"),
                         ("*/ pub static EVIL: u8 = 1; /*", "*/"), ('"\\\\"', "quote/backslash"),
                         ("\u2028pub static EVIL: u8 = 1;", "U+2028"), ("x" * 1_000_000, "1 MB")]:
        lstm_model(j("evil.safetensors"), i=1, metadata={"task": value, "cell": value, "head": value})
        code, err, _ = run(["export", "--model", "evil.safetensors", "--rust", "evil.rs"], d)
        src = open(j("evil.rs"), encoding="utf-8").read() if os.path.exists(j("evil.rs")) else ""
        bad = [l for l in src.splitlines() if "EVIL" in l and not l.lstrip().startswith("//")]
        case("injection via metadata (%s)" % label, code == 0 and not bad and len(src) < 200_000,
             "exit %s, %d code lines carry it, %d bytes" % (code, len(bad), len(src)))
        if os.path.exists(j("evil.rs")):
            os.remove(j("evil.rs"))

    # silent partial export / infer of files with unused tensors
    for extra in ["lstm.weight_ih_l1", "lstm.weight_ih_l0_reverse", "head.foo", "other"]:
        lstm_model(j("extra.safetensors"), extra={extra: ([8, 1], [0.0] * 8)})
        for cmd in (["export", "--model", "extra.safetensors", "--rust", "e.rs"],
                    ["infer", "--model", "extra.safetensors", "--input", "x.csv", "--output", "e.csv"]):
            refused("%s refuses unused tensor %s" % (cmd[0], extra), cmd, d,
                    must_not_exist=["e.rs", "e.csv"], mention=extra)

    # NaN / Inf weights
    for v, label in [(float("nan"), "NaN"), (float("inf"), "Inf")]:
        lstm_model(j("nan.safetensors"), poison=("lstm.weight_hh_l0", v))
        refused("infer refuses %s weights" % label,
                ["infer", "--model", "nan.safetensors", "--input", "x.csv", "--output", "n.csv"], d,
                must_not_exist=["n.csv"], mention="lstm.weight_hh_l0")
        refused("export refuses %s weights" % label,
                ["export", "--model", "nan.safetensors", "--rust", "n.rs"], d,
                must_not_exist=["n.rs"], mention="lstm.weight_hh_l0")

    # outputs over inputs
    ins = ["m.safetensors", "x.csv"]
    refused("infer --output = --input", ["infer", "--model", "m.safetensors", "--input", "x.csv",
                                         "--output", "x.csv"], d, unchanged=ins, mention="same file")
    refused("infer --output = ./--input", ["infer", "--model", "m.safetensors", "--input", "x.csv",
                                           "--output", "./x.csv"], d, unchanged=ins, mention="same file")
    refused("infer --output = --model", ["infer", "--model", "m.safetensors", "--input", "x.csv",
                                         "--output", "m.safetensors"], d, unchanged=ins, mention="same file")
    os.link(j("x.csv"), j("xlink.csv"))
    refused("infer --output = hard link of --input",
            ["infer", "--model", "m.safetensors", "--input", "x.csv", "--output", "xlink.csv"], d,
            unchanged=ins, mention="same file")
    refused("infer --state = --output (./)", ["infer", "--model", "m.safetensors", "--input", "x.csv",
                                              "--output", "y.csv", "--state", "./y.csv"], d,
            must_not_exist=["y.csv"], mention="same file")
    refused("export --rust = --golden", ["export", "--model", "m.safetensors", "--rust", "a.rs",
                                         "--golden", "./a.rs"], d, must_not_exist=["a.rs"],
            mention="same file")
    refused("export --rust = --model", ["export", "--model", "m.safetensors", "--rust",
                                        "m.safetensors"], d, unchanged=ins, mention="same file")

    # half-done commands
    refused("infer --state in a missing dir writes nothing",
            ["infer", "--model", "m.safetensors", "--input", "x.csv", "--output", "y.csv",
             "--state", "/nonexistent/s.csv"], d, must_not_exist=["y.csv"])
    refused("export --rust + failing --golden writes nothing",
            ["export", "--model", "m2.safetensors", "--rust", "a.rs", "--golden", "g.rs"], d,
            must_not_exist=["a.rs", "g.rs"])

    # aborts and hangs
    out = j("runs")
    for args in (["sine", "--batch", "4294967295"], ["sine", "--length", "4294967295"],
                 ["sine", "--test-curves", "4294967295"], ["echo", "--series-length", "18446744073709551615"],
                 ["memory", "--batch", "100000"], ["memory", "--batch", "100000", "--blanks", "10000"],
                 ["mnist", "--batch", "4294967295"]):
        refused("%s refused quickly" % " ".join(args), args + ["--out", out, "--quiet"], d,
                must_not_exist=["runs"], timeout=30)
    refused("export --generate 4294967295", ["export", "--model", "m.safetensors", "--golden", "g.rs",
                                             "--generate", "4294967295"], d, must_not_exist=["g.rs"],
            timeout=30)

    # meaningless values
    for args, flag in ((["sine", "--momentum", "-5"], "--momentum"),
                       (["sine", "--input-noise", "nan"], "--input-noise"),
                       (["sine", "--plot-curves", "100000"], "--plot-curves"),
                       (["sine", "--plot-curves", "0"], "--plot-curves"),
                       (["sine", "--lr", "-1"], "--lr"), (["sine", "--lr", "inf"], "--lr"),
                       (["sine", "--free-run", "1.5"], "--free-run"),
                       (["memory", "--mix", "nan"], "--mix"),
                       (["memory", "--forget-bias", "inf"], "--forget-bias"),
                       (["counter", "--target-mse", "-1"], "--target-mse"),
                       (["mnist", "--momentum", "1"], "--momentum")):
        err = refused(" ".join(args), args + ["--out", out], d, must_not_exist=["runs"], mention=flag)
        if "unexpected argument" in err:
            case(" ".join(args) + " reaches the validator", False, err.strip())

    # tampered checkpoints
    run_dir = j("ck")
    base = ["sine", "--hidden", "4", "--steps", "120", "--batch", "4", "--teacher-steps", "20",
            "--ramp", "50", "--test-curves", "4", "--plot-curves", "1", "--checkpoint-every", "50",
            "--quiet", "--out", run_dir]
    p = subprocess.Popen([BIN] + base, cwd=d, stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    ck = os.path.join(run_dir, "checkpoint.safetensors")
    deadline = time.time() + 60
    while p.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    raw = open(ck, "rb").read() if os.path.exists(ck) else b""
    if not raw:
        case("checkpoint written", False, "no checkpoint after a 120-update run with --checkpoint-every 50")
    else:
        n = struct.unpack("<Q", raw[:8])[0]
        header = json.loads(raw[8:8 + n])
        def rewrite(mutate, name):
            h = json.loads(json.dumps(header))
            mutate(h)
            hb = json.dumps(h).encode()
            hb += b" " * (-len(hb) % 8)
            bad = os.path.join(d, "bad-" + name)
            os.makedirs(bad, exist_ok=True)
            with open(os.path.join(bad, "checkpoint.safetensors"), "wb") as f:
                f.write(struct.pack("<Q", len(hb)) + hb + raw[8 + n:])
            return bad
        def past_end(h):
            h["__metadata__"]["update"] = "1000000"
        def empty_progress(h):
            h["__metadata__"]["progress"] = "[]"
        for mut, label in ((past_end, "update count past the end"), (empty_progress, "empty progress")):
            bad = rewrite(mut, label.replace(" ", "-"))
            refused("resume refuses a checkpoint with %s" % label,
                    base[:-2] + ["--resume", bad, "--out", os.path.join(d, "r-" + label[:5])], d)
        flipped = os.path.join(d, "bad-flip")
        os.makedirs(flipped, exist_ok=True)
        body = bytearray(raw)
        body[-3] ^= 0x40
        open(os.path.join(flipped, "checkpoint.safetensors"), "wb").write(bytes(body))
        refused("resume refuses a checkpoint with a flipped payload byte",
                base[:-2] + ["--resume", flipped, "--out", os.path.join(d, "r-flip")], d)
        trunc = os.path.join(d, "bad-trunc")
        os.makedirs(trunc, exist_ok=True)
        open(os.path.join(trunc, "checkpoint.safetensors"), "wb").write(raw[: len(raw) - 40])
        refused("resume refuses a truncated checkpoint",
                base[:-2] + ["--resume", trunc, "--out", os.path.join(d, "r-trunc")], d)

    # leftovers after SIGKILL: a temporary of a dead process is removed at the next start
    stale = os.path.join(run_dir, ".tmp-tinyrnn-2147483646-xyz")
    open(stale, "w").write("half")
    subprocess.run([BIN] + base[:-2] + ["--steps", "10", "--out", run_dir], cwd=d, capture_output=True)
    case("stale temporary of a killed run removed at start", not os.path.exists(stale), stale)

    # two runs mixed: a second run over the first's --out, killed early
    mix = j("mix")
    subprocess.run([BIN] + base[:-2] + ["--out", mix], cwd=d, capture_output=True)
    first = {f: sha(os.path.join(mix, f)) for f in os.listdir(mix) if os.path.isfile(os.path.join(mix, f))}
    p = subprocess.Popen([BIN] + base[:-2] + ["--steps", "100000", "--seed", "9", "--out", mix], cwd=d,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.5)
    p.send_signal(signal.SIGKILL)
    p.wait()
    now = {f: sha(os.path.join(mix, f)) for f in os.listdir(mix) if os.path.isfile(os.path.join(mix, f))}
    mixed = [f for f in now if f in first and now[f] == first[f] and f != "run.json"
             and not f.startswith(".")]
    kept = all(any(sha(os.path.join(root, f)) == h for root, _, fs in os.walk(mix) for f in fs
                   if f == name and root != mix) for name, h in first.items() if not name.startswith("."))
    case("a killed second run does not mix with the first", not mixed and kept,
         "first run's files still in --out: %s; first run kept aside: %s" % (mixed, kept))
    # concurrent runs
    a = subprocess.Popen([BIN] + base[:-2] + ["--steps", "100000", "--out", j("conc")], cwd=d,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    refused("a second concurrent run on one --out is refused",
            base[:-2] + ["--steps", "10", "--out", j("conc")], d)
    a.send_signal(signal.SIGKILL)
    a.wait()

    print("%d passed, %d failed" % (results.count(True), results.count(False)))
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
