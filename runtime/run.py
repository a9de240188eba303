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
from edgeseg.runtime.overlay import Renderer
from edgeseg.runtime.paths import check_run_paths
from edgeseg.runtime.pipeline import Pipeline
from edgeseg.runtime.segmenter import Segmenter
from edgeseg.runtime.sinks import (
    DisplaySink,
    MaskSink,
    Sink,
    StatsSink,
    is_frames_folder,
    output_sink,
)
from edgeseg.runtime.sources import FrameSource, RetryPolicy, open_source
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
    max_frames: int | None = None,
    stats_path: str | Path | None = None,
    retry: RetryPolicy | None = None,
    extra_sinks: Sequence[Sink] = (),
    on_ready: Callable[[Segmenter, FrameSource], None] | None = None,
    on_event: Callable[[str], None] | None = None,
) -> RunSummary:
    """Segment every frame of ``source`` with ``model`` into the requested outputs.

    ``output``: a video file (``.mp4``/``.avi``/``.mkv``/``.mov``) or a folder of JPEG frames;
    ``save_masks``: a folder of PNG index masks; ``display``: a window (``q`` quits);
    ``stats_path``: JSON lines, one per second. ``on_ready`` is called once the model and the
    source are open (the CLI prints which backend ``auto`` chose); ``on_event`` receives
    reconnection reports and warnings. Raises EdgesegError for user mistakes (outputs that would
    overwrite an input or each other among them, before the first frame), OSError naming the
    output that could not be written; a stop signal (Ctrl-C, SIGTERM, SIGHUP) propagates as
    :class:`~edgeseg.interrupts.Interrupted` after the outputs are finalised.
    """
    if max_frames is not None and max_frames < 1:
        raise EdgesegError(f"--max-frames must be at least 1, got {max_frames}")
    segmenter = Segmenter(model, backend=backend)
    try:
        renderer = Renderer(segmenter.card, mode=mode, alpha=alpha, legend=legend, classes=classes)
        opened = (
            source
            if isinstance(source, FrameSource)
            else open_source(source, camera_size=camera_size, camera_fps=camera_fps)
        )
        sinks: list[Sink] = []
        try:
            outputs = {"--output": output, "--save-masks": save_masks, "--stats": stats_path}
            named = ("--save-masks", "--output") if output and is_frames_folder(output) else ()
            check_run_paths(model, opened, outputs, named or ("--save-masks",))
            if display:
                sinks.append(DisplaySink(f"edgeseg - {Path(str(model)).name}"))
            if output is not None:
                sinks.append(output_sink(output, fps=opened.fps, live=opened.live))
            if save_masks is not None:
                sinks.append(MaskSink(save_masks))
            if stats_path is not None:
                extra = {"model": str(model), "backend": segmenter.describe()}
                sinks.append(StatsSink(stats_path, extra=extra))
            sinks.extend(extra_sinks)
            if on_ready is not None:
                on_ready(segmenter, opened)
            pipeline = Pipeline(
                opened,
                segmenter,
                sinks,
                renderer=renderer,
                max_frames=max_frames,
                retry=retry,
                on_event=on_event,
            )
        except BaseException:  # nothing ran: remove the sinks' temporary files, free the source
            for sink in sinks:
                sink.close()
            opened.close()
            raise
        stats = pipeline.run()  # closes the sinks and the source itself, whatever happens
    finally:
        segmenter.close()
    written = [p for p in (output, save_masks, stats_path) if p is not None and Path(p).exists()]
    return RunSummary(stats, pipeline.stopped_by, segmenter.describe(), tuple(map(str, written)))
