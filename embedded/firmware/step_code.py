#!/usr/bin/env python3
"""Bytes of code of one function and everything it can call, in a linked ARM ELF.

Usage: step_code.py ELF ROOT_REGEX

The root is the one function symbol whose demangled name matches ROOT_REGEX; the functions it
reaches are those of the static call graph of panic_paths.py (every direct branch `b`, `bl`,
`b<cond>`, `cbz`... whose target lies in another function symbol, followed transitively). Prints
the sum of their symbol sizes (`llvm-nm -S`: code and the literal pools inside them), root
included, on stdout, and the functions with their sizes on stderr. Exit status 2 if no function
or more than one matches, or if a reachable function makes an indirect call (not followed).
"""

import re
import sys
from collections import deque

from panic_paths import call_graph


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    elf, root_re = sys.argv[1], re.compile(sys.argv[2])
    funcs, edges, indirect = call_graph(elf)
    size = {}
    for start, end, name in funcs:
        size[name] = max(size.get(name, 0), end - start)
    roots = sorted({n for _, _, n in funcs if root_re.search(n)})
    if len(roots) != 1:
        print(f"step_code: {len(roots)} functions match {sys.argv[2]}: {roots}", file=sys.stderr)
        sys.exit(2)
    seen, queue = {roots[0]}, deque(roots)
    while queue:
        for g in edges.get(queue.popleft(), {}):
            if g not in seen:
                seen.add(g)
                queue.append(g)
    for f in sorted(seen, key=lambda n: -size[n]):
        print(f"  {size[f]:6d}  {f}", file=sys.stderr)
    if any(f in indirect for f in seen):
        print("step_code: an indirect call is reachable (not followed)", file=sys.stderr)
        sys.exit(2)
    print(sum(size[f] for f in seen))


if __name__ == "__main__":
    main()
