#!/usr/bin/python3
"""Writes tests/RetinaSharp.Tests/Fixtures/torchvision_v2/retinanet_v2_detections.json: the state_dict keys/shapes of
torchvision 0.14's retinanet_resnet50_fpn_v2 and the detections it computes on a real committed scene
(tests/RetinaSharp.Tests/Fixtures/images/fashion_scene.png) with make_model_fixtures.py's deterministic weights (FNV-1a
of the key, scaled per kind of tensor), which the test rebuilds bit for bit (nothing committed).

The model is the stock builder's: retinanet_resnet50_fpn_v2(weights=None, weights_backbone=None, num_classes=5,
min_size=160, max_size=256): GroupNorm(32) heads with bias-free convolutions, P6/P7 from C5 (LastLevelP6P7(2048, 256)),
an FPN without norm layers, nn.BatchNorm2d in the backbone (eval mode: running statistics).

It also writes, to a temporary folder only (not committed), a variant whose convolution weights are overlapping strided
views of small storages, saved by torch.save (1.5 MB instead of 130 MB), and its detections as strided_detections.
TorchSharp.PyBridge 1.4.4 refuses such files (it reads numel elements from the start of each storage); RetinaSharp's
own reader (src/RetinaSharp/IO/TorchSaveReader.cs) rebuilds every tensor from its storage, offset and stride, and
scripts/make_pth_fixtures.py commits small files of those layouts.
Run: /usr/bin/python3 scripts/make_v2_fixtures.py
"""
import json
import math
import os
import sys
import tempfile

import numpy as np
import torch
import torchvision
from torchvision.io import read_image
from torchvision.models.detection import retinanet_resnet50_fpn_v2

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_model_fixtures import fill, kind_scale_offset, uniform  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "tests", "RetinaSharp.Tests", "Fixtures", "torchvision_v2")
IMAGE = os.path.join(ROOT, "tests", "RetinaSharp.Tests", "Fixtures", "images", "fashion_scene.png")
NUM_CLASSES = 5
MIN_SIZE, MAX_SIZE = 160, 256
STRIDES = (5, 3, 1, 1)


def value(key, shape):
    if key.endswith("num_batches_tracked"):
        return torch.tensor(0, dtype=torch.int64)
    scale, offset = kind_scale_offset(key, shape)
    if len(shape) == 4:
        extent = sum((s - 1) * st for s, st in zip(shape, STRIDES)) + 1
        base = torch.from_numpy((uniform(key, extent) * scale + offset).astype(np.float32))
        return base.as_strided(shape, STRIDES)
    n = int(np.prod(shape)) if len(shape) else 1
    return torch.from_numpy((uniform(key, n) * scale + offset).astype(np.float32).reshape(shape))


def detect(model, sd, img):
    model.load_state_dict(sd, strict=True)
    model.eval()
    with torch.no_grad():
        det = model([img])[0]
    return {"boxes": det["boxes"].tolist(), "scores": det["scores"].tolist(), "labels": det["labels"].tolist()}


def main():
    torch.set_num_threads(2)
    os.makedirs(OUT, exist_ok=True)
    model = retinanet_resnet50_fpn_v2(weights=None, weights_backbone=None, num_classes=NUM_CLASSES,
                                      min_size=MIN_SIZE, max_size=MAX_SIZE)
    img = read_image(IMAGE).float() / 255.0
    keys = [[k, list(v.shape)] for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")]
    # 1. Contiguous deterministic weights (make_model_fixtures.py's formula; the test rebuilds them, nothing committed).
    plain = {k: (fill(k, tuple(v.shape)) if not k.endswith("num_batches_tracked") else torch.tensor(0))
             for k, v in model.state_dict().items()}
    det_plain = detect(model, plain, img)
    # 2. The strided variant (see the docstring), written by torch.save to a temporary folder.
    sd = {k: value(k, tuple(v.shape)) for k, v in model.state_dict().items()}
    pth = os.path.join(tempfile.mkdtemp(prefix="retinasharp-v2-"), "retinanet_v2_strided.pth")
    torch.save(sd, pth)
    det_strided = detect(model, torch.load(pth), img)
    meta = {
        "torchvision": torchvision.__version__,
        "builder": "retinanet_resnet50_fpn_v2",
        "num_classes": NUM_CLASSES, "min_size": MIN_SIZE, "max_size": MAX_SIZE,
        "image": "images/fashion_scene.png",
        "detections": det_plain,
        "strided_detections": det_strided,
        "state_dict": keys,
    }
    with open(os.path.join(OUT, "retinanet_v2_detections.json"), "w") as f:
        json.dump(meta, f, indent=1)
    for name, d in [("plain", det_plain), ("strided", det_strided)]:
        print(f"{name}: {len(d['scores'])} detections, top scores", [round(s, 4) for s in d["scores"][:5]], file=sys.stderr)
    print(f"{pth}: {os.path.getsize(pth)} bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
