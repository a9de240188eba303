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
from edgeseg.runtime.frames import FrameSource, RetryPolicy
from edgeseg.runtime.overlay import Renderer
from edgeseg.runtime.paths import check_run_paths
from edgeseg.runtime.realtime import PacedSource
from edgeseg.runtime.results import Sink
from edgeseg.runtime.run import _open_sinks
from edgeseg.runtime.segmenter import Segmenter
from edgeseg.runtime.serve import MAX_VIEWERS
from edgeseg.runtime.sinks import DisplaySink, is_frames_folder, output_sink
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

#: Options with a path per stream: option -> run_streams' keyword.
_PER_STREAM = {
    "--output": "output",
    "--save-masks": "save_masks",
    "--stats": "stats_path",
    "--class-shares": "class_shares_path",
}


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
    backend: str = "auto",
    output: str | Path | None = None,
    save_masks: str | Path | None = None,
    mosaic: str | Path | None = None,
    display: bool = False,
    render: dict[str, Any] | None = None,
    camera: dict[str, Any] | None = None,
    realtime: bool = False,
    max_frames: int | None = None,
    stats_path: str | Path | None = None,
    class_shares_path: str | Path | None = None,
    serve: str | int | None = None,
    serve_token: str | None = None,
    serve_max_viewers: int = MAX_VIEWERS,
    retry: RetryPolicy | None = None,
    slot_timeout_s: float = SLOT_TIMEOUT_S,
    extra_sinks: Sequence[Sink] = (),
    on_ready: Callable[[Segmenter, StreamsPipeline], None] | None = None,
    on_event: Callable[[str], None] | None = None,
) -> StreamsSummary:
    """Segment every frame of several ``sources`` with one ``model``, batched.

    ``sources``: what ``open_source`` opens (``name=SOURCE`` names a stream), FrameSources, or
    ``.streams`` files listing them. ``output``, ``save_masks``, ``stats_path``,
    ``class_shares_path``: as for :func:`~edgeseg.runtime.run.run_pipeline`, one per stream
    (``{stream}`` in the path, or a folder per stream; ``stats_path`` without ``{stream}`` is
    one file for the whole run). ``mosaic``: the tiled view as a video file or a folder of
    frames; ``display`` and ``serve`` show it. ``render``: Renderer keywords (mode, alpha,
    legend, classes); ``camera``: :func:`~edgeseg.runtime.sources.open_source` keywords for
    every source (camera_size, camera_fps, camera_format, flip). ``max_frames``: per stream.
    ``extra_sinks`` see the mosaic's steps (the CLI's progress). Raises EdgesegError for user
    mistakes before the first frame; a stream's error (a lost camera that does not come back)
    after every stream has finished; a stop signal as :class:`~edgeseg.interrupts.Interrupted`
    once every output is finalised.

    >>> run_streams("model.onnx", ["front.mp4", "rear.mp4"], output="out_{stream}.mp4")
    """
    if max_frames is not None and max_frames < 1:
        raise EdgesegError(f"--max-frames must be at least 1, got {max_frames}")
    names, specs = stream_names(expand_sources(sources))
    per_stream = {"output": output, "save_masks": save_masks, "stats_path": stats_path}
    per_stream["class_shares_path"] = class_shares_path
    combined_stats = stats_path is not None and PLACEHOLDER not in str(stats_path)
    paths = {name: _stream_outputs(name, per_stream, combined_stats) for name in names}
    segmenter = Segmenter(model, backend=backend)
    opened: list[FrameSource] = []
    sinks: list[Sink] = []
    try:
        for spec in specs:
            source = spec if isinstance(spec, FrameSource) else open_source(spec, **(camera or {}))
            opened.append(PacedSource(source) if realtime else source)
        shared = {"--mosaic": mosaic, "--stats": stats_path if combined_stats else None}
        _check_paths(model, opened, paths, shared)
        _mosaic_sinks(segmenter, model, len(names), mosaic, display, opened, on_event, serve,
                      serve_token, serve_max_viewers, shared["--stats"], sinks)  # fmt: skip
        sinks.extend(extra_sinks)
        streams = StreamsPipeline(
            segmenter, list(sinks), slot_timeout_s=slot_timeout_s, on_event=on_event
        )
        for sink in streams.sinks:
            if isinstance(sink, StreamsServeSink | StreamsStatsSink):
                sink.attach(streams.snapshot)
        for name, source in zip(names, opened, strict=True):
            lane_sinks = _open_sinks(segmenter, model, source, paths[name], display=False)
            sinks.extend(lane_sinks)
            renderer = Renderer(segmenter.card, **(render or {}))
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
    every = [p for outputs in [*paths.values(), shared] for p in outputs.values()]
    written = tuple(str(p) for p in every if p is not None and Path(p).exists())
    return StreamsSummary(stats, streams.stopped_by, segmenter.describe(), tuple(names), written)


def _stream_outputs(
    name: str, per_stream: dict[str, Any], combined_stats: bool
) -> dict[str, str | None]:
    """Stream ``name``'s output paths, keyed as run_pipeline's ``_open_sinks`` expects."""
    outputs: dict[str, str | None] = {}
    for option, key in _PER_STREAM.items():
        template = per_stream[key]
        if template is None or (key == "stats_path" and combined_stats):
            outputs[option] = None
            continue
        folder = option == "--save-masks" or (option == "--output" and is_frames_folder(template))
        outputs[option] = stream_path(template, name, option, folder)
    return outputs


def _check_paths(
    model: str | Path,
    sources: list[FrameSource],
    paths: dict[str, dict[str, str | None]],
    shared: dict[str, Any],
) -> None:
    """No output on an input, on another output, or inside an image folder read, for any
    stream (every source is checked against every output), and no two images of one stream
    that would give one file in its masks or frames folder."""
    outputs = {
        f"{option} ({name})": p for name, each in paths.items() for option, p in each.items()
    }
    outputs.update(shared)
    for name, source in zip(paths, sources, strict=True):
        frames = paths[name]["--output"]
        named = ["--save-masks"] + (["--output"] if frames and is_frames_folder(frames) else [])
        check_run_paths(model, source, outputs, tuple(f"{option} ({name})" for option in named))


def _mosaic_sinks(
    segmenter: Segmenter,
    model: str | Path,
    count: int,
    mosaic: str | Path | None,
    display: bool,
    sources: list[FrameSource],
    on_event: Callable[[str], None] | None,
    serve: str | int | None,
    token: str | None,
    viewers: int,
    stats_path: Any,
    made: list[Sink],
) -> None:
    """The sinks that see every stream at once, appended to ``made`` as they are created (so a
    mistake in a later one discards the earlier)."""
    extra = {"model": str(model), "backend": segmenter.describe(), "streams": count}
    live = any(s.live for s in sources)
    fps = min((s.fps for s in sources if s.fps), default=None)
    if display:
        made.append(DisplaySink(f"edgeseg - {Path(str(model)).name} - {count} streams"))
    if mosaic is not None:
        made.append(output_sink(mosaic, fps=fps, live=live))
    if serve is not None:
        sink = StreamsServeSink(
            serve, token=token, card=segmenter.card, extra=extra, max_viewers=viewers
        )
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
