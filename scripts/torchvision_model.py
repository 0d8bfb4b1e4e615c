"""Builds the torchvision 0.14 RetinaNet described by the JSON that `retina export --torchvision` writes beside the .pth.

build(args) returns an (untrained) torchvision.models.detection.RetinaNet with exactly the exported architecture and
inference settings; load the .pth into it with model.load_state_dict(torch.load(pth), strict=True).
build_stock(args) uses the stock builder named in args["torchvision_builder"] (retinanet_resnet50_fpn or _v2), or None.
"""
from functools import partial

import torch
from torch import nn
from torchvision.models.detection import RetinaNet, retinanet_resnet50_fpn, retinanet_resnet50_fpn_v2
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import resnet_fpn_backbone
from torchvision.models.detection.retinanet import RetinaNetHead
from torchvision.models.detection.transform import GeneralizedRCNNTransform
from torchvision.ops import misc
from torchvision.ops.feature_pyramid_network import LastLevelP6P7
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.models import resnet


def _kwargs(a):
    return dict(min_size=a["min_size"], max_size=a["max_size"], image_mean=a["image_mean"], image_std=a["image_std"],
                score_thresh=a["score_thresh"], nms_thresh=a["nms_thresh"], detections_per_img=a["detections_per_img"],
                fg_iou_thresh=a["fg_iou_thresh"], bg_iou_thresh=a["bg_iou_thresh"], topk_candidates=a["topk_candidates"])


def _finish(model, a):
    model.head.regression_head._loss_type = a["box_loss_type"]
    if a["size_divisible"] != 32:
        model.transform = GeneralizedRCNNTransform(a["min_size"], a["max_size"], a["image_mean"], a["image_std"],
                                                   size_divisible=a["size_divisible"])
    return model


def anchor_generator(a):
    sizes = tuple(tuple(level) for level in a["anchor_sizes"])
    return AnchorGenerator(sizes, (tuple(a["aspect_ratios"]),) * len(sizes))


def build(a, frozen=True):
    """The exported architecture from its parts; frozen=False gives nn.BatchNorm2d (train-mode batch statistics)."""
    if a["backbone_norm"] == "GroupNorm32":
        norm = lambda c: nn.GroupNorm(32, c)  # noqa: E731
    else:
        norm = misc.FrozenBatchNorm2d if frozen else nn.BatchNorm2d
    body = getattr(resnet, a["backbone_name"])(weights=None, norm_layer=norm)
    e = a["extra_blocks"]
    layers = a["returned_layers"]
    # Freeze as torchvision's builders do: the last trainable_backbone_layers stages get gradients.
    trainable = ["layer4", "layer3", "layer2", "layer1", "conv1"][: a["trainable_backbone_layers"]]
    if a["trainable_backbone_layers"] == 5:
        trainable.append("bn1")
    for name, p in body.named_parameters():
        if all(not name.startswith(t) for t in trainable):
            p.requires_grad_(False)
    c2 = body.inplanes // 8
    backbone = BackboneWithFPN(body, {f"layer{k}": str(i) for i, k in enumerate(layers)},
                               [c2 * 2 ** (k - 1) for k in layers], a["fpn_out_channels"],
                               extra_blocks=LastLevelP6P7(e["in_channels"], e["out_channels"]))
    anchors = anchor_generator(a)
    head = RetinaNetHead(a["fpn_out_channels"], anchors.num_anchors_per_location()[0], a["num_classes"],
                         norm_layer=partial(nn.GroupNorm, 32) if a["head_norm"] == "GroupNorm32" else None)
    model = RetinaNet(backbone, a["num_classes"], anchor_generator=anchors, head=head, **_kwargs(a))
    return _finish(model, a)


def build_stock(a):
    name = a.get("torchvision_builder")
    if name is None:
        return None
    fn = {"retinanet_resnet50_fpn": retinanet_resnet50_fpn, "retinanet_resnet50_fpn_v2": retinanet_resnet50_fpn_v2}[name]
    model = fn(weights=None, weights_backbone=None, num_classes=a["num_classes"], **_kwargs(a))
    model.anchor_generator = anchor_generator(a)  # same count per location (the export names a builder only then)
    return _finish(model, a)
