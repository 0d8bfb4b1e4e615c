#!/usr/bin/python3
"""Reference for the `eval` benchmark suite: pycocotools' COCOeval (bbox) on the suite's synthetic files.

usage: eval_ref.py GT_JSON DT_JSON
Prints "REF load_s=.. eval_s=.. total_s=.. load_cpu_s=.. eval_cpu_s=.. peak_rss_mb=.. delta_rss_mb=.." and "STATS v1 ... v12".
pycocotools is not a Debian package: build it from the cocoapi source (see scripts/make_eval_fixtures.py) and
point PYCOCOTOOLS_PATH at its PythonAPI folder. Without it, prints "SKIP ..." and exits 0.
"""
import contextlib
import io
import os
import resource
import sys
import time


def rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def main():
    if os.environ.get("PYCOCOTOOLS_PATH"):
        sys.path.insert(0, os.environ["PYCOCOTOOLS_PATH"])
    import types
    try:
        import matplotlib  # noqa: F401  (pycocotools imports it for drawing only)
    except ImportError:
        for name, attrs in (("matplotlib", {}), ("matplotlib.pyplot", {}), ("matplotlib.collections", {"PatchCollection": None}),
                            ("matplotlib.patches", {"Polygon": None})):
            module = types.ModuleType(name)
            module.__dict__.update(attrs)
            sys.modules[name] = module
    import numpy as np
    if not hasattr(np, "float"):
        np.float = float
    try:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    except ImportError as e:
        print(f"SKIP pycocotools not importable ({e}); set PYCOCOTOOLS_PATH")
        return 0
    gt_path, dt_path = sys.argv[1], sys.argv[2]
    base = rss_mb()
    t0 = time.perf_counter()
    c0 = time.process_time()
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(gt_path)
        dt = gt.loadRes(dt_path)
        t1 = time.perf_counter()
        c1 = time.process_time()
        ev = COCOeval(gt, dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    t2 = time.perf_counter()
    c2 = time.process_time()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(f"REF load_s={t1 - t0:.4f} eval_s={t2 - t1:.4f} total_s={t2 - t0:.4f} load_cpu_s={c1 - c0:.4f} eval_cpu_s={c2 - c1:.4f} peak_rss_mb={peak:.1f} delta_rss_mb={peak - base:.1f}")
    print("STATS " + " ".join(f"{v!r}" for v in ev.stats.tolist()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
