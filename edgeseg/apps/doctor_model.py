"""``edgeseg doctor --model FILE``: the user's own model on this device, against ONNX Runtime.

doctor's self-test proves the toolkit on a 4-layer toy; a bug report needs the user's graph. Given
an edgeseg ONNX (portable, TensorRT or native graph) or an engine with its card, this builds the
engine here (ONNX) or loads it (engine), runs it and ONNX Runtime on a few frames (synthetic, or
``--source`` image/video), and reports the agreement by the export's own gate
(:mod:`edgeseg.precision_gate`), the latency at batch 1 and the precision TensorRT really built
(builder flags, typing, layer precisions from the engine inspector). It always prints the
equivalent ``trtexec`` and ``polygraphy run`` commands, so the same check can be repeated without
edgeseg. Without TensorRT or a GPU it says so in one line and prints the commands.

Polygraphy's ``--plugins`` loads a library with ``ctypes.CDLL``, which does not register a library
that only exports ``getCreators`` (edgeseg's plugin), so its command runs the plugin-free graph
(``*.native.onnx``, written beside the model when absent); trtexec's ``--dynamicPlugins`` loads
it through the registry's ``loadLibrary`` and takes the plugin graph as it is.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeseg.card import ModelCard
from edgeseg.errors import EdgesegError

DEFAULT_FRAMES = 4
TIMED_RUNS = 20


@dataclass(frozen=True)
class ModelUnderTest:
    """What ``--model`` names, read without TensorRT."""

    path: Path
    kind: str  # "onnx" or "engine"
    card: ModelCard
    onnx: Path | None  # the ONNX ONNX Runtime runs (for an engine: the one it was built from)
    unpool: str  # "plugin" or "native"
    precision: str  # fp32, fp16 or int8
    input_name: str
    dynamic: bool
    max_unpool: bool = False  # a portable graph (MaxUnpool), which TensorRT's parser rejects


def describe_model(path: str | Path) -> ModelUnderTest:
    """Read ``path`` (an edgeseg ONNX, or an engine with its ``.json`` card); one-line errors."""
    from edgeseg.backends.tensorrt import engine_unpool
    from edgeseg.card import read_sidecar

    path = Path(path)
    if not path.is_file():
        raise EdgesegError(f"--model {path} not found")
    if path.suffix.lower() == ".onnx":
        return _describe_onnx(path, path)
    card = read_sidecar(path)
    source = card.build.get("source_onnx")
    onnx_path = path.parent / source if source else None
    if onnx_path is not None and onnx_path.is_file():
        described = _describe_onnx(onnx_path, path)
        return ModelUnderTest(
            path, "engine", card, onnx_path, engine_unpool(card), card.precision,
            described.input_name, described.dynamic,
        )  # fmt: skip
    return ModelUnderTest(
        path, "engine", card, None, engine_unpool(card), card.precision, "input", False
    )


def _describe_onnx(onnx_path: Path, model_path: Path) -> ModelUnderTest:
    from edgeseg.export.engine_plan import onnx_precision_of
    from edgeseg.export.onnx_io import card_of, load_onnx
    from edgeseg.unpool_graph import plugin_nodes

    model = load_onnx(onnx_path)
    card = card_of(model, onnx_path)
    max_unpool = any(node.op_type == "MaxUnpool" for node in model.graph.node)
    first = model.graph.input[0]
    dims = first.type.tensor_type.shape.dim
    return ModelUnderTest(
        path=model_path,
        kind="onnx",
        card=card,
        onnx=onnx_path,
        unpool="plugin" if plugin_nodes(model) else "native",
        precision=onnx_precision_of(model),
        input_name=first.name,
        dynamic=any(not d.HasField("dim_value") for d in dims),
        max_unpool=max_unpool,
    )


# --- the equivalent commands ---------------------------------------------------------------------


def _shape(dims: tuple[int, ...]) -> str:
    return "x".join(str(d) for d in dims)


def _tensorrt_flags(model: ModelUnderTest, major: int) -> dict[str, list[str]]:
    """trtexec and Polygraphy flags for what edgeseg builds: an engine's card says what was set;
    for an ONNX, the precision plan :func:`edgeseg.export.engine.build_engine` would use."""
    from edgeseg.export.engine_plan import precision_plan

    plan = precision_plan(major, model.precision)
    builder_flags, cleared, strong = plan.builder_flags, plan.clear_flags, plan.strongly_typed
    if model.kind == "engine":
        build = model.card.build
        builder_flags = tuple(build.get("builder_flags") or ())
        cleared = tuple(build.get("cleared_flags") or ())
        strong = build.get("network") == "strongly typed"
    trtexec, poly = [], []
    if strong and major < 11:
        trtexec.append("--stronglyTyped")
        poly.append("--strongly-typed")
    for flag in builder_flags:
        if flag in ("FP16", "INT8"):
            trtexec.append(f"--{flag.lower()}")
            poly.append(f"--{flag.lower()}")
    if "TF32" in cleared:
        trtexec.append("--noTF32")
    return {"trtexec": trtexec, "polygraphy": poly}


def equivalent_commands(
    model: ModelUnderTest, library: Path | None, major: int | None = None
) -> list[str]:
    """The ``trtexec`` and ``polygraphy run`` commands that repeat this check without edgeseg
    (``major``: the TensorRT major version the flags are for; default 10, the Jetson's)."""
    from edgeseg.export.engine_plan import default_profile

    major = major or 10
    flags = _tensorrt_flags(model, major)
    height, width = model.card.input_hw
    one = (1, 3, height, width)
    name = model.input_name
    plugin = model.unpool == "plugin"
    lib = str(library) if library else "~/.cache/edgeseg/plugin/libedgeseg_unpool_plugin.so"
    trtexec = ["trtexec"]
    if model.kind == "engine":
        trtexec.append(f"--loadEngine={model.path}")
    else:
        source = native_graph_path(model) if model.max_unpool else model.onnx
        trtexec += [f"--onnx={source}", *flags["trtexec"]]
        if model.dynamic:
            low, opt, high = default_profile((-1, 3, -1, -1), model.card.input_hw)
            trtexec += [
                f"--minShapes={name}:{_shape(low)}",
                f"--optShapes={name}:{_shape(opt)}",
                f"--maxShapes={name}:{_shape(high)}",
            ]
    if plugin:
        trtexec.append(f"--dynamicPlugins={lib}")
    if model.dynamic:
        trtexec.append(f"--shapes={name}:{_shape(one)}")
    trtexec.append("--profilingVerbosity=detailed --dumpLayerInfo")
    commands = [" ".join(trtexec)]
    graph = native_graph_path(model)
    if graph is not None:
        shape = ",".join(str(d) for d in one)
        poly = ["polygraphy run", str(graph), "--trt --onnxrt", *flags["polygraphy"]]
        poly.append(f"--input-shapes {name}:[{shape}]")
        commands.append(" ".join(poly))
    return commands


def native_graph_path(model: ModelUnderTest) -> Path | None:
    """The plugin-free graph Polygraphy runs in both TensorRT and ONNX Runtime: the ONNX itself
    for a native graph, ``<stem>.native.onnx`` beside a plugin graph (written when absent by
    :func:`write_native_graph`), None for an engine whose ONNX is not beside it."""
    if model.onnx is None:
        return None
    if model.unpool == "native" and not model.max_unpool:
        return model.onnx
    stem = model.onnx.name.removesuffix(".onnx").removesuffix(".trt")
    return model.onnx.with_name(f"{stem}.native.onnx")


def write_native_graph(model: ModelUnderTest) -> Path | None:
    """Write :func:`native_graph_path` when it is absent (never replacing a file)."""
    target = native_graph_path(model)
    if target is None or target.exists():
        return target
    from edgeseg.export.onnx_io import load_onnx, save_onnx
    from edgeseg.export.trt_graph import to_trt_graph
    from edgeseg.unpool_graph import reexpand_plugins

    graph = load_onnx(model.onnx)
    return save_onnx(
        reexpand_plugins(graph if not model.max_unpool else to_trt_graph(graph)), target
    )


def tensorrt_source(model: ModelUnderTest) -> Path | None:
    """The ONNX TensorRT builds from: the plugin or block graph itself, or for a portable
    (MaxUnpool) graph its block form, written beside it."""
    return write_native_graph(model) if model.max_unpool else model.onnx


# --- running it here ---------------------------------------------------------------------------


def missing_device() -> str | None:
    """Why no engine can be built or run here (TensorRT or a GPU missing), or None."""
    from edgeseg.backends.cuda import gpu_info
    from edgeseg.backends.tensorrt import import_tensorrt

    try:
        import_tensorrt()
        gpu_info()
    except EdgesegError as exc:
        return str(exc).split(":")[0].split(";")[0]
    return None


def model_inputs(card: ModelCard, source: str | None, frames: int) -> np.ndarray:
    """(N, 3, H, W) network inputs: synthetic frames, or the first ``frames`` of ``source``."""
    from edgeseg.export.parity import sample_inputs
    from edgeseg.preprocess import preprocess

    if source is None:
        return sample_inputs(card, frames)
    import cv2

    capture = cv2.VideoCapture(str(source))
    images = []
    while len(images) < frames:
        ok, frame = capture.read()
        if not ok:
            break
        images.append(preprocess(frame, card))
    capture.release()
    if not images:
        raise EdgesegError(f"--source {source}: no frame could be read (an image or a video)")
    return np.stack(images)


def _engine_here(model: ModelUnderTest, folder: Path, library: Path | None) -> Path:
    """The engine to run: ``model`` itself (checked against this machine) or one built here."""
    if model.kind == "engine":
        return model.path
    from edgeseg.export.engine import build_engine

    target = folder / f"{model.onnx.stem}.engine"
    build_engine(
        tensorrt_source(model),
        target,
        model.card,
        precision=model.precision,
        unpool=model.unpool,
        plugin_library=library,
        log=lambda _m: None,
    )
    return target


def _latency_ms(runner: Any, one: np.ndarray) -> float:
    runner.infer(one)  # warm up at this shape (and capture its CUDA graph)
    times = []
    for _ in range(TIMED_RUNS):
        start = time.perf_counter()
        runner.infer(one)
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def _precision_line(card: ModelCard) -> str:
    build = card.build
    flags = ", ".join(build.get("builder_flags") or []) or "none"
    layers = ", ".join(f"{n} {k}" for k, n in (build.get("layer_precisions") or {}).items())
    return (
        f"precision built: {card.precision}, {build.get('network', 'typing not recorded')}, "
        f"builder flags {flags}; layers: {layers or 'not reported'}"
    )


def run_model_doctor(
    path: str | Path,
    source: str | None = None,
    frames: int = DEFAULT_FRAMES,
    log: Callable[[str], None] = print,
) -> int:
    """Check ``path`` on this device (module doc); returns the exit code (1: it disagrees)."""
    from edgeseg.backends.tensorrt import plugin_library_path

    model = describe_model(path)
    library = plugin_library_path() if model.unpool == "plugin" else None
    missing = missing_device()
    if missing is not None:
        log(
            f"doctor --model: {missing}: {model.path.name} was not built or run here; the same "
            "check on a machine with TensorRT and a GPU:"
        )
        _print_commands(model, library, None, log)
        return 0
    return _check_on_device(model, library, source, frames, log)


def _print_commands(
    model: ModelUnderTest, library: Path | None, major: int | None, log: Callable[[str], None]
) -> None:
    native = native_graph_path(model)
    if native is not None and not native.exists():
        log(f"  (wrote {write_native_graph(model)}: the graph without the plugin, for Polygraphy)")
    for command in equivalent_commands(model, library, major):
        log(f"  {command}")


def _check_on_device(
    model: ModelUnderTest,
    library: Path | None,
    source: str | None,
    frames: int,
    log: Callable[[str], None],
) -> int:
    from edgeseg.backends.runner import run_onnx
    from edgeseg.backends.tensorrt import import_tensorrt, tensorrt_major
    from edgeseg.backends.tensorrt_runner import TensorRTRunner
    from edgeseg.card import read_sidecar
    from edgeseg.export import parity
    from edgeseg.export.onnx_io import load_onnx

    major = tensorrt_major(import_tensorrt().__version__)
    inputs = model_inputs(model.card, source, frames)
    with tempfile.TemporaryDirectory(prefix="edgeseg-doctor-") as folder:
        engine_path = _engine_here(model, Path(folder), library)
        card = read_sidecar(engine_path)
        with TensorRTRunner(engine_path, plugin_library=library) as runner:
            actual = runner.infer(inputs)  # checked against the card, in chunks of max batch
            latency = _latency_ms(runner, inputs[:1])
    log(_precision_line(card))
    log(f"latency at batch 1: {latency:.2f} ms (median of {TIMED_RUNS})")
    failed = False
    if model.onnx is None:
        log("agreement: not checked (the engine's source ONNX is not beside it)")
    else:
        graph = load_onnx(model.onnx)
        expected = run_onnx(graph, inputs)
        logits = parity.reference_logits(graph, inputs)
        figure = parity.compare(
            model.path.name, "TensorRT against ONNX Runtime", expected, actual,
            card.precision, decided_by=logits,
        )  # fmt: skip
        log(parity.format_report([figure], f"agreement on {len(inputs)} frames"))
        failed = not figure.passed
        if failed:
            log(f"doctor --model: {figure.failure()}")
    log("the same check without edgeseg:")
    _print_commands(model, library, major, log)
    return 1 if failed else 0
