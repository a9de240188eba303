"""``edgeseg run`` with several sources: the thin layer over
:func:`edgeseg.runtime.run_streams.run_streams` (``edgeseg run --source A --source B``, or a
``.streams`` file). Progress is one stderr line per second with every stream's frames and FPS
and the batch achieved; the summary is one line per stream, one for the batch.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import click

from edgeseg.cli.run import _info, _option_objects, bundled_model

PROGRESS_INTERVAL_S = 1.0


class _StreamsProgress:
    """A sink of the streams pipeline (duck-typed): once a second, every stream's frames done
    and FPS, and the batch size achieved, on stderr (in place on a terminal)."""

    stop_requested = False
    needs_render = False

    def __init__(self) -> None:
        self.snapshot: Any = None
        self.last = 0.0
        self.tty = sys.stderr.isatty()

    def write(self, result: Any) -> None:
        now = time.perf_counter()
        if self.snapshot is None or now - self.last < PROGRESS_INTERVAL_S:
            return
        self.last = now
        snap = self.snapshot()
        parts = [f"{name} {s.frames_done} ({s.fps:.1f} fps)" for name, s in snap.streams.items()]
        line = f"streams: {', '.join(parts)} | {snap.batch.line()}"
        if self.tty:
            click.echo(f"\r{line}\x1b[K", err=True, nl=False)
        else:
            click.echo(f"edgeseg: {line}", err=True)

    def finish(self, stats: Any) -> None:
        pass

    def close(self) -> None:
        if self.tty and self.last:
            click.echo("", err=True)

    def discard(self) -> None:
        pass


def run_streams_command(
    model: str | None,
    sources: tuple[str, ...],
    max_frames: int | None,
    mosaic: str | None,
    camera_size: Any,
    options: dict[str, Any],
) -> None:
    """Run several streams with progress; print one summary line per stream and the batch."""
    from edgeseg.interrupts import SignalGuard
    from edgeseg.runtime.run_streams import run_streams

    progress = _StreamsProgress()
    objects = _option_objects(camera_size, options)

    def on_ready(segmenter: Any, streams: Any) -> None:
        card = segmenter.card
        _info(
            f"model {model}: {card.architecture}, {card.num_classes} classes, input "
            f"{card.input_hw[0]}x{card.input_hw[1]}, {card.precision}; backend "
            f"{segmenter.describe()}, largest batch per call "
            f"{segmenter.max_batch or 'any'}; {len(streams.lanes)} streams, one batch per step"
        )
        for lane in streams.lanes:
            policy = "live: newest frame only" if lane.live else "file: every frame"
            _info(f"stream {lane.name}: {lane.source.description} ({policy})")
        progress.snapshot = streams.snapshot

    with SignalGuard(final=True):
        model = bundled_model(model, objects.pop("backend"))
        summary = run_streams(
            model, list(sources), mosaic=mosaic, max_frames=max_frames, extra_sinks=[progress],
            on_ready=on_ready, on_event=_info, **objects,
        )  # fmt: skip
    for name, s in summary.stats.streams.items():
        _info(
            f"stream {name}: {s.frames_done} frames in {s.elapsed_s:.1f} s ({s.mean_fps:.1f} fps); "
            f"capture to output p50 {s.capture_to_output_p50_ms:.0f} ms p95 "
            f"{s.capture_to_output_p95_ms:.0f} ms; dropped {s.dropped}, corrupt {s.corrupt}, "
            f"reconnects {s.reconnects}; stopped by {summary.stats.stopped_by.get(name, '')}"
        )
    _info(f"{summary.stats.aggregate_fps:.1f} fps over all streams; {summary.stats.batch.line()}")
    for path in summary.outputs:
        _info(f"wrote {path}")
