"""TensorRT engines from edgeseg's TensorRT ONNX, for TensorRT 10.x and 11.x.

TensorRT is imported lazily, inside these functions; what decides something (version split,
precision plan, optimization profile, layer precision summary) is in
:mod:`edgeseg.export.engine_plan`, pure functions tested without TensorRT. The builder:

1. loads the plugin library through the plugin registry (``load_library``; a plain
   ``ctypes.CDLL`` would not register a library that only exports ``getCreators``);
2. parses the ``*.trt.onnx`` with ``OnnxParser.parse_from_file``, listing parser errors one per
   line before failing with one summary line;
3. configures the workspace pool, an optimization profile for dynamic inputs, the timing cache
   kept beside the engine, ``ProfilingVerbosity.DETAILED`` (for the layer precision summary) and
   the precision, which is where 10.x and 11.x differ (see :func:`precision_plan`);
4. serializes with ``build_serialized_network``, writes the engine atomically and its model card
   sidecar with the build facts the runtime checks (:mod:`edgeseg.engine_card`).

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

import numpy as np

from edgeseg import __version__
from edgeseg.card import ModelCard, atomic_write_bytes, write_sidecar
from edgeseg.engine_card import engine_build_facts, tensorrt_major
from edgeseg.errors import EdgesegError
from edgeseg.export.engine_plan import (
    DEFAULT_MAX_BATCH,
    SUPPORTED_MAJORS,
    default_profile,
    format_precision_summary,
    layer_precision_summary,
    precision_plan,
)
from edgeseg.export.onnx_io import make_readable

TENSORRT_MISSING = (
    "TensorRT is not installed: desktop: pip install tensorrt (10.x/11.x); Jetson: JetPack "
    "6.1/6.2 ships TensorRT 10.3 — build the plugin and the engine on the Jetson itself"
)
DEFAULT_WORKSPACE_MB = 1024
TIMING_CACHE_NAME = "tensorrt.timing-cache"


def _stderr(message: str) -> None:
    import sys

    print(message, file=sys.stderr)


# --- TensorRT, plugin and GPU --------------------------------------------------------------------


def import_tensorrt() -> Any:
    """The tensorrt module, 10.x or 11.x; one-line errors when absent or too old."""
    try:
        import tensorrt as trt
    except ImportError:
        raise EdgesegError(TENSORRT_MISSING) from None
    major = tensorrt_major(trt.__version__)
    if major not in SUPPORTED_MAJORS:
        raise EdgesegError(
            f"TensorRT {trt.__version__} is installed; edgeseg needs 10.x or 11.x (the plugin "
            "uses IPluginV3): pip install 'tensorrt>=10,<12'; on Jetson, JetPack 6.1/6.2"
        )
    return trt


def require_plugin_library(path: str | Path | None = None) -> Path:
    """The built plugin library, or a one-line error giving the command that builds it."""
    from edgeseg.export.plugin import plugin_library_path

    library = Path(path) if path is not None else plugin_library_path()
    if not library.is_file():
        raise EdgesegError(
            f"the edgeseg TensorRT plugin is not built ({library} is missing); build it on this "
            "machine with: edgeseg plugin build"
        )
    return library


def require_gpu() -> Any:
    """GpuInfo of device 0, or a one-line error (no GPU, or no CUDA binding for Python)."""
    from edgeseg.export.cuda_buffers import cuda_backend

    return cuda_backend().info()


def preflight(plugin_library: str | Path | None = None) -> tuple[Any, Path, Any]:
    """Everything an engine build needs, checked before any slow work: (trt, library, GpuInfo)."""
    trt = import_tensorrt()
    gpu = require_gpu()
    library = require_plugin_library(plugin_library)
    return trt, library, gpu


def load_plugin(trt: Any, library: Path) -> Any:
    """Register the plugin library with TensorRT's registry; one-line error when it fails."""
    from edgeseg.export.plugin import PLUGIN_NAMESPACE, PLUGIN_OP_TYPE, PLUGIN_VERSION

    registry = trt.get_plugin_registry()
    handle = registry.load_library(str(library))
    if handle is None:
        raise EdgesegError(
            f"TensorRT could not load {library}; rebuild it with: edgeseg plugin build"
        )
    get_creator = getattr(registry, "get_creator", None)  # TensorRT 10.0+: V3 creators too
    if (
        get_creator is not None
        and get_creator(PLUGIN_OP_TYPE, PLUGIN_VERSION, PLUGIN_NAMESPACE) is None
    ):
        raise EdgesegError(
            f"{library} does not provide {PLUGIN_NAMESPACE}::{PLUGIN_OP_TYPE} version "
            f"{PLUGIN_VERSION}; rebuild it with: edgeseg plugin build"
        )
    return handle


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
    log: Callable[[str], None] = print,
) -> EngineBuild:
    """Build ``engine_path`` from a TensorRT ONNX and write its card sidecar.

    ``onnx_path`` must hold the precision :func:`precision_plan` asks for (an FP16 ONNX on 11.x
    for fp16). Raises EdgesegError, one line, for a missing TensorRT/GPU/plugin, parser errors
    (listed first, one per line, on stderr) or a failed build.
    """
    trt, library, gpu = preflight(plugin_library)
    onnx_path, engine_path = Path(onnx_path), Path(engine_path)
    major = tensorrt_major(trt.__version__)
    plan = precision_plan(major, precision)
    logger = trt.Logger(trt.Logger.WARNING)
    load_plugin(trt, library)

    builder = trt.Builder(logger)
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

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_mb) << 20)
    config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED
    for flag in plan.builder_flags:
        config.set_flag(getattr(trt.BuilderFlag, flag))
    for flag in plan.clear_flags:
        if hasattr(trt.BuilderFlag, flag):
            config.clear_flag(getattr(trt.BuilderFlag, flag))

    profile_record = None
    network_input = network.get_input(0)
    input_shape = tuple(int(d) for d in network_input.shape)
    if -1 in input_shape:
        low, opt, high = default_profile(input_shape, card.input_hw, max_batch)
        profile = builder.create_optimization_profile()
        profile.set_shape(network_input.name, low, opt, high)
        config.add_optimization_profile(profile)
        profile_record = {"min": list(low), "opt": list(opt), "max": list(high)}

    cache_path = engine_path.with_name(TIMING_CACHE_NAME)
    cache_bytes = cache_path.read_bytes() if cache_path.is_file() else b""
    cache = config.create_timing_cache(cache_bytes)
    if not config.set_timing_cache(cache, False):  # a cache from another GPU/TensorRT: start anew
        cache = config.create_timing_cache(b"")
        config.set_timing_cache(cache, False)

    log(
        f"building {engine_path.name} with TensorRT {trt.__version__} on {gpu.name} "
        f"({precision}, workspace {workspace_mb} MiB)..."
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

    engine = trt.Runtime(logger).deserialize_cuda_engine(data)
    counts = Counter()
    if engine is not None and hasattr(engine, "create_engine_inspector"):
        inspector = engine.create_engine_inspector()
        counts = layer_precision_summary(
            inspector.get_engine_information(trt.LayerInformationFormat.JSON)
        )
    log(format_precision_summary(counts))

    from edgeseg.export.plugin import PLUGIN_VERSION

    facts = engine_build_facts(
        tensorrt=trt.__version__,
        cuda=gpu.cuda_runtime,
        gpu=gpu.name,
        compute_capability=gpu.compute_capability,
        precision=precision,
        plugin_version=PLUGIN_VERSION,
        edgeseg=__version__,
        source_onnx=onnx_path.name,
        workspace_mb=int(workspace_mb),
        profile=profile_record,
        layer_precisions=dict(counts),
    )
    engine_card = card.replace(precision=precision, build=facts, edgeseg_version=__version__)
    make_readable(write_sidecar(engine_card, engine_path))
    return EngineBuild(engine_path, engine_card, counts, gpu)


# --- run ----------------------------------------------------------------------------------------


def run_engine(
    engine_path: str | Path,
    inputs: np.ndarray,
    batch: int | None = None,
    plugin_library: str | Path | None = None,
) -> np.ndarray:
    """Run an engine on (N, 3, H, W) float32 inputs (``batch``: chunk size, 1 for a static
    batch of 1) with ``execute_async_v3``; returns its single output on the host."""
    from edgeseg.export.cuda_buffers import cuda_backend

    trt, library, _ = preflight(plugin_library)
    load_plugin(trt, library)
    logger = trt.Logger(trt.Logger.WARNING)
    engine = trt.Runtime(logger).deserialize_cuda_engine(Path(engine_path).read_bytes())
    if engine is None:
        raise EdgesegError(f"TensorRT could not load {engine_path}; rebuild it with edgeseg export")
    context = engine.create_execution_context()
    names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
    input_name = next(n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT)
    output_name = next(n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT)
    backend = cuda_backend()
    step = batch or len(inputs)
    results = []
    for start in range(0, len(inputs), step):
        chunk = np.ascontiguousarray(inputs[start : start + step], dtype=np.float32)
        context.set_input_shape(input_name, chunk.shape)
        device_in = backend.upload(chunk)
        out_shape = tuple(context.get_tensor_shape(output_name))
        out_dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(output_name)))
        device_out = backend.empty(out_shape, out_dtype)
        context.set_tensor_address(input_name, device_in.ptr)
        context.set_tensor_address(output_name, device_out.ptr)
        stream = backend.stream()
        if not context.execute_async_v3(stream[0]):
            raise RuntimeError(f"TensorRT execute_async_v3 failed on {engine_path}")
        backend.synchronize(stream)
        results.append(backend.download(device_out))
    return np.concatenate(results)
