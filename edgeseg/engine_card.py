"""What ties a TensorRT engine to the machine that built it, and the refusal to load it elsewhere.

A serialized engine runs only with the TensorRT version that built it, on the GPU model
(compute capability) it was tuned for, with the plugin version it was built against. The engine's
model card records those facts under ``card.build`` when ``edgeseg export --format engine`` writes
it; :func:`check_engine_compat` compares them with the loading machine and refuses a mismatch with
one line that says how to rebuild. Pure Python (no torch, no TensorRT), shared by the export
stage, which writes the facts, and the runtime, which checks them before deserializing.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from edgeseg.card import ModelCard
from edgeseg.errors import EdgesegError

#: Keys of ``card.build`` that an engine must carry.
ENGINE_FACTS = ("tensorrt", "gpu", "compute_capability", "plugin_version")


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


def normalize_gpu_name(name: str) -> str:
    return " ".join(str(name).replace("NVIDIA", "").split()).lower()


def engine_build_facts(
    *,
    tensorrt: str,
    cuda: str,
    gpu: str,
    compute_capability: str,
    precision: str,
    plugin_version: str,
    edgeseg: str,
    **extra: Any,
) -> dict[str, Any]:
    """The ``card.build`` record of an engine (extra keys: source ONNX, profile, workspace...)."""
    return {
        "tensorrt": str(tensorrt),
        "cuda": str(cuda),
        "gpu": str(gpu),
        "compute_capability": str(compute_capability),
        "precision": precision,
        "plugin_version": str(plugin_version),
        "edgeseg": str(edgeseg),
        **extra,
    }


def rebuild_command(card: ModelCard, engine: str | Path) -> str:
    """The command that rebuilds ``engine`` on this machine from the ONNX it was built from."""
    source = card.build.get("source_onnx") or "model.trt.onnx"
    folder = Path(engine).parent
    source_path = folder / source if str(folder) not in ("", ".") else Path(source)
    flag = " --fp16" if card.precision == "fp16" else ""
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
    missing = [key for key in ENGINE_FACTS if not card.build.get(key)]
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
    if plugin_version is not None and str(build["plugin_version"]) != str(plugin_version):
        reasons.append(
            f"unpooling plugin version {build['plugin_version']}, installed {plugin_version}"
        )
    if reasons:
        raise EdgesegError(
            f"{name} was built for {'; '.join(reasons)}: engines do not move between TensorRT "
            f"versions or GPUs; rebuild it here: {rebuild_command(card, engine)}"
        )
