"""The training run, epoch by epoch: train, validate, checkpoints, pictures (the run's state and
how it is built: :mod:`edgeseg.train.state`).

Every epoch writes ``last.pt`` (with what ``--resume`` needs: optimizer, scheduler, epoch, RNG
states, history) and, when validation mIoU improves, ``best.pt``; both are renamed into place,
so a killed run never leaves a broken file. Shuffling and augmentation draw from generators
seeded by (seed, epoch), which is why a resumed run continues exactly as an uninterrupted one.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from edgeseg.card import ModelCard
from edgeseg.errors import EdgesegError
from edgeseg.files import atomic_write_bytes
from edgeseg.metrics import to_jsonable
from edgeseg.train import distributed as dist_utils
from edgeseg.train.config import TrainConfig
from edgeseg.train.ema import restore_ema
from edgeseg.train.outputs import (
    RUN_FILES,
    TensorBoard,
    final_pictures,
    restore_rng_state,
    rng_state,
    write_history,
)
from edgeseg.train.progress import start_line, time_left
from edgeseg.train.state import TrainState, prepare

if TYPE_CHECKING:
    from edgeseg.data import SegmentationDataset


@dataclass
class TrainResult:
    """What a finished run leaves: its folder, the best validation mIoU and its epoch."""

    out: Path
    best_miou: float
    best_epoch: int
    history: list[dict[str, Any]]
    card: ModelCard


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
