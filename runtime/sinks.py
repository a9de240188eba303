"""Where results go: video file, folder of frames, folder of index masks, a window, stats JSONL.

Every sink has ``write(result)`` for each frame and ``close()`` once; a sink that wants the
pipeline to stop (the window's ``q``) sets ``stop_requested``. Files appear only when complete:
the video and the stats are written to temporary files beside their targets and renamed on
``close()``, images are encoded in memory and written through a rename, so an interrupted run
never leaves a half-written file under the final name. Files get the umask's mode.

A write that fails raises ``OSError`` naming the output (the CLI turns it into one line) on the
frame it happens: OpenCV 5's ``VideoWriter.write`` says whether the backend took the frame;
with an OpenCV that does not (4.x returns None), the free space of the video's file system is
checked after every frame instead (:data:`VIDEO_RESERVE_BYTES`), and the finished file is
opened back before it is renamed. A failed video removes its temporary file: whatever was at the
destination before stays as it was.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from edgeseg.errors import EdgesegError
from edgeseg.files import atomic_write_bytes, temp_beside, with_path
from edgeseg.runtime.segmenter import resize_mask
from edgeseg.runtime.sources import Frame, quiet_opencv
from edgeseg.runtime.stats import PipelineStats

#: Video container suffix -> FourCC OpenCV's bundled FFmpeg can write.
VIDEO_CODECS = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "mp4v"}
DEFAULT_FPS = 30.0
LIVE_RATE_FRAMES = 20  # live video: frames timed to measure the rate the output is written at
STATS_INTERVAL_S = 1.0
#: With an OpenCV whose VideoWriter.write reports nothing: stop once the video's file system
#: has less free space than this (FFmpeg buffers up to 32 KiB and the MP4 index comes last).
VIDEO_RESERVE_BYTES = 1 << 20


class VideoWriterLike(Protocol):
    """What :class:`VideoSink` needs of ``cv2.VideoWriter`` (its ``writer_factory`` makes one)."""

    def isOpened(self) -> bool: ...

    def write(self, image: np.ndarray) -> bool | None: ...

    def release(self) -> None: ...


#: ``(path, fourcc, fps, (width, height)) -> writer``; cv2.VideoWriter by default.
WriterFactory = Callable[[str, int, float, tuple[int, int]], VideoWriterLike]


def free_bytes(folder: str | os.PathLike[str]) -> int:
    """Bytes this process may still write in ``folder``'s file system (root may use the
    blocks reserved for it)."""
    st = os.statvfs(folder)
    blocks = st.f_bfree if os.geteuid() == 0 else st.f_bavail
    return blocks * st.f_frsize


@dataclass
class FrameResult:
    """One processed frame as the sinks see it.

    ``class_map`` is the (h, w) uint8 mask at network resolution; :attr:`mask` is it resized
    (nearest) to the frame, computed on first use. ``rendered`` is the overlay image when the
    pipeline has a renderer (the same buffer is reused for the next frame: copy to keep it).
    """

    frame: Frame
    class_map: np.ndarray
    rendered: np.ndarray | None
    stats: PipelineStats
    timings: dict[str, float] = field(default_factory=dict)
    _mask: np.ndarray | None = None

    @property
    def mask(self) -> np.ndarray:
        """(H, W) uint8 class mask at the frame's size."""
        if self._mask is None:
            self._mask = resize_mask(self.class_map, self.frame.image.shape[:2])
        return self._mask


class Sink:
    """Base class: receives every processed frame in order, then ``close()``."""

    stop_requested = False
    needs_render = False  # whether it reads ``result.rendered``

    def write(self, result: FrameResult) -> None:
        raise NotImplementedError

    def finish(self, stats: PipelineStats) -> None:
        """The run is over (``stats`` are final); called once, just before :meth:`close`."""

    def close(self) -> None:
        """Finish and release; called once, also after Ctrl-C or an error."""


