#!/usr/bin/python3
"""Dynamically quantizes an fp32 ONNX export (export_onnx.py) for ONNX Runtime, as onnxruntime's
quantize_dynamic does (its Python quantizer is not packaged in Debian; this uses python3-onnx only).

  quantize_onnx.py IN.onnx OUT.onnx

Every MatMul whose second input is a 2-D fp32 initializer W [K, N] (and every Gemm with a constant
B, transB 0 or 1, its C added after) becomes

  x_q, x_scale, x_zp = DynamicQuantizeLinear(x)          u8, one scale and zero point per tensor
  y = Cast(MatMulInteger(x_q, W_q, x_zp, 0), float) * (x_scale * w_scale)

with W_q int8, symmetric, one scale per output column (w_scale [N], zero point 0): the weight scheme
of clipkit's --precision int8, activations quantized per tensor as ONNX Runtime's dynamic graph
does (clipkit quantizes them per token). ONNX Runtime fuses the pattern into its
DynamicQuantizeMatMul kernel. Attention's activation x activation MatMuls stay fp32, as in
onnxruntime's quantize_dynamic.
"""
import argparse
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def quantize_weight(w):
    """w [K, N] fp32 -> (int8 [K, N], scale [N]) symmetric per output column."""
    amax = np.abs(w).max(axis=0)
    scale = np.where(amax > 0, amax / 127.0, 1.0).astype(np.float32)
    q = np.clip(np.rint(w / scale), -127, 127).astype(np.int8)
    return q, scale


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("inp")
    ap.add_argument("out")
    a = ap.parse_args()

    model = onnx.load(a.inp)
    g = model.graph
    inits = {t.name: t for t in g.initializer}
    consumers = {}
    for node in g.node:
        for i in node.input:
            consumers[i] = consumers.get(i, 0) + 1
    new_nodes, drop, added = [], set(), []
    count = 0
    for node in g.node:
        w_name = node.input[1] if len(node.input) > 1 else None
        w = inits.get(w_name)
        if node.op_type not in ("MatMul", "Gemm") or w is None or len(w.dims) != 2 or w.data_type != TensorProto.FLOAT:
            new_nodes.append(node)
            continue
        attrs = {at.name: helper.get_attribute_value(at) for at in node.attribute}
        if node.op_type == "Gemm" and (attrs.get("transA", 0) or attrs.get("alpha", 1.0) != 1.0
                                       or attrs.get("beta", 1.0) != 1.0):
            new_nodes.append(node)
            continue
        wf = numpy_helper.to_array(w)
        if node.op_type == "Gemm" and attrs.get("transB", 0):
            wf = wf.T
        q, scale = quantize_weight(np.ascontiguousarray(wf))
        p = f"{node.name or node.output[0]}_q{count}"
        count += 1
        x = node.input[0]
        added += [numpy_helper.from_array(q, p + "_W"), numpy_helper.from_array(scale, p + "_Wscale"),
                  numpy_helper.from_array(np.zeros((), np.int8), p + "_Wzp")]
        y = node.output[0]
        scaled = y if node.op_type == "MatMul" or len(node.input) < 3 else p + "_scaled"
        new_nodes += [
            helper.make_node("DynamicQuantizeLinear", [x], [p + "_xq", p + "_xs", p + "_xzp"], name=p + "_dql"),
            helper.make_node("MatMulInteger", [p + "_xq", p + "_W", p + "_xzp", p + "_Wzp"], [p + "_i32"],
                             name=p + "_mmi"),
            helper.make_node("Cast", [p + "_i32"], [p + "_f"], to=TensorProto.FLOAT, name=p + "_cast"),
            helper.make_node("Mul", [p + "_xs", p + "_Wscale"], [p + "_s"], name=p + "_smul"),
            helper.make_node("Mul", [p + "_f", p + "_s"], [scaled], name=p + "_mul"),
        ]
        if scaled != y:
            new_nodes.append(helper.make_node("Add", [scaled, node.input[2]], [y], name=p + "_bias"))
        consumers[w_name] -= 1
        if consumers[w_name] == 0:
            drop.add(w_name)
    if not count:
        sys.exit(f"quantize_onnx: {a.inp}: no MatMul/Gemm with a constant 2-D fp32 weight")
    del g.node[:]
    g.node.extend(new_nodes)
    kept = [t for t in g.initializer if t.name not in drop]
    del g.initializer[:]
    g.initializer.extend(kept + added)
    onnx.checker.check_model(model)
    onnx.save(model, a.out)
    print(f"quantize_onnx: {count} matmuls quantized -> {a.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
