"""ONNX Runtime: one session wrapper for every caller (runtime, export parity, calibration, eval).

:class:`OnnxSession` opens a file, bytes or an ``onnx.ModelProto``; chooses execution providers
(``auto``: CUDA when onnxruntime-gpu is installed, else CPU; the TensorRT provider only when
named, as it rebuilds an engine on every start); sets threads and thread spinning; reads the
model card from the metadata; and runs a batch in chunks when the graph has a static batch.
A TensorRT graph (``*.trt.onnx``, edgeseg's plugin node inside) runs here only with
``expand_plugins``: each plugin node becomes the standard-op block of identical semantics
(:func:`edgeseg.unpool_graph.reexpand_plugins`), which needs the ``onnx`` package.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgeseg.card import ModelCard, card_from_onnx_metadata
from edgeseg.errors import EdgesegError

#: Providers ``auto`` considers, fastest first.
PREFERRED_PROVIDERS = ("CUDAExecutionProvider", "CPUExecutionProvider")


def import_onnxruntime() -> Any:
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


def _with_plugins_expanded(model: Any, name: str) -> Any:
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


class OnnxSession:
    """One ``onnxruntime.InferenceSession`` over an edgeseg graph.

    ``model``: a path, serialized bytes or an ``onnx.ModelProto``. ``threads``: intra-op threads
    (default: ONNX Runtime's, one per physical core). ``spinning=False`` stops the worker threads
    from spinning after each run, so whatever runs next on the CPU is not slowed (benchmarks
    interleaving sessions, the threaded pipeline). ``expand_plugins``: run a TensorRT graph with
    its plugin nodes as standard ops (else such a graph is refused with a one-line error).
    Raises EdgesegError when onnxruntime is missing or the graph cannot be loaded.
    """

    def __init__(
        self,
        model: str | Path | bytes | Any,
        *,
        providers: Sequence[str] | None = None,
        threads: int | None = None,
        spinning: bool = True,
        expand_plugins: bool = False,
        name: str | None = None,
    ) -> None:
        ort = import_onnxruntime()
        self.name = name or (str(model) if isinstance(model, str | Path) else "ONNX model")
        if expand_plugins:
            model = _with_plugins_expanded(model, self.name)
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
                    f"{Path(self.name).name} holds edgeseg's TensorRT plugin node and runs on "
                    "TensorRT only; run the portable model.onnx with ONNX Runtime, or build an "
                    "engine"
                ) from None
            raise EdgesegError(f"cannot load ONNX model {self.name}: {first_line(exc)}") from None
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise EdgesegError(f"{self.name} has {len(inputs)} inputs; an edgeseg model has one")
        self.input_name = inputs[0].name
        self.input_shape = list(inputs[0].shape)
        self.output_name = self.session.get_outputs()[0].name
        self.provider = self.session.get_providers()[0]

    @property
    def fixed_batch(self) -> int | None:
        """The graph's static batch size, or None when the batch dimension is free."""
        batch = self.input_shape[0] if self.input_shape else None
        return batch if isinstance(batch, int) else None

    def card(self) -> ModelCard:
        """The model card in the graph's metadata; EdgesegError when there is none."""
        metadata = self.session.get_modelmeta().custom_metadata_map
        return card_from_onnx_metadata(metadata, self.name)

    def run(self, inputs: np.ndarray) -> np.ndarray:
        """(N, 3, H, W) float32 -> the graph's single output for all N inputs.

        A graph with a static batch is fed in chunks of that size, so any N works.
        """
        step = self.fixed_batch or len(inputs)
        if step >= len(inputs):
            return self.session.run([self.output_name], {self.input_name: inputs})[0]
        parts = [
            self.session.run([self.output_name], {self.input_name: inputs[i : i + step]})[0]
            for i in range(0, len(inputs), step)
        ]
        return np.concatenate(parts)

    def close(self) -> None:
        self.session = None


def run_onnx(model: str | Path | bytes | Any, inputs: np.ndarray) -> np.ndarray:
    """Run a graph once on the CPU over ``inputs`` (plugin nodes re-expanded): the one-shot call
    the parity, calibration and evaluation checks make."""
    session = OnnxSession(model, providers=["CPUExecutionProvider"], expand_plugins=True)
    try:
        return session.run(inputs)
    finally:
        session.close()
