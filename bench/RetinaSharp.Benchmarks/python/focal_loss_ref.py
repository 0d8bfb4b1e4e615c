"""Reference side of the focal-loss benchmark: torchvision 0.14's ops.sigmoid_focal_loss (Debian's python3-torch),
forward + backward with reduction="sum" on float32 logits of the given shape with about `pos` positives.
Prints one line: "REF time_s=<median seconds> peak_extra_bytes=<peak RSS beyond the inputs> loss=<value>".
Usage: /usr/bin/python3 focal_loss_ref.py <d0,d1,...> <positive fraction> <threads> <warmup> <repeats>"""
import torch
from torchvision.ops import sigmoid_focal_loss

import benchutil


def main():
    args = benchutil.parse_args(__doc__, ("shape", benchutil.int_list), ("pos", float), ("threads", int), ("warmup", int), ("repeats", int))
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    logits = torch.randn(*args.shape, dtype=torch.float32)
    targets = (torch.rand(*args.shape) < args.pos).to(torch.float32)

    def step():
        x = logits.detach().requires_grad_(True)
        loss = sigmoid_focal_loss(x, targets, alpha=0.25, gamma=2.0, reduction="sum")
        loss.backward()
        return loss.item()

    seconds = benchutil.median_seconds(step, args.warmup, args.repeats)
    base = benchutil.status_kb("VmRSS:") * 1024
    if not benchutil.reset_peak_rss():
        print("REF error=cannot_reset_peak_rss")
    value = step()
    peak = benchutil.status_kb("VmHWM:") * 1024
    benchutil.report("REF", time_s=seconds, peak_extra_bytes=max(0, peak - base), loss=value)


if __name__ == "__main__":
    main()
