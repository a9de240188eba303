"""FP32 ONNX -> FP16 ONNX with FP32 inputs and outputs (for TensorRT 11's strongly typed builds).

TensorRT 11 has no precision flags: a network's types come from the ONNX itself, so FP16 needs an
FP16 graph. This conversion is small on purpose (no onnxconverter_common, no ONNX Runtime): float
weights and constants become float16, one Cast after each float input and one before each float
output keep the interface FP32, and every float tensor in between, the plugin node's inputs and
output included, is float16. Works on the portable graph and on the TensorRT graph alike.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgeseg.errors import EdgesegError

FP16_MAX = float(np.finfo(np.float16).max)
#: Inputs that the ONNX spec requires to stay float32 (op type -> input indices).
_FLOAT32_INPUTS = {"Resize": {2}, "Upsample": {1}}
_QUANTIZED_OPS = {"QuantizeLinear", "DequantizeLinear"}


def _tensor_to_fp16(tensor: onnx.TensorProto) -> onnx.TensorProto:
    array = numpy_helper.to_array(tensor)
    finite = array[np.isfinite(array)]
    if finite.size and float(np.abs(finite).max()) > FP16_MAX:
        raise EdgesegError(
            f"weight {tensor.name!r} holds values beyond the FP16 range (max "
            f"{float(np.abs(finite).max()):.3g}); this model cannot run in FP16"
        )
    return numpy_helper.from_array(array.astype(np.float16), tensor.name)


def to_fp16(model: onnx.ModelProto) -> onnx.ModelProto:
    """A float16 copy of ``model`` whose graph inputs and outputs stay float32.

    Raises EdgesegError for a Q/DQ (INT8) model or weights beyond the FP16 range.
    """
    if any(n.op_type in _QUANTIZED_OPS for n in model.graph.node):
        raise EdgesegError("FP16 conversion applies to FP32 models, not to an INT8 (Q/DQ) model")
    result = onnx.ModelProto()
    result.CopyFrom(model)
    graph = result.graph
    keep_fp32 = {
        n.input[i]
        for n in graph.node
        for i in _FLOAT32_INPUTS.get(n.op_type, ())
        if i < len(n.input)
    }

    converted = []
    for init in graph.initializer:
        if init.data_type == TensorProto.FLOAT and init.name not in keep_fp32:
            converted.append(_tensor_to_fp16(init))
        else:
            converted.append(init)
    del graph.initializer[:]
    graph.initializer.extend(converted)

    for node in graph.node:
        for attr in node.attribute:
            if (
                attr.type == onnx.AttributeProto.TENSOR
                and attr.t.data_type == TensorProto.FLOAT
                and node.output[0] not in keep_fp32
            ):
                attr.t.CopyFrom(_tensor_to_fp16(attr.t))
            if node.op_type == "Cast" and attr.name == "to" and attr.i == TensorProto.FLOAT:
                attr.i = TensorProto.FLOAT16

    for value in graph.value_info:
        if value.type.tensor_type.elem_type == TensorProto.FLOAT:
            value.type.tensor_type.elem_type = TensorProto.FLOAT16

    def rename_uses(old: str, new: str) -> None:
        for node in graph.node:
            for i, name in enumerate(node.input):
                if name == old:
                    node.input[i] = new

    head, tail = [], []
    for value in graph.input:
        if value.type.tensor_type.elem_type == TensorProto.FLOAT:
            half = f"{value.name}/fp16"
            rename_uses(value.name, half)
            head.append(
                helper.make_node(
                    "Cast",
                    [value.name],
                    [half],
                    name=f"{value.name}/to_fp16",
                    to=TensorProto.FLOAT16,
                )
            )
    for value in graph.output:
        if value.type.tensor_type.elem_type == TensorProto.FLOAT:
            half = f"{value.name}/fp16"
            rename_uses(value.name, half)
            for node in graph.node:
                for i, name in enumerate(node.output):
                    if name == value.name:
                        node.output[i] = half
            tail.append(
                helper.make_node(
                    "Cast", [half], [value.name], name=f"{value.name}/to_fp32", to=TensorProto.FLOAT
                )
            )
    nodes = [*head, *graph.node, *tail]
    del graph.node[:]
    graph.node.extend(nodes)
    return result
