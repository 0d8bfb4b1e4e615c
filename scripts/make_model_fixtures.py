#!/usr/bin/python3
"""Writes the RetinaNet parity fixtures under tests/RetinaSharp.Tests/Fixtures/model/.

Reference: Debian's torchvision 0.14 (python3-torchvision), RetinaNet with a ResNet-50-FPN backbone built as
retinanet_resnet50_fpn builds it for pretrained weights (FrozenBatchNorm2d, P6 from P5, 3 trainable stages),
num_classes=5, min_size=160, max_size=256, detections_per_img=100.

No weights are committed: every parameter and buffer is filled by the formula below, which
tests/RetinaSharp.Tests/Modeling/DeterministicWeights.cs reproduces bit for bit:

    h   = FNV-1a 32-bit hash of the UTF-8 state_dict key
    x_i = mix((i * 2654435761 + h) mod 2^32)  for flat element index i, with
          mix(x) = x ^= x >> 16; x = x * 0x45D9F3B mod 2^32; x ^= x >> 16
    u_i = x_i / 2^32 - 0.5                      (float64, in [-0.5, 0.5))
    value = float32(u_i * scale + offset), (scale, offset) by kind of tensor (see kind_scale_offset).

Input images are made the same way (key "image0", "image1", value = u + 0.5, in [0, 1)).
Run: /usr/bin/python3 scripts/make_model_fixtures.py
"""
import json
import math
import os
import sys

import numpy as np
import torch
import torchvision
from torchvision.models import resnet50
from torchvision.models.detection.retinanet import RetinaNet, _resnet_fpn_extractor
from torchvision.ops import misc
from torchvision.ops.feature_pyramid_network import LastLevelP6P7

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "RetinaSharp.Tests", "Fixtures", "model")
NUM_CLASSES = 5
MIN_SIZE, MAX_SIZE = 160, 256
IMAGE_SHAPES = [(3, 150, 200), (3, 180, 130)]


def fnv1a(key):
    h = 0x811C9DC5
    for b in key.encode("utf-8"):
        h ^= b
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def uniform(key, n):
    i = np.arange(n, dtype=np.uint64)
    x = (i * np.uint64(2654435761) + np.uint64(fnv1a(key))) & np.uint64(0xFFFFFFFF)
    x ^= x >> np.uint64(16)
    x = (x * np.uint64(0x45D9F3B)) & np.uint64(0xFFFFFFFF)
    x ^= x >> np.uint64(16)
    return x.astype(np.float64) / 4294967296.0 - 0.5


def kind_scale_offset(key, shape):
    if key.endswith("running_var"):
        return 0.5, 1.0
    if key.endswith("running_mean"):
        return 0.2, 0.0
    if len(shape) == 4:  # convolution weight: uniform with variance 2 / fan_in (He) times gain^2
        fan_in = shape[1] * shape[2] * shape[3]
        gain = 1.0
        if key.startswith("backbone.fpn."):
            gain = 0.2
        elif key.endswith("bbox_reg.weight"):
            gain = 0.2
        elif key.endswith("cls_logits.weight"):
            gain = 0.5
        return math.sqrt(24.0 / fan_in) * gain, 0.0
    if key.endswith("cls_logits.bias"):
        return 1.0, -4.0
    if key.endswith("bias"):
        return 0.2, 0.0
    if key.endswith("weight"):  # frozen batch norm scale
        return 0.4, 0.8
    raise ValueError(key)


def fill(key, shape):
    n = int(np.prod(shape)) if len(shape) else 1
    scale, offset = kind_scale_offset(key, shape)
    return torch.from_numpy((uniform(key, n) * scale + offset).astype(np.float32).reshape(shape))


def build_model():
    backbone = resnet50(weights=None, norm_layer=misc.FrozenBatchNorm2d)
    backbone = _resnet_fpn_extractor(backbone, 3, returned_layers=[2, 3, 4], extra_blocks=LastLevelP6P7(256, 256))
    model = RetinaNet(backbone, NUM_CLASSES, min_size=MIN_SIZE, max_size=MAX_SIZE, detections_per_img=100)
    sd = model.state_dict()
    with torch.no_grad():
        for k, v in sd.items():
            v.copy_(fill(k, tuple(v.shape)))
    return model


