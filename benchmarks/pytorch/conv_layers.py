#!/usr/bin/env python3
"""PyTorch's (oneDNN's) CPU convolutions layer by layer: the peer of `conv-profile` (docs/benchmarks.md).

Runs the same VGG training step as cpu_step.py (Debian's python3-torch) with oneDNN's verbose log on and prints, for
each distinct convolution shape, the milliseconds oneDNN reports for its forward, backward-data and backward-weights
primitives, per layer (a shape used by several layers is divided by their count), named like `conv-profile`'s rows
("c<C> k<K> @<H>"). oneDNN times each primitive itself, so the figures leave out PyTorch's reorders and everything
else in the step; logging adds a little. Compare with `conv-profile` run in the same window (the machine's speed
drifts), e.g.:

    python3 benchmarks/pytorch/conv_layers.py --batch 32 --threads 2
    dotnet run -c Release --project benchmarks/Dicc.Benchmarks -- conv-profile 32
"""
import argparse
import collections
import os
import re
import statistics
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cpu_step import build, onednn_verbose_lines  # noqa: E402  (the step and the log capture of the peer)

PROPAGATIONS = {"forward_training": "fwd", "backward_data": "data", "backward_weights": "filter"}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--depth", type=int, default=19)
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--steps", type=int, default=5, help="logged steps; each figure is the median over them")
    parser.add_argument("--memory-format", choices=["contiguous", "channels_last"], default="contiguous")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    fmt = torch.channels_last if args.memory_format == "channels_last" else torch.contiguous_format
    step = build(args.depth, args.width, args.batch, fmt, 0)

    for _ in range(3):
        step()
    per_step = []  # one {(c, k, h, propagation): (total ms, executions)} per logged step
    for _ in range(args.steps):
        found = collections.defaultdict(lambda: [0.0, 0])
        for line in onednn_verbose_lines(step):
            parts = line.split(",")
            # onednn_verbose,exec,cpu,convolution,<implementation>,<propagation>,...,<problem>,<ms>
            if len(parts) < 6 or parts[1] != "exec" or parts[3] != "convolution" or parts[5] not in PROPAGATIONS:
                continue
            shape = re.search(r"ic(\d+)oc(\d+)_ih(\d+)", parts[-2])
            if shape is None:
                continue
            key = (int(shape[1]), int(shape[2]), int(shape[3]), PROPAGATIONS[parts[5]])
            found[key][0] += float(parts[-1])
            found[key][1] += 1
        per_step.append(found)

    shapes = sorted({k[:3] for found in per_step for k in found}, key=lambda s: (-s[2], s[0], s[1]))
    print(f"PyTorch {torch.__version__}, oneDNN convolutions, {args.threads} thread(s), batch {args.batch}, "
          f"{args.memory_format}, median of {args.steps} steps; load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print(f"{'layer':<24} {'fwd ms':>8} {'data ms':>8} {'filter ms':>10} {'layers':>7}")
    total = 0.0
    for c, k, h in shapes:
        cells, layers = [], 0
        for prop in ("fwd", "data", "filter"):
            runs = [found[(c, k, h, prop)] for found in per_step if (c, k, h, prop) in found]
            if not runs:
                cells.append(f"{'-':>8}")
                continue
            layers = max(layers, runs[0][1])
            ms = statistics.median(t / n for t, n in runs)
            total += ms * runs[0][1]
            cells.append(f"{ms:8.2f}")
        print(f"{f'c{c} k{k} @{h}':<24} {cells[0]} {cells[1]} {cells[2]:>10} {layers:>7}")
    print(f"all convolutions of a step: {total:.1f} ms")


if __name__ == "__main__":
    main()
