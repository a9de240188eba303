"""PyTorch SegNet -> portable ONNX, with the unpooling written as standard ops.

What ``torch.onnx.export`` does with SegNet's pooling on its own (torch 2.13): the default
(dynamo) exporter writes each ``max_pool2d(return_indices=True)`` as two MaxPool nodes (the
second, a 1x1 MaxPool, turns ONNX's flat N·C·H·W indices into PyTorch's per-plane ones) and each
``max_unpool2d`` as a Reshape/ScatterND pattern over int64 indices; the legacy TorchScript
exporter (``dynamo=False``) fails on ``max_unpool2d(output_size=...)``. The ScatterND form is
correct in ONNX Runtime, but TensorRT accepts neither MaxPool's Indices output nor a pattern it
cannot map back to one unpooling. So during export the pooling and unpooling modules are swapped:

* :class:`edgeseg.models.blocks.MaxPool2x2` -> a plain single-output ``max_pool2d``;
* :class:`edgeseg.models.blocks.MaxUnpool2x2` -> the custom op ``edgeseg_export::unpool2x2``
  (decoder, pre-pool), which computes ``max_unpool2d`` in PyTorch and is exported as one
  placeholder node, replaced right after export by the standard-op block of
  :mod:`edgeseg.unpool_graph` (exact, ties and odd sizes included).

The caller's model is never modified (the swap happens on a copy).
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import warnings

import onnx
import torch
import torch.nn.functional as F
from torch import nn

from edgeseg.card import ModelCard
from edgeseg.errors import EdgesegError
from edgeseg.export.onnx_io import DEFAULT_OPSET, check_opset
from edgeseg.models.blocks import MaxPool2x2, MaxUnpool2x2
from edgeseg.unpool_graph import MARKER_DOMAIN, MARKER_OP, expand_markers

INPUT_NAME = "input"
OUTPUT_NAMES = {"logits": "logits", "class_map": "class_map"}
MAX_DYNAMIC_SIDE = 8192
MAX_DYNAMIC_BATCH = 1024


@torch.library.custom_op("edgeseg_export::unpool2x2", mutates_args=())
def unpool2x2(decoder: torch.Tensor, prepool: torch.Tensor) -> torch.Tensor:
    """``max_unpool2d`` with the indices recomputed from the pre-pool tensor (PyTorch's rule)."""
    _, indices = F.max_pool2d(prepool, 2, 2, return_indices=True)
    return F.max_unpool2d(decoder, indices, 2, 2, output_size=prepool.shape[-2:])


@unpool2x2.register_fake
def _unpool2x2_fake(decoder: torch.Tensor, prepool: torch.Tensor) -> torch.Tensor:
    return torch.empty_like(prepool, dtype=decoder.dtype)


def _marker_translation():
    """onnxscript function emitting the placeholder node (its schema registered once)."""
    import onnxscript
    from onnx.defs import OpSchema

    if not onnx.defs.has(MARKER_OP, MARKER_DOMAIN):
        onnx.defs.register_schema(
            OpSchema(
                MARKER_OP,
                MARKER_DOMAIN,
                1,
                inputs=[
                    OpSchema.FormalParameter("decoder", "T"),
                    OpSchema.FormalParameter("prepool", "T"),
                ],
                outputs=[OpSchema.FormalParameter("output", "T")],
                type_constraints=[("T", ["tensor(float)", "tensor(float16)"], "float tensors")],
            )
        )
    marker = onnxscript.values.Opset(MARKER_DOMAIN, 1)

    def translate(decoder, prepool):
        return getattr(marker, MARKER_OP)(decoder, prepool)

    return translate


class _SinglePool(nn.Module):
    """Export stand-in for MaxPool2x2: the pooled tensor only (unpooling recomputes indices)."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
        return F.max_pool2d(x, kernel_size=2, stride=2), None


class _MarkedUnpool(nn.Module):
    """Export stand-in for MaxUnpool2x2: one placeholder node with inputs (decoder, pre-pool)."""

    def forward(self, x: torch.Tensor, indices: None, prepool: torch.Tensor) -> torch.Tensor:
        return unpool2x2(x, prepool)


class ClassMapHead(nn.Module):
    """(N, K, H, W) logits -> (N, H, W) int32 class map (ArgMax; ties pick the lowest class).

    int32, not uint8: TensorRT's ArgMax yields int32 and its casts to uint8 are limited to
    float inputs, so int32 is the class map every backend can return unchanged.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x).argmax(dim=1).to(torch.int32)


