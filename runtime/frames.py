"""The source interface: a frame, the two ways reading can fail, the reconnection policy.

Every source (:mod:`edgeseg.runtime.sources` opens them from what a user types) is a
:class:`FrameSource`; an application can subclass it to feed frames from anywhere.
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np


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
    # cv2.utils.logging is missing from some system builds (Debian's 4.6, the Jetson
    # rehearsal's); cv2.setLogLevel is the older spelling of the same switch (2 = ERROR).
    logging = getattr(cv2.utils, "logging", None)
    get_level = logging.getLogLevel if logging else getattr(cv2, "getLogLevel", None)
    set_level = logging.setLogLevel if logging else getattr(cv2, "setLogLevel", None)
    if get_level is None or set_level is None:
        yield
        return
    previous = get_level()
    set_level(logging.LOG_LEVEL_ERROR if logging else 2)
    try:
        yield
    finally:
        set_level(previous)
