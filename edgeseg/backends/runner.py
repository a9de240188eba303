"""The one interface every inference engine implements, and how one is chosen for an artifact.

Polygraphy's shape: :class:`BaseRunner`'s public :meth:`~BaseRunner.infer` validates the batch,
feeds it in chunks the engine accepts, calls the subclass's :meth:`~BaseRunner.infer_impl` and
checks the output against the model card; one subclass per engine:

=============  ==========================================  ==================================
backend        runner and artifact                         extra to install
=============  ==========================================  ==================================
tensorrt       :class:`~.tensorrt_runner.TensorRTRunner`,  TensorRT (JetPack, or
               ``.engine`` / ``.plan`` + sidecar           ``pip install tensorrt``)
onnxruntime    :class:`~.onnxruntime.OnnxRuntimeRunner`,   ``pip install 'edgeseg[onnx]'``
               ``.onnx``
torch          :class:`~.torch_runner.TorchRunner`,        ``pip install 'edgeseg[train]'``
               ``.pt`` / ``.pth`` checkpoint
=============  ==========================================  ==================================

A runner turns a preprocessed batch, (N, 3, h, w) float32, into the network's raw output:
per-class scores (N, K, h, w) when the card says ``output="logits"``, or a class map (N, h, w)
of integers when the graph ends in an ArgMax (``output="class_map"``). Everything before
(preprocessing) and after (argmax, resizing to the frame) lives in
:class:`edgeseg.runtime.Segmenter`, so all engines share it.

``auto`` picks by artifact: an engine runs on TensorRT, an ONNX file on ONNX Runtime (its CUDA
execution provider when onnxruntime-gpu is installed, else the CPU one), a checkpoint on PyTorch
(CUDA when available). Runner modules import their engine lazily, so this module imports with
numpy alone.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edgeseg.card import ModelCard
from edgeseg.errors import EdgesegError
from edgeseg.foreign_onnx import ForeignModelOptions

if TYPE_CHECKING:
    import onnx

#: The values of ``--backend``: ``auto`` or one engine.
BACKEND_NAMES = ("auto", "tensorrt", "onnxruntime", "torch")

#: Artifact suffix -> the engine that runs it.
ARTIFACT_BACKENDS = {
    ".engine": "tensorrt",
    ".plan": "tensorrt",
    ".onnx": "onnxruntime",
    ".pt": "torch",
    ".pth": "torch",
}

#: What to do with an artifact when the requested engine cannot run it.
_CONVERT_HINT = {
    "tensorrt": "build an engine with edgeseg export (TensorRT runs .engine files)",
    "onnxruntime": "export an ONNX file with edgeseg export (ONNX Runtime runs .onnx files)",
    "torch": "the torch backend runs training checkpoints (.pt)",
}


class BaseRunner(abc.ABC):
    """An inference engine holding one model and (where it has one) its card.

    Subclasses set ``name`` (one of :data:`BACKEND_NAMES`), ``device`` (a short description such
    as ``"CPUExecutionProvider"`` or ``"cuda"``), ``card`` (``None`` for a bare graph, as the
    export's parity checks run), ``max_batch`` (the largest batch one :meth:`infer_impl` call
    takes; ``None`` for no limit), ``output`` (the card's: scores unless the graph ends in
    ArgMax) and ``label`` (the file name messages use), and implement :meth:`infer_impl`.
    A runner is not thread-safe: :class:`~edgeseg.runtime.Segmenter` serialises calls.
    """

    name: str = ""
    device: str = ""
    card: ModelCard | None = None
    max_batch: int | None = None
    output: str = "logits"
    label: str = "model"

    def infer(self, batch: np.ndarray) -> np.ndarray:
        """(N, 3, h, w) float32 -> (N, K, h, w) scores or (N, h, w) integer class map.

        Any N >= 1: the batch is fed in chunks of at most ``max_batch``. Raises EdgesegError
        for a batch that is not (N, 3, h, w) float32 (at the card's ``input_hw`` when there is
        a card) and for an output that does not match the card. The caller owns the result.
        """
        check_input(batch, self.card, self.label)
        step = self.max_batch or len(batch)
        if len(batch) <= step:
            output = self.infer_impl(batch)
        else:
            output = np.concatenate(
                [self.infer_impl(batch[i : i + step]) for i in range(0, len(batch), step)]
            )
        if self.card is None:
            return output
        return check_output(output, self.card, len(batch), self.label, self.output)

    @abc.abstractmethod
    def infer_impl(self, batch: np.ndarray) -> np.ndarray:
        """The engine's own call on a validated batch of at most ``max_batch`` items."""

    def close(self) -> None:  # noqa: B027 - optional hook, most runners free on GC
        """Release the engine's resources; the runner is unusable afterwards."""

    def describe(self) -> str:
        """One line for logs: ``"onnxruntime (CPUExecutionProvider)"``."""
        return f"{self.name} ({self.device})" if self.device else self.name

    def __enter__(self) -> BaseRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def check_input(batch: np.ndarray, card: ModelCard | None, where: str) -> None:
    """EdgesegError unless ``batch`` is a non-empty (N, 3, h, w) float32 array (h, w = the card's
    ``input_hw`` when a card is given): a wrong input would otherwise fail deep in an engine."""
    if not isinstance(batch, np.ndarray) or batch.ndim != 4 or batch.shape[1] != 3:
        shape = getattr(batch, "shape", type(batch).__name__)
        raise EdgesegError(f"{where}: input must be an (N, 3, H, W) array, got {shape}")
    if batch.dtype != np.float32:
        raise EdgesegError(f"{where}: input must be float32, got {batch.dtype}")
    if len(batch) == 0:
        raise EdgesegError(f"{where}: empty batch")
    if card is not None and tuple(batch.shape[2:]) != tuple(card.input_hw):
        raise EdgesegError(
            f"{where}: input is {batch.shape[2]}x{batch.shape[3]} but the model card says "
            f"{card.input_hw[0]}x{card.input_hw[1]}; preprocess with the card"
        )


