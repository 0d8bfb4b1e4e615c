"""Writes tests/RetinaSharp.Tests/Fixtures/losses/torchvision_sigmoid_focal_loss.json: values and gradients of
torchvision 0.14's ops.sigmoid_focal_loss (float64) on a small fixed input, the reference the C# tests compare
both focal-loss paths with. Run: /usr/bin/python3 scripts/focal_loss_fixture.py"""
import json
import os

import torch
from torchvision.ops import sigmoid_focal_loss

torch.manual_seed(20170807)
rows, classes = 6, 7
logits = (torch.randn(rows, classes, dtype=torch.float64) * 4.0).clamp(-12, 12)
targets = (torch.rand(rows, classes) < 0.3).to(torch.float64)

cases = []
for alpha, gamma in [(0.25, 2.0), (-1.0, 0.0), (0.5, 0.5), (0.25, 3.3), (0.9, 1.0)]:
    for reduction in ["none", "sum", "mean"]:
        x = logits.clone().requires_grad_(True)
        loss = sigmoid_focal_loss(x, targets, alpha=alpha, gamma=gamma, reduction=reduction)
        loss.sum().backward()
        cases.append({
            "alpha": None if alpha < 0 else alpha,
            "gamma": gamma,
            "reduction": reduction,
            "loss": loss.detach().flatten().tolist(),
            "grad": x.grad.flatten().tolist(),
        })

out = {
    "source": "torchvision.ops.sigmoid_focal_loss, torchvision " + __import__("torchvision").__version__,
    "shape": [rows, classes],
    "logits": logits.flatten().tolist(),
    "targets": targets.flatten().tolist(),
    "cases": cases,
}
path = os.path.join(os.path.dirname(__file__), "..", "tests", "RetinaSharp.Tests", "Fixtures", "losses",
                    "torchvision_sigmoid_focal_loss.json")
with open(path, "w") as f:
    json.dump(out, f, indent=1)
print("wrote", os.path.normpath(path))
