#!/usr/bin/env python3
"""Which panic paths can a function reach in a linked ARM ELF? A static call graph from the
disassembly.

Usage: panic_paths.py ELF ROOT_REGEX [ROOT_REGEX ...]

Functions are the ELF's function symbols (llvm-nm, with sizes); an edge F -> G is any branch
(`b`, `bl`, `b<cond>`, `cbz`, ...) in F whose immediate target lies in G. An indirect call
(`blx rN`) is reported, since it cannot be followed. Sinks are the panic entry points of `core`
(`core::panicking::*`, `*index*_fail`, `*unwrap_failed`, `*expect_failed`) and the panic handler
(`rust_begin_unwind`).

For every root (a function whose demangled name matches a ROOT_REGEX) prints every sink it can
reach, with one shortest call chain and the address of the branch into the sink. Exit status 0
if no root reaches a sink, 1 if one does, 2 on a usage error or if no root matches.
"""

import bisect
import re
import subprocess
import sys
from collections import deque

SINK = re.compile(
    r"core::panicking::|_index_fail|index::slice_index_fail|unwrap_failed|expect_failed"
    r"|rust_begin_unwind|core::result::unwrap|core::option::unwrap|panic_bounds_check"
)
BRANCH = re.compile(
    r"^\s*([0-9a-f]+):\s+(b|bl|blx|b\.w|b(?:eq|ne|cs|hs|cc|lo|mi|pl|vs|vc|hi|ls|ge|lt|gt|le)(?:\.w)?"
    r"|cbz|cbnz)\s+(?:r\d+,\s*)?0x([0-9a-f]+)"
)
INDIRECT = re.compile(r"^\s*([0-9a-f]+):\s+(blx|bx)\s+(r\d+|r1[0-2]|ip)\s*$")


def tool(*names):
    for n in names:
        try:
            subprocess.run([n, "--version"], capture_output=True, check=True)
            return n
        except (OSError, subprocess.CalledProcessError):
            continue
    sys.exit(f"panic_paths: none of {', '.join(names)} found")


def call_graph(elf):
    """The ELF's functions [(start, end, demangled name)], sorted, and its static call graph:
    edges {name: {callee: address of the first branch}}, indirect {name: [addresses]}."""
    nm = tool("llvm-nm", "llvm-nm-14")
    objdump = tool("llvm-objdump", "llvm-objdump-14")

    funcs = []  # (start, end, name)
    out = subprocess.run([nm, "-S", "-C", "--defined-only", elf], capture_output=True, text=True, check=True)
    for line in out.stdout.splitlines():
        parts = line.split(maxsplit=3)
        if len(parts) == 4 and parts[2] in "tTwW":
            start, size = int(parts[0], 16) & ~1, int(parts[1], 16)
            if size:
                funcs.append((start, start + size, parts[3]))
    funcs.sort()
    starts = [f[0] for f in funcs]

    def owner(addr):
        i = bisect.bisect_right(starts, addr) - 1
        if i >= 0 and funcs[i][0] <= addr < funcs[i][1]:
            return funcs[i][2]
        return None

    edges = {}  # name -> {callee: address of the first branch}
    indirect = {}  # name -> [addresses]
    dis = subprocess.run([objdump, "-d", "--no-show-raw-insn", elf], capture_output=True, text=True, check=True)
    for line in dis.stdout.splitlines():
        m = BRANCH.match(line)
        if m:
            at, target = int(m.group(1), 16), int(m.group(3), 16)
            src, dst = owner(at), owner(target)
            if src and dst and src != dst:
                edges.setdefault(src, {}).setdefault(dst, at)
            continue
        m = INDIRECT.match(line)
        if m:
            at = int(m.group(1), 16)
            src = owner(at)
            if src:
                indirect.setdefault(src, []).append(at)
    return funcs, edges, indirect


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    elf, roots_re = sys.argv[1], [re.compile(r) for r in sys.argv[2:]]
    funcs, edges, indirect = call_graph(elf)

    roots = [f[2] for f in funcs if any(r.search(f[2]) for r in roots_re)]
    if not roots:
        print(f"panic_paths: no function matches {' or '.join(sys.argv[2:])}", file=sys.stderr)
        sys.exit(2)
    found = False
    for root in roots:
        prev = {root: None}
        queue = deque([root])
        while queue:
            f = queue.popleft()
            if SINK.search(f) and f != root:
                continue  # do not walk into the panic machinery itself
            for g in edges.get(f, {}):
                if g not in prev:
                    prev[g] = f
                    queue.append(g)
        reached = sorted(g for g in prev if SINK.search(g) and g != root)
        size = next(e - s for s, e, n in funcs if n == root)
        print(f"root: {root} ({size} bytes), reaches {len(prev) - 1} functions:")
        for g in sorted(prev):
            if g != root:
                print(f"    {g}")
        for f in sorted(prev):
            for at in indirect.get(f, []):
                print(f"  indirect call in {f} at 0x{at:x} (not followed)")
        if not reached:
            print("  no panic path")
        for sink in reached:
            found = True
            chain, f = [], sink
            while f is not None:
                chain.append(f)
                f = prev[f]
            chain.reverse()
            caller = chain[-2]
            print(f"  PANIC PATH to {sink} (branch at 0x{edges[caller][sink]:x} in {caller}):")
            for f in chain:
                print(f"      {f}")
    sys.exit(1 if found else 0)


if __name__ == "__main__":
    main()
