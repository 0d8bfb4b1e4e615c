#!/usr/bin/python3
"""Writes whole-RetinaNet checkpoints saved by torch.save itself, and torchvision's detections with them, under
tests/RetinaSharp.Tests/Fixtures/pth/ (read by tests/RetinaSharp.Tests/Export/TorchSavedRetinaNetTests.cs).

Reference: Debian's torch 1.13 / torchvision 0.14 (python3-torch, python3-torchvision). Two models, built from
torchvision's parts as retinanet_resnet50_fpn / _v2 build theirs, with a ResNet-18 body (nn.BatchNorm2d, as the stock
builders use without pretrained weights) and a 64-channel FPN so that the files stay small:
  v1: BackboneWithFPN(resnet18, layer2..4, 64, LastLevelP6P7(64, 64))    P6 from P5, RetinaNetHead without norm
  v2: BackboneWithFPN(resnet18, layer2..4, 64, LastLevelP6P7(512, 64))   P6 from C5, RetinaNetHead(GroupNorm(32))
num_classes=10, min_size=160, max_size=256, torchvision's other defaults (score 0.05, NMS 0.5, 300 per image).

Each file is torch.save(model.state_dict(), f) exactly as torchvision writes a checkpoint (every tensor its own
contiguous storage, num_batches_tracked included), then gzip -9. A dense random float32 ResNet-18 (45 MB) does not
compress, so every weight of four or more dimensions repeats a random period of PERIOD values (element i = base[i mod
PERIOD], PERIOD prime and larger than every filter, so no two filters are equal and deflate finds each repeat in its
32 KB window): about 40:1. All other tensors are dense random values. Batch-norm running statistics are the batch
statistics of the fixture image itself (one train-mode pass with momentum 1), so activations stay of order one, and
every tensor of every key changes the output. The output convolutions are scaled on the image (BOX_STD, PASS_FRACTION):
box deltas stay small because their float32 rounding error, multiplied by the anchor size (up to 812 px at P7), is what
limits box agreement; with BOX_STD = 0.05 torchvision's own float32 and float64 boxes differ by about 2e-4 px
(recorded as float64_gap), well inside the tests' 1e-3 px.

Outputs: retinanet_{v1,v2}.pth.gz and detections.json (per model: torchvision's boxes XYXY in input-image pixels,
scores, labels on images/fashion_scene.png, plus the settings).

Also small files of the other layouts torch.save writes, with their values in layouts.json:
  layouts_plain.pth       a dict of tensors that are not one contiguous storage each: a channels-last 4-D weight (as
                          model.to(memory_format=torch.channels_last).state_dict() saves), two views into one storage
                          at offsets (flattened parameters), a transposed matrix, a slice of a larger storage,
                          overlapping rows (as_strided) and an expanded tensor (stride 0), an int64 scalar, float16,
                          bfloat16, bool and empty tensors, a tensor subclass with a Python attribute;
  layouts_protocol4.pth   the same, pickled with protocol 4 (torch.save(..., pickle_protocol=4); the default is 2);
  layouts_checkpoint.pth  the same dict as torchvision's detection reference script saves a checkpoint:
                          {"model": ..., "optimizer": SGD state, "lr_scheduler": MultiStepLR state (a Counter),
                          "args": argparse.Namespace, "epoch": 3}, with DistributedDataParallel's "module." key prefix;
  layouts_legacy.pth      the plain dict in torch.save's legacy (pre-1.6) format (its storage keys are object ids:
                          this file differs from run to run);
  layouts_module.pth      a whole nn.Linear pickled by torch.save(module), not a state dict;
  layouts_torchscript.pt  torch.jit.save of the same nn.Linear.
Run: /usr/bin/python3 scripts/make_pth_fixtures.py
"""
import gzip
import io
import json
import math
import os
import sys
from functools import partial

import torch
import torchvision
from torch import nn
from torchvision.io import read_image
from torchvision.models.detection import RetinaNet
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.models.detection.retinanet import RetinaNetHead
from torchvision.ops.feature_pyramid_network import LastLevelP6P7

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
FIXTURES = os.path.join(ROOT, "tests", "RetinaSharp.Tests", "Fixtures")
OUT = os.path.join(FIXTURES, "pth")
IMAGE = "images/fashion_scene.png"
NUM_CLASSES = 10
MIN_SIZE, MAX_SIZE = 160, 256
FPN = 64
PERIOD = 2039
PASS_FRACTION, BOX_STD = 0.003, 0.05


def build(v2):
    body = torchvision.models.resnet18(weights=None, norm_layer=nn.BatchNorm2d)
    extra = LastLevelP6P7(512, FPN) if v2 else LastLevelP6P7(FPN, FPN)
    backbone = BackboneWithFPN(body, {"layer2": "0", "layer3": "1", "layer4": "2"}, [128, 256, 512], FPN, extra_blocks=extra)
    head = RetinaNetHead(FPN, 9, NUM_CLASSES, norm_layer=partial(nn.GroupNorm, 32) if v2 else None)
    return RetinaNet(backbone, NUM_CLASSES, min_size=MIN_SIZE, max_size=MAX_SIZE, head=head)


