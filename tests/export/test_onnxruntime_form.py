"""The ONNX Runtime form of the unpooling (MaxPool Indices -> MaxUnpool) that ``model.onnx``
holds: bit-exact against ``max_unpool2d`` and a naive loop on random and tie-heavy tensors at odd
sizes, found again as sites, and rewritten to the same TensorRT plugin graph as the block form."""

from __future__ import annotations

from collections import Counter

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper
from unpool_reference import assert_bit_equal, decoder_for, make_prepool, naive_unpool, torch_unpool

from edgeseg.backends.runner import run_onnx
from edgeseg.card import ModelCard
from edgeseg.export.trt_graph import to_trt_graph, trt_graph_problems
from edgeseg.unpool_graph import (
    expansion_nodes,
    find_unpool_sites,
    reexpand_plugins,
    to_maxunpool_form,
)

SHAPES = [(2, 3, 17, 11), (1, 2, 45, 67), (1, 4, 22, 30), (1, 1, 3, 2)]
# NaN excluded: ONNX Runtime's MaxPool never picks a NaN, PyTorch's does (unpool_graph's doc).
KINDS = ["random", "relu", "small-integers", "zero-planes", "constant", "infinities-and-zeros"]


def pool_and_block(shape: tuple[int, ...], static: bool) -> onnx.ModelProto:
    """prepool -> MaxPool (as the encoder pools it) and the standard-op block (decoder, prepool)."""
    n, c, h, w = shape
    dims = [n, c, h, w] if static else ["n", c, "h", "w"]
    pooled = [n, c, h // 2, w // 2] if static else ["n", c, "hp", "wp"]
    pool = helper.make_node("MaxPool", ["prepool"], ["pooled"], kernel_shape=[2, 2], strides=[2, 2])
    block = expansion_nodes(
        "decoders.0.unpool", "decoder", "prepool", "out", prepool_hw=(h, w) if static else None
    )
    graph = helper.make_graph(
        [pool, *block],
        "unpool",
        [
            helper.make_tensor_value_info("decoder", TensorProto.FLOAT, pooled),
            helper.make_tensor_value_info("prepool", TensorProto.FLOAT, dims),
        ],
        [
            helper.make_tensor_value_info("out", TensorProto.FLOAT, dims),
            helper.make_tensor_value_info("pooled", TensorProto.FLOAT, pooled),
        ],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def run(model: onnx.ModelProto, decoder: np.ndarray, prepool: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(["out"], {"decoder": decoder, "prepool": prepool})[0]


@pytest.mark.parametrize("static", [True, False], ids=["static", "runtime-shapes"])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_maxunpool_form_matches_max_unpool2d(shape: tuple, kind: str, static: bool) -> None:
    generator = torch.Generator().manual_seed(len(kind) * 7 + shape[-1])
    prepool = make_prepool(kind, shape, generator)
    decoder = decoder_for(prepool, generator)
    fast = to_maxunpool_form(pool_and_block(shape, static))
    onnx.checker.check_model(fast, full_check=True)
    actual = run(fast, decoder.numpy(), prepool.numpy())
    assert_bit_equal(actual, torch_unpool(decoder, prepool).numpy())


@pytest.mark.parametrize("kind", ["relu", "small-integers", "constant"])
def test_maxunpool_form_matches_the_naive_loop_at_17x11(kind: str) -> None:
    generator = torch.Generator().manual_seed(5)
    prepool = make_prepool(kind, (1, 2, 17, 11), generator)
    decoder = decoder_for(prepool, generator)
    actual = run(
        to_maxunpool_form(pool_and_block((1, 2, 17, 11), True)), decoder.numpy(), prepool.numpy()
    )
    assert_bit_equal(actual, naive_unpool(decoder.numpy(), prepool.numpy()))


def test_sites_and_structure() -> None:
    model = pool_and_block((1, 2, 17, 11), static=True)
    fast = to_maxunpool_form(model)
    ops = Counter(n.op_type for n in fast.graph.node)
    assert ops == Counter({"MaxPool": 1, "Shape": 1, "MaxUnpool": 1})
    assert len(next(n for n in fast.graph.node if n.op_type == "MaxPool").output) == 2
    (site,) = find_unpool_sites(fast)
    (original,) = find_unpool_sites(model)
    assert (site.decoder, site.prepool, site.output) == (
        original.decoder,
        original.prepool,
        original.output,
    )


def test_a_block_without_its_pool_is_refused() -> None:
    model = pool_and_block((1, 2, 8, 8), static=True)
    model.graph.node[0].op_type = "AveragePool"
    with pytest.raises(ValueError, match="no 2x2 MaxPool pools"):
        to_maxunpool_form(model)


@pytest.mark.slow
def test_the_tensorrt_graph_is_the_same_from_either_form() -> None:
    from edgeseg.export.torch_to_onnx import export_onnx
    from edgeseg.models import create_model

    torch.manual_seed(2)
    model = create_model("segnet-basic", 3, channels=8, kernel_size=3, depth=3).eval()
    card = ModelCard(
        architecture="segnet-basic",
        num_classes=3,
        class_names=("a", "b", "c"),
        palette=((0, 0, 0), (1, 1, 1), (2, 2, 2)),
        input_hw=(24, 40),
    )
    portable = export_onnx(model, card)
    from_fast = to_trt_graph(to_maxunpool_form(portable))
    from_blocks = to_trt_graph(portable)
    assert trt_graph_problems(from_fast, 3) == []
    ops = Counter(n.op_type for n in from_fast.graph.node)
    assert ops == Counter(n.op_type for n in from_blocks.graph.node)
    x = np.random.default_rng(0).standard_normal((1, 3, 24, 40)).astype(np.float32)
    np.testing.assert_array_equal(
        run_onnx(reexpand_plugins(from_fast), x), run_onnx(reexpand_plugins(from_blocks), x)
    )
    with torch.no_grad():
        np.testing.assert_allclose(
            run_onnx(to_maxunpool_form(portable), x), model(torch.from_numpy(x)).numpy(), atol=1e-5
        )
