"""SegNet's unpooling in ONNX: the standard-op block, the ONNX Runtime form, the TensorRT plugin
node, and finding them again.

Three forms of the same exact operation, for three readers:

- the **block** of standard ops below: what the exporter writes first, what TensorRT's parser
  reads for a native engine, what quantizers annotate (``model.fp16.onnx``, ``model.int8.onnx``);
- the **ONNX Runtime form** (:func:`to_maxunpool_form`): ``MaxUnpool`` at the encoder MaxPool's
  ``Indices``, which ONNX Runtime runs 1.4-1.6x faster on a CPU; ``model.onnx`` holds it.
  TensorRT's parser rejects MaxUnpool and the Indices output, so nothing for TensorRT uses it;
- the **plugin node** (:func:`plugin_node`): one node of edgeseg's TensorRT plugin per unpooling.

The block recomputes every 2x2 window's first
maximum from the encoder's pre-pool tensor P (N, C, H, W) and places the decoder tensor
D (N, C, H//2, W//2) there, exactly as ``max_unpool2d(D, max_pool2d(P, 2, 2,
return_indices=True)[1], 2, 2, output_size=(H, W))``:

    crop       Slice(P) to (2·(H//2), 2·(W//2))      only for odd H or W (floor-mode pooling)
    windows    SpaceToDepth(blocksize=2)  -> (N, 4C, h, w), channel (2·dy + dx)·C + c
    planes     Reshape [0, 4, -1, 0]      -> (N, 4, C·h, w), axis 1 = position in the window
    window_max ReduceMax(axis 1)          -> the window's largest value (a value: no tie to break)
    at_max     Equal(planes, window_max)  -> every position holding it
    rank       Where(at_max, [8, 7, 6, 5], [4, 3, 2, 1]): earlier positions rank higher
    best_rank  ReduceMax(rank, axis 1)
    one_hot    Equal(rank, best_rank)     -> exactly one position: the first maximum
    select     Where(one_hot, Reshape(D, [0, 1, -1, 0]), 0)
    to_space   Reshape back to (N, 4C, h, w), DepthToSpace(DCR), the inverse of SpaceToDepth
    pad        Pad with zeros to (H, W): the rows/columns pooling dropped stay 0 (odd sizes)

Why not ``ArgMax``: ONNX's ArgMax says which tie wins (``select_last_index=0``: the first), but
TensorRT's parser lowers it to a TopK layer whose order among equal values NVIDIA does not
document, and ties are the common case here (ReLU zeros, INT8's 256 levels). Every op above
either yields a value (ReduceMax) or compares values exactly, so the block means the same in ONNX
Runtime and TensorRT, and it needs no int64 tensor besides the shape constants ONNX requires: no
index output and no Equal against int64 constants (the ArgMax form had both).

``Where`` (not a multiplication, which would turn inf·0 into NaN) keeps decoder values exact,
infinities included (ONNX Runtime's Where returns +0.0 for a selected -0.0: equal in value; the
plugin keeps the sign bit). Ties resolve to the first position as in PyTorch (-0.0 and +0.0
tie, as PyTorch's ``>`` has it). NaN in the pre-pool tensor is the one case that differs from
PyTorch (which picks a NaN's position; here no position equals a NaN maximum and the first
position takes the value); the TensorRT plugin follows PyTorch there.

Every node of one block is named ``edgeseg_unpool/<site>/<role>``: :func:`find_unpool_sites`
uses those names to find the block again (for the TensorRT rewrite, also after INT8 Q/DQ
insertion), and :func:`unpool_node_names` gives them to a quantizer's exclusion list.

The TensorRT graph holds one plugin node per unpooling instead (:func:`plugin_node`; the export
stage's ``trt_graph`` writes it). :func:`reexpand_plugins` turns each back into the block, so a
TensorRT graph runs in ONNX Runtime with the plugin's exact semantics. A core module, used by
export, calibration and the ONNX Runtime backend; it needs only ``onnx`` and numpy.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgeseg.backends.tensorrt import PLUGIN_NAMESPACE, PLUGIN_OP_TYPE, PLUGIN_VERSION
from edgeseg.onnx_graph import (
    elem_type_of,
    onnx_opset,
    replace_nodes,
    set_opset,
    static_hw,
    tensor_types,
)

UNPOOL_SCOPE = "edgeseg_unpool"

#: The exporter's internal placeholder (one node per unpooling, inputs decoder and pre-pool);
#: it exists only between ``torch.onnx.export`` and :func:`expand_markers`, never in a file.
MARKER_DOMAIN = "edgeseg.export"
MARKER_OP = "Unpool2x2"

_FLOAT_TYPES = (TensorProto.FLOAT, TensorProto.FLOAT16)

#: ONNX domain of the plugin node; ``onnx.checker`` needs an opset import for it. TensorRT's
#: parser finds the plugin by op type, ``plugin_version`` and ``plugin_namespace``.
PLUGIN_DOMAIN = "edgeseg"
PLUGIN_DOMAIN_VERSION = 1


@dataclass(frozen=True)
class UnpoolSite:
    """One unpooling found in a graph: tensor names of its inputs and output, and its nodes."""

    name: str
    decoder: str
    prepool: str
    output: str
    node_names: tuple[str, ...]


def _const(name: str, array: np.ndarray) -> onnx.NodeProto:
    return helper.make_node(
        "Constant", [], [name], name=name, value=numpy_helper.from_array(array, name)
    )


class _Block:
    """Nodes of one site's block under construction, named ``edgeseg_unpool/<site>/<role>``."""

    def __init__(self, site: str, dtype: type) -> None:
        self.scope = f"{UNPOOL_SCOPE}/{site}"
        self.dtype = dtype
        self.nodes: list[onnx.NodeProto] = []

    def name(self, role: str) -> str:
        return f"{self.scope}/{role}"

    def add(self, op: str, inputs: list[str], role: str, out: str | None = None, **attrs) -> str:
        """Append one node; returns its output's name (``out``, else the node's own name)."""
        output = out or self.name(role)
        self.nodes.append(helper.make_node(op, inputs, [output], name=self.name(role), **attrs))
        return output

    def const(self, role: str, values: Iterable[float] | np.ndarray, dtype: type = np.int64) -> str:
        self.nodes.append(_const(self.name(role), np.asarray(values, dtype=dtype)))
        return self.name(role)


