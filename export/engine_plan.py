"""The engine builder's decisions, as pure functions: testable without TensorRT.

Which ONNX and builder flags give a precision on TensorRT 10.x and 11.x, the optimization profile
for dynamic inputs, and the layer precision summary read from the engine inspector's JSON.

Sources for the version split: TensorRT's public headers of tags v10.3.0 and v11.1,
``include/NvInfer.h``: ``enum class BuilderFlag`` has ``kFP16 = 0`` (and kINT8, kBF16, kFP8) in
10.3 and none of these in 11.1; ``NetworkDefinitionCreationFlag::kSTRONGLY_TYPED`` is 1 in 10.3,
and in 11.1 "Deprecated in TensorRT 11.0. Strongly typed mode is always enabled ... retained for
API compatibility but is ignored". ``BuilderFlag::kTF32`` ("Enabled by default") exists in both.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgeseg.backends.tensorrt import PLUGIN_OP_TYPE, SUPPORTED_MAJORS, tensorrt_major
from edgeseg.errors import EdgesegError
from edgeseg.unpool_graph import UNPOOL_SCOPE

DEFAULT_MAX_BATCH = 8


@dataclass(frozen=True)
class PrecisionPlan:
    """How to get a precision out of a TensorRT major version: the one record the export makes
    and :func:`edgeseg.export.engine.build_engine` obeys (it never recomputes it).

    ``onnx_precision``: which TensorRT ONNX to parse ("fp32", "fp16" or "int8" weights and
    tensors); ``builder_flags``: names of ``trt.BuilderFlag`` members to set; ``clear_flags``:
    to clear; ``strongly_typed``: the network's types decide every layer's precision (10.x:
    ``NetworkDefinitionCreationFlag.STRONGLY_TYPED`` at ``create_network``; 11.x: always);
    ``pin_unpool``: a weakly typed network with a reduced-precision flag, whose standard-op
    unpooling layers (``--unpool native``) are pinned to FP32.
    """

    onnx_precision: str
    builder_flags: tuple[str, ...]
    clear_flags: tuple[str, ...]
    strongly_typed: bool = False
    pin_unpool: bool = False

    @property
    def typing(self) -> str:
        """What the card records: "strongly typed" or "weakly typed"."""
        return "strongly typed" if self.strongly_typed else "weakly typed"


def precision_plan(major: int, precision: str, float_fp16: bool = False) -> PrecisionPlan:
    """The build recipe for ``precision`` on TensorRT ``major``.

    FP16 is strongly typed from the FP16 ONNX (FP32 I/O) on 10.x and 11.x alike: the ONNX's
    types decide every layer, so the unpooling block's ``ReduceMax`` and the ``Equal`` that
    compares the pre-pool plane with it see the same FP16 values (a weakly typed build may run
    them in different precisions and then no position equals the rounded maximum). 10.x gets
    ``STRONGLY_TYPED`` at network creation and no precision flag (flags are not allowed on a
    strongly typed network); 11.x has no precision flags and is always strongly typed.
    FP32 stays weakly typed with ``BuilderFlag.TF32`` cleared, so an "fp32" engine computes in
    FP32. INT8 is explicit quantization from the Q/DQ ONNX: 10.x builds it weakly typed with
    ``INT8`` (and ``FP16`` with ``float_fp16``, so the float layers may run in FP16); with
    ``FP16`` it pins the standard-op unpooling layers to FP32 (``pin_unpool``; calibration
    keeps them out of quantization, so without ``FP16`` they run in FP32 anyway), because
    strongly typed FP16 there would need an FP16-typed Q/DQ graph (float16 scales: opset 19).
    On 11.x the graph's types decide: the float layers of the FP32-typed Q/DQ graph stay FP32.
    """
    if major not in SUPPORTED_MAJORS:
        raise EdgesegError(
            f"TensorRT {major}.x is not supported; edgeseg builds engines with TensorRT 10.x "
            "or 11.x"
        )
    strong = major >= 11
    if precision == "int8":
        if strong:
            return PrecisionPlan("int8", (), (), strongly_typed=True)
        flags = ("INT8", "FP16") if float_fp16 else ("INT8",)
        return PrecisionPlan("int8", flags, (), pin_unpool=float_fp16)
    if precision == "fp32":
        return PrecisionPlan("fp32", (), ("TF32",), strongly_typed=strong)
    if precision == "fp16":
        return PrecisionPlan("fp16", (), (), strongly_typed=True)
    raise EdgesegError(f"engine precision {precision!r} is not one of fp32, fp16, int8")


def network_flags(trt: Any, plan: PrecisionPlan) -> int:
    """The ``create_network`` bit set for ``plan``: ``1 << STRONGLY_TYPED`` on 10.x for a
    strongly typed plan, else 0 (11.x: the flag is deprecated and ignored, NvInfer.h v11.1;
    explicit batch is implicit since 10.0)."""
    if not plan.strongly_typed or tensorrt_major(trt.__version__) >= 11:
        return 0
    return 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)


#: The export's TensorRT ONNX for each ``onnx_precision`` (what a wrong-precision error names).
ONNX_FOR_PRECISION = {
    "fp32": "model.trt.onnx",
    "fp16": "model.fp16.trt.onnx",
    "int8": "model.int8.trt.onnx",
}


def onnx_precision_of(model: Any) -> str:
    """Which precision an ONNX graph's own types build in a strongly typed network: "int8"
    when it holds Q/DQ nodes, "fp16" when it holds FLOAT16 weights, a FLOAT16 input or casts to
    FLOAT16 (what :func:`edgeseg.export.fp16.to_fp16` writes), else "fp32"."""
    from onnx import TensorProto

    graph = model.graph
    ops = {node.op_type for node in graph.node}
    if "QuantizeLinear" in ops or "DequantizeLinear" in ops:
        return "int8"
    if any(init.data_type == TensorProto.FLOAT16 for init in graph.initializer):
        return "fp16"
    if any(v.type.tensor_type.elem_type == TensorProto.FLOAT16 for v in graph.input):
        return "fp16"  # an FP16 network input (benchmarks/unpool_layer.py's layer graphs)
    for node in graph.node:
        if node.op_type == "Cast" and any(
            a.name == "to" and a.i == TensorProto.FLOAT16 for a in node.attribute
        ):
            return "fp16"
    return "fp32"


def _round_to(value: float, multiple: int, up: bool) -> int:
    steps = value / multiple
    return int(multiple * (int(np.ceil(steps)) if up else int(np.floor(steps))))


def default_profile(
    input_shape: tuple[int, ...],
    input_hw: tuple[int, int],
    max_batch: int = DEFAULT_MAX_BATCH,
    min_side: int = 32,
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """(min, opt, max) shapes for an input whose dynamic dimensions are -1.

    Batch: 1..``max_batch``, optimised for 1. Height and width: half to double the card's
    ``input_hw`` in multiples of 32 (never below ``min_side``), optimised for ``input_hw``.
    Static dimensions stay as they are.
    """
    low, opt, high = [], [], []
    for axis, dim in enumerate(input_shape):
        if dim != -1:
            low.append(dim), opt.append(dim), high.append(dim)
        elif axis == 0:
            low.append(1), opt.append(1), high.append(max_batch)
        else:
            side = input_hw[axis - 2] if axis >= 2 else 1
            low.append(max(min_side, _round_to(side / 2, 32, up=False)))
            opt.append(side)
            high.append(max(side, _round_to(side * 2, 32, up=True)))
    return tuple(low), tuple(opt), tuple(high)


def layer_precision_summary(engine_information: str) -> Counter:
    """Count layers by output type from the engine inspector's JSON (DETAILED verbosity).

    Returns e.g. Counter({"fp16": 40, "fp32": 3}); empty when the JSON has no per-layer types
    (an engine built without DETAILED profiling verbosity lists layer names only).
    """
    try:
        info = json.loads(engine_information)
    except ValueError:
        return Counter()
    counts: Counter = Counter()
    for layer in info.get("Layers", []) if isinstance(info, dict) else []:
        if not isinstance(layer, dict):
            continue
        outputs = layer.get("Outputs") or []
        text = " ".join(
            str(v)
            for out in outputs[:1]
            if isinstance(out, dict)
            for k, v in out.items()
            if "type" in k.lower() or "format" in k.lower()
        )
        for token, name in (
            ("FP16", "fp16"),
            ("Half", "fp16"),
            ("FP32", "fp32"),
            ("Float", "fp32"),
            ("Int8", "int8"),
            ("INT8", "int8"),
            ("Int32", "int32"),
            ("INT32", "int32"),
            ("Int64", "int64"),
            ("BF16", "bf16"),
            ("FP8", "fp8"),
            ("Bool", "bool"),
        ):
            if token in text:
                counts[name] += 1
                break
        else:
            counts["other"] += 1
    return counts


def format_precision_summary(counts: Counter) -> str:
    if not counts:
        return "layer precisions: not reported by this TensorRT"
    parts = ", ".join(f"{n} {name}" for name, n in counts.most_common())
    return f"layer precisions: {parts}"


def unpool_layer_count(engine_information: str) -> dict[str, int]:
    """{"unpool": n, "all": m}: engine layers that do the unpooling, from the inspector's JSON.

    A layer counts when its name holds the plugin's op type or the standard-op block's
    ``edgeseg_unpool/`` scope (TensorRT names fused layers after the ONNX nodes they absorbed,
    joined with ``+``). Empty when the JSON lists no layers.
    """
    try:
        info = json.loads(engine_information)
    except ValueError:
        return {}
    layers = info.get("Layers", []) if isinstance(info, dict) else []
    names = [
        str(layer.get("Name", "")) if isinstance(layer, dict) else str(layer) for layer in layers
    ]
    if not names:
        return {}
    hits = sum(1 for name in names if PLUGIN_OP_TYPE in name or f"{UNPOOL_SCOPE}/" in name)
    return {"unpool": hits, "all": len(names)}
