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
from types import ModuleType
from typing import Any

import numpy as np
import onnx

from edgeseg import __version__
from edgeseg.backends.tensorrt import (
    PLUGIN_NAMESPACE,
    PLUGIN_OP_TYPE,
    PLUGIN_VERSION,
    check_unpool,
)
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
from edgeseg.export.trt_graph import to_trt_graph, trt_graph_problems
from edgeseg.unpool_graph import plugin_nodes, reexpand_plugins, to_maxunpool_form

FORMATS = ("onnx", "engine")
FILE_NAMES = {
    "onnx": "model.onnx",
    "trt_onnx": "model.trt.onnx",
    "fp16_onnx": "model.fp16.onnx",
    "fp16_trt_onnx": "model.fp16.trt.onnx",
    "int8_onnx": "model.int8.onnx",
    "int8_trt_onnx": "model.int8.trt.onnx",
    # --unpool native: the standard-op block graph TensorRT builds from (model.onnx holds the
    # MaxUnpool form, which TensorRT's parser rejects), written beside the engine.
    "native_onnx": "model.native.onnx",
    "fp16_native_onnx": "model.fp16.native.onnx",
    "int8_native_onnx": "model.int8.native.onnx",
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


@dataclass(frozen=True)
class ExportPlan:
    """What one export produces, decided and checked before any slow work.

    ``from_onnx``: the source is an edgeseg ONNX (building its engine where torch is absent);
    ``engine``: a TensorRT engine is built after the ONNX files. The other fields are
    :func:`export_checkpoint`'s arguments, validated.
    """

    source: Path
    out: Path
    from_onnx: bool
    engine: bool
    fp16: bool = False
    dynamic: bool = False
    argmax: bool = False
    opset: int | None = None
    check: bool = True
    tolerance: float | None = None
    workspace_mb: int | None = None
    samples: int = 2
    int8: Int8Options | None = None
    unpool: str = "plugin"


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


@dataclass
class _Graphs:
    """In-memory graphs by role, with the precision each holds."""

    models: dict[str, onnx.ModelProto] = field(default_factory=dict)
    precision: dict[str, str] = field(default_factory=dict)

    def add(self, role: str, model: onnx.ModelProto, precision: str) -> None:
        self.models[role] = model
        self.precision[role] = precision


@dataclass
class _Produced:
    """The export's work before anything is written: graphs, card, portable reference graph."""

    graphs: _Graphs
    card: ModelCard
    portable: onnx.ModelProto
    opset: int
    dynamic: bool
    parity: list[ParityResult] = field(default_factory=list)
    int8: Any = None
    written: dict[str, Path] = field(default_factory=dict)


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


# --- the plan --------------------------------------------------------------------------------


def plan_export(
    source: str | Path,
    out_dir: str | Path = "export",
    *,
    format: str = "onnx",
    **options: Any,
) -> ExportPlan:
    """Check what was asked before any slow step; one-line EdgesegError for a mistake.

    ``options`` are :class:`ExportPlan`'s fields (``fp16``, ``dynamic``, ``int8``, ...).
    """
    if format not in FORMATS:
        raise EdgesegError(f"unknown format {format!r}; choose one of: {', '.join(FORMATS)}")
    source = Path(source)
    from_onnx = source.suffix.lower() == ".onnx"
    if not source.is_file():
        raise EdgesegError(f"{'ONNX file' if from_onnx else 'checkpoint'} {source} not found")
    if from_onnx and format != "engine":
        raise EdgesegError(f"{source} is already ONNX; use --format engine to build an engine")
    plan = ExportPlan(source, Path(out_dir), from_onnx, format == "engine", **options)
    if from_onnx and (plan.dynamic or plan.argmax or plan.opset is not None or plan.int8):
        raise EdgesegError(
            "--dynamic, --argmax, --opset and --int8 apply when exporting a checkpoint; "
            f"{source.name} keeps the options it was exported with"
        )
    if plan.opset is not None:
        check_opset(int(plan.opset))
    check_unpool(plan.unpool)
    if plan.unpool != "plugin" and not plan.engine:
        raise EdgesegError(
            f"--unpool {plan.unpool} chooses how an engine unpools; add --format engine"
        )
    return plan


def engine_tools(plan: ExportPlan) -> EngineTools | None:
    """TensorRT, GPU and plugin checked up front when an engine is asked for (else None)."""
    if not plan.engine:
        return None
    from edgeseg.export import engine as engine_mod

    trt, library, gpu = engine_mod.preflight(unpool=plan.unpool)
    return EngineTools(engine_mod, trt, library, gpu)


# --- producing the graphs ----------------------------------------------------------------------


def graphs_from_onnx(plan: ExportPlan) -> _Produced:
    """An edgeseg ONNX given as the source: its TensorRT graph (rewritten if portable)."""
    given = load_onnx(plan.source)
    card = card_of(given, plan.source)
    graphs = _Graphs()
    role = "fp16_trt_onnx" if card.precision == "fp16" else "trt_onnx"
    written: dict[str, Path] = {}
    if plugin_nodes(given):
        graphs.add(role, given, card.precision)
        if (plan.out / FILE_NAMES[role]).resolve() == plan.source.resolve():
            written[role] = plan.source  # building beside the file it came from
    else:
        graphs.add(role, to_trt_graph(given), card.precision)
    portable = reexpand_plugins(graphs.models[role])
    return _Produced(graphs, card, portable, _opset_of(given), _is_dynamic(given), written=written)


def graphs_from_checkpoint(plan: ExportPlan, log: Callable[[str], None]) -> _Produced:
    """Export the checkpoint, derive the FP16/INT8/TensorRT graphs, check their structure and
    (``plan.check``) their parity with PyTorch. Raises EdgesegError on a parity failure."""
    torch_to_onnx = _import_torch_stage()
    from edgeseg.checkpoint import load_model

    model, card = load_model(plan.source)
    opset = DEFAULT_OPSET if plan.opset is None else int(plan.opset)
    card = card.replace(output="class_map" if plan.argmax else "logits")
    portable = torch_to_onnx.export_onnx(
        model, card, opset=opset, dynamic=plan.dynamic, argmax=plan.argmax
    )
    produced = _Produced(_Graphs(), card, portable, opset, plan.dynamic)
    graphs = produced.graphs
    # model.onnx holds the ONNX Runtime form (MaxUnpool): exact, and the fastest on a CPU;
    # every other graph derives from the block form, which TensorRT and quantizers take.
    graphs.add("onnx", to_maxunpool_form(portable), "fp32")
    graphs.add("trt_onnx", to_trt_graph(portable), "fp32")
    if plan.fp16:
        portable16 = to_fp16(portable)
        graphs.add("fp16_onnx", portable16, "fp16")
        graphs.add("fp16_trt_onnx", to_trt_graph(portable16), "fp16")
    if plan.int8 is not None:
        from edgeseg.calibration.int8 import quantize_checked

        plan.out.mkdir(parents=True, exist_ok=True)
        produced.int8 = quantize_checked(
            portable, card, plan.int8, report_dir=plan.out, log=log, warn=_warn
        )
        graphs.add("int8_onnx", produced.int8.model, "int8")
        graphs.add("int8_trt_onnx", to_trt_graph(produced.int8.model), "int8")
    _require_wellformed(graphs, torch_to_onnx.count_unpoolings(model))
    if plan.check:
        import torch

        def reference(inputs: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                return model(torch.from_numpy(inputs)).numpy()

        min_side = torch_to_onnx.min_input_side(model)
        produced.parity = _check_parity(plan, graphs, reference, card, min_side)
        parity_mod.require_parity(produced.parity, log)
    return produced


def _require_wellformed(graphs: _Graphs, unpoolings: int) -> None:
    # A malformed TensorRT graph is edgeseg's bug, not the user's: keep the traceback.
    for role in ("trt_onnx", "fp16_trt_onnx", "int8_trt_onnx"):
        if role in graphs.models:
            problems = trt_graph_problems(graphs.models[role], unpoolings)
            if problems:
                raise RuntimeError(f"{FILE_NAMES[role]} is malformed: {'; '.join(problems)}")


def _check_parity(
    plan: ExportPlan,
    graphs: _Graphs,
    reference: Callable[[np.ndarray], np.ndarray],
    card: ModelCard,
    min_side: int,
) -> list[ParityResult]:
    """ONNX Runtime against ``reference`` for every graph; TensorRT graphs re-expanded."""
    cases = [parity_mod.sample_inputs(card, plan.samples)]
    if plan.dynamic:  # another batch size and another (odd) input size through the same file
        height, width = card.input_hw
        other = (max(min_side, height + 33), max(min_side, width - 31))
        cases.append(parity_mod.sample_inputs(card, 1, other, seed=7))
    results = []
    for inputs in cases:
        expected = reference(inputs)
        int8_expected = None
        for role, model in graphs.models.items():
            precision = graphs.precision[role]
            if precision == "int8":
                # INT8 differs from PyTorch by design; its accuracy is checked on real images
                # (edgeseg.calibration.int8). Its TensorRT graph must equal the INT8 ONNX.
                if role == "int8_onnx":
                    continue
                if int8_expected is None:
                    int8_expected = parity_mod.run_onnx(graphs.models["int8_onnx"], inputs)
                method = f"ONNX Runtime against {FILE_NAMES['int8_onnx']}, plugin re-expanded"
                want, gate, gate_tolerance = int8_expected, "fp32", plan.tolerance
            else:
                method = "ONNX Runtime"
                if plugin_nodes(model):
                    method = "ONNX Runtime, plugin re-expanded to standard ops"
                want, gate = expected, precision
                gate_tolerance = plan.tolerance if precision == "fp32" else None
            actual = parity_mod.run_onnx(model, inputs)  # plugin nodes re-expanded there
            results.append(
                parity_mod.compare(
                    FILE_NAMES[role], method, want, actual, gate, tolerance=gate_tolerance
                )
            )
    return results


# --- writing -------------------------------------------------------------------------------------


def write_graphs(
    plan: ExportPlan, produced: _Produced, result: ExportResult, log: Callable[[str], None]
) -> None:
    """Attach each graph's card and write it into ``plan.out`` (atomically, one file a role)."""
    graphs, card = produced.graphs, produced.card
    for role, graph in graphs.models.items():
        if role in result.files:
            continue
        onnx_card = _onnx_card(card, role, graphs.precision[role], produced.opset, produced.dynamic)
        if graphs.precision[role] == "int8" and produced.int8 is not None:
            calibration = {
                "method": plan.int8.method,
                "images": produced.int8.calibration_images,
                "source": produced.int8.source,
                "kept_float": produced.int8.kept_float,
                "check": vars(produced.int8.check),
            }
            onnx_card = onnx_card.replace(build={**onnx_card.build, "int8": calibration})
        attach_card(graph, onnx_card)
        result.files[role] = save_onnx(graph, plan.out / FILE_NAMES[role])
        log(
            f"wrote {result.files[role]} ({graphs.precision[role]}, opset {produced.opset}, "
            f"{'dynamic' if produced.dynamic else 'static'} input, {card.output})"
        )


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
    unpool: str = "plugin",
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
    plan = plan_export(
        source,
        out_dir,
        format=format,
        fp16=fp16,
        dynamic=dynamic,
        argmax=argmax,
        opset=opset,
        check=check,
        tolerance=tolerance,
        workspace_mb=workspace_mb,
        samples=samples,
        int8=int8,
        unpool=unpool,
    )
    tools = engine_tools(plan)  # TensorRT, GPU, plugin: all checked before the slow part
    produced = graphs_from_onnx(plan) if plan.from_onnx else graphs_from_checkpoint(plan, log)
    result = ExportResult(
        out_dir=plan.out,
        card=produced.card,
        parity=produced.parity,
        files=dict(produced.written),
        int8=produced.int8,
    )
    if produced.parity:
        log(parity_mod.format_report(produced.parity))
    write_graphs(plan, produced, result, log)
    if tools is not None:
        build_and_check_engine(plan, tools, produced, result, log)
    return result


# --- the engine ----------------------------------------------------------------------------------


def _engine_precision(
    plan: ExportPlan, tools: EngineTools, produced: _Produced, log: Callable[[str], None]
) -> str:
    if "int8_trt_onnx" in produced.graphs.models:
        if plan.fp16 and tools.major >= 11:
            log(
                f"note: TensorRT {tools.trt.__version__} is strongly typed: the layers left in "
                "float keep the Q/DQ graph's FP32 types (FP16 there needs an FP16-typed Q/DQ "
                "graph)"
            )
        return "int8"
    return "fp16" if plan.fp16 or produced.card.precision == "fp16" else "fp32"


def _engine_source(
    plan: ExportPlan,
    tools: EngineTools,
    produced: _Produced,
    result: ExportResult,
    log: Callable[[str], None],
) -> tuple[str, str]:
    """(precision, role of the TensorRT ONNX the engine is built from), writing an FP16 graph
    first where TensorRT 11.x needs one that the export did not make."""
    precision = _engine_precision(plan, tools, produced, log)
    build_plan = tools.module.precision_plan(tools.major, precision, float_fp16=plan.fp16)
    roles = {"fp16": "fp16_trt_onnx", "int8": "int8_trt_onnx"}
    role = roles.get(build_plan.onnx_precision, "trt_onnx")
    if role not in result.files and role == "trt_onnx":
        role = "fp16_trt_onnx"  # TensorRT 10.x given an FP16 graph: its FP16 flag builds it too
    elif role not in result.files:
        _write_fp16_trt_graph(plan, tools, produced, result, log)
    if plan.unpool == "native":
        return precision, _write_native_graph(plan, produced, result, role, log)
    return precision, role


def _write_native_graph(
    plan: ExportPlan,
    produced: _Produced,
    result: ExportResult,
    trt_role: str,
    log: Callable[[str], None],
) -> str:
    """Write the plugin-free block graph of ``trt_role`` (model[.fp16|.int8].native.onnx).

    Written, not kept in memory: the engine card names it as the source to rebuild from
    (``edgeseg export model.native.onnx --format engine --unpool native`` on a machine without
    torch), the parser's errors point at a file one can open, and trtexec/Polygraphy take it too.
    """
    role = trt_role.replace("trt_onnx", "native_onnx")
    graph = reexpand_plugins(produced.graphs.models[trt_role])
    precision = produced.graphs.precision[trt_role]
    card = _onnx_card(produced.card, role, precision, _opset_of(graph), produced.dynamic)
    attach_card(graph, card.replace(build={**card.build, "unpool": "native"}))
    result.files[role] = save_onnx(graph, plan.out / FILE_NAMES[role])
    log(f"wrote {result.files[role]} ({precision}, unpooling in standard ops, no plugin)")
    return role


def _write_fp16_trt_graph(
    plan: ExportPlan,
    tools: EngineTools,
    produced: _Produced,
    result: ExportResult,
    log: Callable[[str], None],
) -> None:
    role = "fp16_trt_onnx"
    # TensorRT 11.x FP16 from an FP32 graph: convert, then rewrite (as for INT8).
    graphs = produced.graphs
    fp32_portable = reexpand_plugins(graphs.models["trt_onnx"])
    graphs.add(role, to_trt_graph(to_fp16(fp32_portable)), "fp16")
    attach_card(
        graphs.models[role],
        _onnx_card(produced.card, role, "fp16", _opset_of(fp32_portable), produced.dynamic),
    )
    result.files[role] = save_onnx(graphs.models[role], plan.out / FILE_NAMES[role])
    log(f"wrote {result.files[role]} (fp16, for TensorRT {tools.trt.__version__})")


def build_and_check_engine(
    plan: ExportPlan,
    tools: EngineTools,
    produced: _Produced,
    result: ExportResult,
    log: Callable[[str], None],
) -> None:
    """Build ``model.engine`` from the right TensorRT ONNX, then (``plan.check``) compare it
    with ONNX Runtime on sample inputs; raises EdgesegError when they disagree."""
    precision, role = _engine_source(plan, tools, produced, result, log)
    engine_path = plan.out / FILE_NAMES["engine"]
    built = tools.module.build_engine(
        result.files[role],
        engine_path,
        result.card,
        precision=precision,
        workspace_mb=plan.workspace_mb or tools.module.DEFAULT_WORKSPACE_MB,
        plugin_library=tools.library,
        unpool=plan.unpool,
        log=log,
    )
    result.files["engine"] = engine_path
    result.engine_card = built.card
    log(
        f"wrote {engine_path} and {engine_path.name}.json ({precision}, {plan.unpool} "
        f"unpooling, TensorRT {tools.trt.__version__}, {built.gpu.name})"
    )
    if not plan.check:
        return
    inputs = parity_mod.sample_inputs(result.card, plan.samples)
    # The engine must compute what its ONNX computes; INT8's reference is the INT8 ONNX.
    reference = produced.portable
    if precision == "int8":
        reference = produced.graphs.models["int8_onnx"]
    expected = parity_mod.run_onnx(reference, inputs)
    from edgeseg.backends.tensorrt_runner import TensorRTRunner

    with TensorRTRunner(engine_path, plugin_library=tools.library, use_cuda_graph=False) as run:
        actual = run.infer(inputs)
    engine_result = parity_mod.compare(
        FILE_NAMES["engine"],
        "TensorRT against ONNX Runtime",
        expected,
        actual,
        precision,
        tolerance=plan.tolerance if precision == "fp32" else None,
    )
    result.parity.append(engine_result)
    log(parity_mod.format_report([engine_result], "engine parity with ONNX Runtime"))
    parity_mod.require_parity([engine_result])
