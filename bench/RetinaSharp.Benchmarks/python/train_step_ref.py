#!/usr/bin/python3
"""Reference for the `train-step` suite: torchvision 0.14 RetinaNet R50-FPN (91 classes, random weights), one
training step (forward with losses, backward, step) on 2 images of 3x512x512 with 3 boxes each, 2 threads, in the
mode of the suite:
  pretrained: frozen BN, 3 trainable stages, SGD (retinanet_resnet50_fpn with weights_backbone);
  scratch:    BatchNorm2d, 5 trainable stages, SGD (retinanet_resnet50_fpn without weights_backbone);
  v2:         retinanet_resnet50_fpn_v2 (BatchNorm2d, 3 trainable stages, GroupNorm heads, GIoU, P6/P7 from C5), AdamW.
Prints REF step_s=<median> forward_s=<median> backward_s=<median> peak_rss_mb=<VmHWM> base_rss_mb=<RSS after building>.
usage: train_step_ref.py [SIZE (512)] [REPEATS (5)] [MODE (pretrained)]"""
import statistics
import time
from functools import partial

import torch
from torch import nn
from torchvision.models import resnet50
from torchvision.models.detection.retinanet import RetinaNet, RetinaNetHead, _resnet_fpn_extractor
from torchvision.ops import misc
from torchvision.ops.feature_pyramid_network import LastLevelP6P7

import benchutil


def main():
    args = benchutil.parse_args(__doc__, ("size", int, 512), ("repeats", int, 5), ("mode", str, "pretrained"))
    size, repeats, mode = args.size, args.repeats, args.mode
    torch.set_num_threads(2)
    torch.manual_seed(0)
    if mode == "pretrained":
        backbone = _resnet_fpn_extractor(resnet50(weights=None, norm_layer=misc.FrozenBatchNorm2d), 3,
                                         returned_layers=[2, 3, 4], extra_blocks=LastLevelP6P7(256, 256))
        model = RetinaNet(backbone, 91, min_size=size, max_size=1333)
    elif mode == "scratch":
        backbone = _resnet_fpn_extractor(resnet50(weights=None, norm_layer=nn.BatchNorm2d), 5,
                                         returned_layers=[2, 3, 4], extra_blocks=LastLevelP6P7(256, 256))
        model = RetinaNet(backbone, 91, min_size=size, max_size=1333)
    elif mode == "v2":
        # retinanet_resnet50_fpn_v2 as built with weights_backbone (BatchNorm2d, 3 trainable stages), without the download.
        backbone = _resnet_fpn_extractor(resnet50(weights=None), 3, returned_layers=[2, 3, 4], extra_blocks=LastLevelP6P7(2048, 256))
        head = RetinaNetHead(backbone.out_channels, 9, 91, norm_layer=partial(nn.GroupNorm, 32))
        head.regression_head._loss_type = "giou"
        model = RetinaNet(backbone, 91, head=head, min_size=size, max_size=1333)
    else:
        raise SystemExit(f"unknown mode {mode!r} (pretrained, scratch or v2)")
    model.train()
    base = benchutil.rss_mb()
    params = [p for p in model.parameters() if p.requires_grad]
    if mode == "v2":
        opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.05)
    else:
        opt = torch.optim.SGD(params, lr=0.001, momentum=0.9, weight_decay=1e-4)
    images = [torch.rand(3, size, size) for _ in range(2)]
    boxes = torch.tensor([[10.0, 20.0, 200.0, 220.0], [250.0, 40.0, 480.0, 300.0], [60.0, 300.0, 160.0, 500.0]])
    targets = [{"boxes": boxes.clone(), "labels": torch.tensor([1, 5, 17])} for _ in range(2)]

    phases = []  # forward with losses, backward (seconds), per call

    def step():
        t0 = time.perf_counter()
        losses = model(images, targets)
        loss = losses["classification"] + losses["bbox_regression"]
        t1 = time.perf_counter()
        opt.zero_grad()
        loss.backward()
        t2 = time.perf_counter()
        opt.step()
        phases.append((t1 - t0, t2 - t1))

    step_s = benchutil.median_seconds(step, 1, repeats)
    forward_s = statistics.median(p[0] for p in phases[1:])
    backward_s = statistics.median(p[1] for p in phases[1:])
    benchutil.report("REF", step_s=step_s, forward_s=forward_s, backward_s=backward_s,
                     peak_rss_mb=benchutil.peak_rss_mb(), base_rss_mb=base)


if __name__ == "__main__":
    main()
