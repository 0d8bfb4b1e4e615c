#!/usr/bin/python3
"""A small PyTorch DDP fine-tuning loop for a model exported by `retina export --torchvision` (the role torchvision's
detection reference train.py plays at scale; Debian does not ship the reference scripts).

Run with torchrun (or python3 -m torch.distributed.run), e.g. 2 processes on the CPU with the Gloo backend:
  python3 -m torch.distributed.run --nproc_per_node=2 scripts/ddp_finetune.py \
      --pth init.pth --json init.json --coco instances_train.json --iterations 10 --out finetuned.pth
Each process reads its DistributedSampler shard of the COCO dataset; gradients are all-reduced by DDP; rank 0 writes the
state_dict with torch.save (load it back with `retina eval/detect --weights finetuned.pth`).
"""
import argparse
import json
import os
import sys
import time

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP
from torchvision.io import read_image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torchvision_model  # noqa: E402


class CocoDetection(torch.utils.data.Dataset):
    def __init__(self, path, category_ids):
        d = json.load(open(path))
        root = os.path.dirname(os.path.abspath(path))
        self.images = d["images"]
        self.root = root
        self.index = {c: i for i, c in enumerate(category_ids)}
        self.anns = {}
        for a in d["annotations"]:
            self.anns.setdefault(a["image_id"], []).append(a)

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        im = self.images[i]
        img = read_image(os.path.join(self.root, im["file_name"])).float() / 255.0
        anns = self.anns.get(im["id"], [])
        boxes = torch.tensor([[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]] for a in anns],
                             dtype=torch.float32).reshape(-1, 4)
        labels = torch.tensor([self.index[a["category_id"]] for a in anns], dtype=torch.int64)
        return img, {"boxes": boxes, "labels": labels}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--pth", required=True)
    p.add_argument("--json", required=True)
    p.add_argument("--coco", required=True)
    p.add_argument("--iterations", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=2, help="images per process per iteration")
    p.add_argument("--lr", type=float, default=0.0025)
    p.add_argument("--out", required=True)
    a = p.parse_args()
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    args = json.load(open(a.json))
    model = torchvision_model.build(args)
    model.load_state_dict(torch.load(a.pth), strict=True)
    model.train()
    ddp = DDP(model)
    cats = args.get("category_ids") or list(range(args["num_classes"]))
    data = CocoDetection(a.coco, cats)
    sampler = torch.utils.data.distributed.DistributedSampler(data, num_replicas=world, rank=rank, shuffle=True, seed=0)
    loader = torch.utils.data.DataLoader(data, batch_size=a.batch_size, sampler=sampler, collate_fn=lambda b: tuple(zip(*b)))
    params = [q for q in model.parameters() if q.requires_grad]
    opt = torch.optim.SGD(params, lr=a.lr, momentum=0.9, weight_decay=1e-4)
    it, epoch, t0 = 0, 0, time.time()
    while it < a.iterations:
        sampler.set_epoch(epoch)
        for images, targets in loader:
            losses = ddp(list(images), list(targets))
            loss = sum(losses.values())
            opt.zero_grad()
            loss.backward()
            opt.step()
            it += 1
            reduced = loss.detach().clone()
            dist.all_reduce(reduced)
            if rank == 0:
                print(f"it {it}/{a.iterations} world {world} loss {reduced.item() / world:.4f} "
                      f"(cls {losses['classification'].item():.4f} box {losses['bbox_regression'].item():.4f}) {time.time() - t0:.1f}s", flush=True)
            if it >= a.iterations:
                break
        epoch += 1
    if rank == 0:
        tmp = a.out + ".tmp"
        torch.save(model.state_dict(), tmp)
        os.replace(tmp, a.out)
        print(f"wrote {a.out}", flush=True)
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