def periodic(shape, std, g):
    n = math.prod(shape)
    base = torch.randn(PERIOD, generator=g) * std
    return base.repeat(n // PERIOD + 1)[:n].reshape(shape)


def fill(model, img, g):
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 4:
                fan_in = p[0].numel()
                p.copy_(periodic(p.shape, math.sqrt(2.0 / fan_in), g))
            elif name.endswith("cls_logits.bias"):  # the prior pi = 0.01 plus a little per class and anchor
                p.copy_(-math.log(99) + (torch.rand(p.shape, generator=g) - 0.5) * 0.5)
            elif name.endswith("weight"):  # batch / group norm scale
                p.copy_(torch.rand(p.shape, generator=g) + 0.5)
            else:  # norm shifts, convolution biases
                p.copy_((torch.rand(p.shape, generator=g) - 0.5) * 0.4)
        model.eval()
        batch, _ = model.transform([img])
        for m in model.backbone.body.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.momentum = 1.0
                m.reset_running_stats()
        model.backbone.body.train()
        model.backbone.body(batch.tensors)
        for m in model.backbone.body.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.momentum = 0.1
        model.eval()
        # Scale the two output convolutions on this image: the box deltas spread BOX_STD, and the class logits so that
        # about PASS_FRACTION of the candidates (anchor x class) pass the 0.05 score threshold, none within 2e-5 of it
        # (so that float rounding cannot move a candidate across it).
        features = list(model.backbone(batch.tensors).values())
        cls, reg = model.head.classification_head, model.head.regression_head
        spread = torch.cat([(reg.bbox_reg(reg.conv(f)) - reg.bbox_reg.bias.view(1, -1, 1, 1)).flatten() for f in features]).std()
        reg.bbox_reg.weight.mul_(BOX_STD / float(spread))
        k = NUM_CLASSES
        contrib = [cls.cls_logits(cls.conv(f)) - cls.cls_logits.bias.view(1, -1, 1, 1) for f in features]
        bias = cls.cls_logits.bias.view(1, -1, 1, 1)
        threshold = math.log(0.05 / 0.95)

        def passing(scale):
            return torch.cat([(c * scale + bias > threshold).flatten() for c in contrib]).float().mean().item()

        scales = [0.05 * 1.02 ** i for i in range(400)]
        scale = min(scales, key=lambda s: abs(passing(s) - PASS_FRACTION))
        while min(float(((c * scale + bias).sigmoid() - 0.05).abs().min()) for c in contrib) < 2e-5:
            scale *= 1.001
        cls.cls_logits.weight.mul_(scale)
        print(f"cls_logits scale {scale:.4f}: {passing(scale) * 100:.2f}% of {k} x anchors pass 0.05", file=sys.stderr)


class TaggedTensor(torch.Tensor):
    """A tensor subclass, as some libraries put in state dicts (torch.load needs this class; RetinaSharp does not)."""


def layouts():
    g = torch.Generator().manual_seed(17)
    conv = torch.randn(4, 3, 2, 2, generator=g).contiguous(memory_format=torch.channels_last)
    flat = torch.randn(20, generator=g)
    big = torch.randn(10, generator=g)
    tagged = torch.randn(2, generator=g).as_subclass(TaggedTensor)  # pickled through torch._tensor._rebuild_from_type_v2
    tagged.note = "a Python attribute"
    sd = {
        "conv.weight": conv,                      # stride (12, 1, 6, 3)
        "flat.a": flat[2:8].view(2, 3),           # offset 2 in a 20-element storage
        "flat.b": flat[8:20].view(3, 4),          # offset 8 in the same storage
        "fc.weight": torch.randn(3, 5, generator=g).t(),
        "head": big[:4],                          # offset 0, the storage holds 10
        "bn.num_batches_tracked": torch.tensor(7, dtype=torch.int64),
        "overlap": torch.randn(9, generator=g).as_strided((3, 4), (2, 1)),  # rows share elements
        "expanded": torch.randn(3, 1, generator=g).expand(3, 4),           # stride 0: 3 stored values
        "half": torch.randn(5, generator=g).half(),
        "bf16": torch.randn(4, generator=g).bfloat16(),
        "mask": torch.tensor([True, False, True]),
        "empty": torch.zeros(0, 3),
        "tagged": tagged,
    }
    expected = {k: {"shape": list(v.shape), "dtype": str(v.dtype).replace("torch.", ""),
                    "values": torch.Tensor(v).reshape(-1).tolist()} for k, v in sd.items()}
    torch.save(sd, os.path.join(OUT, "layouts_plain.pth"))
    torch.save(sd, os.path.join(OUT, "layouts_protocol4.pth"), pickle_protocol=4)
    torch.manual_seed(18)
    lin = nn.Linear(5, 3)
    opt = torch.optim.SGD(lin.parameters(), lr=0.01, momentum=0.9)
    lin(torch.ones(2, 5)).sum().backward()
    opt.step()
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[16, 22], gamma=0.1)
    import argparse
    checkpoint = {"model": {"module." + k: v for k, v in sd.items()}, "optimizer": opt.state_dict(),
                  "lr_scheduler": sched.state_dict(), "args": argparse.Namespace(lr=0.01, model="retinanet_resnet50_fpn"),
                  "epoch": 3}
    torch.save(checkpoint, os.path.join(OUT, "layouts_checkpoint.pth"))
    torch.save(sd, os.path.join(OUT, "layouts_legacy.pth"), _use_new_zipfile_serialization=False)
    torch.save(lin, os.path.join(OUT, "layouts_module.pth"))
    torch.jit.save(torch.jit.script(lin), os.path.join(OUT, "layouts_torchscript.pt"))
    with open(os.path.join(OUT, "layouts.json"), "w") as f:
        json.dump({"torch": torch.__version__, "tensors": expected}, f, indent=1)
    for name in ["layouts_plain.pth", "layouts_protocol4.pth", "layouts_checkpoint.pth", "layouts_legacy.pth", "layouts_module.pth", "layouts_torchscript.pt"]:
        print(f"{name}: {os.path.getsize(os.path.join(OUT, name))} bytes", file=sys.stderr)


