"""``edgeseg export`` as one library call: checkpoint -> ONNX files (-> TensorRT engine).

Steps, each a function an application or a later stage can call on its own:

1. :func:`edgeseg.export.torch_to_onnx.export_onnx`: PyTorch -> portable ONNX;
2. :func:`edgeseg.export.fp16.to_fp16` (with ``fp16``): FP16 copy with FP32 inputs/outputs;
3. :func:`edgeseg.export.trt_graph.to_trt_graph`: each portable graph -> TensorRT graph. It runs
   after any precision conversion, so an INT8 step (quantize the portable graph, then rewrite)
   slots in beside step 2 without touching the others;
4. parity: ONNX Runtime against PyTorch on sample inputs, for every file, the TensorRT graphs via
   :func:`edgeseg.export.trt_graph.reexpand_plugins`; nothing is written unless all pass;
5. :func:`edgeseg.export.engine.build_engine` (``format="engine"``), then the engine against
   ONNX Runtime (``check``).

The source may also be an ONNX written by ``edgeseg export`` (portable or TensorRT graph, card
inside): that builds an engine on a machine without torch, e.g. a Jetson.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from edgeseg import __version__
from edgeseg.calibration.int8 import Int8Options
from edgeseg.card import ModelCard
from edgeseg.errors import EdgesegError
from edgeseg.export import parity as parity_mod
from edgeseg.export.fp16 import to_fp16
from edgeseg.export.onnx_io import (
    DEFAULT_OPSET,
    attach_card,
    card_of,
    check_opset,
    load_onnx,
    save_onnx,
)
from edgeseg.export.parity import ParityResult
from edgeseg.export.trt_graph import (
    plugin_nodes,
    reexpand_plugins,
    to_trt_graph,
    trt_graph_problems,
)

FORMATS = ("onnx", "engine")
FILE_NAMES = {
    "onnx": "model.onnx",
    "trt_onnx": "model.trt.onnx",
    "fp16_onnx": "model.fp16.onnx",
    "fp16_trt_onnx": "model.fp16.trt.onnx",
    "int8_onnx": "model.int8.onnx",
    "int8_trt_onnx": "model.int8.trt.onnx",
    "engine": "model.engine",
}


@dataclass
class ExportResult:
    """What an export wrote: ``files`` maps roles (keys of FILE_NAMES) to paths."""

    out_dir: Path
    card: ModelCard
    files: dict[str, Path] = field(default_factory=dict)
    parity: list[ParityResult] = field(default_factory=list)
    engine_card: ModelCard | None = None
    int8: Any = None  # edgeseg.calibration.int8.Int8Result with --int8


@dataclass
class _Graphs:
    """In-memory graphs by role, with the precision each holds."""

    models: dict[str, onnx.ModelProto] = field(default_factory=dict)
    precision: dict[str, str] = field(default_factory=dict)

    def add(self, role: str, model: onnx.ModelProto, precision: str) -> None:
        self.models[role] = model
        self.precision[role] = precision


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


def _warn(message: str) -> None:
    _stderr(f"warning: {message}")


def _import_torch_stage() -> Any:
    try:
        from edgeseg.export import torch_to_onnx
    except ImportError as exc:
        from edgeseg.errors import missing_extra

        raise missing_extra(exc.name or "torch", "export") from None
    return torch_to_onnx


def _onnx_card(card: ModelCard, role: str, precision: str, opset: int, dynamic: bool) -> ModelCard:
    build: dict[str, Any] = {"artifact": FILE_NAMES[role], "opset": opset, "dynamic": dynamic}
    if role.endswith("trt_onnx"):
        from edgeseg.export.plugin import PLUGIN_NAMESPACE, PLUGIN_OP_TYPE, PLUGIN_VERSION

        build["plugin"] = {
            "op_type": PLUGIN_OP_TYPE,
            "namespace": PLUGIN_NAMESPACE,
            "version": PLUGIN_VERSION,
        }
    return card.replace(precision=precision, edgeseg_version=__version__, build=build)


def _opset_of(model: onnx.ModelProto) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def _is_dynamic(model: onnx.ModelProto) -> bool:
    dims = model.graph.input[0].type.tensor_type.shape.dim
    return any(not d.HasField("dim_value") for d in dims)


def _check_parity(
    graphs: _Graphs,
    reference: Callable[[np.ndarray], np.ndarray],
    card: ModelCard,
    dynamic: bool,
    samples: int,
    tolerance: float | None,
    min_side: int,
) -> list[ParityResult]:
    """ONNX Runtime against ``reference`` for every graph; TensorRT graphs re-expanded."""
    cases = [parity_mod.sample_inputs(card, samples)]
    if dynamic:  # another batch size and another (odd) input size through the same file
        height, width = card.input_hw
        other = (max(min_side, height + 33), max(min_side, width - 31))
        cases.append(parity_mod.sample_inputs(card, 1, other, seed=7))
    results = []
    for inputs in cases:
        expected = reference(inputs)
        int8_expected = None
        for role, model in graphs.models.items():
            if graphs.precision[role] == "int8":
                # INT8 differs from PyTorch by design; its accuracy is checked on real images
                # (edgeseg.calibration.int8). Its TensorRT graph must equal the INT8 ONNX.
                if role == "int8_onnx":
                    continue
                if int8_expected is None:
                    int8_expected = parity_mod.run_onnx(
                        graphs.models["int8_onnx"].SerializeToString(),
                        inputs,
                        batch=None if dynamic else 1,
                    )
                actual = parity_mod.run_onnx(
                    reexpand_plugins(model).SerializeToString(),
                    inputs,
                    batch=None if dynamic else 1,
                )
                results.append(
                    parity_mod.compare(
                        FILE_NAMES[role],
                        f"ONNX Runtime against {FILE_NAMES['int8_onnx']}, plugin re-expanded",
                        int8_expected,
                        actual,
                        "fp32",
                        tolerance=tolerance,
                    )
                )
                continue
            runnable, method = model, "ONNX Runtime"
            if plugin_nodes(model):
                runnable = reexpand_plugins(model)
                method = "ONNX Runtime, plugin re-expanded to standard ops"
            actual = parity_mod.run_onnx(
                runnable.SerializeToString(), inputs, batch=None if dynamic else 1
            )
            precision = graphs.precision[role]
            gate_tolerance = tolerance if precision == "fp32" else None
            results.append(
                parity_mod.compare(
                    FILE_NAMES[role], method, expected, actual, precision, tolerance=gate_tolerance
                )
            )
    return results


def export_checkpoint(
    source: str | Path,
    out_dir: str | Path = "export",
    *,
    format: str = "onnx",
    fp16: bool = False,
    dynamic: bool = False,
    argmax: bool = False,
    opset: int | None = None,
    check: bool = True,
    tolerance: float | None = None,
    workspace_mb: int | None = None,
    samples: int = 2,
    int8: Int8Options | None = None,
    log: Callable[[str], None] = print,
) -> ExportResult:
    """Export a checkpoint (or an edgeseg ONNX) to ``out_dir``; see the module doc for steps.

    Writes ``model.onnx`` and ``model.trt.onnx`` (FP32), with ``fp16`` also ``model.fp16.onnx``
    and ``model.fp16.trt.onnx``, with ``int8`` also ``model.int8.onnx`` and
    ``model.int8.trt.onnx`` (calibrated and checked as :mod:`edgeseg.calibration.int8` says),
    with ``format="engine"`` also ``model.engine`` and its ``model.engine.json`` card (INT8 when
    ``int8`` is given, its float layers FP16 with ``fp16`` on TensorRT 10.x). ``tolerance``
    bounds the mean FP32 logit difference relative to the largest logit (default 1e-4;
    :mod:`edgeseg.export.parity` says why not the largest).
    Raises EdgesegError (one line) for a user-fixable problem or a parity failure; then nothing
    is written.
    """
    if format not in FORMATS:
        raise EdgesegError(f"unknown format {format!r}; choose one of: {', '.join(FORMATS)}")
    source = Path(source)
    out = Path(out_dir)
    is_onnx = source.suffix.lower() == ".onnx"
    if not source.is_file():  # before the slow imports
        raise EdgesegError(f"{'ONNX file' if is_onnx else 'checkpoint'} {source} not found")
    if is_onnx and format != "engine":
        raise EdgesegError(f"{source} is already ONNX; use --format engine to build an engine")
    if is_onnx and (dynamic or argmax or opset is not None or int8 is not None):
        raise EdgesegError(
            "--dynamic, --argmax, --opset and --int8 apply when exporting a checkpoint; "
            f"{source.name} keeps the options it was exported with"
        )
    if opset is not None:
        check_opset(int(opset))
    engine_tools = None
    if format == "engine":  # TensorRT, GPU, plugin: all checked before the slow part
        from edgeseg.export import engine as engine_mod

        engine_tools = (engine_mod, *engine_mod.preflight())
    graphs = _Graphs()
    results: list[ParityResult] = []
    written: dict[str, Path] = {}

    if is_onnx:
        given = load_onnx(source)
        card = card_of(given, source)
        opset, dynamic = _opset_of(given), _is_dynamic(given)
        role = "fp16_trt_onnx" if card.precision == "fp16" else "trt_onnx"
        if plugin_nodes(given):
            graphs.add(role, given, card.precision)
            if (out / FILE_NAMES[role]).resolve() == source.resolve():
                written[role] = source  # building beside the file it came from
        else:
            graphs.add(role, to_trt_graph(given), card.precision)
        portable = reexpand_plugins(graphs.models[role])
    else:
        torch_to_onnx = _import_torch_stage()
        from edgeseg.checkpoint import load_model

        model, card = load_model(source)
        opset = DEFAULT_OPSET if opset is None else int(opset)
        card = card.replace(output="class_map" if argmax else "logits")
        portable = torch_to_onnx.export_onnx(
            model, card, opset=opset, dynamic=dynamic, argmax=argmax
        )
        graphs.add("onnx", portable, "fp32")
        graphs.add("trt_onnx", to_trt_graph(portable), "fp32")
        if fp16:
            portable16 = to_fp16(portable)
            graphs.add("fp16_onnx", portable16, "fp16")
            graphs.add("fp16_trt_onnx", to_trt_graph(portable16), "fp16")
        if int8 is not None:
            from edgeseg.calibration.int8 import quantize_checked

            out.mkdir(parents=True, exist_ok=True)
            int8_result = quantize_checked(
                portable, card, int8, report_dir=out, log=log, warn=_warn
            )
            graphs.add("int8_onnx", int8_result.model, "int8")
            graphs.add("int8_trt_onnx", to_trt_graph(int8_result.model), "int8")
        expected = torch_to_onnx.count_unpoolings(model)
        for role in ("trt_onnx", "fp16_trt_onnx", "int8_trt_onnx"):
            if role in graphs.models:
                problems = trt_graph_problems(graphs.models[role], expected)
                if problems:
                    raise RuntimeError(f"{FILE_NAMES[role]} is malformed: {'; '.join(problems)}")
        if check:
            import torch

            def reference(inputs: np.ndarray) -> np.ndarray:
                with torch.no_grad():
                    return model(torch.from_numpy(inputs)).numpy()

            results = _check_parity(
                graphs,
                reference,
                card,
                dynamic,
                samples,
                tolerance,
                torch_to_onnx.min_input_side(model),
            )
            parity_mod.require_parity(results, log)

    result = ExportResult(out_dir=out, card=card, parity=results, files=written)
    if int8 is not None:
        result.int8 = int8_result
    if results:
        log(parity_mod.format_report(results))
    for role, graph in graphs.models.items():
        if role not in result.files:
            onnx_card = _onnx_card(card, role, graphs.precision[role], opset, dynamic)
            if graphs.precision[role] == "int8" and int8 is not None:
                calibration = {
                    "method": int8.method,
                    "images": result.int8.calibration_images,
                    "source": result.int8.source,
                    "kept_float": result.int8.kept_float,
                    "check": vars(result.int8.check),
                }
                onnx_card = onnx_card.replace(build={**onnx_card.build, "int8": calibration})
            attach_card(graph, onnx_card)
            result.files[role] = save_onnx(graph, out / FILE_NAMES[role])
            log(
                f"wrote {result.files[role]} ({graphs.precision[role]}, opset {opset}, "
                f"{'dynamic' if dynamic else 'static'} input, {card.output})"
            )

    if engine_tools is not None:
        _build_and_check(
            engine_tools,
            graphs,
            result,
            portable,
            fp16,
            check,
            tolerance,
            workspace_mb,
            samples,
            dynamic,
            log,
        )
    return result


def _build_and_check(
    engine_tools: tuple,
    graphs: _Graphs,
    result: ExportResult,
    reference_model: onnx.ModelProto,
    fp16: bool,
    check: bool,
    tolerance: float | None,
    workspace_mb: int | None,
    samples: int,
    dynamic: bool,
    log: Callable[[str], None],
) -> None:
    engine_mod, trt, library, _gpu = engine_tools
    card = result.card
    major = engine_mod.tensorrt_major(trt.__version__)
    if "int8_trt_onnx" in graphs.models:
        precision = "int8"
        if fp16 and major >= 11:
            log(
                f"note: TensorRT {trt.__version__} is strongly typed: the layers left in float "
                "keep the Q/DQ graph's FP32 types (FP16 there needs an FP16-typed Q/DQ graph)"
            )
    else:
        precision = "fp16" if fp16 or card.precision == "fp16" else "fp32"
    plan = engine_mod.precision_plan(major, precision, float_fp16=fp16)
    role = {"fp16": "fp16_trt_onnx", "int8": "int8_trt_onnx"}.get(plan.onnx_precision, "trt_onnx")
    if role not in result.files:
        if role == "trt_onnx":  # TensorRT 10.x given an FP16 graph: its FP16 flag builds it too
            role = "fp16_trt_onnx"
        else:  # TensorRT 11.x FP16 from an FP32 graph: convert, then rewrite (as for INT8)
            fp32_portable = reexpand_plugins(graphs.models["trt_onnx"])
            graphs.add(role, to_trt_graph(to_fp16(fp32_portable)), "fp16")
            attach_card(
                graphs.models[role],
                _onnx_card(card, role, "fp16", _opset_of(fp32_portable), dynamic),
            )
            result.files[role] = save_onnx(graphs.models[role], result.out_dir / FILE_NAMES[role])
            log(f"wrote {result.files[role]} (fp16, for TensorRT {trt.__version__})")
    engine_path = result.out_dir / FILE_NAMES["engine"]
    built = engine_mod.build_engine(
        result.files[role],
        engine_path,
        card,
        precision=precision,
        workspace_mb=workspace_mb or engine_mod.DEFAULT_WORKSPACE_MB,
        plugin_library=library,
        log=log,
    )
    result.files["engine"] = engine_path
    result.engine_card = built.card
    log(
        f"wrote {engine_path} and {engine_path.name}.json ({precision}, TensorRT "
        f"{trt.__version__}, {built.gpu.name})"
    )
    if not check:
        return
    inputs = parity_mod.sample_inputs(card, samples)
    if precision == "int8":  # the engine must compute what the INT8 ONNX computes
        reference_model = graphs.models["int8_onnx"]
    expected = parity_mod.run_onnx(
        reference_model.SerializeToString(), inputs, batch=None if dynamic else 1
    )
    actual = engine_mod.run_engine(
        engine_path, inputs, batch=None if dynamic else 1, plugin_library=library
    )
    engine_result = parity_mod.compare(
        FILE_NAMES["engine"],
        "TensorRT against ONNX Runtime",
        expected,
        actual,
        precision,
        tolerance=tolerance if precision == "fp32" else None,
    )
    result.parity.append(engine_result)
    log(parity_mod.format_report([engine_result], "engine parity with ONNX Runtime"))
    parity_mod.require_parity([engine_result])
