"""What a training run holds between epochs (:class:`TrainState`) and how it is built from a
config (:func:`prepare`): data, class weights, model, loss, optimiser, schedule, card.

Separate from :mod:`edgeseg.train.loop`, which advances a state epoch by epoch, so each reads on
its own: building a run is where its inputs are checked, running it is where time goes.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from edgeseg.card import ModelCard
from edgeseg.errors import EdgesegError
from edgeseg.files import atomic_write_bytes
from edgeseg.torch_device import resolve_device
from edgeseg.train import distributed as dist_utils
from edgeseg.train.config import TrainConfig
from edgeseg.train.ema import build_ema
from edgeseg.train.optim import build_optimizer, build_scheduler
from edgeseg.train.outputs import TensorBoard
from edgeseg.train.starts import init_weights, train_samples_of

if TYPE_CHECKING:
    from torch.optim.swa_utils import AveragedModel

    from edgeseg.data import AugmentConfig, DatasetSpec, Sample, SegmentationDataset
    from edgeseg.evaluate import EvalSet


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def build_card(
    config: TrainConfig, spec: DatasetSpec, input_hw: tuple[int, int], command: str
) -> ModelCard:
    return ModelCard(
        architecture=config.model,
        num_classes=spec.num_classes,
        class_names=tuple(spec.class_names),
        palette=tuple(tuple(c) for c in spec.palette),
        input_hw=input_hw,
        mean=tuple(config.mean),
        std=tuple(config.std),
        arch_args=dict(config.model_options),
        ignore_index=spec.ignore_index,
        dataset=spec.name,
        license=getattr(spec, "license", ""),
        training_command=command,
    )


@dataclass
class TrainState:
    """Everything one training run holds between epochs: built by :func:`prepare`, advanced by
    :func:`run_epoch` and :func:`save_epoch`, restored from a ``last.pt`` by :func:`resume`."""

    config: TrainConfig
    out: Path
    device: str
    main_rank: bool
    world: int
    card: ModelCard
    model: torch.nn.Module
    train_model: torch.nn.Module  # the model, or its DistributedDataParallel wrapper
    criterion: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    train_set: SegmentationDataset
    val_set: EvalSet
    class_weights: np.ndarray
    spec: DatasetSpec
    steps_per_epoch: int
    #: The weights' moving average (``--ema``), or None.
    ema: AveragedModel | None = None
    start_epoch: int = 1
    best_miou: float = -1.0
    best_epoch: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    board: TensorBoard | None = None
    #: Durations of the epochs this process ran (for the time-left estimate).
    epoch_seconds: list[float] = field(default_factory=list)

    @property
    def evaluated(self) -> torch.nn.Module:
        """The weights a run validates and saves as ``model``: the average with ``--ema``."""
        return self.ema.module if self.ema is not None else self.model


def prepare(config: TrainConfig, command: str, payload: dict[str, Any] | None) -> TrainState:
    """Data, model, loss, optimiser and schedule for ``config``, at epoch 1.

    ``payload`` (a ``last.pt`` being resumed) only supplies the class weights and how the run
    began; :func:`resume` restores the rest. Raises EdgesegError for data that cannot train.
    """
    from edgeseg.data import SegmentationDataset, load_split, validate_samples
    from edgeseg.evaluate import load_eval_set
    from edgeseg.models import create_model
    from edgeseg.train.losses import build_loss

    config.validate()
    device = dist_utils.setup(resolve_device(config.device))
    main_rank = dist_utils.is_main()
    seed_everything(config.seed)
    out = Path(config.out)

    spec, train_samples = train_samples_of(config)
    _, val_samples = load_split(config.data, config.val_split, seed=config.seed)
    train_samples = train_samples[: config.limit_train] if config.limit_train else train_samples
    val_samples = val_samples[: config.limit_val] if config.limit_val else val_samples
    validate_samples(train_samples, spec)
    validate_samples(val_samples, spec)

    if config.input_hw is None:
        from edgeseg.data import read_image

        config.input_hw = list(read_image(train_samples[0].image).shape[:2])
    input_hw = (int(config.input_hw[0]), int(config.input_hw[1]))
    if payload is not None and command:
        # A resumed run's card keeps how it began: the resume line alone cannot rebuild it.
        began = str(payload.get("card", {}).get("training_command", ""))
        if began:
            command = f"{began}; resumed with: {command}"
    card = build_card(config, spec, input_hw, command)

    model = create_model(
        config.model, spec.num_classes, vgg_weights=config.vgg_weights, **config.model_options
    )
    if config.init and payload is None:  # a resumed run restores its own weights
        init_weights(model, config.init)
    model = model.to(device)
    use_cuda = device.startswith("cuda")
    if use_cuda and config.channels_last:
        model = model.to(memory_format=torch.channels_last)

    weights = _class_weights(config, spec, train_samples, out, main_rank, payload)
    criterion = build_loss(
        config.loss,
        spec.num_classes,
        class_weights=torch.as_tensor(weights, device=device),
        ignore_index=spec.ignore_index,
        focal_gamma=config.focal_gamma,
        dice_weight=config.dice_weight,
        ohem_threshold=config.ohem_threshold,
        ohem_min_fraction=config.ohem_min_fraction,
    )
    train_set = SegmentationDataset(
        train_samples, spec, card, train=True, augment=_augment(config), cache=config.cache_images
    )
    world = dist_utils.world_size()
    steps_per_epoch = len(train_set) // (config.batch_size * world)
    if steps_per_epoch < 1:
        raise EdgesegError(
            f"{len(train_set)} training images are fewer than one batch of {config.batch_size}"
            f"{f' x {world} processes' if world > 1 else ''}; lower --batch-size"
        )
    optimizer = build_optimizer(model, config)
    return TrainState(
        config=config,
        out=out,
        device=device,
        main_rank=main_rank,
        world=world,
        card=card,
        model=model,
        train_model=model,
        criterion=criterion,
        optimizer=optimizer,
        scheduler=build_scheduler(optimizer, config, steps_per_epoch),
        scaler=torch.amp.GradScaler("cuda", enabled=use_cuda and config.amp),
        train_set=train_set,
        val_set=load_eval_set(val_samples, spec, progress=main_rank),
        class_weights=weights,
        spec=spec,
        steps_per_epoch=steps_per_epoch,
        ema=build_ema(model, config.ema),
    )


def _augment(config: TrainConfig) -> AugmentConfig:
    from edgeseg.data import AugmentConfig

    return AugmentConfig(
        scale_min=config.scale_min,
        scale_max=config.scale_max,
        hflip=config.hflip,
        brightness=config.color_jitter,
        contrast=config.color_jitter,
        saturation=config.color_jitter,
        hue=config.color_jitter / 10,
    )


def _class_weights(
    config: TrainConfig,
    spec: DatasetSpec,
    samples: list[Sample],
    out: Path,
    main_rank: bool,
    payload: dict[str, Any] | None,
) -> np.ndarray:
    """Class weights from the training masks (stored in the checkpoint, so resume reuses them)."""
    from edgeseg.train.balance import class_pixel_stats, class_weights

    if payload is not None and "class_weights" in payload:
        return np.asarray(payload["class_weights"], dtype=np.float32)
    if config.class_balance == "none":
        weights = np.ones(spec.num_classes, dtype=np.float32)
    else:
        counts, present = class_pixel_stats(samples, spec, progress=main_rank)
        weights = class_weights(config.class_balance, counts, present)
    if main_rank:
        table = {
            name: round(float(w), 4) for name, w in zip(spec.class_names, weights, strict=True)
        }
        atomic_write_bytes(out / "class_weights.json", json.dumps(table, indent=1).encode())
    return weights
