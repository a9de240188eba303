"""A video file played at its own frame rate, as a camera would deliver it.

:class:`PacedSource` releases frame *i* of a file source at ``start + i / fps`` (the video's
clock) and marks it live, so the pipeline treats it like a camera: the newest frame only, stale
frames dropped, and latency measured from the moment a frame is released. That makes camera
behaviour (drops, capture-to-output latency) measurable and testable anywhere, from any video;
``edgeseg run --realtime`` and ``benchmarks/runtime_latency.py`` use it.
"""

from __future__ import annotations

import time

from edgeseg.errors import EdgesegError
from edgeseg.runtime.frames import Frame, FrameSource

DEFAULT_FPS = 30.0  # for a file that does not state its rate


class PacedSource(FrameSource):
    """``source`` (a file source) released on its video clock at ``fps`` (default: its own).

    A frame that decodes late is released at once (the clock does not wait for it); frames are
    never skipped here, the pipeline's live policy drops what inference cannot take.
    """

    live = True

    def __init__(self, source: FrameSource, fps: float | None = None) -> None:
        if source.live:
            raise EdgesegError(f"{source.description} is live already; pacing is for files")
        self.source = source
        self.fps = fps or source.fps or DEFAULT_FPS
        if self.fps <= 0:
            raise EdgesegError(f"the playback rate must be positive, got {self.fps}")
        self.description = f"{source.description} at {self.fps:g} fps (real time)"
        self.frame_count = source.frame_count
        self._start: float | None = None
        self._released = 0

    def read(self) -> Frame | None:
        frame = self.source.read()  # may raise CorruptFrame: that frame's slot passes
        if frame is None:
            return None
        now = time.perf_counter()
        if self._start is None:
            self._start = now
        due = self._start + self._released / self.fps
        if due > now:
            time.sleep(due - now)
        self._released += 1
        frame.captured_at = time.perf_counter()
        return frame

    def close(self) -> None:
        self.source.close()
