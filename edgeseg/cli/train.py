"""``edgeseg train``: train a SegNet on a dataset, or resume a run."""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

import click

from edgeseg.cli.options import data_option, exist_ok_option, parse_hw, run_folder
from edgeseg.train.config import BALANCING, LOSSES, OPTIMIZERS, SCHEDULES


@click.command("train")
@data_option(required=False)
@click.option("--model", help="Architecture: segnet or segnet-basic.  [default: segnet]")
@click.option("--width", type=float, help="Channel width multiplier for segnet (e.g. 0.25).")
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
    help="YAML file of training options; flags override it.",
)
@click.option("--epochs", type=int)
@click.option("--batch-size", type=int)
@click.option(
    "--input-size", "input_size", help="Network input HEIGHTxWIDTH (default: image size)."
)
@click.option("--optimizer", type=click.Choice(OPTIMIZERS))
@click.option("--lr", type=float, help="Base learning rate (default: SGD 0.01, AdamW 0.001).")
@click.option("--schedule", type=click.Choice(SCHEDULES))
@click.option("--loss", type=click.Choice(LOSSES))
@click.option("--class-balance", type=click.Choice(BALANCING))
@click.option(
    "--vgg-weights",
    type=click.Path(dir_okay=False),
    help="torchvision VGG16-BN ImageNet weights file to initialise the encoder.",
)
@click.option("--device", help="auto, cpu, cuda or cuda:N.  [default: auto]")
@click.option("--workers", type=int, help="Data-loading processes.")
@click.option("--seed", type=int)
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
      edgeseg train --data ../shared/datasets/camvid --model segnet --epochs 100 --out runs/camvid
      edgeseg train --data ../shared/datasets/camvid --width 0.25 --input-size 180x240 --epochs 30
      edgeseg train --resume runs/camvid/last.pt --epochs 120

    A run never overwrites another: --out naming a folder that holds a run writes to the next
    free name (runs/camvid2), unless --exist-ok. --resume writes beside the checkpoint it
    resumes, unless --out says otherwise.
    """
    from edgeseg.checkpoint import read_checkpoint
    from edgeseg.errors import EdgesegError
    from edgeseg.metrics import format_table
    from edgeseg.train.config import config_from_checkpoint, load_config
    from edgeseg.train.loop import RUN_MARKERS, train

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
    with run_folder(config.out, RUN_MARKERS, exist_ok or resuming_here, create=main_rank) as folder:
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
