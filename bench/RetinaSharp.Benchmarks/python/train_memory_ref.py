#!/usr/bin/python3
"""Reference for the `train-memory` suite: torchvision 0.14 RetinaNet trained like `retina demo` (ResNet-18-FPN from
scratch with trainable BatchNorm, FPN/head width 64, GroupNorm heads, P6 from P5, 3 anchor scales x 3 ratios from 16 px,
min_size = max_size = S, AdamW lr 5e-4 weight decay 0.05, linear warm-up over 100 iterations from 1/1000, x0.1 at 2/3
and 8/9 of the run, gradient norm clipped at 1, horizontal flip p = 0.5, seeded shuffle, drop_last) on the same scene
files, 2 threads, data loading in the training process (num_workers = 0).

Samples VmRSS and VmHWM of /proc/self/status every K iterations (the peak counter is reset before the first step
where the kernel allows it) and prints
  SAMPLE iteration=<i> elapsed_s=<t> rss_mb=<VmRSS> peak_mb=<VmHWM>
  REF warm=<W> rss_warm_mb=.. peak_warm_mb=.. rss_end_mb=.. peak_end_mb=.. drift_pct=.. step_s=..
drift_pct = 100 (peak_end - peak_warm) / peak_warm; step_s = mean wall time of an iteration after the warm-up point.

With MAX_SECONDS > 0 the run stops after that much training time and the end is the last completed iteration.

usage: train_memory_ref.py INSTANCES_JSON ITERATIONS BATCH SIZE SAMPLE_EVERY [SEED [WARM [MAX_SECONDS]]]
"""
import json
import os
import sys
import time
from functools import partial

import torch
from PIL import Image
from torchvision.models import resnet18
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.models.detection.retinanet import RetinaNet, RetinaNetHead
from torchvision.ops.feature_pyramid_network import LastLevelP6P7
from torchvision.transforms.functional import to_tensor

from benchutil import peak_rss_mb, reset_peak_rss, rss_mb


class Scenes(torch.utils.data.Dataset):
    """COCO instances file -> (image tensor [3, H, W] in [0, 1], target dict) with a seeded horizontal flip."""

    def __init__(self, path):
        with open(path) as f:
            coco = json.load(f)
        root = os.path.dirname(os.path.abspath(path))
        cats = sorted(c["id"] for c in coco["categories"])
        self.index = {c: i for i, c in enumerate(cats)}
        anns = {}
        for a in coco["annotations"]:
            anns.setdefault(a["image_id"], []).append(a)
        self.items = [(os.path.join(root, im["file_name"]), anns.get(im["id"], [])) for im in coco["images"]]
        self.num_classes = len(cats)
        self.flip = torch.Generator().manual_seed(1)

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        path, anns = self.items[i]
        with Image.open(path) as im:
            image = to_tensor(im.convert("RGB"))
        boxes = torch.tensor([[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]]
                              for a in anns], dtype=torch.float32).reshape(-1, 4)
        labels = torch.tensor([self.index[a["category_id"]] for a in anns], dtype=torch.int64)
        if torch.rand(1, generator=self.flip).item() < 0.5:
            w = image.shape[-1]
            image = image.flip(-1)
            boxes = torch.stack([w - boxes[:, 2], boxes[:, 1], w - boxes[:, 0], boxes[:, 3]], dim=1)
        return image, {"boxes": boxes, "labels": labels}


def build_model(num_classes, size):
    # All five stages trainable with ordinary BatchNorm (from scratch); FPN width 64 on C3..C5, P6/P7 from P5.
    body = resnet18(weights=None, norm_layer=torch.nn.BatchNorm2d)
    backbone = BackboneWithFPN(body, {"layer2": "0", "layer3": "1", "layer4": "2"}, [128, 256, 512], 64,
                               extra_blocks=LastLevelP6P7(64, 64))
    sizes = tuple(tuple(int(x * 2 ** (k / 3)) for k in range(3)) for x in (16, 32, 64, 128, 256))
    anchors = AnchorGenerator(sizes, ((0.5, 1.0, 2.0),) * 5)
    head = RetinaNetHead(64, anchors.num_anchors_per_location()[0], num_classes, norm_layer=partial(torch.nn.GroupNorm, 32))
    return RetinaNet(backbone, num_classes, min_size=size, max_size=size, anchor_generator=anchors, head=head)


def main():
    path, iterations, batch, size, every = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    seed = int(sys.argv[6]) if len(sys.argv) > 6 else 0
    warm = int(sys.argv[7]) if len(sys.argv) > 7 else min(100, iterations // 2)
    max_seconds = float(sys.argv[8]) if len(sys.argv) > 8 else 0.0
    torch.set_num_threads(2)
    torch.manual_seed(seed)
    data = Scenes(path)
    model = build_model(data.num_classes, size).train()
    base_lr, warmup = 5e-4, min(100, max(1, iterations // 5))
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=base_lr, weight_decay=0.05)

    def lr_at(i):
        f = 0.001 + (1 - 0.001) * i / warmup if i < warmup else 1.0
        return base_lr * f * (0.1 ** sum(i >= m for m in (2 * iterations // 3, 8 * iterations // 9)))

    shuffle = torch.Generator().manual_seed(seed + 1)
    loader = torch.utils.data.DataLoader(data, batch_size=batch, shuffle=True, drop_last=True, num_workers=0,
                                         generator=shuffle, collate_fn=lambda b: tuple(zip(*b)))
    reset_peak_rss()
    start = time.perf_counter()
    samples = {}
    i = 0
    while i < iterations:
        for images, targets in loader:
            for g in opt.param_groups:
                g["lr"] = lr_at(i)
            losses = model(list(images), list(targets))
            loss = losses["classification"] + losses["bbox_regression"]
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            i += 1
            stop = max_seconds > 0 and time.perf_counter() - start > max_seconds
            if i % every == 0 or i in (1, warm, iterations) or stop:
                samples[i] = (time.perf_counter() - start, rss_mb(), peak_rss_mb())
                print(f"SAMPLE iteration={i} elapsed_s={samples[i][0]:.3f} rss_mb={samples[i][1]:.1f} peak_mb={samples[i][2]:.1f} loss={loss.item():.4f}", flush=True)
            if i == iterations or stop:
                iterations = i
                break
    t_w, rss_w, peak_w = samples[warm]
    t_e, rss_e, peak_e = samples[iterations]
    step = (t_e - t_w) / max(1, iterations - warm)
    print(f"REF warm={warm} rss_warm_mb={rss_w:.1f} peak_warm_mb={peak_w:.1f} rss_end_mb={rss_e:.1f} peak_end_mb={peak_e:.1f} "
          f"drift_pct={100 * (peak_e - peak_w) / peak_w:.3f} step_s={step:.4f}")


if __name__ == "__main__":
    main()
