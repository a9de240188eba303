"""Per-stage timing, latency percentiles and frame counters of a running pipeline.

Stages: ``capture`` (reading and decoding a frame), ``preprocess``, ``infer``, ``postprocess``
(argmax and resize to the frame), ``render`` (overlay and every sink). Two delays per frame, both
from the moment the frame left the source (``Frame.captured_at``):

- ``capture_to_output``: until its overlay is handed to the display or the writer, the delay a
  viewer (or a vehicle application) sees, queueing included;
- ``latency``: until its result left the last sink (encoding and file writes included).

``class_share`` is the fraction of pixels per class in the latest frame
(:func:`~edgeseg.runtime.shares.class_shares`), computed only when a snapshot asks for it (the
stats file, once a second), not per frame. Memory stays bounded however long the stream runs:
percentiles come from the latest :data:`WINDOW` frames, totals are counters.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgeseg.runtime.shares import class_shares

STAGES = ("capture", "preprocess", "infer", "postprocess", "render")
WINDOW = 1000  # frames kept for percentiles
RATE_WINDOW_S = 2.0  # the live FPS is measured over this many seconds

POLICY_LIVE = "live: newest frame only, stale frames dropped"
POLICY_FILE = "file: every frame, none dropped"


@dataclass(frozen=True)
class StatsSnapshot:
    """A consistent view of the counters and timings at one moment."""

    elapsed_s: float
    frames_read: int
    frames_done: int
    dropped: int
    corrupt: int
    reconnects: int
    fps: float  # over the last RATE_WINDOW_S seconds
    mean_fps: float  # frames_done / elapsed
    latency_p50_ms: float
    latency_p95_ms: float
    stage_ms: dict[str, float] = field(default_factory=dict)  # mean over the window
    policy: str = ""
    capture_to_output_p50_ms: float = 0.0
    capture_to_output_p95_ms: float = 0.0
    class_share: dict[str, float] = field(default_factory=dict)  # latest frame, when asked

    def to_dict(self) -> dict[str, Any]:
        record = {
            "elapsed_s": round(self.elapsed_s, 3),
            "frames_read": self.frames_read,
            "frames_done": self.frames_done,
            "dropped": self.dropped,
            "corrupt": self.corrupt,
            "reconnects": self.reconnects,
            "fps": round(self.fps, 2),
            "mean_fps": round(self.mean_fps, 2),
            "latency_p50_ms": round(self.latency_p50_ms, 2),
            "latency_p95_ms": round(self.latency_p95_ms, 2),
            "capture_to_output_ms": {
                "p50": round(self.capture_to_output_p50_ms, 2),
                "p95": round(self.capture_to_output_p95_ms, 2),
            },
            "stage_ms": {k: round(v, 2) for k, v in self.stage_ms.items()},
            "policy": self.policy,
        }
        if self.class_share:
            record["class_share"] = {k: round(v, 5) for k, v in self.class_share.items()}
        return record

    def line(self) -> str:
        """``"14.8 fps | latency p50 71 ms p95 80 ms | dropped 0 | ..."``: the live stats line."""
        stages = " ".join(f"{k} {v:.1f}" for k, v in self.stage_ms.items())
        text = (
            f"{self.fps:.1f} fps | capture to output p50 {self.capture_to_output_p50_ms:.0f} ms "
            f"p95 {self.capture_to_output_p95_ms:.0f} ms | latency p50 "
            f"{self.latency_p50_ms:.0f} ms p95 {self.latency_p95_ms:.0f} ms "
            f"| dropped {self.dropped}"
        )
        if self.corrupt:
            text += f" | corrupt {self.corrupt}"
        if self.reconnects:
            text += f" | reconnects {self.reconnects}"
        return f"{text} | ms: {stages}" if stages else text

    def short_line(self) -> str:
        """FPS and capture-to-output delay only: the text drawn on the display."""
        return (
            f"{self.fps:.1f} fps  p50 {self.capture_to_output_p50_ms:.0f} ms  "
            f"p95 {self.capture_to_output_p95_ms:.0f} ms  dropped {self.dropped}"
        )


class PipelineStats:
    """Thread-safe counters and timings; the pipeline's stages report into one instance."""

    def __init__(self, policy: str = "", class_names: tuple[str, ...] = ()) -> None:
        self.policy = policy
        self.class_names = tuple(class_names)
        self._lock = threading.Lock()
        self._start = time.perf_counter()
        self._done_times: deque[float] = deque()
        self._latencies: deque[float] = deque(maxlen=WINDOW)
        self._to_output: deque[float] = deque(maxlen=WINDOW)
        self._latest_map: np.ndarray | None = None
        self._stages: dict[str, deque[float]] = {s: deque(maxlen=WINDOW) for s in STAGES}
        self.frames_read = 0
        self.frames_done = 0
        self.dropped = 0
        self.corrupt = 0
        self.reconnects = 0

    def start(self) -> None:
        """Restart the clock ``elapsed_s`` and ``mean_fps`` are measured from."""
        with self._lock:
            self._start = time.perf_counter()

    def count(self, name: str, n: int = 1) -> None:
        """Add ``n`` to counter ``name`` (frames_read, dropped, corrupt, reconnects)."""
        with self._lock:
            setattr(self, name, getattr(self, name) + n)

    def add_stage(self, stage: str, seconds: float) -> None:
        with self._lock:
            self._stages[stage].append(seconds)

    def output_ready(self, seconds: float) -> None:
        """A frame's overlay went to the display or writer ``seconds`` after its capture."""
        with self._lock:
            self._to_output.append(seconds)

    def frame_done(self, latency_s: float, class_map: np.ndarray | None = None) -> None:
        """A frame left the last sink ``latency_s`` after capture; ``class_map`` is its
        (h, w) classes, kept (not copied: the pipeline makes a new one per frame) for the
        class shares of the next snapshot that asks."""
        now = time.perf_counter()
        with self._lock:
            self.frames_done += 1
            self._latencies.append(latency_s)
            if class_map is not None:
                self._latest_map = class_map
            self._done_times.append(now)
            while self._done_times and now - self._done_times[0] > RATE_WINDOW_S:
                self._done_times.popleft()

    def snapshot(self, class_share: bool = False) -> StatsSnapshot:
        """The stats now; ``class_share``: include the latest frame's class shares."""
        now = time.perf_counter()
        with self._lock:
            latest = self._latest_map
            to_output = np.asarray(self._to_output, dtype=np.float64) * 1000
            elapsed = now - self._start
            times = [t for t in self._done_times if now - t <= RATE_WINDOW_S]
            if len(times) >= 2:
                fps = (len(times) - 1) / max(times[-1] - times[0], 1e-9)
            else:
                fps = len(times) / RATE_WINDOW_S
            latencies = np.asarray(self._latencies, dtype=np.float64) * 1000
            stage_ms = {s: float(np.mean(v)) * 1000 for s, v in self._stages.items() if v}
            p50, p95 = _percentiles(latencies)
            out50, out95 = _percentiles(to_output)
            snapshot = StatsSnapshot(
                elapsed_s=elapsed,
                frames_read=self.frames_read,
                frames_done=self.frames_done,
                dropped=self.dropped,
                corrupt=self.corrupt,
                reconnects=self.reconnects,
                fps=fps,
                mean_fps=self.frames_done / elapsed if elapsed > 0 else 0.0,
                latency_p50_ms=p50,
                latency_p95_ms=p95,
                stage_ms=stage_ms,
                policy=self.policy,
                capture_to_output_p50_ms=out50,
                capture_to_output_p95_ms=out95,
            )
        if class_share and latest is not None:  # outside the lock: a histogram of the map
            shares = class_shares(latest, self.class_names or None)
            snapshot = dataclasses.replace(snapshot, class_share=shares)
        return snapshot


def _percentiles(values_ms: np.ndarray) -> tuple[float, float]:
    if not values_ms.size:
        return 0.0, 0.0
    return float(np.percentile(values_ms, 50)), float(np.percentile(values_ms, 95))
