"""``edgeseg eval``'s library side: any artifact (checkpoint, ONNX, TensorRT ONNX) on a split.

Opening the artifact is the application layer's job (ONNX files through the core's
:class:`edgeseg.backends.onnxruntime.OnnxRuntimeRunner`, with edgeseg's TensorRT plugin node run as
its exact standard-op block); scoring is :func:`edgeseg.evaluate.evaluate_predictor`, the function
training validates with.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgeseg.card import ModelCard
from edgeseg.errors import EdgesegError
from edgeseg.evaluate import Predictor, evaluate_predictor, load_eval_set, torch_predictor
from edgeseg.validate import at_least, import_optional, torch_device


def onnx_predictor(path: str | Path) -> tuple[Predictor, ModelCard]:
    """ONNX Runtime (CPU) predictor and the card stored in the file's metadata."""
    from edgeseg.backends.onnxruntime import OnnxRuntimeRunner

    runner = OnnxRuntimeRunner(
        path, providers=["CPUExecutionProvider"], expand_plugins=True, with_card=True
    )
    return runner.infer, runner.card


def predictor_for(artifact: str | Path, device: str = "auto") -> tuple[Predictor, ModelCard]:
    """A predictor for a checkpoint (``.pt``/``.pth``) or an ONNX file, with its model card."""
    path = Path(artifact)
    if not path.is_file():
        raise EdgesegError(f"{path} not found")
    if path.suffix == ".onnx":
        return onnx_predictor(path)
    from edgeseg.checkpoint import load_model
    from edgeseg.torch_device import resolve_device

    device = resolve_device(device)
    model, card = load_model(path, device=device)
    return torch_predictor(model, device), card


def _device(artifacts: Sequence[str | Path], device: str) -> str:
    """The device checked against what runs the artifacts: torch for checkpoints; ONNX files
    run on ONNX Runtime's CPU provider, so only ``cpu`` (or ``auto``) means what it says there."""
    if all(Path(a).suffix == ".onnx" for a in artifacts):
        if device.strip().lower() not in ("cpu", "auto"):
            raise EdgesegError(
                f"--device {device}: ONNX files are evaluated with ONNX Runtime on the CPU; "
                "use --device cpu (or evaluate the checkpoint on the GPU)"
            )
        return "cpu"
    return torch_device(device, import_optional("torch", "train"))


def evaluate_many(
    artifacts: Sequence[str | Path],
    data: str | Path,
    split: str = "val",
    batch_size: int = 4,
    device: str = "auto",
    limit: int | None = None,
    progress: bool = True,
) -> list[tuple[dict[str, Any], np.ndarray, ModelCard]]:
    """Evaluate each of ``artifacts`` on ``split`` of the dataset at ``data``, on the same images,
    read once (the FP32 / FP16 / INT8 comparison): (metrics, confusion matrix, card) per artifact.

    Every artifact is opened (and its classes checked against the dataset's, EdgesegError on a
    mismatch) before any is run."""
    from edgeseg.data import load_split

    if not artifacts:
        raise EdgesegError("no model given to evaluate")
    at_least("--batch-size", batch_size, 1)
    at_least("--limit", limit, 1)
    device = _device(artifacts, device)
    predictors = [predictor_for(artifact, device) for artifact in artifacts]
    spec, samples = load_split(data, split)
    for artifact, (_, card) in zip(artifacts, predictors, strict=True):
        if spec.num_classes != card.num_classes:
            raise EdgesegError(
                f"the dataset has {spec.num_classes} classes but {artifact} predicts "
                f"{card.num_classes}"
            )
    if limit is not None:
        samples = samples[:limit]
    eval_set = load_eval_set(samples, spec, progress=progress)
    results = []
    for predictor, card in predictors:
        metrics, matrix, _ = evaluate_predictor(eval_set, card, predictor, batch_size, progress)
        results.append((metrics, matrix, card))
    return results
