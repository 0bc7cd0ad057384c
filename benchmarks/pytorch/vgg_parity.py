#!/usr/bin/env python3
"""One VGG19 training step in PyTorch from Dicc's weights, to compare with ours (Dicc.Benchmarks parity-export / parity-compare).

Reads DIR/checkpoint.safetensors (our model's initial state under PyTorch's names: the main network is
Sequential(backbone, Sequential(Dropout, Linear)) -> "0.<i>.weight", "1.1.weight"; DICC's mapping MLP
"mapping.<i>.weight") and DIR/inputs.safetensors (images, labels, and for DICC our pseudo-labels), runs the same
forward and backward without the optimiser step (training-mode BatchNorm, dropout 0, float32 without TF32), and
writes DIR/torch.safetensors with the tensors parity-export wrote for us: logits, losses, "grad.<name>" for every
parameter, and the BatchNorm running statistics after the step.

    python3 vgg_parity.py --dir DIR [--device cuda|cpu]
"""
import argparse
import os

import torch
import torch.nn.functional as F

import dicc_torch


def load_into(module, state, prefix=""):
    own = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix) and not k.startswith("optimizer.")
           and (prefix or k[:1].isdigit())}
    module.load_state_dict(own, strict=True)


def outputs(module, prefix, logits_name, logits, loss_name, loss):
    out = {logits_name: logits.detach(), loss_name: loss.detach().reshape(1)}
    for name, p in module.named_parameters():
        out["grad." + prefix + name] = p.grad.detach()
    for name, b in module.named_buffers():
        if name.endswith("running_mean") or name.endswith("running_var"):
            out[prefix + name] = b.detach()
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dir", required=True)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    a = p.parse_args()
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    state, _ = dicc_torch.load(os.path.join(a.dir, "checkpoint.safetensors"))
    inputs, meta = dicc_torch.load(os.path.join(a.dir, "inputs.safetensors"))
    dicc = meta.get("method") == "dicc"
    head = state["1.1.weight"]
    main_net, _ = dicc_torch.main_network(19, 1.0, head.shape[0], 0.0)
    load_into(main_net, state)
    main_net.to(a.device).train()
    x = inputs["images"].to(a.device)
    y = inputs["labels"].long().to(a.device)
    logits = main_net(x)
    if not dicc:
        loss = F.cross_entropy(logits, y)
        loss.backward()
        result = outputs(main_net, "", "logits", logits, "loss", loss)
    else:
        loss = F.cross_entropy(logits, inputs["pseudo_labels"].long().to(a.device))
        loss.backward()
        result = outputs(main_net, "", "subclass_logits", logits, "loss", loss)
        mapping = dicc_torch.mapping_network(head.shape[0], state["mapping.4.weight"].shape[0], state["mapping.0.weight"].shape[0])
        load_into(mapping, state, "mapping.")
        mapping.to(a.device).train()
        mapping_logits = mapping(F.softmax(logits.detach(), dim=1))
        mapping_loss = F.cross_entropy(mapping_logits, y)
        mapping_loss.backward()
        result.update(outputs(mapping, "mapping.", "mapping_logits", mapping_logits, "mapping_loss", mapping_loss))
    dicc_torch.save(os.path.join(a.dir, "torch.safetensors"), result,
                    {"backend": f"PyTorch {torch.__version__} on {a.device}"})
    print(f"vgg_parity.py: {len(result)} tensors written to {os.path.join(a.dir, 'torch.safetensors')}")


if __name__ == "__main__":
    main()
