"""One planner for artifacts: every form of a model, derived once from one source graph.

An export, a benchmark and ``edgeseg doctor``'s self-test each need some of the same forms of one
model, and the same rule says which: *precision, then the reader's form, then (for TensorRT) the
graph an engine is built from*. :class:`Forms` holds that rule, as Polygraphy's loaders chain
ONNX -> network -> engine: each form is made on first use from the form before it and kept in
memory, so nothing is rebuilt, re-read from a file name or re-expanded from a graph derived from
a source still in hand::

    source graph (standard-op block form; or an edgeseg ONNX in any form, converted once)
      precision  fp32: the source   fp16: to_fp16(fp32)   int8: quantize(fp32) (the caller's)
      reader     portable    the block form: any ONNX reader (OpenCV DNN, onnx.reference, ...)
                 onnxruntime fp32: MaxPool Indices + MaxUnpool (exact, fastest in ONNX
                             Runtime); fp16/int8: the block form
                 plugin      to_trt_graph(portable): one EdgesegUnpool node per unpooling
                 native      the block form, parsed by TensorRT without the plugin
      engine     :meth:`Forms.engine_source`: which plugin/native graph a TensorRT major version
                 parses for a precision; :meth:`Forms.reference`: what ONNX Runtime runs to check
                 that engine

Each form has a role and a file name (:data:`FILE_NAMES`); :meth:`Forms.save` writes one with
its card, once per folder. The callers: :mod:`edgeseg.export.pipeline` (``edgeseg export``),
:mod:`edgeseg.apps.bench_artifacts` (``edgeseg bench``) and :mod:`edgeseg.apps.doctor_selftest`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import onnx

from edgeseg import __version__
from edgeseg.backends.tensorrt import PLUGIN_NAMESPACE, PLUGIN_OP_TYPE, PLUGIN_VERSION
from edgeseg.card import ModelCard
from edgeseg.errors import EdgesegError
from edgeseg.export.engine_plan import precision_plan
from edgeseg.export.fp16 import to_fp16
from edgeseg.export.onnx_io import attach_card, save_onnx
from edgeseg.export.trt_graph import to_trt_graph
from edgeseg.onnx_graph import onnx_opset
from edgeseg.unpool_graph import (
    find_unpool_sites,
    plugin_nodes,
    reexpand_plugins,
    to_maxunpool_form,
)

KINDS = ("onnxruntime", "portable", "plugin", "native")
PRECISION_PREFIX = {"fp32": "", "fp16": "fp16_", "int8": "int8_"}

#: Role -> file name. ``model.onnx`` is what ONNX Runtime runs fastest (MaxUnpool form);
#: ``model.portable.onnx`` the same model in standard ops only, for every other ONNX reader.
FILE_NAMES = {
    "onnx": "model.onnx",
    "portable_onnx": "model.portable.onnx",
    "trt_onnx": "model.trt.onnx",
    "fp16_onnx": "model.fp16.onnx",
    "fp16_trt_onnx": "model.fp16.trt.onnx",
    "int8_onnx": "model.int8.onnx",
    "int8_trt_onnx": "model.int8.trt.onnx",
    # --unpool native: the block graph TensorRT parses without the plugin, beside the engine.
    "native_onnx": "model.native.onnx",
    "fp16_native_onnx": "model.fp16.native.onnx",
    "int8_native_onnx": "model.int8.native.onnx",
    "engine": "model.engine",
}


def role_of(kind: str, precision: str) -> str:
    """The role (key of :data:`FILE_NAMES`) of a form: below FP32 the ONNX Runtime form *is*
    the portable block form, one file (``model.fp16.onnx``)."""
    prefix = PRECISION_PREFIX[precision]
    if kind == "portable" and precision == "fp32":
        return "portable_onnx"
    base = {"onnxruntime": "onnx", "portable": "onnx", "plugin": "trt_onnx"}.get(kind, "")
    return prefix + (base or "native_onnx")


@dataclass(frozen=True)
class Form:
    """One form of the model: ``kind`` (see :data:`KINDS`), ``precision`` and its graph; its
    ``role`` (a key of :data:`FILE_NAMES`) and ``file_name`` follow from the first two."""

    kind: str
    precision: str
    model: onnx.ModelProto
    role: str = field(init=False)
    file_name: str = field(init=False)

    def __post_init__(self) -> None:
        role = role_of(self.kind, self.precision)
        object.__setattr__(self, "role", role)
        object.__setattr__(self, "file_name", FILE_NAMES[role])


def graph_form(model: onnx.ModelProto) -> str:
    """Which form an edgeseg ONNX holds: ``plugin``, ``onnxruntime`` (MaxUnpool) or
    ``portable`` (standard-op blocks)."""
    if plugin_nodes(model):
        return "plugin"
    if any(n.op_type == "MaxUnpool" for n in model.graph.node):
        return "onnxruntime"
    return "portable"


class Forms:
    """Every form of one model, each derived on first use from one source graph and kept.

    ``source`` is an edgeseg graph in any form at ``card.precision``; ``quantize`` makes the
    INT8 Q/DQ graph from the FP32 block form (export: calibrated on the user's data; bench and
    doctor: min-max on random frames). Raises EdgesegError for a form the source cannot give
    (FP32 from an FP16 graph, INT8 without ``quantize``).
    """

    def __init__(
        self,
        source: onnx.ModelProto,
        card: ModelCard,
        quantize: Callable[[onnx.ModelProto], onnx.ModelProto] | None = None,
    ) -> None:
        self.card = card
        self.source_precision = card.precision
        self.quantize = quantize
        self.opset = onnx_opset(source)
        dims = source.graph.input[0].type.tensor_type.shape.dim
        self.dynamic = any(not d.HasField("dim_value") for d in dims)
        #: Extra ``build`` entries for the cards of one precision (INT8: its calibration).
        self.build_notes: dict[str, dict[str, Any]] = {}
        self._made: dict[tuple[str, str], Form] = {}
        self._saved: dict[tuple[str, Path], Path] = {}
        #: The source as given (its form: :func:`graph_form`).
        self.given = Form(graph_form(source), card.precision, source)
        self._made[(self.given.kind, card.precision)] = self.given
        if self.given.kind == "onnxruntime" and not find_unpool_sites(source):
            raise EdgesegError("the ONNX model's MaxUnpool nodes are not edgeseg's unpooling")

    def can_make(self, precision: str) -> bool:
        """Whether ``precision`` derives from the source (FP32 gives all three)."""
        if precision == self.source_precision:
            return True
        if self.source_precision != "fp32":
            return False
        return precision == "fp16" or self.quantize is not None

    def get(self, kind: str, precision: str) -> Form:
        """The form, made now if it was not yet (see the module doc for the chain)."""
        key = (kind, precision)
        if key not in self._made:
            self._made[key] = Form(kind, precision, self._derive(kind, precision))
        return self._made[key]

    def _derive(self, kind: str, precision: str) -> onnx.ModelProto:
        if kind not in KINDS:
            raise ValueError(f"unknown form {kind!r}")
        if kind in ("portable", "native"):
            return self._portable(precision)
        if kind == "plugin":
            return to_trt_graph(self._portable(precision))
        if precision != "fp32":  # below FP32 ONNX Runtime runs the block form
            return self._portable(precision)
        return to_maxunpool_form(self._portable(precision))

    def _portable(self, precision: str) -> onnx.ModelProto:
        if ("portable", precision) in self._made:
            return self._made[("portable", precision)].model
        if precision == self.source_precision:
            if self.given.kind == "plugin":
                model = reexpand_plugins(self.given.model)
            else:  # the ONNX Runtime form: its sites become plugin nodes, then blocks
                model = reexpand_plugins(to_trt_graph(self.given.model))
        elif not self.can_make(precision):
            raise EdgesegError(
                f"{precision} forms cannot be made from this {self.source_precision} graph; "
                "export the checkpoint again with the precision you need"
            )
        elif precision == "fp16":
            model = to_fp16(self._portable("fp32"))
        else:
            assert self.quantize is not None  # can_make said so
            model = self.quantize(self._portable("fp32"))
        self._made[("portable", precision)] = Form("portable", precision, model)
        return model

    # --- the engine's graphs -------------------------------------------------------------------

    def engine_source(
        self, trt_major: int, precision: str, unpool: str, float_fp16: bool = False
    ) -> Form:
        """The graph TensorRT ``trt_major`` parses for an engine of ``precision``: the plugin
        or the native form, at the precision :func:`~edgeseg.export.engine_plan.precision_plan`
        names (an FP16 source gives FP16 where 10.x would start from FP32: its flag builds it)."""
        onnx_precision = precision_plan(trt_major, precision, float_fp16).onnx_precision
        if not self.can_make(onnx_precision):
            onnx_precision = self.source_precision
        return self.get("plugin" if unpool == "plugin" else "native", onnx_precision)

    def reference(self, precision: str) -> Form:
        """What ONNX Runtime runs to check an engine of ``precision``: the INT8 Q/DQ graph for
        INT8, else the FP32 graph (the source's precision where FP32 cannot be had)."""
        if precision == "int8":
            return self.get("onnxruntime", "int8")
        return self.get("onnxruntime", "fp32" if self.can_make("fp32") else self.source_precision)

    # --- cards and files -----------------------------------------------------------------------

    def card_for(self, form: Form) -> ModelCard:
        """The card ``form``'s file carries: precision, and a ``build`` record of what it is."""
        build: dict[str, Any] = {
            "artifact": form.file_name,
            "opset": self.opset,
            "dynamic": self.dynamic,
        }
        if form.kind == "plugin":
            build["plugin"] = {
                "op_type": PLUGIN_OP_TYPE,
                "namespace": PLUGIN_NAMESPACE,
                "version": PLUGIN_VERSION,
            }
        elif form.kind == "native":
            build["unpool"] = "native"
        build.update(self.build_notes.get(form.precision, {}))
        return self.card.replace(precision=form.precision, edgeseg_version=__version__, build=build)

    def adopt(self, form: Form, path: Path) -> None:
        """Record that ``form`` already lies at ``path`` (the source file itself)."""
        self._saved[(form.role, path.parent.resolve())] = path

    def save(self, form: Form, folder: Path) -> Path:
        """Write ``form`` with its card into ``folder`` (atomically), once: a second call for
        the same role and folder returns the first file."""
        return self.write(form, folder)[0]

    def write(self, form: Form, folder: Path) -> tuple[Path, bool]:
        """(path, whether it was written now): :meth:`save`, saying whether the file is new."""
        key = (form.role, Path(folder).resolve())
        if key in self._saved:
            return self._saved[key], False
        attach_card(form.model, self.card_for(form))
        self._saved[key] = save_onnx(form.model, Path(folder) / form.file_name)
        return self._saved[key], True

    # --- what a job needs ----------------------------------------------------------------------

    def for_export(self, fp16: bool, int8: bool) -> list[Form]:
        """The ONNX files an export of a checkpoint writes: FP32 for ONNX Runtime, portable and
        TensorRT (plugin), and the portable and plugin graphs of FP16 and INT8 when asked."""
        kinds = ("onnxruntime", "portable", "plugin")
        wanted = [self.get(kind, "fp32") for kind in kinds]
        for precision, asked in (("fp16", fp16), ("int8", int8)):
            if asked:
                wanted += [self.get("portable", precision), self.get("plugin", precision)]
        return wanted
