"""Per-stage timing, latency percentiles and frame counters of a running pipeline.

Stages: ``capture`` (reading and decoding a frame), ``preprocess``, ``infer``, ``postprocess``
(argmax and resize to the frame), ``render`` (overlay and every sink). Latency is from the moment
a frame was captured to the moment its result left the last sink, so it includes queueing.
Memory stays bounded however long the stream runs: percentiles come from the latest
:data:`WINDOW` frames, totals are counters.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

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

    def to_dict(self) -> dict[str, Any]:
        return {
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
            "stage_ms": {k: round(v, 2) for k, v in self.stage_ms.items()},
            "policy": self.policy,
        }

    def line(self) -> str:
        """``"14.8 fps | latency p50 71 ms p95 80 ms | dropped 0 | ..."``: the live stats line."""
        stages = " ".join(f"{k} {v:.1f}" for k, v in self.stage_ms.items())
        text = (
            f"{self.fps:.1f} fps | latency p50 {self.latency_p50_ms:.0f} ms "
            f"p95 {self.latency_p95_ms:.0f} ms | dropped {self.dropped}"
        )
        if self.corrupt:
            text += f" | corrupt {self.corrupt}"
        if self.reconnects:
            text += f" | reconnects {self.reconnects}"
        return f"{text} | ms: {stages}" if stages else text

    def short_line(self) -> str:
        """FPS and latency only: the text drawn on the display."""
        return (
            f"{self.fps:.1f} fps  p50 {self.latency_p50_ms:.0f} ms  "
            f"p95 {self.latency_p95_ms:.0f} ms  dropped {self.dropped}"
        )


class PipelineStats:
    """Thread-safe counters and timings; the pipeline's stages report into one instance."""

    def __init__(self, policy: str = "") -> None:
        self.policy = policy
        self._lock = threading.Lock()
        self._start = time.perf_counter()
        self._done_times: deque[float] = deque()
        self._latencies: deque[float] = deque(maxlen=WINDOW)
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

    def frame_done(self, latency_s: float) -> None:
        now = time.perf_counter()
        with self._lock:
            self.frames_done += 1
            self._latencies.append(latency_s)
            self._done_times.append(now)
            while self._done_times and now - self._done_times[0] > RATE_WINDOW_S:
                self._done_times.popleft()

    def snapshot(self) -> StatsSnapshot:
        now = time.perf_counter()
        with self._lock:
            elapsed = now - self._start
            times = [t for t in self._done_times if now - t <= RATE_WINDOW_S]
            if len(times) >= 2:
                fps = (len(times) - 1) / max(times[-1] - times[0], 1e-9)
            else:
                fps = len(times) / RATE_WINDOW_S
            latencies = np.asarray(self._latencies, dtype=np.float64) * 1000
            stage_ms = {s: float(np.mean(v)) * 1000 for s, v in self._stages.items() if v}
            p50, p95 = (
                (float(np.percentile(latencies, 50)), float(np.percentile(latencies, 95)))
                if latencies.size
                else (0.0, 0.0)
            )
            return StatsSnapshot(
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
            )
