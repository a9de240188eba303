"""ONNX Runtime backend: ``.onnx`` files with the model card in ``metadata_props``.

CPU everywhere; the CUDA execution provider when onnxruntime-gpu is installed (``auto`` prefers
it). The session itself is :class:`edgeseg.backends.onnxruntime.OnnxSession`, shared with
export, calibration and evaluation; this class adds the card checks the runtime needs.
``model.trt.onnx`` (the graph holding edgeseg's TensorRT plugin node) is refused here: it is
meant for TensorRT, and the portable ``model.onnx`` beside it is what ONNX Runtime runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edgeseg.backends.onnxruntime import OnnxSession
from edgeseg.card import ModelCard
from edgeseg.errors import EdgesegError
from edgeseg.foreign_onnx import ForeignModelOptions, foreign_card
from edgeseg.runtime.backend import Backend, check_output


class OnnxRuntimeBackend(Backend):
    """One ONNX Runtime session over an edgeseg ONNX file.

    ``threads`` sets the session's intra-op threads (default: ONNX Runtime's choice, one per
    physical core); ``spinning=False`` stops idle worker threads from spinning, which frees the
    CPU for the pipeline's other stages between frames. ``foreign``: run a segmentation ONNX
    edgeseg did not export (no card inside), with the card :func:`~edgeseg.foreign_onnx.
    foreign_card` makes from its graph and these options; an NHWC graph gets its input
    transposed here and NHWC scores transposed back.
    """

    name = "onnxruntime"

    def __init__(
        self,
        path: str | Path,
        providers: Sequence[str] | None = None,
        threads: int | None = None,
        spinning: bool = True,
        foreign: ForeignModelOptions | None = None,
    ) -> None:
        path = Path(path)
        self.session = OnnxSession(path, providers=providers, threads=threads, spinning=spinning)
        self.card = self.session.card() if foreign is None else self._foreign_card(path, foreign)
        layouts = self.card.arch_args
        self._nhwc_in = layouts.get("input_layout") == "nhwc"
        self._nhwc_out = layouts.get("output_layout") == "nhwc"
        self.output = self.card.output
        self.device = self.session.provider
        self.path = path
        self.max_batch = self.session.fixed_batch
        if not self._nhwc_in:
            _check_input_shape(self.session.input_shape, self.card, path)

    def _foreign_card(self, path: Path, foreign: ForeignModelOptions) -> ModelCard:
        graph = self.session.session
        metadata = graph.get_modelmeta().custom_metadata_map
        if "edgeseg.model_card" in metadata:
            raise EdgesegError(
                f"{path.name} carries an edgeseg model card already: run it without labels"
            )
        output = graph.get_outputs()[0]
        integer = "int" in output.type
        return foreign_card(
            self.session.input_shape, list(output.shape), integer, foreign, metadata, path.name
        )

    def infer(self, batch: np.ndarray) -> np.ndarray:
        if self._nhwc_in:
            batch = np.ascontiguousarray(batch.transpose(0, 2, 3, 1))
        output = self.session.run(batch)
        if self._nhwc_out and output.ndim == 4:
            output = output.transpose(0, 3, 1, 2)
        return check_output(output, self.card, batch.shape[0], self.path.name)

    def close(self) -> None:
        self.session.close()


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
