#!/usr/bin/python3
"""Reference for the `data` benchmark suite: one epoch of a torchvision-style detection data pipeline on the
suite's COCO dataset (PIL decode, random horizontal flip of image and boxes, to_tensor), through
torch.utils.data.DataLoader with one worker process (ours: one background thread), batches of 16, shuffled.

usage: data_ref.py INSTANCES_JSON BATCH
Prints "REF epoch_s=.. images=.. images_per_s=.. peak_rss_mb=.. delta_rss_mb=..".
"""
import json
import os

import benchutil


def main():
    args = benchutil.parse_args(__doc__, ("instances_json", str), ("batch", int))
    import torch
    from PIL import Image
    import torchvision.transforms.functional as F

    path, batch = args.instances_json, args.batch
    root = os.path.dirname(os.path.abspath(path))
    torch.set_num_threads(1)
    before = benchutil.rss_mb()
    coco = json.load(open(path))
    boxes = {}
    for a in coco["annotations"]:
        x, y, w, h = a["bbox"]
        boxes.setdefault(a["image_id"], []).append([x, y, x + w, y + h])
    cats = sorted(c["id"] for c in coco["categories"])
    images = coco["images"]

    class Scenes(torch.utils.data.Dataset):
        def __len__(self):
            return len(images)

        def __getitem__(self, i):
            im = images[i]
            img = Image.open(os.path.join(root, im["file_name"])).convert("RGB")
            b = torch.tensor(boxes.get(im["id"], []), dtype=torch.float32).reshape(-1, 4)
            t = F.to_tensor(img)
            if torch.rand(1).item() < 0.5:
                t = t.flip(-1)
                w = t.shape[-1]
                b = torch.stack([w - b[:, 2], b[:, 1], w - b[:, 0], b[:, 3]], dim=1)
            return t, {"boxes": b}

    g = torch.Generator()
    g.manual_seed(1)
    loader = torch.utils.data.DataLoader(Scenes(), batch_size=batch, shuffle=True, generator=g, num_workers=1,
                                         prefetch_factor=2, collate_fn=lambda x: x)
    watch = benchutil.Stopwatch()
    n = 0
    for b in loader:
        n += len(b)
    epoch, _ = watch.lap()
    peak = benchutil.peak_rss_mb()  # this process only, not the loader's worker
    benchutil.report("REF", epoch_s=epoch, images=n, images_per_s=n / epoch, peak_rss_mb=peak, delta_rss_mb=peak - before)


if __name__ == "__main__":
    main()