def expansion_nodes(
    site: str,
    decoder: str,
    prepool: str,
    output: str,
    prepool_hw: tuple[int, int] | None = None,
    elem_type: int = TensorProto.FLOAT,
    opset: int = 18,
) -> list[onnx.NodeProto]:
    """The standard-op block for one unpooling, in topological order.

    ``decoder``/``prepool``/``output`` are tensor names. ``prepool_hw``: the pre-pool tensor's
    static (H, W), or None when they are only known at run time (the block then reads them
    with Shape ops and works for any size). ``elem_type``: FLOAT or FLOAT16, the type of D.
    ``opset``: the graph's; ReduceMax takes its axes as an input from opset 18, as an attribute
    before.
    """
    if elem_type not in _FLOAT_TYPES:
        raise ValueError(f"unpooling works on float32 or float16 tensors, not type {elem_type}")
    block = _Block(site, np.float16 if elem_type == TensorProto.FLOAT16 else np.float32)
    windows_in, even_hw = _crop_to_even(block, decoder, prepool, prepool_hw)
    windows = block.add("SpaceToDepth", [windows_in], "windows", blocksize=2)
    one_hot = _first_maximum(block, windows, opset)
    decoder_planes = block.add(
        "Reshape", [decoder, block.const("decoder_shape", [0, 1, -1, 0])], "decoder_planes"
    )
    zero = block.const("zero", np.zeros(()), block.dtype)
    selected = block.add("Where", [one_hot, decoder_planes, zero], "select")
    _back_to_space(block, selected, windows, prepool, prepool_hw, even_hw, output)
    return block.nodes


