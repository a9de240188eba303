"""``edgeseg card``: a copy of a foreign segmentation ONNX with an edgeseg model card inside.

The card is the one :func:`edgeseg.foreign_onnx.foreign_card` makes at run time from the graph
and the options, so a carded file runs exactly as ``edgeseg run --labels ...`` ran it.
"""

from __future__ import annotations

from pathlib import Path

from edgeseg.card import ONNX_METADATA_KEY, ModelCard
from edgeseg.errors import EdgesegError
from edgeseg.foreign_onnx import ForeignModelOptions, foreign_card


def _dims(value_info: object) -> list[int | str | None]:
    shape = value_info.type.tensor_type.shape  # type: ignore[attr-defined]
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in shape.dim]


def write_card(model: Path, options: ForeignModelOptions, target: Path) -> ModelCard:
    """Write ``model`` with its card to ``target`` (through a temporary file and a rename);
    ``target`` may not be ``model``. Raises EdgesegError for a graph that already has a card,
    one it cannot describe, or a missing ``onnx`` package (the export extra)."""
    try:
        import onnx

        from edgeseg.export.onnx_io import attach_card, load_onnx, save_onnx
    except ImportError:
        raise EdgesegError(
            "edgeseg card needs the onnx package: pip install 'edgeseg[export]'"
        ) from None
    if target.resolve() == model.resolve():
        raise EdgesegError(
            f"{target} is the model, which the carded copy would overwrite; choose another path"
        )
    graph = load_onnx(model)
    metadata = {p.key: p.value for p in graph.metadata_props}
    if ONNX_METADATA_KEY in metadata:
        raise EdgesegError(f"{model.name} carries an edgeseg model card already")
    initializers = {i.name for i in graph.graph.initializer}
    inputs = [i for i in graph.graph.input if i.name not in initializers]
    if len(inputs) != 1:
        raise EdgesegError(f"{model.name} has {len(inputs)} inputs; a segmentation model has one")
    output = graph.graph.output[0]
    integer = output.type.tensor_type.elem_type in (
        onnx.TensorProto.INT64, onnx.TensorProto.INT32, onnx.TensorProto.UINT8,
        onnx.TensorProto.INT8, onnx.TensorProto.UINT16, onnx.TensorProto.INT16,
    )  # fmt: skip
    card = foreign_card(_dims(inputs[0]), _dims(output), integer, options, metadata, model.name)
    attach_card(graph, card)
    save_onnx(graph, target)
    return card
