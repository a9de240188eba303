"""The channels between the pipeline's stages.

A file source passes frames through bounded ``queue.Queue`` s (capture waits for inference: no
frame is ever dropped). A live source passes them through a :class:`LatestFrameSlot`, which
holds one frame and replaces one not yet taken: inference always gets the newest frame.
"""

from __future__ import annotations

import queue
import threading
from typing import Any

END = object()  # end-of-stream marker passed down the stages


class LatestFrameSlot:
    """A one-item channel for live sources: ``put`` replaces an item not yet taken.

    ``put`` returns True when it replaced (dropped) a frame. ``close`` marks the end; ``get``
    still returns the last frame before the end marker, so the newest frame is never lost.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: Any = None
        self._has_item = False
        self._closed = False

    def put(self, item: Any) -> bool:
        with self._cond:
            replaced = self._has_item
            self._item, self._has_item = item, True
            self._cond.notify()
            return replaced

    def empty(self) -> bool:
        """Whether no frame waits (``queue.Queue.empty``'s meaning, for the stop's drain)."""
        with self._cond:
            return not self._has_item

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()

    def get(self, timeout: float) -> Any:
        """The newest item, or the end marker; raises queue.Empty after ``timeout`` seconds."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._has_item or self._closed, timeout):
                raise queue.Empty
            if self._has_item:
                item, self._item, self._has_item = self._item, None, False
                return item
            return END
