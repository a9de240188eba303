"""Segmentation metrics from a confusion matrix.

:class:`ConfusionMatrix` accumulates a (K, K) int64 matrix, rows = ground truth, columns =
prediction. A pixel is counted only when its label is in [0, K) and is not ``ignore_index``; so
the dataset's ignore label and the padding label of :mod:`edgeseg.data.dataset` never count.

From it, :meth:`ConfusionMatrix.compute` gives, with TP_c the diagonal, G_c the row sums (ground
truth pixels) and P_c the column sums (predicted pixels):

- IoU_c = TP_c / (G_c + P_c - TP_c); accuracy_c = TP_c / G_c; Dice_c = 2 TP_c / (G_c + P_c).
- ``miou``, ``class_accuracy`` (mean class accuracy), ``mean_dice``: means over the classes for
  which the value is defined. A class absent from both ground truth and prediction has NaN IoU
  and Dice and is left out of the means; a class absent from the ground truth only has IoU 0
  (every pixel predicted as it is wrong) but NaN accuracy.
- ``pixel_accuracy`` = sum TP / sum G; ``fwiou`` = sum over classes of (G_c / sum G) IoU_c.

Everything is NaN when nothing was counted. JSON has no NaN: :func:`to_jsonable` writes null.
numpy only (no torch): tensors are accepted and converted.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np


def _as_numpy(values: Any) -> np.ndarray:
    if hasattr(values, "detach"):  # a torch tensor, without importing torch
        values = values.detach().cpu().numpy()
    return np.asarray(values)


class ConfusionMatrix:
    """Accumulates (ground truth, prediction) pixel pairs of ``num_classes`` classes."""

    def __init__(self, num_classes: int, ignore_index: int | None = None) -> None:
        if num_classes < 1:
            raise ValueError(f"num_classes must be at least 1, got {num_classes}")
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        #: (K, K) int64, rows = ground truth, columns = prediction. Sum it across processes
        #: (e.g. an all-reduce) to combine distributed evaluations.
        self.matrix = np.zeros((num_classes, num_classes), dtype=np.int64)

    def reset(self) -> None:
        self.matrix[:] = 0

    def update(self, pred: Any, target: Any) -> None:
        """Count one prediction/label pair of any equal shape (numpy arrays or torch tensors).

        Raises ValueError when the shapes differ or a counted pixel's prediction is not a class.
        """
        pred, target = _as_numpy(pred), _as_numpy(target)
        if pred.shape != target.shape:
            raise ValueError(f"prediction {pred.shape} and target {target.shape} differ in shape")
        classes = self.num_classes
        target = target.ravel().astype(np.int64, copy=False)
        pred = pred.ravel().astype(np.int64, copy=False)
        valid = (target >= 0) & (target < classes)
        if self.ignore_index is not None:
            valid &= target != self.ignore_index
        target, pred = target[valid], pred[valid]
        if pred.size and (pred.min() < 0 or pred.max() >= classes):
            raise ValueError(f"predictions must be classes 0..{classes - 1}, got {pred.max()}")
        self.matrix += np.bincount(target * classes + pred, minlength=classes * classes).reshape(
            classes, classes
        )

    def merge(self, other: ConfusionMatrix) -> None:
        """Add another matrix of the same classes (e.g. from another worker) into this one."""
        if other.num_classes != self.num_classes:
            raise ValueError(f"cannot merge {other.num_classes} classes into {self.num_classes}")
        self.matrix += other.matrix

    def compute(self, class_names: Sequence[str] | None = None) -> dict[str, Any]:
        """The metrics of the counted pixels; see the module docstring for the definitions.

        Returns a dict with keys ``miou``, ``pixel_accuracy``, ``class_accuracy``, ``fwiou``,
        ``mean_dice`` (floats, NaN when undefined) and ``per_class`` (a list of
        {"name", "iou", "accuracy", "dice", "pixels"}, in class order).
        """
        return metrics_from_matrix(self.matrix, class_names)


def metrics_from_matrix(
    matrix: np.ndarray, class_names: Sequence[str] | None = None
) -> dict[str, Any]:
    """:meth:`ConfusionMatrix.compute` for a bare (K, K) matrix."""
    matrix = np.asarray(matrix, dtype=np.float64)
    classes = matrix.shape[0]
    names = list(class_names) if class_names is not None else [str(c) for c in range(classes)]
    if len(names) != classes:
        raise ValueError(f"{len(names)} class names for {classes} classes")
    true_pos = np.diag(matrix)
    ground_truth = matrix.sum(axis=1)
    predicted = matrix.sum(axis=0)
    total = ground_truth.sum()
    iou = _ratio(true_pos, ground_truth + predicted - true_pos)
    accuracy = _ratio(true_pos, ground_truth)
    dice = _ratio(2 * true_pos, ground_truth + predicted)
    seen = ground_truth > 0
    fwiou = float(np.sum(ground_truth[seen] * iou[seen]) / total) if total else math.nan
    return {
        "miou": _mean(iou),
        "pixel_accuracy": float(true_pos.sum() / total) if total else math.nan,
        "class_accuracy": _mean(accuracy),
        "fwiou": fwiou,
        "mean_dice": _mean(dice),
        "per_class": [
            {
                "name": names[c],
                "iou": float(iou[c]),
                "accuracy": float(accuracy[c]),
                "dice": float(dice[c]),
                "pixels": int(ground_truth[c]),
            }
            for c in range(classes)
        ],
    }


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    out = np.full(numerator.shape, np.nan)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def _mean(values: np.ndarray) -> float:
    defined = values[~np.isnan(values)]
    return float(defined.mean()) if defined.size else math.nan


def to_jsonable(value: Any) -> Any:
    """A copy of ``value`` (metrics dicts, lists, numpy scalars) with NaN and inf as None."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def format_table(metrics: dict[str, Any]) -> str:
    """A per-class table and the summary lines, for the terminal. Undefined values show as '-'."""
    rows = metrics["per_class"]
    width = max([len("class"), *(len(r["name"]) for r in rows)])
    lines = [f"{'class':<{width}}  {'IoU':>7}  {'acc':>7}  {'Dice':>7}  {'pixels':>12}"]
    for row in rows:
        lines.append(
            f"{row['name']:<{width}}  {_cell(row['iou'])}  {_cell(row['accuracy'])}  "
            f"{_cell(row['dice'])}  {row['pixels']:>12,}"
        )
    lines.append("")
    labels = {
        "miou": "mean IoU",
        "pixel_accuracy": "pixel accuracy",
        "class_accuracy": "mean class accuracy",
        "fwiou": "frequency-weighted IoU",
        "mean_dice": "mean Dice",
    }
    for key, label in labels.items():
        if key in metrics:
            lines.append(f"{label + ':':<24}{_cell(metrics[key]).strip()}")
    return "\n".join(lines)


