"""The TensorRT graph: each unpooling becomes one node of the edgeseg plugin.

TensorRT's ONNX parser rejects ``MaxUnpool`` and MaxPool's ``Indices`` output, and refuses an op
named ``MaxUnpool`` before it looks for plugins. :func:`to_trt_graph` therefore keeps the
encoder's single-output MaxPool and replaces each unpooling with one ``EdgesegUnpool`` node
(custom domain ``edgeseg``, attributes ``plugin_namespace``/``plugin_version`` and nothing else,
inputs: decoder tensor, the encoder's pre-pool tensor). The plugin recomputes each window's first
maximum from the pre-pool tensor, so no index tensor and no int64 reaches TensorRT.

It accepts any ONNX from this exporter: the portable FP32 graph, its FP16 conversion, or a copy a
quantizer filled with QuantizeLinear/DequantizeLinear nodes (the INT8 path rewrites after
quantization; Q/DQ nodes inside an unpooling block die with it). As a fallback it also rewrites
plain ``MaxUnpool`` nodes fed by a 2x2/stride-2 MaxPool's Indices, as other exporters write them.

A TensorRT graph cannot run in ONNX Runtime as it is. :func:`edgeseg.unpool_graph.reexpand_plugins`
(core: the ONNX Runtime backend uses it too) turns each plugin node back into the standard-op
block with the plugin's exact semantics, so the graph around the plugin nodes (their wiring
above all) is verified in ONNX Runtime against PyTorch.
"""

from __future__ import annotations

import onnx
from onnx import TensorProto, helper

from edgeseg.backends.tensorrt import PLUGIN_NAMESPACE, PLUGIN_VERSION
from edgeseg.errors import EdgesegError
from edgeseg.onnx_graph import set_opset, tensor_types
from edgeseg.unpool_graph import (
    PLUGIN_DOMAIN,
    PLUGIN_DOMAIN_VERSION,
    UNPOOL_SCOPE,
    find_unpool_sites,
    is_2x2_window,
    plugin_node,
    plugin_nodes,
)

INDEX_OPS = ("MaxUnpool", "Scatter", "ScatterElements", "ScatterND", "GatherElements", "GatherND")


def _maxunpool_rewrites(model: onnx.ModelProto) -> dict[int, onnx.NodeProto]:
    """Plugin nodes for MaxUnpool(X, Indices of MaxPool(P)): {node index: replacement}."""
    producers = {out: n for n in model.graph.node for out in n.output}
    rewrites = {}
    for index, node in enumerate(model.graph.node):
        if node.op_type != "MaxUnpool" or node.domain not in ("", "ai.onnx"):
            continue
        if node.name.startswith(f"{UNPOOL_SCOPE}/"):
            continue  # edgeseg's own ONNX Runtime form: rewritten as a site below
        pool = producers.get(node.input[1])
        if (
            pool is None
            or pool.op_type != "MaxPool"
            or len(pool.output) < 2
            or pool.output[1] != node.input[1]
            or not is_2x2_window(pool)
            or not is_2x2_window(node)
        ):
            raise EdgesegError(
                f"MaxUnpool node {node.name!r} is not fed by a 2x2 stride-2 MaxPool's indices; "
                "only SegNet's 2x2 unpooling can become the edgeseg plugin"
            )
        rewrites[index] = plugin_node(
            node.name or f"maxunpool{index}", node.input[0], pool.input[0], node.output[0]
        )
    return rewrites


def remove_dead_nodes(model: onnx.ModelProto) -> None:
    """Drop nodes no graph output depends on, unused MaxPool Indices outputs, unused
    initializers and stale value_info, in place."""
    graph = model.graph
    live = {o.name for o in graph.output}
    kept = []
    for node in reversed(graph.node):
        if any(out in live for out in node.output if out):
            kept.append(node)
            live.update(i for i in node.input if i)
            for attr in node.attribute:  # subgraphs (If/Loop) read outer tensors implicitly
                for sub in [attr.g, *attr.graphs]:
                    for sub_node in sub.node:
                        live.update(i for i in sub_node.input if i)
    kept.reverse()
    for node in kept:
        if node.op_type == "MaxPool" and len(node.output) > 1 and node.output[1] not in live:
            del node.output[1:]
    del graph.node[:]
    graph.node.extend(kept)
    produced = {o for n in kept for o in n.output} | {i.name for i in graph.input}
    initializers = [i for i in graph.initializer if i.name in live]
    del graph.initializer[:]
    graph.initializer.extend(initializers)
    value_info = [v for v in graph.value_info if v.name in produced]
    del graph.value_info[:]
    graph.value_info.extend(value_info)


