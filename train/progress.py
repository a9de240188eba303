"""What a training run says about itself: where it runs, on what data, and when it will end.

A CPU user starting ``edgeseg train`` needs to know within seconds whether the run takes ten
minutes or two days, so the first line names the device (and CPU threads), the data and the
steps per epoch, and every epoch line ends with an estimate of the time left: the mean duration
of the epochs this process ran, times the epochs to go (validation included).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from edgeseg.card import ModelCard
from edgeseg.data import DatasetSpec
from edgeseg.train.config import TrainConfig


def device_description(device: str) -> str:
    """``"cpu (2 threads)"`` or ``"cuda:0 (NVIDIA ...)"``."""
    if device.startswith("cuda"):
        return f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
    return f"{device} ({torch.get_num_threads()} threads)"


def start_line(
    config: TrainConfig,
    card: ModelCard,
    spec: DatasetSpec,
    images: tuple[int, int],
    steps_per_epoch: int,
    first_epoch: int,
    device: str,
) -> str:
    """One line before the first epoch: model, size, device, data, batches, epochs."""
    height, width = card.input_hw
    options = ", ".join(f"{k} {v}" for k, v in config.model_options.items())
    model = f"{config.model}{f' ({options})' if options else ''}"
    epochs = (
        f"epochs {first_epoch}..{config.epochs}" if first_epoch > 1 else f"{config.epochs} epochs"
    )
    return (
        f"train {model} at {height}x{width} on {device_description(device)}: "
        f"{spec.name or 'dataset'} {images[0]} train / {images[1]} val images, "
        f"{len(spec.class_names)} classes; batch {config.batch_size}, {steps_per_epoch} steps "
        f"per epoch, {epochs}"
    )


def format_duration(seconds: float) -> str:
    """``"45 s"``, ``"12 min"``, ``"3 h 05 min"``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def time_left(epoch_seconds: Sequence[float], epochs_left: int) -> str:
    """``"eta 3 h 05 min"`` from the epochs run so far; ``"done"`` after the last."""
    if epochs_left <= 0:
        return "done"
    mean = sum(epoch_seconds) / max(1, len(epoch_seconds))
    return f"eta {format_duration(mean * epochs_left)}"
