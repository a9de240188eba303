"""``edgeseg train``: train a SegNet on a dataset, or resume a run."""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

import click

from edgeseg.cli.options import data_option, device_option, exist_ok_option, parse_hw, run_folder
from edgeseg.train.config import (
    BALANCING,
    DEFAULT_INPUT_HW,
    DEFAULT_LR,
    DEFAULT_WIDTH,
    LOSSES,
    OPTIMIZERS,
    SCHEDULES,
    TrainConfig,
)

#: The defaults the help states (flags left unset fall back to --config, then to these).
DEFAULTS = TrainConfig()


@click.command("train")
@data_option(required=False)
@click.option("--model", help=f"Architecture: segnet or segnet-basic.  [default: {DEFAULTS.model}]")
@click.option(
    "--width",
    type=float,
    help="Channel width multiplier for segnet: 1 is the paper's SegNet, 0.25 has 1/16 of its "
    f"compute.  [default: {DEFAULT_WIDTH}]",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    help="Output folder; one that holds a run is left alone and the next free name is used "
    "(runs/train -> runs/train2).  [default: runs/train; with --resume: the checkpoint's folder]",
)
@exist_ok_option()
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    help="YAML file of training options (the keys of a run's config.yaml); flags override it.",
)
@click.option("--epochs", type=click.IntRange(min=1), help=f"Epochs.  [default: {DEFAULTS.epochs}]")
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    help=f"Images per step.  [default: {DEFAULTS.batch_size}]",
)
@click.option(
    "--input-size",
    "input_size",
    help="Network input HEIGHTxWIDTH; training crops are resized to it.  "
    f"[default: {'x'.join(map(str, DEFAULT_INPUT_HW))}]",
)
@click.option(
    "--optimizer",
    type=click.Choice(OPTIMIZERS),
    help=f"sgd (momentum 0.9, the paper's) or adamw.  [default: {DEFAULTS.optimizer}]",
)
@click.option(
    "--lr",
    type=float,
    help="Base learning rate.  [default: "
    + ", ".join(f"{name} {lr:g}" for name, lr in DEFAULT_LR.items())
    + "]",
)
@click.option(
    "--schedule",
    type=click.Choice(SCHEDULES),
    help="Learning-rate schedule after one warm-up epoch: poly (power 0.9) or cosine, per step."
    f"  [default: {DEFAULTS.schedule}]",
)
@click.option(
    "--loss",
    type=click.Choice(LOSSES),
    help="ce; ohem (hardest pixels); focal; dice; ce+dice (thin structures such as cracks).  "
    f"[default: {DEFAULTS.loss}]",
)
@click.option(
    "--class-balance",
    type=click.Choice(BALANCING),
    help="Class weights of the loss from the training masks: median frequency, its square "
    f"root, inverse frequency, or none.  [default: {DEFAULTS.class_balance}]",
)
@click.option(
    "--vgg-weights",
    type=click.Path(dir_okay=False),
    help="torchvision VGG16-BN ImageNet weights file to initialise the encoder (--width 1).",
)
@click.option(
    "--init",
    type=click.Path(dir_okay=False),
    help="Start from this checkpoint's weights (fine-tuning; same --model, --width and classes).",
)
@click.option(
    "--train-split",
    help="Split(s) to train on, '+'-joined: train+val is the final fit of a recipe chosen on val "
    "(then take last.pt).  [default: train]",
)
@click.option(
    "--ema",
    type=float,
    help="Validate, save and export an exponential moving average of the weights with this "
    "decay (0.99 averages about the last 100 steps; 0: off).  [default: 0]",
)
@device_option(default=None)
@click.option(
    "--workers",
    type=click.IntRange(min=0),
    help=f"Data-loading processes (0: in the main process).  [default: {DEFAULTS.workers}]",
)
@click.option(
    "--seed", type=int, help=f"Seed of shuffling and augmentation.  [default: {DEFAULTS.seed}]"
)
@click.option("--limit-train", type=int, help="Use only the first N training images.")
@click.option("--limit-val", type=int, help="Use only the first N validation images.")
@click.option("--amp/--no-amp", default=None, help="Mixed precision on CUDA.  [default: on]")
@click.option(
    "--resume",
    type=click.Path(dir_okay=False),
    help="Continue a run from its last.pt (its config; --epochs may extend it).",
)
def train_command(
    config_path: str | None,
    resume: str | None,
    width: float | None,
    input_size: str | None,
    exist_ok: bool,
    **flags: object,
) -> None:
    """Train a SegNet and write checkpoints, metrics, curves and a prediction collage.

    \b
    Examples:
      edgeseg train --data ../shared/datasets/camvid --epochs 3 --out runs/camvid-short
      edgeseg train --data ../shared/datasets/camvid --out runs/camvid
      edgeseg train --resume runs/camvid/last.pt --epochs 120

    The defaults are v2's recipe, the from-scratch stage of the bundled model (docs/training.md):
    SegNet width 0.25 at 180x240, AdamW 2e-3, cosine, batch 8, sqrt-median class balance, 100
    epochs.

    A run never overwrites another: --out naming a folder that holds a run writes to the next
    free name (runs/camvid2), unless --exist-ok. --resume writes beside the checkpoint it
    resumes, unless --out says otherwise.
    """
    from edgeseg.checkpoint import read_checkpoint
    from edgeseg.errors import EdgesegError
    from edgeseg.metrics import format_table
    from edgeseg.train.config import config_from_checkpoint, load_config
    from edgeseg.train.loop import train
    from edgeseg.train.outputs import RUN_FILES, RUN_MARKERS

    command = "edgeseg " + shlex.join(sys.argv[1:])
    payload = None
    if resume:
        given = [k for k, v in flags.items() if v is not None and k not in ("epochs", "out")]
        if given or config_path or width is not None or input_size:
            raise EdgesegError(
                "--resume takes the run's own config; only --epochs, --out and --exist-ok "
                "may be given"
            )
        payload = read_checkpoint(resume)
        config = config_from_checkpoint(payload, flags.get("epochs"))  # type: ignore[arg-type]
        config.out = str(flags.get("out") or Path(resume).parent)
    else:
        options = {"width": width} if width is not None else None
        config = load_config(
            config_path, input_hw=parse_hw(input_size), model_options=options, **flags
        )
    resuming_here = resume is not None and (
        Path(config.out).resolve() == Path(resume).parent.resolve()
    )
    main_rank = os.environ.get("RANK", "0") == "0"  # under torchrun, rank 0 alone writes
    inputs = {
        "--data": config.data,
        "--vgg-weights": config.vgg_weights,
        "--init": config.init,
        "--config": config_path,
    }
    claim = {"create": main_rank, "inputs": inputs, "writes": RUN_FILES}
    with run_folder(config.out, RUN_MARKERS, exist_ok or resuming_here, **claim) as folder:
        if main_rank and resume is not None:
            click.echo(f"edgeseg: resuming into {folder}", err=True)
        config.out = str(folder)
        result = train(config, resume_from=payload, command=command)
    best = result.history[result.best_epoch - 1] if result.best_epoch else None
    if best is not None:
        click.echo(f"best val mIoU {result.best_miou:.4f} at epoch {result.best_epoch}")
        click.echo(format_table(best))
    click.echo(
        f"outputs in {result.out}/ (best.pt, last.pt, metrics.csv, curves.png, "
        "collage.png, confusion.png)"
    )
