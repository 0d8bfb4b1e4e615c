#!/usr/bin/python3
"""Reference for the `inference` suite: torchvision 0.14 RetinaNet R50-FPN (frozen BN, 91 classes, random weights)
on one 3x800x800 image with 2 threads. Prints one line
REF net_s=<median backbone+head> full_s=<median model([image])> peak_rss_mb=<VmHWM> base_rss_mb=<RSS after building>
cl_net_s=<fp32 channels_last> bf16cl_net_s=<bfloat16 autocast + channels_last> best_net_s=<the fastest of the three>
(PyTorch's own best CPU modes; the NCHW fp32 run comes first so its peak RSS is the plain model's).
usage: inference_ref.py [SIZE (800)] [REPEATS (5)]"""
import torch
from torchvision.models import resnet50
from torchvision.models.detection.retinanet import RetinaNet, _resnet_fpn_extractor
from torchvision.ops import misc
from torchvision.ops.feature_pyramid_network import LastLevelP6P7

import benchutil


def main():
    args = benchutil.parse_args(__doc__, ("size", int, 800), ("repeats", int, 5))
    size, repeats = args.size, args.repeats
    torch.set_num_threads(2)
    torch.manual_seed(0)
    backbone = _resnet_fpn_extractor(resnet50(weights=None, norm_layer=misc.FrozenBatchNorm2d), 3,
                                     returned_layers=[2, 3, 4], extra_blocks=LastLevelP6P7(256, 256))
    model = RetinaNet(backbone, 91, min_size=size, max_size=1333).eval()
    base = benchutil.rss_mb()
    image = torch.rand(3, size, size)
    with torch.no_grad():
        batch, _ = model.transform([image])
        x = batch.tensors

        def net():
            model.head(list(model.backbone(x).values()))

        net_s = benchutil.median_seconds(net, 1, repeats)
        full_s = benchutil.median_seconds(lambda: model([image]), 1, repeats)
        peak = benchutil.peak_rss_mb()
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
        cl_net_s = benchutil.median_seconds(net, 1, repeats)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            bf16cl_net_s = benchutil.median_seconds(net, 1, repeats)
    benchutil.report("REF", net_s=net_s, full_s=full_s, peak_rss_mb=peak, base_rss_mb=base, cl_net_s=cl_net_s,
                     bf16cl_net_s=bf16cl_net_s, best_net_s=min(net_s, cl_net_s, bf16cl_net_s), blas=benchutil.blas(),
                     torch=torch.__version__)


if __name__ == "__main__":
    main()
