"""TensorRT: which version is here, edgeseg's plugin (identity, one library path, one load), and
whether an engine built elsewhere can run here.

Everything in this module is importable without TensorRT; :func:`import_tensorrt` imports it
when called. The plugin library is loaded through TensorRT's plugin registry
(``load_library``) by :func:`load_plugin` and nowhere else, at most once per process: the
registry refuses a second load of a library whose plugins are already registered (documented in
``NvInferRuntimeCommon.h`` of 10.3 and in the Python docstrings of 10.3 and 11.x), so a build
followed by a check in one process must reuse the first load.

An engine runs only with the TensorRT version that built it, on the GPU model it was tuned for,
with the plugin version it was built against. Its model card records those facts under
``card.build`` (:func:`engine_build_facts`, written by the export stage);
:func:`check_engine_compat` compares them with this machine and refuses a mismatch in one line
that says how to rebuild.
"""

from __future__ import annotations

import json
import os
import re
import threading
from pathlib import Path
from typing import Any

from edgeseg.card import ModelCard
from edgeseg.errors import EdgesegError

#: The plugin's identity: the ONNX node's op type and attributes, and the registry's keys.
PLUGIN_OP_TYPE = "EdgesegUnpool"
PLUGIN_NAMESPACE = "edgeseg"
PLUGIN_VERSION = "1"

#: The one documented place of the plugin library: ``$EDGESEG_PLUGIN_DIR/<LIBRARY_NAME>``, else
#: ``~/.cache/edgeseg/plugin/<LIBRARY_NAME>``. ``edgeseg plugin build`` installs it there with
#: a JSON record of what it was built against beside it.
LIBRARY_NAME = "libedgeseg_unpool_plugin.so"
BUILD_INFO_NAME = "libedgeseg_unpool_plugin.json"
PLUGIN_DIR_ENV = "EDGESEG_PLUGIN_DIR"
DEFAULT_PLUGIN_DIR = Path("~/.cache/edgeseg/plugin")

SUPPORTED_MAJORS = (10, 11)
TENSORRT_MISSING = (
    "TensorRT is not installed: desktop: pip install tensorrt (10.x/11.x); Jetson: JetPack "
    "6.1/6.2 ships TensorRT 10.3, JetPack 7.x 10.13-10.16; build the plugin and the engine on "
    "the machine that runs them"
)

#: How an engine unpools: ``plugin`` (edgeseg's CUDA plugin, from ``*.trt.onnx``) or
#: ``native`` (TensorRT's own layers, from the standard-op block graph; no plugin loaded).
UNPOOL_FORMS = ("plugin", "native")

#: Keys of an engine card's ``build`` that an engine must carry (``plugin_version``: plugin
#: engines only).
ENGINE_FACTS = ("tensorrt", "gpu", "compute_capability", "plugin_version")


def engine_unpool(card: ModelCard) -> str:
    """How the engine a card describes unpools (cards written before ``--unpool``: plugin)."""
    return str(card.build.get("unpool", "plugin"))


def check_unpool(unpool: str) -> str:
    """``unpool`` if it is one of UNPOOL_FORMS, else a one-line error naming them."""
    if unpool not in UNPOOL_FORMS:
        raise EdgesegError(f"unknown --unpool {unpool!r}; choose one of: {', '.join(UNPOOL_FORMS)}")
    return unpool


# --- versions ------------------------------------------------------------------------------------


def parse_version(text: str) -> tuple[int, ...]:
    """``"10.3.0.30"`` -> (10, 3, 0, 30); ``"11.1.0"`` -> (11, 1, 0). Raises EdgesegError."""
    match = re.match(r"^\s*(\d+(?:\.\d+)*)", str(text))
    if match is None:
        raise EdgesegError(f"cannot read a version number from {text!r}")
    return tuple(int(part) for part in match.group(1).split("."))


def tensorrt_major(version: str) -> int:
    """Major version of a ``tensorrt.__version__`` string."""
    return parse_version(version)[0]


def same_tensorrt(built: str, running: str) -> bool:
    """Whether two TensorRT versions can share an engine (major.minor.patch equal)."""
    return parse_version(built)[:3] == parse_version(running)[:3]


