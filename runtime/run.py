"""``run_pipeline``: what ``edgeseg run`` does, as one function an application can call.

It opens the model and the source, builds the sinks the options ask for, and runs a
:class:`~edgeseg.runtime.pipeline.Pipeline` to the end. Everything the user can get wrong
(missing files, unknown classes, a display that does not exist) is checked before the first
frame is read, so a mistake costs no waiting.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from edgeseg.errors import EdgesegError
from edgeseg.runtime.frames import FrameSource, RetryPolicy
from edgeseg.runtime.overlay import Renderer
from edgeseg.runtime.paths import check_run_paths
from edgeseg.runtime.pipeline import Pipeline
from edgeseg.runtime.realtime import PacedSource
from edgeseg.runtime.records import ClassSharesSink, StatsSink
from edgeseg.runtime.results import Sink
from edgeseg.runtime.segmenter import Segmenter
from edgeseg.runtime.serve import MAX_VIEWERS, ServeSink
from edgeseg.runtime.sinks import DisplaySink, MaskSink, is_frames_folder, output_sink
from edgeseg.runtime.sources import open_source
from edgeseg.runtime.stats import StatsSnapshot


@dataclass(frozen=True)
class RunSummary:
    """The outcome of :func:`run_pipeline`: final stats, why it stopped, what was written."""

    stats: StatsSnapshot
    stopped_by: str  # end, max_frames, user, stop
    backend: str
    outputs: tuple[str, ...]


def run_pipeline(
    model: str | Path,
    source: str | int | FrameSource,
    *,
    backend: str = "auto",
    output: str | Path | None = None,
    save_masks: str | Path | None = None,
    display: bool = False,
    mode: str = "overlay",
    alpha: float = 0.5,
    legend: bool = True,
    classes: str | Sequence[str] | None = None,
    camera_size: tuple[int, int] | None = None,
    camera_fps: float | None = None,
    camera_format: str | None = None,
    flip: str = "none",
    realtime: bool = False,
    max_frames: int | None = None,
    stats_path: str | Path | None = None,
    class_shares_path: str | Path | None = None,
    serve: str | int | None = None,
    serve_token: str | None = None,
    serve_max_viewers: int = MAX_VIEWERS,
    retry: RetryPolicy | None = None,
    extra_sinks: Sequence[Sink] = (),
    on_ready: Callable[[Segmenter, FrameSource], None] | None = None,
    on_event: Callable[[str], None] | None = None,
) -> RunSummary:
    """Segment every frame of ``source`` with ``model`` into the requested outputs.

    ``output``: a video file (``.mp4``/``.avi``/``.mkv``/``.mov``) or a folder of JPEG frames;
    ``save_masks``: a folder of PNG index masks; ``display``: a window (``q`` quits);
    ``stats_path``: JSON lines, one per second; ``class_shares_path``: a CSV row of class
    shares per frame; ``serve``: ``[HOST:]PORT`` of a page, an MJPEG stream and the stats
    over HTTP (:class:`~edgeseg.runtime.serve.ServeSink`, with ``serve_token`` and
    ``serve_max_viewers``; its address goes to ``on_event``). ``camera_*`` and ``flip`` set up a
    camera
    (:class:`~edgeseg.runtime.cameras.CameraSettings`); ``realtime`` plays a file at its own
    rate, as a camera would (:class:`~edgeseg.runtime.realtime.PacedSource`). ``on_ready`` is
    called once the model and the source are open (the CLI prints which backend ``auto``
    chose); ``on_event`` receives reconnection reports and warnings. Raises EdgesegError for
    user mistakes (outputs that would overwrite an input or each other among them, before the
    first frame), OSError naming the output that could not be written; a stop signal (Ctrl-C,
    SIGTERM, SIGHUP) propagates as :class:`~edgeseg.interrupts.Interrupted` after the outputs
    are finalised.
    """
    if max_frames is not None and max_frames < 1:
        raise EdgesegError(f"--max-frames must be at least 1, got {max_frames}")
    outputs = {
        "--output": output,
        "--save-masks": save_masks,
        "--stats": stats_path,
        "--class-shares": class_shares_path,
    }
    segmenter = Segmenter(model, backend=backend)
    try:
        renderer = Renderer(segmenter.card, mode=mode, alpha=alpha, legend=legend, classes=classes)
        if isinstance(source, FrameSource):
            opened = source
        else:
            camera = {"camera_format": camera_format, "flip": flip}
            opened = open_source(source, camera_size, camera_fps, **camera)
        if realtime:
            opened = PacedSource(opened)
        sinks: list[Sink] = []
        try:
            named = ("--save-masks", "--output") if output and is_frames_folder(output) else ()
            check_run_paths(model, opened, outputs, named or ("--save-masks",))
            sinks = _open_sinks(segmenter, model, opened, outputs, display)
            if serve is not None:
                sinks.append(_serve_sink(segmenter, model, serve, serve_token, serve_max_viewers))
                _announce(sinks[-1], on_event)
            sinks.extend(extra_sinks)
            if on_ready is not None:
                on_ready(segmenter, opened)
            pipeline = Pipeline(
                opened, segmenter, sinks, renderer=renderer, max_frames=max_frames,
                retry=retry, on_event=on_event,
            )  # fmt: skip
        except BaseException:  # nothing ran: remove the sinks' temporary files, free the source
            for sink in sinks:
                sink.discard()
            opened.close()
            raise
        stats = pipeline.run()  # closes the sinks and the source itself, whatever happens
    finally:
        segmenter.close()
    written = [str(p) for p in outputs.values() if p is not None and Path(p).exists()]
    return RunSummary(stats, pipeline.stopped_by, segmenter.describe(), tuple(written))


def _open_sinks(
    segmenter: Segmenter,
    model: str | Path,
    source: FrameSource,
    outputs: dict[str, str | Path | None],
    display: bool,
) -> list[Sink]:
    """The sinks the options ask for, in the order they see each frame; on a mistake, those
    already made are discarded (no temporary file stays behind)."""
    sinks: list[Sink] = []
    try:
        if display:
            sinks.append(DisplaySink(f"edgeseg - {Path(str(model)).name}"))
        if outputs["--output"] is not None:
            sinks.append(output_sink(outputs["--output"], fps=source.fps, live=source.live))
        if outputs["--save-masks"] is not None:
            sinks.append(MaskSink(outputs["--save-masks"]))
        if outputs["--stats"] is not None:
            extra = {"model": str(model), "backend": segmenter.describe()}
            sinks.append(StatsSink(outputs["--stats"], extra=extra))
        if outputs["--class-shares"] is not None:
            names = tuple(segmenter.card.class_names)
            sinks.append(ClassSharesSink(outputs["--class-shares"], names))
    except BaseException:
        for sink in sinks:
            sink.discard()
        raise
    return sinks


def _serve_sink(
    segmenter: Segmenter, model: str | Path, address: str | int, token: str | None, viewers: int
) -> ServeSink:
    extra = {"model": str(model), "backend": segmenter.describe()}
    return ServeSink(address, token=token, card=segmenter.card, extra=extra, max_viewers=viewers)


def _announce(sink: Sink, on_event: Callable[[str], None] | None) -> None:
    if on_event is not None and isinstance(sink, ServeSink):
        for line in sink.notes():
            on_event(line)
