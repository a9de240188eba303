"""``Segmenter``: any edgeseg artifact in, a class mask per frame out.

``Segmenter("model.onnx").predict(frame_bgr)`` returns an (H, W) uint8 mask of class indices at
the frame's own size. The three steps are public too, so a pipeline can time them apart:
:meth:`Segmenter.preprocess` (the one shared :func:`edgeseg.preprocess.preprocess`),
:meth:`Segmenter.infer` (the engine's runner) and :meth:`Segmenter.postprocess`.

Post-processing is :func:`edgeseg.masks.mask_at`, the function ``edgeseg eval`` counts its
metrics on: the scores are resized bilinearly to the frame and the argmax is taken there, so a
frame's mask equals eval's mask of the same image (about 8 ms for 11 classes at 360x480 on a
2-core CPU). An engine that ends in ArgMax (card ``output="class_map"``) returns a class map,
which is resized by nearest neighbour (cheapest on a Jetson; its boundaries step at the
network's resolution).

Threading: a Segmenter may be shared between threads; calls to the runner are serialised by a
lock (TensorRT contexts and their buffers are single-threaded). For parallel throughput, create
one Segmenter per thread (each loads its own copy of the model).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edgeseg.backends.runner import BaseRunner, open_runner
from edgeseg.card import ModelCard
from edgeseg.errors import EdgesegError
from edgeseg.foreign_onnx import ForeignModelOptions
from edgeseg.masks import mask_at, resize_mask
from edgeseg.preprocess import check_frame, preprocess, preprocess_batch


class Segmenter:
    """Semantic segmentation of BGR frames with any edgeseg artifact.

    ``path``: a checkpoint (``.pt``), an ONNX file or a TensorRT engine with its card.
    ``backend``: ``"auto"`` (by file type, fastest available device), ``"onnxruntime"``,
    ``"tensorrt"`` or ``"torch"``. ``providers``: ONNX Runtime execution providers in order of
    preference (default: CUDA if onnxruntime-gpu is installed, then CPU). ``threads``: CPU
    threads for ONNX Runtime / PyTorch. ``spinning=False``: ONNX Runtime's idle threads sleep
    instead of spinning after each call, so whatever runs next on the CPU is not slowed (a
    benchmark interleaving backends; an application sharing a small CPU). Raises
    :class:`~edgeseg.errors.EdgesegError` for a missing file, an artifact without a model card,
    a missing optional dependency, an engine built for another TensorRT or GPU. ``foreign``:
    run a segmentation ONNX edgeseg did not export (:mod:`edgeseg.foreign_onnx`).
    """

    def __init__(
        self,
        path: str | Path,
        backend: str = "auto",
        providers: Sequence[str] | None = None,
        *,
        threads: int | None = None,
        spinning: bool = True,
        foreign: ForeignModelOptions | None = None,
    ) -> None:
        self.path = Path(path)
        self._runner: BaseRunner = open_runner(path, backend, providers, threads, spinning, foreign)
        self._lock = threading.Lock()
        card = self._runner.card
        if card.num_classes > 256:
            raise EdgesegError(f"{self.path.name}: {card.num_classes} classes; masks hold 256")

    @property
    def card(self) -> ModelCard:
        """The artifact's model card: class names, palette (RGB), input size, normalisation."""
        return self._runner.card

    @property
    def backend_name(self) -> str:
        """``"onnxruntime"``, ``"tensorrt"`` or ``"torch"``."""
        return self._runner.name

    @property
    def device(self) -> str:
        """Where it runs: an ONNX Runtime provider, ``"cpu"``/``"cuda"``, or the GPU name."""
        return self._runner.device

    @property
    def max_batch(self) -> int | None:
        """The largest batch one backend call takes (a static-batch graph's batch, an engine's
        profile maximum), or None when any batch goes at once; :meth:`infer` chunks beyond it."""
        return self._runner.max_batch

    def describe(self) -> str:
        """``"onnxruntime (CPUExecutionProvider)"``: for the line saying what ``auto`` picked."""
        return self._runner.describe()

    # -- the three stages -------------------------------------------------------------------

    def preprocess(self, frame_bgr: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 BGR -> (1, 3, h, w) float32 network input."""
        return preprocess(frame_bgr, self.card)[None]

    def infer(self, batch: np.ndarray) -> np.ndarray:
        """(N, 3, h, w) float32 -> raw output (scores or class map) of the runner
        (:class:`edgeseg.backends.runner.BaseRunner`, which feeds it in chunks the engine takes).
        Thread-safe (serialised)."""
        with self._lock:
            return self._runner.infer(batch)

    def postprocess(self, output: np.ndarray, frame_hw: tuple[int, int]) -> np.ndarray:
        """One item of :meth:`infer`'s output -> (H, W) uint8 class mask at ``frame_hw``: the
        same mask ``edgeseg eval`` scores (:func:`edgeseg.masks.mask_at`)."""
        if self._runner.output == "logits":
            return mask_at(output, frame_hw)
        return resize_mask(output.astype(np.uint8, copy=False), frame_hw)

    # -- whole frames -----------------------------------------------------------------------

    def predict(self, frame_bgr: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 BGR frame -> (H, W) uint8 class mask at the frame's size."""
        output = self.infer(self.preprocess(frame_bgr))
        return self.postprocess(output[0], frame_bgr.shape[:2])

    def predict_batch(self, frames_bgr: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Several frames (sizes may differ) -> one mask per frame, each at its frame's size."""
        for frame in frames_bgr:
            check_frame(frame)
        output = self.infer(preprocess_batch(frames_bgr, self.card))
        return [
            self.postprocess(out, f.shape[:2]) for out, f in zip(output, frames_bgr, strict=True)
        ]

    def close(self) -> None:
        """Release the runner (GPU memory, sessions). The Segmenter is unusable afterwards."""
        with self._lock:
            self._runner.close()

    def __enter__(self) -> Segmenter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Segmenter({str(self.path)!r}, backend={self.describe()!r})"


__all__ = ["Segmenter"]
