#!/usr/bin/python3
"""Writes the torchvision-backbone fixture under tests/RetinaSharp.Tests/Fixtures/backbone/.

Reference: Debian's torchvision 0.14 (python3-torchvision). A torchvision resnet18 classification state_dict (keys
conv1, bn1, layer1..layer4, fc, as torch.hub caches resnet18-f37072fd.pth) is written by torch.save with random
weights, then gzip-compressed so the fixture stays small: a dense float32 ResNet-18 is 45 MB and random floats do
not compress, so each convolution / fc weight keeps 1 entry in DENSITY (the others are exactly 0), scaled so
activations stay of order 1; batch-norm affine parameters are random and the running statistics are the batch
statistics of the fixture input (one train-mode pass with momentum 1), so every tensor of every key matters.

Outputs: resnet18_random.pth.gz (the checkpoint), input.bin (2, 3, 64, 96) float32, c3.bin c4.bin c5.bin float32:
torchvision's IntermediateLayerGetter(resnet18(norm_layer=FrozenBatchNorm2d), {layer2, layer3, layer4}) on the
input after load_state_dict, and shapes.json.
Run: /usr/bin/python3 scripts/make_backbone_fixtures.py
"""
import gzip
import io
import json
import math
import os

import torch
import torchvision
from torchvision.models._utils import IntermediateLayerGetter
from torchvision.ops import misc

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "RetinaSharp.Tests", "Fixtures", "backbone")
DENSITY = 1 / 128


def main():
    os.makedirs(OUT, exist_ok=True)
    g = torch.Generator().manual_seed(11)
    model = torchvision.models.resnet18()
    x = torch.rand((2, 3, 64, 96), generator=g) * 4 - 2
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() >= 2:  # convolutions and fc.weight
                fan_in = p[0].numel()
                mask = (torch.rand(p.shape, generator=g) < DENSITY).float()
                p.copy_(torch.randn(p.shape, generator=g) * math.sqrt(2.0 / (fan_in * DENSITY)) * mask)
            elif name.endswith("weight"):  # batch-norm scale
                p.copy_(torch.rand(p.shape, generator=g) + 0.5)
            else:  # batch-norm shift, fc.bias
                p.copy_((torch.rand(p.shape, generator=g) - 0.5) * 0.6)
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.momentum = 1.0
        model.train()
        model(x)
    model.eval()
    sd = model.state_dict()
    buf = io.BytesIO()
    torch.save(sd, buf)
    with open(os.path.join(OUT, "resnet18_random.pth.gz"), "wb") as raw, \
            gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9, mtime=0, filename="") as f:
        f.write(buf.getvalue())

    frozen = torchvision.models.resnet18(norm_layer=misc.FrozenBatchNorm2d)
    frozen.load_state_dict(torch.load(io.BytesIO(buf.getvalue())))
    frozen.eval()
    body = IntermediateLayerGetter(frozen, return_layers={"layer2": "0", "layer3": "1", "layer4": "2"})
    with torch.no_grad():
        out = body(x)
    shapes = {"input": list(x.shape)}
    x.numpy().astype("<f4").tofile(os.path.join(OUT, "input.bin"))
    for i, name in enumerate(["c3", "c4", "c5"]):
        t = out[str(i)]
        t.numpy().astype("<f4").tofile(os.path.join(OUT, f"{name}.bin"))
        shapes[name] = list(t.shape)
        print(name, list(t.shape), "mean", float(t.mean()), "std", float(t.std()), "zero fraction", float((t == 0).float().mean()))
    shapes["torch"] = torch.__version__
    shapes["torchvision"] = torchvision.__version__
    with open(os.path.join(OUT, "shapes.json"), "w") as f:
        json.dump(shapes, f, indent=1)


if __name__ == "__main__":
    main()
