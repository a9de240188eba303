"""Which encoder writes a video file: H.264 first, MPEG-4 Part 2 only as the last resort.

Browsers play H.264 in MP4 and not ``mp4v`` (MPEG-4 Part 2), so :func:`choose_file_encoder`
takes, in order: GStreamer's ``nvv4l2h264enc`` on a Jetson (the hardware encoder), GStreamer's
``x264enc``, OpenCV's FFmpeg with an H.264 FourCC it can really write (``avc1``, ``H264``,
``X264``, tried once per process on a tiny file: pip's opencv-python ships an FFmpeg without
an H.264 encoder), and ``mp4v``, with a note saying why. Which one ran is the sink's
:attr:`VideoEncoder.description` and lands in the stats and in ``edgeseg run``'s report.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edgeseg.errors import EdgesegError
from edgeseg.runtime import gstreamer as gst
from edgeseg.runtime.frames import quiet_opencv
from edgeseg.runtime.options import EncodingOptions

#: Video container suffix -> the FourCC OpenCV's FFmpeg writes when no H.264 encoder is used.
FALLBACK_FOURCC = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "mp4v"}
FFMPEG_H264_FOURCCS = ("avc1", "H264", "X264")
MP4V_NOTE = (
    "no H.264 encoder here (no GStreamer x264enc/nvv4l2h264enc in this OpenCV, and its FFmpeg "
    "writes no H.264): {name} is MPEG-4 Part 2 (mp4v), which VLC and ffplay play but browsers "
    "do not; an OpenCV with GStreamer (python3-opencv with gstreamer1.0-plugins-ugly) writes H.264"
)

#: ``(path, fourcc, fps, (width, height)) -> writer``, as ``cv2.VideoWriter`` takes them.
WriterFactory = Callable[[str, int, float, tuple[int, int]], cv2.VideoWriter]


@dataclass(frozen=True)
class VideoEncoder:
    """One way to write a video: ``kind`` (gstreamer-hw, gstreamer, ffmpeg, opencv-fallback),
    ``codec`` (h264, mp4v, mjpeg), a ``description`` for reports, the GStreamer encoder
    fragment or the FFmpeg ``fourcc``, and ``note``: what the user should know (said once)."""

    kind: str
    codec: str
    description: str
    gst_encoder: str | None = None
    fourcc: str | None = None
    note: str | None = None

    @property
    def even_size(self) -> bool:
        """H.264 in 4:2:0 needs an even width and height."""
        return self.codec == "h264"

    def file_factory(self, suffix: str) -> WriterFactory:
        """A ``cv2.VideoWriter`` maker for a file with this encoder."""
        if self.gst_encoder is not None:
            encoder = self.gst_encoder

            def gstreamer_writer(
                path: str, _fourcc: int, fps: float, size: tuple[int, int]
            ) -> cv2.VideoWriter:
                pipeline = gst.file_writer_pipeline(path, suffix, encoder)
                return cv2.VideoWriter(pipeline, cv2.CAP_GSTREAMER, 0, fps, size, True)

            return gstreamer_writer
        code = cv2.VideoWriter_fourcc(*(self.fourcc or "mp4v"))

        def ffmpeg_writer(
            path: str, _fourcc: int, fps: float, size: tuple[int, int]
        ) -> cv2.VideoWriter:
            return cv2.VideoWriter(path, cv2.CAP_FFMPEG, code, fps, size)

        return ffmpeg_writer


def gstreamer_h264(bitrate_kbps: int | None, *, network: bool) -> VideoEncoder | None:
    """The GStreamer H.264 encoder this machine has (hardware first), or None."""
    if not gst.gstreamer_available():
        return None
    if gst.has_element("nvv4l2h264enc") and gst.has_element("nvvidconv"):
        fragment = gst.h264_encoder(bitrate_kbps, network=network, hardware=True)
        return VideoEncoder("gstreamer-hw", "h264", "H.264, GStreamer nvv4l2h264enc", fragment)
    if gst.has_element("x264enc"):
        fragment = gst.h264_encoder(bitrate_kbps, network=network, hardware=False)
        return VideoEncoder("gstreamer", "h264", "H.264, GStreamer x264enc", fragment)
    return None


@contextlib.contextmanager
def silent_stderr() -> Iterator[None]:
    """File descriptor 2 to /dev/null for a moment: FFmpeg's encoders log straight to it (not
    through OpenCV's log level), so probing a FourCC would print a screen of errors beside the
    one line that says which encoder runs. Only for probes made before any thread writes."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


@functools.cache
def ffmpeg_h264_fourcc() -> str | None:
    """The FourCC with which this OpenCV's FFmpeg really writes H.264, or None (tried once)."""
    frame = np.zeros((64, 64, 3), np.uint8)
    with tempfile.TemporaryDirectory(prefix="edgeseg-h264-") as folder:
        for code in FFMPEG_H264_FOURCCS:
            path = str(Path(folder) / f"probe_{code}.mp4")
            with quiet_opencv(), silent_stderr():
                writer = cv2.VideoWriter(
                    path, cv2.CAP_FFMPEG, cv2.VideoWriter_fourcc(*code), 10.0, (64, 64)
                )
                opened = writer.isOpened()
                if opened:
                    for _ in range(3):
                        writer.write(frame)
                writer.release()
            if opened and Path(path).stat().st_size > 0:
                return code
    return None


def choose_file_encoder(path: str | Path, encoding: EncodingOptions) -> VideoEncoder:
    """How video file ``path`` is written (module docs); raises EdgesegError when the codec
    asked for has no encoder here."""
    suffix = Path(path).suffix.lower()
    name = Path(path).name
    if encoding.codec in ("mp4v", "mjpeg") or (encoding.codec == "auto" and suffix == ".avi"):
        fourcc = "MJPG" if encoding.codec == "mjpeg" or suffix == ".avi" else "mp4v"
        codec = "mjpeg" if fourcc == "MJPG" else "mp4v"
        note = _bitrate_note(encoding, "OpenCV's FFmpeg writer")
        return VideoEncoder("ffmpeg", codec, f"{fourcc}, OpenCV FFmpeg", fourcc=fourcc, note=note)
    found = gstreamer_h264(encoding.bitrate_kbps, network=False)
    if found is not None and suffix in gst.MUXERS:
        return found
    fourcc = ffmpeg_h264_fourcc()
    if fourcc is not None:
        note = _bitrate_note(encoding, "OpenCV's FFmpeg writer")
        return VideoEncoder("ffmpeg", "h264", f"H.264, OpenCV FFmpeg {fourcc}", fourcc=fourcc,
                            note=note)  # fmt: skip
    if encoding.codec == "h264":
        raise EdgesegError(MP4V_NOTE.format(name=name).split(":")[0] + f"; cannot write {name}")
    fallback = FALLBACK_FOURCC[suffix]
    return VideoEncoder("opencv-fallback", "mp4v", f"{fallback}, OpenCV FFmpeg (no H.264 here)",
                        fourcc=fallback, note=MP4V_NOTE.format(name=name))  # fmt: skip


def _bitrate_note(encoding: EncodingOptions, what: str) -> str | None:
    if encoding.bitrate_kbps is None:
        return None
    return f"{what} has no bitrate setting: bitrate {encoding.bitrate_kbps} kbit/s not applied"
