"""Per-layer INT8 sensitivity: which convolutions lose most when they alone are quantized.

Each quantizable layer is quantized on its own (every other layer float), with the ranges of the
one calibration pass (ONNX Runtime's range cache), and scored against the FP32 graph's class maps
on the held-out images (:mod:`edgeseg.calibration.agreement`). One layer at a time measures each
layer's own damage, independent of the order layers would be removed in; the ``--keep-float N``
option leaves the N worst in float and the export re-checks the whole graph after that.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from tqdm import tqdm

from edgeseg.calibration.agreement import agreement, class_maps
from edgeseg.calibration.quantize import quantizable_layers, quantize_int8


@dataclass(frozen=True)
class LayerSensitivity:
    """One layer quantized alone: its agreement with FP32 and the consistency mIoU lost."""

    layer: str
    consistency_miou: float
    pixel_agreement: float
    #: The layer's weight tensor, named after the PyTorch parameter (``encoders.0.convs.1.0``):
    #: what a user recognises; ``layer`` is the ONNX node name ``--keep-float`` acts on.
    weight: str = ""

    @property
    def loss(self) -> float:
        return 1.0 - self.consistency_miou


def layer_sensitivity(
    model: onnx.ModelProto,
    method: str,
    ranges_cache: Path,
    check_inputs: np.ndarray,
    reference: np.ndarray,
    num_classes: int,
    progress: bool = True,
) -> list[LayerSensitivity]:
    """Every quantizable layer of ``model``, worst first. ``ranges_cache`` must already hold
    this model's ranges for ``method`` (written by the full quantization)."""
    results = []
    layers = quantizable_layers(model)
    convs = {n.name: n for n in model.graph.node if n.name in set(layers)}
    weights = {name: node.input[1].removesuffix(".weight") for name, node in convs.items()}
    with tempfile.TemporaryDirectory(prefix="edgeseg-sensitivity-") as tmp:
        saved = Path(tmp) / "fp32.onnx"
        onnx.save(model, saved)  # once, not once per layer (full SegNet is 117 MB)
        for layer in tqdm(layers, desc="per-layer INT8", disable=not progress):
            single = quantize_int8(
                model, None, method=method, only=[layer], ranges_cache=ranges_cache, saved=saved
            )
            score = agreement(reference, class_maps(single, check_inputs), num_classes)
            results.append(
                LayerSensitivity(
                    layer, score.consistency_miou, score.pixel_agreement, weights[layer]
                )
            )
    return sorted(results, key=lambda r: r.loss, reverse=True)


def format_sensitivity(results: Sequence[LayerSensitivity], top: int = 10) -> str:
    """The ``top`` worst layers as a table."""
    lines = [
        f"  {'layer (quantized alone)':<20} {'weights':<28} {'consistency mIoU':>16} "
        f"{'pixels agree':>13}"
    ]
    for item in results[:top]:
        agree = 100 * item.pixel_agreement
        lines.append(
            f"  {item.layer:<20} {item.weight:<28} {item.consistency_miou:>16.4f} {agree:>12.2f}%"
        )
    return "\n".join(lines)


def sensitivity_record(results: Sequence[LayerSensitivity]) -> list[dict[str, Any]]:
    return [{**asdict(item), "loss": item.loss} for item in results]