def _crop_to_even(
    block: _Block, decoder: str, prepool: str, prepool_hw: tuple[int, int] | None
) -> tuple[str, str | None]:
    """The pre-pool tensor cut to even H, W (floor-mode pooling drops the odd row/column):
    (tensor name, name of the run-time even (H, W) or None when static)."""
    if prepool_hw is None:
        pooled_hw = block.add("Shape", [decoder], "pooled_hw", start=2, end=4)
        even_hw = block.add("Mul", [pooled_hw, block.const("two", [2])], "even_hw")
        starts, axes = block.const("crop_starts", [0, 0]), block.const("crop_axes", [2, 3])
        return block.add("Slice", [prepool, starts, even_hw, axes], "crop"), even_hw
    height, width = (int(v) for v in prepool_hw)
    even = (height // 2 * 2, width // 2 * 2)
    if even == (height, width):
        return prepool, None
    crop = [
        prepool,
        block.const("crop_starts", [0, 0]),
        block.const("crop_ends", even),
        block.const("crop_axes", [2, 3]),
    ]
    return block.add("Slice", crop, "crop"), None


def _first_maximum(block: _Block, windows: str, opset: int) -> str:
    """(N, 4, C·h, w) bool: the first maximum of each window in row-major order.

    Exact without ArgMax (whose tie rule TensorRT's TopK does not document): the positions at
    the maximum get ranks 8..5, the others 4..1, and the highest rank is the first maximum.
    """

    def reduce_max(source: str, role: str) -> str:
        if opset >= 18:
            return block.add(
                "ReduceMax", [source, block.const(f"{role}_axes", [1])], role, keepdims=1
            )
        return block.add("ReduceMax", [source], role, axes=[1], keepdims=1)

    planes = block.add("Reshape", [windows, block.const("planes_shape", [0, 4, -1, 0])], "planes")
    at_max = block.add("Equal", [planes, reduce_max(planes, "window_max")], "at_max")
    ranks = {}
    for role, values in (("rank_hit", [8, 7, 6, 5]), ("rank_miss", [4, 3, 2, 1])):
        ranks[role] = block.const(role, np.reshape(values, (1, 4, 1, 1)), block.dtype)
    rank = block.add("Where", [at_max, ranks["rank_hit"], ranks["rank_miss"]], "rank")
    return block.add("Equal", [rank, reduce_max(rank, "best_rank")], "one_hot")


def _back_to_space(
    block: _Block,
    selected: str,
    windows: str,
    prepool: str,
    prepool_hw: tuple[int, int] | None,
    even_hw: str | None,
    output: str,
) -> None:
    """Windows back to (N, C, H, W), zero-padded to the pre-pool size (odd sizes)."""
    if prepool_hw is not None:
        height, width = prepool_hw
        shape = block.const("blocks_shape", [0, -1, height // 2, width // 2])
    else:
        shape = block.add("Shape", [windows], "blocks_shape")
    blocks = block.add("Reshape", [selected, shape], "blocks")
    odd = prepool_hw is not None and (prepool_hw[0] % 2 or prepool_hw[1] % 2)
    if prepool_hw is not None and not odd:
        block.add("DepthToSpace", [blocks], "to_space", out=output, blocksize=2, mode="DCR")
        return
    spatial = block.add("DepthToSpace", [blocks], "to_space", blocksize=2, mode="DCR")
    if prepool_hw is not None:
        pads = block.const("pads", [0, 0, 0, 0, 0, 0, prepool_hw[0] % 2, prepool_hw[1] % 2])
    else:
        prepool_size = block.add("Shape", [prepool], "prepool_hw", start=2, end=4)
        dropped = block.add("Sub", [prepool_size, even_hw], "dropped_hw")
        begin = block.const("pads_begin", [0] * 6)
        pads = block.add("Concat", [begin, dropped], "pads", axis=0)
    block.add("Pad", [spatial, pads], "pad", out=output, mode="constant")


def expand_nodes_like(model: onnx.ModelProto, op_type: str, domain: str) -> int:
    """Replace every ``domain::op_type`` node (inputs: decoder, pre-pool) by the standard block.

    Used for the exporter's placeholders and, to verify a TensorRT graph in ONNX Runtime, for
    the plugin nodes. Returns how many were expanded.
    """
    types = tensor_types(model)
    opset = onnx_opset(model)
    replacements: dict[int, list[onnx.NodeProto]] = {}
    for index, node in enumerate(model.graph.node):
        if node.op_type != op_type or node.domain != domain:
            continue
        site = node.name.split("/")[-1] or f"unpool{index}"
        decoder, prepool = node.input[0], node.input[1]
        replacements[index] = expansion_nodes(
            site,
            decoder,
            prepool,
            node.output[0],
            prepool_hw=static_hw(types.get(prepool)),
            elem_type=elem_type_of(types, decoder),
            opset=opset,
        )
    replace_nodes(model, replacements)
    set_opset(model, domain, None)
    return len(replacements)


def expand_markers(model: onnx.ModelProto) -> int:
    """Expand the exporter's placeholder nodes in place; returns how many there were."""
    return expand_nodes_like(model, MARKER_OP, MARKER_DOMAIN)


# --- finding the blocks again -----------------------------------------------------------------


def _split(name: str) -> tuple[str, str] | None:
    parts = name.split("/")
    if len(parts) < 3 or parts[0] != UNPOOL_SCOPE:
        return None
    return "/".join(parts[1:-1]), parts[-1]


def find_unpool_sites(model: onnx.ModelProto) -> list[UnpoolSite]:
    """The unpooling sites of an edgeseg ONNX, in graph order, in either form.

    Works on any graph that kept the sites' node names: the portable export (standard-op blocks
    or the ONNX Runtime form of :func:`to_maxunpool_form`), its FP16 conversion, and a quantized
    copy (Q/DQ nodes a quantizer put between a block's nodes are not part of a site; the
    TensorRT rewrite drops them with the block). Raises ValueError for a site with missing roles
    (a graph edited by something that renamed or removed nodes).
    """
    roles: dict[str, dict[str, onnx.NodeProto]] = {}
    for node in model.graph.node:
        parsed = _split(node.name)
        if parsed is not None:
            roles.setdefault(parsed[0], {})[parsed[1]] = node
    sites = []
    for site, nodes in roles.items():
        if "maxunpool" in nodes:
            required = ("maxunpool", "prepool_shape")
        else:
            required = ("windows", "decoder_planes", "to_space")
        missing = [r for r in required if r not in nodes]
        if missing:
            raise ValueError(f"unpooling block {site!r} lacks its {', '.join(missing)} node")
        if "maxunpool" in nodes:
            decoder = nodes["maxunpool"].input[0]
            prepool = nodes["prepool_shape"].input[0]
            output = nodes["maxunpool"].output[0]
        else:
            decoder = nodes["decoder_planes"].input[0]
            prepool = (nodes["crop"] if "crop" in nodes else nodes["windows"]).input[0]
            output = (nodes["pad"] if "pad" in nodes else nodes["to_space"]).output[0]
        names = tuple(n.name for n in nodes.values())
        sites.append(UnpoolSite(site, decoder, prepool, output, names))
    return sites


def unpool_node_names(model: onnx.ModelProto) -> list[str]:
    """Names of every node of every unpooling block: a quantizer's ``nodes_to_exclude``."""
    return [name for site in find_unpool_sites(model) for name in site.node_names]


# --- the TensorRT plugin node ----------------------------------------------------------------


def plugin_node(name: str, decoder: str, prepool: str, output: str) -> onnx.NodeProto:
    """One ``EdgesegUnpool`` node: (decoder (N,C,h,w), pre-pool (N,C,H,W)) -> (N,C,H,W)."""
    return helper.make_node(
        PLUGIN_OP_TYPE,
        [decoder, prepool],
        [output],
        name=f"{PLUGIN_OP_TYPE}/{name}",
        domain=PLUGIN_DOMAIN,
        plugin_namespace=PLUGIN_NAMESPACE,
        plugin_version=PLUGIN_VERSION,
    )


def plugin_nodes(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    """The plugin nodes of a graph (empty for a portable graph)."""
    return [n for n in model.graph.node if n.op_type == PLUGIN_OP_TYPE]


def reexpand_plugins(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of a TensorRT graph with each plugin node replaced by the standard-op block of
    identical semantics, runnable in ONNX Runtime."""
    result = onnx.ModelProto()
    result.CopyFrom(model)
    expand_nodes_like(result, PLUGIN_OP_TYPE, PLUGIN_DOMAIN)
    return result


# --- the ONNX Runtime form ---------------------------------------------------------------------


def is_2x2_window(node: onnx.NodeProto) -> bool:
    """A MaxPool/MaxUnpool with kernel 2x2, stride 2, no padding, floor mode, row-major indices."""
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    return (
        list(attrs.get("kernel_shape", [])) == [2, 2]
        and list(attrs.get("strides", [1, 1])) == [2, 2]
        and not any(attrs.get("pads", [0, 0, 0, 0]))
        and not attrs.get("ceil_mode", 0)
        and not attrs.get("storage_order", 0)
        and list(attrs.get("dilations", [1, 1])) == [1, 1]
    )


def to_maxunpool_form(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy in which each standard-op block is ``MaxUnpool`` fed by the encoder's MaxPool
    ``Indices``: what ONNX Runtime runs fastest on a CPU.

    Exact, ties included: ONNX Runtime's MaxPool keeps the first maximum of each window in
    row-major order (strict ``>``, as PyTorch), its flat N·C·H·W indices go straight back into
    its own MaxUnpool, and the output shape is read from the pre-pool tensor, so odd sizes keep
    their dropped row/column at 0. TensorRT's parser takes neither operator: the TensorRT graphs
    are made from the block form, and :func:`edgeseg.export.trt_graph.to_trt_graph` accepts this
    form too. Nodes keep the site's ``edgeseg_unpool/<site>/`` names (``prepool_shape``,
    ``maxunpool``), so :func:`find_unpool_sites` finds them. Raises ValueError when a block's
    pre-pool tensor is not pooled by a 2x2 MaxPool in the graph.
    """
    result = onnx.ModelProto()
    result.CopyFrom(model)
    pools = {
        n.input[0]: n for n in result.graph.node if n.op_type == "MaxPool" and is_2x2_window(n)
    }
    replacements: dict[str, list[onnx.NodeProto]] = {}
    dropped: set[str] = set()
    for site in find_unpool_sites(result):
        pool = pools.get(site.prepool)
        if pool is None:
            raise ValueError(f"unpooling {site.name!r}: no 2x2 MaxPool pools {site.prepool!r}")
        if len(pool.output) < 2 or not pool.output[1]:
            del pool.output[1:]
            pool.output.append(f"{UNPOOL_SCOPE}/{site.name}/indices")
        scope = f"{UNPOOL_SCOPE}/{site.name}"
        shape = helper.make_node(
            "Shape", [site.prepool], [f"{scope}/prepool_shape"], name=f"{scope}/prepool_shape"
        )
        unpool = helper.make_node(
            "MaxUnpool",
            [site.decoder, pool.output[1], f"{scope}/prepool_shape"],
            [site.output],
            name=f"{scope}/maxunpool",
            kernel_shape=[2, 2],
            strides=[2, 2],
        )
        replacements[site.output] = [shape, unpool]
        dropped.update(site.node_names)
    new_nodes: list[onnx.NodeProto] = []
    for node in result.graph.node:
        if node.name not in dropped:
            new_nodes.append(node)
        elif node.output and node.output[0] in replacements:  # the block's last node
            new_nodes.extend(replacements[node.output[0]])
    del result.graph.node[:]
    result.graph.node.extend(new_nodes)
    produced = {o for n in new_nodes for o in n.output} | {i.name for i in result.graph.input}
    kept = [v for v in result.graph.value_info if v.name in produced]
    del result.graph.value_info[:]
    result.graph.value_info.extend(kept)
    return result
