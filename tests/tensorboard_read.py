#!/usr/bin/env python3
"""Reads the TensorBoard event files under a directory with TensorBoard's own reader and prints
every scalar as `tag,step,value` lines (sorted), or exits 1 naming what it could not read.

    python3 tests/tensorboard_read.py DIR

Needs the `tensorboard` package (pip install tensorboard). Used by host/tests/tensorboard.rs when
that package is importable, and by hand: `tensorboard --logdir DIR` shows the same scalars.
"""
import sys

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    acc = EventAccumulator(sys.argv[1], size_guidance={"scalars": 0})
    acc.Reload()
    tags = acc.Tags().get("scalars", [])
    if not tags:
        print(f"{sys.argv[1]}: no scalars found", file=sys.stderr)
        return 1
    for tag in sorted(tags):
        for e in acc.Scalars(tag):
            print(f"{tag},{e.step},{e.value!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