def import_tensorrt() -> Any:
    """The tensorrt module, 10.x or 11.x; one-line errors when absent or of another major."""
    try:
        import tensorrt as trt
    except ImportError:
        raise EdgesegError(TENSORRT_MISSING) from None
    major = tensorrt_major(trt.__version__)
    if major not in SUPPORTED_MAJORS:
        raise EdgesegError(
            f"TensorRT {trt.__version__} is installed; edgeseg needs 10.x or 11.x (the plugin "
            "uses IPluginV3): pip install 'tensorrt>=10,<12'; on Jetson, JetPack 6.1 or later"
        )
    return trt


# --- the plugin library --------------------------------------------------------------------------


def plugin_library_path() -> Path:
    """Where the plugin library is installed and loaded from (it may not exist yet)."""
    folder = os.environ.get(PLUGIN_DIR_ENV)
    base = Path(folder).expanduser() if folder else DEFAULT_PLUGIN_DIR.expanduser()
    return base / LIBRARY_NAME


#: The way on without the plugin, named wherever the plugin is missing or refused.
NATIVE_HINT = (
    "or, to go on now without it, build the engine with --unpool native (TensorRT's own "
    "layers, no plugin)"
)


def require_plugin_library(path: str | Path | None = None) -> Path:
    """The built plugin library, or a one-line error giving the command that builds it."""
    library = Path(path) if path is not None else plugin_library_path()
    if not library.is_file():
        raise EdgesegError(
            f"the edgeseg TensorRT plugin is not built ({library} is missing); build it on this "
            f"machine with: edgeseg plugin build (or set {PLUGIN_DIR_ENV} to its folder); "
            f"{NATIVE_HINT}"
        )
    return library


def plugin_build_info(library: str | Path) -> dict[str, Any]:
    """The JSON record ``edgeseg plugin build`` wrote beside ``library`` ({} when absent)."""
    try:
        info = json.loads(Path(library).with_name(BUILD_INFO_NAME).read_text())
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def installed_plugin_version(library: str | Path) -> str | None:
    """The plugin version recorded beside the library, if any."""
    version = plugin_build_info(library).get("plugin_version")
    return str(version) if version is not None else None


def plugin_build_problem(library: str | Path, tensorrt_version: str) -> str | None:
    """Why ``library`` cannot serve TensorRT ``tensorrt_version``, or None when it can.

    The plugin implements TensorRT's C++ interfaces (``IPluginV3``, ``ILoggerFinder``) whose
    layout is only promised within one major.minor release, so a library compiled against
    another major.minor's headers (its build record's ``tensorrt_headers``) is refused rather
    than loaded into a process it may crash. A library without a build record (compiled by
    hand with CMake) cannot be checked and is let through; ``edgeseg doctor`` warns about it.
    """
    info = plugin_build_info(library)
    built = info.get("tensorrt_headers")
    if built:
        try:
            same = parse_version(str(built))[:2] == parse_version(tensorrt_version)[:2]
        except EdgesegError:
            same = False
        if not same:
            return (
                f"{Path(library).name} was built against TensorRT {built} headers and this is "
                f"TensorRT {tensorrt_version}"
            )
    version = info.get("plugin_version")
    if version is not None and str(version) != PLUGIN_VERSION:
        return (
            f"{Path(library).name} is plugin version {version} and this edgeseg needs version "
            f"{PLUGIN_VERSION}"
        )
    return None


def check_plugin_build(library: str | Path, tensorrt_version: str) -> None:
    """Refuse, in one line with the fix, a plugin library built for another TensorRT."""
    problem = plugin_build_problem(library, tensorrt_version)
    if problem is not None:
        raise EdgesegError(
            f"{problem}; rebuild it on this machine with: edgeseg plugin build; {NATIVE_HINT}"
        )


_LOADED: dict[str, Any] = {}
_LOAD_LOCK = threading.Lock()


def load_plugin(trt: Any, library: str | Path | None = None) -> Any:
    """Register edgeseg's plugin with TensorRT's registry, once per process; returns the handle.

    When the registry already has the creator (loaded earlier in this process, by this function
    or by the application), nothing is loaded again. Raises EdgesegError, one line with the fix,
    when the library is missing, was built for another TensorRT major.minor or plugin version
    (:func:`check_plugin_build`), fails to load, or does not provide the creator.
    """
    library = require_plugin_library(library)
    with _LOAD_LOCK:
        key = str(library.resolve())
        if key in _LOADED:
            return _LOADED[key]
        registry = trt.get_plugin_registry()
        if _creator(registry) is not None:
            _LOADED[key] = None  # registered by someone else: nothing of ours to keep
            return None
        check_plugin_build(library, trt.__version__)
        try:
            handle = registry.load_library(str(library))
        except RuntimeError:
            handle = None
        if not handle:
            raise EdgesegError(
                f"TensorRT {trt.__version__} could not load {library}; rebuild it on this "
                f"machine with: edgeseg plugin build; {NATIVE_HINT}"
            )
        if _creator(registry) is None:
            raise EdgesegError(
                f"{library} does not provide {PLUGIN_NAMESPACE}::{PLUGIN_OP_TYPE} version "
                f"{PLUGIN_VERSION}; rebuild it with: edgeseg plugin build"
            )
        _LOADED[key] = handle
        return handle


