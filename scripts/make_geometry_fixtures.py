#!/usr/bin/python3
"""Writes tests/RetinaSharp.Tests/Fixtures/geometry/*.json from Debian's torchvision 0.14.

Run from the repository root with /usr/bin/python3 (python3-torchvision). Deterministic (fixed seeds).
Every float is a float32 value written as the exact double it equals, so C# reads it back bit for bit.

Files:
  anchors.json      torchvision AnchorGenerator (RetinaNet default and a custom one) at several sizes
  matcher.json      box_iou, generalized_box_iou and Matcher labels with and without low-quality matches
  box_coder.json    BoxCoder encode / decode, weights (1,1,1,1) and (10,10,5,5), clamped dw/dh
  nms.json          ops.nms and ops.batched_nms keeps on random boxes with tied scores
  postprocess.json  RetinaNet.postprocess_detections on a small random case
  giou_loss.json    ops.generalized_box_iou_loss (reduction none)
"""
import json
import math
import os
import types

import torch
import torchvision
from torchvision.models.detection import _utils as det_utils
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.retinanet import RetinaNet
from torchvision.ops import boxes as box_ops

OUT = os.path.join("tests", "RetinaSharp.Tests", "Fixtures", "geometry")


def write(name, obj):
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, name), "w") as f:
        json.dump(obj, f, separators=(",", ":"))
        f.write("\n")


def flat(t):
    return t.reshape(-1).tolist()


def random_boxes(g, n, extent=100.0, max_size=40.0, integer=False):
    xy = torch.rand(n, 2, generator=g) * extent
    wh = torch.rand(n, 2, generator=g) * max_size + 1
    if integer:
        xy, wh = xy.floor(), wh.floor()
    return torch.cat([xy, xy + wh], dim=1)


def default_anchor_generator():
    sizes = tuple((x, int(x * 2 ** (1.0 / 3)), int(x * 2 ** (2.0 / 3))) for x in [32, 64, 128, 256, 512])
    return AnchorGenerator(sizes, ((0.5, 1.0, 2.0),) * len(sizes)), sizes


def anchors_for(gen, image_size, feature_sizes):
    images = ImageList(torch.zeros(1, 3, *image_size), [image_size])
    feats = [torch.zeros(1, 1, h, w) for h, w in feature_sizes]
    out = gen(images, feats)[0]
    counts = [h * w * gen.num_anchors_per_location()[i] for i, (h, w) in enumerate(feature_sizes)]
    return list(torch.split(out, counts))


