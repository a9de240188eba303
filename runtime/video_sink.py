"""The rendered frames as a video file, finalised whatever happens, failing on the frame that
cannot be written.

The video is encoded into a hidden temporary file beside the target (with the umask's mode) and
renamed onto the target when the run ends, for whatever reason. A write that fails raises
``OSError`` naming the video, on the frame it happens: OpenCV 5's ``VideoWriter.write`` says
whether the backend took the frame; with an OpenCV that does not (4.x returns None), the free
space of the video's file system is checked after every frame instead
(:data:`VIDEO_RESERVE_BYTES`), and the finished file is opened back before it is renamed. A
failed video removes its temporary file: whatever was at the destination stays as it was.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from edgeseg.errors import EdgesegError
from edgeseg.files import PendingFile
from edgeseg.runtime.encoders import FALLBACK_FOURCC, VideoEncoder, choose_file_encoder
from edgeseg.runtime.frames import quiet_opencv
from edgeseg.runtime.options import EncodingOptions
from edgeseg.runtime.results import FrameResult, Sink

#: Video container suffix -> FourCC handed to a ``writer_factory`` (the encoder chosen by
#: :func:`~edgeseg.runtime.encoders.choose_file_encoder` decides what is really written).
VIDEO_CODECS = FALLBACK_FOURCC
DEFAULT_FPS = 30.0
LIVE_RATE_FRAMES = 20  # live video: frames timed to measure the rate the output is written at
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


class VideoSink(Sink):
    """The rendered frames as a video (``.mp4``, ``.avi``, ``.mkv``, ``.mov``).

    Size is fixed by the first frame (later frames of another size are resized to it). Rate:
    ``fps`` (the source's) for files, so the output plays like the input. For a live source
    (``live=True``), which drops frames when inference is slower than the camera, the rate is
    measured from the capture times of the first :data:`LIVE_RATE_FRAMES` frames kept, so the
    video plays in real time rather than fast-forward; those frames wait in memory until then.
    The encoder is H.264 where this machine has one (:mod:`~edgeseg.runtime.encoders`;
    ``encoding`` picks codec and bitrate; :attr:`encoder` says which ran, :attr:`note` what the
    user should know). ``writer_factory`` replaces the encoder: a stand-in can write elsewhere or
    fail on purpose. A frame the writer refuses raises OSError naming the video.
    """

    needs_render = True

    def __init__(
        self,
        path: str | Path,
        fps: float | None = None,
        live: bool = False,
        writer_factory: WriterFactory | None = None,
        encoding: EncodingOptions | None = None,
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
        # A video is finished by a rename: a FIFO or a device as its target is refused (before
        # an encoder is probed, which would print OpenCV's errors beside the one line).
        self._output = PendingFile(self.path, suffix, in_place=False, what="video")
        self._tmp = self._output.path
        self.fps = fps if fps and 0 < fps <= 1000 else DEFAULT_FPS
        self.live = live
        self.frames = 0
        self.failed = False
        self.encoder: VideoEncoder | None = None
        if writer_factory is None:
            try:
                self.encoder = choose_file_encoder(self.path, encoding or EncodingOptions())
            except BaseException:
                self._output.discard()  # no temporary file left behind
                raise
            writer_factory = self.encoder.file_factory(suffix)
        self._factory: WriterFactory = writer_factory
        self._writer: VideoWriterLike | None = None
        self._size: tuple[int, int] | None = None
        self._pending: list[tuple[float, np.ndarray]] = []  # live: frames before the rate is known

    @property
    def description(self) -> str:
        """Which encoder writes the video (for the stats and the run's report)."""
        return self.encoder.description if self.encoder is not None else "custom writer"

    @property
    def note(self) -> str | None:
        """What the user should know about the encoder chosen (an mp4v fallback), or None."""
        return self.encoder.note if self.encoder is not None else None

    def _open(self, fps: float) -> None:
        fourcc = cv2.VideoWriter_fourcc(*VIDEO_CODECS[self.path.suffix.lower()])
        with quiet_opencv():
            self._writer = self._factory(str(self._tmp), fourcc, fps, self._size)
        if not self._writer.isOpened():
            self._writer = None
            self._output.discard()
            raise EdgesegError(
                f"OpenCV cannot write {self.path.name} here with {self.description} (no encoder?)"
            )
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
        self.discard()
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
            if self.encoder is not None and self.encoder.even_size:  # 4:2:0 chroma
                self._size = (max(2, self._size[0] // 2 * 2), max(2, self._size[1] // 2 * 2))
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
                    self._output.commit()
        finally:
            self._output.discard()

    def discard(self) -> None:
        """Release the writer and delete the temporary video; the destination is not touched."""
        self._pending.clear()
        if self._writer is not None:
            with quiet_opencv():
                self._writer.release()
            self._writer = None
        self._output.discard()

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