def _creator(registry: Any) -> Any:
    """The plugin's creator if registered (V3 creators are found by ``get_creator``, 10.0+)."""
    get_creator = getattr(registry, "get_creator", None)
    if get_creator is None:
        return None
    return get_creator(PLUGIN_OP_TYPE, PLUGIN_VERSION, PLUGIN_NAMESPACE)


# --- engines -------------------------------------------------------------------------------------


def normalize_gpu_name(name: str) -> str:
    return " ".join(str(name).replace("NVIDIA", "").split()).lower()


def engine_build_facts(
    *,
    tensorrt: str,
    cuda: str,
    gpu: str,
    compute_capability: str,
    precision: str,
    plugin_version: str | None,
    edgeseg: str,
    unpool: str = "plugin",
    **extra: Any,
) -> dict[str, Any]:
    """The ``card.build`` record of an engine (extra keys: source ONNX, profile, workspace...).

    ``unpool``: which unpooling the engine holds; a native engine has no ``plugin_version``.
    """
    return {
        "tensorrt": str(tensorrt),
        "cuda": str(cuda),
        "gpu": str(gpu),
        "compute_capability": str(compute_capability),
        "precision": precision,
        "unpool": check_unpool(unpool),
        "plugin_version": str(plugin_version) if unpool == "plugin" else None,
        "edgeseg": str(edgeseg),
        **extra,
    }


def rebuild_command(card: ModelCard, engine: str | Path) -> str:
    """The command that rebuilds ``engine`` on this machine from the ONNX it was built from."""
    native = engine_unpool(card) == "native"
    source = card.build.get("source_onnx") or ("model.onnx" if native else "model.trt.onnx")
    folder = Path(engine).parent
    source_path = folder / source if str(folder) not in ("", ".") else Path(source)
    flag = " --fp16" if card.precision == "fp16" else ""
    flag += " --unpool native" if native else ""
    return f"edgeseg export {source_path} --format engine{flag} --out {folder}"


def check_engine_compat(
    card: ModelCard,
    *,
    tensorrt: str,
    gpu: str,
    compute_capability: str,
    plugin_version: str | None = None,
    engine: str | Path = "model.engine",
) -> None:
    """Refuse, with one line, an engine built by another TensorRT version, GPU or plugin version.

    ``tensorrt``, ``gpu`` and ``compute_capability`` ("8.7") describe this machine;
    ``plugin_version`` is the installed plugin's (None skips that comparison).
    """
    name = Path(engine).name
    needed = [k for k in ENGINE_FACTS if k != "plugin_version" or engine_unpool(card) == "plugin"]
    missing = [key for key in needed if not card.build.get(key)]
    if missing:
        raise EdgesegError(
            f"{name} has no record of what built it ({', '.join(missing)} missing from its card); "
            f"rebuild it: {rebuild_command(card, engine)}"
        )
    build = card.build
    reasons = []
    if not same_tensorrt(build["tensorrt"], tensorrt):
        reasons.append(f"TensorRT {build['tensorrt']}, this machine has {tensorrt}")
    if str(build["compute_capability"]) != str(compute_capability) or (
        normalize_gpu_name(build["gpu"]) != normalize_gpu_name(gpu)
    ):
        reasons.append(
            f"GPU {build['gpu']} (compute {build['compute_capability']}), this machine has {gpu} "
            f"(compute {compute_capability})"
        )
    if (
        plugin_version is not None
        and engine_unpool(card) == "plugin"
        and str(build["plugin_version"]) != str(plugin_version)
    ):
        reasons.append(
            f"unpooling plugin version {build['plugin_version']}, installed {plugin_version}"
        )
    if reasons:
        raise EdgesegError(
            f"{name} was built for {'; '.join(reasons)}: engines do not move between TensorRT "
            f"versions or GPUs; rebuild it here: {rebuild_command(card, engine)}"
        )
