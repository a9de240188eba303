"""The model as each benchmark backend needs it: ONNX Runtime files, engines, checkpoint copies.

``edgeseg bench`` re-targets a checkpoint to every size it measures: an ONNX export at that size
(no parity check: this is a benchmark, and ``edgeseg export`` owns the parity gate) from which
the export stage's artifact planner (:class:`edgeseg.export.forms.Forms`) derives every other
form once, by the same rule as ``edgeseg export``: FP16, INT8 (min-max Q/DQ on random frames),
the file ONNX Runtime runs, and the plugin or native graph a TensorRT engine is built from. A
checkpoint copy whose card carries the size serves the torch backend. An ONNX file is the
planner's source as it is (its own precision and size); an engine is used as it is.

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


def note(message: str) -> None:
    """A progress note on stderr that does not break the progress bar."""
    import sys

    from tqdm import tqdm

    tqdm.write(f"edgeseg: {message}", file=sys.stderr)


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message: a skipped row's reason is one line."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


class Artifacts:
    """The model as each backend needs it, built on first use into ``workdir`` and reused.

    From a checkpoint: one :class:`~edgeseg.export.forms.Forms` per size (ONNX Runtime files and
    engines per precision come from it), a checkpoint copy per size (the torch backend checks
    its output against the card's size). From an ONNX file: that file for ONNX Runtime, and the
    planner over it for engines. From an engine: that engine.
    """

    def __init__(self, path: Path, workdir: Path, log: Callable[[str], None]) -> None:
        self.path, self.workdir, self.log = path, workdir, log
        self.kind = path.suffix.lower().lstrip(".")
        self.kind = {"pth": "pt", "plan": "engine"}.get(self.kind, self.kind)
        self.model: Any = None
        self._forms: dict[tuple[int, int], Any] = {}
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

    def forms(self, hw: tuple[int, int]) -> Any:
        """The artifact planner for ``hw``: over the checkpoint exported at that size, or over
        the ONNX file as it is. Skip when the export stage is not installed."""
        if hw in self._forms:
            return self._forms[hw]
        try:
            from edgeseg.export.forms import Forms
            from edgeseg.export.onnx_io import load_onnx
        except ImportError as exc:
            raise Skip(str(missing_extra(exc.name or "onnx", "export"))) from None
        if self.static:
            self._forms[hw] = Forms(load_onnx(self.path), self.card)
            return self._forms[hw]
        try:
            from edgeseg.export.torch_to_onnx import export_onnx
        except ImportError as exc:
            raise Skip(str(missing_extra(exc.name or "onnx", "export"))) from None
        self.log(f"exporting ONNX at {hw[0]}x{hw[1]}")
        source = export_onnx(self.model, self.card_at(hw, "fp32"))
        self._forms[hw] = Forms(source, self.card_at(hw, "fp32"), lambda g: quantize_minmax(g, hw))
        return self._forms[hw]

    def _folder(self, hw: tuple[int, int]) -> Path:
        folder = self.workdir / f"{hw[0]}x{hw[1]}"
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def onnx_file(self, hw: tuple[int, int], precision: str) -> Path:
        """What ONNX Runtime runs at ``hw``/``precision`` (a static ONNX file: itself)."""
        if self.static:
            return self.path

        def build() -> Path:
            forms = self.forms(hw)
            return forms.save(forms.get("onnxruntime", precision), self._folder(hw))

        return self._cached(("onnx", hw, precision), build)

    def checkpoint(self, hw: tuple[int, int]) -> Path:
        def build() -> Path:
            from edgeseg.checkpoint import save_checkpoint

            target = self._folder(hw) / "model.pt"
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
        """An engine at ``hw``/``precision`` with the plugin or the native unpooling, built from
        the graph the planner names (an engine file: itself, when it holds that unpooling)."""
        if self.kind == "engine":
            from edgeseg.backends.tensorrt import engine_unpool

            if engine_unpool(self.card) != unpool:
                raise Skip(f"{self.path.name} holds {engine_unpool(self.card)} unpooling")
            return self.path

        def build() -> Path:
            engine_mod, trt, library = self.tensorrt_tools(unpool)
            forms = self.forms(hw)
            major = engine_mod.tensorrt_major(trt.__version__)
            source = forms.save(forms.engine_source(major, precision, unpool), self._folder(hw))
            target = self._folder(hw) / f"model.{precision}.{unpool}.engine"
            engine_mod.build_engine(
                source,
                target,
                self.card_at(hw, precision),
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
