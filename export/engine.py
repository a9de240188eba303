"""TensorRT engines from edgeseg's TensorRT ONNX, for TensorRT 10.x and 11.x.

TensorRT is imported lazily, inside these functions; what decides something (version split,
precision plan, optimization profile, layer precision summary) is in
:mod:`edgeseg.export.engine_plan`, pure functions tested without TensorRT. The builder:

1. registers the plugin library through :func:`edgeseg.backends.tensorrt.load_plugin` (the
   registry's ``load_library``, once per process; a plain ``ctypes.CDLL`` would not register a
   library that only exports ``getCreators``);
2. parses the ``*.trt.onnx`` with ``OnnxParser.parse_from_file``, listing parser errors one per
   line before failing with one summary line;
3. configures the workspace pool, an optimization profile for dynamic inputs, the timing cache
   kept beside the engine, ``ProfilingVerbosity.DETAILED`` (for the layer precision summary) and
   the precision, which is where 10.x and 11.x differ (see :func:`precision_plan`);
4. serializes with ``build_serialized_network``, writes the engine atomically and its model card
   sidecar with the build facts the runtime checks
   (:func:`edgeseg.backends.tensorrt.check_engine_compat`).

Engines are run (the export's engine check) by
:class:`edgeseg.backends.tensorrt_runner.TensorRTRunner`, the runtime's runner.

Sources: the TensorRT headers of tags v10.3.0 and v11.1 for the version split (cited in
:mod:`edgeseg.export.engine_plan` and at :func:`build_engine`'s ``create_network``), and the
Python API pages ``IBuilderConfig`` (``set_memory_pool_limit``, ``create_timing_cache``),
``IPluginRegistry`` (``load_library``) and ``OnnxParser`` (``parse_from_file``, ``num_errors``,
``get_error``) on docs.nvidia.com/deeplearning/tensorrt.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeseg import __version__
from edgeseg.backends.cuda import GpuInfo, gpu_info
from edgeseg.backends.tensorrt import (
    PLUGIN_VERSION,
    check_plugin_build,
    check_unpool,
    engine_build_facts,
    import_tensorrt,
    load_plugin,
    require_plugin_library,
    tensorrt_major,
)
from edgeseg.backends.tensorrt_engine import make_logger
from edgeseg.card import ModelCard, write_sidecar
from edgeseg.errors import EdgesegError
from edgeseg.export.engine_plan import (
    DEFAULT_MAX_BATCH,
    ONNX_FOR_PRECISION,
    PrecisionPlan,
    default_profile,
    format_precision_summary,
    layer_precision_summary,
    network_flags,
    onnx_precision_of,
    precision_plan,
    unpool_layer_count,
)
from edgeseg.export.onnx_io import make_readable
from edgeseg.files import atomic_write_bytes
from edgeseg.unpool_graph import UNPOOL_SCOPE

DEFAULT_WORKSPACE_MB = 1024
TIMING_CACHE_NAME = "tensorrt.timing-cache"


def _stderr(message: str) -> None:
    import sys

    print(message, file=sys.stderr)


# --- TensorRT, plugin and GPU --------------------------------------------------------------------


def preflight(
    plugin_library: str | Path | None = None, unpool: str = "plugin"
) -> tuple[Any, Path | None, GpuInfo]:
    """Everything an engine build needs, checked before any slow work: (trt, library, GpuInfo).

    One-line EdgesegErrors for TensorRT missing or of another major version, no CUDA binding or
    no GPU, and (``unpool="plugin"``) the plugin library not built or built for another
    TensorRT. A native build needs no plugin: library None.
    """
    check_unpool(unpool)
    trt = import_tensorrt()
    gpu = gpu_info()
    if unpool == "native":
        return trt, None, gpu
    library = require_plugin_library(plugin_library)
    check_plugin_build(library, trt.__version__)
    return trt, library, gpu


def _parser_error_line(error: Any) -> str:
    parts = [str(error.desc())]
    node_name = getattr(error, "node_name", None)
    node = node_name() if callable(node_name) else None
    if node:
        parts.append(f"(node {node})")
    return "TensorRT ONNX parser: " + " ".join(parts)


# --- build ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EngineBuild:
    path: Path
    card: ModelCard
    precisions: Counter
    gpu: Any


def build_engine(
    onnx_path: str | Path,
    engine_path: str | Path,
    card: ModelCard,
    *,
    precision: str = "fp32",
    plan: PrecisionPlan | None = None,
    workspace_mb: int = DEFAULT_WORKSPACE_MB,
    max_batch: int = DEFAULT_MAX_BATCH,
    plugin_library: str | Path | None = None,
    unpool: str = "plugin",
    log: Callable[[str], None] = print,
) -> EngineBuild:
    """Build ``engine_path`` from a TensorRT ONNX and write its card sidecar.

    ``plan``: the :class:`~edgeseg.export.engine_plan.PrecisionPlan` the caller chose (the
    export passes the one it picked the ONNX by, so ``--int8 --fp16`` keeps its FP16 flag on
    10.x); None: :func:`precision_plan` of ``precision`` alone. ``onnx_path`` must hold the
    plan's ``onnx_precision`` (checked before the build): with ``unpool="plugin"`` a
    ``*.trt.onnx`` (plugin nodes), with ``"native"`` the standard-op block graph (no plugin).
    Raises EdgesegError, one line, for a missing TensorRT/GPU/plugin, an ONNX of another
    precision, parser errors (listed first, one per line, on stderr) or a failed build.
    """
    trt, library, gpu = preflight(plugin_library, unpool)
    onnx_path, engine_path = Path(onnx_path), Path(engine_path)
    if plan is None:
        plan = precision_plan(tensorrt_major(trt.__version__), precision)
    require_onnx_precision(onnx_path, plan)
    logger = make_logger(trt)
    if library is not None:
        load_plugin(trt, library)
    builder = trt.Builder(logger)
    network, _parser = _parse(trt, builder, logger, onnx_path, plan)  # parser owns weights
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_mb) << 20)
    config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED
    flags = _set_precision(trt, config, network, plan)
    profile = _add_profile(builder, config, network, card, max_batch)
    cache_path = engine_path.with_name(TIMING_CACHE_NAME)
    _use_timing_cache(config, cache_path)

    log(
        f"building {engine_path.name} with TensorRT {trt.__version__} on {gpu.name} "
        f"({precision}, {plan.typing}, flags {', '.join(flags['builder_flags']) or 'none'}; "
        f"{unpool} unpooling, workspace {workspace_mb} MiB)..."
    )
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise EdgesegError(
            f"TensorRT could not build an engine from {onnx_path.name} "
            f"({logger.last_error or 'see its messages above'}); a larger --workspace-mb may help"
        )
    data = bytes(memoryview(serialized))
    atomic_write_bytes(engine_path, data)
    atomic_write_bytes(cache_path, bytes(memoryview(config.get_timing_cache().serialize())))
    make_readable(engine_path)
    counts, unpool_layers = _layer_precisions(trt, logger, data)
    log(format_precision_summary(counts))

    facts = engine_build_facts(
        tensorrt=trt.__version__,
        cuda=gpu.cuda_runtime,
        gpu=gpu.name,
        compute_capability=gpu.compute_capability,
        precision=precision,
        plugin_version=PLUGIN_VERSION,
        edgeseg=__version__,
        unpool=unpool,
        source_onnx=onnx_path.name,
        workspace_mb=int(workspace_mb),
        profile=profile,
        layer_precisions=dict(counts),
        unpool_layers=unpool_layers,
        **flags,
        **gpu_identity(gpu),
    )
    engine_card = card.replace(precision=precision, build=facts, edgeseg_version=__version__)
    make_readable(write_sidecar(engine_card, engine_path))
    return EngineBuild(engine_path, engine_card, counts, gpu)


def require_onnx_precision(onnx_path: Path, plan: PrecisionPlan) -> None:
    """Refuse, before TensorRT parses it, an ONNX whose types would build another precision
    than the plan's (an FP32 graph in a strongly typed FP16 build stays FP32)."""
    import onnx
    from google.protobuf.message import DecodeError

    try:
        model = onnx.load(str(onnx_path), load_external_data=False)
    except (OSError, ValueError, DecodeError) as exc:
        raise EdgesegError(f"cannot read {onnx_path} as ONNX: {exc}") from None
    held = onnx_precision_of(model)
    if held != plan.onnx_precision:
        raise EdgesegError(
            f"{onnx_path.name} is a {held} graph and this {plan.typing} build needs a "
            f"{plan.onnx_precision} one: build from the export's "
            f"{ONNX_FOR_PRECISION[plan.onnx_precision]} (edgeseg export ... --format engine)"
        )