def to_trt_graph(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of ``model`` with every unpooling replaced by one plugin node (see module doc).

    Raises EdgesegError when the model holds no unpooling this function recognises, and
    RuntimeError when the result fails :func:`trt_graph_problems` (one plugin node per unpooling
    replaced), so no caller can write or build a malformed graph.
    """
    result = onnx.ModelProto()
    result.CopyFrom(model)
    sites = find_unpool_sites(result)
    by_output = {site.output: site for site in sites}
    replacements: dict[int, onnx.NodeProto] = _maxunpool_rewrites(result)
    for index, node in enumerate(result.graph.node):
        for out in node.output:
            site = by_output.get(out)
            if site is not None and node.name.startswith(f"{UNPOOL_SCOPE}/{site.name}/"):
                replacements[index] = plugin_node(
                    site.name, site.decoder, site.prepool, site.output
                )
    if not replacements:
        raise EdgesegError(
            "no unpooling found in the ONNX model (neither edgeseg's unpooling blocks nor "
            "MaxUnpool nodes); pass a model written by edgeseg export"
        )
    new_nodes = [replacements.get(i, node) for i, node in enumerate(result.graph.node)]
    del result.graph.node[:]
    result.graph.node.extend(new_nodes)
    remove_dead_nodes(result)
    set_opset(result, PLUGIN_DOMAIN, PLUGIN_DOMAIN_VERSION)
    problems = trt_graph_problems(result, len(replacements))
    if problems:  # edgeseg's bug, not the user's: it keeps its traceback
        raise RuntimeError(f"the TensorRT graph is malformed: {'; '.join(problems)}")
    return result


def trt_graph_problems(model: onnx.ModelProto, expected_plugins: int | None = None) -> list[str]:
    """What keeps ``model`` from being a valid edgeseg TensorRT graph; empty when it is one.

    Checks: ``onnx.checker`` (full, with the plugin domain); no MaxUnpool, scatter or
    GatherElements/ND; every MaxPool single-output; every plugin node in the plugin domain with
    exactly the two attributes, float inputs, and input 1 being the tensor a 2x2 MaxPool pools;
    no node left from an unpooling block; the plugin count if given.
    """
    problems = []
    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as exc:  # checker errors come in several exception types
        problems.append(f"onnx.checker: {str(exc).strip().splitlines()[0]}")
    nodes = list(model.graph.node)
    for node in nodes:
        if node.op_type in INDEX_OPS:
            problems.append(f"{node.op_type} node {node.name!r} left in the graph")
        if node.op_type == "MaxPool" and len([o for o in node.output if o]) != 1:
            problems.append(f"MaxPool {node.name!r} still has an Indices output")
        if node.name.startswith(f"{UNPOOL_SCOPE}/"):
            problems.append(f"unpooling block node {node.name!r} left in the graph")
    pooled = {n.input[0] for n in nodes if n.op_type == "MaxPool" and is_2x2_window(n)}
    types = tensor_types(model)
    plugins = plugin_nodes(model)
    for node in plugins:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if node.domain != PLUGIN_DOMAIN:
            problems.append(f"plugin node {node.name!r} in domain {node.domain!r}")
        if attrs != {
            "plugin_namespace": PLUGIN_NAMESPACE.encode(),
            "plugin_version": PLUGIN_VERSION.encode(),
        }:
            problems.append(f"plugin node {node.name!r} has attributes {sorted(attrs)}")
        if len(node.input) != 2 or len(node.output) != 1:
            problems.append(f"plugin node {node.name!r} needs 2 inputs and 1 output")
            continue
        if node.input[1] not in pooled:
            problems.append(f"plugin node {node.name!r}: input 1 is not a MaxPool's input")
        for name in node.input:
            elem = types[name].tensor_type.elem_type if name in types else None
            if elem is not None and elem not in (TensorProto.FLOAT, TensorProto.FLOAT16):
                problems.append(f"plugin node {node.name!r}: input {name!r} has type {elem}")
    if expected_plugins is not None and len(plugins) != expected_plugins:
        problems.append(f"{len(plugins)} plugin nodes, expected {expected_plugins}")
    return problems
