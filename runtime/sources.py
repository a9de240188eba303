"""Frame sources: cameras, video files, image folders and globs, network streams, GStreamer.

:func:`open_source` turns what a user types into a :class:`FrameSource`:

==============================  ==========================================  ======
spec                            source                                      live
==============================  ==========================================  ======
``0``, ``/dev/video0``          V4L2 camera (``--camera-width/height/fps``)  yes
``clip.mp4``                    video file                                  no
``frames/``, ``'img/*.png'``    image folder or glob, sorted by name        no
``photo.jpg``                   one image                                   no
``rtsp://…``, ``http://…``      network stream (``http`` URLs ending in a    yes
                                video suffix are files)
``nvarguscamerasrc ! … ! appsink``  GStreamer pipeline (a ``!`` in the spec)  yes
==============================  ==========================================  ======

A *live* source keeps only the newest frame when inference falls behind (latency first); a file
source never drops a frame. A frame that cannot be decoded raises :class:`CorruptFrame` (the
pipeline skips and counts it); a camera or stream that stops delivering raises
:class:`SourceLost`, and the pipeline calls :meth:`FrameSource.reopen` with backoff
(:class:`RetryPolicy`). A source that cannot be opened at all raises EdgesegError, one line.

OpenCV's and FFmpeg's own warnings are silenced while opening (they would print beside our one
line); set ``OPENCV_FFMPEG_LOGLEVEL=24`` and ``OPENCV_LOG_LEVEL=INFO`` to see them.
"""

from __future__ import annotations

import abc
import contextlib
import glob
import os
import re
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edgeseg.errors import EdgesegError
from edgeseg.media import IMAGE_SUFFIXES, VIDEO_SUFFIXES

# Quiet FFmpeg (AV_LOG_QUIET) unless the user chose a level; OpenCV reads this when it first
# opens a video, not at import.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

LIVE_SCHEMES = ("rtsp", "rtsps", "rtmp", "udp", "tcp", "srt", "http", "https")
STREAM_TIMEOUT_MS = 5000  # open and read timeouts for network streams


@dataclass
class Frame:
    """One captured frame: BGR uint8 image, its position in the source, when it was captured
    (``time.perf_counter()``) and a name for files written from it."""

    image: np.ndarray
    index: int
    captured_at: float
    name: str


class CorruptFrame(Exception):
    """A frame that cannot be decoded: the pipeline skips it and counts it."""


class SourceLost(Exception):
    """A camera or stream stopped delivering frames: the pipeline reopens it with backoff."""


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff for reopening a lost live source: ``initial_s``, then times ``factor`` up to
    ``max_delay_s``; give up after ``max_attempts`` (None: never give up)."""

    initial_s: float = 0.5
    factor: float = 2.0
    max_delay_s: float = 8.0
    max_attempts: int | None = 10

    def delays(self) -> Iterator[float]:
        delay, attempt = self.initial_s, 0
        while self.max_attempts is None or attempt < self.max_attempts:
            yield delay
            attempt += 1
            delay = min(delay * self.factor, self.max_delay_s)


class FrameSource(abc.ABC):
    """What the pipeline reads frames from; subclass it to feed frames from anywhere.

    ``live``: drop stale frames (True) or deliver every frame (False). ``frame_count``: frames
    in a file source if known (for a progress bar), else None. ``fps``: the source's frame rate
    if known (used for the output video).
    """

    live: bool = False
    description: str = ""
    frame_count: int | None = None
    fps: float | None = None

    @abc.abstractmethod
    def read(self) -> Frame | None:
        """The next frame; None at the end of the source. May raise CorruptFrame, SourceLost."""

    def reopen(self) -> None:
        """Reconnect after :class:`SourceLost`; raise SourceLost if it is still unavailable."""
        raise SourceLost(f"{self.description} cannot be reopened")

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the device or file."""

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def quiet_opencv() -> Iterator[None]:
    """OpenCV's own log at ERROR only, for a moment: its warnings would print beside our line."""
    logging = cv2.utils.logging
    previous = logging.getLogLevel()
    logging.setLogLevel(logging.LOG_LEVEL_ERROR)
    try:
        yield
    finally:
        logging.setLogLevel(previous)


