#!/usr/bin/python3
"""Reference for the `inference` suite: torchvision 0.14 RetinaNet R50-FPN (frozen BN, 91 classes, random weights)
on one 3x800x800 image with 2 threads. Prints one line
REF net_s=<median backbone+head> full_s=<median model([image])> peak_rss_mb=<VmHWM> base_rss_mb=<RSS after building>."""
import resource
import sys
import time

import torch
from torchvision.models import resnet50
from torchvision.models.detection.retinanet import RetinaNet, _resnet_fpn_extractor
from torchvision.ops import misc
from torchvision.ops.feature_pyramid_network import LastLevelP6P7


def rss_mb(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) / 1024.0
    return 0.0


def median(fn, warmup, repeats):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    times.sort()
    return times[len(times) // 2]


def main():
    size = int(sys.argv[1]) if len(sys.argv) > 1 else 800
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    torch.set_num_threads(2)
    torch.manual_seed(0)
    backbone = _resnet_fpn_extractor(resnet50(weights=None, norm_layer=misc.FrozenBatchNorm2d), 3,
                                     returned_layers=[2, 3, 4], extra_blocks=LastLevelP6P7(256, 256))
    model = RetinaNet(backbone, 91, min_size=size, max_size=1333).eval()
    base = rss_mb("VmRSS:")
    image = torch.rand(3, size, size)
    with torch.no_grad():
        batch, _ = model.transform([image])
        x = batch.tensors

        def net():
            model.head(list(model.backbone(x).values()))

        net_s = median(net, 1, repeats)
        full_s = median(lambda: model([image]), 1, repeats)
    print(f"REF net_s={net_s:.4f} full_s={full_s:.4f} peak_rss_mb={rss_mb('VmHWM:'):.1f} base_rss_mb={base:.1f} torch={torch.__version__}")


if __name__ == "__main__":
    main()
