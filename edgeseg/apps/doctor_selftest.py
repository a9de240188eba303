"""``edgeseg doctor``'s on-device self-test: tiny engines, each unpooling, against ONNX Runtime.

Where TensorRT, a GPU and a CUDA binding are present, a four-layer network with one SegNet
unpooling at an odd size (conv+ReLU -> 2x2 MaxPool -> 1x1 conv -> unpool -> 1x1 conv, input
1x3x21x30) is built into an engine twice: with edgeseg's plugin (when it loads) and ``native``
(TensorRT's own layers, the standard-op block), in FP32, FP16 and, on GPUs with INT8 (compute
6.1 and later), INT8 (min-max Q/DQ). Which graph each engine is built from, and what ONNX
Runtime runs to check it, is the export's own rule (:class:`edgeseg.export.forms.Forms`). Each
engine runs on sample inputs and is compared with that graph on ONNX Runtime, with the export's
own gates (:mod:`edgeseg.export.parity`), and its build time is reported. This is what proves,
on the user's device, what no CI here can: that
TensorRT parses, builds and runs both forms and that they compute what ONNX Runtime computes.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from edgeseg.card import ModelCard
from edgeseg.errors import EdgesegError

INPUT_HW = (21, 30)
CARD = ModelCard("doctor-selftest", 2, ("a", "b"), ((0, 0, 0), (255, 255, 255)), INPUT_HW)


def selftest_graph() -> Any:
    """The tiny network as an ONNX graph in the portable (standard-op block) form."""
    from onnx import TensorProto, helper, numpy_helper

    from edgeseg.unpool_graph import expansion_nodes

    rng = np.random.default_rng(2024)
    weights = {
        "w1": rng.standard_normal((4, 3, 3, 3)).astype(np.float32) * 0.5,
        "w2": rng.standard_normal((4, 4, 1, 1)).astype(np.float32) * 0.5,
        "w3": rng.standard_normal((2, 4, 1, 1)).astype(np.float32) * 0.5,
    }
    height, width = INPUT_HW
    nodes = [
        helper.make_node("Conv", ["input", "w1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["prepool"], name="relu1"),
        helper.make_node(
            "MaxPool", ["prepool"], ["pooled"], name="pool1", kernel_shape=[2, 2], strides=[2, 2]
        ),
        helper.make_node("Conv", ["pooled", "w2"], ["decoder"], name="conv2"),
        *expansion_nodes("selftest", "decoder", "prepool", "unpooled", prepool_hw=INPUT_HW),
        helper.make_node("Conv", ["unpooled", "w3"], ["logits"], name="conv3"),
    ]
    graph = helper.make_graph(
        nodes,
        "edgeseg-doctor-selftest",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, height, width])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 2, height, width])],
        [numpy_helper.from_array(v, k) for k, v in weights.items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def selftest_inputs(count: int = 2, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((count, 3, *INPUT_HW)).astype(np.float32)


def selftest_forms() -> Any:
    """The artifact planner over the tiny network: the export's own rule picks each engine's
    graph (plugin or native, at the precision the TensorRT version parses) and its reference.
    INT8 is min-max calibrated on random inputs."""
    from edgeseg.calibration.quantize import quantize_int8
    from edgeseg.export.forms import Forms

    def quantize(graph: Any) -> Any:
        return quantize_int8(graph, selftest_inputs(8, seed=1), method="minmax")

    return Forms(selftest_graph(), CARD, quantize)


def _one(
    forms: Any, folder: Path, trt_major: int, precision: str, unpool: str, library: Path | None
) -> str:
    """Build, run and compare one engine; returns the detail line or raises EdgesegError."""
    from edgeseg.export import parity
    from edgeseg.export.engine import build_engine

    source = forms.save(forms.engine_source(trt_major, precision, unpool), folder)
    engine = folder / f"selftest.{precision}.{unpool}.engine"
    start = time.perf_counter()
    build_engine(
        source,
        engine,
        CARD,
        precision=precision,
        unpool=unpool,
        plugin_library=library,
        log=lambda _message: None,
    )
    seconds = time.perf_counter() - start
    figure = parity.engine_parity(
        engine, forms.reference(precision).model, selftest_inputs(), precision,
        plugin_library=library,
    )  # fmt: skip
    detail = (
        f"argmax agrees {100 * figure.agreement:.2f}%, mean |diff| {figure.mean_abs_diff:.1e} "
        f"(limit {figure.limit:.1e}), built in {seconds:.1f} s"
    )
    if not figure.passed:
        raise EdgesegError(f"differs from ONNX Runtime: {detail}")
    return detail


def run_selftest(report: Any) -> None:
    """Add one line per (unpooling, precision) to ``report``; skip lines say what is missing."""
    trt, gpu = report.facts.get("tensorrt"), report.facts.get("gpu")
    missing = "TensorRT" if trt is None else "a GPU with a CUDA binding" if gpu is None else ""
    if not missing:
        try:
            import onnx  # noqa: F401
            import onnxruntime  # noqa: F401
        except ImportError:
            missing = "onnx and onnxruntime: pip install 'edgeseg[engine,onnx]' (no torch)"
    if missing:
        report.add("self-test", "skip", f"needs {missing}", "see the lines above")
        return
    from edgeseg.backends.tensorrt import tensorrt_major

    major = tensorrt_major(trt.__version__)
    precisions = ["fp32", "fp16"]
    if tuple(int(v) for v in gpu.compute_capability.split(".")) >= (6, 1):
        precisions.append("int8")
    library = report.facts.get("plugin")
    forms = selftest_forms()
    with tempfile.TemporaryDirectory(prefix="edgeseg-doctor-") as folder:
        for unpool in ("plugin", "native"):
            for precision in precisions:
                name = f"self-test {unpool} {precision}"
                if unpool == "plugin" and library is None:
                    report.add(
                        name, "skip", "plugin not loaded (see the plugin line)", _fix("plugin")
                    )
                    continue
                try:
                    detail = _one(forms, Path(folder), major, precision, unpool, library)
                except Exception as exc:  # a failing engine must not hide the next one
                    text = (
                        str(exc)
                        if isinstance(exc, EdgesegError)
                        else f"{type(exc).__name__}: {exc}"
                    )
                    report.add(name, "fail", text.replace("\n", " "), _fix(unpool))
                    continue
                power = report.facts.get("power")  # the Jetson's power mode and clocks
                report.add(name, "ok", f"{detail}; {power}" if power else detail)


def _fix(unpool: str) -> str:
    if unpool == "plugin":
        return "edgeseg plugin build, then edgeseg doctor again; meanwhile use --unpool native"
    return "please report it with this output (edgeseg doctor --json)"
