#!/usr/bin/python3
"""Reference fixtures for RetinaSharp.Evaluation.CocoEvaluator: pycocotools' COCOeval (bbox) on small random cases.

Writes tests/RetinaSharp.Tests/Fixtures/eval/caseN_gt.json, caseN_dt.json and caseN_expected.json (the 12 stats,
the recall array (T, K, A, M) and the mean over recall points of the precision array, also (T, K, A, M)).

pycocotools is not packaged by Debian. Build it from the official source (github.com/cocodataset/cocoapi) with
Debian's cython3 and python3-dev:
    apt-get install -y cython3 python3-dev
    cd cocoapi/PythonAPI && cython3 -3 pycocotools/_mask.pyx -o pycocotools/_mask.c
    gcc -shared -fPIC -O2 -I/usr/include/python3.11 -I$(python3 -c "import numpy;print(numpy.get_include())") \
        -I../common pycocotools/_mask.c ../common/maskApi.c -o pycocotools/_mask$(python3-config --extension-suffix)
then run:  PYCOCOTOOLS_PATH=cocoapi/PythonAPI /usr/bin/python3 scripts/make_eval_fixtures.py
"""
import contextlib
import copy
import io
import json
import os
import sys

import numpy as np

if os.environ.get("PYCOCOTOOLS_PATH"):
    sys.path.insert(0, os.environ["PYCOCOTOOLS_PATH"])
try:
    import matplotlib  # noqa: F401  (pycocotools imports it for drawing only)
except ImportError:
    import types
    for name, attrs in (("matplotlib", {}), ("matplotlib.pyplot", {}), ("matplotlib.collections", {"PatchCollection": None}),
                        ("matplotlib.patches", {"Polygon": None})):
        module = types.ModuleType(name)
        module.__dict__.update(attrs)
        sys.modules[name] = module
if not hasattr(np, "float"):  # the cocoapi master branch still uses np.float (removed in numpy 1.24)
    np.float = float
from pycocotools.coco import COCO  # noqa: E402
from pycocotools.cocoeval import COCOeval  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "RetinaSharp.Tests", "Fixtures", "eval")


def make_case(seed, num_images, category_ids, max_gt, fp_per_image, crowd_rate, flood_images=0):
    """Random ground truth over all area ranges plus jittered, duplicated, missed and false detections."""
    rng = np.random.RandomState(seed)
    image_ids = sorted(rng.choice(np.arange(1, 100000), num_images, replace=False).tolist())
    order = rng.permutation(num_images)  # images listed out of id order in the file
    images = [{"id": int(image_ids[i]), "file_name": f"{image_ids[i]}.jpg", "width": 640, "height": 480} for i in order]
    gt_cats = category_ids[:-1]  # the last category has no ground truth at all
    anns, dets = [], []
    next_id = int(rng.randint(1, 1000))
    for img in images:
        for _ in range(rng.randint(0, max_gt + 1)):
            side = float(np.exp(rng.uniform(np.log(6), np.log(300))))
            w = round(side * rng.uniform(0.5, 1.5), 2)
            h = round(side * rng.uniform(0.5, 1.5), 2)
            x = round(rng.uniform(0, 640 - min(w, 600)), 2)
            y = round(rng.uniform(0, 480 - min(h, 460)), 2)
            cat = int(rng.choice(gt_cats))
            crowd = int(rng.rand() < crowd_rate)
            area = round(w * h * rng.uniform(0.4, 1.0), 3)  # segment area, smaller than the box
            anns.append({"id": next_id, "image_id": img["id"], "category_id": cat, "bbox": [x, y, w, h],
                         "area": area, "iscrowd": crowd})
            next_id += int(rng.randint(1, 5))
            for _ in range(rng.choice([0, 1, 1, 1, 2])):  # missed, found, or found twice
                jit = lambda v, s: round(v + rng.normal(0, s), 2)
                dw = max(0.5, jit(w, 0.1 * w))
                dh = max(0.5, jit(h, 0.1 * h))
                dcat = cat if rng.rand() < 0.9 else int(rng.choice(category_ids))
                dets.append({"image_id": img["id"], "category_id": dcat,
                             "bbox": [jit(x, 0.1 * w), jit(y, 0.1 * h), dw, dh],
                             "score": round(float(rng.uniform(0.05, 1.0)), 2)})  # 2 decimals: many score ties
        for _ in range(rng.randint(0, fp_per_image + 1)):
            w, h = float(rng.uniform(2, 200)), float(rng.uniform(2, 200))
            dets.append({"image_id": img["id"], "category_id": int(rng.choice(category_ids)),
                         "bbox": [round(float(rng.uniform(0, 600)), 2), round(float(rng.uniform(0, 440)), 2), round(w, 2), round(h, 2)],
                         "score": round(float(rng.uniform(0.0, 0.9)), 2)})
    for img in images[:flood_images]:  # more than 100 detections of one category in one image
        cat = int(gt_cats[0])
        for _ in range(130):
            dets.append({"image_id": img["id"], "category_id": cat,
                         "bbox": [round(float(rng.uniform(0, 600)), 1), round(float(rng.uniform(0, 440)), 1),
                                  round(float(rng.uniform(5, 150)), 1), round(float(rng.uniform(5, 150)), 1)],
                         "score": round(float(rng.uniform(0.0, 1.0)), 2)})
    perm = rng.permutation(len(dets))
    dets = [dets[i] for i in perm]
    cats = [{"id": int(c), "name": f"class{c}", "supercategory": "thing"} for c in category_ids]
    return {"images": images, "annotations": anns, "categories": cats}, dets


def evaluate(gt, dets):
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = copy.deepcopy(gt)
        coco.createIndex()
        res = coco.loadRes(copy.deepcopy(dets))
        ev = COCOeval(coco, res, "bbox")
        ev.evaluate()
        ev.accumulate()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        ev.summarize()
    precision = ev.eval["precision"]  # (T, R, K, A, M)
    mean_over_r = np.where((precision > -1).all(axis=1), precision.mean(axis=1), -1.0)
    return {"stats": ev.stats.tolist(), "summary": out.getvalue(),
            "recall": ev.eval["recall"].tolist(), "precision_mean_over_recall": mean_over_r.tolist(),
            "category_ids": [int(c) for c in ev.params.catIds]}


def main():
    os.makedirs(OUT, exist_ok=True)
    cases = [
        dict(seed=1, num_images=12, category_ids=[1, 3, 7, 90, 91], max_gt=6, fp_per_image=4, crowd_rate=0.1),
        dict(seed=2, num_images=30, category_ids=[2, 5, 11], max_gt=9, fp_per_image=8, crowd_rate=0.15),
        dict(seed=3, num_images=8, category_ids=[4, 8, 15, 16], max_gt=5, fp_per_image=3, crowd_rate=0.0, flood_images=2),
        dict(seed=4, num_images=20, category_ids=[1, 2, 3, 4, 5, 6], max_gt=12, fp_per_image=20, crowd_rate=0.05),
    ]
    for n, c in enumerate(cases, start=1):
        gt, dets = make_case(**c)
        expected = evaluate(gt, dets)
        for name, obj in (("gt", gt), ("dt", dets), ("expected", expected)):
            with open(os.path.join(OUT, f"case{n}_{name}.json"), "w") as f:
                json.dump(obj, f, separators=(",", ":"))
        print(f"case{n}: {len(gt['images'])} images, {len(gt['annotations'])} gt, {len(dets)} dt, AP={expected['stats'][0]:.4f}")


if __name__ == "__main__":
    main()
