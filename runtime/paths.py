"""Outputs that would overwrite inputs or each other, refused before the first frame.

A run reads a model and a source and writes up to three outputs (``--output`` video or frames
folder, ``--save-masks`` folder, ``--stats`` file). Any of them on the same path as another, on
an input, or inside the folder an image source reads, would destroy data the user has, with exit
0; two input images that would give one output name would silently keep only the last. Each is
refused with one line naming the paths. Paths are compared resolved (``..`` and symbolic links
followed), so ``./a/../clip.mp4`` is ``clip.mp4``.
"""

from __future__ import annotations

import os
from pathlib import Path

from edgeseg.errors import EdgesegError
from edgeseg.outputs import check_outputs
from edgeseg.runtime.frames import FrameSource
from edgeseg.runtime.images import ImageFolderSource
from edgeseg.runtime.sources import VideoCaptureSource


def _resolved(path: str | os.PathLike[str]) -> Path:
    # os.path.realpath, not Path.resolve: a symbolic link loop raises RuntimeError there (3.11).
    return Path(os.path.realpath(Path(path).expanduser()))


def source_inputs(source: FrameSource) -> tuple[list[Path], list[Path]]:
    """(files, folders) a source reads: a video file, or the images and their folders."""
    source = getattr(source, "source", source)  # a PacedSource wraps one
    if isinstance(source, ImageFolderSource):
        files = [_resolved(p) for p in source.files]
        if len(files) == 1:  # one image: an output beside it overwrites nothing else
            return files, []
        return files, sorted({p.parent for p in files})
    if isinstance(source, VideoCaptureSource) and source.kind == "file":
        target = str(source.target)
        if "://" not in target:
            return [_resolved(target)], []
    return [], []


def check_run_paths(
    model: str | os.PathLike[str] | None,
    source: FrameSource,
    outputs: dict[str, str | os.PathLike[str] | None],
    named_outputs: tuple[str, ...] = (),
) -> None:
    """Raise EdgesegError when an output would overwrite an input or another output
    (:func:`edgeseg.outputs.check_outputs`, the check every command makes).

    ``outputs``: option name -> path (None: not asked for). ``named_outputs``: the options
    whose files are named after the input frames (a frames folder, masks), checked for two
    inputs that would share one output name.
    """
    files, folders = source_inputs(source)
    inputs = [("the model", model)]
    inputs += [("the source", path) for path in files]
    inputs += [("the source folder", folder) for folder in folders]
    check_outputs(inputs, outputs)
    given = [option for option in named_outputs if outputs.get(option) is not None]
    _check_name_clashes(source, given)


def _check_name_clashes(source: FrameSource, options: list[str]) -> None:
    clashes = getattr(source, "clashing_names", None)
    if not options or not clashes:
        return
    first, second = clashes[0]
    raise EdgesegError(
        f"{first} and {second} would give one output file in {options[0]} (the same name "
        f"{first.name}); rename one, or run their folders separately"
        + (f" ({len(clashes)} such pairs)" if len(clashes) > 1 else "")
    )
