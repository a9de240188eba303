"""The standard-op unpooling block (portable ONNX, and the plugin's re-expansion) is exact.

Run in ONNX Runtime and compared bit for bit with ``max_unpool2d`` (indices from
``max_pool2d(return_indices=True)``), with a deliberately naive Python loop, and with the TensorRT
plugin's own index logic compiled for the host, on random and tie-heavy tensors at odd sizes,
with static and with run-time shapes, in FP32 and FP16.
"""

from __future__ import annotations

import zlib

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from gpu_helpers import missing
from onnx import TensorProto, helper
from unpool_reference import (
    assert_bit_equal,
    decoder_for,
    make_prepool,
    naive_unpool,
    torch_unpool,
)

from edgeseg.unpool_graph import (
    expansion_nodes,
    find_unpool_sites,
    unpool_node_names,
)

SHAPES = [(2, 3, 17, 11), (1, 2, 45, 67), (1, 4, 22, 30), (2, 2, 4, 4), (1, 1, 3, 2), (3, 1, 5, 7)]
# NaN excluded ("infinities-and-zeros", not "specials"): see the unpool_graph module doc.
KINDS = ["random", "relu", "small-integers", "zero-planes", "constant", "infinities-and-zeros"]


def unpool_model(
    shape: tuple[int, ...], static: bool, elem_type: int = TensorProto.FLOAT, opset: int = 18
) -> onnx.ModelProto:
    n, c, h, w = shape
    dims = [n, c, h, w] if static else ["n", c, "h", "w"]
    pooled = [n, c, h // 2, w // 2] if static else ["n", c, "hp", "wp"]
    nodes = expansion_nodes(
        "decoders.0.unpool",
        "decoder",
        "prepool",
        "out",
        prepool_hw=(h, w) if static else None,
        elem_type=elem_type,
        opset=opset,
    )
    graph = helper.make_graph(
        nodes,
        "unpool",
        [
            helper.make_tensor_value_info("decoder", elem_type, pooled),
            helper.make_tensor_value_info("prepool", elem_type, dims),
        ],
        [helper.make_tensor_value_info("out", elem_type, dims)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    onnx.checker.check_model(model, full_check=True)
    return model


def run_unpool(
    decoder: np.ndarray, prepool: np.ndarray, static: bool, opset: int = 18
) -> np.ndarray:
    elem = TensorProto.FLOAT16 if prepool.dtype == np.float16 else TensorProto.FLOAT
    model = unpool_model(prepool.shape, static, elem, opset)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"decoder": decoder, "prepool": prepool})[0]


@pytest.mark.parametrize("static", [True, False], ids=["static", "runtime-shapes"])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_block_matches_max_unpool2d(shape: tuple[int, ...], kind: str, static: bool) -> None:
    generator = torch.Generator().manual_seed(zlib.crc32(f"{kind}{shape}".encode()))
    prepool = make_prepool(kind, shape, generator)
    decoder = decoder_for(prepool, generator)
    out = run_unpool(decoder.numpy(), prepool.numpy(), static)
    assert_bit_equal(out, torch_unpool(decoder, prepool))


@pytest.mark.parametrize("kind", ["random", "relu", "small-integers"])
def test_block_matches_the_naive_loop_at_17x11(kind: str) -> None:
    generator = torch.Generator().manual_seed(1711)
    prepool = make_prepool(kind, (2, 3, 17, 11), generator).numpy()
    decoder = decoder_for(torch.from_numpy(prepool), generator).numpy()
    assert_bit_equal(run_unpool(decoder, prepool, static=True), naive_unpool(decoder, prepool))


def test_decoder_infinities_and_zeros_are_copied() -> None:
    prepool = np.array([[[[0.0, 1.0], [2.0, 3.0]], [[5.0, 1.0], [2.0, 3.0]]]], dtype=np.float32)
    decoder = np.array([[[[-0.0]], [[float("-inf")]]]], dtype=np.float32)
    out = run_unpool(decoder, prepool, static=True)
    assert out[0, 1, 0, 0] == float("-inf")
    # ONNX Runtime's Where returns +0.0 for a selected -0.0: equal in value, not in sign bit.
    np.testing.assert_array_equal(
        out, torch_unpool(torch.from_numpy(decoder), torch.from_numpy(prepool)).numpy()
    )


@pytest.mark.parametrize("static", [True, False], ids=["static", "runtime-shapes"])
def test_float16_block_matches_max_unpool2d(static: bool) -> None:
    generator = torch.Generator().manual_seed(16)
    prepool = make_prepool("relu", (2, 3, 17, 11), generator).half()
    decoder = decoder_for(prepool, generator).half()
    out = run_unpool(decoder.numpy(), prepool.numpy(), static)
    expected = torch_unpool(decoder.float(), prepool.float()).half().numpy()
    assert_bit_equal(out, expected)


@pytest.mark.parametrize("kind", ["relu", "small-integers", "constant"])
def test_block_matches_the_tensorrt_plugin_index_logic(kind: str) -> None:
    """The portable block and the plugin kernel's host build agree: the TensorRT graph's
    semantics are those of model.onnx."""
    from edgeseg.export.plugin import standalone

    if standalone.find_cxx() is None:
        missing("no C++ compiler to build the plugin's host kernel (g++)")
    library = standalone.load_library(standalone.host_library())
    generator = torch.Generator().manual_seed(7)
    prepool = make_prepool(kind, (2, 3, 45, 67), generator).numpy()
    decoder = decoder_for(torch.from_numpy(prepool), generator).numpy()
    kernel = standalone.unpool_host(library, decoder, prepool)
    assert_bit_equal(run_unpool(decoder, prepool, static=False), kernel)


@pytest.mark.parametrize("static", [True, False], ids=["static", "runtime-shapes"])
def test_sites_are_found_again(static: bool) -> None:
    model = unpool_model((1, 2, 45, 67), static)
    (site,) = find_unpool_sites(model)
    assert (site.name, site.decoder, site.prepool, site.output) == (
        "decoders.0.unpool",
        "decoder",
        "prepool",
        "out",
    )
    names = unpool_node_names(model)
    assert sorted(names) == sorted(n.name for n in model.graph.node)
    assert all(name.startswith("edgeseg_unpool/decoders.0.unpool/") for name in names)


def test_even_static_sizes_need_no_crop_or_pad() -> None:
    ops = {n.op_type for n in unpool_model((1, 2, 22, 30), static=True).graph.node}
    assert "Slice" not in ops and "Pad" not in ops
    ops = {n.op_type for n in unpool_model((1, 2, 45, 30), static=True).graph.node}
    assert {"Slice", "Pad"} <= ops


@pytest.mark.parametrize("opset", [17, 18, 21])
@pytest.mark.parametrize("static", [True, False], ids=["static", "runtime-shapes"])
def test_block_is_exact_at_every_supported_opset(opset: int, static: bool) -> None:
    """ReduceMax takes its axes as an attribute before opset 18 and as an input from 18 on."""
    generator = torch.Generator().manual_seed(opset)
    prepool = make_prepool("small-integers", (2, 3, 17, 11), generator)
    decoder = decoder_for(prepool, generator)
    out = run_unpool(decoder.numpy(), prepool.numpy(), static, opset)
    assert_bit_equal(out, torch_unpool(decoder, prepool).numpy())


def test_block_is_tensorrt_friendly() -> None:
    """No index output and no int64 data tensor: every int64 in the block is a shape constant
    of Reshape/Slice/Pad/ReduceMax or a Shape result (ONNX requires int64 there), and no op
    whose tie-breaking TensorRT leaves undocumented (ArgMax/ArgMin/TopK lower to ITopKLayer)."""
    for static in (True, False):
        model = unpool_model((2, 3, 17, 11), static)
        ops = {n.op_type for n in model.graph.node}
        assert not ops & {"ArgMax", "ArgMin", "TopK", "MaxUnpool", "Cast"}, ops
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
        types = {v.name: v.type.tensor_type.elem_type for v in inferred.graph.value_info}
        shape_inputs = {"Reshape": {1}, "Slice": {1, 2, 3}, "Pad": {1}, "ReduceMax": {1}}
        for node in model.graph.node:
            for slot, name in enumerate(node.input):
                is_int64 = types.get(name) == TensorProto.INT64 or (
                    name.endswith(("_shape", "_axes", "starts", "ends", "pads"))
                )
                if is_int64 and node.op_type not in ("Mul", "Sub", "Concat"):
                    assert slot in shape_inputs.get(node.op_type, set()), (node.name, slot)
            if node.op_type == "Equal":
                assert all(types.get(i) != TensorProto.INT64 for i in node.input), node.name
