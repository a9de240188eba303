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
reported through ``on_event``; giving up raises EdgesegError. A reconnection counts as one only
when frames follow it: a stream that accepts every connection but never yields a decodable frame
uses up the same attempts and ends with one line saying so. A live source that keeps yielding
undecodable frames (:class:`CorruptFrame`) ends the run past ``corrupt_limit`` in a row (default:
:data:`CORRUPT_SECONDS` worth at the source's rate). A source that yields no frame at all is an
error; a file that ends before the frame count its container announces gets a warning with both
numbers.

The run ends at the end of the source, after ``max_frames``, when a sink asks (the window's
``q``), on :meth:`Pipeline.stop`, or on a stop signal: Ctrl-C, SIGTERM or SIGHUP
(:class:`~edgeseg.interrupts.SignalGuard`, installed while :meth:`Pipeline.run` runs on the main
thread). A signal stops reading, lets the frames already read through (at most
:data:`~edgeseg.runtime.stopping.DRAIN_TIMEOUT_S`, less once nothing is in flight; a second signal
skips this), then finalises every sink, which no further signal interrupts;
:class:`~edgeseg.interrupts.Interrupted` is re-raised afterwards. A stage thread still blocked
:data:`~edgeseg.runtime.stopping.SHUTDOWN_TIMEOUT_S` after that (a ``read()`` that never
returns) is abandoned, not joined: the outputs are finalised all the same
(:class:`~edgeseg.runtime.stopping.StopDeadline`). On an error
too the sinks are finished and closed, so output files are complete and in place; a sink whose own
write failed (a full disk) removes its temporary file and leaves the destination as it was.

Render and sinks run on the thread that calls :meth:`Pipeline.run` (a display window must live
on the main thread).
"""

from __future__ import annotations

import contextlib
import itertools
import math
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from edgeseg.errors import EdgesegError
from edgeseg.interrupts import SignalGuard
from edgeseg.runtime.channels import END, LatestFrameSlot
from edgeseg.runtime.frames import CorruptFrame, Frame, FrameSource, RetryPolicy, SourceLost
from edgeseg.runtime.overlay import Renderer
from edgeseg.runtime.results import FrameResult, Sink
from edgeseg.runtime.segmenter import Segmenter
from edgeseg.runtime.stats import POLICY_FILE, POLICY_LIVE, PipelineStats, StatsSnapshot
from edgeseg.runtime.stopping import StopDeadline

_POLL_S = 0.05  # how often a blocked stage looks at the stop flag
FILE_QUEUE_FRAMES = 2
CORRUPT_SECONDS = 5.0  # a live source's undecodable frames in a row, in seconds of its rate
ASSUMED_FPS = 30.0  # when a live source does not say its rate
WARN_SHORTFALL = 0.01  # a file's frames may fall short of its header's count by 1 % unwarned


class Pipeline:
    """Run ``segmenter`` over every frame of ``source`` into ``sinks``.

    ``renderer`` draws the overlay for sinks that show images (default: a
    :class:`~edgeseg.runtime.overlay.Renderer` with the card's palette, made only when a sink
    needs it). ``max_frames`` stops after that many results. ``retry`` governs reconnection of
    live sources; ``on_event`` receives one-line reports (source lost, reconnected, warnings).
    ``corrupt_limit``: undecodable frames in a row that end a live run (default
    :data:`CORRUPT_SECONDS` at the source's rate). ``handle_signals``: install the
    :class:`~edgeseg.interrupts.SignalGuard` during :meth:`run` (it leaves an application's
    own handlers alone).

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
        corrupt_limit: int | None = None,
        handle_signals: bool = True,
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
        rate = source.fps or ASSUMED_FPS
        self.corrupt_limit = corrupt_limit or max(10, math.ceil(CORRUPT_SECONDS * rate))
        self.handle_signals = handle_signals
        policy = POLICY_LIVE if self.live else POLICY_FILE
        self.stats = PipelineStats(policy, tuple(segmenter.card.class_names))
        self.events: deque[str] = deque(maxlen=200)  # the latest reports, bounded
        self.stopped_by = ""
        self._stop = threading.Event()  # everything stops now
        self._stop_reading = threading.Event()  # capture stops; what was read goes through
        self._errors: list[BaseException] = []
        self._frames: LatestFrameSlot | queue.Queue = (
            LatestFrameSlot() if self.live else queue.Queue(maxsize=FILE_QUEUE_FRAMES)
        )
        self._results: queue.Queue = queue.Queue(maxsize=1 if self.live else FILE_QUEUE_FRAMES)
        self._rendered: np.ndarray | None = None
        self._inferring = False  # a frame is between the frame channel and the results
        self.deadline = StopDeadline()
        self._read_to_end = False
        # Reconnection bookkeeping: frames read when the source was last (re)opened, and the
        # attempts made since frames last came (a reopen that yields nothing does not reset it).
        self._frames_at_open = 0
        self._fruitless_attempts = 0
        self._opened_without_frames = 0

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
                    return END

    # -- stage 1: capture -------------------------------------------------------------------

    def _capture_loop(self) -> None:
        read_limit = None if self.live else self.max_frames
        frames_read = corrupt_in_a_row = 0
        try:
            while not (self._stop.is_set() or self._stop_reading.is_set()):
                if read_limit is not None and frames_read >= read_limit:
                    break
                start = time.perf_counter()
                try:
                    frame = self.source.read()
                except CorruptFrame as exc:
                    corrupt_in_a_row += 1
                    self._on_corrupt(exc, corrupt_in_a_row, frames_read)
                    continue
                except SourceLost as exc:
                    if not self._reconnect(exc, frames_read):
                        break
                    continue
                if frame is None:
                    self._read_to_end = True
                    break
                frames_read += 1
                corrupt_in_a_row = 0
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
                self._put(self._frames, END)
            self.source.close()

    def _on_corrupt(self, exc: CorruptFrame, in_a_row: int, frames_read: int) -> None:
        """Count and report an undecodable frame; end a live run past ``corrupt_limit``."""
        self.stats.count("corrupt")
        if in_a_row <= 3 or in_a_row % 100 == 0:  # a broken stream must not flood the terminal
            self._report(f"skipped a corrupt frame: {exc}")
        if self.live and in_a_row >= self.corrupt_limit:
            seen = f"after {frames_read} good frames" if frames_read else "and not one good frame"
            raise EdgesegError(
                f"{self.source.description}: {in_a_row} undecodable frames in a row {seen} "
                f"(last: {exc}); check that the source sends video this OpenCV can decode"
            )

    def _reconnect(self, lost: SourceLost, frames_read: int) -> bool:
        """Reopen the source with backoff; False if the pipeline stopped meanwhile.

        Attempts run on from the last reconnection when no frame came since: a stream that
        accepts the connection and then yields nothing uses up the same budget.
        """
        if frames_read > self._frames_at_open:
            self._fruitless_attempts = self._opened_without_frames = 0
        if not self._fruitless_attempts:
            self._report(f"{self.source.description} lost ({lost}); reconnecting")
        started = time.perf_counter()
        attempts = self._fruitless_attempts
        for delay in itertools.islice(self.retry.delays(), attempts, None):
            if self._stop.wait(delay) or self._stop_reading.is_set():
                return False
            attempts += 1
            self._fruitless_attempts = attempts
            try:
                self.source.reopen()
            except SourceLost as exc:
                self._report(f"reconnection attempt {attempts} failed: {exc}")
                continue
            self.stats.count("reconnects")
            self._frames_at_open = frames_read
            self._opened_without_frames += 1
            self._report(f"{self.source.description} reconnected after {attempts} attempt(s)")
            return True
        raise EdgesegError(self._lost_message(lost, attempts, time.perf_counter() - started))

    def _lost_message(self, lost: SourceLost, attempts: int, seconds: float) -> str:
        if self._opened_without_frames:
            return (
                f"{self.source.description}: connected {self._opened_without_frames} time(s) "
                f"in {attempts} reconnection attempts but no decodable frame came "
                f"({self.stats.frames_read} frames before; last: {lost}); check that it sends "
                "video this OpenCV can decode"
            )
        return (
            f"lost {self.source.description}: no frames after {attempts} reconnection attempts "
            f"over {seconds:.1f} s"
        )

    # -- stage 2: inference -----------------------------------------------------------------

    def _infer_loop(self) -> None:
        segmenter = self.segmenter
        try:
            while True:
                frame = self._get(self._frames)
                if frame is END:
                    break
                self._inferring = True
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
                self._inferring = False
        except BaseException as exc:
            self._errors.append(exc)
            self._stop.set()
        finally:
            self._put(self._results, END)

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
        result = FrameResult(frame, mask, rendered, self.stats, dict(timings), self.segmenter.card)
        # The overlay is handed to the display and writers now: the capture-to-output delay.
        self.stats.output_ready(time.perf_counter() - frame.captured_at)
        for sink in self.sinks:
            sink.write(result)
        seconds = time.perf_counter() - start
        result.timings["render"] = seconds
        self.stats.add_stage("render", seconds)
        self.stats.frame_done(time.perf_counter() - frame.captured_at, mask)

    def _render_until_end(self) -> None:
        while True:
            item = self._get(self._results)
            if item is END:
                return
            self._render(*item)
            if any(s.stop_requested for s in self.sinks):
                self.stopped_by = self.stopped_by or "user"
                return
            if self.max_frames is not None and self.stats.frames_done >= self.max_frames:
                self.stopped_by = self.stopped_by or "max_frames"
                return

    def _drain(self, guard: SignalGuard) -> None:
        """After a stop signal: read nothing more, let frames already read reach the sinks,
        within the drain deadline; done early when nothing is in flight twice in a row (the
        reader may be blocked in a read that never returns)."""
        self._stop_reading.set()
        self.deadline.start()
        idle = 0
        with contextlib.suppress(Exception):  # a failing sink here must not block finalising
            while len(guard.received) < 2 and self.deadline.draining() and idle < 2:
                try:
                    item = self._results.get(timeout=_POLL_S)
                except queue.Empty:
                    idle = idle + 1 if self._frames.empty() and not self._inferring else 0
                    continue
                if item is END:
                    return
                idle = 0
                self._render(*item)

    def run(self) -> StatsSnapshot:
        """Process until the end (see the module docstring); returns the final stats.

        Raises the first error a stage hit (EdgesegError for a lost source, OSError for an
        output that cannot be written), after the sinks are closed. A stop signal finishes the
        outputs and is re-raised as :class:`~edgeseg.interrupts.Interrupted`.
        """
        self.stats.start()
        threads = [
            threading.Thread(target=self._capture_loop, name="edgeseg-capture", daemon=True),
            threading.Thread(target=self._infer_loop, name="edgeseg-infer", daemon=True),
        ]
        interrupt = self._supervise(threads)
        if interrupt is not None:
            raise interrupt
        if self._errors:
            raise self._errors[0]
        self.stopped_by = self.stopped_by or "end"
        self._check_the_end()
        return self.stats.snapshot()

    def _supervise(self, threads: list[threading.Thread]) -> KeyboardInterrupt | None:
        """Start the stage threads and render until the end; whatever happens, stop the stages,
        join them within the stop deadline (a reader blocked for good is abandoned) and close
        the outputs. Returns the interrupt to re-raise once the outputs are final; one source
        and several (:class:`~edgeseg.runtime.streams.StreamsPipeline`) share this."""
        for thread in threads:
            thread.start()
        interrupt: KeyboardInterrupt | None = None
        with SignalGuard() if self.handle_signals else SignalGuard(signals=()) as guard:
            try:
                self._render_until_end()
            except KeyboardInterrupt as exc:
                interrupt = exc
                self.stopped_by = "interrupt"
                self._drain(guard)
            except BaseException as exc:
                self._errors.append(exc)
            finally:
                self._stop_stages()
                self.deadline.join(threads, self._report)
                self._finish_outputs()
        return interrupt

    def _stop_stages(self) -> None:
        """Tell every stage thread to end."""
        self._stop.set()

    def _finish_outputs(self) -> None:
        """Close every sink (finalising files)."""
        self._close_sinks()

    def _check_the_end(self) -> None:
        """No frame at all is an error; a file shorter than its header says gets a warning."""
        stats, source = self.stats, self.source
        if self.stopped_by != "end":
            return
        if stats.frames_read == 0:
            corrupt = f" ({stats.corrupt} undecodable)" if stats.corrupt else ""
            raise EdgesegError(f"{source.description} yielded no frame{corrupt}; nothing written")
        expected = source.frame_count
        if self.live or not self._read_to_end or not expected:
            return
        seen = stats.frames_read + stats.corrupt
        if expected - seen > max(1, WARN_SHORTFALL * expected):
            self._report(
                f"warning: {source.description} ended after {seen} of the {expected} frames its "
                "container announces (a cut or damaged file?); the outputs hold those "
                f"{stats.frames_done}"
            )

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
