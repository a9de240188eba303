"""Records of a run beside its images: the stats as JSON lines, the class shares as CSV.

Both are written to a temporary file beside the target and renamed into place on ``close()``;
a write that fails (a full disk) removes the temporary file and raises ``OSError`` naming the
target.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import time
from pathlib import Path
from typing import Any

from edgeseg.errors import EdgesegError
from edgeseg.files import PendingFile, with_path
from edgeseg.runtime.results import FrameResult, Sink
from edgeseg.runtime.stats import PipelineStats

STATS_INTERVAL_S = 1.0


def stats_record(stats: PipelineStats, extra: dict[str, Any], final: bool) -> dict[str, Any]:
    """One ``--stats`` line: ``extra`` (model, backend), the snapshot with the latest frame's
    class shares, ``final``. ``/stats`` of ``--serve`` answers the same record."""
    return {**extra, **stats.snapshot(class_share=True).to_dict(), "final": final}


class _TextRecord(Sink):
    """A text file written through a temporary file beside ``path`` and renamed into place on
    :meth:`close`; a failed write removes the temporary file and raises OSError naming ``path``.
    """

    def __init__(self, path: str | Path, what: str, newline: str | None = None) -> None:
        self.path = Path(path)
        if not self.path.parent.exists():
            raise EdgesegError(f"{what} folder {self.path.parent} does not exist")
        self._pending = PendingFile(self.path)  # a temporary file, or in place (a FIFO, -)
        self._file = self._pending.open("w", newline=newline)

    def _write(self, text: str) -> None:
        try:
            self._file.write(text)
            self._file.flush()
        except OSError as exc:
            self.discard()
            raise with_path(exc, self.path) from None

    def discard(self) -> None:
        with contextlib.suppress(OSError):  # closing flushes, which fails again on a full disk
            self._file.close()
        self._pending.discard()

    def _put_in_place(self) -> None:
        try:
            self._file.close()
            self._pending.commit()
        except OSError as exc:
            self.discard()
            raise with_path(exc, self.path) from None


class StatsSink(_TextRecord):
    """One JSON line per second of wall time (the stats of that moment, see
    :class:`~edgeseg.runtime.stats.StatsSnapshot`), then a final line with ``"final": true``.

    Per second rather than per frame: the file stays small on a camera left running for hours
    and each line already holds the FPS, latency percentiles and per-stage means of its window.
    """

    def __init__(self, path: str | Path, extra: dict[str, Any] | None = None) -> None:
        super().__init__(path, "stats")
        self.extra = extra or {}
        self._last = time.perf_counter()
        self._stats: PipelineStats | None = None

    def _emit(self, stats: PipelineStats, final: bool) -> None:
        self._write(json.dumps(stats_record(stats, self.extra, final)) + "\n")

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
        self._put_in_place()


class ClassSharesSink(_TextRecord):
    """One CSV row per frame: ``frame`` (its name), then the fraction of pixels of each class
    (the model's class names are the header) in the frame's mask.

    ``--class-shares FILE.csv``: the per-frame record of what the scene held, beside the masks
    or alone; a camera left running for an hour at 30 fps writes 108,000 rows of ~12 numbers.
    """

    def __init__(self, path: str | Path, class_names: tuple[str, ...] | list[str]) -> None:
        super().__init__(path, "class shares", newline="")
        self.class_names = list(class_names)
        self._line = io.StringIO()
        self._csv = csv.writer(self._line)
        self.rows = 0
        self._write_row(["frame", *self.class_names])

    def _write_row(self, row: list[Any]) -> None:
        self._line.seek(0)
        self._line.truncate()
        self._csv.writerow(row)
        self._write(self._line.getvalue())

    def write(self, result: FrameResult) -> None:
        if self._file.closed:
            return
        shares = result.class_shares
        self._write_row([result.frame.name, *(f"{shares[n]:.6f}" for n in self.class_names)])
        self.rows += 1

    def close(self) -> None:
        if not self._file.closed:
            self._put_in_place()
