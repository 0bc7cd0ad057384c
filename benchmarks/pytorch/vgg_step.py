#!/usr/bin/env python3
"""PyTorch's time for the training steps Dicc's `gpu-step` benchmark times (benchmarks/Dicc.Benchmarks/Gpu/GpuStep.cs).

Same model (the FER VGG19 on 1x44x44, 7 classes; DICC: subclass head K = 39 and the 128-wide mapping MLP), same
optimiser (SGD, momentum 0.9, weight decay 5e-4, lr 0.01), same fixed random batch, float32 without TF32 (as
ours), cudnn.benchmark on. Each configuration: warm-up steps, then CUDA events around --steps steps. Prints one
JSON object in gpu-step's layout.

    python3 vgg_step.py [--batches 32,256] [--steps 200] [--warmup 20] [--methods baseline,dicc] [--tf32] [--out FILE]
"""
import argparse
import json
import sys

import torch
import torch.nn.functional as F

import dicc_torch

SUBCLASSES = [4, 1, 6, 10, 8, 2, 8]  # GpuStep.Subclasses


def build(method, depth, width, device):
    k = sum(SUBCLASSES) if method == "dicc" else 7
    main, features = dicc_torch.main_network(depth, width, k, 0.5)
    main = main.to(device)
    parts = {"main": main, "main_opt": torch.optim.SGD(main.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)}
    if method == "dicc":
        mapping = dicc_torch.mapping_network(k, 7).to(device)
        parts.update(mapping=mapping, mapping_opt=torch.optim.SGD(mapping.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4),
                     clustering=dicc_torch.Clustering(SUBCLASSES, features, device=device))
    return parts


def step(parts, x, y):
    main, opt = parts["main"], parts["main_opt"]
    opt.zero_grad(set_to_none=True)
    if "mapping" not in parts:
        loss = F.cross_entropy(main(x), y)
        loss.backward()
        opt.step()
        return loss
    # DICC: phase 1 on pseudo-labels from the detached features, phase 2 on the detached subclass probabilities.
    features = main[0](x)
    logits = main[1](features)
    pseudo = parts["clustering"].assign(features.detach(), y)
    loss = F.cross_entropy(logits, pseudo)
    loss.backward()
    opt.step()
    mapping, mapping_opt = parts["mapping"], parts["mapping_opt"]
    mapping_opt.zero_grad(set_to_none=True)
    mapping_loss = F.cross_entropy(mapping(F.softmax(logits.detach(), dim=1)), y)
    mapping_loss.backward()
    mapping_opt.step()
    return loss


def timed(fn, steps):
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(steps):
        result = fn()
    end.record()
    end.synchronize()
    return start.elapsed_time(end) / steps, result


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batches", default="32,256")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--methods", default="baseline,dicc")
    p.add_argument("--depth", type=int, default=19)
    p.add_argument("--width", type=float, default=1.0)
    p.add_argument("--tf32", action="store_true", help="let cuDNN and cuBLAS use TF32 (PyTorch's own default for convolutions)")
    p.add_argument("--out")
    a = p.parse_args()
    if not torch.cuda.is_available():
        sys.exit("vgg_step.py: no CUDA device")
    device = "cuda"
    torch.backends.cudnn.benchmark = True
    torch.backends.cudnn.allow_tf32 = a.tf32
    torch.backends.cuda.matmul.allow_tf32 = a.tf32
    results = []
    for method in a.methods.split(","):
        for batch in (int(b) for b in a.batches.split(",")):
            torch.manual_seed(1)
            parts = build(method, a.depth, a.width, device)
            g = torch.Generator(device="cpu").manual_seed(2)
            x = torch.rand(batch, 1, 44, 44, generator=g).to(device)
            y = torch.randint(0, 7, (batch,), generator=g).to(device)
            for _ in range(a.warmup):
                step(parts, x, y)
            torch.cuda.synchronize()
            ms, loss = timed(lambda: step(parts, x, y), a.steps)
            r = {"method": method, "batch": batch, "ms_per_step": round(ms, 4), "images_per_second": round(batch / (ms / 1000), 1),
                 "final_loss": round(loss.item(), 5), "max_memory_mib": torch.cuda.max_memory_allocated() >> 20}
            if method == "dicc":
                features = parts["main"][0](x).detach()
                cluster_ms, _ = timed(lambda: parts["clustering"].assign(features, y), a.steps)
                r.update(cluster_ms=round(cluster_ms, 5), cluster_share_of_step=round(cluster_ms / ms, 5))
            print(f"vgg_step.py: {method} batch {batch}: {r['ms_per_step']} ms/step", file=sys.stderr)
            results.append(r)
            del parts
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
    out = {"engine": "pytorch", "torch": torch.__version__, "cudnn": torch.backends.cudnn.version(),
           "device": torch.cuda.get_device_name(0), "precision": "tf32 allowed" if a.tf32 else "float32, no TF32",
           "cudnn_benchmark": True, "depth": a.depth, "width": a.width, "steps": a.steps, "warmup": a.warmup, "results": results}
    text = json.dumps(out, indent=2)
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
