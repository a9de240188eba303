"""The training run: data, model, optimiser, epochs, validation, checkpoints and pictures.

Every epoch writes ``last.pt`` (with what ``--resume`` needs: optimizer, scheduler, epoch, RNG
states, history) and, when validation mIoU improves, ``best.pt``; both are renamed into place,
so a killed run never leaves a broken file. Shuffling and augmentation draw from generators
seeded by (seed, epoch), which is why a resumed run continues exactly as an uninterrupted one.
"""

from __future__ import annotations

import json
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from edgeseg.card import ModelCard
from edgeseg.errors import EdgesegError
from edgeseg.files import atomic_write_bytes
from edgeseg.metrics import to_jsonable
from edgeseg.torch_device import resolve_device
from edgeseg.train import distributed as dist_utils
from edgeseg.train.config import TrainConfig
from edgeseg.train.ema import build_ema, restore_ema
from edgeseg.train.optim import build_optimizer, build_scheduler
from edgeseg.train.outputs import (
    RUN_FILES,
    TensorBoard,
    final_pictures,
    restore_rng_state,
    rng_state,
    write_history,
)
from edgeseg.train.progress import start_line, time_left
from edgeseg.train.starts import init_weights, train_samples_of

if TYPE_CHECKING:
    from torch.optim.swa_utils import AveragedModel

    from edgeseg.data import AugmentConfig, DatasetSpec, Sample, SegmentationDataset
    from edgeseg.evaluate import EvalSet


@dataclass
class TrainResult:
    """What a finished run leaves: its folder, the best validation mIoU and its epoch."""

    out: Path
    best_miou: float
    best_epoch: int
    history: list[dict[str, Any]]
    card: ModelCard


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


def train(
    config: TrainConfig,
    resume_from: dict[str, Any] | None = None,
    command: str = "",
    stop_after_epoch: int | None = None,
) -> TrainResult:
    """Run the training ``config`` describes, or continue it from a ``last.pt`` payload.

    ``stop_after_epoch`` ends the run early, exactly as if it were killed after that epoch's
    checkpoint (time-boxed jobs; the resume test): the schedule still spans ``config.epochs``.

    ``resume_from`` is :func:`edgeseg.checkpoint.read_checkpoint` of a run's ``last.pt``; its
    config comes from :func:`edgeseg.train.config.config_from_checkpoint`.
    """
    state = prepare(config, command, resume_from)
    if resume_from is not None:
        resume(state, resume_from)
        _without_best(state)
    if state.start_epoch > config.epochs:
        raise EdgesegError(
            f"the checkpoint already finished epoch {state.start_epoch - 1} of {config.epochs}; "
            "pass a larger --epochs to train further"
        )
    if state.world > 1:
        state.train_model = torch.nn.parallel.DistributedDataParallel(
            state.model,
            device_ids=[torch.device(state.device).index]
            if state.device.startswith("cuda")
            else None,
        )
    if state.main_rank:
        state.out.mkdir(parents=True, exist_ok=True)
        _remove_orphans(state.out)
        atomic_write_bytes(state.out / "config.yaml", config.to_yaml().encode())
        state.board = TensorBoard(state.out / "tensorboard")
        tqdm.write(
            start_line(
                config,
                state.card,
                state.spec,
                (len(state.train_set), len(state.val_set.images)),
                state.steps_per_epoch,
                state.start_epoch,
                state.device,
            )
        )

    last_epoch = config.epochs if stop_after_epoch is None else min(config.epochs, stop_after_epoch)
    for epoch in range(state.start_epoch, last_epoch + 1):
        save_epoch(state, *run_epoch(state, epoch))

    if state.main_rank:
        final_pictures(state.out, state.history, state.val_set, state.card, config, state.device)
    dist_utils.teardown()
    return TrainResult(state.out, state.best_miou, state.best_epoch, state.history, state.card)


def _remove_orphans(out: Path) -> None:
    """Delete the temporary files a killed run left behind (``.last.pt.XXXX.tmp``): the folder
    is this run's (edgeseg.run_dirs), so no other process is writing them."""
    from edgeseg.files import orphan_temp_files

    orphans = orphan_temp_files(out, list(RUN_FILES))
    for path in orphans:
        path.unlink(missing_ok=True)
    if orphans:
        tqdm.write(f"removed {len(orphans)} temporary file(s) a killed run left in {out}")


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


def _without_best(state: TrainState) -> None:
    """A ``last.pt`` resumed without its run's ``best.pt`` beside it (copied alone): the best
    is then the best of the resumed epochs, said on stderr, so the run ends with a best.pt."""
    if state.best_epoch and not (state.out / "best.pt").is_file():
        tqdm.write(
            f"edgeseg: no best.pt of epoch {state.best_epoch} in {state.out}; best.pt will be "
            "the best of the epochs trained now",
            file=sys.stderr,
        )
        state.best_miou, state.best_epoch = float("-inf"), 0


def resume(state: TrainState, payload: dict[str, Any]) -> None:
    """Restore weights, optimiser, schedule, scaler, history and RNG states from ``last.pt``."""
    # With --ema, "model" holds the average and "trained_model" the weights being trained.
    state.model.load_state_dict(payload.get("trained_model", payload["model"]))
    if state.ema is not None:
        restore_ema(state.ema, payload["model"], int(payload["ema_updates"]))
    state.optimizer.load_state_dict(payload["optimizer"])
    state.scheduler.load_state_dict(payload["scheduler"])
    # The optimizer state holds the lr of the saved run's last step; recompute it from the
    # schedule, which may span a different --epochs now.
    scheduler = state.scheduler
    for group, base, factor in zip(
        state.optimizer.param_groups, scheduler.base_lrs, scheduler.lr_lambdas, strict=True
    ):
        group["lr"] = base * factor(scheduler.last_epoch)
    state.scaler.load_state_dict(payload["scaler"])
    state.start_epoch = int(payload["epoch"]) + 1
    state.best_miou, state.best_epoch = float(payload["best_miou"]), int(payload["best_epoch"])
    state.history = list(payload["history"])
    restore_rng_state(payload["rng"])


