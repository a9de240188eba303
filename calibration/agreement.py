"""How far a quantized graph's predictions move from the FP32 graph's, with or without labels.

Calibration images often come without labels, so the per-layer analysis and the unlabelled
check take the FP32 model's class map as the reference: pixel agreement, and the mIoU of the
INT8 class map scored against the FP32 one (``consistency mIoU``), which sees a rare class
(poles, signs) collapse while 99 % of pixels still agree. It is a strict measure: on a model
whose logits are close to ties, many pixels flip between near-equal classes without any loss
against the labels, so it is a collapse detector, not an accuracy figure. When the calibration
data is a labelled dataset, :func:`labelled_miou` gives the real mIoU of both graphs on the
held-out images, and that drop is what the export gates on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx

from edgeseg.backends.runner import run_onnx
from edgeseg.metrics import ConfusionMatrix


@dataclass(frozen=True)
class Agreement:
    """Predictions of one graph against the FP32 graph's on the same inputs."""

    pixel_agreement: float
    consistency_miou: float
    images: int

    def describe(self) -> str:
        return (
            f"consistency mIoU {self.consistency_miou:.4f}, pixel agreement "
            f"{100 * self.pixel_agreement:.2f} % on {self.images} held-out calibration images"
        )


def class_maps(model: onnx.ModelProto, inputs: np.ndarray) -> np.ndarray:
    """(N, H, W) int64 argmax of ``model`` (static batch 1 graphs) in ONNX Runtime on CPU."""
    outputs = run_onnx(model, inputs)
    return outputs if outputs.ndim == 3 else outputs.argmax(axis=1)


def labelled_miou(
    predicted: np.ndarray, labels: np.ndarray, num_classes: int, ignore_index: int | None
) -> float:
    """mIoU of (N, H, W) class maps against labels of the same size."""
    matrix = ConfusionMatrix(num_classes, ignore_index)
    matrix.update(predicted, labels)
    return float(matrix.compute()["miou"])


def agreement(reference: np.ndarray, predicted: np.ndarray, num_classes: int) -> Agreement:
    """Score class maps ``predicted`` against ``reference`` (both (N, H, W))."""
    matrix = ConfusionMatrix(num_classes)
    matrix.update(predicted, reference)
    metrics = matrix.compute()
    return Agreement(
        pixel_agreement=float(np.mean(predicted == reference)),
        consistency_miou=float(metrics["miou"]),
        images=len(reference),
    )
