"""``edgeseg card`` and the options ``edgeseg run`` shares with it for a segmentation ONNX that
edgeseg did not export (``--labels``, ``--colors``, ``--input-size``, ``--mean``, ``--std``,
``--input-layout``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from edgeseg.cli.options import parse_hw
from edgeseg.errors import EdgesegError

FOREIGN_FLAGS = ("labels", "colors", "input_size", "mean", "std", "input_layout")


def foreign_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options that describe a foreign segmentation ONNX (docs/runtime.md)."""
    decorators = [
        click.option(
            "--labels",
            type=click.Path(dir_okay=False),
            help="Class names, one per line, in the order of the model's output: runs a "
            "segmentation ONNX edgeseg did not export (no card inside).",
        ),
        click.option(
            "--colors",
            type=click.Path(dir_okay=False),
            help="Class colours, 'R G B' per line.  [default: distinct generated colours]",
        ),
        click.option(
            "--input-size",
            metavar="HxW",
            help="Network input size, for a model that takes any size.  [default: the graph's]",
        ),
        click.option(
            "--mean",
            metavar="R,G,B",
            help="Normalisation mean of 0..1 RGB.  [default: the graph's metadata, else "
            "ImageNet's]",
        ),
        click.option("--std", metavar="R,G,B", help="Normalisation std (as --mean)."),
        click.option(
            "--input-layout",
            type=click.Choice(("nchw", "nhwc")),
            help="Input layout.  [default: read from the input's shape]",
        ),
    ]
    for decorator in reversed(decorators):
        command = decorator(command)
    return command


def _triple(text: str | None, flag: str) -> tuple[float, float, float] | None:
    if text is None:
        return None
    try:
        values = tuple(float(v) for v in text.replace(" ", "").split(","))
    except ValueError:
        values = ()
    if len(values) != 3:
        raise EdgesegError(f"{flag} {text!r}: give three numbers, e.g. 0.485,0.456,0.406")
    return values  # type: ignore[return-value]


def foreign_model_options(options: dict[str, Any]) -> Any:
    """The ForeignModelOptions the flags give, or None without ``--labels`` (the others then
    have no model to describe and are refused)."""
    from edgeseg.foreign_onnx import ForeignModelOptions, read_colors, read_labels

    values = {key: options.pop(key, None) for key in FOREIGN_FLAGS}
    if values["labels"] is None:
        given = [f"--{k.replace('_', '-')}" for k, v in values.items() if v is not None]
        if given:
            raise EdgesegError(f"{', '.join(given)} describe a foreign ONNX: give --labels too")
        return None
    size = parse_hw(values["input_size"])
    return ForeignModelOptions(
        labels=read_labels(values["labels"]),
        colors=read_colors(values["colors"]) if values["colors"] else None,
        input_hw=(size[0], size[1]) if size else None,
        mean=_triple(values["mean"], "--mean"),
        std=_triple(values["std"], "--std"),
        layout=values["input_layout"],
    )


@click.command("card")
@click.option(
    "--model", "model", required=True, type=click.Path(dir_okay=False), help="Foreign ONNX file."
)
@foreign_options
@click.option(
    "--output",
    "output",
    type=click.Path(dir_okay=False),
    help="Where the carded copy goes.  [default: MODEL with .edgeseg.onnx]",
)
def card_command(model: str, output: str | None, **options: Any) -> None:
    """Write an edgeseg model card into a copy of a segmentation ONNX edgeseg did not export,
    so that edgeseg run takes it without options.

    The input layout and size, the output kind (scores or class map) and a mean/std in the
    graph's metadata are read from the graph; --labels (required), --colors, --input-size,
    --mean, --std and --input-layout give what it cannot say.

    \b
    Examples:
      edgeseg card --model deeplab.onnx --labels voc.txt --colors voc_colors.txt
      edgeseg card --model any_size.onnx --labels labels.txt --input-size 512x512 --output m.onnx
    """
    from edgeseg.apps.foreign_card import write_card

    foreign = foreign_model_options(options)
    if foreign is None:
        raise EdgesegError("give --labels: the class names, one per line")
    target = Path(output) if output else Path(model).with_suffix(".edgeseg.onnx")
    card = write_card(Path(model), foreign, target)
    click.echo(
        f"edgeseg: wrote {target}: {card.num_classes} classes, input {card.input_hw[0]}x"
        f"{card.input_hw[1]} {card.arch_args['input_layout'].upper()}, output {card.output}, "
        f"mean {card.mean} std {card.std}",
        err=True,
    )
