"""ONNX Runtime's runner, for every caller (runtime, export parity, calibration, eval, bench).

:class:`OnnxRuntimeRunner` opens a file, bytes or an ``onnx.ModelProto``; chooses execution
providers (``auto``: CUDA when onnxruntime-gpu is installed, else CPU; the TensorRT provider only
when named, as it rebuilds an engine on every start); sets threads and thread spinning; reads the
model card from the metadata (``with_card``: the runtime's case, which also checks the graph's
input against it); and runs a batch in chunks when the graph has a static batch.
A TensorRT graph (``*.trt.onnx``, edgeseg's plugin node inside) runs here only with
``expand_plugins``: each plugin node becomes the standard-op block of identical semantics
(:func:`edgeseg.unpool_graph.reexpand_plugins`), which needs the ``onnx`` package.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edgeseg.backends.runner import BaseRunner
from edgeseg.card import ONNX_METADATA_KEY, ModelCard, card_from_onnx_metadata
from edgeseg.errors import EdgesegError
from edgeseg.foreign_onnx import ForeignModelOptions, foreign_card

if TYPE_CHECKING:
    import onnx
    import onnxruntime

#: Providers ``auto`` considers, fastest first.
PREFERRED_PROVIDERS = ("CUDAExecutionProvider", "CPUExecutionProvider")


def import_onnxruntime() -> onnxruntime:
    """The onnxruntime module, or the one-line error naming the extra that installs it."""
    from edgeseg.validate import import_optional

    return import_optional("onnxruntime", "onnx")


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


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _with_plugins_expanded(
    model: str | Path | bytes | onnx.ModelProto, name: str
) -> str | Path | bytes | onnx.ModelProto:
    """``model`` (path, bytes or ModelProto) with plugin nodes re-expanded, as bytes or a path.

    A plain graph given as a path stays a path (ONNX Runtime reads it without the onnx
    package); everything else is read once with onnx and handed over as bytes.
    """
    try:
        import onnx

        from edgeseg.unpool_graph import plugin_nodes, reexpand_plugins
    except ImportError:
        return model  # onnxruntime without onnx: plain ONNX files still run
    try:
        if isinstance(model, onnx.ModelProto):
            proto = model
        elif isinstance(model, bytes):
            proto = onnx.load_from_string(model)
        else:
            proto = onnx.load(str(model))
    except Exception as exc:
        raise EdgesegError(f"{name} is not a readable ONNX file: {first_line(exc)}") from None
    if plugin_nodes(proto):
        proto = reexpand_plugins(proto)
    elif not isinstance(model, onnx.ModelProto):
        return model
    return proto.SerializeToString()


class OnnxRuntimeRunner(BaseRunner):
    """One ``onnxruntime.InferenceSession`` over an edgeseg graph.

    ``model``: a path, serialized bytes or an ``onnx.ModelProto``. ``threads``: intra-op threads
    (default: ONNX Runtime's, one per physical core). ``spinning=False`` stops the worker threads
    from spinning after each run, so whatever runs next on the CPU is not slowed (benchmarks
    interleaving sessions, the threaded pipeline). ``expand_plugins``: run a TensorRT graph with
    its plugin nodes as standard ops (else such a graph is refused with a one-line error).
    ``with_card``: read the model card (EdgesegError when there is none) and check inputs and
    outputs against it; without it the graph runs bare, at any input size. ``foreign``: the
    card of a graph edgeseg did not export, made from the graph and these options
    (:func:`~edgeseg.foreign_onnx.foreign_card`); an NHWC graph gets its input transposed here
    and NHWC scores transposed back. Raises EdgesegError when onnxruntime is missing or the
    graph cannot be loaded.
    """

    name = "onnxruntime"

    def __init__(
        self,
        model: str | Path | bytes | onnx.ModelProto,
        *,
        providers: Sequence[str] | None = None,
        threads: int | None = None,
        spinning: bool = True,
        expand_plugins: bool = False,
        name: str | None = None,
        with_card: bool = False,
        foreign: ForeignModelOptions | None = None,
    ) -> None:
        ort = import_onnxruntime()
        self.source = name or (str(model) if isinstance(model, str | Path) else "ONNX model")
        if expand_plugins:
            model = _with_plugins_expanded(model, self.source)
        elif not isinstance(model, str | Path | bytes):
            model = model.SerializeToString()
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only: warnings would break the one-line rule
        if threads is not None:
            options.intra_op_num_threads = int(threads)
        if not spinning:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        chosen = choose_providers(ort.get_available_providers(), providers)
        source = str(model) if isinstance(model, Path) else model
        try:
            self.session = ort.InferenceSession(source, sess_options=options, providers=chosen)
        except Exception as exc:
            if "EdgesegUnpool" in str(exc):
                raise EdgesegError(
                    f"{Path(self.source).name} holds edgeseg's TensorRT plugin node and runs on "
                    "TensorRT only; run the portable model.onnx with ONNX Runtime, or build an "
                    "engine"
                ) from None
            raise EdgesegError(f"cannot load ONNX model {self.source}: {first_line(exc)}") from None
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise EdgesegError(f"{self.source} has {len(inputs)} inputs; an edgeseg model has one")
        self.input_name = inputs[0].name
        self.input_shape = list(inputs[0].shape)
        self.output_name = self.session.get_outputs()[0].name
        self.provider = self.device = self.session.get_providers()[0]
        self.label = Path(self.source).name
        self.max_batch = self.fixed_batch
        self._nhwc_in = self._nhwc_out = False
        if with_card:
            self.card = self.read_card() if foreign is None else self._foreign_card(foreign)
            self.output = self.card.output
            self._nhwc_in = self.card.arch_args.get("input_layout") == "nhwc"
            self._nhwc_out = self.card.arch_args.get("output_layout") == "nhwc"
            if not self._nhwc_in:
                _check_input_shape(self.input_shape, self.card, self.label)

    def _foreign_card(self, foreign: ForeignModelOptions) -> ModelCard:
        metadata = self.session.get_modelmeta().custom_metadata_map
        if ONNX_METADATA_KEY in metadata:
            raise EdgesegError(
                f"{self.label} carries an edgeseg model card already: run it without labels"
            )
        output = self.session.get_outputs()[0]
        return foreign_card(
            self.input_shape, list(output.shape), "int" in output.type, foreign, metadata,
            self.label,
        )  # fmt: skip

    @property
    def fixed_batch(self) -> int | None:
        """The graph's static batch size, or None when the batch dimension is free."""
        batch = self.input_shape[0] if self.input_shape else None
        return batch if isinstance(batch, int) else None

    def read_card(self) -> ModelCard:
        """The model card in the graph's metadata; EdgesegError when there is none."""
        metadata = self.session.get_modelmeta().custom_metadata_map
        return card_from_onnx_metadata(metadata, self.source)

    def infer_impl(self, batch: np.ndarray) -> np.ndarray:
        """The graph's single output for at most ``max_batch`` inputs; a static-batch graph's
        last, shorter chunk is padded with zeros to the graph's batch and the padding dropped.
        An NHWC graph (a foreign one) gets its input transposed and NHWC scores back."""
        if self._nhwc_in:
            batch = np.ascontiguousarray(batch.transpose(0, 2, 3, 1))
        fixed = self.fixed_batch
        if fixed is not None and len(batch) < fixed:
            pad = np.zeros((fixed - len(batch), *batch.shape[1:]), batch.dtype)
            padded = np.concatenate([batch, pad])
            output = self.session.run([self.output_name], {self.input_name: padded})[0]
            output = output[: len(batch)]
        else:
            output = self.session.run([self.output_name], {self.input_name: batch})[0]
        if self._nhwc_out and output.ndim == 4:
            output = output.transpose(0, 3, 1, 2)
        return output

    def close(self) -> None:
        self.session = None


def _check_input_shape(shape: Sequence, card: ModelCard, name: str) -> None:
    # A static input size that disagrees with the card would fail on every frame; say so once.
    if len(shape) != 4:
        raise EdgesegError(f"{name}: input has shape {list(shape)}, expected (N, 3, H, W)")
    fixed = [dim for dim in shape[1:] if isinstance(dim, int)]
    expected = (3, *card.input_hw)
    if len(fixed) == 3 and tuple(fixed) != expected:
        raise EdgesegError(
            f"{name}: input is {tuple(shape[1:])} but its model card says {expected}; "
            "re-export the model"
        )
