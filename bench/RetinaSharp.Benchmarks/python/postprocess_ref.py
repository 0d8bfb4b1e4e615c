#!/usr/bin/python3
"""Reference side of the `postprocess` benchmark: torchvision 0.14's RetinaNet.postprocess_detections and
ops.nms on the exact tensors the C# suite wrote (raw little-endian float32 files described by meta.json).

usage: postprocess_ref.py DIR REPEATS THREADS
Prints one line "tv_postprocess_s=.. tv_postprocess_cpu_s=.. tv_nms_<n>_s=.. tv_mem_bytes=.. threads=.." and writes the detections to
DIR/tv_boxes.bin, tv_scores.bin (float32) and tv_labels.bin (int64) for the suite's equality check.
"""
import json
import os
import types

import torch
import torchvision
from torchvision.models.detection import _utils as det_utils
from torchvision.models.detection.retinanet import RetinaNet

import benchutil


def load(path, shape, dtype=torch.float32):
    with open(path, "rb") as f:
        data = bytearray(f.read())
    return torch.frombuffer(data, dtype=dtype).reshape(shape).clone()


def save(t, path):
    """Writes a tensor's raw little-endian bytes (no numpy on Debian's python3-torch)."""
    with open(path, "wb") as f:
        f.write(bytes(t.contiguous().view(torch.uint8).reshape(-1).tolist()))


def main():
    args = benchutil.parse_args(__doc__, ("dir", str), ("repeats", int), ("threads", int))
    folder, repeats, threads = args.dir, args.repeats, args.threads
    torch.set_num_threads(threads)
    meta = json.load(open(os.path.join(folder, "meta.json")))
    k = meta["num_classes"]
    logits, deltas, anchors = [], [], []
    for l, n in enumerate(meta["anchors_per_level"]):
        logits.append(load(os.path.join(folder, f"logits_{l}.bin"), (1, n, k)))
        deltas.append(load(os.path.join(folder, f"deltas_{l}.bin"), (1, n, 4)))
        anchors.append(load(os.path.join(folder, f"anchors_{l}.bin"), (n, 4)))
    s = meta["settings"]
    model = types.SimpleNamespace(box_coder=det_utils.BoxCoder(weights=(1.0, 1.0, 1.0, 1.0)),
                                  score_thresh=s["score_thresh"], topk_candidates=s["topk_candidates"],
                                  nms_thresh=s["nms_thresh"], detections_per_img=s["detections_per_img"])
    head = {"cls_logits": logits, "bbox_regression": deltas}
    image_shapes = [tuple(meta["image_size"])]

    def run():
        with torch.no_grad():
            return RetinaNet.postprocess_detections(model, head, [anchors], image_shapes)[0]

    rss0 = benchutil.status_kb("VmRSS:")
    benchutil.reset_peak_rss()
    out = run()
    mem = max(0, benchutil.status_kb("VmHWM:") - rss0) * 1024
    t_post, cpu_post = benchutil.median_wall_and_cpu(run, 2, repeats)

    nms_results = {}
    for case in meta["nms_cases"]:
        n = case["n"]
        boxes = load(os.path.join(folder, f"nms_boxes_{n}.bin"), (n, 4))
        scores = load(os.path.join(folder, f"nms_scores_{n}.bin"), (n,))
        t = benchutil.median_seconds(lambda: torchvision.ops.nms(boxes, scores, case["threshold"]), 2, repeats)
        keep = torchvision.ops.nms(boxes, scores, case["threshold"])
        save(keep.to(torch.int64), os.path.join(folder, f"tv_nms_keep_{n}.bin"))
        nms_results[f"tv_nms_{n}_s"] = t

    save(out["boxes"].to(torch.float32), os.path.join(folder, "tv_boxes.bin"))
    save(out["scores"].to(torch.float32), os.path.join(folder, "tv_scores.bin"))
    save(out["labels"].to(torch.int64), os.path.join(folder, "tv_labels.bin"))
    benchutil.report("", tv_postprocess_s=t_post, tv_postprocess_cpu_s=cpu_post, tv_mem_bytes=mem, threads=torch.get_num_threads(),
                     torch=torch.__version__, torchvision=torchvision.__version__, **nms_results)


if __name__ == "__main__":
    main()
