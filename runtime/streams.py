"""``StreamsPipeline``: several sources through one Segmenter, one batch per step.

::

    capture thread per stream --frames--> batch thread ----results----> render/output
     (a StreamLane: the single-source      one frame per stream,          (caller's thread)
      Pipeline's own capture stage)        one preprocess + one infer     each stream's post-
                                           for all of them                process, overlay and
                                                                          sinks; the mosaic

A vehicle with four to eight cameras runs one model, not four to eight copies of it: each step
gathers at most one frame per stream into one batch, runs it through the one engine (in chunks of
its largest batch: a static-batch-1 ONNX runs the frames one after the other, a dynamic one all at
once) and hands each result back to its stream, whose outputs are its own.

Each stream is a :class:`StreamLane`, a :class:`~edgeseg.runtime.pipeline.Pipeline` whose
inference stage is shared: its capture stage is the single-source one, so a live stream keeps
only its newest frame (the others are counted as its drops), a file gives every frame in order,
an undecodable frame is skipped and counted, and a lost stream is reopened with the same
:class:`~edgeseg.runtime.frames.RetryPolicy` and messages as one source. Its stats, renderer and
sinks are the single-source ones too, so one stream's outputs equal what ``edgeseg run`` writes
for that source alone.

Gathering never waits for a stream that is behind. A step waits up to ``slot_timeout_s`` after
its first frame for the streams that delivered in the step before, and not at all for one that
missed it (a stalled camera, a stream reconnecting): its slot is skipped until a frame comes
again. A stream that ends (its file is over, ``max_frames``, a lost source that gave up, or one
of its own outputs that failed to write) finalises its own outputs at once and the others go
on; an error of one stream is reported when it happens and raised once every stream has
finished.

The stop machinery is the single-source pipeline's (this class inherits it): Ctrl-C, SIGTERM or
SIGHUP stop reading on every stream, let the frames already read through, then finalise every
stream's outputs and the mosaic's.
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
from edgeseg.runtime.channels import END
from edgeseg.runtime.frames import Frame, FrameSource, RetryPolicy
from edgeseg.runtime.mosaic import Mosaic
from edgeseg.runtime.overlay import Renderer
from edgeseg.runtime.pipeline import FILE_QUEUE_FRAMES, Pipeline
from edgeseg.runtime.results import FrameResult, Sink
from edgeseg.runtime.segmenter import Segmenter
from edgeseg.runtime.stats import PipelineStats, StatsSnapshot
from edgeseg.runtime.stopping import StopDeadline
from edgeseg.runtime.stream_stats import BatchStats, StreamsSnapshot

SLOT_TIMEOUT_S = 0.05  # how long a step waits for a punctual stream after its first frame
_POLL_S = 0.05


class _SignallingChannel:
    """A lane's frame channel that also sets the pipeline's ``arrived`` event, so the batch
    thread sleeps until some stream has a frame instead of polling each in turn."""

    def __init__(self, channel: Any, arrived: threading.Event) -> None:
        self._channel, self._arrived = channel, arrived

    def put(self, item: Any, *args: Any, **kwargs: Any) -> Any:
        result = self._channel.put(item, *args, **kwargs)
        self._arrived.set()
        return result

    def get(self, timeout: float) -> Any:
        return self._channel.get(timeout=timeout)

    def empty(self) -> bool:
        return bool(self._channel.empty())

    def close(self) -> None:
        self._channel.close()
        self._arrived.set()


class _LaneFrames:
    """Every stream's frame channel seen as one, for the inherited drain: empty when no
    stream has a frame read and not yet taken into a step."""

    def __init__(self, lanes: list[Any]) -> None:
        self._lanes = lanes

    def empty(self) -> bool:
        return all(lane._frames.empty() for lane in self._lanes)


class StreamLane(Pipeline):
    """One stream of a :class:`StreamsPipeline`: a single-source Pipeline (capture stage,
    reconnection, stats, renderer, sinks) whose inference the StreamsPipeline does in batches.

    ``name`` labels its outputs (``{stream}``), its stats and its tile of the mosaic.
    ``render``: draw the overlay even when none of its own sinks shows it (the mosaic does).
    """

    def __init__(
        self,
        name: str,
        source: FrameSource,
        segmenter: Segmenter,
        sinks: Sequence[Sink] = (),
        *,
        renderer: Renderer | None = None,
        render: bool = False,
        max_frames: int | None = None,
        retry: RetryPolicy | None = None,
        on_event: Callable[[str], None] | None = None,
    ) -> None:
        report = (lambda text: on_event(f"stream {name}: {text}")) if on_event else None
        super().__init__(
            source, segmenter, sinks, renderer=renderer, max_frames=max_frames, retry=retry,
            on_event=report, handle_signals=False,
        )  # fmt: skip
        self.name = name
        if render and self.renderer is None:
            self.renderer = renderer or Renderer(segmenter.card)
        self.capture_thread: threading.Thread | None = None
        self.ended = False  # the batch thread has seen its end
        self.finished = False  # its sinks are closed
        self.late = False  # missed the last step: the next one does not wait for it
        self.final: StatsSnapshot | None = None  # its stats when it finished

    def take(self) -> Any:
        """Its next frame if one is ready, END once its capture is over, else None."""
        thread = self.capture_thread
        # A capture stage that died before it could post its end (an error while the channel
        # was full) ends the stream all the same; looked at before the channel, so a frame put
        # just before it ended is still taken.
        over = thread is not None and thread.ident is not None and not thread.is_alive()
        try:
            return self._frames.get(timeout=0)
        except queue.Empty:
            return END if over else None


class StreamsPipeline(Pipeline):
    """Run one ``segmenter`` over several :class:`StreamLane` s, batched (module docstring).

    ``sinks``: what sees every step as a whole (``mosaic_sinks``: the tiled view as a video, a
    folder, a window, the browser page; a combined stats file), each given a
    :class:`~edgeseg.runtime.results.FrameResult` whose image is the mosaic. ``slot_timeout_s``:
    how long a step waits for a punctual stream. Lanes share this pipeline's stop: build them
    with :meth:`add_lane`.

    >>> streams = StreamsPipeline(Segmenter("model.onnx"))
    >>> streams.add_lane("front", open_source("front.mp4"), [VideoSink("front_out.mp4")])
    >>> streams.add_lane("rear", open_source("rear.mp4"), [VideoSink("rear_out.mp4")])
    >>> streams.run()
    """

    def __init__(
        self,
        segmenter: Segmenter,
        mosaic_sinks: Sequence[Sink] = (),
        *,
        slot_timeout_s: float = SLOT_TIMEOUT_S,
        tile_hw: tuple[int, int] | None = None,
        on_event: Callable[[str], None] | None = None,
        handle_signals: bool = True,
    ) -> None:
        # Not Pipeline.__init__: this class has no source of its own. It keeps the attributes
        # the inherited control methods (stop, _put, _get, _drain, _report) work on.
        self.segmenter = segmenter
        self.sinks = list(mosaic_sinks)
        self.on_event, self.handle_signals = on_event, handle_signals
        self.slot_timeout_s = slot_timeout_s
        self.lanes: list[StreamLane] = []
        self.events: deque[str] = deque(maxlen=200)  # the latest reports, bounded
        self.stopped_by = ""
        self._stop = threading.Event()
        self._stop_reading = threading.Event()
        self._arrived = threading.Event()
        self._errors: list[BaseException] = []
        self._results: queue.Queue = queue.Queue()  # bounded in run(), once lanes are known
        # What the inherited stop path (_drain, the shutdown join) reads: one deadline for all
        # streams, a step in flight, and the frames read but not yet taken by any stream.
        self.deadline = StopDeadline()
        self._inferring = False
        self._frames = _LaneFrames(self.lanes)
        self.batch = BatchStats(segmenter.max_batch)
        self.mosaic_stats = PipelineStats("mosaic: one tiled frame per step")
        self._mosaic = Mosaic(tile_hw) if any(s.needs_render for s in self.sinks) else None

    def add_lane(
        self, name: str, source: FrameSource, sinks: Sequence[Sink] = (), **kw: Any
    ) -> StreamLane:
        """A new stream ``name`` reading ``source`` into ``sinks`` (:class:`StreamLane`'s
        keywords: renderer, max_frames, retry), sharing this pipeline's stop and batch."""
        if any(lane.name == name for lane in self.lanes):
            raise EdgesegError(f"two streams are named {name}; give each its own name")
        kw.setdefault("on_event", self.on_event)
        lane = StreamLane(
            name, source, self.segmenter, sinks, render=self._mosaic is not None, **kw
        )
        lane._stop_reading = self._stop_reading  # a stop signal stops every stream's reading
        lane._frames = _SignallingChannel(lane._frames, self._arrived)
        self.lanes.append(lane)
        return lane

    # -- the batch thread -------------------------------------------------------------------

    def _gather(self) -> list[tuple[StreamLane, Frame]] | None:
        """One frame from each stream that has one (module docstring); None when all ended."""
        taken: dict[StreamLane, Frame] = {}
        deadline: float | None = None
        while True:
            self._arrived.clear()
            for lane in self.lanes:
                if lane.finished:  # ended by the render stage (max_frames): nothing more
                    lane.ended = True
                if lane.ended or lane in taken:
                    continue
                item = lane.take()
                if item is END:
                    lane.ended = True
                    self._put(self._results, (lane, END, None, None, False))
                elif item is not None:
                    taken[lane] = item
            open_lanes = [lane for lane in self.lanes if not lane.ended]
            if not open_lanes and not taken:
                return None
            waiting = [ln for ln in open_lanes if ln not in taken and not ln.late]
            now = time.perf_counter()
            if taken and deadline is None:
                deadline = now + self.slot_timeout_s
            if (taken and (not waiting or now >= deadline)) or self._stop.is_set():
                break
            self._arrived.wait(_POLL_S if deadline is None else max(0.0, deadline - now))
        for lane in open_lanes:
            lane.late = lane not in taken
        return [(lane, taken[lane]) for lane in self.lanes if lane in taken]

    def _infer_step(self, taken: list[tuple[StreamLane, Frame]]) -> bool:
        """Preprocess, infer once for the whole batch, hand each stream its result."""
        segmenter = self.segmenter
        self._inferring = True
        t0 = time.perf_counter()
        batch = np.concatenate([segmenter.preprocess(frame.image) for _, frame in taken])
        t1 = time.perf_counter()
        output = segmenter.infer(batch)
        t2 = time.perf_counter()
        self.batch.add(len(taken), t1 - t0, t2 - t1)
        self._inferring = False
        for i, (lane, frame) in enumerate(taken):
            timings = {"preprocess": (t1 - t0) / len(taken), "infer": t2 - t1}
            for stage, seconds in timings.items():
                lane.stats.add_stage(stage, seconds)
            if not self._put(self._results, (lane, frame, output[i], timings, i == len(taken) - 1)):
                return False
        return True

    def _infer_loop(self) -> None:
        try:
            while not self._stop.is_set():
                taken = self._gather()
                if taken is None:
                    break
                if taken and not self._infer_step(taken):
                    break
        except BaseException as exc:  # handed to run(), which re-raises it on its thread
            self._errors.append(exc)
            self._stop.set()
        finally:
            self._put(self._results, END)

    # -- render and outputs (caller's thread) -----------------------------------------------

    def _render(self, lane: StreamLane, frame: Any, output: Any, timings: Any, last: bool) -> None:
        """One stream's result through its own render and sinks (or its end); after the last
        result of a step, the mosaic."""
        if lane.finished:
            return
        if frame is END:
            self._finish_lane(lane, "end")
            return
        try:
            lane._render(frame, output, timings)
        except Exception as exc:  # one stream's output failed (its disk, its sink): it ends
            lane._errors.append(exc)
            self._finish_lane(lane, "error")
            return
        if self._mosaic is not None and lane._rendered is not None:
            self._mosaic.put(self.lanes.index(lane), lane.name, len(self.lanes), lane._rendered)
        if any(s.stop_requested for s in lane.sinks):
            self.stopped_by = self.stopped_by or "user"
            self._stop_stages()
        elif lane.max_frames is not None and lane.stats.frames_done >= lane.max_frames:
            self._finish_lane(lane, "max_frames")
        if last:
            self._write_step(frame)

    def _write_step(self, frame: Frame) -> None:
        """The mosaic (or, without one, only the step) to the sinks that see every stream."""
        if not self.sinks:
            return
        image = self._mosaic.image() if self._mosaic is not None else frame.image
        step = self.mosaic_stats.frames_done
        tiled = Frame(image, step, frame.captured_at, f"{step:06d}")
        empty = np.zeros(image.shape[:2], np.uint8)
        result = FrameResult(tiled, empty, image, self.mosaic_stats, {}, self.segmenter.card)
        for sink in self.sinks:
            sink.write(result)
        self.mosaic_stats.frame_done(time.perf_counter() - frame.captured_at)
        if any(s.stop_requested for s in self.sinks):  # the window's q: every stream stops
            self.stopped_by = self.stopped_by or "user"
            self._stop_stages()

    def _stop_stages(self) -> None:
        self._stop.set()
        for lane in self.lanes:
            lane._stop.set()

    def _finish_lane(self, lane: StreamLane, reason: str) -> None:
        """End one stream: its capture stops, its outputs are finalised now, its end checked.
        Never raises: an error is kept in the lane and reported."""
        lane.finished = True
        lane.stopped_by = lane.stopped_by or reason
        lane._stop.set()
        lane._close_sinks()
        lane.final = lane.stats.snapshot(class_share=True)  # its FPS over its own run
        if not lane._errors and lane.stopped_by == "end":
            try:
                lane._check_the_end()
            except EdgesegError as exc:
                lane._errors.append(exc)
        if lane._errors:
            self._report(f"stream {lane.name} stopped: {lane._errors[0]}")
        elif reason in ("end", "max_frames"):
            self._report(f"stream {lane.name} done: {lane.stats.frames_done} frames")

    def _render_until_end(self) -> None:
        while not all(lane.finished for lane in self.lanes):
            item = self._get(self._results)
            if item is END:
                return
            self._render(*item)

    def run(self) -> StreamsSnapshot:
        """Process every stream to its end; returns the final stats of each and of the batch.

        Raises the first error of the run (the batch thread's, then a stream's), after every
        output is closed; a stop signal finishes every output and is re-raised as
        :class:`~edgeseg.interrupts.Interrupted`.
        """
        if not self.lanes:
            raise EdgesegError("no streams to run")
        self._results = queue.Queue(maxsize=FILE_QUEUE_FRAMES * len(self.lanes))
        threads = []
        for lane in self.lanes:
            lane.stats.start()
            lane.capture_thread = threading.Thread(
                target=lane._capture_loop, name=f"edgeseg-capture-{lane.name}", daemon=True
            )
            threads.append(lane.capture_thread)
        threads.append(threading.Thread(target=self._infer_loop, name="edgeseg-batch", daemon=True))
        self.mosaic_stats.start()
        interrupt = self._supervise(threads)
        if interrupt is not None:
            raise interrupt
        errors = self._errors + [e for lane in self.lanes for e in lane._errors]
        if errors:
            raise errors[0]
        self.stopped_by = self.stopped_by or "end"
        return self.snapshot()

    def _finish_outputs(self) -> None:
        for lane in self.lanes:
            if not lane.finished:
                self._finish_lane(lane, self.stopped_by or "stop")
        Pipeline._close_sinks(self)  # the mosaic's sinks: every one closed, the first error kept

    @property
    def stats(self) -> PipelineStats:
        """The mosaic's stats (one frame per step): what a sink of this pipeline is given."""
        return self.mosaic_stats

    def snapshot(self, class_share: bool = False) -> StreamsSnapshot:
        """Per stream and batch stats now (see :mod:`edgeseg.runtime.stream_stats`)."""
        streams = {lane.name: lane.final or lane.stats.snapshot(class_share) for lane in self.lanes}
        stopped = {lane.name: lane.stopped_by for lane in self.lanes}
        return StreamsSnapshot(streams, self.batch.snapshot(), stopped)