def main():
    torch.set_num_threads(2)
    os.makedirs(OUT, exist_ok=True)
    img = read_image(os.path.join(FIXTURES, IMAGE)).float() / 255.0
    meta = {"torch": torch.__version__, "torchvision": torchvision.__version__, "image": IMAGE,
            "num_classes": NUM_CLASSES, "min_size": MIN_SIZE, "max_size": MAX_SIZE, "fpn_channels": FPN,
            "score_thresh": 0.05, "nms_thresh": 0.5, "detections_per_img": 300, "models": {}}
    for v2, seed in [(False, 15), (True, 16)]:
        name = "v2" if v2 else "v1"
        g = torch.Generator().manual_seed(seed)
        model = build(v2)
        fill(model, img, g)
        buf = io.BytesIO()
        torch.save(model.state_dict(), buf)
        path = os.path.join(OUT, f"retinanet_{name}.pth.gz")
        with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9, mtime=0, filename="") as f:
            f.write(buf.getvalue())
        # torchvision's detections with the weights as torch.load reads them back from the saved bytes.
        check = build(v2)
        check.load_state_dict(torch.load(io.BytesIO(buf.getvalue())), strict=True)
        check.eval()
        with torch.no_grad():
            det = check([img])[0]
        scores = det["scores"]
        gaps = (scores[:-1] - scores[1:]).abs()
        # How far float32 rounding alone moves these detections: torchvision in float64 against float32, each float32
        # detection paired with the float64 one of its label nearest in box.
        exact = build(v2)
        exact.load_state_dict(torch.load(io.BytesIO(buf.getvalue())), strict=True)
        exact.double().eval()
        with torch.no_grad():
            det64 = exact([img.double()])[0]
        gap_box = gap_score = 0.0
        for i in range(len(scores)):
            same = det64["labels"] == det["labels"][i]
            d = (det64["boxes"][same] - det["boxes"][i].double()).abs().max(dim=1).values
            j = int(d.argmin())
            gap_box, gap_score = max(gap_box, float(d[j])), max(gap_score, float((det64["scores"][same][j] - scores[i]).abs()))
        meta["models"][name] = {
            "file": f"pth/retinanet_{name}.pth.gz",
            "head_group_norm": v2, "p6_from_c5": v2,
            "tensors": len(model.state_dict()),
            "float64_gap": {"detections": len(det64["scores"]), "score": gap_score, "box_px": gap_box},
            "detections": {"boxes": det["boxes"].tolist(), "scores": scores.tolist(), "labels": det["labels"].tolist()},
        }
        print(f"{name}: {len(buf.getvalue())} bytes -> {os.path.getsize(path)} gzip; {len(scores)} detections, "
              f"scores {float(scores.max()):.4f}..{float(scores.min()):.4f}, smallest gap between neighbours "
              f"{float(gaps.min()) if len(gaps) else 0:.2e}, labels {sorted(set(det['labels'].tolist()))}; float64 gives {len(det64['scores'])} "
              f"detections, up to {gap_score:.2e} in score and {gap_box:.2e} px in box from these", file=sys.stderr)
    with open(os.path.join(OUT, "detections.json"), "w") as f:
        json.dump(meta, f, indent=1)
    layouts()


if __name__ == "__main__":
    main()
