"""What a training run starts from besides its config: the samples of its training split(s) and,
for fine-tuning, another checkpoint's weights.

``--train-split train+val`` is the last step of the standard protocol for a test figure: the
recipe and the epoch count are chosen on train -> val, then the model is fitted on both with that
count, and ``last.pt`` (not a checkpoint picked on val) is the result.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import torch

from edgeseg.errors import EdgesegError
from edgeseg.train import distributed as dist_utils
from edgeseg.train.config import TrainConfig

if TYPE_CHECKING:
    from edgeseg.data import DatasetSpec, Sample


def train_samples_of(config: TrainConfig) -> tuple[DatasetSpec, list[Sample]]:
    """The samples of every split ``config.train_split`` joins with '+' (``train+val``)."""
    from edgeseg.data import load_split

    spec, samples = None, []
    for split in config.train_split.split("+"):
        spec, more = load_split(config.data, split.strip(), seed=config.seed)
        samples += more
    assert spec is not None  # str.split returns at least one part
    if config.val_split in config.train_split.split("+") and dist_utils.is_main():
        print(
            f"note: {config.val_split} is trained on, so its figures (and best.pt, chosen by "
            "them) measure nothing; take last.pt after the epochs chosen on a held-out split",
            file=sys.stderr,
        )
    return spec, samples


def init_weights(model: torch.nn.Module, path: str) -> None:
    """Start from ``path``'s weights (fine-tuning); one line when they do not fit the model."""
    from edgeseg.checkpoint import read_checkpoint

    try:
        model.load_state_dict(read_checkpoint(path)["model"])
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise EdgesegError(
            f"--init {path}: its weights do not fit {model.__class__.__name__} as configured "
            f"({first}); give the --model and --width it was trained with"
        ) from None
