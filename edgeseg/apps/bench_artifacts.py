"""The model as each benchmark backend needs it: ONNX, FP16, INT8, checkpoint copies, engines.

``edgeseg bench`` re-targets a checkpoint to every size it measures: an ONNX export at that size
(no parity check: this is a benchmark, and ``edgeseg export`` owns the parity gate), its FP16
conversion (:func:`edgeseg.export.fp16.to_fp16`), an INT8 Q/DQ copy
(:func:`edgeseg.calibration.quantize.quantize_int8`), a checkpoint copy whose card carries the
size (the torch backend checks its output against the card) and, where TensorRT, a GPU and the
plugin exist, an engine built by the export stage. Everything is built on first use into a
temporary folder and reused across backends. An ONNX file or an engine is static: it is used as
it is, at its own precision and size.

A piece that cannot be made here (a missing extra, TensorRT absent, a precision the engine
builder does not offer) raises :class:`Skip` with the reason; the benchmark shows it as a row.
The export and calibration stages are imported inside functions, so a runtime-only install can
still benchmark an ONNX file.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edgeseg.errors import EdgesegError, missing_extra

CALIBRATION_FRAMES = 8


class Skip(Exception):
    """A combination that cannot run on this machine or with this artifact; the message says why."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message: a skipped row's reason is one line."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


