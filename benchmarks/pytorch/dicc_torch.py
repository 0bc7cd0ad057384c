"""Dicc's model and file format in PyTorch, shared by vgg_step.py and vgg_parity.py.

- The FER "VGG19" of Dicc.Engine/Models/Vgg.cs (conv3x3 pad 1 with bias + BatchNorm + ReLU blocks, five 2x2
  max-pools, flatten), the heads of Models/DiccModel.cs, and the DICC clustering step (interval mode) written the
  way a PyTorch user would write it.
- safetensors reading and writing with the standard library and torch only (the safetensors package is not
  needed): the format is an 8-byte header length, a JSON header, and the raw little-endian tensors.
"""
import json
import struct

import torch
from torch import nn

CONFIGS = {
    11: [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    13: [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    16: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    19: [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}


def backbone(depth=19, width=1.0, in_channels=1):
    """The layers of Vgg.Backbone, in the same order, so state_dict names match ours ("0.<i>.weight")."""
    layers, channels = [], in_channels
    for v in CONFIGS[depth]:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
            continue
        out = max(1, round(v * width))  # Python's round and C#'s Math.Round both round half to even
        layers += [nn.Conv2d(channels, out, 3, padding=1), nn.BatchNorm2d(out), nn.ReLU()]
        channels = out
    layers.append(nn.Flatten())
    return nn.Sequential(*layers), channels


def main_network(depth, width, outputs, dropout):
    """Sequential(backbone, Sequential(Dropout, Linear)): the baseline classifier, or DICC's backbone + subclass head."""
    features, f = backbone(depth, width)
    return nn.Sequential(features, nn.Sequential(nn.Dropout(dropout), nn.Linear(f, outputs))), f


def mapping_network(subclasses, classes, hidden=128):
    """DICC's label-mapping MLP K -> H -> H -> C ("mapping.<i>" in our checkpoints)."""
    return nn.Sequential(nn.Linear(subclasses, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, classes))


class Clustering:
    """The DICC clustering step (docs/method.md, interval mode): EMA class centres, distances, sub-interval pseudo-labels."""

    def __init__(self, counts, features, decay=0.99, device="cuda"):
        self.counts = torch.tensor(counts, device=device)
        self.offsets = torch.cumsum(self.counts, 0) - self.counts
        self.centers = torch.zeros(len(counts), features, device=device)
        self.seen = torch.zeros(len(counts), dtype=torch.bool, device=device)
        self.decay = decay

    @torch.no_grad()
    def assign(self, f, labels):
        c = self.centers.shape[0]
        n = torch.bincount(labels, minlength=c)
        sums = torch.zeros(c, f.shape[1], dtype=torch.float64, device=f.device).index_add_(0, labels, f.double())
        present = n > 0
        mean = sums / n.clamp(min=1).unsqueeze(1)
        blended = torch.where(self.seen.unsqueeze(1), self.decay * self.centers.double() + (1 - self.decay) * mean, mean)
        self.centers = torch.where(present.unsqueeze(1), blended.float(), self.centers)
        self.seen |= present
        d = (f.double() - self.centers.double()[labels]).norm(dim=1)
        largest = torch.zeros(c, dtype=torch.float64, device=f.device).scatter_reduce(0, labels, d, "amax")
        delta = (largest / self.counts)[labels]
        step = torch.where(delta > 0, torch.floor(d / torch.where(delta > 0, delta, 1.0)), 0.0)
        return self.offsets[labels] + torch.minimum(step.long(), self.counts[labels] - 1)


# ---- safetensors ----------------------------------------------------------------------------------------

_DTYPES = {"F32": torch.float32, "F64": torch.float64, "I32": torch.int32, "I64": torch.int64, "U8": torch.uint8,
           "I8": torch.int8, "I16": torch.int16, "BOOL": torch.bool}
_NAMES = {v: k for k, v in _DTYPES.items()}


def load(path):
    """(tensors by name, metadata) of a safetensors file."""
    with open(path, "rb") as f:
        raw = f.read()
    (length,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + length].decode("utf-8"))
    metadata = header.pop("__metadata__", {})
    base, tensors = 8 + length, {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        dtype = _DTYPES[info["dtype"]]
        data = bytearray(raw[base + begin:base + end])
        flat = torch.frombuffer(data, dtype=dtype) if data else torch.empty(0, dtype=dtype)
        tensors[name] = flat.reshape(info["shape"]).clone()
    return tensors, metadata


def _bytes(t):
    t = t.detach().to("cpu").contiguous()
    try:
        return t.numpy().tobytes()
    except (RuntimeError, TypeError):  # no NumPy: slower, still exact
        return bytes(t.reshape(-1).view(torch.uint8).tolist())


def save(path, tensors, metadata=None):
    """Writes tensors (name -> tensor) in the given order; the header is padded with spaces to 8 bytes."""
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for name, t in tensors.items():
        data = _bytes(t)
        header[name] = {"dtype": _NAMES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)
