"""The artifact planner (``edgeseg.export.forms``) and the portable form it writes.

The planner: each form made once from the one before it and kept (the same object on every ask,
nothing rebuilt from a derived graph), the engine's graph per TensorRT major and unpooling, and
an edgeseg ONNX in any of its forms as the source. The portable form (``model.portable.onnx``,
standard ops only) against ONNX Runtime's form in the readers it is for: OpenCV DNN (which
refuses ``model.onnx``'s MaxUnpool form) and ONNX's reference evaluator, at an even size.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
import torch
from model_helpers import TINY_CARD, randomize_batchnorm

from edgeseg.backends.runner import run_onnx
from edgeseg.checkpoint import save_checkpoint
from edgeseg.errors import EdgesegError
from edgeseg.export import ExportOptions, Forms, export_checkpoint
from edgeseg.export.forms import FILE_NAMES, graph_form
from edgeseg.export.onnx_io import card_of
from edgeseg.export.parity import sample_inputs
from edgeseg.models import create_model
from edgeseg.unpool_graph import find_unpool_sites, plugin_nodes

CARD = TINY_CARD.replace(input_hw=(48, 64))  # even at every pooling stage


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    torch.manual_seed(3)
    return randomize_batchnorm(create_model("segnet-basic", 3, channels=8, kernel_size=3).eval())


@pytest.fixture(scope="module")
def source(model: torch.nn.Module) -> onnx.ModelProto:
    from edgeseg.export.torch_to_onnx import export_onnx

    return export_onnx(model, CARD)


@pytest.fixture(scope="module")
def exported(model: torch.nn.Module, tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = tmp_path_factory.mktemp("forms")
    save_checkpoint(folder / "best.pt", model, CARD)
    lines: list[str] = []
    result = export_checkpoint(ExportOptions(folder / "best.pt", folder / "out"), log=lines.append)
    return {"files": result.files, "log": "\n".join(lines)}


def _quantize(graph: onnx.ModelProto) -> onnx.ModelProto:
    from edgeseg.calibration.quantize import quantize_int8

    inputs = np.random.default_rng(0).standard_normal((4, 3, *CARD.input_hw)).astype(np.float32)
    return quantize_int8(graph, inputs, method="minmax")


@pytest.mark.slow
def test_each_form_is_made_once_and_kept(source: onnx.ModelProto) -> None:
    made: list[str] = []

    def quantize(graph: onnx.ModelProto) -> onnx.ModelProto:
        made.append("int8")
        return _quantize(graph)

    forms = Forms(source, CARD, quantize)
    assert forms.get("portable", "fp32").model is source  # the source is the FP32 block form
    for kind in ("onnxruntime", "portable", "plugin", "native"):
        for precision in ("fp32", "fp16", "int8"):
            first = forms.get(kind, precision)
            assert forms.get(kind, precision) is first, (kind, precision)
    assert made == ["int8"]  # quantized once, for every INT8 form
    # The native graph is the block form itself, never a plugin graph expanded again.
    for precision in ("fp32", "fp16", "int8"):
        portable = forms.get("portable", precision).model
        assert forms.get("native", precision).model is portable
        assert len(find_unpool_sites(portable)) == 4 and not plugin_nodes(portable)
        assert len(plugin_nodes(forms.get("plugin", precision).model)) == 4
    # Below FP32, ONNX Runtime runs the block form: one file.
    assert forms.get("onnxruntime", "fp16").model is forms.get("portable", "fp16").model
    assert graph_form(forms.get("onnxruntime", "fp32").model) == "onnxruntime"
    roles = {forms.get(k, p).role for k in ("onnxruntime", "portable") for p in ("fp32", "fp16")}
    assert roles == {"onnx", "portable_onnx", "fp16_onnx"}


def test_engine_source_follows_the_tensorrt_version(source: onnx.ModelProto) -> None:
    forms = Forms(source, CARD, _quantize)
    from edgeseg.export.engine_plan import precision_plan

    for major in (10, 11):
        for precision in ("fp32", "fp16", "int8"):
            graph_precision = precision_plan(major, precision).onnx_precision
            for unpool in ("plugin", "native"):
                form = forms.engine_source(major, precision, unpool)
                assert (form.kind, form.precision) == (unpool, graph_precision)
    assert forms.reference("int8").model is forms.get("portable", "int8").model
    assert forms.reference("fp16") is forms.get("onnxruntime", "fp32")
    assert forms.engine_source(11, "fp16", "native").role == "fp16_native_onnx"


def test_any_edgeseg_onnx_is_a_source(source: onnx.ModelProto) -> None:
    """The ONNX Runtime form and a plugin graph give the same block form back; an FP16 graph
    gives FP16 forms only, and its engine starts from it on TensorRT 10 too."""
    inputs = sample_inputs(CARD, 1)
    expected = run_onnx(source, inputs)
    whole = Forms(source, CARD)
    for given in (whole.get("onnxruntime", "fp32"), whole.get("plugin", "fp32")):
        forms = Forms(given.model, CARD)
        assert forms.given.kind == given.kind
        block = forms.get("portable", "fp32").model
        assert len(find_unpool_sites(block)) == 4 and graph_form(block) == "portable"
        np.testing.assert_array_equal(run_onnx(block, inputs), expected)
    half = Forms(whole.get("plugin", "fp16").model, CARD.replace(precision="fp16"))
    assert half.engine_source(10, "fp16", "plugin").model is half.given.model
    assert half.reference("fp16").precision == "fp16"
    with pytest.raises(EdgesegError, match="fp32 forms cannot be made from this fp16 graph"):
        half.get("portable", "fp32")
    with pytest.raises(EdgesegError, match="int8 forms cannot be made"):
        Forms(source, CARD).get("plugin", "int8")  # no quantizer given


def test_save_writes_a_form_once_with_its_card(source: onnx.ModelProto, tmp_path: Path) -> None:
    forms = Forms(source, CARD)
    form = forms.get("native", "fp32")
    path = forms.save(form, tmp_path)
    assert path == tmp_path / "model.native.onnx"
    mtime = path.stat().st_mtime_ns
    assert forms.save(form, tmp_path) == path and path.stat().st_mtime_ns == mtime
    card = card_of(onnx.load(str(path)))
    assert card.build["artifact"] == "model.native.onnx" and card.build["unpool"] == "native"
    plugin_card = card_of(onnx.load(str(forms.save(forms.get("plugin", "fp32"), tmp_path))))
    assert plugin_card.build["plugin"]["op_type"] == "EdgesegUnpool"


@pytest.mark.slow
def test_export_writes_both_fp32_forms(exported: dict) -> None:
    files = exported["files"]
    assert set(files) == {"onnx", "portable_onnx", "trt_onnx"}
    assert files["portable_onnx"].name == FILE_NAMES["portable_onnx"] == "model.portable.onnx"
    ort_form, portable = (onnx.load(str(files[r])) for r in ("onnx", "portable_onnx"))
    assert graph_form(ort_form) == "onnxruntime" and graph_form(portable) == "portable"
    assert {o.domain for o in portable.opset_import} <= {"", "ai.onnx"}
    assert not {n.op_type for n in portable.graph.node} & {"MaxUnpool", "EdgesegUnpool"}
    assert card_of(portable).build["artifact"] == "model.portable.onnx"
    assert "model.portable.onnx (fp32, standard ops only, for any ONNX reader" in exported["log"]
    assert "model.portable.onnx" in exported["log"].split("parity with PyTorch")[1]


def test_portable_form_runs_in_opencv_dnn(exported: dict) -> None:
    """OpenCV DNN reads the portable file and matches ONNX Runtime on model.onnx; the MaxUnpool
    form is the one it refuses (the reason both files exist)."""
    files = exported["files"]
    inputs = sample_inputs(CARD, 2)
    expected = run_onnx(files["onnx"], inputs)
    net = cv2.dnn.readNetFromONNX(str(files["portable_onnx"]))
    outputs = []
    for frame in inputs:  # the file's input is static, batch 1
        net.setInput(frame[None])
        outputs.append(net.forward())
    actual = np.concatenate(outputs)
    scale = float(np.abs(expected).max())
    assert np.abs(actual - expected).max() <= 1e-4 * scale
    assert (actual.argmax(1) == expected.argmax(1)).mean() >= 0.999
    with pytest.raises(cv2.error):
        refused = cv2.dnn.readNetFromONNX(str(files["onnx"]))
        refused.setInput(inputs[:1])
        refused.forward()


def test_portable_form_runs_in_the_onnx_reference_evaluator(exported: dict) -> None:
    from onnx.reference import ReferenceEvaluator

    files = exported["files"]
    inputs = sample_inputs(CARD, 1)
    expected = run_onnx(files["onnx"], inputs)
    evaluator = ReferenceEvaluator(str(files["portable_onnx"]))
    actual = evaluator.run(None, {"input": inputs})[0]
    assert np.abs(actual - expected).max() <= 1e-4 * float(np.abs(expected).max())
    assert (actual.argmax(1) == expected.argmax(1)).all()
