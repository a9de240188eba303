"""``Pipeline``: capture, inference and render/output overlapped in three threads.

::

    capture thread --frames--> inference thread --results--> render/output (caller's thread)
     source.read()              preprocess, infer              postprocess (scores resized to
                                                               the frame, argmax: eval's mask),
                                                               overlay, sinks, latency

Latency policy, fixed by the source:

- **live** (camera, stream, GStreamer): the frame channel holds one frame; a newer frame
  replaces one inference has not taken yet, and the replaced frame is counted as dropped.
  Inference always works on the newest frame, so latency stays at about one capture plus one
  inference plus one render, however slow the model.
- **file** (video, image folder): bounded queues and blocking puts; capture waits for inference
  and nothing is ever dropped: the output has exactly as many frames as the input (minus frames
  that could not be decoded, which are counted as corrupt).

A live source that stops delivering is reopened with backoff (:class:`RetryPolicy`), each attempt
reported through ``on_event``; giving up raises EdgesegError. The run ends at the end of the
source, after ``max_frames``, when a sink asks (the window's ``q``), on :meth:`Pipeline.stop`, or
on Ctrl-C; in every case the sinks are finished and closed, so output files are complete and in
place (Ctrl-C is re-raised afterwards).

Render and sinks run on the thread that calls :meth:`Pipeline.run` (a display window must live
on the main thread).
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from edgeseg.errors import EdgesegError
from edgeseg.runtime.overlay import Renderer
from edgeseg.runtime.segmenter import Segmenter
from edgeseg.runtime.sinks import FrameResult, Sink
from edgeseg.runtime.sources import CorruptFrame, Frame, FrameSource, RetryPolicy, SourceLost
from edgeseg.runtime.stats import POLICY_FILE, POLICY_LIVE, PipelineStats, StatsSnapshot

_END = object()  # end-of-stream marker passed down the stages
_POLL_S = 0.05  # how often a blocked stage looks at the stop flag
FILE_QUEUE_FRAMES = 2


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
            return _END


class Pipeline:
    """Run ``segmenter`` over every frame of ``source`` into ``sinks``.

    ``renderer`` draws the overlay for sinks that show images (default: a
    :class:`~edgeseg.runtime.overlay.Renderer` with the card's palette, made only when a sink
    needs it). ``max_frames`` stops after that many results. ``retry`` governs reconnection of
    live sources; ``on_event`` receives one-line reports (source lost, reconnected).

    >>> Pipeline(open_source("clip.mp4"), Segmenter("model.onnx"), [VideoSink("out.mp4")]).run()
    """

    def __init__(
        self,
        source: FrameSource,
        segmenter: Segmenter,
        sinks: Sequence[Sink] = (),
        renderer: Renderer | None = None,
        max_frames: int | None = None,
        retry: RetryPolicy | None = None,
        on_event: Callable[[str], None] | None = None,
    ) -> None:
        if max_frames is not None and max_frames < 1:
            raise EdgesegError(f"max_frames must be at least 1, got {max_frames}")
        self.source, self.segmenter, self.sinks = source, segmenter, list(sinks)
        # Overlays are drawn only when a sink shows them (not for masks or stats alone).
        needs_render = any(s.needs_render for s in self.sinks)
        self.renderer = (renderer or Renderer(segmenter.card)) if needs_render else None
        self.max_frames = max_frames
        self.retry = retry or RetryPolicy()
        self.on_event = on_event
        self.live = bool(source.live)
        self.stats = PipelineStats(POLICY_LIVE if self.live else POLICY_FILE)
        self.events: deque[str] = deque(maxlen=200)  # the latest reports, bounded
        self.stopped_by = ""
        self._stop = threading.Event()
        self._errors: list[BaseException] = []
        self._frames: LatestFrameSlot | queue.Queue = (
            LatestFrameSlot() if self.live else queue.Queue(maxsize=FILE_QUEUE_FRAMES)
        )
        self._results: queue.Queue = queue.Queue(maxsize=1 if self.live else FILE_QUEUE_FRAMES)
        self._rendered: np.ndarray | None = None

    # -- control ----------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the pipeline to finish (from any thread); :meth:`run` returns soon after."""
        if not self.stopped_by:
            self.stopped_by = "stop"
        self._stop.set()

    def _report(self, message: str) -> None:
        self.events.append(message)
        if self.on_event is not None:
            self.on_event(message)

    def _put(self, channel: queue.Queue, item: Any) -> bool:
        # Blocking put that gives up when the pipeline stops (False) instead of hanging.
        while True:
            try:
                channel.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                if self._stop.is_set():
                    return False

    def _get(self, channel: Any) -> Any:
        while True:
            try:
                return channel.get(timeout=_POLL_S)
            except queue.Empty:
                if self._stop.is_set():
                    return _END

    # -- stage 1: capture -------------------------------------------------------------------

    def _capture_loop(self) -> None:
        read_limit = None if self.live else self.max_frames
        frames_read = 0
        try:
            while not self._stop.is_set():
                if read_limit is not None and frames_read >= read_limit:
                    break
                start = time.perf_counter()
                try:
                    frame = self.source.read()
                except CorruptFrame as exc:
                    self.stats.count("corrupt")
                    self._report(f"skipped a corrupt frame: {exc}")
                    continue
                except SourceLost as exc:
                    if not self._reconnect(exc):
                        break
                    continue
                if frame is None:
                    break
                frames_read += 1
                self.stats.add_stage("capture", time.perf_counter() - start)
                self.stats.count("frames_read")
                if self.live:
                    if self._frames.put(frame):
                        self.stats.count("dropped")
                elif not self._put(self._frames, frame):
                    break
        except BaseException as exc:  # handed to run(), which re-raises it on its thread
            self._errors.append(exc)
            self._stop.set()
        finally:
            if self.live:
                self._frames.close()
            else:
                self._put(self._frames, _END)
            self.source.close()

    def _reconnect(self, lost: SourceLost) -> bool:
        """Reopen the source with backoff; False if the pipeline stopped meanwhile."""
        self._report(f"{self.source.description} lost ({lost}); reconnecting")
        started, attempts = time.perf_counter(), 0
        for delay in self.retry.delays():
            if self._stop.wait(delay):
                return False
            attempts += 1
            try:
                self.source.reopen()
            except SourceLost as exc:
                self._report(f"reconnection attempt {attempts} failed: {exc}")
                continue
            self.stats.count("reconnects")
            self._report(f"{self.source.description} reconnected after {attempts} attempt(s)")
            return True
        raise EdgesegError(
            f"lost {self.source.description}: no frames after {attempts} reconnection attempts "
            f"over {time.perf_counter() - started:.1f} s"
        )

    # -- stage 2: inference -----------------------------------------------------------------

    def _infer_loop(self) -> None:
        segmenter = self.segmenter
        try:
            while True:
                frame = self._get(self._frames)
                if frame is _END:
                    break
                t0 = time.perf_counter()
                batch = segmenter.preprocess(frame.image)
                t1 = time.perf_counter()
                output = segmenter.infer(batch)
                t2 = time.perf_counter()
                timings = {"preprocess": t1 - t0, "infer": t2 - t1}
                for stage, seconds in timings.items():
                    self.stats.add_stage(stage, seconds)
                # Post-processing (resizing the scores to the frame) runs in the render stage:
                # it costs as much as drawing, and this thread is the one the model keeps busy.
                if not self._put(self._results, (frame, output[0], timings)):
                    break
        except BaseException as exc:
            self._errors.append(exc)
            self._stop.set()
        finally:
            self._put(self._results, _END)

    # -- stage 3: render and output (caller's thread) ---------------------------------------

    def _render(self, frame: Frame, output: np.ndarray, timings: dict[str, float]) -> None:
        start = time.perf_counter()
        mask = self.segmenter.postprocess(output, frame.image.shape[:2])
        timings["postprocess"] = time.perf_counter() - start
        self.stats.add_stage("postprocess", timings["postprocess"])
        start = time.perf_counter()
        rendered = None
        if self.renderer is not None:
            self._rendered = rendered = self.renderer.render(frame.image, mask, out=self._rendered)
        result = FrameResult(frame, mask, rendered, self.stats, dict(timings))
        for sink in self.sinks:
            sink.write(result)
        seconds = time.perf_counter() - start
        result.timings["render"] = seconds
        self.stats.add_stage("render", seconds)
        self.stats.frame_done(time.perf_counter() - frame.captured_at)

    def run(self) -> StatsSnapshot:
        """Process until the end (see the module docstring); returns the final stats.

        Raises the first error a stage hit (EdgesegError for a lost source), after the sinks
        are closed. Ctrl-C finishes the outputs and is re-raised.
        """
        self.stats.start()
        threads = [
            threading.Thread(target=self._capture_loop, name="edgeseg-capture", daemon=True),
            threading.Thread(target=self._infer_loop, name="edgeseg-infer", daemon=True),
        ]
        for thread in threads:
            thread.start()
        interrupted = False
        try:
            while True:
                item = self._get(self._results)
                if item is _END:
                    break
                self._render(*item)
                if any(s.stop_requested for s in self.sinks):
                    self.stopped_by = self.stopped_by or "user"
                    break
                if self.max_frames is not None and self.stats.frames_done >= self.max_frames:
                    self.stopped_by = self.stopped_by or "max_frames"
                    break
        except KeyboardInterrupt:
            interrupted = True
            self.stopped_by = "interrupt"
        except BaseException as exc:
            self._errors.append(exc)
        finally:
            self._stop.set()
            for thread in threads:
                thread.join(timeout=10)
            self._close_sinks()
        if interrupted:
            raise KeyboardInterrupt
        if self._errors:
            raise self._errors[0]
        self.stopped_by = self.stopped_by or "end"
        return self.stats.snapshot()

    def _close_sinks(self) -> None:
        first_error: BaseException | None = None
        for sink in self.sinks:
            try:
                sink.finish(self.stats)
                sink.close()
            except BaseException as exc:  # close every sink even if one fails
                first_error = first_error or exc
        if first_error is not None:
            self._errors.append(first_error)
