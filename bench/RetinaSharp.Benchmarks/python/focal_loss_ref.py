"""Reference side of the focal-loss benchmark: torchvision 0.14's ops.sigmoid_focal_loss (Debian's python3-torch),
forward + backward with reduction="sum" on float32 logits of the given shape with about `pos` positives.
Prints one line: "REF time_s=<median seconds> peak_extra_bytes=<peak RSS beyond the inputs> loss=<value>".
Usage: /usr/bin/python3 focal_loss_ref.py <d0,d1,...> <positive fraction> <threads> <warmup> <repeats>"""
import statistics
import sys
import time

import torch
from torchvision.ops import sigmoid_focal_loss


def status_kb(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1])
    return 0


def reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def main():
    shape = [int(s) for s in sys.argv[1].split(",")]
    pos = float(sys.argv[2])
    threads, warmup, repeats = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    logits = torch.randn(*shape, dtype=torch.float32)
    targets = (torch.rand(*shape) < pos).to(torch.float32)

    def step():
        x = logits.detach().requires_grad_(True)
        loss = sigmoid_focal_loss(x, targets, alpha=0.25, gamma=2.0, reduction="sum")
        loss.backward()
        return loss.item()

    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)

    base = status_kb("VmRSS:") * 1024
    if not reset_peak():
        print("REF error=cannot_reset_peak_rss")
    value = step()
    peak = status_kb("VmHWM:") * 1024
    print(f"REF time_s={statistics.median(times):.6f} peak_extra_bytes={max(0, peak - base)} loss={value:.6f}")


if __name__ == "__main__":
    main()