class VideoSink(Sink):
    """The rendered frames as a video (``.mp4``, ``.avi``, ``.mkv``, ``.mov``).

    Size is fixed by the first frame (later frames of another size are resized to it). Rate:
    ``fps`` (the source's) for files, so the output plays like the input. For a live source
    (``live=True``), which drops frames when inference is slower than the camera, the rate is
    measured from the capture times of the first :data:`LIVE_RATE_FRAMES` frames kept, so the
    video plays in real time rather than fast-forward; those frames wait in memory until then.
    ``writer_factory`` makes the encoder (default ``cv2.VideoWriter``): a stand-in can write
    elsewhere or fail on purpose. A frame the writer refuses raises OSError naming the video.
    """

    needs_render = True

    def __init__(
        self,
        path: str | Path,
        fps: float | None = None,
        live: bool = False,
        writer_factory: WriterFactory | None = None,
    ) -> None:
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in VIDEO_CODECS:
            raise EdgesegError(
                f"cannot write video {self.path.name}: use one of {', '.join(VIDEO_CODECS)}, "
                "or a folder (a path ending in /) for image frames"
            )
        if not self.path.parent.exists():
            raise EdgesegError(f"output folder {self.path.parent} does not exist")
        self.fps = fps if fps and 0 < fps <= 1000 else DEFAULT_FPS
        self.live = live
        self.frames = 0
        self.failed = False
        self._factory: WriterFactory = writer_factory or cv2.VideoWriter
        self._writer: VideoWriterLike | None = None
        self._size: tuple[int, int] | None = None
        self._pending: list[tuple[float, np.ndarray]] = []  # live: frames before the rate is known
        self._tmp = temp_beside(self.path, suffix)

    def _open(self, fps: float) -> None:
        fourcc = cv2.VideoWriter_fourcc(*VIDEO_CODECS[self.path.suffix.lower()])
        with quiet_opencv():
            self._writer = self._factory(str(self._tmp), fourcc, fps, self._size)
        if not self._writer.isOpened():
            self._writer = None
            self._tmp.unlink(missing_ok=True)
            raise EdgesegError(f"OpenCV cannot write {self.path.name} here (no encoder?)")
        self.fps = fps

    def _flush_pending(self) -> None:
        times = [t for t, _ in self._pending]
        span = times[-1] - times[0]
        measured = (len(times) - 1) / span if len(times) > 1 and span > 0 else self.fps
        self._open(float(min(max(measured, 1.0), 1000.0)))
        pending, self._pending = self._pending, []
        for _, image in pending:
            self._encode(image)

    def _encode(self, image: np.ndarray) -> None:
        """Hand one frame to the writer; a refusal, or a full disk, fails the video now."""
        frame = self.frames + 1
        try:
            with quiet_opencv():  # OpenCV would print its own warning beside our one line
                accepted = self._writer.write(image) if self._writer is not None else False
        except OSError as exc:
            self._fail(exc.errno or errno.EIO, f"{exc.strerror or exc} at frame {frame}")
        if accepted is False:
            full = free_bytes(self._tmp.parent) < VIDEO_RESERVE_BYTES
            detail = f"the video writer refused frame {frame}"
            self._fail(errno.ENOSPC if full else errno.EIO, detail)
        if accepted is None and free_bytes(self._tmp.parent) < VIDEO_RESERVE_BYTES:
            self._fail(errno.ENOSPC, f"less than 1 MiB left at frame {frame}")
        self.frames = frame

    def _fail(self, code: int, detail: str) -> None:
        """Drop the temporary video and raise; the destination keeps what it held."""
        self.failed = True
        self._pending.clear()
        if self._writer is not None:
            with quiet_opencv():
                self._writer.release()
            self._writer = None
        self._tmp.unlink(missing_ok=True)
        message = (
            f"{os.strerror(code)}: {detail}; the video was not written and what was there "
            "before is unchanged"
        )
        raise OSError(code, message, str(self.path))

    def write(self, result: FrameResult) -> None:
        if self.failed:
            return
        image = result.rendered if result.rendered is not None else result.frame.image
        if self._size is None:
            self._size = (image.shape[1], image.shape[0])
            if not self.live:
                self._open(self.fps)
        if (image.shape[1], image.shape[0]) != self._size:
            image = cv2.resize(image, self._size, interpolation=cv2.INTER_AREA)
        if self._writer is not None:
            self._encode(image)
            return
        self._pending.append((result.frame.captured_at, image.copy()))  # rendered is reused
        if len(self._pending) >= LIVE_RATE_FRAMES:
            self._flush_pending()

    def close(self) -> None:
        """Finish the container and rename it into place (when it holds frames)."""
        try:
            if self._pending and not self.failed:
                self._flush_pending()
            if self._writer is not None:
                with quiet_opencv():
                    self._writer.release()
                self._writer = None
                if self.frames:
                    self._check_written()
                    os.replace(self._tmp, self.path)
        finally:
            self._tmp.unlink(missing_ok=True)

    def _check_written(self) -> None:
        # The container is completed on release, which reports nothing: a disk that filled
        # while the index was written leaves a file that does not open. Never rename that.
        with quiet_opencv():
            capture = cv2.VideoCapture(str(self._tmp))
            opened = capture.isOpened() and capture.get(cv2.CAP_PROP_FRAME_COUNT) > 0
            capture.release()
        if not opened:
            full = free_bytes(self._tmp.parent) < VIDEO_RESERVE_BYTES
            detail = f"the finished file ({self.frames} frames) does not open"
            self._fail(errno.ENOSPC if full else errno.EIO, detail)


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


class StatsSink(Sink):
    """One JSON line per second of wall time (the stats of that moment, see
    :class:`~edgeseg.runtime.stats.StatsSnapshot`), then a final line with ``"final": true``.

    Per second rather than per frame: the file stays small on a camera left running for hours
    and each line already holds the FPS, latency percentiles and per-stage means of its window.
    """

    def __init__(self, path: str | Path, extra: dict[str, Any] | None = None) -> None:
        self.path = Path(path)
        if not self.path.parent.exists():
            raise EdgesegError(f"stats folder {self.path.parent} does not exist")
        self.extra = extra or {}
        self._tmp = temp_beside(self.path)
        self._file = open(self._tmp, "w")  # noqa: SIM115 - kept open for the whole run
        self._last = time.perf_counter()
        self._stats: PipelineStats | None = None

    def _emit(self, stats: PipelineStats, final: bool) -> None:
        record = {**self.extra, **stats.snapshot().to_dict(), "final": final}
        try:
            self._file.write(json.dumps(record) + "\n")
            self._file.flush()
        except OSError as exc:
            self._discard()
            raise with_path(exc, self.path) from None

    def _discard(self) -> None:
        with contextlib.suppress(OSError):  # closing flushes, which fails again on a full disk
            self._file.close()
        self._tmp.unlink(missing_ok=True)

    def write(self, result: FrameResult) -> None:
        if self._file.closed:
            return
        self._stats = result.stats
        now = time.perf_counter()
        if now - self._last >= STATS_INTERVAL_S:
            self._last = now
            self._emit(result.stats, final=False)

    def finish(self, stats: PipelineStats) -> None:
        self._stats = stats

    def close(self) -> None:
        if self._file.closed:
            return
        if self._stats is not None:
            self._emit(self._stats, final=True)
        try:
            self._file.close()
            os.replace(self._tmp, self.path)
        except OSError as exc:
            self._discard()
            raise with_path(exc, self.path) from None


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