def count_unpoolings(model: nn.Module) -> int:
    return sum(isinstance(m, MaxUnpool2x2) for m in model.modules())


def min_input_side(model: nn.Module) -> int:
    """Smallest height/width the model accepts: each pooling halves it, and 1x1 must remain."""
    return 2 ** sum(isinstance(m, MaxPool2x2) for m in model.modules())


def export_stand_in(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with pooling and unpooling swapped for their export stand-ins."""
    clone = copy.deepcopy(model).eval()
    for module in list(clone.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, MaxPool2x2):
                setattr(module, name, _SinglePool())
            elif isinstance(child, MaxUnpool2x2):
                setattr(module, name, _MarkedUnpool())
    return clone


def _site_name(node: onnx.NodeProto, index: int) -> str:
    """The module path of a placeholder (e.g. ``decoders.1.unpool``) from the exporter's
    metadata; falls back to a counter."""
    for prop in node.metadata_props:
        if prop.key == "pkg.torch.onnx.name_scopes":
            scopes = [s.strip(" '\"") for s in prop.value.strip("[]").split(",")]
            named = [s for s in scopes if s.endswith(".unpool") or s == "unpool"]
            if named:
                return named[-1]
    return f"unpool{index}"


def _strip_exporter_metadata(model: onnx.ModelProto) -> None:
    # Per-node stack traces and FX names hold local paths and triple the text of the graph.
    for node in model.graph.node:
        del node.metadata_props[:]
    for value in (*model.graph.input, *model.graph.output, *model.graph.value_info):
        del value.metadata_props[:]
    del model.metadata_props[:]


@contextlib.contextmanager
def _quiet_exporter():
    """The exporter prints progress to stdout and warns about optional packages; keep the CLI's
    output to the parity report."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "onnxscript", "torch.export")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def export_onnx(
    model: nn.Module,
    card: ModelCard,
    *,
    opset: int = DEFAULT_OPSET,
    dynamic: bool = False,
    argmax: bool = False,
) -> onnx.ModelProto:
    """Export ``model`` (CPU, eval) to a portable ONNX model, standard ops only.

    Input ``input`` (N, 3, H, W) float32 with (H, W) = ``card.input_hw`` and N = 1, or with
    ``dynamic`` N, H and W free (H, W at least 2^poolings; TensorRT profiles use multiples of 32).
    Output ``logits`` (N, K, H, W) float32, or with ``argmax`` ``class_map`` (N, H, W) int32.
    The model card is not attached here (see :func:`edgeseg.export.onnx_io.attach_card`).
    Raises EdgesegError for an opset the exporter cannot write.
    """
    check_opset(opset)
    stand_in: nn.Module = export_stand_in(model)
    if argmax:
        stand_in = ClassMapHead(stand_in)
    height, width = card.input_hw
    batch = 2 if dynamic else 1  # torch.export specialises a dynamic dimension sampled at 1
    example = torch.zeros(batch, 3, height, width)
    dynamic_shapes = None
    if dynamic:
        side = torch.export.Dim
        low = min_input_side(model)
        dynamic_shapes = (
            {
                0: side("batch", min=1, max=MAX_DYNAMIC_BATCH),
                2: side("height", min=low, max=MAX_DYNAMIC_SIDE),
                3: side("width", min=low, max=MAX_DYNAMIC_SIDE),
            },
        )
    output_name = OUTPUT_NAMES["class_map" if argmax else "logits"]
    try:
        with _quiet_exporter(), torch.no_grad():
            program = torch.onnx.export(
                stand_in,
                (example,),
                dynamo=True,
                opset_version=opset,
                input_names=[INPUT_NAME],
                output_names=[output_name],
                dynamic_shapes=dynamic_shapes,
                custom_translation_table={
                    torch.ops.edgeseg_export.unpool2x2.default: _marker_translation()
                },
                verbose=False,
            )
    except Exception as exc:
        if opset == DEFAULT_OPSET:
            raise  # the default path failing is a bug: keep the traceback
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise EdgesegError(
            f"torch.onnx.export cannot write opset {opset} ({first}); use --opset {DEFAULT_OPSET}"
        ) from None
    proto = program.model_proto
    for index, node in enumerate(proto.graph.node):
        if node.op_type == MARKER_OP and node.domain == MARKER_DOMAIN:
            node.name = _site_name(node, index)
    _strip_exporter_metadata(proto)
    expected = count_unpoolings(model)
    found = expand_markers(proto)
    if found != expected:
        raise RuntimeError(f"exported graph holds {found} unpoolings, the model {expected}")
    proto.producer_name = "edgeseg"
    return proto