def gstreamer_available() -> bool:
    """Whether this OpenCV was built with GStreamer (``cv2.getBuildInformation()``)."""
    match = re.search(r"GStreamer:\s*(\S+)", cv2.getBuildInformation())
    return bool(match) and match.group(1).upper() != "NO"


class VideoCaptureSource(FrameSource):
    """Anything ``cv2.VideoCapture`` opens: ``kind`` is camera, file, stream or gstreamer."""

    def __init__(
        self,
        target: str | int,
        kind: str,
        live: bool,
        camera_size: tuple[int, int] | None = None,
        camera_fps: float | None = None,
    ) -> None:
        self.target, self.kind, self.live = target, kind, live
        self.camera_size, self.camera_fps = camera_size, camera_fps
        self.description = f"{kind} {target}"
        self._index = 0
        self._capture = self._open()
        count = int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.frame_count = count if kind == "file" and count > 0 else None
        fps = float(self._capture.get(cv2.CAP_PROP_FPS) or 0)
        self.fps = fps if 0 < fps <= 1000 else None

    def _open(self) -> cv2.VideoCapture:
        with quiet_opencv():
            if self.kind == "camera":
                api = cv2.CAP_V4L2 if sys.platform.startswith("linux") else cv2.CAP_ANY
                capture = cv2.VideoCapture(self.target, api)
                self._configure_camera(capture)
            elif self.kind == "stream":
                params = [
                    cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
                    STREAM_TIMEOUT_MS,
                    cv2.CAP_PROP_READ_TIMEOUT_MSEC,
                    STREAM_TIMEOUT_MS,
                ]
                capture = cv2.VideoCapture(str(self.target), cv2.CAP_FFMPEG, params)
            elif self.kind == "gstreamer":
                capture = cv2.VideoCapture(str(self.target), cv2.CAP_GSTREAMER)
            else:
                capture = cv2.VideoCapture(str(self.target))
        if not capture.isOpened():
            raise EdgesegError(self._open_failure())
        return capture

    def _configure_camera(self, capture: cv2.VideoCapture) -> None:
        if not capture.isOpened():
            return
        capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # the driver's queue adds latency
        if self.camera_size is not None:
            capture.set(cv2.CAP_PROP_FRAME_WIDTH, self.camera_size[1])
            capture.set(cv2.CAP_PROP_FRAME_HEIGHT, self.camera_size[0])
        if self.camera_fps is not None:
            capture.set(cv2.CAP_PROP_FPS, self.camera_fps)

    def _open_failure(self) -> str:
        if self.kind == "camera":
            present = ", ".join(sorted(str(p) for p in Path("/dev").glob("video*"))) or "none"
            return (
                f"cannot open camera {self.target} (cameras here: {present}); check that it is "
                "connected and not used by another program"
            )
        if self.kind == "stream":
            return f"cannot open stream {self.target}; check the address and that it is reachable"
        if self.kind == "gstreamer":
            return f"GStreamer pipeline did not start: {self.target}"
        return f"cannot open video {self.target}: not a video OpenCV can decode"

    def read(self) -> Frame | None:
        ok, image = self._capture.read()
        now = time.perf_counter()
        if not ok or image is None:
            if self.live:
                raise SourceLost(f"{self.description} stopped delivering frames")
            return None
        index = self._index
        self._index += 1
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        return Frame(image, index, now, f"{index:06d}")

    def reopen(self) -> None:
        self._capture.release()
        try:
            self._capture = self._open()
        except EdgesegError as exc:
            raise SourceLost(str(exc)) from None

    def close(self) -> None:
        self._capture.release()


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


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def _check_camera_options(kind: str, camera_size, camera_fps) -> None:
    if kind != "camera" and (camera_size is not None or camera_fps is not None):
        raise EdgesegError(
            "--camera-width/--camera-height/--camera-fps apply to cameras (an index or "
            f"/dev/videoN), not to a {kind} source"
        )


