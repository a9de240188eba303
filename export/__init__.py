"""The export stage: checkpoint -> portable ONNX, TensorRT ONNX with the unpooling plugin, engine.

``edgeseg export`` calls :func:`export_checkpoint`; each step is also importable on its own:

==============================  ==================================================================
:func:`export_checkpoint`       the whole stage (``edgeseg.export.pipeline``), given
                                :class:`ExportOptions` (``options``)
:class:`Forms`                  the artifact planner: every form from one source (``forms``)
:func:`export_onnx`             PyTorch model -> portable ONNX (``torch_to_onnx``, torch)
:func:`to_trt_graph`            any edgeseg ONNX -> TensorRT graph (``trt_graph``)
:func:`to_fp16`                 FP16 copy with FP32 inputs/outputs (``fp16``)
:func:`build_engine`            TensorRT ONNX -> engine + card sidecar (``engine``)
==============================  ==================================================================

Importing this package is cheap: names load on first use, and only ``export_onnx`` and
``export_checkpoint`` from a checkpoint need torch; the TensorRT path needs onnx and numpy only.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "export_checkpoint": "pipeline",
    "ExportResult": "pipeline",
    "ExportOptions": "options",
    "FILE_NAMES": "forms",
    "Forms": "forms",
    "export_onnx": "torch_to_onnx",
    "to_trt_graph": "trt_graph",
    "trt_graph_problems": "trt_graph",
    "to_fp16": "fp16",
    "build_engine": "engine",
    "ParityResult": "parity",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'edgeseg.export' has no attribute {name!r}")
    return getattr(importlib.import_module(f"edgeseg.export.{module}"), name)


# The unpooling's ONNX forms (standard-op block, plugin node, re-expansion, finding the sites)
# live in the core, edgeseg.unpool_graph: calibration and the ONNX Runtime backend need them too.
