#!/usr/bin/python3
"""Reference for the `detect` suite: the eager loop a torchvision 0.14 user writes to run RetinaNet R50-FPN over a
folder of photos. Builds retinanet_resnet50_fpn(weights=None, weights_backbone=None, num_classes=91,
detections_per_img=100) (shorter side 800, longer side at most 1333; 100 detections per image as `retina detect` keeps,
where torchvision's default is 300), loads the suite's .pth, eval mode, torch.inference_mode(); then per image, in file
order: torchvision.io.read_image (RGB, uint8), float in [0, 1], model([img]), the boxes scoring >= 0.5 drawn with
torchvision.utils.draw_bounding_boxes and written as OUT/<stem>.detections.png (torchvision.io.write_png), one JSON
line per image in OUT/detections.jsonl; at the end OUT/detections.json (COCO results: image ids 1..N, bbox
[x, y, w, h]), which is what `retina detect` writes. Prints one line
REF total_s=<median wall, weights file to last output> load_s=<building + loading> loop_s=<the images>
peak_rss_mb=<VmHWM> detections=<in detections.json> images=<N> blas=<libblas.so.3>
usage: detect_ref.py FOLDER PTH OUT [REPEATS (1)] [THREADS (2)]"""
import json
import os
import shutil
import statistics
import time

import torch
from torchvision.io import ImageReadMode, read_image, write_png
from torchvision.models.detection import retinanet_resnet50_fpn
from torchvision.utils import draw_bounding_boxes

import benchutil

EXTENSIONS = (".jpg", ".jpeg", ".png")


def detect_folder(files, pth, out):
    """One run: weights file to all outputs written. Returns (load seconds, loop seconds, detections)."""
    os.makedirs(out, exist_ok=True)
    t0 = time.perf_counter()
    model = retinanet_resnet50_fpn(weights=None, weights_backbone=None, num_classes=91, detections_per_img=100)
    model.load_state_dict(torch.load(pth))
    model.eval()
    t1 = time.perf_counter()
    results = []
    with torch.inference_mode(), open(os.path.join(out, "detections.jsonl"), "w") as lines:
        for image_id, path in enumerate(files, start=1):
            image = read_image(path, ImageReadMode.RGB)
            det = model([image.float() / 255.0])[0]
            boxes, scores, labels = det["boxes"], det["scores"], det["labels"]
            keep = scores >= 0.5
            drawn = draw_bounding_boxes(image, boxes[keep],
                                        labels=[f"class {int(k)} {float(s):.2f}" for k, s in zip(labels[keep], scores[keep])])
            stem = os.path.splitext(os.path.basename(path))[0]
            write_png(drawn, os.path.join(out, stem + ".detections.png"))
            mine = [{"image_id": image_id, "category_id": int(k), "bbox": [x1, y1, x2 - x1, y2 - y1], "score": float(s)}
                    for (x1, y1, x2, y2), s, k in zip(boxes.tolist(), scores, labels)]
            lines.write(json.dumps({"image_id": image_id, "file_name": path, "width": image.shape[2],
                                    "height": image.shape[1], "detections": mine}) + "\n")
            results.extend(mine)
    with open(os.path.join(out, "detections.json"), "w") as f:
        json.dump(results, f)
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1, len(results)


def main():
    args = benchutil.parse_args(__doc__, ("folder", str), ("pth", str), ("out", str), ("repeats", int, 1),
                                ("threads", int, 2))
    torch.set_num_threads(args.threads)
    files = sorted(os.path.join(args.folder, f) for f in os.listdir(args.folder) if f.lower().endswith(EXTENSIONS))
    runs = []
    for r in range(args.repeats):
        out = os.path.join(args.out, f"run{r}")
        load_s, loop_s, detections = detect_folder(files, args.pth, out)
        runs.append((load_s + loop_s, load_s, loop_s, detections))
        shutil.rmtree(out)
    total = statistics.median(r[0] for r in runs)
    median_run = min(runs, key=lambda r: abs(r[0] - total))
    benchutil.report("REF", total_s=total, load_s=median_run[1], loop_s=median_run[2],
                     peak_rss_mb=benchutil.peak_rss_mb(), detections=runs[-1][3], images=len(files),
                     blas=benchutil.blas(), torch=torch.__version__)


if __name__ == "__main__":
    main()
