"""The TensorRT-graph rewrite on graphs other than a plain export: MaxUnpool from other exporters,
an INT8 (Q/DQ) copy from ONNX Runtime's quantizer, and graphs it must refuse."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper

from edgeseg.backends.tensorrt import PLUGIN_OP_TYPE
from edgeseg.card import ModelCard
from edgeseg.errors import EdgesegError
from edgeseg.export.torch_to_onnx import export_onnx
from edgeseg.export.trt_graph import (
    remove_dead_nodes,
    to_trt_graph,
    trt_graph_problems,
)
from edgeseg.models import create_model
from edgeseg.unpool_graph import plugin_nodes, reexpand_plugins, unpool_node_names


def tiny_card(input_hw: tuple[int, int] = (45, 67)) -> ModelCard:
    return ModelCard(
        architecture="segnet-basic",
        num_classes=3,
        class_names=("a", "b", "c"),
        palette=((0, 0, 0), (1, 1, 1), (2, 2, 2)),
        input_hw=input_hw,
        arch_args={"channels": 8, "kernel_size": 3},
    )


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(3)
    model = create_model("segnet-basic", 3, channels=8, kernel_size=3).eval()
    return model, export_onnx(model, tiny_card())


def run(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)[0]


def maxunpool_graph(kernel: int = 2) -> onnx.ModelProto:
    """MaxPool(Indices) -> MaxUnpool, as the ONNX spec (and older exporters) write SegNet."""
    pool = helper.make_node(
        "MaxPool", ["x"], ["pooled", "indices"], name="pool", kernel_shape=[2, 2], strides=[2, 2]
    )
    relu = helper.make_node("Relu", ["pooled"], ["decoded"], name="relu")
    shape = helper.make_node("Shape", ["x"], ["x_shape"], name="shape")
    unpool = helper.make_node(
        "MaxUnpool",
        ["decoded", "indices", "x_shape"],
        ["y"],
        name="unpool",
        kernel_shape=[kernel, kernel],
        strides=[kernel, kernel],
    )
    graph = helper.make_graph(
        [pool, relu, shape, unpool],
        "maxunpool",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 6, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 6, 8])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def test_maxunpool_becomes_the_plugin() -> None:
    model = maxunpool_graph()
    trt = to_trt_graph(model)
    ops = [n.op_type for n in trt.graph.node]
    assert ops == ["MaxPool", "Relu", PLUGIN_OP_TYPE]  # the Shape feeding MaxUnpool is dead
    pool = trt.graph.node[0]
    assert list(pool.output) == ["pooled"]  # Indices output removed
    (plugin,) = plugin_nodes(trt)
    assert list(plugin.input) == ["decoded", "x"] and list(plugin.output) == ["y"]
    assert trt_graph_problems(trt, 1) == []
    x = np.random.default_rng(0).integers(0, 3, (1, 2, 6, 8)).astype(np.float32)
    np.testing.assert_array_equal(run(reexpand_plugins(trt), {"x": x}), run(model, {"x": x}))


def test_maxunpool_with_another_kernel_is_refused() -> None:
    with pytest.raises(EdgesegError, match="2x2"):
        to_trt_graph(maxunpool_graph(kernel=3))


def test_a_graph_without_unpooling_is_refused() -> None:
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "plain",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    with pytest.raises(EdgesegError, match="no unpooling found"):
        to_trt_graph(helper.make_model(graph))


def test_rewrite_leaves_its_input_untouched(tiny) -> None:
    _, portable = tiny
    before = portable.SerializeToString()
    to_trt_graph(portable)
    assert portable.SerializeToString() == before


def test_reexpanded_graph_equals_the_portable_graph(tiny) -> None:
    _, portable = tiny
    trt = to_trt_graph(portable)
    x = np.random.default_rng(1).standard_normal((1, 3, 45, 67)).astype(np.float32)
    np.testing.assert_array_equal(
        run(reexpand_plugins(trt), {"input": x}), run(portable, {"input": x})
    )


def test_problems_are_reported(tiny) -> None:
    _, portable = tiny
    trt = to_trt_graph(portable)
    assert trt_graph_problems(trt, 4) == []
    assert trt_graph_problems(trt, 5) == ["4 plugin nodes, expected 5"]
    swapped = onnx.ModelProto()
    swapped.CopyFrom(trt)
    node = plugin_nodes(swapped)[0]
    node.input[0], node.input[1] = node.input[1], node.input[0]
    assert any("input 1 is not a MaxPool's input" in p for p in trt_graph_problems(swapped))
    no_domain = onnx.ModelProto()
    no_domain.CopyFrom(trt)
    kept = [o for o in no_domain.opset_import if o.domain != "edgeseg"]
    del no_domain.opset_import[:]
    no_domain.opset_import.extend(kept)
    assert any(p.startswith("onnx.checker") for p in trt_graph_problems(no_domain))
    assert any("unpooling block node" in p for p in trt_graph_problems(portable))


def test_quantized_model_is_rewritten_after_quantization(tiny, tmp_path: Path) -> None:
    """The INT8 path: ONNX Runtime's QDQ quantizer first (it puts Q/DQ pairs inside the
    unpooling blocks too), then the rewrite; the Q/DQ nodes inside the blocks die with them."""
    quantization = pytest.importorskip("onnxruntime.quantization")
    _, portable = tiny
    source, target = tmp_path / "model.onnx", tmp_path / "model.int8.onnx"
    onnx.save(portable, str(source))
    rng = np.random.default_rng(2)
    frames = [{"input": rng.standard_normal((1, 3, 45, 67)).astype(np.float32)} for _ in range(2)]

    class Reader(quantization.CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter(frames)

        def get_next(self):
            return next(self.items, None)

    quantization.quantize_static(
        str(source),
        str(target),
        Reader(),
        quant_format=quantization.QuantFormat.QDQ,
        activation_type=quantization.QuantType.QInt8,
        weight_type=quantization.QuantType.QInt8,
        per_channel=True,
    )
    quantized = onnx.load(str(target))
    inside = [
        n
        for n in quantized.graph.node
        if n.op_type in ("QuantizeLinear", "DequantizeLinear")
        and n.name.startswith("edgeseg_unpool/")
    ]
    assert inside, "expected the quantizer to put Q/DQ nodes inside the unpooling blocks"
    trt = to_trt_graph(quantized)
    assert trt_graph_problems(trt, 4) == []
    ops = Counter(n.op_type for n in trt.graph.node)
    assert ops[PLUGIN_OP_TYPE] == 4 and ops["QuantizeLinear"] > 0
    np.testing.assert_array_equal(run(reexpand_plugins(trt), frames[0]), run(quantized, frames[0]))


def test_unpool_node_names_exclude_the_blocks_from_quantization(tiny) -> None:
    _, portable = tiny
    names = unpool_node_names(portable)
    assert len({n.split("/")[1] for n in names}) == 4
    in_blocks = {n.name for n in portable.graph.node if n.name.startswith("edgeseg_unpool/")}
    assert set(names) == in_blocks


def test_dead_node_removal_keeps_what_outputs_need() -> None:
    nodes = [
        helper.make_node("Relu", ["x"], ["a"], name="used"),
        helper.make_node("Neg", ["x"], ["b"], name="dead"),
        helper.make_node("Abs", ["b"], ["c"], name="dead_too"),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, [2])],
        initializer=[helper.make_tensor("unused", TensorProto.FLOAT, [1], [1.0])],
    )
    model = helper.make_model(graph)
    remove_dead_nodes(model)
    assert [n.name for n in model.graph.node] == ["used"]
    assert not model.graph.initializer


def test_export_matches_pytorch_on_tie_heavy_input(tiny) -> None:
    """A constant frame makes every window a tie all the way down: the first position wins
    in PyTorch, in the portable graph and in the re-expanded TensorRT graph."""
    model, portable = tiny
    x = np.zeros((1, 3, 45, 67), dtype=np.float32)
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(run(portable, {"input": x}), expected, rtol=0, atol=1e-6)
    np.testing.assert_allclose(
        run(reexpand_plugins(to_trt_graph(portable)), {"input": x}), expected, rtol=0, atol=1e-6
    )
    # and the unpooling itself put each value at the window's first position
    _, indices = F.max_pool2d(torch.zeros(1, 1, 4, 4), 2, 2, return_indices=True)
    assert indices.flatten().tolist() == [0, 2, 8, 10]
