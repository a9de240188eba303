"""The one small interface every inference backend implements, and how one is chosen.

A backend turns a preprocessed batch, (N, 3, h, w) float32 at the card's ``input_hw``, into the
network's raw output: per-class scores (N, K, h, w) when the card says ``output="logits"``, or a
class map (N, h, w) of integers when the graph ends in an ArgMax (``output="class_map"``).
Everything before (preprocessing) and after (argmax, resizing to the frame) lives in
:class:`edgeseg.runtime.Segmenter`, so all backends share it.

Which backend runs which artifact:

=============  =================================  ==================================
backend        artifact                           extra to install
=============  =================================  ==================================
tensorrt       ``.engine`` / ``.plan`` + sidecar  TensorRT (JetPack, or ``pip install tensorrt``)
onnxruntime    ``.onnx``                          ``pip install 'edgeseg[onnx]'``
torch          ``.pt`` / ``.pth`` checkpoint      ``pip install 'edgeseg[train]'``
=============  =================================  ==================================

``auto`` picks by artifact: an engine runs on TensorRT, an ONNX file on ONNX Runtime (its CUDA
execution provider when onnxruntime-gpu is installed, else the CPU one), a checkpoint on PyTorch
(CUDA when available). Backend modules import their engine lazily, so this module and the
Segmenter import with numpy and OpenCV alone.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edgeseg.card import ModelCard
from edgeseg.errors import EdgesegError
from edgeseg.foreign_onnx import ForeignModelOptions

BACKEND_NAMES = ("auto", "tensorrt", "onnxruntime", "torch")

#: Artifact suffix -> the backend that runs it.
ARTIFACT_BACKENDS = {
    ".engine": "tensorrt",
    ".plan": "tensorrt",
    ".onnx": "onnxruntime",
    ".pt": "torch",
    ".pth": "torch",
}

#: What to do with an artifact when the requested backend cannot run it.
_CONVERT_HINT = {
    "tensorrt": "build an engine with edgeseg export (TensorRT runs .engine files)",
    "onnxruntime": "export an ONNX file with edgeseg export (ONNX Runtime runs .onnx files)",
    "torch": "the torch backend runs training checkpoints (.pt)",
}


class Backend(abc.ABC):
    """An inference engine holding one model and its card.

    Subclasses set ``name`` (one of :data:`BACKEND_NAMES`), ``device`` (a short description such
    as ``"CPUExecutionProvider"`` or ``"cuda"``), ``card``, ``max_batch`` (the largest batch one
    :meth:`infer` call accepts; ``None`` for no limit) and ``output``: what :meth:`infer` returns
    (the card's ``output``: scores unless the graph ends in ArgMax, so the Segmenter can resize
    scores to the frame as ``edgeseg eval`` does). A backend is not thread-safe:
    :class:`~edgeseg.runtime.Segmenter` serialises calls with a lock.
    """

    name: str = ""
    device: str = ""
    card: ModelCard
    max_batch: int | None = None
    output: str = "logits"

    @abc.abstractmethod
    def infer(self, batch: np.ndarray) -> np.ndarray:
        """(N, 3, h, w) float32 -> (N, K, h, w) scores or (N, h, w) integer class map.

        N is at most ``max_batch``. The caller owns the returned array (a backend that reuses
        buffers returns a copy).
        """

    def close(self) -> None:  # noqa: B027 - optional hook, most backends free on GC
        """Release the engine's resources; the backend is unusable afterwards."""

    def describe(self) -> str:
        """One line for logs: ``"onnxruntime (CPUExecutionProvider)"``."""
        return f"{self.name} ({self.device})" if self.device else self.name


def artifact_backend(path: Path) -> str:
    """The backend an artifact's suffix calls for; EdgesegError for an unknown suffix."""
    suffix = path.suffix.lower()
    if suffix not in ARTIFACT_BACKENDS:
        known = ", ".join(sorted(ARTIFACT_BACKENDS))
        raise EdgesegError(
            f"{path}: unknown model file type {suffix or '(no suffix)'!r}; expected one of {known}"
        )
    return ARTIFACT_BACKENDS[suffix]


def open_backend(
    path: str | Path,
    backend: str = "auto",
    providers: Sequence[str] | None = None,
    threads: int | None = None,
    spinning: bool = True,
    foreign: ForeignModelOptions | None = None,
) -> Backend:
    """Load ``path`` into the requested backend (``auto``: the one its file type calls for).

    ``providers`` (ONNX Runtime execution providers, in order of preference) and ``threads``
    (CPU threads for ONNX Runtime and PyTorch) and ``spinning`` (ONNX Runtime's idle threads) apply
    where they mean something. Raises
    EdgesegError for a missing file, an unknown backend, a backend that cannot run this file
    type, or a missing optional dependency (naming the extra to install).
    """
    path = Path(path)
    if backend not in BACKEND_NAMES:
        raise EdgesegError(
            f"unknown backend {backend!r}; choose one of: {', '.join(BACKEND_NAMES)}"
        )
    if not path.exists():
        raise EdgesegError(f"model {path} not found")
    if path.is_dir():
        raise EdgesegError(f"model {path} is a folder; pass a .onnx, .engine or .pt file")
    wanted = artifact_backend(path)
    if backend != "auto" and backend != wanted:
        raise EdgesegError(
            f"backend {backend} cannot run {path.name} ({wanted} runs {path.suffix} files); "
            f"use --backend {wanted} or auto, or {_CONVERT_HINT[backend]}"
        )
    if providers is not None and wanted != "onnxruntime":
        raise EdgesegError(f"providers apply to ONNX Runtime only, not to {wanted} ({path.name})")
    if foreign is not None and wanted != "onnxruntime":
        raise EdgesegError(f"labels are for a foreign ONNX file, not for {path.name}")
    if wanted == "onnxruntime":
        from edgeseg.runtime.backend_onnxruntime import OnnxRuntimeBackend

        return OnnxRuntimeBackend(
            path, providers=providers, threads=threads, spinning=spinning, foreign=foreign
        )
    if wanted == "tensorrt":
        from edgeseg.runtime.backend_tensorrt import TensorRTBackend

        return TensorRTBackend(path)
    from edgeseg.runtime.backend_torch import TorchBackend

    return TorchBackend(path, threads=threads)


def check_output(
    output: np.ndarray, card: ModelCard, batch: int, where: str, kind: str | None = None
) -> np.ndarray:
    """Validate a backend's raw output against the card; (N,1,h,w) class maps are squeezed.

    ``kind`` is what the backend returns (default: the card's ``output``). Raises EdgesegError
    when the artifact's output does not match what its card promises (a card copied from another
    model), instead of producing nonsense masks.
    """
    height, width = card.input_hw
    if (kind or card.output) == "class_map":
        if output.ndim == 4 and output.shape[1] == 1:
            output = output[:, 0]
        expected: tuple[int, ...] = (batch, height, width)
    else:
        expected = (batch, card.num_classes, height, width)
    if card.arch_args.get("output_size") == "any":  # a foreign graph: scores at any size
        expected = (*expected[: len(expected) - 2], *output.shape[-2:])
    if tuple(output.shape) != expected:
        raise EdgesegError(
            f"{where}: output shape {tuple(output.shape)} does not match its model card "
            f"({card.output}, expected {expected}); re-export the model"
        )
    return output
