"""The one check every command makes before it writes: no output may destroy an input or
another output.

``run``, ``eval``, ``train``, ``export``, ``bench`` and ``demo`` (and the library functions behind
them) describe what they read and what they will write, and call :func:`check_outputs` before the
first slow step. Refused, each in one line naming both paths:

- two outputs on one path (``eval --json X --confusion X``), except special files that are
  written in place and lose nothing (``/dev/null`` twice);
- an output on an input file (``eval m.onnx --json m.onnx``, ``--stats`` onto the model, a
  compared model named by ``--json``);
- an output inside an input folder (``--json`` onto a dataset image, ``train --out DATA/val``, a
  run's ``--save-masks`` inside the image folder it reads);
- an output folder holding an input under a name the command writes (``train --out runs/a
  --vgg-weights runs/a/best.pt``).

Paths are compared resolved (``..`` and symbolic links followed), so ``./a/../m.onnx`` is
``m.onnx``. How the files are then written (atomically, or in place for a device, a FIFO or
``-``) is :mod:`edgeseg.files`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from edgeseg.errors import EdgesegError
from edgeseg.files import STDOUT, special_kind

PathLike = str | os.PathLike[str]


def _resolved(path: PathLike) -> Path:
    # os.path.realpath, not Path.resolve: a symbolic link loop raises RuntimeError there (3.11).
    return Path(os.path.realpath(Path(path).expanduser()))


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _outputs(outputs: Mapping[str, PathLike | None]) -> dict[str, Path]:
    """The outputs that are real paths (``-`` is standard output, nothing on disk)."""
    return {
        option: _resolved(path)
        for option, path in outputs.items()
        if path is not None and str(path) != STDOUT
    }


Inputs = Mapping[str, PathLike | None] | Iterable[tuple[str, PathLike | None]]


def check_outputs(
    inputs: Inputs,
    outputs: Mapping[str, PathLike | None],
    folders: Mapping[str, tuple[PathLike, Iterable[str]]] | None = None,
) -> None:
    """Raise EdgesegError when an output would overwrite an input or another output.

    ``inputs``: what the command reads, as (how the message names it: ``"the model"``,
    ``"--data"``) -> a file or a folder (None: not given), a mapping or pairs (a source of many
    images repeats its label); a folder protects everything in it.
    ``outputs``: option -> the file it writes. ``folders``: option -> (a folder the command
    writes, the names it writes there), as ``train --out`` writes ``best.pt``, ``last.pt``...
    """
    pairs = list(inputs.items() if isinstance(inputs, Mapping) else inputs)
    read = [(label, _resolved(p)) for label, p in pairs if p is not None and str(p) != STDOUT]
    files = _outputs(outputs)
    for option, (folder, names) in (folders or {}).items():
        root = _resolved(folder)
        _check_one(option, root, read, folder_output=True)
        for name in names:
            files[f"{option} ({name})"] = root / name
    _check_pairs(files)
    for option, path in files.items():
        _check_one(option, path, read, folder_output=False)


def _check_pairs(files: dict[str, Path]) -> None:
    options = list(files)
    for i, first in enumerate(options):
        for second in options[i + 1 :]:
            same = files[first] == files[second]
            if same and special_kind(files[first]) is None:
                raise EdgesegError(
                    f"{first} and {second} are the same path ({files[first]}); give each "
                    "output its own path"
                )


def _check_one(option: str, path: Path, read: list[tuple[str, Path]], folder_output: bool) -> None:
    if special_kind(path) is not None:
        return  # written in place: a device or a FIFO holds nothing to lose
    for label, source in read:
        if source.is_dir():
            if _inside(path, source):
                raise EdgesegError(
                    f"{option} {path} is inside {label} {source}: outputs would mix with or "
                    "overwrite the inputs; choose a path outside it"
                )
        elif path == source:
            raise EdgesegError(
                f"{option} {path} is {label}, which it would overwrite; choose another path"
            )
