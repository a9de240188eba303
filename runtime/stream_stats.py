"""Stats of a multi-stream run: each stream's own, and the batch's.

Each stream keeps a :class:`~edgeseg.runtime.stats.PipelineStats` (FPS, capture-to-output and
latency p50/p95, drops, corrupt frames, reconnects, class shares of its latest frame), so its
record is the one ``edgeseg run --stats`` writes for one source. The batch adds what only a
shared engine has: how many frames each step gathered (the batch size achieved), how many the
engine took per call (its largest batch: a static-batch-1 ONNX takes one, so N frames are N
calls), and the preprocess and inference milliseconds per batch.

A stream's ``infer`` stage time is its batch's: the wait its frame saw, not a share of it.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgeseg.runtime.records import STATS_INTERVAL_S, _TextRecord
from edgeseg.runtime.results import FrameResult
from edgeseg.runtime.stats import WINDOW, PipelineStats, StatsSnapshot


@dataclass(frozen=True)
class BatchSnapshot:
    """The shared engine's view: steps run, frames per step, engine calls, ms per batch."""

    steps: int
    frames: int
    mean_batch: float  # frames per step, over the whole run
    max_batch: int  # the largest step
    batch_sizes: dict[int, int]  # frames per step -> steps, over the whole run
    engine_max_batch: int | None  # what one engine call takes (None: any batch at once)
    engine_batch: int  # frames per engine call in the largest step
    infer_ms_p50: float  # per batch (all its engine calls), over the latest WINDOW steps
    infer_ms_p95: float
    infer_ms_per_frame: float  # mean over the window
    preprocess_ms: float  # mean per batch over the window

    def to_dict(self) -> dict[str, Any]:
        return {
            "steps": self.steps,
            "frames": self.frames,
            "mean_batch": round(self.mean_batch, 3),
            "max_batch": self.max_batch,
            "batch_sizes": {str(k): v for k, v in sorted(self.batch_sizes.items())},
            "engine_max_batch": self.engine_max_batch,
            "engine_batch": self.engine_batch,
            "infer_ms_per_batch": {
                "p50": round(self.infer_ms_p50, 2),
                "p95": round(self.infer_ms_p95, 2),
            },
            "infer_ms_per_frame": round(self.infer_ms_per_frame, 2),
            "preprocess_ms_per_batch": round(self.preprocess_ms, 2),
        }

    def line(self) -> str:
        """``"batch 3.9 frames (engine 4 per call), infer p50 120 ms p95 140 ms per batch"``"""
        engine = self.engine_batch if self.engine_batch else "-"
        return (
            f"batch {self.mean_batch:.1f} frames (engine {engine} per call), infer p50 "
            f"{self.infer_ms_p50:.0f} ms p95 {self.infer_ms_p95:.0f} ms per batch, "
            f"{self.infer_ms_per_frame:.1f} ms per frame"
        )


class BatchStats:
    """Thread-safe record of the batch steps; the batch thread adds, anyone snapshots.

    ``engine_max_batch``: the Segmenter's :attr:`~edgeseg.runtime.segmenter.Segmenter.max_batch`.
    """

    def __init__(self, engine_max_batch: int | None = None) -> None:
        self.engine_max_batch = engine_max_batch
        self._lock = threading.Lock()
        self._sizes: Counter[int] = Counter()
        self._infer: deque[tuple[float, int]] = deque(maxlen=WINDOW)
        self._preprocess: deque[float] = deque(maxlen=WINDOW)

    def add(self, size: int, preprocess_s: float, infer_s: float) -> None:
        with self._lock:
            self._sizes[size] += 1
            self._infer.append((infer_s, size))
            self._preprocess.append(preprocess_s)

    def snapshot(self) -> BatchSnapshot:
        with self._lock:
            sizes = dict(self._sizes)
            infer = list(self._infer)
            preprocess = list(self._preprocess)
        steps = sum(sizes.values())
        frames = sum(k * v for k, v in sizes.items())
        largest = max(sizes, default=0)
        seconds = np.asarray([s for s, _ in infer], np.float64) * 1000
        per_frame = sum(s for s, _ in infer) / max(1, sum(n for _, n in infer)) * 1000
        engine = min(largest, self.engine_max_batch or largest)
        return BatchSnapshot(
            steps=steps,
            frames=frames,
            mean_batch=frames / steps if steps else 0.0,
            max_batch=largest,
            batch_sizes=sizes,
            engine_max_batch=self.engine_max_batch,
            engine_batch=engine,
            infer_ms_p50=float(np.percentile(seconds, 50)) if seconds.size else 0.0,
            infer_ms_p95=float(np.percentile(seconds, 95)) if seconds.size else 0.0,
            infer_ms_per_frame=per_frame,
            preprocess_ms=float(np.mean(preprocess)) * 1000 if preprocess else 0.0,
        )


@dataclass(frozen=True)
class StreamsSnapshot:
    """Every stream's :class:`~edgeseg.runtime.stats.StatsSnapshot` (by name, in order), the
    batch's, and why each stream stopped (empty while it runs)."""

    streams: dict[str, StatsSnapshot]
    batch: BatchSnapshot
    stopped_by: dict[str, str] = field(default_factory=dict)

    @property
    def frames_done(self) -> int:
        return sum(s.frames_done for s in self.streams.values())

    @property
    def aggregate_fps(self) -> float:
        """Frames of every stream per second of the longest stream's run."""
        elapsed = max((s.elapsed_s for s in self.streams.values()), default=0.0)
        return self.frames_done / elapsed if elapsed > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "streams": {
                name: {**snap.to_dict(), "stopped_by": self.stopped_by.get(name, "")}
                for name, snap in self.streams.items()
            },
            "batch": self.batch.to_dict(),
            "frames_done": self.frames_done,
            "aggregate_fps": round(self.aggregate_fps, 2),
        }


def streams_record(snapshot: StreamsSnapshot, extra: dict[str, Any], final: bool) -> dict[str, Any]:
    """One line of a multi-stream ``--stats`` file, and the ``/stats`` answer of its page."""
    return {**extra, **snapshot.to_dict(), "final": final}


class StreamsStatsSink(_TextRecord):
    """``--stats FILE`` of a multi-stream run: one JSON line per second with every stream's
    record and the batch's (:func:`streams_record`), then a final line with ``"final": true``.

    ``snapshot``: called for each line (the StreamsPipeline's ``snapshot``, given with
    :meth:`attach` once the pipeline exists).
    """

    def __init__(self, path: str | Path, extra: dict[str, Any] | None = None) -> None:
        super().__init__(path, "stats")
        self.extra = extra or {}
        self._last = time.perf_counter()
        self._snapshot: Any = None

    def attach(self, snapshot: Any) -> None:
        self._snapshot = snapshot

    def _emit(self, final: bool) -> None:
        if self._snapshot is not None:
            record = streams_record(self._snapshot(class_share=True), self.extra, final)
            self._write(json.dumps(record) + "\n")

    def write(self, result: FrameResult) -> None:
        now = time.perf_counter()
        if not self._file.closed and now - self._last >= STATS_INTERVAL_S:
            self._last = now
            self._emit(final=False)

    def finish(self, stats: PipelineStats) -> None:
        pass

    def close(self) -> None:
        if self._file.closed:
            return
        self._emit(final=True)
        self._put_in_place()
