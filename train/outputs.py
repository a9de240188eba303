"""What a training run writes besides its checkpoints' weights: the file names, ``metrics.csv`` /
``metrics.json``, TensorBoard scalars, the RNG states ``last.pt`` keeps for an exact resume, and
the closing pictures (prediction collage, confusion matrix).
"""

from __future__ import annotations

import csv
import io
import json
import random
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from edgeseg.card import ModelCard
from edgeseg.files import atomic_write_bytes
from edgeseg.metrics import to_jsonable
from edgeseg.train.config import TrainConfig

if TYPE_CHECKING:
    from edgeseg.evaluate import EvalSet

#: Validation metrics recorded per epoch.
VAL_METRICS = ("miou", "pixel_accuracy", "class_accuracy", "fwiou", "mean_dice")
#: Columns of metrics.csv.
EPOCH_FIELDS = ("epoch", "train_loss", "lr", *VAL_METRICS, "seconds")
#: Files a run writes into its folder; any of the first three means the folder holds a run.
RUN_FILES = (
    "config.yaml",
    "last.pt",
    "best.pt",
    "metrics.csv",
    "metrics.json",
    "class_weights.json",
    "curves.png",
    "collage.png",
    "confusion.png",
)
RUN_MARKERS = RUN_FILES[:3]


def rng_state() -> dict[str, Any]:
    """Global RNG states in a form ``torch.load(weights_only=True)`` accepts."""
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": [int(v) for v in np.random.get_state()[1]],  # type: ignore[index]
        "python": [int(v) for v in random.getstate()[1]],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(("MT19937", np.array(state["numpy"], dtype=np.uint32), 624, 0, 0.0))
    random.setstate((3, tuple(state["python"]), None))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def write_history(out: Path, history: list[dict[str, Any]]) -> None:
    """Per-epoch metrics as CSV (one row an epoch) and JSON (with per-class tables)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=EPOCH_FIELDS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(history)
    atomic_write_bytes(out / "metrics.csv", buffer.getvalue().encode())
    records = [to_jsonable(record) for record in history]
    atomic_write_bytes(out / "metrics.json", json.dumps(records, indent=1).encode())


class TensorBoard:
    """Optional TensorBoard scalars, when the tensorboard package is installed."""

    def __init__(self, logdir: Path) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.writer: SummaryWriter | None = SummaryWriter(str(logdir))
        except ImportError:
            self.writer = None

    def log(self, record: dict[str, Any]) -> None:
        if self.writer is None:
            return
        for key in EPOCH_FIELDS[1:]:
            if isinstance(record.get(key), int | float):
                self.writer.add_scalar(key, record[key], record["epoch"])
        self.writer.flush()


def final_pictures(
    out: Path,
    history: list[dict[str, Any]],
    val_set: EvalSet,
    card: ModelCard,
    config: TrainConfig,
    device: str,
) -> None:
    """Prediction collage and confusion matrix of the best checkpoint on val (of ``last.pt``
    when this folder has no ``best.pt``: a run resumed into a new folder whose best epoch came
    before the resume, so its best.pt is beside the original last.pt)."""
    from edgeseg.checkpoint import load_model
    from edgeseg.evaluate import evaluate_predictor, torch_predictor
    from edgeseg.plots import plot_confusion_matrix, prediction_collage

    which = "best" if (out / "best.pt").is_file() else "last"
    best, card = load_model(out / f"{which}.pt", device=device)
    # Evenly spaced through the split: neighbouring frames of a video look alike.
    count = min(config.collage_images, len(val_set.images))
    keep = sorted({round(i * (len(val_set.images) - 1) / max(1, count - 1)) for i in range(count)})
    metrics, matrix, predictions = evaluate_predictor(
        val_set, card, torch_predictor(best, device), config.batch_size, keep=keep
    )
    prediction_collage(
        [val_set.images[i] for i in keep],
        [val_set.masks[i] for i in keep],
        predictions,
        card.palette,
        card.ignore_index,
        out / "collage.png",
    )
    plot_confusion_matrix(
        matrix,
        card.class_names,
        out / "confusion.png",
        title=f"val, {which} epoch (mIoU {metrics['miou']:.3f})",
    )