def image(i):
    shape = IMAGE_SHAPES[i]
    n = int(np.prod(shape))
    return torch.from_numpy((uniform(f"image{i}", n) + 0.5).astype(np.float32).reshape(shape))


def write_f32(name, t):
    t.detach().contiguous().numpy().astype("<f4").tofile(os.path.join(OUT, name))


def main():
    torch.set_num_threads(2)
    os.makedirs(OUT, exist_ok=True)
    model = build_model()
    images = [image(0), image(1)]

    # state_dict key/shape list of the stock constructor (minus BatchNorm's num_batches_tracked, which
    # FrozenBatchNorm2d drops, as in torchvision's pretrained models).
    stock = torchvision.models.detection.retinanet_resnet50_fpn(weights=None, weights_backbone=None, num_classes=NUM_CLASSES)
    keys = [[k, list(v.shape)] for k, v in stock.state_dict().items() if not k.endswith("num_batches_tracked")]
    ours = [[k, list(v.shape)] for k, v in model.state_dict().items()]
    assert keys == ours, "fixture model and stock retinanet_resnet50_fpn disagree on keys"

    # Transform + head outputs (eval).
    model.eval()
    with torch.no_grad():
        image_list, _ = model.transform(images)
        write_f32("batch.bin", image_list.tensors)
        features = list(model.backbone(image_list.tensors).values())
        head = model.head(features)
        write_f32("head_cls.bin", head["cls_logits"])
        write_f32("head_box.bin", head["bbox_regression"])
        detections = model(images)

    # Losses (train mode) for two target sets; the second image of set "one_empty" has no boxes.
    targets_sets = {
        "one_empty": [
            {"boxes": [[10.0, 20.0, 90.0, 100.0], [120.0, 30.0, 190.0, 140.0], [40.0, 60.0, 70.0, 80.0]], "labels": [1, 4, 0]},
            {"boxes": [], "labels": []},
        ],
        "both": [
            {"boxes": [[5.5, 7.25, 60.0, 49.0]], "labels": [2]},
            {"boxes": [[0.0, 0.0, 130.0, 180.0], [30.0, 100.0, 60.0, 170.0]], "labels": [3, 3]},
        ],
    }
    losses = {}
    model.train()
    for name, tset in targets_sets.items():
        for loss_type in ["l1", "smooth_l1", "giou"]:
            model.head.regression_head._loss_type = loss_type
            tt = [{"boxes": torch.tensor(t["boxes"], dtype=torch.float32).reshape(-1, 4),
                   "labels": torch.tensor(t["labels"], dtype=torch.int64)} for t in tset]
            with torch.no_grad():
                out = model([im.clone() for im in images], tt)
            losses[f"{name}/{loss_type}"] = {"classification": out["classification"].item(), "bbox_regression": out["bbox_regression"].item()}
    model.head.regression_head._loss_type = "l1"

    meta = {
        "torchvision": torchvision.__version__,
        "num_classes": NUM_CLASSES,
        "min_size": MIN_SIZE,
        "max_size": MAX_SIZE,
        "image_shapes": IMAGE_SHAPES,
        "batch_shape": list(image_list.tensors.shape),
        "image_sizes": [list(s) for s in image_list.image_sizes],
        "head_cls_shape": list(head["cls_logits"].shape),
        "head_box_shape": list(head["bbox_regression"].shape),
        "targets": targets_sets,
        "losses": losses,
        "detections": [{"boxes": d["boxes"].tolist(), "scores": d["scores"].tolist(), "labels": d["labels"].tolist()} for d in detections],
        "state_dict": keys,
    }
    with open(os.path.join(OUT, "retinanet_r50_fpn.json"), "w") as f:
        json.dump(meta, f, indent=1)
    for d in detections:
        print("detections:", len(d["scores"]), "top scores", [round(s, 4) for s in d["scores"][:5].tolist()], file=sys.stderr)
    print("losses:", losses, file=sys.stderr)
    print("cls logits mean/std", head["cls_logits"].mean().item(), head["cls_logits"].std().item(),
          "box std", head["bbox_regression"].std().item(), file=sys.stderr)
    for i, f_ in enumerate(features):
        print(f"P{i+3}", tuple(f_.shape), "std", f_.std().item(), file=sys.stderr)


if __name__ == "__main__":
    main()
