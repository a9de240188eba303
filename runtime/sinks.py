"""Where results go: video file, folder of frames, folder of index masks, a window, stats JSONL,
class shares CSV.

Every sink has ``write(result)`` for each frame and ``close()`` once; a sink that wants the
pipeline to stop (the window's ``q``) sets ``stop_requested``. Files appear only when complete:
the video (:mod:`edgeseg.runtime.video_sink`) and the records (:mod:`edgeseg.runtime.records`)
are written to temporary files beside their targets and renamed on ``close()``, images are
encoded in memory and written through a rename, so an interrupted run never leaves a
half-written file under the final name. Files get the umask's mode; a write that fails raises
``OSError`` naming the output (the CLI turns it into one line) on the frame it happens.

The video sink lives in :mod:`edgeseg.runtime.video_sink`, the records in
:mod:`edgeseg.runtime.records`, the result type and the ``Sink`` base in
:mod:`edgeseg.runtime.results`; this module holds the image, mask and window sinks.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from edgeseg.errors import EdgesegError
from edgeseg.files import atomic_write_bytes
from edgeseg.runtime.results import FrameResult, Sink
from edgeseg.runtime.video_sink import VideoSink

__all__ = [
    "DisplaySink",
    "FramesSink",
    "ImageSink",
    "MaskSink",
    "display_available",
    "is_frames_folder",
    "opencv_has_gui",
    "output_sink",
]


def _write_image(path: Path, image: np.ndarray, params: list[int] | None = None) -> None:
    ok, encoded = cv2.imencode(path.suffix, image, params or [])
    if not ok:
        raise EdgesegError(f"cannot encode {path.name}")
    atomic_write_bytes(path, encoded.tobytes())


def _prepare_folder(folder: Path, what: str) -> Path:
    if folder.exists() and not folder.is_dir():
        raise EdgesegError(f"{what} {folder} exists and is not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EdgesegError(f"cannot create {what} {folder}: {exc.strerror}") from None
    return folder


class FramesSink(Sink):
    """The rendered frames as JPEG files ``<name>.jpg`` (the source file's stem, or the frame
    number) in a folder."""

    needs_render = True

    def __init__(self, folder: str | Path, quality: int = 92) -> None:
        self.folder = _prepare_folder(Path(folder), "output folder")
        self.params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
        self.frames = 0

    def write(self, result: FrameResult) -> None:
        image = result.rendered if result.rendered is not None else result.frame.image
        _write_image(self.folder / f"{result.frame.name}.jpg", image, self.params)
        self.frames += 1


class ImageSink(Sink):
    """The rendered frame of a one-image source as one image file (format by suffix), written
    through a rename; the run's path checks make sure it is not the source image."""

    needs_render = True

    def __init__(self, path: str | Path, quality: int = 92) -> None:
        self.path = Path(path)
        if not self.path.parent.is_dir():
            raise EdgesegError(f"output folder {self.path.parent} does not exist")
        self.params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
        self.description = f"image {self.path.suffix.lstrip('.').upper()}"
        self.frames = 0

    def write(self, result: FrameResult) -> None:
        image = result.rendered if result.rendered is not None else result.frame.image
        jpeg = self.path.suffix.lower() in (".jpg", ".jpeg")
        _write_image(self.path, image, self.params if jpeg else None)
        self.frames += 1


class MaskSink(Sink):
    """Class masks as single-channel PNGs of class indices (0..K-1) at the frame's size."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = _prepare_folder(Path(folder), "mask folder")
        self.frames = 0

    def write(self, result: FrameResult) -> None:
        _write_image(self.folder / f"{result.frame.name}.png", result.mask)
        self.frames += 1


def display_available() -> bool:
    """A display server is reachable and this OpenCV can open windows."""
    has_server = bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return has_server and opencv_has_gui()


def opencv_has_gui() -> bool:
    info = cv2.getBuildInformation()
    section = info.split("GUI:", 1)[1].splitlines()[0] if "GUI:" in info else ""
    return section.strip().upper() not in ("", "NONE")


class DisplaySink(Sink):
    """A window showing the rendered frames with the stats line; ``q`` or Esc (or closing the
    window) asks the pipeline to stop. Must be driven from the main thread."""

    needs_render = True

    def __init__(self, title: str = "edgeseg") -> None:
        if not opencv_has_gui():
            raise EdgesegError(
                "this OpenCV has no GUI (opencv-python-headless); install opencv-python to use "
                "--display, or run --headless"
            )
        if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            raise EdgesegError("no display (DISPLAY is not set); run --headless")
        self.title = title
        self._opened = False
        self._canvas: np.ndarray | None = None

    def write(self, result: FrameResult) -> None:
        from edgeseg.runtime.overlay import draw_text

        image = result.rendered if result.rendered is not None else result.frame.image
        if self._canvas is None or self._canvas.shape != image.shape:
            self._canvas = np.empty_like(image)
        np.copyto(self._canvas, image)
        draw_text(self._canvas, result.stats.snapshot().short_line())
        if not self._opened:
            cv2.namedWindow(self.title, cv2.WINDOW_NORMAL)
            self._opened = True
        cv2.imshow(self.title, self._canvas)
        key = cv2.waitKey(1) & 0xFF
        closed = cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1
        if key in (ord("q"), 27) or closed:
            self.stop_requested = True

    def close(self) -> None:
        if self._opened:
            cv2.destroyWindow(self.title)
            cv2.waitKey(1)


def is_frames_folder(path: str | Path) -> bool:
    """Whether ``--output`` names a folder of frames: an existing folder, a path ending in
    ``/``, or a path without a suffix (else it is a video file)."""
    text = str(path)
    target = Path(text)
    return text.endswith(("/", os.sep)) or target.is_dir() or not target.suffix


def output_sink(path: str | Path, fps: float | None = None, live: bool = False) -> Sink:
    """``--output``: a video file by suffix, or a folder of frames (:func:`is_frames_folder`)."""
    if is_frames_folder(path):
        return FramesSink(Path(path))
    return VideoSink(Path(path), fps, live=live)
