"""What ``edgeseg bench`` is asked to measure: one options object, checked before any work.

The CLI parses its flags once into :class:`BenchOptions`; :func:`plan_bench` checks them (the
model file, the backends and precisions, the accuracy dataset) before a run folder is claimed or
anything is measured, so a mistake is one line and leaves nothing behind.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeseg.card import PRECISIONS
from edgeseg.errors import EdgesegError

#: ``tensorrt`` unpools with edgeseg's plugin, ``tensorrt-native`` with TensorRT's own layers
#: (``--unpool native``): side by side, the plugin's benefit.
BENCH_BACKENDS = ("onnxruntime", "torch", "tensorrt", "tensorrt-native")


@dataclass(frozen=True)
class BenchOptions:
    """What one ``edgeseg bench`` measures; every field is one of its flags.

    ``model`` None: the bundled checkpoint. ``precisions``/``sizes`` None: all three precisions
    at the model's own input size for a checkpoint, a file's own for an ONNX file or engine.
    ``data``: a dataset root whose ``split`` (its first ``limit`` images) gives each measured
    row an mIoU, the accuracy beside the speed.
    """

    model: str | Path | None = None
    backends: Sequence[str] = BENCH_BACKENDS
    precisions: Sequence[str] | None = None
    sizes: Sequence[tuple[int, int]] | None = None
    runs: int = 50
    warmup: int = 5
    threads: int | None = None
    data: str | Path | None = None
    split: str = "val"
    limit: int | None = None
    command: str = ""


@dataclass(frozen=True)
class BenchPlan:
    """Checked options: the model file, the choices without repeats, the accuracy split."""

    options: BenchOptions
    model: Path
    backends: tuple[str, ...]
    precisions: tuple[str, ...] | None
    samples: tuple[Any, ...] = ()
    spec: Any = None


def check_choices(values: Sequence[str], valid: Sequence[str], what: str) -> tuple[str, ...]:
    """``values`` without repeats, in order; EdgesegError naming the valid ones for an unknown."""
    unknown = [v for v in values if v not in valid]
    if unknown or not values:
        given = ", ".join(unknown) if unknown else "(none)"
        raise EdgesegError(f"unknown {what} {given}; choose from: {', '.join(valid)}")
    return tuple(dict.fromkeys(values))


def plan_bench(options: BenchOptions) -> BenchPlan:
    """Check ``options`` before anything is written or measured; one-line EdgesegError."""
    backends = check_choices(list(options.backends), BENCH_BACKENDS, "backend")
    precisions = None
    if options.precisions is not None:
        precisions = check_choices(list(options.precisions), PRECISIONS, "precision")
    if options.runs < 1 or options.warmup < 0:
        raise EdgesegError(
            f"runs must be at least 1 and warmup at least 0 (got {options.runs}, {options.warmup})"
        )
    if options.limit is not None and options.limit < 1:
        raise EdgesegError(f"limit must be at least 1, got {options.limit}")
    model = resolve_model(options.model)
    samples, spec = (), None
    if options.data is not None:
        from edgeseg.data import load_split

        spec, found = load_split(options.data, options.split)
        samples = tuple(found[: options.limit])
        if not samples:
            raise EdgesegError(f"split {options.split!r} of {options.data} holds no images")
    return BenchPlan(options, model, backends, precisions, samples, spec)


def resolve_model(model: str | Path | None) -> Path:
    """The artifact to measure: ``model``, or the bundled default checkpoint when None."""
    if model is None:
        try:
            from edgeseg.apps.default_model import default_checkpoint
        except ModuleNotFoundError as exc:
            if exc.name != "edgeseg.apps.default_model":
                raise
            raise EdgesegError(
                "this install has no bundled default model; pass --model CHECKPOINT_OR_ONNX"
            ) from None
        return Path(default_checkpoint())
    path = Path(model)
    if not path.exists():
        raise EdgesegError(f"model {path} not found")
    if path.is_dir():
        raise EdgesegError(f"model {path} is a folder; pass a .pt, .onnx or .engine file")
    from edgeseg.backends.runner import artifact_backend

    artifact_backend(path)  # an unknown suffix is refused here, before any slow work
    return path
