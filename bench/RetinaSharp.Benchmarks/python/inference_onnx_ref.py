#!/usr/bin/python3
"""Reference export for the `inference` suite's ONNX Runtime peer: torchvision 0.14's RetinaNet R50-FPN network part
(frozen BN, 91 classes, random weights with seed 0, as inference_ref.py builds it): backbone + FPN + heads on the
preprocessed 1x3xSIZExSIZE batch, exported with PyTorch 1.13's torch.onnx.export (opset 17, constant folding).
Outputs cls_logits (1, sum HWA, 91) and bbox_regression (1, sum HWA, 4), as torchvision's RetinaNetHead returns them.
The C# suite times the file with ONNX Runtime (2 threads). Prints one line
REF export_s=<seconds> onnx_mb=<file size> torch=<version>.
usage: inference_onnx_ref.py OUT.onnx [SIZE (800)]"""
import os
import time

import torch
from torchvision.models import resnet50
from torchvision.models.detection.retinanet import RetinaNet, _resnet_fpn_extractor
from torchvision.ops import misc
from torchvision.ops.feature_pyramid_network import LastLevelP6P7

import benchutil


class Network(torch.nn.Module):
    """The network part of a torchvision RetinaNet: what model.head(model.backbone(x)) computes."""

    def __init__(self, model):
        super().__init__()
        self.backbone, self.head = model.backbone, model.head

    def forward(self, x):
        out = self.head(list(self.backbone(x).values()))
        return out["cls_logits"], out["bbox_regression"]


def main():
    args = benchutil.parse_args(__doc__, ("out", str), ("size", int, 800))
    torch.set_num_threads(2)
    torch.manual_seed(0)
    backbone = _resnet_fpn_extractor(resnet50(weights=None, norm_layer=misc.FrozenBatchNorm2d), 3,
                                     returned_layers=[2, 3, 4], extra_blocks=LastLevelP6P7(256, 256))
    model = RetinaNet(backbone, 91, min_size=args.size, max_size=1333).eval()
    with torch.no_grad():
        batch, _ = model.transform([torch.rand(3, args.size, args.size)])
        watch = benchutil.Stopwatch()
        torch.onnx.export(Network(model), (batch.tensors,), args.out, opset_version=17, do_constant_folding=True,
                          input_names=["x"], output_names=["cls_logits", "bbox_regression"])
        export_s, _ = watch.lap()
    benchutil.report("REF", export_s=export_s, onnx_mb=os.path.getsize(args.out) / 1048576.0, torch=torch.__version__)


if __name__ == "__main__":
    main()
