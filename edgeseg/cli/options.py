"""Option decorators shared by several commands, and parsers for compact values."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click

from edgeseg.errors import EdgesegError
from edgeseg.outputs import Inputs


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


def device_option(default: str | None = "auto") -> Callable[[Any], Any]:
    """``--device``, one rule for every command that runs PyTorch (train, eval).

    ``default=None`` leaves the value unset, for a command whose ``--config`` file may set it
    (the help still shows the default that then applies, auto)."""
    from edgeseg.torch_device import DEVICE_HELP

    return click.option("--device", default=default, help=f"{DEVICE_HELP}  [default: auto]")


def exist_ok_option() -> Callable[[Any], Any]:
    return click.option(
        "--exist-ok",
        is_flag=True,
        help="Write into --out even when it holds an earlier run (its files are replaced).",
    )


@contextlib.contextmanager
def run_folder(
    wanted: str | Path,
    markers: tuple[str, ...],
    exist_ok: bool,
    create: bool = True,
    inputs: Inputs = (),
    writes: tuple[str, ...] = (),
) -> Iterator[Path]:
    """The folder a run writes to (:func:`edgeseg.run_dirs.claim_run_dir`: the next free name
    when ``wanted`` holds a run), said on stderr when it is not ``wanted``. A folder made here
    is removed again when the command fails before writing into it.

    First, before anything is made: the folder and the files ``writes`` names in it (the
    markers too) may not overwrite ``inputs`` (:func:`edgeseg.outputs.check_outputs`)."""
    from edgeseg.outputs import check_outputs
    from edgeseg.run_dirs import claim_run_dir

    check_outputs(inputs, {}, {"--out": (wanted, (*markers, *writes))})
    wanted = Path(wanted)
    made = not wanted.exists()
    folder = claim_run_dir(wanted, markers, exist_ok, create=create)
    made = create and (made or folder != wanted)
    if create and folder != wanted:
        click.echo(
            f"edgeseg: {wanted} holds an earlier run; this one writes to {folder} "
            "(--exist-ok writes into the given folder)",
            err=True,
        )
    try:
        yield folder
    except BaseException:
        if made:
            with contextlib.suppress(OSError):  # only an empty folder goes
                folder.rmdir()
        raise
