"""The model card: the one small record that travels with every artifact.

Checkpoints store it beside the weights, ONNX files in ``metadata_props`` under
:data:`ONNX_METADATA_KEY`, engines in a ``.json`` sidecar. Every later stage (export, calibration,
runtime) reads its facts from here, so no stage needs a flag an earlier stage already knew, and
preprocessing is derived from the card and nowhere else.

This module must not import torch: the runtime reads cards on machines without it.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeseg.errors import EdgesegError
from edgeseg.files import atomic_write_bytes
from edgeseg.validate import ascii_int, check_fields, check_normalisation, check_palette

ONNX_METADATA_KEY = "edgeseg.model_card"
CARD_SCHEMA = 1

#: Values a card's ``precision`` may take.
PRECISIONS = ("fp32", "fp16", "int8")
#: What a model's output holds: per-class scores (N,K,H,W) or a class map (N,H,W) from an ArgMax.
OUTPUTS = ("logits", "class_map")


@dataclass(frozen=True)
class ModelCard:
    """Everything a later stage must know about a model, and nothing it could derive itself.

    ``input_hw`` is (height, width) of the network input in pixels. ``mean`` and ``std`` apply to
    RGB pixels scaled to 0..1, in that channel order; images are read as BGR by OpenCV and
    converted by :func:`edgeseg.preprocess.preprocess`. ``palette`` holds one RGB triple per class.
    ``ignore_index`` is the label value excluded from loss and metrics (CamVid: 11, void), or None.
    """

    architecture: str
    num_classes: int
    class_names: tuple[str, ...]
    palette: tuple[tuple[int, int, int], ...]
    input_hw: tuple[int, int]
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    arch_args: dict[str, Any] = field(default_factory=dict)
    ignore_index: int | None = None
    precision: str = "fp32"
    output: str = "logits"
    edgeseg_version: str = ""
    weights_sha256: str = ""
    dataset: str = ""
    license: str = ""
    training_command: str = ""
    #: Facts an artifact adds that earlier ones lack (an engine's TensorRT/CUDA/GPU/plugin).
    build: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_fields(self, "model card")
        if self.num_classes < 1:
            raise EdgesegError(
                f"model card: num_classes must be at least 1, got {self.num_classes}"
            )
        if len(self.class_names) != self.num_classes:
            raise EdgesegError(
                f"model card: {len(self.class_names)} class names for {self.num_classes} classes"
            )
        if len(self.palette) != self.num_classes:
            raise EdgesegError(
                f"model card: {len(self.palette)} palette colours for {self.num_classes} classes"
            )
        check_palette(self.palette)
        check_normalisation(list(self.mean), list(self.std))
        if len(self.input_hw) != 2 or min(self.input_hw) < 1:
            raise EdgesegError(f"model card: input_hw must be (height, width), got {self.input_hw}")
        if self.precision not in PRECISIONS:
            raise EdgesegError(
                f"model card: precision {self.precision!r} is not one of {', '.join(PRECISIONS)}"
            )
        if self.output not in OUTPUTS:
            raise EdgesegError(
                f"model card: output {self.output!r} is not one of {', '.join(OUTPUTS)}"
            )

    def replace(self, **changes: Any) -> ModelCard:
        """A copy with some fields changed (the card itself is frozen)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["schema"] = CARD_SCHEMA
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelCard:
        """Build a card from its dict form; keys written by a newer edgeseg are ignored."""
        known = {f.name for f in dataclasses.fields(cls)}
        missing = [
            f.name
            for f in dataclasses.fields(cls)
            if f.name not in data
            and f.default is dataclasses.MISSING
            and f.default_factory is dataclasses.MISSING
        ]
        if missing:
            raise EdgesegError(f"model card is missing {', '.join(missing)}; re-export the model")
        kwargs = {k: v for k, v in data.items() if k in known}
        # Checked as written (a text colour, two means, a std of 0 are one line each), then
        # converted: int("red") or float(None) must not become a traceback.
        check_palette(kwargs["palette"])
        check_normalisation(kwargs.get("mean", cls.mean), kwargs.get("std", cls.std))
        hw = kwargs["input_hw"]
        if not (isinstance(hw, list | tuple) and len(hw) == 2 and all(ascii_int(v) for v in hw)):
            raise EdgesegError(f"model card: input_hw must be [height, width] in pixels, got {hw}")
        kwargs["class_names"] = tuple(str(name) for name in kwargs["class_names"])
        kwargs["palette"] = tuple(tuple(c) for c in kwargs["palette"])
        kwargs["input_hw"] = (int(hw[0]), int(hw[1]))
        for key in ("mean", "std"):
            if key in kwargs:
                kwargs[key] = tuple(float(v) for v in kwargs[key])
        return cls(**kwargs)

    @classmethod
    def from_json(cls, text: str) -> ModelCard:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise EdgesegError(f"model card is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise EdgesegError("model card JSON must be an object")
        return cls.from_dict(data)


def card_from_onnx_metadata(metadata: Mapping[str, str], source: object) -> ModelCard:
    """The card stored in an ONNX file's metadata, from either reader's view of it.

    ``metadata`` is ONNX Runtime's ``get_modelmeta().custom_metadata_map`` or the ``onnx``
    package's ``metadata_props`` as a dict; ``source`` names the file in the error.
    """
    if ONNX_METADATA_KEY not in metadata:
        raise EdgesegError(
            f"{source} has no edgeseg model card (metadata key {ONNX_METADATA_KEY!r}); "
            "export it with edgeseg export"
        )
    return ModelCard.from_json(metadata[ONNX_METADATA_KEY])


def sidecar_path(artifact: str | os.PathLike[str]) -> Path:
    """Where an engine's card lives: ``model.engine`` -> ``model.engine.json``."""
    path = Path(artifact)
    return path.with_name(path.name + ".json")


def write_sidecar(card: ModelCard, artifact: str | os.PathLike[str]) -> Path:
    """Write ``card`` beside ``artifact`` atomically and return the sidecar's path."""
    target = sidecar_path(artifact)
    atomic_write_bytes(target, card.to_json().encode())
    return target


def read_sidecar(artifact: str | os.PathLike[str]) -> ModelCard:
    target = sidecar_path(artifact)
    if not target.is_file():
        raise EdgesegError(
            f"{artifact} has no model card ({target.name} is missing); "
            "rebuild it with edgeseg export"
        )
    return ModelCard.from_json(target.read_text())
