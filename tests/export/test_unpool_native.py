"""``--unpool native``: the option, its one-line errors, the engine card's record, the runtime
needing no plugin for such an engine, and the native graphs TensorRT builds from.

What TensorRT's parser needs (onnx-tensorrt docs/operators.md of 10.1, 10.15 and 11.1, the
versions around 10.3 and 11.x stored for this check; the rows below are the same in all three):
each op type of the native graph with its tensor types, opset 9 to 20 (10.x) / 24 (11.1),
Slice/Pad/ReduceMax axes as initializers (Constant nodes import as weights), MaxPool without
its Indices output, no MaxUnpool.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from cli_helpers import assert_one_line_error, edgeseg
from model_helpers import TINY_CARD, randomize_batchnorm

from edgeseg.backends.tensorrt import (
    check_engine_compat,
    engine_build_facts,
    engine_unpool,
    rebuild_command,
    require_plugin_library,
)
from edgeseg.card import write_sidecar
from edgeseg.checkpoint import save_checkpoint
from edgeseg.errors import EdgesegError
from edgeseg.models import create_model

HAS_TENSORRT = importlib.util.find_spec("tensorrt") is not None
#: op type -> element types the parser takes (operators.md, 10.1-GA / 10.15 / 11.1 rows).
TENSORRT_OPS = {
    "Conv": {"float", "float16"},
    "Relu": {"float", "float16"},
    "MaxPool": {"float", "float16"},
    "BatchNormalization": {"float", "float16"},
    "SpaceToDepth": {"float", "float16"},
    "DepthToSpace": {"float", "float16"},
    "Reshape": {"float", "float16", "int64", "bool"},
    "Slice": {"float", "float16"},
    "Pad": {"float", "float16"},
    "ReduceMax": {"float", "float16"},
    "Equal": {"float", "float16"},
    "Where": {"bool"},  # the condition; the values are float or float16
    "Constant": {"float", "float16", "int64"},
    "Shape": {"float", "float16"},
    "Mul": {"int64"},
    "Sub": {"int64"},
    "Concat": {"int64"},
    "ArgMax": {"float", "float16"},  # --argmax's class map at the very end, not in the block
    "Cast": {"float", "float16", "int64"},  # the FP16 graph's FP32 input and output
    "QuantizeLinear": {"float"},
    "DequantizeLinear": {"int8"},
}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    model = randomize_batchnorm(create_model("segnet-basic", 3, channels=8, kernel_size=3))
    path = tmp_path_factory.mktemp("native") / "best.pt"
    save_checkpoint(path, model, TINY_CARD)
    return path


# --- the option --------------------------------------------------------------------------------


def test_native_needs_an_engine(checkpoint: Path, tmp_path: Path) -> None:
    result = edgeseg("export", str(checkpoint), "--unpool", "native", "--out", str(tmp_path / "o"))
    assert_one_line_error(result, "--unpool native chooses how an engine unpools")
    assert not (tmp_path / "o").exists()


def test_unknown_unpool_lists_the_choices(checkpoint: Path, tmp_path: Path) -> None:
    result = edgeseg("export", str(checkpoint), "--unpool", "scatter", "--format", "engine")
    assert_one_line_error(result, "'plugin', 'native'")


@pytest.mark.skipif(HAS_TENSORRT, reason="TensorRT is installed here")
def test_native_engine_without_tensorrt(checkpoint: Path, tmp_path: Path) -> None:
    result = edgeseg(
        "export",
        str(checkpoint),
        "--format",
        "engine",
        "--unpool",
        "native",
        "--out",
        str(tmp_path / "o"),
    )
    assert_one_line_error(result, "TensorRT is not installed")
    assert not (tmp_path / "o").exists()


def test_missing_plugin_names_the_native_way_on(tmp_path: Path) -> None:
    with pytest.raises(EdgesegError) as caught:
        require_plugin_library(tmp_path / "libedgeseg_unpool_plugin.so")
    message = str(caught.value)
    assert "edgeseg plugin build" in message and "--unpool native" in message
    assert "\n" not in message


# --- the card ----------------------------------------------------------------------------------


def _native_card():
    facts = engine_build_facts(
        tensorrt="10.3.0.30",
        cuda="12.6",
        gpu="Orin",
        compute_capability="8.7",
        precision="fp32",
        plugin_version=None,
        edgeseg="0.1.0",
        unpool="native",
        source_onnx="model.native.onnx",
    )
    return TINY_CARD.replace(build=facts)


def test_native_card_records_its_unpooling_and_needs_no_plugin() -> None:
    card = _native_card()
    assert engine_unpool(card) == "native" and card.build["plugin_version"] is None
    here = {"tensorrt": "10.3.0.30", "gpu": "Orin", "compute_capability": "8.7"}
    check_engine_compat(card, plugin_version="7", engine="e/model.engine", **here)
    assert rebuild_command(card, "e/model.engine") == (
        "edgeseg export e/model.native.onnx --format engine --unpool native --out e"
    )
    old = TINY_CARD.replace(build={**card.build, "unpool": None})
    old.build.pop("unpool")
    assert engine_unpool(old) == "plugin"  # cards from before --unpool


def test_runtime_opens_a_native_engine_without_the_plugin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No plugin anywhere: a plugin engine stops at the plugin, a native one goes on to TensorRT."""
    from edgeseg.runtime import Segmenter

    monkeypatch.setenv("EDGESEG_PLUGIN_DIR", str(tmp_path / "no-plugin"))
    engine = tmp_path / "model.engine"
    engine.write_bytes(b"not a real engine")
    write_sidecar(
        TINY_CARD.replace(
            build={**_native_card().build, "unpool": "plugin", "plugin_version": "1"}
        ),
        engine,
    )
    with pytest.raises(EdgesegError, match="plugin is not built"):
        Segmenter(engine)
    write_sidecar(_native_card(), engine)
    if HAS_TENSORRT:
        pytest.skip("TensorRT is installed here: the next refusal would be another one")
    with pytest.raises(EdgesegError, match="TensorRT is not installed"):
        Segmenter(engine)


