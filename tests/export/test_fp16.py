"""FP16 ONNX with FP32 inputs/outputs (TensorRT 11's way to FP16): types, wiring and parity."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from edgeseg.card import ModelCard
from edgeseg.errors import EdgesegError
from edgeseg.export.fp16 import to_fp16
from edgeseg.export.parity import compare, sample_inputs
from edgeseg.export.torch_to_onnx import export_onnx
from edgeseg.export.trt_graph import to_trt_graph, trt_graph_problems
from edgeseg.models import create_model
from edgeseg.unpool_graph import plugin_nodes, reexpand_plugins

FLOAT, HALF = TensorProto.FLOAT, TensorProto.FLOAT16


@pytest.fixture(scope="module")
def exported():
    torch.manual_seed(4)
    model = create_model("segnet", 4, width=0.25).eval()
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.normal_(0.0, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    card = ModelCard(
        architecture="segnet",
        num_classes=4,
        class_names=("a", "b", "c", "d"),
        palette=((0, 0, 0),) * 4,
        input_hw=(45, 67),
        arch_args={"width": 0.25},
    )
    return model, card, export_onnx(model, card)


def types_of(model: onnx.ModelProto) -> dict[str, int]:
    return {
        v.name: v.type.tensor_type.elem_type
        for v in (*model.graph.input, *model.graph.output, *model.graph.value_info)
    }


@pytest.mark.slow
def test_weights_and_tensors_are_fp16_interface_fp32(exported) -> None:
    _, _, portable = exported
    half = to_fp16(portable)
    onnx.checker.check_model(half, full_check=True)
    assert half.graph.input[0].type.tensor_type.elem_type == FLOAT
    assert half.graph.output[0].type.tensor_type.elem_type == FLOAT
    assert {i.data_type for i in half.graph.initializer} == {HALF}
    first, last = half.graph.node[0], half.graph.node[-1]
    assert first.op_type == last.op_type == "Cast"
    assert list(first.input) == ["input"] and list(last.output) == ["logits"]
    inferred = onnx.shape_inference.infer_shapes(half)
    internal = [
        v for v in inferred.graph.value_info if v.type.tensor_type.elem_type in (FLOAT, HALF)
    ]
    assert internal and all(v.type.tensor_type.elem_type == HALF for v in internal)


def test_plugin_node_is_fp16_after_the_rewrite(exported) -> None:
    _, _, portable = exported
    trt = to_trt_graph(to_fp16(portable))
    assert trt_graph_problems(trt, 5) == []
    types = types_of(onnx.shape_inference.infer_shapes(trt))
    for node in plugin_nodes(trt):
        assert types[node.input[0]] == types[node.input[1]] == HALF


def test_fp16_parity_with_pytorch(exported) -> None:
    model, card, portable = exported
    inputs = sample_inputs(card, 2)
    with torch.no_grad():
        reference = model(torch.from_numpy(inputs)).numpy()
    for graph in (to_fp16(portable), reexpand_plugins(to_trt_graph(to_fp16(portable)))):
        session = ort.InferenceSession(
            graph.SerializeToString(), providers=["CPUExecutionProvider"]
        )
        out = np.concatenate([session.run(None, {"input": x[None]})[0] for x in inputs])
        assert out.dtype == np.float32
        figure = compare("model.fp16.onnx", "ONNX Runtime", reference, out, "fp16")
        assert figure.passed, figure.row()
        assert figure.agreement > 0.99, figure.row()
        assert figure.mean_abs_diff < 5e-3 * figure.logit_scale, figure.row()


@pytest.mark.slow
def test_class_map_output_stays_int32(exported) -> None:
    model, card, _ = exported
    portable = export_onnx(model, card, argmax=True)
    half = to_fp16(portable)
    assert half.graph.output[0].type.tensor_type.elem_type == TensorProto.INT32
    casts_to_fp32 = [
        n
        for n in half.graph.node
        if n.op_type == "Cast" and helper.get_attribute_value(n.attribute[0]) == FLOAT
    ]
    assert casts_to_fp32 == []  # only the input Cast to FP16, no output Cast for an int32 map
    session = ort.InferenceSession(half.SerializeToString(), providers=["CPUExecutionProvider"])
    out = session.run(None, {"input": sample_inputs(card, 1)})[0]
    assert out.dtype == np.int32 and out.shape == (1, 45, 67)


def test_quantized_models_are_refused() -> None:
    node = helper.make_node("DequantizeLinear", ["q", "s"], ["y"])
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("q", TensorProto.INT8, [2])],
        [helper.make_tensor_value_info("y", FLOAT, [2])],
        initializer=[numpy_helper.from_array(np.array(0.5, np.float32), "s")],
    )
    with pytest.raises(EdgesegError, match="INT8"):
        to_fp16(helper.make_model(graph))


def test_weights_beyond_fp16_range_are_refused() -> None:
    weight = numpy_helper.from_array(np.array([1e6], np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Mul", ["x", "w"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", FLOAT, [1])],
        [helper.make_tensor_value_info("y", FLOAT, [1])],
        initializer=[weight],
    )
    with pytest.raises(EdgesegError, match="FP16 range"):
        to_fp16(helper.make_model(graph))
