"""Image files as a source: a folder, a glob or one image, in name order."""

from __future__ import annotations

import time
from pathlib import Path

import cv2

from edgeseg.media import IMAGE_SUFFIXES
from edgeseg.runtime.frames import CorruptFrame, Frame, FrameSource, quiet_opencv
from edgeseg.validate import check_pixels, image_header_hw


class ImageFolderSource(FrameSource):
    """Image files in name order; an unreadable one raises CorruptFrame and is skipped.

    Each frame's ``name`` (what output frames and masks are called) is the file's stem, or its
    whole name where two files share a stem (``a.png`` and ``a.jpg`` give ``a.png`` and
    ``a.jpg``, not one ``a``). :attr:`clashing_names` lists names that stay shared (the same
    file name in two folders of a glob), which outputs by name refuse.
    """

    live = False

    def __init__(self, files: list[Path], description: str) -> None:
        self.files, self.description = files, description
        self.frame_count = len(files)
        self.names = frame_names(files)
        seen: dict[str, Path] = {}
        self.clashing_names: list[tuple[Path, Path]] = []
        for path, name in zip(files, self.names, strict=True):
            if name in seen:
                self.clashing_names.append((seen[name], path))
            seen.setdefault(name, path)
        self._next = 0

    def read(self) -> Frame | None:
        if self._next >= len(self.files):
            return None
        index, path = self._next, self.files[self._next]
        self._next += 1
        if not path.exists():  # a symbolic link loop, a dangling link, a file removed since
            raise CorruptFrame(f"cannot read {path}: a symbolic link loop or a missing file")
        header_hw = image_header_hw(path)  # refused before decoding: a 771 KB PNG can be 16k x 16k
        if header_hw is not None:
            check_pixels(*header_hw, str(path))
        with quiet_opencv():
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise CorruptFrame(f"cannot decode {path}")
        return Frame(image, index, time.perf_counter(), self.names[index])


def frame_names(files: list[Path]) -> list[str]:
    """Output names for ``files``: the stem, or the whole file name where stems repeat."""
    stems: dict[str, int] = {}
    for path in files:
        stems[path.stem] = stems.get(path.stem, 0) + 1
    return [path.stem if stems[path.stem] == 1 else path.name for path in files]


def image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