# --- the graphs TensorRT builds from -----------------------------------------------------------


@pytest.fixture(scope="module")
def native_graphs(checkpoint: Path) -> dict[str, onnx.ModelProto]:
    """The graphs a native engine is built from, as the artifact planner gives them (TensorRT
    11's precisions; on 10.x FP16 builds from the FP32 graph), from each kind of source. Made
    once (three exports and a calibration); the tests below only read them."""
    from edgeseg.calibration.quantize import quantize_int8
    from edgeseg.checkpoint import load_model
    from edgeseg.export.forms import Forms
    from edgeseg.export.torch_to_onnx import export_onnx

    model, card = load_model(checkpoint)
    static = export_onnx(model, card)
    inputs = np.random.default_rng(0).standard_normal((4, 3, 36, 52)).astype(np.float32)
    forms = Forms(static, card, lambda g: quantize_int8(g, inputs, method="minmax"))
    from_ort_form = Forms(forms.get("onnxruntime", "fp32").model, card)
    from_plugin_graph = Forms(forms.get("plugin", "fp16").model, card.replace(precision="fp16"))
    return {
        "fp32": forms.engine_source(11, "fp32", "native").model,
        "fp32 from model.onnx (MaxUnpool form)": from_ort_form.engine_source(
            11, "fp32", "native"
        ).model,
        "fp16": forms.engine_source(11, "fp16", "native").model,
        "fp16 from model.fp16.trt.onnx": from_plugin_graph.engine_source(
            10, "fp16", "native"
        ).model,
        "int8": forms.engine_source(11, "int8", "native").model,
        "dynamic": Forms(export_onnx(model, card, dynamic=True), card)
        .engine_source(10, "fp32", "native")
        .model,
        "argmax, opset 17": Forms(export_onnx(model, card, argmax=True, opset=17), card)
        .engine_source(10, "fp32", "native")
        .model,
    }


@pytest.mark.slow  # the native_graphs fixture: three exports and a calibration
def test_native_graphs_hold_only_what_tensorrt_parses(
    native_graphs: dict[str, onnx.ModelProto],
) -> None:
    from edgeseg.unpool_graph import find_unpool_sites

    names = {v: k.lower() for k, v in onnx.TensorProto.DataType.items()}
    for name, graph in native_graphs.items():
        onnx.checker.check_model(graph, full_check=True)
        opset = next(o.version for o in graph.opset_import if o.domain in ("", "ai.onnx"))
        assert 9 <= opset <= 20, (name, opset)  # 10.x parses opsets 9-20, 11.1 9-24
        assert {o.domain for o in graph.opset_import} <= {"", "ai.onnx"}, name
        assert len(find_unpool_sites(graph)) == 4, name
        inferred = onnx.shape_inference.infer_shapes(graph)
        types = {v.name: v.type.tensor_type.elem_type for v in inferred.graph.value_info}
        types.update({i.name: i.data_type for i in graph.graph.initializer})
        for node in graph.graph.node:
            assert node.op_type in TENSORRT_OPS, (name, node.op_type)
            if node.op_type == "MaxPool":
                assert len([o for o in node.output if o]) == 1, (name, node.name)
            first = node.input[0] if node.input else None
            if first in types and node.op_type not in ("Constant",):
                kind = names[types[first]]
                assert kind in TENSORRT_OPS[node.op_type], (name, node.name, kind)


@pytest.mark.slow  # the native_graphs fixture: three exports and a calibration
def test_int8_native_graph_keeps_the_block_in_float(
    native_graphs: dict[str, onnx.ModelProto],
) -> None:
    """Q/DQ placement: no QuantizeLinear/DequantizeLinear between a block's nodes; its inputs
    are float tensors and its output feeds the next layer's QuantizeLinear."""
    from edgeseg.unpool_graph import find_unpool_sites

    graph = native_graphs["int8"]
    producers = {o: n for n in graph.graph.node for o in n.output}
    consumers: dict[str, list] = {}
    for node in graph.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    for site in find_unpool_sites(graph):
        block = set(site.node_names)
        for node in graph.graph.node:
            if node.name in block:
                assert node.op_type not in ("QuantizeLinear", "DequantizeLinear")
                for name in node.input:
                    producer = producers.get(name)
                    assert producer is None or producer.op_type != "DequantizeLinear", node.name
        assert {c.op_type for c in consumers[site.output]} == {"QuantizeLinear"}
