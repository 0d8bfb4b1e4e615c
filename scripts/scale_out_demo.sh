#!/usr/bin/env bash
# The scale-out round trip of docs/scale-out.md, for real, on this machine's CPU:
#   Fashion-MNIST scenes -> a short RetinaSharp training (demo-like, ResNet-18, 96 px) -> retina export --torchvision
#   -> strict load + detection parity check in torchvision (scripts/torchvision_roundtrip.py)
#   -> 2-process PyTorch DDP fine-tuning with the Gloo backend (scripts/ddp_finetune.py)
#   -> retina eval --weights finetuned.pth (the torch.save'd result loads straight back).
# Needs Debian's python3-torch 1.13 / python3-torchvision 0.14 (/usr/bin/python3) and a built CLI.
# Usage: scripts/scale_out_demo.sh [WORKDIR] (default /tmp/retinasharp-scale-out); ITERS / DDP_ITERS override the lengths.
set -euo pipefail
cd "$(dirname "$0")/.."
W=${1:-/tmp/retinasharp-scale-out}
ITERS=${ITERS:-40}
DDP_ITERS=${DDP_ITERS:-6}
RETINA=${RETINA:-"dotnet run --project src/RetinaSharp.Cli -c Release --no-build --"}
mkdir -p "$W"
[ -f "$W/data/instances_train.json" ] || $RETINA data fashion-scenes --out "$W/data" --train 64 --val 16 --size 96
[ -f "$W/run/model.rsnet" ] || $RETINA train --data "$W/data/instances_train.json" --backbone resnet18 --fpn-channels 64 \
    --min-size 96 --max-size 96 --iterations "$ITERS" --batch-size 4 --lr 0.01 --log-every 10 --model-only --out "$W/run"
$RETINA export --weights "$W/run/model.rsnet" --torchvision "$W/export/init.pth"

# Parity: RetinaSharp's detections vs torchvision's on the validation scenes (cap high enough not to cut ties).
$RETINA detect "$W/data/val" --weights "$W/run/model.rsnet" --out "$W/detect" --score-threshold 0.01 --max-detections 2000
/usr/bin/python3 scripts/torchvision_roundtrip.py --pth "$W/export/init.pth" --json "$W/export/init.json" \
    --detect-dir "$W/detect" --score-threshold 0.01 --max-detections 2000 --out "$W/detect/torchvision_detections.json" \
    || echo "(parity check reported mismatches; see above)"

# DDP: what torchrun --nproc_per_node=2 does (env:// rendezvous), started by hand because Debian's torchrun 1.13
# fails on Python 3.12 (AttributeError in torch.distributed.elastic's redirects map).
export MASTER_ADDR=127.0.0.1 MASTER_PORT=${MASTER_PORT:-29517} WORLD_SIZE=2
pids=()
for r in 0 1; do
  RANK=$r LOCAL_RANK=$r /usr/bin/python3 scripts/ddp_finetune.py --pth "$W/export/init.pth" --json "$W/export/init.json" \
      --coco "$W/data/instances_train.json" --iterations "$DDP_ITERS" --out "$W/finetuned.pth" &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done

$RETINA eval --data "$W/data/instances_val.json" --weights "$W/finetuned.pth" --min-size 96 --max-size 96 --out "$W/eval"