def check_output(
    output: np.ndarray, card: ModelCard, batch: int, where: str, kind: str | None = None
) -> np.ndarray:
    """Validate an engine's raw output against the card; (N,1,h,w) class maps are squeezed.

    ``kind`` is what the engine returns (default: the card's ``output``). Raises EdgesegError
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


def artifact_backend(path: Path) -> str:
    """The engine an artifact's suffix calls for; EdgesegError for an unknown suffix."""
    suffix = path.suffix.lower()
    if suffix not in ARTIFACT_BACKENDS:
        known = ", ".join(sorted(ARTIFACT_BACKENDS))
        raise EdgesegError(
            f"{path}: unknown model file type {suffix or '(no suffix)'!r}; expected one of {known}"
        )
    return ARTIFACT_BACKENDS[suffix]


def run_onnx(model: str | Path | bytes | onnx.ModelProto, inputs: np.ndarray) -> np.ndarray:
    """Run an ONNX graph (a path, bytes or an ``onnx.ModelProto``) once on the CPU over
    ``inputs``, plugin nodes re-expanded: the one-shot call the parity, calibration and evaluation
    checks make. It lives beside :func:`open_runner`, not in the ONNX Runtime runner's module, so
    those checks call down into the runners and never back up."""
    from edgeseg.backends.onnxruntime import OnnxRuntimeRunner

    with OnnxRuntimeRunner(model, providers=["CPUExecutionProvider"], expand_plugins=True) as run:
        return run.infer(inputs)


def open_runner(
    path: str | Path,
    backend: str = "auto",
    providers: Sequence[str] | None = None,
    threads: int | None = None,
    spinning: bool = True,
    foreign: ForeignModelOptions | None = None,
) -> BaseRunner:
    """Load ``path`` with its card into the requested engine (``auto``: the one its file type
    calls for).

    ``providers`` (ONNX Runtime execution providers, in order of preference), ``threads`` (CPU
    threads for ONNX Runtime and PyTorch) and ``spinning`` (ONNX Runtime's idle threads) apply
    where they mean something. Raises EdgesegError for a missing file, an unknown backend, a
    backend that cannot run this file type, or a missing optional dependency (naming the extra
    to install). ``foreign``: the card of a segmentation ONNX edgeseg did not export is made
    from its graph and these options (:mod:`edgeseg.foreign_onnx`).
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
        from edgeseg.backends.onnxruntime import OnnxRuntimeRunner

        return OnnxRuntimeRunner(
            path, providers=providers, threads=threads, spinning=spinning, with_card=True,
            foreign=foreign,
        )  # fmt: skip
    if wanted == "tensorrt":
        from edgeseg.backends.tensorrt_runner import TensorRTRunner

        return TensorRTRunner(path)
    from edgeseg.backends.torch_runner import TorchRunner

    return TorchRunner(path, threads=threads)
