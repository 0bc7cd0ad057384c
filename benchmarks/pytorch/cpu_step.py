#!/usr/bin/env python3
"""PyTorch's CPU training step, the peer of Dicc's `step-vs-pytorch` benchmark (benchmarks/Dicc.Benchmarks/StepVsPyTorch.cs).

Same model as ours (the FER VGG on 1x44x44, 7 classes, dicc_torch.main_network), same optimiser (SGD, momentum 0.9,
weight decay 5e-4), float32, random images and labels, torch.set_num_threads(--threads). The memory format is the
peer's best: with --memory-format auto (the default) both NCHW and channels_last are timed during warm-up, their
steps alternating, and the faster one is kept (channels_last runs oneDNN's NHWC convolutions; which wins depends on
the batch and the machine).

Runs as a server so that the two sides can alternate in short rounds without paying start-up each time: it prints one
JSON line when ready (versions, threads, memory format, the oneDNN convolution implementations it ran), then answers
each line "run N" on stdin with one JSON line of N per-step wall and process-CPU times, and "quit" with its peak
resident memory. Standalone timing: python3 cpu_step.py --batch 32 --threads 2 --standalone 10

The benchmark starts it with GLIBC_TUNABLES=glibc.malloc.mmap_threshold=4294967296:glibc.malloc.trim_threshold=17179869184
so that freed activations stay in the process instead of being page-faulted in again every step (about 1.8x faster
on the development machine; docs/benchmarks.md). Set the same when timing it standalone.
"""
import argparse
import json
import os
import re
import resource
import sys
import tempfile
import time

import torch
import torch.nn.functional as F

import dicc_torch


def build(depth, width, batch, memory_format, seed):
    torch.manual_seed(seed)
    model, _ = dicc_torch.main_network(depth, width, 7, 0.5)
    model = model.to(memory_format=memory_format)
    opt = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9, weight_decay=5e-4)
    x = torch.rand(batch, 1, 44, 44).contiguous(memory_format=memory_format)
    y = torch.randint(0, 7, (batch,))

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

    return step


def timed_steps(step, n):
    wall, cpu = [], []
    for _ in range(n):
        w, c = time.perf_counter(), time.process_time()
        step()
        cpu.append(time.process_time() - c)
        wall.append(time.perf_counter() - w)
    return wall, cpu


def onednn_verbose_lines(step):
    """Runs step() with oneDNN's verbose output on (written by the library to fd 1) and returns the log's lines."""
    sys.stdout.flush()
    saved = os.dup(1)
    with tempfile.TemporaryFile(mode="w+") as log:
        os.dup2(log.fileno(), 1)
        try:
            with torch.backends.mkldnn.verbose(torch.backends.mkldnn.VERBOSE_ON):
                step()
        finally:
            sys.stdout.flush()
            os.dup2(saved, 1)
            os.close(saved)
        log.seek(0)
        return log.read().splitlines()


def onednn_implementations(step):
    """Runs one step with oneDNN's verbose output on and returns the convolution implementations it names, e.g.
    ["jit:avx512_core"]."""
    found = set()
    for line in onednn_verbose_lines(step):
        parts = line.split(",")
        # onednn_verbose,exec,cpu,convolution,<implementation>,<propagation>,...
        if len(parts) > 4 and parts[0] in ("onednn_verbose", "dnnl_verbose") and parts[1] == "exec" and parts[3] == "convolution":
            found.add(parts[4])
    return sorted(found)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--depth", type=int, default=19)
    p.add_argument("--width", type=float, default=1.0)
    p.add_argument("--memory-format", choices=["auto", "contiguous", "channels_last"], default="auto")
    p.add_argument("--warmup", type=int, default=5, help="timed warm-up steps per memory format (alternating)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--standalone", type=int, default=0, help="time this many steps and print them, no server")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    rss_start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    formats = {"contiguous": torch.contiguous_format, "channels_last": torch.channels_last}
    candidates = list(formats) if a.memory_format == "auto" else [a.memory_format]
    steps = {name: build(a.depth, a.width, a.batch, formats[name], a.seed) for name in candidates}
    for name in candidates:
        timed_steps(steps[name], 1)
    # The formats' warm-up steps alternate, so that the machine's drift falls on both alike (timed one after the
    # other, a slow minute once made the slower format look faster).
    walls = {name: [] for name in candidates}
    for _ in range(a.warmup):
        for name in candidates:
            walls[name] += timed_steps(steps[name], 1)[0]
    trials = {name: sorted(w)[len(w) // 2] for name, w in walls.items()}
    chosen = min(trials, key=lambda n: trials[n])
    step = steps[chosen]
    del steps
    implementations = onednn_implementations(step)

    info = {
        "ready": True,
        "torch": torch.__version__,
        "onednn": None,
        "aten_cpu_capability": None,
        "threads": torch.get_num_threads(),
        "memory_format": chosen,
        "warmup_median_s": trials,
        "convolution_implementations": implementations,
        "rss_start_mib": rss_start,
    }
    config = torch.__config__.show()
    m = re.search(r"MKL-DNN v([0-9.]+)", config)
    if m:
        info["onednn"] = m.group(1)
    m = re.search(r"CPU capability usage: (\S+)", config)
    if m:
        info["aten_cpu_capability"] = m.group(1)

    if a.standalone:
        wall, cpu = timed_steps(step, a.standalone)
        info.update(wall_s=wall, cpu_s=cpu, peak_rss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                    load_average=os.getloadavg())
        print(json.dumps(info), flush=True)
        return

    print(json.dumps(info), flush=True)
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        if words[0] == "run":
            wall, cpu = timed_steps(step, int(words[1]))
            print(json.dumps({"wall_s": wall, "cpu_s": cpu}), flush=True)
        elif words[0] == "quit":
            break
    print(json.dumps({"peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}), flush=True)


if __name__ == "__main__":
    main()
