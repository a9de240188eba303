"""The stop deadline: after a stop, what was read is finished in bounded time, whatever blocks.

A stop signal (or :meth:`Pipeline.stop`) must end a run even when the capture thread sits in a
``read()`` that never returns: a FIFO in an image folder, a stalled ``csi://`` appsink, an
application's source waiting on a network. ``systemd`` and ``docker stop`` send SIGKILL 10 s
after SIGTERM, and a killed run loses its video. So a stop has two deadlines:

- **drain** (:data:`DRAIN_TIMEOUT_S`): frames already read still reach the outputs; it ends
  early once nothing is in flight (the reader may be blocked for good);
- **shutdown** (:data:`SHUTDOWN_TIMEOUT_S`): the stage threads get this long, all together, to
  end; one still blocked is abandoned (a daemon thread, never joined again) and reported, and
  the outputs are finalised anyway.

:class:`StopDeadline` holds both; the single-stream :class:`~edgeseg.runtime.pipeline.Pipeline`
and any pipeline with more threads (one per stream) call :meth:`StopDeadline.join`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

DRAIN_TIMEOUT_S = 5.0  # after a stop signal: how long frames already read may take to finish
SHUTDOWN_TIMEOUT_S = 3.0  # then: how long the stage threads may take to end, all together


class StopDeadline:
    """The two deadlines of one stop, started by :meth:`start` (the moment the stop came).

    >>> deadline = StopDeadline().start()
    >>> while deadline.draining() and frames_in_flight(): finish_one()
    >>> abandoned = deadline.join(threads, report=print)
    """

    def __init__(
        self, drain_s: float = DRAIN_TIMEOUT_S, shutdown_s: float = SHUTDOWN_TIMEOUT_S
    ) -> None:
        self.drain_s, self.shutdown_s = drain_s, shutdown_s
        self._drain_until: float | None = None

    def start(self) -> StopDeadline:
        self._drain_until = time.monotonic() + self.drain_s
        return self

    def draining(self) -> bool:
        """Whether the drain deadline has not passed (True before :meth:`start`)."""
        return self._drain_until is None or time.monotonic() < self._drain_until

    def join(
        self, threads: Sequence[threading.Thread], report: Callable[[str], None] | None = None
    ) -> list[threading.Thread]:
        """Join ``threads`` within the shutdown deadline (shared, not per thread); the ones
        still running are returned, reported through ``report``, and left to themselves
        (they must be daemon threads)."""
        until = time.monotonic() + self.shutdown_s
        for thread in threads:
            thread.join(timeout=max(0.0, until - time.monotonic()))
        abandoned = [thread for thread in threads if thread.is_alive()]
        if abandoned and report is not None:
            names = ", ".join(thread.name for thread in abandoned)
            report(
                f"warning: {names} still blocked {self.shutdown_s:.0f} s after the stop (a read "
                "that never returns?); abandoned, the outputs hold what reached them"
            )
        return abandoned
