#!/usr/bin/python3
"""Writes tests/RetinaSharp.Tests/Fixtures/model/resize_sizes.json from Debian's torchvision 0.14.

Run from the repository root with /usr/bin/python3 (python3-torchvision 0.14, python3-torch 1.13).

What it records: the output (height, width) of torchvision's GeneralizedRCNNTransform resize
(`_resize_image_and_masks`) for every image size h x w with 1 <= h, w <= MAX_SIDE, for a few
(min_size, max_size) pairs. torchvision computes the scale in float32 tensors,
`scale = min(min_size / min(h, w), max_size / max(h, w))`, where `float / tensor` is
`tensor.reciprocal() * float` (two float32 roundings), then passes `scale.item()` to `interpolate(...,
recompute_scale_factor=True)`, which takes `floor(float(side) * scale)` in double precision.

The float32 scale is below the exact ratio about half the time, so the side that meets its target
(min_size or max_size) comes out one pixel short for about half of all sizes: about 2 million of the
4 million sizes per pair differ from the float64 formula. The table is therefore not stored; for each pair
the file keeps
  - sha256: of the table as int32 little-endian (out_h, out_w) for h = 1..MAX_SIDE, w = 1..MAX_SIDE (row-major),
    with each side at least 1 pixel (RetinaSharp's documented difference: torchvision would ask for a 0-pixel
    output there and fail), so a test checks every size;
  - row_hashes: the first 8 bytes (hex) of the sha256 of each row h (2000 rows), so a failing test names the rows;
  - differs_count and differs_sample: how many sizes differ from the float64 formula (what RetinaSharp computed
    before; both with the 1-pixel lower bound) and SAMPLE of them as [h, w, out_h, out_w] (readable failures).
The vectorised float32 computation below is checked against the real `_resize_image_and_masks` call on a
1-channel image for a random sample of the differing sizes and of all sizes (SAMPLE each per pair).
"""
import hashlib
import json
import os
import random

import numpy as np
import torch
import torchvision
from torchvision.models.detection.transform import _resize_image_and_masks

OUT = os.path.join("tests", "RetinaSharp.Tests", "Fixtures", "model")
MAX_SIDE = 2000
PAIRS = [(800, 1333), (640, 1333), (128, 128)]
SAMPLE = 200  # sizes per pair checked against the real _resize_image_and_masks call


def torchvision_sizes(min_size, max_size, n):
    """(out_h, out_w) int64 arrays of shape (n, n) for h, w = 1..n, computed as torchvision computes them."""
    sides = torch.arange(1, n + 1, dtype=torch.int64)
    h = sides.view(n, 1).expand(n, n)
    w = sides.view(1, n).expand(n, n)
    short = torch.minimum(h, w).to(torch.float32)
    long = torch.maximum(h, w).to(torch.float32)
    scale = torch.minimum(float(min_size) / short, float(max_size) / long)  # float32, as in _resize_image_and_masks
    s = scale.to(torch.float64)  # scale.item() is the float32 value as a Python float
    out_h = torch.floor(h.to(torch.float64) * s).to(torch.int64)
    out_w = torch.floor(w.to(torch.float64) * s).to(torch.int64)
    return out_h.numpy(), out_w.numpy()


def float64_sizes(min_size, max_size, n):
    sides = np.arange(1, n + 1, dtype=np.float64)
    h = sides.reshape(n, 1) * np.ones((1, n))
    w = sides.reshape(1, n) * np.ones((n, 1))
    scale = np.minimum(min_size / np.minimum(h, w), max_size / np.maximum(h, w))
    return np.floor(h * scale).astype(np.int64), np.floor(w * scale).astype(np.int64)


def real_call(h, w, min_size, max_size):
    image = torch.zeros(1, h, w)
    out, _ = _resize_image_and_masks(image, float(min_size), float(max_size))
    return out.shape[-2], out.shape[-1]


def main():
    torch.set_num_threads(1)
    rng = random.Random(0)
    pairs = []
    for k, (mn, mx) in enumerate(PAIRS):
        th, tw = torchvision_sizes(mn, mx, MAX_SIDE)
        dh, dw = float64_sizes(mn, mx, MAX_SIDE)
        diff = np.argwhere((th != dh) | (tw != dw))
        # Check the vectorised computation against torchvision's own function: a sample of the differing sizes and of all sizes.
        check = rng.sample([tuple(x) for x in diff], min(len(diff), SAMPLE)) + [(rng.randrange(MAX_SIDE), rng.randrange(MAX_SIDE)) for _ in range(SAMPLE)]
        for i, j in check:
            h, w = int(i) + 1, int(j) + 1
            if th[i, j] == 0 or tw[i, j] == 0:
                continue  # torchvision fails on a 0-pixel output
            got = real_call(h, w, mn, mx)
            assert got == (th[i, j], tw[i, j]), (h, w, mn, mx, got, th[i, j], tw[i, j])
        clamped = int(((th == 0) | (tw == 0)).sum())
        th, tw = np.maximum(th, 1), np.maximum(tw, 1)  # from here on: the table with RetinaSharp's 1-pixel lower bound
        diff = np.argwhere((th != np.maximum(dh, 1)) | (tw != np.maximum(dw, 1)))
        sample = sorted(rng.sample([tuple(x) for x in diff], min(len(diff), SAMPLE)))
        table = np.stack([th, tw], axis=-1).astype("<i4")
        pairs.append({
            "min_size": mn,
            "max_size": mx,
            "max_side": MAX_SIDE,
            "count": int(th.size),
            "clamped_to_one_pixel": clamped,
            "sha256": hashlib.sha256(table.tobytes()).hexdigest(),
            "row_hashes": [hashlib.sha256(table[i].tobytes()).hexdigest()[:16] for i in range(MAX_SIDE)],
            "differs_count": int(len(diff)),
            "differs_sample": [[int(i) + 1, int(j) + 1, int(th[i, j]), int(tw[i, j])] for i, j in sample],
        })
        print(f"min_size {mn} max_size {mx}: {len(diff)} of {th.size} sizes differ from float64, {clamped} clamped to 1 pixel, "
              f"checked {len(check)} against _resize_image_and_masks")
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "resize_sizes.json"), "w") as f:
        json.dump({"torchvision": torchvision.__version__, "torch": torch.__version__,
                   "layout": "sha256 of int32 LE (out_h, out_w) for h = 1..max_side, w = 1..max_side, each side at least 1",
                   "pairs": pairs}, f, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main()