def run_epoch(state: TrainState, epoch: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """Train one epoch and validate; returns (the epoch's history record, its val metrics)."""
    from edgeseg.evaluate import evaluate_predictor, torch_predictor

    config = state.config
    started = time.perf_counter()
    loader = _epoch_loader(state.train_set, config, epoch, state.world)
    train_loss = _train_epoch(state, loader, epoch)
    state.evaluated.eval()
    metrics, _, _ = evaluate_predictor(
        state.val_set,
        state.card,
        torch_predictor(state.evaluated, state.device),
        config.batch_size,
        progress=state.main_rank,
    )
    record = {
        "epoch": epoch,
        "train_loss": dist_utils.mean_across_ranks(train_loss),
        "lr": state.optimizer.param_groups[0]["lr"],
        **{
            k: metrics[k]
            for k in ("miou", "pixel_accuracy", "class_accuracy", "fwiou", "mean_dice")
        },
        "seconds": round(time.perf_counter() - started, 2),
        "per_class": metrics["per_class"],
    }
    state.history.append(record)
    return record, metrics


def save_epoch(state: TrainState, record: dict[str, Any], metrics: dict[str, Any]) -> None:
    """Write ``last.pt`` (and ``best.pt`` when val mIoU improved), metrics, curves; log a line."""
    from edgeseg.checkpoint import save_checkpoint
    from edgeseg.plots import plot_training_curves

    epoch, config = record["epoch"], state.config
    improved = record["miou"] > state.best_miou
    if improved:
        state.best_miou, state.best_epoch = record["miou"], epoch
    if not state.main_rank:
        return
    extra = {
        "optimizer": state.optimizer.state_dict(),
        "scheduler": state.scheduler.state_dict(),
        "scaler": state.scaler.state_dict(),
        "epoch": epoch,
        "best_miou": state.best_miou,
        "best_epoch": state.best_epoch,
        "history": state.history,
        "rng": rng_state(),
        "config": config.to_dict(),
        "class_weights": [float(w) for w in state.class_weights],
    }
    if state.ema is not None:
        extra["trained_model"] = {k: v.detach().cpu() for k, v in state.model.state_dict().items()}
        extra["ema_updates"] = int(state.ema.n_averaged)
    state.card = save_checkpoint(state.out / "last.pt", state.evaluated, state.card, extra)
    if improved:
        save_checkpoint(
            state.out / "best.pt",
            state.evaluated,
            state.card,
            {"epoch": epoch, "metrics": to_jsonable(metrics), "config": config.to_dict()},
        )
    write_history(state.out, state.history)
    plot_training_curves(state.history, state.out / "curves.png")  # every epoch: kills lose nothing
    if state.board is not None:
        state.board.log(record)
    state.epoch_seconds.append(record["seconds"])
    tqdm.write(
        f"epoch {epoch}/{config.epochs}  loss {record['train_loss']:.4f}  "
        f"val mIoU {record['miou']:.4f}  pixel acc {record['pixel_accuracy']:.4f}  "
        f"({record['seconds']:.0f} s, {time_left(state.epoch_seconds, config.epochs - epoch)})"
        f"{'  best' if improved else ''}"
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


def _epoch_loader(
    dataset: SegmentationDataset, config: TrainConfig, epoch: int, world: int
) -> DataLoader:
    """A loader whose order and augmentation depend only on (seed, epoch, rank)."""
    generator = torch.Generator()
    generator.manual_seed(config.seed * 100_003 + epoch)
    sampler = None
    if world > 1:
        from torch.utils.data.distributed import DistributedSampler

        sampler = DistributedSampler(dataset, shuffle=True, seed=config.seed, drop_last=True)
        sampler.set_epoch(epoch)
    return DataLoader(
        dataset,
        batch_size=config.batch_size,
        shuffle=sampler is None,
        sampler=sampler,
        drop_last=True,
        num_workers=config.workers,
        generator=generator,
        pin_memory=torch.cuda.is_available(),
        persistent_workers=False,
    )


def _train_epoch(state: TrainState, loader: DataLoader, epoch: int) -> float:
    """One pass over ``loader``; returns the mean training loss."""
    config, device = state.config, state.device
    state.train_model.train()
    use_cuda = device.startswith("cuda")
    total, count = 0.0, 0
    bar = tqdm(
        loader, desc=f"epoch {epoch}/{config.epochs}", disable=not state.main_rank, leave=False
    )
    for images, masks in bar:
        images = images.to(device, non_blocking=True)
        masks = masks.to(device, non_blocking=True)
        if use_cuda and config.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with torch.autocast("cuda", dtype=torch.float16, enabled=use_cuda and config.amp):
            loss = state.criterion(state.train_model(images), masks)
        if not torch.isfinite(loss):
            raise EdgesegError(
                f"training diverged: the loss became {loss.item()} at epoch {epoch} (learning "
                f"rate {config.learning_rate:g}); lower --lr, or try --no-amp"
            )
        state.optimizer.zero_grad(set_to_none=True)
        state.scaler.scale(loss).backward()
        state.scaler.step(state.optimizer)
        state.scaler.update()
        state.scheduler.step()
        if state.ema is not None:
            state.ema.update_parameters(state.model)
        total += float(loss.detach())
        count += 1
        bar.set_postfix(loss=f"{total / count:.4f}")
    return total / max(1, count)