def gpu_identity(gpu: GpuInfo) -> dict[str, Any]:
    """The card's record of which GPU tuned the engine beyond its name and compute capability
    (those are checked at load): UUID, multiprocessor count and memory, where the CUDA
    binding reports them ("Orin" names AGX, NX and Nano alike; their SM counts differ)."""
    found = {
        "gpu_uuid": gpu.uuid,
        "gpu_multiprocessors": gpu.multiprocessors,
        "gpu_memory_mib": gpu.memory_mib,
    }
    return {key: value for key, value in found.items() if value}


def _parse(
    trt: Any, builder: Any, logger: Any, onnx_path: Path, plan: PrecisionPlan
) -> tuple[Any, Any]:
    """(network, parser) from ``onnx_path``; parser errors listed on stderr, then one line.

    The parser holds the weights the network refers to, so it must live until the build.
    """
    network = builder.create_network(network_flags(trt, plan))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = [_parser_error_line(parser.get_error(i)) for i in range(parser.num_errors)]
        for line in errors:
            _stderr(line)
        raise EdgesegError(
            f"TensorRT {trt.__version__} could not parse {onnx_path.name} ({len(errors)} "
            "parser errors listed above)"
        )
    return network, parser


def _set_precision(trt: Any, config: Any, network: Any, plan: PrecisionPlan) -> dict[str, Any]:
    """Apply ``plan`` to ``config`` (and pin the unpooling layers of ``network`` where it says);
    returns the card's record of what was really set."""
    builder_flags = list(plan.builder_flags)
    for flag in plan.builder_flags:
        config.set_flag(getattr(trt.BuilderFlag, flag))
    cleared = [flag for flag in plan.clear_flags if hasattr(trt.BuilderFlag, flag)]
    for flag in cleared:
        config.clear_flag(getattr(trt.BuilderFlag, flag))
    pinned = _pin_unpool_layers(trt, network) if plan.pin_unpool else 0
    if pinned:
        config.set_flag(trt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS)
        builder_flags.append("OBEY_PRECISION_CONSTRAINTS")
    record: dict[str, Any] = {
        "builder_flags": builder_flags,
        "cleared_flags": cleared,
        "network": plan.typing,
        "network_flags": network_flags(trt, plan),
    }
    if plan.pin_unpool:
        record["pinned_fp32_layers"] = pinned
    return record


