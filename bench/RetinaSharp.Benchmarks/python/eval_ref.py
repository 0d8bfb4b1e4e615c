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
import sys

import benchutil


def main():
    args = benchutil.parse_args(__doc__, ("gt_json", str), ("dt_json", str))
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
    base = benchutil.rss_mb()
    watch = benchutil.Stopwatch()
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(args.gt_json)
        dt = gt.loadRes(args.dt_json)
        load_s, load_cpu_s = watch.lap()
        ev = COCOeval(gt, dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
        eval_s, eval_cpu_s = watch.lap()
    peak = benchutil.peak_rss_mb()
    benchutil.report("REF", load_s=load_s, eval_s=eval_s, total_s=load_s + eval_s, load_cpu_s=load_cpu_s, eval_cpu_s=eval_cpu_s,
                     peak_rss_mb=peak, delta_rss_mb=peak - base)
    print("STATS " + " ".join(f"{v!r}" for v in ev.stats.tolist()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
