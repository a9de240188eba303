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
from edgeseg.card import ModelCard, write_sidecar
from edgeseg.errors import EdgesegError
from edgeseg.export.engine_plan import (
    DEFAULT_MAX_BATCH,
    default_profile,
    format_precision_summary,
    layer_precision_summary,
    precision_plan,
    unpool_layer_count,
)
from edgeseg.export.onnx_io import make_readable
from edgeseg.files import atomic_write_bytes

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
    workspace_mb: int = DEFAULT_WORKSPACE_MB,
    max_batch: int = DEFAULT_MAX_BATCH,
    plugin_library: str | Path | None = None,
    unpool: str = "plugin",
    log: Callable[[str], None] = print,
) -> EngineBuild:
    """Build ``engine_path`` from a TensorRT ONNX and write its card sidecar.

    ``onnx_path`` must hold the precision :func:`precision_plan` asks for (an FP16 ONNX on 11.x
    for fp16): with ``unpool="plugin"`` a ``*.trt.onnx`` (plugin nodes), with ``"native"`` the
    standard-op block graph (no plugin loaded). Raises EdgesegError, one line, for a missing
    TensorRT/GPU/plugin, parser errors (listed first, one per line, on stderr) or a failed build.
    """
    trt, library, gpu = preflight(plugin_library, unpool)
    onnx_path, engine_path = Path(onnx_path), Path(engine_path)
    logger = trt.Logger(trt.Logger.WARNING)
    if library is not None:
        load_plugin(trt, library)
    builder = trt.Builder(logger)
    network, _parser = _parse(trt, builder, logger, onnx_path)  # the parser owns the weights
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_mb) << 20)
    config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED
    _set_precision(trt, config, precision_plan(tensorrt_major(trt.__version__), precision))
    profile = _add_profile(builder, config, network, card, max_batch)
    cache_path = engine_path.with_name(TIMING_CACHE_NAME)
    _use_timing_cache(config, cache_path)

    log(
        f"building {engine_path.name} with TensorRT {trt.__version__} on {gpu.name} "
        f"({precision}, {unpool} unpooling, workspace {workspace_mb} MiB)..."
    )
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise EdgesegError(
            f"TensorRT could not build an engine from {onnx_path.name} (see its messages above); "
            "a larger --workspace-mb may help"
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
    )
    engine_card = card.replace(precision=precision, build=facts, edgeseg_version=__version__)
    make_readable(write_sidecar(engine_card, engine_path))
    return EngineBuild(engine_path, engine_card, counts, gpu)


def _parse(trt: Any, builder: Any, logger: Any, onnx_path: Path) -> tuple[Any, Any]:
    """(network, parser) from ``onnx_path``; parser errors listed on stderr, then one line.

    The parser holds the weights the network refers to, so it must live until the build.
    """
    # 10.x: 0 = weakly typed, precision from builder flags. 11.x: always strongly typed; the
    # STRONGLY_TYPED flag is deprecated and ignored (NvInfer.h v11.1), so 0 there as well.
    network = builder.create_network(0)
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


def _set_precision(trt: Any, config: Any, plan: Any) -> None:
    for flag in plan.builder_flags:
        config.set_flag(getattr(trt.BuilderFlag, flag))
    for flag in plan.clear_flags:
        if hasattr(trt.BuilderFlag, flag):
            config.clear_flag(getattr(trt.BuilderFlag, flag))


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


__all__ = ["EngineBuild", "build_engine", "preflight"]
