"""An exponential moving average of the weights (``--ema DECAY``): the model a run validates,
saves and exports, while the optimiser keeps training the raw weights.

Why: a CamVid run's val mIoU moves by about a point from one epoch to the next
(docs/training.md), and the final-fit protocol takes the last epoch rather than the best, so
that noise goes straight into the shipped model. Averaging the weights of the last few hundred
steps smooths it. The decay ramps up as ``(1 + n) / (10 + n)`` after ``n`` updates until it
reaches ``DECAY`` (TensorFlow's ``ExponentialMovingAverage`` with ``num_updates``), so early
averages are not dominated by the initial weights. BatchNorm's running statistics are averaged
with the weights, which keeps them consistent with the averaged weights.
"""

from __future__ import annotations

import torch
from torch.optim.swa_utils import AveragedModel


def build_ema(model: torch.nn.Module, decay: float) -> AveragedModel | None:
    """An averaged copy of ``model`` (PyTorch's AveragedModel), or None when ``decay`` is 0."""
    if not decay:
        return None

    def average(
        averaged: list[torch.Tensor], current: list[torch.Tensor], count: torch.Tensor
    ) -> None:
        rate = min(decay, (1.0 + float(count)) / (10.0 + float(count)))
        for mean, value in zip(averaged, current, strict=True):
            if mean.is_floating_point():
                mean.lerp_(value, 1.0 - rate)
            else:  # counters (BatchNorm's num_batches_tracked) follow the model
                mean.copy_(value)

    return AveragedModel(model, multi_avg_fn=average, use_buffers=True)


def restore_ema(ema: AveragedModel, weights: dict[str, torch.Tensor], updates: int) -> None:
    """Put a resumed run's average back: its weights and how many updates it has taken."""
    ema.module.load_state_dict(weights)
    ema.n_averaged.fill_(updates)
