"""INT8 quantization of a real exported SegNet: the Q/DQ form TensorRT wants, what stays float,
the methods, the range cache, the per-layer analysis and the check against FP32."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from model_helpers import TINY_CARD, randomize_batchnorm
from onnx import numpy_helper

from edgeseg.calibration.agreement import Agreement, agreement, class_maps
from edgeseg.calibration.int8 import (
    Int8Result,
    _check_failure,
    holdout_split,
    quantize_checked,
)
from edgeseg.calibration.quantize import qdq_problems, quantizable_layers, quantize_int8
from edgeseg.calibration.sensitivity import layer_sensitivity
from edgeseg.calibration.settings import Int8Options
from edgeseg.errors import EdgesegError
from edgeseg.export.parity import sample_inputs
from edgeseg.export.torch_to_onnx import export_onnx
from edgeseg.export.trt_graph import to_trt_graph
from edgeseg.models import create_model
from edgeseg.unpool_graph import plugin_nodes, reexpand_plugins, unpool_node_names

CARD = TINY_CARD


@pytest.fixture(scope="module")
def fp32() -> onnx.ModelProto:
    torch.manual_seed(0)
    model = create_model("segnet-basic", 3, channels=8, kernel_size=3).eval()
    return export_onnx(randomize_batchnorm(model, var_low=0.05), CARD)


@pytest.fixture(scope="module")
def inputs() -> np.ndarray:
    return sample_inputs(CARD, 16, seed=3)


@pytest.fixture(scope="module")
def entropy_int8(fp32: onnx.ModelProto, inputs: np.ndarray) -> onnx.ModelProto:
    """The entropy-calibrated graph, made once: its 2048-bin threshold search is the slowest
    step of this file, and two tests read the same graph (read only)."""
    return quantize_int8(fp32, inputs, method="entropy")


def _producers(model: onnx.ModelProto) -> dict[str, onnx.NodeProto]:
    return {out: node for node in model.graph.node for out in node.output}


def test_form_tensorrt_wants(fp32: onnx.ModelProto, inputs: np.ndarray) -> None:
    q = quantize_int8(fp32, inputs, method="minmax")
    onnx.checker.check_model(q)
    assert qdq_problems(q) == []  # int8, zero point 0 everywhere, output not quantized
    producers = _producers(q)
    initializers = {t.name: t for t in q.graph.initializer}
    convs = [n for n in q.graph.node if n.op_type == "Conv"]
    assert len(convs) == len(quantizable_layers(fp32)) > 0
    for conv in convs:
        # Activation and weight both arrive through DequantizeLinear ...
        assert producers[conv.input[0]].op_type == "DequantizeLinear", conv.name
        weight_dq = producers[conv.input[1]]
        assert weight_dq.op_type == "DequantizeLinear"
        scale = numpy_helper.to_array(initializers[weight_dq.input[1]])
        assert scale.shape == (numpy_helper.to_array(initializers[weight_dq.input[0]]).shape[0],)
        # ... and the bias stays a float initializer.
        assert initializers[conv.input[2]].data_type == onnx.TensorProto.FLOAT
    # Q/DQ sits on convolution inputs only: every DequantizeLinear feeds Conv nodes alone.
    for dq in (n for n in q.graph.node if n.op_type == "DequantizeLinear"):
        consumers = [n for n in q.graph.node if dq.output[0] in n.input]
        assert consumers and all(n.op_type == "Conv" for n in consumers), dq.name
    # The unpooling blocks are untouched: none of their inputs comes from a DequantizeLinear.
    unpool = set(unpool_node_names(q))
    assert unpool
    for node in q.graph.node:
        if node.name in unpool:
            assert all(
                producers.get(i) is None or producers[i].op_type != "DequantizeLinear"
                for i in node.input
            ), node.name
    # The graph output is the last Conv's float logits.
    assert producers[q.graph.output[0].name].op_type == "Conv"


@pytest.mark.slow
def test_trt_graph_after_quantization(
    fp32: onnx.ModelProto, inputs: np.ndarray, entropy_int8: onnx.ModelProto
) -> None:
    q = entropy_int8
    trt = to_trt_graph(q)
    plugins = plugin_nodes(trt)
    assert len(plugins) == len(plugin_nodes(to_trt_graph(fp32)))
    producers = _producers(trt)
    for node in plugins:  # the plugin's inputs stay float
        assert all(
            producers[i].op_type not in ("DequantizeLinear", "QuantizeLinear") for i in node.input
        )
    assert np.array_equal(class_maps(reexpand_plugins(trt), inputs), class_maps(q, inputs))


def test_close_to_fp32(fp32: onnx.ModelProto, inputs: np.ndarray) -> None:
    q = quantize_int8(fp32, inputs[:12], method="minmax")
    score = agreement(class_maps(fp32, inputs[12:]), class_maps(q, inputs[12:]), 3)
    assert score.pixel_agreement > 0.9, score


@pytest.mark.slow
def test_methods_give_different_scales(
    fp32: onnx.ModelProto, inputs: np.ndarray, entropy_int8: onnx.ModelProto
) -> None:
    def activation_scales(model: onnx.ModelProto) -> list[float]:
        init = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
        return [
            float(init[n.input[1]])
            for n in model.graph.node
            if n.op_type == "QuantizeLinear" and init[n.input[1]].ndim == 0
        ]

    scales = {
        "minmax": activation_scales(quantize_int8(fp32, inputs, method="minmax")),
        "entropy": activation_scales(entropy_int8),
    }
    assert len(scales["minmax"]) == len(scales["entropy"]) > 0
    assert scales["minmax"] != scales["entropy"]
    # Min-max covers the largest value seen; entropy clips, so it is never wider here.
    assert all(e <= m * 1.0001 for e, m in zip(scales["entropy"], scales["minmax"], strict=True))


def test_keep_float_only_and_cache(
    fp32: onnx.ModelProto, inputs: np.ndarray, tmp_path: Path
) -> None:
    layers = quantizable_layers(fp32)
    ranges = tmp_path / "ranges.json"
    full = quantize_int8(fp32, inputs, method="minmax", ranges_cache=ranges)
    assert ranges.is_file()
    kept = quantize_int8(fp32, None, method="minmax", keep_float=layers[:2], ranges_cache=ranges)
    producers = _producers(kept)
    by_name = {n.name: n for n in kept.graph.node}
    for name in layers[:2]:
        assert by_name[name].input[1] not in producers  # the float weight initializer itself
    assert producers[by_name[layers[2]].input[1]].op_type == "DequantizeLinear"
    count = Counter(n.op_type for n in kept.graph.node)["QuantizeLinear"]
    assert count == Counter(n.op_type for n in full.graph.node)["QuantizeLinear"] - 2
    alone = quantize_int8(fp32, None, method="minmax", only=[layers[1]], ranges_cache=ranges)
    assert Counter(n.op_type for n in alone.graph.node)["QuantizeLinear"] == 1
    with pytest.raises(EdgesegError, match="no quantizable layer named nope"):
        quantize_int8(fp32, inputs, keep_float=["nope"])
    with pytest.raises(EdgesegError, match="is not one of"):
        quantize_int8(fp32, inputs, method="kl")


def test_sensitivity_ranks_every_layer(
    fp32: onnx.ModelProto, inputs: np.ndarray, tmp_path: Path
) -> None:
    ranges = tmp_path / "ranges.json"
    quantize_int8(fp32, inputs[:12], method="minmax", ranges_cache=ranges)
    reference = class_maps(fp32, inputs[12:])
    results = layer_sensitivity(fp32, "minmax", ranges, inputs[12:], reference, 3, progress=False)
    assert sorted(r.layer for r in results) == sorted(quantizable_layers(fp32))
    losses = [r.loss for r in results]
    assert losses == sorted(losses, reverse=True)
    assert all(0 <= r.consistency_miou <= 1 for r in results)
    assert all(r.weight and not r.weight.endswith(".weight") for r in results)


def test_holdout_split() -> None:
    calibrate, check = holdout_split(100)
    assert len(check) == 12 and not set(calibrate) & set(check)
    assert len(calibrate) + len(check) == 100
    assert len(holdout_split(1000)[1]) == 32
    same = holdout_split(5)
    assert np.array_equal(same[0], same[1])


def test_quantize_checked_gate(fp32: onnx.ModelProto, tmp_path: Path) -> None:
    folder = tmp_path / "frames"
    folder.mkdir()
    import cv2

    from edgeseg.export.parity import sample_frames

    for i, frame in enumerate(sample_frames(CARD.input_hw, 16, seed=5)):
        cv2.imwrite(str(folder / f"{i:02d}.png"), frame)
    options = Int8Options(data=folder, method="minmax", count=16, min_agreement=0.0)
    said: list[str] = []
    result = quantize_checked(
        fp32, CARD, options, log=said.append, warn=said.append, progress=False
    )
    assert result.calibration_images == 12 and result.check.images == 4
    assert any("only 16 calibration images" in s for s in said)
    strict = Int8Options(data=folder, method="minmax", count=16, min_agreement=1.0, report=True)
    assert result.gate.agreement < 1.0  # INT8 does move some decided pixels of this model
    assert result.gate.decided < 1.0 and result.gate.images == 4
    message = r"nothing was written: INT8 agreement .* on the pixels the FP32 reference decides "
    with pytest.raises(EdgesegError, match=message + r"is below 100%: try --keep-float N"):
        quantize_checked(fp32, CARD, strict, tmp_path, said.append, said.append, False)
    assert (tmp_path / "int8_report.json").is_file()  # the report explains the failure
    with pytest.raises(EdgesegError, match="--keep-float must be between 0 and"):
        quantize_checked(
            fp32, CARD, Int8Options(data=folder, keep_float=99), None, said.append, said.append
        )


def test_one_gate_with_and_without_labels(fp32: onnx.ModelProto) -> None:
    from edgeseg.precision_gate import Agreement as GateFigures

    consistent = Agreement(pixel_agreement=0.5, consistency_miou=0.3, images=8)
    result = Int8Result(fp32, "test", 8, consistent)
    options = Int8Options(data="x", max_drop=1.0, min_agreement=0.97)
    result.gate = GateFigures(agreement=0.99, decided=0.8, all_pixels=0.69, images=8)
    assert _check_failure(result, options) == ""  # consistency is reported, not gated
    result.gate = GateFigures(agreement=0.90, decided=0.8, all_pixels=0.69, images=8)
    failure = _check_failure(result, options)
    assert failure.startswith("INT8 agreement 90.00% on the pixels the FP32 reference decides")
    assert "below 97%" in failure and "--keep-float" in failure and "--tolerance" not in failure
    result.gate = GateFigures(agreement=0.99, decided=0.8, all_pixels=0.69, images=8)
    result.labelled = {"fp32_miou": 0.60, "int8_miou": 0.595, "drop_points": 0.5}
    assert _check_failure(result, options) == ""  # half a point: within 1.0
    result.labelled = {"fp32_miou": 0.60, "int8_miou": 0.58, "drop_points": 2.0}
    failure = _check_failure(result, options)
    assert "loses 2.00 mIoU points against FP32 on the labelled images, more than 1" in failure
    assert "agreement" not in failure.split(":")[0]


def test_the_cli_default_is_the_gate_s() -> None:
    from edgeseg.calibration.settings import DEFAULT_MIN_AGREEMENT
    from edgeseg.cli.export import export_command
    from edgeseg.precision_gate import MIN_AGREEMENT

    option = next(p for p in export_command.params if p.name == "int8_min_agreement")
    assert option.default == DEFAULT_MIN_AGREEMENT == MIN_AGREEMENT["int8"]