def _pin_unpool_layers(trt: Any, network: Any) -> int:
    """Pin the standard-op unpooling layers (``edgeseg_unpool/`` names) that compute on floats
    to FP32; returns how many. Their ``ReduceMax`` and the ``Equal`` that finds the window's
    first maximum must see the same values: in a weakly typed FP16 build TensorRT may run one
    in FP16 and the other in FP32, and then no position equals the rounded maximum."""
    float32 = trt.DataType.FLOAT
    pinned = 0
    for index in range(network.num_layers):
        layer = network.get_layer(index)
        if f"{UNPOOL_SCOPE}/" not in layer.name:
            continue
        outputs = [layer.get_output(i).dtype for i in range(layer.num_outputs)]
        inputs = [layer.get_input(i) for i in range(layer.num_inputs)]
        float_in = any(t is not None and t.dtype == float32 for t in inputs)
        if float32 not in outputs and not (float_in and trt.DataType.BOOL in outputs):
            continue  # shapes and indices: no float arithmetic to pin
        layer.precision = float32
        for i, dtype in enumerate(outputs):
            if dtype == float32:
                layer.set_output_type(i, float32)
        pinned += 1
    return pinned


def _add_profile(
    builder: Any, config: Any, network: Any, card: ModelCard, max_batch: int
) -> dict[str, list[int]] | None:
    """An optimization profile for a dynamic input (its record for the card), else None."""
    network_input = network.get_input(0)
    input_shape = tuple(int(d) for d in network_input.shape)
    if -1 not in input_shape:
        return None
    low, opt, high = default_profile(input_shape, card.input_hw, max_batch)
    profile = builder.create_optimization_profile()
    profile.set_shape(network_input.name, low, opt, high)
    config.add_optimization_profile(profile)
    return {"min": list(low), "opt": list(opt), "max": list(high)}


def _use_timing_cache(config: Any, cache_path: Path) -> None:
    """Reuse the timing cache kept beside the engine; one from another GPU/TensorRT starts anew."""
    cache_bytes = cache_path.read_bytes() if cache_path.is_file() else b""
    cache = config.create_timing_cache(cache_bytes)
    if not config.set_timing_cache(cache, False):
        config.set_timing_cache(config.create_timing_cache(b""), False)


def _layer_precisions(trt: Any, logger: Any, data: bytes) -> tuple[Counter, dict[str, int]]:
    """Layer precisions, and how many of the engine's layers do the unpooling (of how many),
    from the engine inspector (empty where this TensorRT has none)."""
    engine = trt.Runtime(logger).deserialize_cuda_engine(data)
    if engine is None or not hasattr(engine, "create_engine_inspector"):
        return Counter(), {}
    inspector = engine.create_engine_inspector()
    information = inspector.get_engine_information(trt.LayerInformationFormat.JSON)
    return layer_precision_summary(information), unpool_layer_count(information)


__all__ = ["EngineBuild", "PrecisionPlan", "build_engine", "precision_plan", "preflight"]
