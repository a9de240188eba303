"""ONNX Runtime backend: ``.onnx`` files with the model card in ``metadata_props``.

CPU everywhere; the CUDA execution provider when onnxruntime-gpu is installed (``auto`` prefers
it). The TensorRT execution provider is never chosen by default: it rebuilds an engine on every
start and the portable graph's unpooling falls back to CUDA anyway; name it in ``providers`` to
use it. ``model.trt.onnx`` (the graph holding edgeseg's TensorRT plugin node) cannot run here.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edgeseg.card import ModelCard, card_from_onnx_metadata
from edgeseg.errors import EdgesegError, missing_extra
from edgeseg.runtime.backend import Backend, check_output

#: Providers ``auto`` considers, fastest first.
PREFERRED_PROVIDERS = ("CUDAExecutionProvider", "CPUExecutionProvider")
PLUGIN_OP_TYPE = "EdgesegUnpool"  # the TensorRT-only node of model.trt.onnx


def import_onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise missing_extra("onnxruntime", "onnx") from None
    return onnxruntime


def choose_providers(available: Sequence[str], requested: Sequence[str] | None) -> list[str]:
    """The provider list to hand ONNX Runtime: ``requested`` checked, or the fastest available."""
    if requested is None:
        return [p for p in PREFERRED_PROVIDERS if p in available]
    unknown = [p for p in requested if p not in available]
    if unknown:
        raise EdgesegError(
            f"ONNX Runtime provider {', '.join(unknown)} is not available here; available: "
            f"{', '.join(available)} (CUDA needs pip install onnxruntime-gpu)"
        )
    return list(requested)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class OnnxRuntimeBackend(Backend):
    """One ``onnxruntime.InferenceSession`` over an edgeseg ONNX file.

    ``threads`` sets the session's intra-op threads (default: ONNX Runtime's choice, one per
    physical core).
    """

    name = "onnxruntime"

    def __init__(
        self, path: str | Path, providers: Sequence[str] | None = None, threads: int | None = None
    ) -> None:
        ort = import_onnxruntime()
        path = Path(path)
        chosen = choose_providers(ort.get_available_providers(), providers)
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only: warnings would break the one-line rule
        if threads is not None:
            options.intra_op_num_threads = int(threads)
        try:
            self.session = ort.InferenceSession(str(path), sess_options=options, providers=chosen)
        except Exception as exc:
            reason = _first_line(exc)
            if PLUGIN_OP_TYPE in str(exc):
                raise EdgesegError(
                    f"{path.name} holds edgeseg's TensorRT plugin node and runs on TensorRT only; "
                    "run the portable model.onnx with ONNX Runtime, or build an engine"
                ) from None
            raise EdgesegError(f"cannot load ONNX model {path}: {reason}") from None
        self.card = read_onnx_card(self.session, path)
        self.output = self.card.output
        self.device = self.session.get_providers()[0]
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise EdgesegError(f"{path.name} has {len(inputs)} inputs; an edgeseg model has one")
        self.input_name = inputs[0].name
        self.output_name = self.session.get_outputs()[0].name
        self.path = path
        shape = inputs[0].shape
        self.max_batch = shape[0] if isinstance(shape[0], int) else None
        _check_input_shape(shape, self.card, path)

    def infer(self, batch: np.ndarray) -> np.ndarray:
        output = self.session.run([self.output_name], {self.input_name: batch})[0]
        return check_output(output, self.card, batch.shape[0], self.path.name)

    def close(self) -> None:
        self.session = None


def read_onnx_card(session, path: Path) -> ModelCard:
    """The card stored in an ONNX file's metadata; EdgesegError when there is none."""
    return card_from_onnx_metadata(session.get_modelmeta().custom_metadata_map, path)


def _check_input_shape(shape: Sequence, card: ModelCard, path: Path) -> None:
    # A static input size that disagrees with the card would fail on every frame; say so once.
    if len(shape) != 4:
        raise EdgesegError(f"{path.name}: input has shape {list(shape)}, expected (N, 3, H, W)")
    fixed = [dim for dim in shape[1:] if isinstance(dim, int)]
    expected = (3, *card.input_hw)
    if len(fixed) == 3 and tuple(fixed) != expected:
        raise EdgesegError(
            f"{path.name}: input is {tuple(shape[1:])} but its model card says {expected}; "
            "re-export the model"
        )
