#!/usr/bin/python3
"""Validates ONNX files written by `retina export` with the ONNX reference checker (Debian's python3-onnx).

Usage: /usr/bin/python3 scripts/check_onnx.py model.onnx [more.onnx ...]

For each file: onnx.checker.check_model (full_check=True: also strict shape inference), then prints the opset,
IR version, RetinaSharp's metadata, the node count per stage (the first part of each node name) and the graph's
inputs and outputs. Exit code 0 when every file passes, 1 otherwise. Not needed to build, test or run RetinaSharp.
"""
import collections
import sys

import onnx


def check(path):
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    meta = {p.key: p.value for p in model.metadata_props}
    opsets = ", ".join(f"{o.domain or 'ai.onnx'} {o.version}" for o in model.opset_import)
    print(f"{path}: OK (IR {model.ir_version}, opset {opsets}, {len(model.graph.node)} nodes, "
          f"{len(model.graph.initializer)} initializers)")
    for key in ("retinasharp.format", "retinasharp.input_size"):
        print(f"  {key} = {meta.get(key, '(missing)')}")
    print(f"  retinasharp.classes = {meta.get('retinasharp.classes', '(missing)')[:120]}")
    stages = collections.Counter(n.name.split("/")[0] for n in model.graph.node)
    print("  nodes per stage: " + ", ".join(f"{k} {v}" for k, v in stages.items()))

    def shape(v):
        dims = [d.dim_param or str(d.dim_value) for d in v.type.tensor_type.shape.dim]
        return f"{v.name} ({', '.join(dims)}) {onnx.TensorProto.DataType.Name(v.type.tensor_type.elem_type).lower()}"
    print("  inputs: " + "; ".join(shape(v) for v in model.graph.input))
    print("  outputs: " + "; ".join(shape(v) for v in model.graph.output))
    if "retinasharp.format" not in meta:
        raise ValueError("no retinasharp.format metadata: not written by retina export")


def main(paths):
    if not paths:
        print(__doc__)
        return 2
    failed = 0
    for p in paths:
        try:
            check(p)
        except Exception as e:  # report every file, then fail
            print(f"{p}: FAILED: {e}")
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
