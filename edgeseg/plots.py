"""Pictures people would rather look at than numbers: curves, prediction collages, confusion.

matplotlib (Agg, no display) for charts; the collage is assembled with numpy and OpenCV so it
stays pixel-exact. Every file is written through a temporary file and renamed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from edgeseg.files import atomic_write_bytes

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def _save_figure(fig: Figure, path: str | Path) -> None:
    import io

    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())


def _pyplot() -> ModuleType:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_training_curves(history: Sequence[dict[str, Any]], path: str | Path) -> None:
    """Train loss, val mIoU / pixel accuracy and learning rate per epoch, in three panels."""
    plt = _pyplot()
    epochs = [h["epoch"] for h in history]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6), layout="constrained")
    axes[0].plot(epochs, [h["train_loss"] for h in history], marker=".")
    axes[0].set_title("train loss")
    for key, label in (
        ("miou", "val mIoU"),
        ("pixel_accuracy", "val pixel acc"),
        ("class_accuracy", "val class acc"),
    ):
        axes[1].plot(epochs, [h.get(key) for h in history], marker=".", label=label)
    axes[1].set_title("validation")
    axes[1].set_ylim(0, 1)
    axes[1].legend(loc="lower right")
    axes[2].plot(epochs, [h["lr"] for h in history], marker=".")
    axes[2].set_title("learning rate (end of epoch)")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    _save_figure(fig, path)


def colorize(
    labels: np.ndarray, palette: Sequence[Sequence[int]], ignore_index: int | None
) -> np.ndarray:
    """(H, W) class map -> (H, W, 3) BGR image by palette look-up; ignored/unknown pixels black."""
    lut = np.zeros((256, 3), dtype=np.uint8)
    lut[: len(palette)] = np.asarray(palette, dtype=np.uint8)[:, ::-1]
    if ignore_index is not None and 0 <= ignore_index < 256:
        lut[ignore_index] = 0
    return lut[np.clip(labels, 0, 255).astype(np.uint8)]


def prediction_collage(
    images_bgr: Sequence[np.ndarray],
    truths: Sequence[np.ndarray],
    predictions: Sequence[np.ndarray],
    palette: Sequence[Sequence[int]],
    ignore_index: int | None,
    path: str | Path,
    row_height: int = 240,
) -> None:
    """One row per image: input | ground truth | prediction, written as PNG."""
    comparison_collage(
        images_bgr, truths, {"prediction": predictions}, palette, ignore_index, path, row_height
    )


def comparison_collage(
    images_bgr: Sequence[np.ndarray],
    truths: Sequence[np.ndarray],
    columns: dict[str, Sequence[np.ndarray]],
    palette: Sequence[Sequence[int]],
    ignore_index: int | None,
    path: str | Path,
    row_height: int = 240,
) -> None:
    """One row per image: input | ground truth | one column per entry of ``columns`` (title ->
    a class map per image: several models on the same frames), written as PNG."""
    rows = []
    for index, (image, truth) in enumerate(zip(images_bgr, truths, strict=True)):
        scale = row_height / image.shape[0]
        size = (max(1, round(image.shape[1] * scale)), row_height)
        tiles = [cv2.resize(image, size, interpolation=cv2.INTER_AREA)]
        for labels in (truth, *(column[index] for column in columns.values())):
            colored = colorize(labels, palette, ignore_index)
            tiles.append(cv2.resize(colored, size, interpolation=cv2.INTER_NEAREST))
        rows.append(np.concatenate(tiles, axis=1))
    if not rows:
        return
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in rows]
    titles = ("input", "ground truth", *columns)
    header = np.full((28, width, 3), 255, dtype=np.uint8)
    step = width // len(titles)
    for i, title in enumerate(titles):
        cv2.putText(
            header, title, (i * step + 8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1,
            cv2.LINE_AA,
        )  # fmt: skip
    ok, encoded = cv2.imencode(".png", np.concatenate([header, *rows], axis=0))
    if ok:
        atomic_write_bytes(path, encoded.tobytes())


def plot_confusion_matrix(
    matrix: np.ndarray, class_names: Sequence[str], path: str | Path, title: str = ""
) -> None:
    """Row-normalised confusion matrix (rows: ground truth) with the share printed per cell."""
    plt = _pyplot()
    counts = matrix.astype(np.float64)
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    size = max(5.0, 0.55 * len(class_names) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(class_names)), class_names, rotation=60, ha="right")
    ax.set_yticks(range(len(class_names)), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("ground truth")
    if title:
        ax.set_title(title)
    if len(class_names) <= 25:
        for i in range(len(class_names)):
            for j in range(len(class_names)):
                if shares[i, j] >= 0.005:
                    ax.text(
                        j,
                        i,
                        f"{shares[i, j]:.2f}",
                        ha="center",
                        va="center",
                        fontsize=7,
                        color="white" if shares[i, j] > 0.5 else "black",
                    )
    fig.colorbar(image, ax=ax, fraction=0.046)
    _save_figure(fig, path)


def plot_layer_sensitivity(
    layers: Sequence[str], losses: Sequence[float], path: str | Path, title: str
) -> None:
    """Horizontal bars: consistency mIoU lost when each layer alone is quantized, worst on top."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 0.28 * len(layers) + 1.2))
    positions = np.arange(len(layers))[::-1]
    ax.barh(positions, [100 * v for v in losses], color="#c0504d")
    ax.set_yticks(positions, labels=list(layers), fontsize=7)
    ax.set_xlabel("consistency mIoU lost vs FP32 (points)")
    ax.set_title(title, fontsize=9)
    ax.grid(axis="x", alpha=0.3)
    _save_figure(fig, path)
