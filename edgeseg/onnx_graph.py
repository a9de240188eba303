"""Small reads and edits of an ONNX graph that several edgeseg graph rewrites share: tensor
types and static sizes, replacing nodes in place, opset imports. ``onnx`` and nothing else."""

from __future__ import annotations

import onnx
from onnx import TensorProto, helper


def tensor_types(model: onnx.ModelProto) -> dict[str, onnx.TypeProto]:
    """Known types of a graph's tensors: inputs, outputs, value_info and initializers."""
    graph = model.graph
    types = {v.name: v.type for v in (*graph.input, *graph.value_info, *graph.output)}
    for init in graph.initializer:
        types.setdefault(init.name, helper.make_tensor_type_proto(init.data_type, init.dims))
    return types


def static_hw(type_proto: onnx.TypeProto | None) -> tuple[int, int] | None:
    """(H, W) of a 4-D tensor type when both are fixed numbers, else None."""
    if type_proto is None or not type_proto.tensor_type.HasField("shape"):
        return None
    dims = type_proto.tensor_type.shape.dim
    if len(dims) != 4 or not all(d.HasField("dim_value") for d in dims[2:]):
        return None
    return int(dims[2].dim_value), int(dims[3].dim_value)


def elem_type_of(types: dict[str, onnx.TypeProto], name: str) -> int:
    type_proto = types.get(name)
    if type_proto is None or not type_proto.tensor_type.elem_type:
        return TensorProto.FLOAT
    return int(type_proto.tensor_type.elem_type)


def replace_nodes(model: onnx.ModelProto, replacements: dict[int, list[onnx.NodeProto]]) -> None:
    """Replace ``graph.node[i]`` by ``replacements[i]`` (a list, possibly empty), in place."""
    new_nodes: list[onnx.NodeProto] = []
    for index, node in enumerate(model.graph.node):
        new_nodes.extend(replacements.get(index, [node]))
    del model.graph.node[:]
    model.graph.node.extend(new_nodes)


def onnx_opset(model: onnx.ModelProto) -> int:
    """The graph's default-domain opset (18 when it imports none, as a fresh graph would)."""
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 18)


def set_opset(model: onnx.ModelProto, domain: str, version: int | None) -> None:
    """Add, update or (``version=None``) remove the opset import of ``domain``."""
    kept = [o for o in model.opset_import if o.domain != domain]
    del model.opset_import[:]
    model.opset_import.extend(kept)
    if version is not None:
        model.opset_import.append(helper.make_opsetid(domain, version))


def logits_graph(model: onnx.ModelProto) -> onnx.ModelProto:
    """``model`` without its final ``ArgMax`` (an ``--argmax`` export, whose ArgMax may be
    followed by one Cast): a copy whose output is the logits the ArgMax read; ``model`` itself
    when it does not end in an ArgMax. The precision gate needs those logits' margins."""
    graph = model.graph
    producers = {out: node for node in graph.node for out in node.output}
    node = producers.get(graph.output[0].name)
    dropped = []
    if node is not None and node.op_type == "Cast":
        dropped.append(node)
        node = producers.get(node.input[0])
    if node is None or node.op_type != "ArgMax":
        return model
    dropped.append(node)
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    gone = {id_ for id_ in (tuple(n.output) for n in dropped)}
    keep = [n for n in copy.graph.node if tuple(n.output) not in gone]
    del copy.graph.node[:]
    copy.graph.node.extend(keep)
    del copy.graph.output[:]
    copy.graph.output.append(helper.make_tensor_value_info(node.input[0], TensorProto.FLOAT, None))
    return copy
