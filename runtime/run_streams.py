"""``run_streams``: what ``edgeseg run --source A --source B ...`` does, as one function.

It opens the model once and every source, gives each stream the outputs the options ask for
(``{stream}`` in a path, or a folder per stream: :mod:`edgeseg.runtime.stream_specs`), adds the
outputs that see every stream (``mosaic``: the tiled view as a video or a folder of frames;
``display``; ``serve``; a ``stats_path`` without ``{stream}``: one record per second with every
stream's stats and the batch's), and runs a :class:`~edgeseg.runtime.streams.StreamsPipeline`.
As for one source, every mistake (a missing source, outputs that would overwrite an input or
each other) is found before the first frame is read.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeseg.errors import EdgesegError
from edgeseg.foreign_onnx import ForeignModelOptions
from edgeseg.runtime.frames import FrameSource, RetryPolicy
from edgeseg.runtime.options import CameraOptions, OutputOptions, RenderOptions, ServeOptions
from edgeseg.runtime.outputs import OutputContext, open_output, output_path
from edgeseg.runtime.overlay import Renderer
from edgeseg.runtime.paths import check_run_paths
from edgeseg.runtime.realtime import PacedSource
from edgeseg.runtime.results import Sink
from edgeseg.runtime.run import _open_sinks
from edgeseg.runtime.segmenter import Segmenter
from edgeseg.runtime.sinks import is_frames_folder
from edgeseg.runtime.sources import open_source
from edgeseg.runtime.stream_specs import (
    PLACEHOLDER,
    expand_sources,
    stream_names,
    stream_path,
)
from edgeseg.runtime.stream_stats import StreamsSnapshot, StreamsStatsSink
from edgeseg.runtime.streams import SLOT_TIMEOUT_S, StreamsPipeline
from edgeseg.runtime.streams_serve import StreamsServeSink


@dataclass(frozen=True)
class StreamsSummary:
    """The outcome of :func:`run_streams`: final stats, why the run stopped, what was written."""

    stats: StreamsSnapshot
    stopped_by: str
    backend: str
    names: tuple[str, ...]
    outputs: tuple[str, ...]


def run_streams(
    model: str | Path,
    sources: Sequence[str | int | FrameSource],
    *,
    camera: CameraOptions | None = None,
    render: RenderOptions | None = None,
    outputs: OutputOptions | None = None,
    serve: ServeOptions | None = None,
    mosaic: str | Path | None = None,
    backend: str = "auto",
    foreign: ForeignModelOptions | None = None,
    realtime: bool = False,
    max_frames: int | None = None,
    retry: RetryPolicy | None = None,
    slot_timeout_s: float = SLOT_TIMEOUT_S,
    extra_sinks: Sequence[Sink] = (),
    on_ready: Callable[[Segmenter, StreamsPipeline], None] | None = None,
    on_event: Callable[[str], None] | None = None,
) -> StreamsSummary:
    """Segment every frame of several ``sources`` with one ``model``, batched.

    ``sources``: what ``open_source`` opens (``name=SOURCE`` names a stream), FrameSources, or
    ``.streams`` files listing them. ``camera``, ``render``, ``foreign``: as for
    :func:`~edgeseg.runtime.run.run_pipeline`, for every stream. ``outputs``: each stream's
    own (``{stream}`` in a path, or a folder per stream; a ``stats`` path without ``{stream}``
    is one file for the whole run), but a ``display://`` target shows the mosaic. ``mosaic``:
    the tiled view, any output URI (a video file, a folder of frames, ``rtp://``...);
    ``serve`` shows it in a browser with every stream's stats. ``max_frames``: per stream.
    ``extra_sinks`` see the mosaic's steps (the CLI's progress). Raises EdgesegError for user
    mistakes before the first frame; a stream's error (a lost camera that does not come back)
    after every stream has finished; a stop signal as :class:`~edgeseg.interrupts.Interrupted`
    once every output is finalised.

    >>> run_streams("model.onnx", ["front.mp4", "rear.mp4"],            # doctest: +SKIP
    ...             outputs=OutputOptions(targets=("out_{stream}.mp4",)))
    """
    if max_frames is not None and max_frames < 1:
        raise EdgesegError(f"--max-frames must be at least 1, got {max_frames}")
    outputs, render = outputs or OutputOptions(), render or RenderOptions()
    names, specs = stream_names(expand_sources(sources))
    combined_stats = outputs.stats is not None and PLACEHOLDER not in str(outputs.stats)
    per_stream = {name: _stream_outputs(name, outputs, combined_stats) for name in names}
    shows = tuple(t for t in outputs.targets if _is_display(t))
    segmenter = Segmenter(model, backend=backend, foreign=foreign)
    opened: list[FrameSource] = []
    sinks: list[Sink] = []
    try:
        for spec in specs:
            source = spec if isinstance(spec, FrameSource) else open_source(spec, camera=camera)
            opened.append(PacedSource(source) if realtime else source)
        shared = {"--mosaic": _file(mosaic), "--stats": outputs.stats if combined_stats else None}
        _check_paths(model, opened, per_stream, shared)
        _mosaic_sinks(segmenter, model, len(names), mosaic, shows, opened, on_event, serve,
                      outputs, shared["--stats"], sinks)  # fmt: skip
        sinks.extend(extra_sinks)
        streams = StreamsPipeline(
            segmenter, list(sinks), slot_timeout_s=slot_timeout_s, on_event=on_event
        )
        for sink in streams.sinks:
            if isinstance(sink, StreamsServeSink | StreamsStatsSink):
                sink.attach(streams.snapshot)
        for name, source in zip(names, opened, strict=True):
            report = (lambda text, n=name: on_event(f"stream {n}: {text}")) if on_event else None
            lane_sinks = _open_sinks(segmenter, model, source, per_stream[name], None, report)
            sinks.extend(lane_sinks)
            renderer = Renderer(
                segmenter.card, mode=render.mode, alpha=render.alpha, legend=render.legend,
                classes=render.classes,
            )  # fmt: skip
            streams.add_lane(
                name, source, lane_sinks, renderer=renderer, max_frames=max_frames, retry=retry
            )
        if on_ready is not None:
            on_ready(segmenter, streams)
        _say_chunks(segmenter, len(names), on_event)
    except BaseException:  # nothing ran: remove the sinks' temporary files, free the sources
        for sink in sinks:
            sink.discard()
        for source in opened:
            source.close()
        segmenter.close()
        raise
    try:
        stats = streams.run()  # closes every sink and source itself, whatever happens
    finally:
        segmenter.close()
    every = [p for each in per_stream.values() for p in _labelled(each, "").values()]
    every += [p for p in shared.values() if p is not None]
    written = tuple(str(p) for p in every if Path(p).exists())
    return StreamsSummary(stats, streams.stopped_by, segmenter.describe(), tuple(names), written)


def _is_display(target: str) -> bool:
    return str(target).lower().startswith("display://")


def _file(target: str | Path | None) -> Path | None:
    """The file or folder an output URI writes (None for a stream, a window, or no output)."""
    return None if target is None else output_path(target)


def _stream_outputs(name: str, outputs: OutputOptions, combined_stats: bool) -> OutputOptions:
    """Stream ``name``'s own outputs: every path through :func:`stream_path` (a display is
    the mosaic's, a stats file without ``{stream}`` the whole run's)."""

    def each(template: Any, option: str, folder: bool) -> str | None:
        return None if template is None else stream_path(template, name, option, folder)

    targets = []
    for target in outputs.targets:
        if not _is_display(target):
            path = output_path(target)
            folder = path is not None and is_frames_folder(target)
            targets.append(stream_path(target, name, "--output", folder))
    return OutputOptions(
        tuple(targets),
        each(outputs.masks, "--save-masks", True),
        None if combined_stats else each(outputs.stats, "--stats", False),
        each(outputs.class_shares, "--class-shares", False),
        outputs.encoding,
    )


def _labelled(outputs: OutputOptions, name: str) -> dict[str, Any]:
    """Flag (and stream) -> path of every file or folder one stream writes."""
    suffix = f" ({name})" if name else ""
    files = [output_path(t) for t in outputs.targets if output_path(t) is not None]
    labelled: dict[str, Any] = {}
    for number, path in enumerate(files, 1):
        labelled[f"--output{'' if len(files) == 1 else f' {number}'}{suffix}"] = str(path)
    named = {"--save-masks": outputs.masks, "--stats": outputs.stats}
    named["--class-shares"] = outputs.class_shares
    labelled.update({f"{k}{suffix}": p for k, p in named.items() if p is not None})
    return labelled


def _check_paths(
    model: str | Path,
    sources: list[FrameSource],
    per_stream: dict[str, OutputOptions],
    shared: dict[str, Any],
) -> None:
    """No output on an input, on another output, or inside an image folder read, for any
    stream (every source is checked against every output, through the one output guard,
    :func:`edgeseg.outputs.check_outputs`), and no two images of one stream that would give
    one file in its masks or frames folder."""
    labelled = {name: _labelled(each, name) for name, each in per_stream.items()}
    every = {label: p for each in labelled.values() for label, p in each.items()}
    every.update({label: p for label, p in shared.items() if p is not None})
    for name, source in zip(per_stream, sources, strict=True):
        named = [
            label
            for label, path in labelled[name].items()
            if label.startswith("--save-masks")
            or (label.startswith("--output") and is_frames_folder(path))
        ]
        check_run_paths(model, source, every, tuple(named))


def _mosaic_sinks(
    segmenter: Segmenter,
    model: str | Path,
    count: int,
    mosaic: str | Path | None,
    shows: tuple[str, ...],
    sources: list[FrameSource],
    on_event: Callable[[str], None] | None,
    serve: ServeOptions | None,
    outputs: OutputOptions,
    stats_path: Any,
    made: list[Sink],
) -> None:
    """The sinks that see every stream at once (the mosaic through :func:`open_output`, its
    window, its browser view, the whole run's stats), appended to ``made`` as they are created
    (so a mistake in a later one discards the earlier)."""
    extra = {"model": str(model), "backend": segmenter.describe(), "streams": count}
    context = OutputContext(
        fps=min((s.fps for s in sources if s.fps), default=None),
        live=any(s.live for s in sources), card=segmenter.card, extra=extra,
        encoding=outputs.encoding, title=f"edgeseg - {Path(str(model)).name} - {count} streams",
    )  # fmt: skip
    for target in (*shows, *([] if mosaic is None else [str(mosaic)])):
        made.append(open_output(target, context))
        if on_event is not None and getattr(made[-1], "note", None):
            on_event(str(made[-1].note))  # type: ignore[attr-defined]
    if serve is not None:
        sink = StreamsServeSink(
            serve.address, token=serve.token, card=segmenter.card, extra=extra,
            max_viewers=serve.max_viewers,
        )  # fmt: skip
        made.append(sink)
        for line in sink.notes() if on_event is not None else ():
            on_event(line)
    if stats_path:
        made.append(StreamsStatsSink(stats_path, extra=extra))


def _say_chunks(segmenter: Segmenter, count: int, on_event: Callable[[str], None] | None) -> None:
    """Tell the user when the engine cannot take every stream in one call, and the fix."""
    limit = segmenter.max_batch
    if on_event is None or limit is None or limit >= count:
        return
    calls = -(-count // limit)
    fix = (
        f"build the engine with edgeseg export --format engine --dynamic --max-batch {count}"
        if segmenter.backend_name == "tensorrt"
        else "an ONNX exported with edgeseg export --dynamic takes them at once"
    )
    on_event(
        f"{segmenter.path.name} takes at most {limit} frame(s) per call: {count} streams run "
        f"in {calls} calls per step ({fix})"
    )