def open_source(
    spec: str | int | os.PathLike[str],
    camera_size: tuple[int, int] | None = None,
    camera_fps: float | None = None,
    live: bool | None = None,
) -> FrameSource:
    """Open what ``spec`` names (see the module table). ``camera_size`` is (height, width).

    ``live`` overrides the drop policy the source kind implies. Raises EdgesegError with one
    line for a nonexistent or unreadable source, an empty folder, a missing camera, or a
    GStreamer pipeline on an OpenCV built without GStreamer.
    """
    text = str(spec).strip()
    if isinstance(spec, int) or text.isdigit():
        kind, target = "camera", int(text)
    elif "!" in text:
        if not gstreamer_available():
            raise EdgesegError(
                "this OpenCV was built without GStreamer (cv2.getBuildInformation() says "
                "GStreamer: NO), so it cannot run a pipeline; install an OpenCV with GStreamer "
                "(on Jetson the JetPack python3-opencv, not opencv-python from pip)"
            )
        kind, target = "gstreamer", text
    elif "://" in text:
        scheme = text.split("://", 1)[0].lower()
        if scheme == "file":
            return open_source(text.split("://", 1)[1], camera_size, camera_fps, live)
        if scheme not in LIVE_SCHEMES:
            raise EdgesegError(f"unsupported URL scheme {scheme!r} in {text}")
        suffix = Path(text.split("?", 1)[0]).suffix.lower()
        remote_file = scheme in ("http", "https") and suffix in VIDEO_SUFFIXES
        kind, target = ("file" if remote_file else "stream"), text
    elif text.startswith("/dev/video"):
        if not Path(text).exists():
            present = ", ".join(sorted(str(p) for p in Path("/dev").glob("video*"))) or "none"
            raise EdgesegError(f"camera {text} not found (cameras here: {present})")
        kind, target = "camera", text
    elif any(ch in text for ch in "*?["):
        _check_camera_options("image glob", camera_size, camera_fps)
        files = sorted(Path(p) for p in glob.glob(text) if Path(p).suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise EdgesegError(f"no images match {text}")
        return _with_live(ImageFolderSource(files, f"images {text}"), live)
    else:
        path = Path(text).expanduser()
        if not path.exists():
            raise EdgesegError(
                f"source {text} not found; expected a camera index or /dev/videoN, a video file, "
                "an image folder or glob, an rtsp:// or http:// URL, or a GStreamer pipeline"
            )
        if path.is_dir():
            _check_camera_options("image folder", camera_size, camera_fps)
            files = _image_files(path)
            if not files:
                raise EdgesegError(
                    f"no images in folder {path} (looked for {' '.join(IMAGE_SUFFIXES)})"
                )
            return _with_live(ImageFolderSource(files, f"folder {path}"), live)
        if not os.access(path, os.R_OK):
            raise EdgesegError(f"cannot read {path}: permission denied")
        if path.suffix.lower() in IMAGE_SUFFIXES:
            _check_camera_options("image", camera_size, camera_fps)
            source = ImageFolderSource([path], f"image {path}")
            if cv2.imread(str(path)) is None:
                raise EdgesegError(f"cannot read image {path}: not an image OpenCV can decode")
            return _with_live(source, live)
        kind, target = "file", str(path)
    _check_camera_options(kind, camera_size, camera_fps)
    implied = kind in ("camera", "stream", "gstreamer") and not (
        kind == "gstreamer" and str(target).lstrip().startswith("filesrc")
    )
    return VideoCaptureSource(
        target, kind, implied if live is None else live, camera_size, camera_fps
    )


def _with_live(source: FrameSource, live: bool | None) -> FrameSource:
    if live is not None:
        source.live = live
    return source