def make_anchors():
    gen, sizes = default_anchor_generator()
    cases = []
    # (image size, feature sizes): small cases stored whole, large ones as samples and sums.
    for image_size, feats, whole in [
        ((64, 96), [(8, 12), (4, 6), (2, 3), (1, 2), (1, 1)], True),
        ((100, 130), [(13, 17), (7, 9), (4, 5), (2, 3), (1, 2)], True),
        ((800, 800), [(100, 100), (50, 50), (25, 25), (13, 13), (7, 7)], False),
        ((800, 1216), [(100, 152), (50, 76), (25, 38), (13, 19), (7, 10)], False),
    ]:
        levels = anchors_for(gen, image_size, feats)
        case = {"image_size": list(image_size), "feature_sizes": [list(f) for f in feats], "levels": []}
        for a in levels:
            n = a.shape[0]
            idx = sorted(set(i for i in [0, 1, 2, 8, 9, n // 2, n - 2, n - 1] if i < n))
            lvl = {"count": n, "sum": a.double().sum().item(), "abs_sum_x1": a[:, 0].double().abs().sum().item(),
                   "sample_rows": idx, "sample": flat(a[idx])}
            if whole:
                lvl["anchors"] = flat(a)
            case["levels"].append(lvl)
        cases.append(case)
    custom_sizes = ((16.0, 24.0), (48.0, 60.0))
    custom_ratios = (0.25, 1.0, 3.0)
    custom = AnchorGenerator(custom_sizes, (custom_ratios,) * 2)
    levels = anchors_for(custom, (40, 56), [(5, 7), (3, 4)])
    write("anchors.json", {
        "default_sizes": [list(s) for s in sizes],
        "default_cell_anchors": [flat(c) for c in gen.cell_anchors],
        "cases": cases,
        "custom": {"sizes": [list(s) for s in custom_sizes], "ratios": list(custom_ratios), "image_size": [40, 56],
                   "feature_sizes": [[5, 7], [3, 4]], "anchors": [flat(a) for a in levels],
                   "cell_anchors": [flat(c) for c in custom.cell_anchors]},
    })


def make_matcher():
    g = torch.Generator().manual_seed(3)
    gen, _ = default_anchor_generator()
    anchors = torch.cat(anchors_for(gen, (128, 128), [(16, 16), (8, 8), (4, 4), (2, 2), (1, 1)]))
    cases = []
    gt_sets = {
        "random": random_boxes(g, 6, extent=90, max_size=60),
        # a duplicated box (ties between ground truths) and a box equal to an anchor (IoU 1)
        "ties": torch.cat([random_boxes(g, 3, extent=90, max_size=60), random_boxes(g, 1, 90, 60).repeat(2, 1),
                           anchors[100:101]]),
        # a box far away from every anchor: its best IoU is 0, so torchvision lets it "claim" every anchor
        # whose IoU with it is 0 -- each such anchor then gets its own arg-max ground truth
        "far_away": torch.cat([random_boxes(g, 2, extent=60, max_size=50), torch.tensor([[1000.0, 1000, 1010, 1010]])]),
    }
    for name, gt in gt_sets.items():
        iou = box_ops.box_iou(gt, anchors)
        case = {"name": name, "gt": flat(gt), "iou_sum": iou.double().sum().item()}
        for low_quality in (False, True):
            m = det_utils.Matcher(0.5, 0.4, allow_low_quality_matches=low_quality)
            case["matches_low_quality" if low_quality else "matches"] = m(iou.clone()).tolist()
        cases.append(case)
    b1 = random_boxes(g, 7)
    b2 = torch.cat([random_boxes(g, 5), b1[:1], torch.tensor([[500.0, 500, 520, 530]])])
    write("matcher.json", {
        "image_size": [128, 128], "feature_sizes": [[16, 16], [8, 8], [4, 4], [2, 2], [1, 1]],
        "num_anchors": anchors.shape[0], "cases": cases,
        "pair": {"boxes1": flat(b1), "boxes2": flat(b2), "iou": flat(box_ops.box_iou(b1, b2)),
                 "giou": flat(box_ops.generalized_box_iou(b1, b2)), "area1": flat(box_ops.box_area(b1))},
    })


def make_box_coder():
    g = torch.Generator().manual_seed(4)
    anchors = random_boxes(g, 40, extent=200, max_size=100)
    targets = random_boxes(g, 40, extent=200, max_size=100)
    deltas = torch.randn(40, 4, generator=g)
    deltas[:3, 2:] = torch.tensor([[10.0, 5.0], [-12.0, 7.0], [4.2, 4.1]])  # beyond ln(1000/16) ~ 4.135
    cases = []
    for w in [(1.0, 1.0, 1.0, 1.0), (10.0, 10.0, 5.0, 5.0)]:
        coder = det_utils.BoxCoder(w)
        cases.append({"weights": list(w), "encoded": flat(coder.encode_single(targets, anchors)),
                      "decoded": flat(coder.decode_single(deltas, anchors))})
    write("box_coder.json", {"anchors": flat(anchors), "targets": flat(targets), "deltas": flat(deltas),
                             "cases": cases, "clip": math.log(1000.0 / 16)})


def make_nms():
    g = torch.Generator().manual_seed(5)
    cases = []
    for name, n, integer, levels in [("continuous", 300, False, 0), ("integer_ties", 300, True, 10),
                                     ("tied_scores", 200, False, 4)]:
        boxes = random_boxes(g, n, extent=120, max_size=50, integer=integer)
        boxes[5] = boxes[3]                                   # duplicate boxes (IoU 1)
        boxes[7] = torch.tensor([10.0, 10, 10, 20])           # zero-area box
        scores = torch.rand(n, generator=g)
        if levels:
            scores = (scores * levels).floor() / levels         # many exact ties
        labels = torch.randint(0, 5, (n,), generator=g)
        case = {"name": name, "boxes": flat(boxes), "scores": flat(scores), "labels": labels.tolist(), "keeps": []}
        for thr in (0.3, 0.5, 0.7):
            keep = torchvision.ops.nms(boxes, scores, thr)
            # integer coordinates keep batched_nms's coordinate offsets exact, so its result is the per-class one
            bkeep = box_ops.batched_nms(boxes, scores, labels, thr) if integer else None
            case["keeps"].append({"threshold": thr, "keep": keep.tolist(),
                                  "batched_keep": bkeep.tolist() if bkeep is not None else None})
        cases.append(case)
    write("nms.json", {"cases": cases})


def make_postprocess():
    g = torch.Generator().manual_seed(6)
    gen, _ = default_anchor_generator()
    image_size, feats = (48, 64), [(6, 8), (3, 4), (2, 2), (1, 1), (1, 1)]
    anchors = anchors_for(gen, image_size, feats)
    k = 3
    logits = [torch.randn(a.shape[0], k, generator=g) * 1.5 - 2.5 for a in anchors]
    deltas = [torch.randn(a.shape[0], 4, generator=g) * 0.5 for a in anchors]
    settings = dict(score_thresh=0.05, topk_candidates=50, nms_thresh=0.5, detections_per_img=25)
    self = types.SimpleNamespace(box_coder=det_utils.BoxCoder(weights=(1.0, 1.0, 1.0, 1.0)), **settings)
    resized = (44, 60)  # the unpadded image inside the padded batch: boxes are clipped to it
    head = {"cls_logits": [l[None] for l in logits], "bbox_regression": [d[None] for d in deltas]}
    out = RetinaNet.postprocess_detections(self, head, [anchors], [resized])[0]
    write("postprocess.json", {
        "image_size": list(image_size), "feature_sizes": [list(f) for f in feats], "resized_size": list(resized),
        "num_classes": k, "settings": settings,
        "logits": [flat(l) for l in logits], "deltas": [flat(d) for d in deltas],
        "boxes": flat(out["boxes"]), "scores": flat(out["scores"]), "labels": out["labels"].tolist(),
    })


def make_giou_loss():
    g = torch.Generator().manual_seed(7)
    b1 = random_boxes(g, 12)
    b2 = random_boxes(g, 12)
    b2[0] = b1[0]
    b2[1] = torch.tensor([300.0, 300, 310, 330])
    write("giou_loss.json", {"boxes1": flat(b1), "boxes2": flat(b2),
                             "loss": flat(torchvision.ops.generalized_box_iou_loss(b1, b2, reduction="none"))})


if __name__ == "__main__":
    torch.set_num_threads(1)
    make_anchors()
    make_matcher()
    make_box_coder()
    make_nms()
    make_postprocess()
    make_giou_loss()
    print("torch", torch.__version__, "torchvision", torchvision.__version__, "->", OUT)