def format_comparison(names: Sequence[str], results: Sequence[dict[str, Any]]) -> str:
    """Several models' metrics on the same images: the summary per model with its mIoU change
    against the first (the reference, e.g. FP32), then per-class IoU as the first model's value
    and every other model's change in points. Undefined values show as '-'."""
    if not results:
        return ""
    width = max(len("model"), *(len(n) for n in names))
    lines = [
        f"{'model':<{width}}  {'mIoU':>7}  {'dmIoU':>7}  {'pix acc':>7}  {'cls acc':>7}  "
        f"{'fwIoU':>7}"
    ]
    base = results[0]
    for name, metrics in zip(names, results, strict=True):
        delta = _points(metrics["miou"] - base["miou"]) if metrics is not base else f"{'-':>7}"
        lines.append(
            f"{name:<{width}}  {_cell(metrics['miou'])}  {delta}  "
            f"{_cell(metrics['pixel_accuracy'])}  {_cell(metrics['class_accuracy'])}  "
            f"{_cell(metrics['fwiou'])}"
        )
    classes = [row["name"] for row in base["per_class"]]
    class_width = max(len("class IoU"), *(len(c) for c in classes))
    columns = [max(9, len(n)) for n in names]
    lines += ["", f"per-class IoU: {names[0]}, then the change in points for the others"]
    lines.append(
        f"{'class IoU':<{class_width}}  "
        + "  ".join(f"{n:>{w}}" for n, w in zip(names, columns, strict=True))
    )
    for index, cls in enumerate(classes):
        cells = [f"{_cell(base['per_class'][index]['iou']).strip():>{columns[0]}}"]
        for metrics, w in zip(results[1:], columns[1:], strict=True):
            change = metrics["per_class"][index]["iou"] - base["per_class"][index]["iou"]
            cells.append(f"{_points(change).strip():>{w}}")
        lines.append(f"{cls:<{class_width}}  " + "  ".join(cells))
    return "\n".join(lines)


def _points(delta: float) -> str:
    """A difference of two fractions in percentage points, signed ('-' when undefined)."""
    if math.isnan(delta):
        return f"{'-':>7}"
    return f"{100 * delta:+7.2f}"


def _cell(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return f"{'-':>7}"
    return f"{value:7.4f}"