class Artifacts:
    """The model as each backend needs it, built on first use into ``workdir`` and reused.

    From a checkpoint: ONNX files per (size, precision), a checkpoint copy per size (the torch
    backend checks its output against the card's size) and TensorRT engines. From an ONNX file
    or an engine: that file, at its own precision and size only.
    """

    def __init__(self, path: Path, workdir: Path, log: Callable[[str], None]) -> None:
        self.path, self.workdir, self.log = path, workdir, log
        self.kind = path.suffix.lower().lstrip(".")
        self.kind = {"pth": "pt", "plan": "engine"}.get(self.kind, self.kind)
        self.model: Any = None
        self._protos: dict[tuple[tuple[int, int], str], Any] = {}
        self._files: dict[tuple[str, tuple[int, int], str], Path | Skip] = {}
        self._tensorrt: dict[str, tuple[Any, ...] | Skip] = {}
        if self.kind == "pt":
            try:
                from edgeseg.checkpoint import load_model
            except ImportError:
                raise missing_extra("torch", "train") from None
            self.model, self.card = load_model(path)
        elif self.kind == "onnx":
            self.card = _onnx_card(path)
        else:
            from edgeseg.card import read_sidecar

            self.card = read_sidecar(path)

    @property
    def static(self) -> bool:
        """True when the artifact has one fixed size and precision (ONNX file, engine)."""
        return self.kind != "pt"

    def min_side(self) -> int:
        """Smallest input height/width the checkpoint's model takes (1 when unknown)."""
        try:
            from edgeseg.export.torch_to_onnx import min_input_side
        except ImportError:
            return 1  # without the export stage only the torch backend runs; it says so itself
        return min_input_side(self.model)

    def card_at(self, hw: tuple[int, int], precision: str) -> Any:
        """The card of the model re-targeted to ``hw`` and ``precision`` (a static file's own)."""
        if self.static:
            return self.card
        return self.card.replace(input_hw=hw, precision=precision, output="logits")

    def _cached(self, key: tuple[str, tuple[int, int], str], build: Callable[[], Path]) -> Path:
        if key not in self._files:
            try:
                self._files[key] = build()
            except (Skip, EdgesegError) as exc:
                self._files[key] = Skip(str(exc))
        found = self._files[key]
        if isinstance(found, Skip):
            raise found
        return found

    def onnx_proto(self, hw: tuple[int, int], precision: str) -> Any:
        """The portable graph at ``hw`` in ``precision``, with its card attached."""
        key = (hw, precision)
        if key in self._protos:
            return self._protos[key]
        try:
            from edgeseg.export.onnx_io import attach_card, load_onnx
        except ImportError as exc:
            raise Skip(str(missing_extra(exc.name or "onnx", "export"))) from None
        if self.static:
            self._protos[key] = load_onnx(self.path)  # its own card is inside
            return self._protos[key]
        if precision == "fp32":
            try:
                from edgeseg.export.torch_to_onnx import export_onnx
            except ImportError as exc:
                raise Skip(str(missing_extra(exc.name or "onnx", "export"))) from None
            self.log(f"exporting ONNX at {hw[0]}x{hw[1]}")
            proto = export_onnx(self.model, self.card_at(hw, precision))
        elif precision == "fp16":
            from edgeseg.export.fp16 import to_fp16

            proto = to_fp16(self.onnx_proto(hw, "fp32"))
        else:
            proto = quantize_minmax(self.onnx_proto(hw, "fp32"), hw)
        attach_card(proto, self.card_at(hw, precision))
        self._protos[key] = proto
        return proto

    def onnx_file(self, hw: tuple[int, int], precision: str) -> Path:
        if self.static:
            return self.path

        def build() -> Path:
            from edgeseg.export.onnx_io import save_onnx

            target = self.workdir / f"model_{hw[0]}x{hw[1]}_{precision}.onnx"
            proto = self.onnx_proto(hw, precision)
            if precision == "fp32":  # the ONNX Runtime form, as model.onnx holds it
                from edgeseg.unpool_graph import to_maxunpool_form

                proto = to_maxunpool_form(proto)
            return save_onnx(proto, target)

        return self._cached(("onnx", hw, precision), build)

    def checkpoint(self, hw: tuple[int, int]) -> Path:
        def build() -> Path:
            from edgeseg.checkpoint import save_checkpoint

            target = self.workdir / f"model_{hw[0]}x{hw[1]}.pt"
            save_checkpoint(target, self.model, self.card.replace(input_hw=hw))
            return target

        return self._cached(("pt", hw, "fp32"), build)

    def tensorrt_tools(self, unpool: str = "plugin") -> tuple[Any, ...]:
        """(engine module, trt, plugin library or None), after the export stage's own preflight
        (TensorRT 10/11, a GPU with a CUDA binding, for ``plugin`` the built plugin); Skip naming
        what is missing. Checked once per unpooling: the answer is the same for every row."""
        if unpool not in self._tensorrt:
            try:
                from edgeseg.export import engine as engine_mod

                trt, library, _gpu = engine_mod.preflight(unpool=unpool)
                self._tensorrt[unpool] = (engine_mod, trt, library)
            except ImportError as exc:
                self._tensorrt[unpool] = Skip(str(missing_extra(exc.name or "onnx", "export")))
            except EdgesegError as exc:
                self._tensorrt[unpool] = Skip(str(exc))
        found = self._tensorrt[unpool]
        if isinstance(found, Skip):
            raise found
        return found

    def engine(self, hw: tuple[int, int], precision: str, unpool: str = "plugin") -> Path:
        """An engine at ``hw``/``precision`` with the plugin or the native unpooling (an engine
        file: itself, when it holds that unpooling)."""
        if self.kind == "engine":
            from edgeseg.backends.tensorrt import engine_unpool

            if engine_unpool(self.card) != unpool:
                raise Skip(f"{self.path.name} holds {engine_unpool(self.card)} unpooling")
            return self.path

        def build() -> Path:
            engine_mod, trt, library = self.tensorrt_tools(unpool)
            from edgeseg.export.onnx_io import save_onnx
            from edgeseg.export.trt_graph import to_trt_graph
            from edgeseg.unpool_graph import plugin_nodes, reexpand_plugins

            plan = engine_mod.precision_plan(engine_mod.tensorrt_major(trt.__version__), precision)
            proto = self.onnx_proto(hw, plan.onnx_precision)
            graph = proto if plugin_nodes(proto) else to_trt_graph(proto)
            kind = "trt"
            if unpool == "native":
                graph, kind = reexpand_plugins(graph), "native"
            stem = f"model_{hw[0]}x{hw[1]}_{precision}"
            source = save_onnx(graph, self.workdir / f"{stem}.{kind}.onnx")
            target = self.workdir / f"{stem}.{unpool}.engine"
            card = self.card_at(hw, precision)
            engine_mod.build_engine(
                source,
                target,
                card,
                precision=precision,
                plugin_library=library,
                unpool=unpool,
                log=self.log,
            )
            return target

        return self._cached((f"engine-{unpool}", hw, precision), build)


def _onnx_card(path: Path) -> Any:
    """An ONNX file's card: through the onnx package where installed (it reads a TensorRT graph
    too, which ONNX Runtime refuses to load), else through ONNX Runtime (a runtime-only install).
    """
    try:
        from edgeseg.export.onnx_io import card_of, load_onnx
    except ImportError:
        from edgeseg.backends.onnxruntime import OnnxRuntimeRunner

        return OnnxRuntimeRunner(path, with_card=True).card
    return card_of(load_onnx(path), path)


def quantize_minmax(proto: Any, hw: tuple[int, int]) -> Any:
    """INT8 Q/DQ copy of ``proto``, min-max calibrated on random normalized frames.

    The calibration data only moves quantization scales, not the work done per frame, so random
    frames give the same latency as real ones and need no dataset.
    """
    try:
        from edgeseg.calibration.quantize import quantize_int8
    except ImportError as exc:
        raise Skip(f"INT8 needs edgeseg.calibration.quantize ({first_line(exc)})") from None
    rng = np.random.default_rng(0)
    inputs = rng.standard_normal((CALIBRATION_FRAMES, 3, *hw)).astype(np.float32)
    return quantize_int8(proto, inputs, method="minmax")
