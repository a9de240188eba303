"""``edgeseg export`` as one library call: :class:`ExportOptions` -> ONNX files (-> engine).

1. :func:`edgeseg.export.options.plan_export`: the options checked before any slow work (the
   calibration data resolved), then TensorRT, the GPU and the plugin when an engine is asked;
2. the source graph: PyTorch -> standard-op block form
   (:func:`edgeseg.export.torch_to_onnx.export_onnx`), or an edgeseg ONNX as given;
3. every other form from it, once, by the artifact planner (:class:`edgeseg.export.forms.Forms`:
   precision -> ONNX Runtime / portable / plugin / native graph -> the engine's source);
4. parity: ONNX Runtime against PyTorch on sample inputs, for every file (plugin graphs with
   their plugin nodes re-expanded); nothing is written unless all pass;
5. the files, each with its card; with ``format="engine"`` the engine built from the graph the
   planner names for the installed TensorRT, then (``check``) compared with ONNX Runtime.

The source may also be an ONNX written by ``edgeseg export`` (any form, card inside): that builds
an engine on a machine without torch, e.g. a Jetson.

Example (a checkpoint to ONNX files, without the parity check)::

    from edgeseg.export import ExportOptions, export_checkpoint
    result = export_checkpoint(ExportOptions("runs/camvid/best.pt", "runs/export", check=False))
    print(result.files["onnx"], result.files["portable_onnx"])
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from edgeseg.card import ModelCard
from edgeseg.export import parity as parity_mod
from edgeseg.export.forms import FILE_NAMES, Form, Forms
from edgeseg.export.onnx_io import DEFAULT_OPSET, card_of, load_onnx
from edgeseg.export.options import DEFAULT_OUT, ExportOptions, ExportPlan, plan_export
from edgeseg.export.parity import ParityResult
from edgeseg.run_dirs import claim_run_dir

__all__ = ["FILE_NAMES", "ExportOptions", "ExportResult", "export_checkpoint"]

#: What each form's file is for, in the line that says it was written.
PURPOSE = {
    "onnxruntime": "for ONNX Runtime",
    "portable": "standard ops only, for any ONNX reader",
    "plugin": "for TensorRT with the edgeseg plugin",
    "native": "for TensorRT without the plugin",
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


@dataclass(frozen=True)
class EngineTools:
    """TensorRT, the plugin library (None for ``--unpool native``) and the GPU, found by the
    engine preflight."""

    module: ModuleType  # edgeseg.export.engine
    trt: Any
    library: Path | None
    gpu: Any  # edgeseg.backends.cuda.GpuInfo

    @property
    def major(self) -> int:
        return self.module.tensorrt_major(self.trt.__version__)


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def engine_tools(options: ExportOptions) -> EngineTools | None:
    """TensorRT, GPU and plugin checked up front when an engine is asked for (else None)."""
    if not options.engine:
        return None
    from edgeseg.export import engine as engine_mod

    trt, library, gpu = engine_mod.preflight(unpool=options.unpool)
    return EngineTools(engine_mod, trt, library, gpu)


# --- the source and the forms an export writes ---------------------------------------------------


def forms_from_onnx(options: ExportOptions) -> Forms:
    """An edgeseg ONNX given as the source: the planner starts from it as it is."""
    given = load_onnx(options.source)
    forms = Forms(given, card_of(given, options.source))
    if (options.out / forms.given.file_name).resolve() == options.source.resolve():
        forms.adopt(forms.given, options.source)  # building beside the file it came from
    return forms


def forms_from_checkpoint(
    plan: ExportPlan, result: ExportResult, log: Callable[[str], None]
) -> tuple[Forms, Any]:
    """(the planner over the checkpoint's exported block graph, the PyTorch model)."""
    try:
        from edgeseg.export import torch_to_onnx
    except ImportError as exc:
        from edgeseg.errors import missing_extra

        raise missing_extra(exc.name or "torch", "export") from None
    from edgeseg.checkpoint import load_model

    options = plan.options
    model, card = load_model(options.source)
    card = card.replace(output="class_map" if options.argmax else "logits")
    opset = DEFAULT_OPSET if options.opset is None else int(options.opset)
    portable = torch_to_onnx.export_onnx(
        model, card, opset=opset, dynamic=options.dynamic, argmax=options.argmax
    )

    def quantize(fp32: Any) -> Any:
        from edgeseg.calibration.int8 import quantize_checked

        assert options.int8 is not None  # the planner asks for INT8 only with --int8
        options.out.mkdir(parents=True, exist_ok=True)  # the INT8 report goes there
        result.int8 = quantize_checked(
            fp32, card, options.int8, report_dir=options.out, log=log, warn=_warn,
            source=plan.calibration,
        )  # fmt: skip
        forms.build_notes["int8"] = {
            "int8": {
                "method": options.int8.method,
                "images": result.int8.calibration_images,
                "source": result.int8.source,
                "kept_float": result.int8.kept_float,
                "check": vars(result.int8.check),
            }
        }
        return result.int8.model

    forms = Forms(portable, card, quantize=quantize if options.int8 else None)
    return forms, model


def write_form(
    forms: Forms, form: Form, result: ExportResult, log: Callable[[str], None], note: str = ""
) -> Path:
    """Write ``form`` into the output folder (once), record it in ``result`` and say so."""
    path, new = forms.write(form, result.out_dir)
    result.files[form.role] = path
    if new:
        shape = "dynamic" if forms.dynamic else "static"
        log(
            f"wrote {path} ({form.precision}, {note or PURPOSE[form.kind]}, opset {forms.opset}, "
            f"{shape} input, {forms.card.output})"
        )
    return path


# --- the whole stage -----------------------------------------------------------------------------


def export_checkpoint(
    options: ExportOptions | ExportPlan, log: Callable[[str], None] = print
) -> ExportResult:
    """Export ``options.source`` into ``options.out``; see the module doc for the steps.

    Writes ``model.onnx`` (ONNX Runtime's form), ``model.portable.onnx`` (standard ops only) and
    ``model.trt.onnx`` (TensorRT, plugin), FP32; with ``fp16`` also ``model.fp16.onnx`` and
    ``model.fp16.trt.onnx``; with ``int8`` also ``model.int8.onnx`` and ``model.int8.trt.onnx``
    (calibrated and checked as :mod:`edgeseg.calibration.int8` says); with ``format="engine"``
    also ``model.engine`` and its ``model.engine.json`` card. Raises EdgesegError (one line) for
    a user-fixable problem or a parity failure; then nothing is written. ``options`` may be the
    plan :func:`~edgeseg.export.options.plan_export` made of them (checked already).
    """
    plan = options if isinstance(options, ExportPlan) else plan_export(options, log)
    tools = engine_tools(plan.options)  # TensorRT, GPU, plugin: checked before the slow part
    if plan.options.out is not None:
        return _export(plan, tools, log)
    markers = (FILE_NAMES["onnx"], FILE_NAMES["trt_onnx"], FILE_NAMES["engine"])
    folder = claim_run_dir(DEFAULT_OUT, markers)
    if folder != DEFAULT_OUT:
        log(f"{DEFAULT_OUT} holds an earlier export; this one writes to {folder}")
    plan = dataclasses.replace(plan, options=dataclasses.replace(plan.options, out=folder))
    try:
        return _export(plan, tools, log)
    except BaseException:
        with contextlib.suppress(OSError):  # only an empty folder goes
            folder.rmdir()
        raise


def _export(
    plan: ExportPlan, tools: EngineTools | None, log: Callable[[str], None]
) -> ExportResult:
    options = plan.options
    if options.from_onnx:
        forms = forms_from_onnx(options)
        result = ExportResult(options.out, forms.card)
    else:
        result = ExportResult(options.out, card=None)  # type: ignore[arg-type]
        forms, model = forms_from_checkpoint(plan, result, log)
        result.card = forms.card
        wanted = forms.for_export(options.fp16, options.int8 is not None)
        if options.check:
            result.parity = parity_mod.check_forms(
                forms, wanted, model, samples=options.samples,
                dynamic=options.dynamic, tolerance=options.tolerance, log=log,
            )  # fmt: skip
        for form in wanted:
            write_form(forms, form, result, log)
    if tools is not None:
        build_and_check_engine(options, tools, forms, result, log)
    return result


# --- the engine ----------------------------------------------------------------------------------


def engine_precision(
    options: ExportOptions, tools: EngineTools, forms: Forms, log: Callable[[str], None]
) -> str:
    """INT8 with ``--int8`` (or an INT8 source), else FP16 with ``--fp16`` (or an FP16 source),
    else FP32."""
    if options.int8 is not None or forms.source_precision == "int8":
        if options.fp16 and tools.major >= 11:
            log(
                f"note: TensorRT {tools.trt.__version__} is strongly typed: the layers left in "
                "float keep the Q/DQ graph's FP32 types (FP16 there needs an FP16-typed Q/DQ "
                "graph)"
            )
        return "int8"
    return "fp16" if options.fp16 or forms.source_precision == "fp16" else "fp32"


def build_and_check_engine(
    options: ExportOptions,
    tools: EngineTools,
    forms: Forms,
    result: ExportResult,
    log: Callable[[str], None],
) -> None:
    """Build ``model.engine`` from the graph the planner names, then (``options.check``)
    compare it with ONNX Runtime on sample inputs; raises EdgesegError when they disagree."""
    precision = engine_precision(options, tools, forms, log)
    build_plan = tools.module.precision_plan(tools.major, precision, float_fp16=options.fp16)
    source = forms.engine_source(tools.major, precision, options.unpool, float_fp16=options.fp16)
    note = f"TensorRT {tools.trt.__version__} builds the engine from it"
    source_path = write_form(forms, source, result, log, note)
    engine_path = options.out / FILE_NAMES["engine"]
    built = tools.module.build_engine(
        source_path,
        engine_path,
        result.card,
        precision=precision,
        plan=build_plan,  # the plan the ONNX was chosen by: --int8 --fp16 keeps FP16 on 10.x
        workspace_mb=options.workspace_mb or tools.module.DEFAULT_WORKSPACE_MB,
        plugin_library=tools.library,
        unpool=options.unpool,
        log=log,
        **({"max_batch": options.max_batch} if options.max_batch else {}),
    )
    result.files["engine"] = engine_path
    result.engine_card = built.card
    log(
        f"wrote {engine_path} and {engine_path.name}.json ({precision}, {options.unpool} "
        f"unpooling, TensorRT {tools.trt.__version__}, {built.gpu.name})"
    )
    if not options.check:
        return
    engine_result = parity_mod.engine_parity(
        engine_path,
        forms.reference(precision).model,
        parity_mod.sample_inputs(result.card, options.samples),
        precision,
        plugin_library=tools.library,
        tolerance=options.tolerance if precision == "fp32" else None,
        # Which pixels count below FP32: those the FP32 logits decide, also for --argmax engines.
        decided_by=forms.reference("fp32").model,
    )
    result.parity.append(engine_result)
    log(parity_mod.format_report([engine_result], "engine parity with ONNX Runtime"))
    parity_mod.require_parity([engine_result], consequence=f"{engine_path.name} was written")
