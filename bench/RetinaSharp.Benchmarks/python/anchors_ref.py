"""Reference for the `data-anchors` suite: the best anchor IoU of every box of a COCO-sized synthetic set, in numpy.

Reads the binary set written by the suite (int32 image count, then per image int32 width, height; int32 box count, then
per box int32 image index and float32 x1, y1, x2, y2), applies torchvision's RetinaNet training geometry (resize to
min_size/max_size with torchvision's float32 scale and floor, float32 box scaling, padding to 32, P3-P7 feature sizes, torchvision's cell anchors with
float32 rounding, anchors at column * stride) and takes, per anchor shape, the grid cell nearest the box centre (the
best one: per axis the overlap is a symmetric trapezoid of the centre distance), vectorised over all boxes, keeping the
maximum over the 45 shapes. Prints "REF seconds=... positive=... mean_best_iou=..." (median of 3 runs).

Usage: anchors_ref.py SET.bin [MIN_SIZE] [MAX_SIZE]
"""
import numpy as np

import benchutil


def cell_anchors():
    sizes = [[x, int(x * 2 ** (1 / 3)), int(x * 2 ** (2 / 3))] for x in (32, 64, 128, 256, 512)]
    ratios = np.array([0.5, 1.0, 2.0], dtype=np.float32)
    out = []
    for s in sizes:
        scales = np.array(s, dtype=np.float32)
        hr = np.sqrt(ratios)
        wr = np.float32(1) / hr
        ws = (wr[:, None] * scales[None, :]).reshape(-1)
        hs = (hr[:, None] * scales[None, :]).reshape(-1)
        out.append(np.round(np.stack([-ws, -hs, ws, hs], 1) / np.float32(2)).astype(np.float64))
    return out


def read_set(path):
    raw = np.fromfile(path, dtype=np.uint8)
    n_img = int(raw[:4].view(np.int32)[0])
    sizes = raw[4:4 + 8 * n_img].view(np.int32).reshape(n_img, 2)
    off = 4 + 8 * n_img
    n_box = int(raw[off:off + 4].view(np.int32)[0])
    rec = raw[off + 4:off + 4 + 20 * n_box].reshape(n_box, 20)
    img = rec[:, :4].copy().view(np.int32).reshape(-1)
    xyxy = rec[:, 4:].copy().view(np.float32).reshape(n_box, 4)
    return sizes, img, xyxy


def analyse(sizes, img, xyxy, min_size, max_size, cells):
    w = sizes[:, 0].astype(np.int64)
    h = sizes[:, 1].astype(np.int64)
    # torchvision 0.14's scale, in float32: size / side is side.reciprocal() * size; the sides then floor in float64
    one = np.float32(1)
    scale = np.minimum(one / np.minimum(h, w).astype(np.float32) * np.float32(min_size),
                       one / np.maximum(h, w).astype(np.float32) * np.float32(max_size)).astype(np.float64)
    rh = np.maximum(1, np.floor(h * scale)).astype(np.int64)
    rw = np.maximum(1, np.floor(w * scale)).astype(np.int64)
    ph = (rh + 31) // 32 * 32
    pw = (rw + 31) // 32 * 32
    ratio_w = rw.astype(np.float32) / w.astype(np.float32)
    ratio_h = rh.astype(np.float32) / h.astype(np.float32)
    b = xyxy * np.stack([ratio_w, ratio_h, ratio_w, ratio_h], 1)[img]      # float32, as the training transform
    b = b.astype(np.float64)
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    cx = 0.5 * (b[:, 0] + b[:, 2])
    cy = 0.5 * (b[:, 1] + b[:, 3])
    fh, fw = ph.copy(), pw.copy()
    for _ in range(3):
        fh, fw = (fh - 1) // 2 + 1, (fw - 1) // 2 + 1
    best = np.zeros(len(b))
    for level in range(5):
        sx = (pw // fw)[img].astype(np.float64)
        sy = (ph // fh)[img].astype(np.float64)
        nx = fw[img] - 1
        ny = fh[img] - 1
        for a in cells[level]:
            i = np.clip(np.floor((cx - 0.5 * (a[0] + a[2])) / sx + 0.5), 0, nx)
            j = np.clip(np.floor((cy - 0.5 * (a[1] + a[3])) / sy + 0.5), 0, ny)
            ix = np.maximum(0, np.minimum(b[:, 2], i * sx + a[2]) - np.maximum(b[:, 0], i * sx + a[0]))
            iy = np.maximum(0, np.minimum(b[:, 3], j * sy + a[3]) - np.maximum(b[:, 1], j * sy + a[1]))
            inter = ix * iy
            iou = inter / (area + (a[2] - a[0]) * (a[3] - a[1]) - inter)
            np.maximum(best, iou, out=best)
        fh, fw = (fh - 1) // 2 + 1, (fw - 1) // 2 + 1
    return best


def main():
    args = benchutil.parse_args(__doc__, ("set", str), ("min_size", int, 800), ("max_size", int, 1333))
    sizes, img, xyxy = read_set(args.set)
    cells = cell_anchors()
    result = {}

    def run():
        result["best"] = analyse(sizes, img, xyxy, args.min_size, args.max_size, cells)

    seconds = benchutil.median_seconds(run, warmup=1, repeats=3)
    best = result["best"]
    benchutil.report("REF", seconds=seconds, boxes=len(best), positive=int((best >= 0.5).sum()), mean_best_iou=float(best.mean()))


if __name__ == "__main__":
    main()
