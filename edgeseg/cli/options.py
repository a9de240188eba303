"""Option decorators shared by several commands, and parsers for compact values."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from edgeseg.errors import EdgesegError


def parse_hw(text: str | None) -> list[int] | None:
    """``"360x480"`` -> [360, 480] (height x width)."""
    if text is None:
        return None
    parts = text.lower().replace(",", "x").split("x")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        values = []
    if len(values) != 2 or min(values) < 1:
        raise EdgesegError(f"size {text!r} must be HEIGHTxWIDTH in pixels, e.g. 360x480")
    return values


def data_option(required: bool = True) -> Callable[[Any], Any]:
    return click.option(
        "--data",
        "data",
        type=click.Path(file_okay=False),
        required=required,
        help="Dataset root: CamVid layout (train/, trainannot/, ...) or a folder with "
        "dataset.yaml.",
    )
